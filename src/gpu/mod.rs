//! The GPU runtime: [`Ctx`] owns the device, the pipeline and bind-group caches, the buffer pool,
//! the per-submit uniform arena and the open command encoder. It knows no op: launchers hand it
//! an entry point, its override constants, a Params struct and buffers.
//!
//! Work is encoded, not run: each launcher appends a dispatch to ONE compute pass; `flush`
//! writes the uniform arena and submits. Readback flushes and waits. Buffers freed by dropped
//! tensors return to a size-keyed pool and keep their ids, so a loop that allocates the same
//! shapes each step gets the same buffers back and hits the bind-group cache every time.

pub mod device;
pub mod params;
pub mod shaders;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

pub use device::Gpu;
use params::GpuParams;

use crate::error::{Error, Result};

/// Threads per workgroup of every 1-D kernel (`const WG` in the WGSL files).
pub const WG: u32 = 256;
/// Uniform slots per submit; a batch with more dispatches is split into several submits.
const ARENA_SLOTS: usize = 4096;
/// Bind groups kept before the cache is cleared (shapes changed too often to be worth keeping).
const BIND_CACHE_MAX: usize = 50_000;

/// A GPU buffer owned by the pool; dropping the last [`View`] of it returns it there.
pub struct Storage {
    pub(crate) buf: wgpu::Buffer,
    pub(crate) id: u64,
    pub(crate) bytes: u64,
    pool: Weak<RefCell<Pool>>,
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            if let Ok(mut p) = pool.try_borrow_mut() {
                p.free.entry(self.bytes).or_default().insert(self.id, self.buf.clone());
            }
        }
    }
}

/// Free buffers by byte size. `alloc` takes the lowest id of the size: the choice depends only on
/// the set of free buffers, not the order they were freed in, so every warm step of a loop gets
/// the same buffers as the one before (a LIFO stack would permute them from step to step).
#[derive(Default)]
struct Pool {
    free: HashMap<u64, std::collections::BTreeMap<u64, wgpu::Buffer>>,
}

/// A range of f32 (or u32) elements inside a [`Storage`]; what a kernel binding sees.
#[derive(Clone)]
pub struct View {
    pub(crate) storage: Rc<Storage>,
    /// Byte offset, a multiple of the adapter's storage offset alignment.
    pub(crate) offset: u64,
    /// Elements (4 bytes each).
    pub(crate) len: usize,
}

impl View {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Elements [start, start + len) of this view; `start` must keep the binding offset aligned
    /// (a multiple of 64 elements = 256 bytes).
    pub fn slice(&self, start: usize, len: usize) -> Result<View> {
        if start + len > self.len || (start * 4) % 256 != 0 {
            return Err(Error::Msg(format!("view slice {start}..{} of {} elements is out of range or not 256-byte aligned", start + len, self.len)));
        }
        Ok(View { storage: self.storage.clone(), offset: self.offset + start as u64 * 4, len })
    }

    fn binding_size(&self) -> u64 {
        (self.len as u64 * 4).max(4)
    }
}

/// Pipeline-overridable constants, as WGSL `override` names and values.
pub type Overrides = &'static [(&'static str, f64)];

#[derive(Hash, PartialEq, Eq, Clone)]
struct PipeKey {
    entry: &'static str,
    overrides: Vec<(&'static str, u64)>,
}

struct Pipe {
    id: u64,
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    /// The storage bindings the entry point uses; a launch must pass exactly these.
    storage: Vec<u32>,
}

/// A bind group is the pipeline plus its storage views; the Params slot is a dynamic offset,
/// so the same bind group serves every dispatch of a repeated step.
#[derive(Hash, PartialEq, Eq)]
struct BindKey {
    pipe: u64,
    bufs: Vec<(u32, u64, u64, u64)>,
}

struct Encoding {
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    staging: Vec<u8>,
    slots: usize,
    kernels: Vec<&'static str>,
}

pub struct CtxInner {
    pub gpu: Gpu,
    modules: RefCell<HashMap<&'static str, Rc<Module>>>,
    pipes: RefCell<HashMap<PipeKey, Rc<Pipe>>>,
    binds: RefCell<HashMap<BindKey, wgpu::BindGroup>>,
    enc: RefCell<Encoding>,
    pool: Rc<RefCell<Pool>>,
    arena: wgpu::Buffer,
    slot_bytes: u64,
    dummy: RefCell<Option<View>>,
    /// MAP_READ buffers by size, reused by every readback (the training loop reads its log).
    staging: RefCell<HashMap<u64, wgpu::Buffer>>,
    next_id: Cell<u64>,
    poison: Cell<bool>,
    tiled: Cell<bool>,
    dispatches: Cell<u64>,
    created: Cell<Created>,
    /// Per entry point (calls, seconds) while profiling; `None` otherwise.
    profile: RefCell<Option<HashMap<&'static str, (u64, f64)>>>,
}

/// How many GPU objects the context has created so far: a loop that repeats the same step
/// should stop adding to these after its first iteration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Created {
    pub pipelines: u64,
    pub bind_groups: u64,
    pub buffers: u64,
}

