//! The shader and pipeline cache: WGSL modules (their binding layouts from naga's reflection),
//! compute pipelines per (entry point, override constants), and bind groups per (pipeline,
//! buffers).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::params::GpuParams;
use super::{Ctx, Launch, Overrides, shaders};
use crate::error::{Error, Result};

/// Bind groups kept before the cache is cleared (shapes changed too often to be worth keeping).
const BIND_CACHE_MAX: usize = 50_000;

#[derive(Hash, PartialEq, Eq, Clone)]
pub(super) struct PipeKey {
    pub(super) family: &'static str,
    pub(super) entry: &'static str,
    pub(super) overrides: Vec<(&'static str, u64)>,
}

pub(super) struct Pipe {
    pub(super) id: u64,
    pub(super) pipeline: wgpu::ComputePipeline,
    pub(super) layout: wgpu::BindGroupLayout,
    /// The storage bindings the entry point uses; a launch must pass exactly these.
    pub(super) storage: Vec<u32>,
}

/// A bind group is the pipeline plus its storage views; the Params slot is a dynamic offset,
/// so the same bind group serves every dispatch of a repeated step.
#[derive(Hash, PartialEq, Eq)]
pub(super) struct BindKey {
    pub(super) pipe: u64,
    pub(super) bufs: Vec<(u32, u64, u64, u64)>,
}

pub(super) struct Module {
    pub(super) wgpu: wgpu::ShaderModule,
    pub(super) naga: naga::Module,
    pub(super) info: naga::valid::ModuleInfo,
}

/// The cache's part of the runtime.
#[derive(Default)]
pub(super) struct Pipelines {
    pub(super) modules: RefCell<HashMap<&'static str, Rc<Module>>>,
    pub(super) pipes: RefCell<HashMap<PipeKey, Rc<Pipe>>>,
    pub(super) binds: RefCell<HashMap<BindKey, wgpu::BindGroup>>,
    /// Bind-group keys hashed so far.
    pub(super) hashes: Cell<u64>,
}

impl Ctx {
    pub(super) fn module(&self, family: &'static str) -> Result<Rc<Module>> {
        if let Some(m) = self.0.cache.modules.borrow().get(family) {
            return Ok(m.clone());
        }
        let src = shaders::source(family).ok_or_else(|| Error::Gpu { kernel: family.into(), message: "no such shader family".into() })?;
        let (naga, info) = shaders::reflect(family).map_err(|message| Error::Gpu { kernel: format!("{family}.wgsl"), message })?;
        // Natively a validation error is known at once; the browser reports it to the device's
        // error handler, and the next readback's await surfaces it.
        #[cfg(not(target_arch = "wasm32"))]
        let scope = self.0.gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let m = self
            .0
            .gpu
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(family), source: wgpu::ShaderSource::Wgsl(src.into()) });
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu { kernel: format!("{family}.wgsl"), message: super::device::error_chain(&e) });
        }
        let m = Rc::new(Module { wgpu: m, naga, info });
        self.0.cache.modules.borrow_mut().insert(family, m.clone());
        Ok(m)
    }

    pub(super) fn pipe(&self, family: &'static str, entry: &'static str, overrides: Overrides) -> Result<Rc<Pipe>> {
        let key = PipeKey { family, entry, overrides: overrides.iter().map(|(k, v)| (*k, v.to_bits())).collect() };
        if let Some(p) = self.0.cache.pipes.borrow().get(&key) {
            return Ok(p.clone());
        }
        let module = self.module(family)?;
        let bindings = shaders::entry_bindings(&module.naga, &module.info, entry)
            .ok_or_else(|| Error::Gpu { kernel: entry.into(), message: format!("{family}.wgsl has no entry point {entry}") })?;
        let dev = &self.0.gpu.device;
        let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
            .iter()
            .map(|&(binding, kind)| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: match kind {
                    shaders::BindingKind::Params => {
                        wgpu::BindingType::Buffer { ty: wgpu::BufferBindingType::Uniform, has_dynamic_offset: true, min_binding_size: None }
                    }
                    shaders::BindingKind::Uniform => {
                        wgpu::BindingType::Buffer { ty: wgpu::BufferBindingType::Uniform, has_dynamic_offset: false, min_binding_size: None }
                    }
                    shaders::BindingKind::Storage { read_only } => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                },
                count: None,
            })
            .collect();
        // Natively a validation error is known at once; the browser reports it to the device's
        // error handler, and the next readback's await surfaces it.
        #[cfg(not(target_arch = "wasm32"))]
        let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        let layout = dev.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(entry), entries: &entries });
        let pl = dev.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(entry),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&pl),
            module: &module.wgpu,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions { constants: overrides, zero_initialize_workgroup_memory: false },
            cache: None,
        });
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu { kernel: entry.into(), message: super::device::error_chain(&e) });
        }
        self.count(|c| c.pipelines += 1);
        let storage = bindings.iter().filter(|(_, k)| *k != shaders::BindingKind::Params).map(|(b, _)| *b).collect();
        let p = Rc::new(Pipe { id: self.next_id(), pipeline, layout, storage });
        self.0.cache.pipes.borrow_mut().insert(key, p.clone());
        Ok(p)
    }

    /// The bind group of a launch (cached by its pipeline and buffers; a cache miss creates it).
    pub(super) fn bind_group<P: GpuParams>(&self, pipe: &Pipe, l: &Launch<'_, P>) -> Result<wgpu::BindGroup> {
        let mut given: Vec<u32> = l.bindings.iter().map(|(b, _)| *b).collect();
        given.sort_unstable();
        if given != pipe.storage {
            return Err(Error::Gpu { kernel: l.entry.into(), message: format!("launcher binds {given:?}, the entry point uses {:?}", pipe.storage) });
        }
        self.0.cache.hashes.set(self.0.cache.hashes.get() + 1);
        let key = BindKey { pipe: pipe.id, bufs: l.bindings.iter().map(|(b, v)| (*b, v.storage.id, v.offset, v.binding_size())).collect() };
        let mut binds = self.0.cache.binds.borrow_mut();
        if binds.len() > BIND_CACHE_MAX {
            binds.clear();
        }
        let pbytes = std::mem::size_of::<P>() as u64;
        let bg = binds.entry(key).or_insert_with(|| {
            self.count(|c| c.bind_groups += 1);
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &self.0.enc.arena,
                    offset: 0,
                    size: wgpu::BufferSize::new(pbytes),
                }),
            }];
            for (b, v) in l.bindings {
                entries.push(wgpu::BindGroupEntry {
                    binding: *b,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &v.storage.buf,
                        offset: v.offset,
                        size: wgpu::BufferSize::new(v.binding_size()),
                    }),
                });
            }
            self.0.gpu.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(l.entry), layout: &pipe.layout, entries: &entries })
        });
        Ok(bg.clone())
    }

    /// Bind-group keys hashed so far (each non-planned dispatch hashes one; a replayed plan none).
    pub fn bind_keys_hashed(&self) -> u64 {
        self.0.cache.hashes.get()
    }
}
