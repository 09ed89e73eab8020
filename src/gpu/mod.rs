//! The GPU runtime: a [`Ctx`] handle over parts that each own one thing: the device and its
//! limits ([`device`]), the shader and pipeline cache ([`pipelines`]), the buffer pool
//! ([`memory`]), the encoder and plan recorder ([`encoder`]), readbacks ([`readback`]),
//! autotune ([`autotune`], [`tune`]) and the profiler ([`profile`]). It knows no op: launchers
//! hand it an entry point, its override constants, a Params struct and buffers. How a launch
//! runs (precision, a pinned blocking) is the launcher's caller's value, never a switch here.

pub mod autotune;
pub mod device;
pub mod encoder;
pub mod memory;
pub mod params;
pub mod pipelines;
pub mod profile;
pub mod readback;
pub mod shaders;
pub mod tune;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

pub use autotune::Autotune;
pub use device::Gpu;
pub use encoder::Plan;
pub use memory::{Storage, View};
use params::GpuParams;
pub use readback::PendingRead;

use crate::error::{Error, Result};

/// Threads per workgroup of every 1-D kernel (`const WG` in the WGSL files).
pub const WG: u32 = 256;

/// Pipeline-overridable constants, as WGSL `override` names and values.
pub type Overrides = &'static [(&'static str, f64)];

/// How many GPU objects the context has created so far: a loop that repeats the same step
/// should stop adding to these after its first iteration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Created {
    pub pipelines: u64,
    pub bind_groups: u64,
    pub buffers: u64,
}

/// The parts a [`Ctx`] is a handle over.
pub struct Runtime {
    pub gpu: Gpu,
    cache: pipelines::Pipelines,
    mem: memory::Memory,
    enc: encoder::Encoder,
    readback: readback::Readback,
    tune: Autotune,
    prof: profile::Profiler,
    created: Cell<Created>,
    /// What the caller should tell the user, until taken ([`Ctx::take_warnings`]).
    warnings: RefCell<Vec<String>>,
}

/// Cheap to clone; every tensor holds one. The flag: this handle's allocations are filled with
/// NaN ([`Ctx::poisoning`]).
#[derive(Clone)]
pub struct Ctx(pub(crate) Rc<Runtime>, bool);

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
        let rt = Runtime {
            cache: pipelines::Pipelines::default(),
            mem: memory::Memory::new(),
            enc: encoder::Encoder::new(&gpu),
            readback: readback::Readback::default(),
            tune: Autotune::new(&gpu.info),
            prof: profile::Profiler::new(),
            created: Cell::new(Created::default()),
            warnings: RefCell::new(Vec::new()),
            gpu,
        };
        Ctx(Rc::new(rt), false)
    }

    /// Open the adapter `wanted` (index or name substring; see [`device::select_adapter`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(wanted: Option<&str>) -> Result<Ctx> {
        Ok(Ctx::new(Gpu::new(wanted)?))
    }

    /// Open the browser's WebGPU adapter.
    #[cfg(target_arch = "wasm32")]
    pub async fn browser() -> Result<Ctx> {
        Ok(Ctx::new(Gpu::browser().await?))
    }

    pub fn gpu(&self) -> &Gpu {
        &self.0.gpu
    }

    /// A handle on the same runtime whose allocations (and so those of every tensor and op
    /// made through it) are filled with NaN, so a kernel that leaves an element unwritten fails
    /// its check instead of passing on stale zeros. Used by the kernel checks.
    pub fn poisoning(&self) -> Ctx {
        Ctx(self.0.clone(), true)
    }

    /// Whether both handles are on the same runtime (device, caches, pool).
    pub fn same_runtime(&self, other: &Ctx) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    pub fn created(&self) -> Created {
        self.0.created.get()
    }

    pub(super) fn count(&self, f: impl FnOnce(&mut Created)) {
        let mut c = self.0.created.get();
        f(&mut c);
        self.0.created.set(c);
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

    /// Autotune's state: its choices, its budget, what its cross-check found.
    pub fn tuner(&self) -> &Autotune {
        &self.0.tune
    }

    /// What the runtime has to tell the user since the last call (a corrupt tune cache, a bad
    /// `DAE_KERNELS`, a miscompiled candidate): the runtime prints nothing; jobs pass these on
    /// as warnings and `main.rs` prints the rest.
    pub fn take_warnings(&self) -> Vec<String> {
        let mut w = std::mem::take(&mut *self.0.warnings.borrow_mut());
        w.extend(self.0.tune.tuner.borrow_mut().take_warnings());
        w
    }
}

/// Wait for one of the runtime's futures (a readback) on the calling thread: native code's edge
/// (the CLI, training, evaluation); the browser awaits them instead.
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
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