struct Module {
    wgpu: wgpu::ShaderModule,
    naga: naga::Module,
    info: naga::valid::ModuleInfo,
}

/// Cheap to clone; every tensor holds one.
#[derive(Clone)]
pub struct Ctx(pub(crate) Rc<CtxInner>);

/// A dispatch: the kernel, its override constants, its Params and its (binding, view) list.
pub struct Launch<'a, P: GpuParams> {
    pub entry: &'static str,
    pub family: &'static str,
    pub overrides: Overrides,
    pub params: &'a P,
    pub bindings: &'a [(u32, &'a View)],
    pub groups: [u32; 3],
}

impl Ctx {
    pub fn new(gpu: Gpu) -> Ctx {
        let slot_bytes = gpu.limits.min_uniform_buffer_offset_alignment.max(256) as u64;
        let arena = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("uniform arena"),
            size: slot_bytes * ARENA_SLOTS as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ctx(Rc::new(CtxInner {
            gpu,
            modules: RefCell::default(),
            pipes: RefCell::default(),
            binds: RefCell::default(),
            enc: RefCell::new(Encoding { encoder: None, pass: None, staging: Vec::new(), slots: 0, kernels: Vec::new() }),
            pool: Rc::default(),
            arena,
            slot_bytes,
            dummy: RefCell::new(None),
            staging: RefCell::default(),
            next_id: Cell::new(1),
            poison: Cell::new(false),
            tiled: Cell::new(true),
            dispatches: Cell::new(0),
            profile: RefCell::new(sync_from_env()),
            created: Cell::new(Created::default()),
        }))
    }

    /// Open the adapter `wanted` (index or name substring; see [`device::select_adapter`]).
    pub fn open(wanted: Option<&str>) -> Result<Ctx> {
        Ok(Ctx::new(Gpu::new(wanted)?))
    }

    pub fn gpu(&self) -> &Gpu {
        &self.0.gpu
    }

    pub fn next_id(&self) -> u64 {
        let id = self.0.next_id.get();
        self.0.next_id.set(id + 1);
        id
    }

    /// Fill every newly allocated buffer with NaN, so a kernel that leaves an element unwritten
    /// fails its check instead of passing on stale zeros. Used by the kernel checks.
    pub fn set_poison(&self, on: bool) {
        self.0.poison.set(on);
    }

    pub fn created(&self) -> Created {
        self.0.created.get()
    }

    fn count(&self, f: impl FnOnce(&mut Created)) {
        let mut c = self.0.created.get();
        f(&mut c);
        self.0.created.set(c);
    }

    /// Use the register-blocked (`_tiled`) kernels where a family has them (default), or the
    /// simple ones (the checks run both; `dae bench` compares them).
    pub fn set_tiled(&self, on: bool) {
        self.0.tiled.set(on);
    }

    /// Profiling: each dispatch is submitted and waited for on its own, and the wall time of
    /// that adds to its entry point's total (slow; it shows where a step's time goes). Turning
    /// it off returns to the DAE_SYNC setting.
    pub fn set_profile(&self, on: bool) -> Result<()> {
        self.flush()?;
        self.0.gpu.wait()?;
        *self.0.profile.borrow_mut() = if on { Some(HashMap::new()) } else { sync_from_env() };
        Ok(())
    }

