//! The wgpu instance, adapter choice and device: limits requested explicitly, features detected,
//! and wgpu's errors routed into `Result`s instead of its default panic.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// Features the engine uses when the adapter has them; none is required.
const OPTIONAL_FEATURES: wgpu::Features = wgpu::Features::SHADER_F16.union(wgpu::Features::TIMESTAMP_QUERY).union(wgpu::Features::SUBGROUP);

/// An error with its whole `source()` chain: wgpu's top-level Display is only "Validation Error".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

pub struct Gpu {
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// The limits the device was opened with (what validation enforces).
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// Errors wgpu reported outside an error scope; drained after each submit.
    uncaptured: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    #[cfg(not(target_arch = "wasm32"))]
    {
        desc.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    }
    #[cfg(target_arch = "wasm32")]
    {
        desc.backends = wgpu::Backends::BROWSER_WEBGPU;
    }
    wgpu::Instance::new(desc)
}

/// Every adapter wgpu can see, in its enumeration order (the order `--adapter <index>` uses).
#[cfg(not(target_arch = "wasm32"))]
pub fn adapters() -> Vec<wgpu::Adapter> {
    pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()))
}

#[cfg(not(target_arch = "wasm32"))]
fn type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

pub fn describe(i: usize, info: &wgpu::AdapterInfo) -> String {
    format!("[{i}] {} ({:?}, {:?}, driver {} {})", info.name, info.backend, info.device_type, info.driver, info.driver_info)
}

/// Pick an adapter: `wanted` is an index into [`adapters`] or a case-insensitive substring of
/// the adapter name; `None` prefers a discrete GPU, then integrated, virtual, other, CPU.
#[cfg(not(target_arch = "wasm32"))]
pub fn select_adapter(wanted: Option<&str>) -> Result<wgpu::Adapter> {
    let mut all = adapters();
    if all.is_empty() {
        return Err(Error::NoAdapter);
    }
    match wanted.map(str::trim).filter(|w| !w.is_empty()) {
        Some(w) => {
            let found = match w.parse::<usize>() {
                Ok(i) if i < all.len() => Some(i),
                Ok(_) => None,
                Err(_) => {
                    let lw = w.to_lowercase();
                    all.iter().position(|a| a.get_info().name.to_lowercase().contains(&lw))
                }
            };
            match found {
                Some(i) => Ok(all.swap_remove(i)),
                None => Err(Error::AdapterNotFound {
                    wanted: w.to_string(),
                    available: all.iter().enumerate().map(|(i, a)| describe(i, &a.get_info())).collect::<Vec<_>>().join("\n"),
                }),
            }
        }
        None => {
            all.sort_by_key(|a| type_rank(a.get_info().device_type));
            Ok(all.swap_remove(0))
        }
    }
}

/// The limits we ask for: WebGPU's downlevel baseline, raised to what the adapter offers for the
/// few limits a trainer leans on (buffer sizes, workgroup sizes, storage buffers per stage).
fn required_limits(a: &wgpu::Limits) -> wgpu::Limits {
    let mut l = wgpu::Limits::downlevel_defaults();
    l.max_buffer_size = a.max_buffer_size;
    l.max_storage_buffer_binding_size = a.max_storage_buffer_binding_size;
    l.max_storage_buffers_per_shader_stage = a.max_storage_buffers_per_shader_stage;
    l.max_compute_workgroup_storage_size = a.max_compute_workgroup_storage_size;
    l.max_compute_invocations_per_workgroup = a.max_compute_invocations_per_workgroup;
    l.max_compute_workgroup_size_x = a.max_compute_workgroup_size_x;
    l.max_compute_workgroup_size_y = a.max_compute_workgroup_size_y;
    l.max_compute_workgroup_size_z = a.max_compute_workgroup_size_z;
    l.max_compute_workgroups_per_dimension = a.max_compute_workgroups_per_dimension;
    l.max_bind_groups = a.max_bind_groups.min(4);
    // The conv's uniform weight blocks (64 KiB) where the adapter allows them.
    l.max_uniform_buffer_binding_size = a.max_uniform_buffer_binding_size;
    l
}

/// A device limit dae needs: its name, the least value dae's kernels work with, and how to read
/// it from wgpu's limits.
pub struct Requirement {
    pub name: &'static str,
    pub need: u64,
    pub get: fn(&wgpu::Limits) -> u64,
}