    /// (entry point, calls, seconds) since `set_profile(true)`, slowest first.
    pub fn profile(&self) -> Vec<(&'static str, u64, f64)> {
        let mut v: Vec<_> = self.0.profile.borrow().iter().flatten().map(|(k, (n, t))| (*k, *n, *t)).collect();
        v.sort_by(|a, b| b.2.total_cmp(&a.2));
        v
    }

    pub fn tiled(&self) -> bool {
        self.0.tiled.get()
    }

    /// Dispatches encoded so far (all submits).
    pub fn dispatch_count(&self) -> u64 {
        self.0.dispatches.get()
    }

    fn check_size(&self, op: &'static str, bytes: u64) -> Result<()> {
        let l = &self.0.gpu.limits;
        let (limit, name) = if l.max_storage_buffer_binding_size < l.max_buffer_size {
            (l.max_storage_buffer_binding_size, "max_storage_buffer_binding_size")
        } else {
            (l.max_buffer_size, "max_buffer_size")
        };
        if bytes > limit {
            return Err(Error::Limit { op, what: "a buffer".into(), need: bytes, limit, limit_name: name });
        }
        Ok(())
    }

    /// A buffer of `len` f32/u32 elements for `op` (whose name the size error carries).
    pub fn alloc(&self, op: &'static str, len: usize) -> Result<View> {
        let need = (len as u64 * 4).max(16);
        // Round to 256 bytes so near sizes share pool buckets and views stay offset-aligned.
        let bytes = need.div_ceil(256) * 256;
        self.check_size(op, need)?;
        let reused = self.0.pool.borrow_mut().free.get_mut(&bytes).and_then(|v| v.pop_first());
        let (id, buf) = match reused {
            Some(x) => x,
            None => {
                let buf = self.0.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(op),
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                self.count(|c| c.buffers += 1);
                (self.next_id(), buf)
            }
        };
        let view = View {
            storage: Rc::new(Storage { buf, id, bytes, pool: Rc::downgrade(&self.0.pool) }),
            offset: 0,
            len,
        };
        if self.0.poison.get() && len > 0 {
            // After a flush: `write_buffer` lands before the next submit, and pending work may
            // still read this recycled buffer.
            self.flush()?;
            self.0.gpu.queue.write_buffer(&view.storage.buf, 0, bytemuck::cast_slice(&vec![f32::NAN; len]));
        }
        Ok(view)
    }

    /// A small buffer bound where a kernel declares a binding the current call does not use
    /// (a conv without bias); never read when its flag is off.
    pub(crate) fn dummy(&self) -> Result<View> {
        if let Some(d) = self.0.dummy.borrow().as_ref() {
            return Ok(d.clone());
        }
        let d = self.alloc("dummy", 4)?;
        *self.0.dummy.borrow_mut() = Some(d.clone());
        Ok(d)
    }

    /// Upload host data into a new buffer. Flushes first: `queue.write_buffer` lands before the
    /// next submit's commands, so pending work that still reads a recycled buffer must go first.
    pub fn upload(&self, op: &'static str, data: &[f32]) -> Result<View> {
        self.upload_bytes(op, bytemuck::cast_slice(data), data.len())
    }

    pub fn upload_u32(&self, op: &'static str, data: &[u32]) -> Result<View> {
        self.upload_bytes(op, bytemuck::cast_slice(data), data.len())
    }

    fn upload_bytes(&self, op: &'static str, bytes: &[u8], len: usize) -> Result<View> {
        let poison = self.0.poison.replace(false);
        let v = self.alloc(op, len);
        self.0.poison.set(poison);
        let v = v?;
        self.flush()?;
        if !bytes.is_empty() {
            self.0.gpu.queue.write_buffer(&v.storage.buf, v.offset, bytes);
        }
        Ok(v)
    }

    /// Overwrite `v` with host data (flushes first, for the same reason as `upload`).
    pub fn write(&self, v: &View, data: &[f32]) -> Result<()> {
        if data.len() != v.len {
            return Err(Error::Msg(format!("write of {} elements into a view of {}", data.len(), v.len)));
        }
        self.flush()?;
        if !data.is_empty() {
            self.0.gpu.queue.write_buffer(&v.storage.buf, v.offset, bytemuck::cast_slice(data));
        }
        Ok(())
    }