/// Every limit dae relies on, with the least value it needs (the kernels' workgroup sizes,
/// bindings per kernel, workgroup memory, uniform slots); `dae devices` lists them beside the
/// adapter's, and opening an adapter below one is an error naming it.
pub const REQUIREMENTS: &[Requirement] = &[
    Requirement { name: "max_compute_invocations_per_workgroup", need: 256, get: |l| l.max_compute_invocations_per_workgroup as u64 },
    Requirement { name: "max_compute_workgroup_size_x", need: 256, get: |l| l.max_compute_workgroup_size_x as u64 },
    Requirement { name: "max_compute_workgroups_per_dimension", need: 65_535, get: |l| l.max_compute_workgroups_per_dimension as u64 },
    Requirement { name: "max_compute_workgroup_storage_size", need: 16_384, get: |l| l.max_compute_workgroup_storage_size as u64 },
    Requirement { name: "max_storage_buffers_per_shader_stage", need: 8, get: |l| l.max_storage_buffers_per_shader_stage as u64 },
    Requirement { name: "max_bind_groups", need: 1, get: |l| l.max_bind_groups as u64 },
    Requirement {
        name: "max_dynamic_uniform_buffers_per_pipeline_layout",
        need: 1,
        get: |l| l.max_dynamic_uniform_buffers_per_pipeline_layout as u64,
    },
    Requirement { name: "max_uniform_buffer_binding_size", need: 256, get: |l| l.max_uniform_buffer_binding_size },
    // Whole batches are chunked to fit; a buffer of one 28x28 model's activations must fit.
    Requirement { name: "max_storage_buffer_binding_size", need: 16 << 20, get: |l| l.max_storage_buffer_binding_size },
    Requirement { name: "max_buffer_size", need: 64 << 20, get: |l| l.max_buffer_size },
];

/// The requirements `limits` falls short of, as "name: the adapter has X, dae needs Y".
pub fn unmet(limits: &wgpu::Limits) -> Vec<String> {
    REQUIREMENTS
        .iter()
        .filter(|r| (r.get)(limits) < r.need)
        .map(|r| format!("{}: the adapter has {}, dae needs {}", r.name, (r.get)(limits), r.need))
        .collect()
}

impl Gpu {
    /// Open the adapter chosen by `wanted` (see [`select_adapter`]); `DAE_ADAPTER` is read by the CLI.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(wanted: Option<&str>) -> Result<Gpu> {
        pollster::block_on(Gpu::on(select_adapter(wanted)?))
    }

    /// Open the browser's WebGPU adapter (the one it offers for high performance).
    #[cfg(target_arch = "wasm32")]
    pub async fn browser() -> Result<Gpu> {
        let adapter = instance()
            .request_adapter(&wgpu::RequestAdapterOptions { power_preference: wgpu::PowerPreference::HighPerformance, ..Default::default() })
            .await
            .map_err(|_| Error::NoAdapter)?;
        Gpu::on(adapter).await
    }

    /// A device on `adapter` with the limits dae needs and the optional features it has.
    async fn on(adapter: wgpu::Adapter) -> Result<Gpu> {
        let info = adapter.get_info();
        let alimits = adapter.limits();
        let missing = unmet(&alimits);
        if !missing.is_empty() {
            return Err(Error::RequestDevice { adapter: info.name.clone(), message: format!("limits below what dae needs: {}", missing.join("; ")) });
        }
        let features = adapter.features() & OPTIONAL_FEATURES;
        let limits = required_limits(&alimits);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("dae"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::RequestDevice { adapter: info.name.clone(), message: e.to_string() })?;

        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(error_chain(&e));
            }
        }));
        let lost = Arc::new(Mutex::new(None));
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut l) = lost_sink.lock() {
                *l = Some(format!("{reason:?}: {msg}"));
            }
        });
        Ok(Gpu { adapter, device, queue, info, limits, features, uncaptured, lost })
    }

    pub fn has_f16(&self) -> bool {
        self.features.contains(wgpu::Features::SHADER_F16)
    }

    /// Whether subgroup kernels that broadcast from lanes 0 .. `lanes` may run: the adapter has
    /// subgroups and none is narrower than `lanes`.
    pub fn has_subgroups_of(&self, lanes: u32) -> bool {
        self.features.contains(wgpu::Features::SUBGROUP) && self.info.subgroup_min_size >= lanes
    }

    /// Whether a uniform binding of `bytes` is within the device's limit.
    pub fn has_uniform_binding_of(&self, bytes: u64) -> bool {
        self.limits.max_uniform_buffer_binding_size >= bytes
    }

    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Turn errors wgpu reported since the last check into one `Err` naming `context`
    /// (the kernels of the batch that was just submitted).
    pub fn check(&self, context: impl FnOnce() -> String) -> Result<()> {
        if let Some(l) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(Error::DeviceLost(l));
        }
        let errs: Vec<String> = match self.uncaptured.lock() {
            Ok(mut v) => v.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        if errs.is_empty() { Ok(()) } else { Err(Error::Gpu { kernel: context(), message: errs.join("\n") }) }
    }

    /// Block until the queue is idle (natively; in the browser a device cannot be waited on, and
    /// this only reports the errors that arrived so far: readbacks are what waits there).
    pub fn wait(&self) -> Result<()> {
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::DeviceLost(e.to_string()))?;
        self.check(|| "wait".into())
    }
}