    fn module(&self, family: &'static str) -> Result<Rc<Module>> {
        if let Some(m) = self.0.modules.borrow().get(family) {
            return Ok(m.clone());
        }
        let src = shaders::source(family).ok_or_else(|| Error::Gpu { kernel: family.into(), message: "no such shader family".into() })?;
        let (naga, info) = shaders::reflect(family).map_err(|message| Error::Gpu { kernel: format!("{family}.wgsl"), message })?;
        let scope = self.0.gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let m = self.0.gpu.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(family),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu { kernel: format!("{family}.wgsl"), message: device::error_chain(&e) });
        }
        let m = Rc::new(Module { wgpu: m, naga, info });
        self.0.modules.borrow_mut().insert(family, m.clone());
        Ok(m)
    }

    fn pipe(&self, family: &'static str, entry: &'static str, overrides: Overrides) -> Result<Rc<Pipe>> {
        let key = PipeKey { entry, overrides: overrides.iter().map(|(k, v)| (*k, v.to_bits())).collect() };
        if let Some(p) = self.0.pipes.borrow().get(&key) {
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
                    shaders::BindingKind::Params => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: None,
                    },
                    shaders::BindingKind::Storage { read_only } => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                },
                count: None,
            })
            .collect();
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
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu { kernel: entry.into(), message: device::error_chain(&e) });
        }
        self.count(|c| c.pipelines += 1);
        let storage = bindings.iter().filter(|(_, k)| *k != shaders::BindingKind::Params).map(|(b, _)| *b).collect();
        let p = Rc::new(Pipe { id: self.next_id(), pipeline, layout, storage });
        self.0.pipes.borrow_mut().insert(key, p.clone());
        Ok(p)
    }

    /// Workgroup counts for `threads` invocations of a 1-D kernel with `wg` threads per group,
    /// folded into 2-D past the per-dimension limit (the kernel linearises `gid.y * nwg.x`).
    pub fn grid(&self, op: &'static str, threads: u64, wg: u32) -> Result<[u32; 3]> {
        let groups = threads.div_ceil(wg as u64).max(1);
        let maxd = self.0.gpu.limits.max_compute_workgroups_per_dimension as u64;
        let x = groups.min(maxd);
        let y = groups.div_ceil(x);
        if y > maxd {
            return Err(Error::Limit {
                op,
                what: format!("a dispatch of {threads} invocations"),
                need: threads * 4,
                limit: maxd * maxd * wg as u64 * 4,
                limit_name: "max_compute_workgroups_per_dimension",
            });
        }
        Ok([x as u32, y as u32, 1])
    }

    /// Encode one dispatch. Each dispatch gets its own uniform slot (rule 6 of STYLE.md).
    pub fn dispatch<P: GpuParams>(&self, l: Launch<'_, P>) -> Result<()> {
        let pipe = self.pipe(l.family, l.entry, l.overrides)?;
        let pbytes = bytemuck::bytes_of(l.params);
        debug_assert!(pbytes.len() as u64 <= self.0.slot_bytes);
        if self.0.enc.borrow().slots >= ARENA_SLOTS {
            self.flush()?;
        }
        let mut enc = self.0.enc.borrow_mut();
        let slot = enc.slots as u64 * self.0.slot_bytes;
        enc.slots += 1;
        let end = slot as usize + pbytes.len();
        if enc.staging.len() < end {
            enc.staging.resize(end, 0);
        }
        enc.staging[slot as usize..end].copy_from_slice(pbytes);
        enc.kernels.push(l.entry);

        let mut given: Vec<u32> = l.bindings.iter().map(|(b, _)| *b).collect();
        given.sort_unstable();
        if given != pipe.storage {
            return Err(Error::Gpu {
                kernel: l.entry.into(),
                message: format!("launcher binds {given:?}, the entry point uses {:?}", pipe.storage),
            });
        }
        let key = BindKey {
            pipe: pipe.id,
            bufs: l.bindings.iter().map(|(b, v)| (*b, v.storage.id, v.offset, v.binding_size())).collect(),
        };
        let mut binds = self.0.binds.borrow_mut();
        if binds.len() > BIND_CACHE_MAX {
            binds.clear();
        }
        let created = &self.0.created;
        let bg = binds.entry(key).or_insert_with(|| {
            let mut c = created.get();
            c.bind_groups += 1;
            created.set(c);
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &self.0.arena,
                    offset: 0,
                    size: wgpu::BufferSize::new(pbytes.len() as u64),
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
            self.0.gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(l.entry),
                layout: &pipe.layout,
                entries: &entries,
            })
        });
        if enc.encoder.is_none() {
            enc.encoder = Some(self.0.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("dae step") }));
        }
        if enc.pass.is_none() {
            let pass = enc.encoder.as_mut().map(|e| {
                e.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("dae kernels"), timestamp_writes: None })
                    .forget_lifetime()
            });
            enc.pass = pass;
        }
        let pass = enc.pass.as_mut().ok_or_else(|| Error::Msg("no compute pass".into()))?;
        pass.set_pipeline(&pipe.pipeline);
        pass.set_bind_group(0, &*bg, &[slot as u32]);
        pass.dispatch_workgroups(l.groups[0], l.groups[1], l.groups[2]);
        self.0.dispatches.set(self.0.dispatches.get() + 1);
        drop(binds);
        drop(enc);
        if self.0.profile.borrow().is_some() {
            let t0 = std::time::Instant::now();
            self.flush()?;
            self.0.gpu.wait()?;
            let dt = t0.elapsed().as_secs_f64();
            if let Some(m) = self.0.profile.borrow_mut().as_mut() {
                let e = m.entry(l.entry).or_default();
                e.0 += 1;
                e.1 += dt;
            }
        }
        Ok(())
    }

    /// Submit everything encoded so far (one `queue.submit`). Does not wait.
    pub fn flush(&self) -> Result<()> {
        let mut enc = self.0.enc.borrow_mut();
        enc.pass = None;
        let Some(encoder) = enc.encoder.take() else { return Ok(()) };
        let used = enc.slots * self.0.slot_bytes as usize;
        if used > 0 {
            self.0.gpu.queue.write_buffer(&self.0.arena, 0, &enc.staging[..used.min(enc.staging.len())]);
        }
        enc.slots = 0;
        let kernels = std::mem::take(&mut enc.kernels);
        drop(enc);
        self.0.gpu.queue.submit([encoder.finish()]);
        self.0.gpu.check(|| summarize(&kernels))
    }

    /// Flush, copy `v` to a mappable buffer and read it back (waits for the GPU).
    pub fn read_bytes(&self, v: &View) -> Result<Vec<u8>> {
        self.flush()?;
        let size = (v.len as u64 * 4).max(4);
        let dev = &self.0.gpu.device;
        let staging = {
            let mut cache = self.0.staging.borrow_mut();
            let b = cache.entry(size).or_insert_with(|| {
                self.count(|c| c.buffers += 1);
                dev.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback"),
                    size,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            });
            b.clone()
        };
        let mut encoder = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        encoder.copy_buffer_to_buffer(&v.storage.buf, v.offset, &staging, 0, size);
        self.0.gpu.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.0.gpu.wait()?;
        rx.recv()
            .map_err(|_| Error::Msg("readback: map callback never ran".into()))?
            .map_err(|e| Error::Gpu { kernel: "readback".into(), message: e.to_string() })?;
        let data = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu { kernel: "readback".into(), message: e.to_string() })?
            .to_vec();
        staging.unmap();
        Ok(data[..v.len * 4].to_vec())
    }

    pub fn read(&self, v: &View) -> Result<Vec<f32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.read_bytes(v)?))
    }

    pub fn read_u32(&self, v: &View) -> Result<Vec<u32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.read_bytes(v)?))
    }
}

/// DAE_SYNC=1: every dispatch submitted on its own (the profiling path), so a GPU error names
/// its kernel.
fn sync_from_env() -> Option<HashMap<&'static str, (u64, f64)>> {
    std::env::var_os("DAE_SYNC").filter(|v| !v.is_empty() && v != "0").map(|_| HashMap::new())
}

fn summarize(kernels: &[&'static str]) -> String {
    if let [one] = kernels {
        return one.to_string();
    }
    let mut uniq: Vec<&str> = Vec::new();
    for k in kernels {
        if !uniq.contains(k) {
            uniq.push(k);
        }
    }
    format!("one of [{}] (batch of {} dispatches; DAE_SYNC=1 submits them one by one to name the kernel)", uniq.join(", "), kernels.len())
}
