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
pub mod tune;

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
        if let Some(pool) = self.pool.upgrade()
            && let Ok(mut p) = pool.try_borrow_mut()
        {
            p.free.entry(self.bytes).or_default().insert(self.id, self.buf.clone());
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
        if start + len > self.len || !(start * 4).is_multiple_of(256) {
            return Err(Error::Msg(format!("view slice {start}..{} of {} elements is out of range or not 256-byte aligned", start + len, self.len)));
        }
        Ok(View { storage: self.storage.clone(), offset: self.offset + start as u64 * 4, len })
    }

    /// Whether both name exactly the same elements of the same buffer.
    pub fn same(&self, other: &View) -> bool {
        Rc::ptr_eq(&self.storage, &other.storage) && self.offset == other.offset && self.len == other.len
    }

    fn binding_size(&self) -> u64 {
        (self.len as u64 * 4).max(4)
    }
}

/// Pipeline-overridable constants, as WGSL `override` names and values.
pub type Overrides = &'static [(&'static str, f64)];

#[derive(Hash, PartialEq, Eq, Clone)]
struct PipeKey {
    family: &'static str,
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
    /// Two MAP_READ buffers per size for reads that do not wait, used in turn.
    async_staging: RefCell<HashMap<u64, (usize, [wgpu::Buffer; 2])>>,
    next_id: Cell<u64>,
    dispatches: Cell<u64>,
    created: Cell<Created>,
    hashes: Cell<u64>,
    recording: RefCell<Option<PlanBuilder>>,
    /// Per entry point (calls, seconds) while profiling; `None` otherwise.
    profile: RefCell<Option<HashMap<&'static str, (u64, f64)>>>,
    /// GPU timestamps around every compute pass while on (`set_gpu_timer`).
    timer: RefCell<Option<Timer>>,
    tuner: RefCell<tune::Tuner>,
    /// The newest submission, and the one `pace` waits for next.
    submitted: RefCell<Option<wgpu::SubmissionIndex>>,
    paced: RefCell<Option<wgpu::SubmissionIndex>>,
    /// Autotune's cross-check findings ([`Ctx::miscompiles`]).
    miscompiles: RefCell<Vec<String>>,
    planted: Cell<Option<&'static str>>,
    /// What the caller should tell the user, until taken ([`Ctx::take_warnings`]).
    warnings: RefCell<Vec<String>>,
}

/// Timestamp queries at the start and end of each compute pass, resolved and read back at each
/// submit (which then waits: benchmarks only), summed into `ns`.
struct Timer {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    ns: f64,
    passes: u64,
}

/// One recorded dispatch: its pipeline, its bind group (Params bound with a dynamic offset) and
/// its workgroup counts.
struct Planned {
    pipe: Rc<Pipe>,
    bind: wgpu::BindGroup,
    groups: [u32; 3],
    entry: &'static str,
    /// Bytes of its Params (what a slot's setter must match).
    params_len: usize,
}

#[derive(Default)]
struct PlanBuilder {
    dispatches: Vec<Planned>,
    params: Vec<u8>,
    /// Every buffer bound, by id, with its size.
    buffers: HashMap<u64, u64>,
    /// Buffers the host filled during the recording (uploads): the plan reads them every replay,
    /// so they must not return to the pool.
    keep: Vec<View>,
    /// `Ctx::tune_deferrals` when the recording began.
    deferrals: u64,
    /// The slot names of [`Ctx::named`] open now, innermost last, and the dispatches each name
    /// holds.
    scopes: Vec<String>,
    slots: HashMap<String, Vec<usize>>,
}

/// A recorded sequence of dispatches (a training step, an evaluation batch), replayed with
/// [`Ctx::replay`]. Between replays only its Params change ([`Plan::patch`]): the learning rate,
/// the step, the noise keys, offsets.
pub struct Plan {
    dispatches: Vec<Planned>,
    /// Per-step values by name ([`Ctx::named`]): the dispatches whose Params a replay rewrites.
    slots: HashMap<String, Vec<usize>>,
    params: Vec<u8>,
    keep: Vec<View>,
    /// Bytes per Params slot.
    slot: u64,
    /// Bytes of every distinct buffer the plan binds: the memory one replay needs.
    pub peak_bytes: u64,
    /// The recording ran shapes the autotune budget left untimed (see [`Ctx::retune`]).
    untuned: bool,
}

impl Plan {
    pub fn len(&self) -> usize {
        self.dispatches.len()
    }
    pub fn is_empty(&self) -> bool {
        self.dispatches.is_empty()
    }

    /// Rewrite the Params of the dispatches recorded under the slot `name` ([`Ctx::named`]);
    /// `f` gets the index of the dispatch within the slot (recording order) and its Params. An
    /// error when the recording named no such slot, or when `P` is not those dispatches' Params.
    pub fn set<P: GpuParams>(&mut self, name: &str, mut f: impl FnMut(usize, &mut P)) -> Result<()> {
        let n = std::mem::size_of::<P>();
        let Some(idx) = self.slots.get(name) else {
            let mut known: Vec<&str> = self.slots.keys().map(String::as_str).collect();
            known.sort();
            return Err(Error::Msg(format!("the plan has no slot {name:?} (its recording named: {})", known.join(", "))));
        };
        for (k, &i) in idx.iter().enumerate() {
            let d = &self.dispatches[i];
            if d.params_len != n {
                return Err(Error::Msg(format!(
                    "slot {name:?}: dispatch {k} ({}) has {} bytes of Params, not the {n} of {}",
                    d.entry,
                    d.params_len,
                    std::any::type_name::<P>()
                )));
            }
            let at = i * self.slot as usize;
            let mut p: P = bytemuck::pod_read_unaligned(&self.params[at..at + n]);
            f(k, &mut p);
            self.params[at..at + n].copy_from_slice(bytemuck::bytes_of(&p));
        }
        Ok(())
    }

    /// Whether the recording named the slot `name`.
    pub fn has_slot(&self, name: &str) -> bool {
        self.slots.contains_key(name)
    }

    /// The slot names the recording gave, sorted.
    pub fn slot_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.slots.keys().map(String::as_str).collect();
        v.sort();
        v
    }

    /// The kept buffers (see [`Ctx::record`]).
    pub fn kept(&self) -> usize {
        self.keep.len()
    }

    /// Whether the recording ran kernels at shapes autotune had not timed (their first or
    /// best-so-far candidate): a later recording may run faster ones.
    pub fn untuned(&self) -> bool {
        self.untuned
    }
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

/// Cheap to clone; every tensor holds one. The flag: this handle's allocations are filled with
/// NaN ([`Ctx::poisoning`]).
#[derive(Clone)]
pub struct Ctx(pub(crate) Rc<CtxInner>, bool);

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
        let tuner = RefCell::new(tune::Tuner::new(&gpu.info));
        Ctx(
            Rc::new(CtxInner {
                tuner,
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
                async_staging: RefCell::default(),
                next_id: Cell::new(1),
                warnings: RefCell::new(Vec::new()),
                submitted: RefCell::new(None),
                paced: RefCell::new(None),
                miscompiles: RefCell::new(Vec::new()),
                planted: Cell::new(None),
                dispatches: Cell::new(0),
                profile: RefCell::new(sync_from_env()),
                created: Cell::new(Created::default()),
                hashes: Cell::new(0),
                recording: RefCell::new(None),
                timer: RefCell::new(None),
            }),
            false,
        )
    }

    /// GPU timing: while on, every compute pass writes a timestamp at its start and end and
    /// every submit waits for them; [`Ctx::gpu_seconds`] sums the passes. Returns whether the
    /// adapter has timestamp queries (without them nothing is timed: use the wall clock).
    pub fn set_gpu_timer(&self, on: bool) -> Result<bool> {
        self.flush()?;
        if !on || !self.0.gpu.has_timestamps() {
            *self.0.timer.borrow_mut() = None;
            return Ok(false);
        }
        let dev = &self.0.gpu.device;
        let buf = |label, usage| dev.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size: 16, usage, mapped_at_creation: false });
        *self.0.timer.borrow_mut() = Some(Timer {
            set: dev.create_query_set(&wgpu::QuerySetDescriptor { label: Some("dae timer"), ty: wgpu::QueryType::Timestamp, count: 2 }),
            resolve: buf("timer resolve", wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC),
            read: buf("timer read", wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
            ns: 0.0,
            passes: 0,
        });
        Ok(true)
    }

    /// (seconds, passes) the GPU spent in timed compute passes since the last call.
    pub fn gpu_seconds(&self) -> Result<(f64, u64)> {
        self.flush()?;
        Ok(self.0.timer.borrow_mut().as_mut().map_or((0.0, 0), |t| (std::mem::take(&mut t.ns) * 1e-9, std::mem::take(&mut t.passes))))
    }

    /// The pass's timestamp writes while timing.
    fn timestamps<'a>(t: &'a Option<Timer>) -> Option<wgpu::ComputePassTimestampWrites<'a>> {
        t.as_ref().map(|t| wgpu::ComputePassTimestampWrites {
            query_set: &t.set,
            beginning_of_pass_write_index: Some(0),
            end_of_pass_write_index: Some(1),
        })
    }

    /// Submit `encoder` (its pass ended); while timing, resolve the pass's two timestamps,
    /// wait, and add the difference.
    fn submit_timed(&self, mut encoder: wgpu::CommandEncoder) -> Result<()> {
        let mut timer = self.0.timer.borrow_mut();
        let Some(t) = timer.as_mut() else {
            *self.0.submitted.borrow_mut() = Some(self.0.gpu.queue.submit([encoder.finish()]));
            return Ok(());
        };
        encoder.resolve_query_set(&t.set, 0..2, &t.resolve, 0);
        encoder.copy_buffer_to_buffer(&t.resolve, 0, &t.read, 0, 16);
        *self.0.submitted.borrow_mut() = Some(self.0.gpu.queue.submit([encoder.finish()]));
        let (tx, rx) = std::sync::mpsc::channel();
        t.read.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.0.gpu.wait()?;
        rx.recv()
            .map_err(|_| Error::Msg("timer: map callback never ran".into()))?
            .map_err(|e| Error::Gpu { kernel: "timer".into(), message: e.to_string() })?;
        let stamps: Vec<u64> =
            bytemuck::pod_collect_to_vec(&t.read.get_mapped_range(..).map_err(|e| Error::Gpu { kernel: "timer".into(), message: e.to_string() })?);
        t.read.unmap();
        t.ns += stamps[1].saturating_sub(stamps[0]) as f64 * self.0.gpu.queue.get_timestamp_period() as f64;
        t.passes += 1;
        Ok(())
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

    fn count(&self, f: impl FnOnce(&mut Created)) {
        let mut c = self.0.created.get();
        f(&mut c);
        self.0.created.set(c);
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

    /// Which of `labels` (a kernel's candidates at one shape, first = the default) to run: pinned
    /// by a checkpoint, else cached for this adapter and driver, else timed now: `run(i)` encodes
    /// candidate i once on scratch outputs it initialises the same way each time, and returns
    /// them; each runs alone on the GPU, once to warm up (compile) and twice timed; the fastest
    /// wins and is cached. Past the process's tuning budget the first label runs, untuned and not
    /// cached, and the shape waits for [`Ctx::retune`]. A plan being recorded is set aside while
    /// candidates run, so nothing of the tuning enters it.
    ///
    /// The candidates compute the same bits by design, so the warm-up outputs are compared: a
    /// candidate that disagrees is judged against `simple()` (the family's simple kernel on the
    /// same scratch outputs) where there is one, by majority where not, and the wrong ones are
    /// dropped with a warning naming kernel, shape and adapter ([`Ctx::miscompiles`]): a
    /// miscompile check on every adapter dae tunes on.
    pub fn tuned(
        &self,
        kernel: &str,
        shape: &str,
        labels: &[&'static str],
        mut run: impl FnMut(usize) -> Result<Vec<View>>,
        simple: Option<&mut dyn FnMut() -> Result<Vec<View>>>,
    ) -> Result<usize> {
        let short = format!("{kernel} | {shape}");
        let known = self.0.tuner.borrow().known(&short, labels);
        let pick = match known {
            Some(i) => {
                // A shape the budget left untuned: with budget again it was known after all (the
                // cache: another process timed it), without, one more untuned use.
                let mut t = self.0.tuner.borrow_mut();
                if t.is_deferred(&short) {
                    if t.has_budget() { t.undefer(&short) } else { t.defer(&short) }
                }
                i
            }
            None if labels.len() < 2 => 0,
            None if !self.0.tuner.borrow().has_budget() => {
                self.0.tuner.borrow_mut().defer(&short);
                0
            }
            None => {
                let t0 = std::time::Instant::now();
                // A warm-up run of each candidate (its pipeline compiled), then two timed rounds
                // over all of them in turn: a drift of the adapter's speed (a CPU host's other
                // load) then touches every candidate alike instead of favouring the ones timed
                // in a fast moment. The best of each candidate's two runs counts.
                let mut warm = 0;
                // A shape cut short before is timed whole now, however long that takes: a
                // shape longer than one slice would otherwise never finish.
                let whole = self.0.tuner.borrow().is_deferred(&short);
                let mut outputs = Vec::new();
                for (i, label) in labels.iter().enumerate() {
                    // A candidate whose three runs would go past the budget is not started: the
                    // shape uses the best so far this time and is tuned whole by a later run.
                    let e = t0.elapsed().as_secs_f64();
                    if i > 0 && !whole && !self.0.tuner.borrow().fits(3.0 * e / i as f64 * (i + 1) as f64) {
                        break;
                    }
                    // Read inside: a plan being recorded is set aside there.
                    let mut bits = Vec::new();
                    self.run_alone(|| {
                        bits = self.output_bits(&run(i)?, label)?;
                        Ok(())
                    })?;
                    outputs.push(bits);
                    warm += 1;
                }
                let wrong = self.cross_check(kernel, shape, &labels[..warm], &outputs, simple)?;
                let mut best_s = vec![f64::INFINITY; warm];
                for _ in 0..2 {
                    for (i, b) in best_s.iter_mut().enumerate() {
                        if !wrong.contains(&i) {
                            *b = b.min(self.run_alone(|| run(i).map(drop))?);
                        }
                    }
                }
                let times: Vec<(String, f64)> = labels.iter().zip(&best_s).map(|(l, t)| (l.to_string(), t * 1e3)).collect();
                let best = times.iter().enumerate().min_by(|a, b| a.1.1.total_cmp(&b.1.1)).map_or(0, |(i, _)| i);
                let spent = t0.elapsed().as_secs_f64();
                if times.len() == labels.len() {
                    self.0.tuner.borrow_mut().record(&short, times, spent);
                } else {
                    self.0.tuner.borrow_mut().spend(spent);
                    self.0.tuner.borrow_mut().defer(&short);
                }
                best
            }
        };
        self.0.tuner.borrow_mut().note_used(&short, labels[pick]);
        Ok(pick)
    }

    /// The bits of a candidate's outputs (its scratch views, read back), for [`Ctx::cross_check`]
    /// (a planted miscompile flips the lowest bit of its candidate's first value).
    fn output_bits(&self, views: &[View], label: &str) -> Result<Vec<u32>> {
        let mut bits = Vec::new();
        for v in views {
            bits.extend(self.read(v)?.iter().map(|x| x.to_bits()));
        }
        if self.0.planted.get() == Some(label)
            && let Some(b) = bits.first_mut()
        {
            *b ^= 1;
        }
        Ok(bits)
    }

    /// Tests of autotune's cross-check: the candidate `label` reports its outputs with one bit
    /// flipped, as a miscompiled kernel would.
    pub fn plant_miscompile(&self, label: Option<&'static str>) {
        self.0.planted.set(label);
    }

    /// Autotune from scratch in this context: no cache file read or written, nothing known,
    /// `budget_s` seconds of timing.
    pub fn tune_afresh(&self, budget_s: f64) {
        let i = &self.0.gpu.info;
        *self.0.tuner.borrow_mut() = tune::Tuner::at(None, &format!("{} | {} {}", i.name, i.driver, i.driver_info), budget_s);
    }

    /// The candidates (by index into `labels`) whose outputs are wrong, each reported. All
    /// agreeing: none. Otherwise the candidates fall into groups of identical bits; with a
    /// simple kernel, the group nearest its output (relative max difference) is right; without,
    /// the largest group, and a tie drops nothing but is reported.
    fn cross_check(
        &self,
        kernel: &str,
        shape: &str,
        labels: &[&str],
        outputs: &[Vec<u32>],
        simple: Option<&mut dyn FnMut() -> Result<Vec<View>>>,
    ) -> Result<Vec<usize>> {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (i, o) in outputs.iter().enumerate() {
            match groups.iter_mut().find(|g| outputs[g[0]] == *o) {
                Some(g) => g.push(i),
                None => groups.push(vec![i]),
            }
        }
        if groups.len() < 2 {
            return Ok(Vec::new());
        }
        let names = |g: &[usize]| g.iter().map(|&i| labels[i]).collect::<Vec<_>>().join(", ");
        let (right, how) = match simple {
            Some(f) => {
                let mut want: Vec<f32> = Vec::new();
                self.run_alone(|| {
                    want = self.output_bits(&f()?, "")?.into_iter().map(f32::from_bits).collect();
                    Ok(())
                })?;
                let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
                let dist = |g: &Vec<usize>| {
                    outputs[g[0]].iter().zip(&want).fold(0f32, |m, (b, w)| {
                        let d = (f32::from_bits(*b) - w).abs() / scale;
                        if d.is_nan() { f32::INFINITY } else { m.max(d) }
                    })
                };
                let best = groups.iter().min_by(|a, b| dist(a).total_cmp(&dist(b))).cloned().unwrap_or_default();
                (best.clone(), format!("the simple kernel agrees with {} (max difference {:.1e} of its largest value)", names(&best), dist(&best)))
            }
            None => {
                let most = groups.iter().map(Vec::len).max().unwrap_or(0);
                let top: Vec<&Vec<usize>> = groups.iter().filter(|g| g.len() == most).collect();
                if top.len() > 1 {
                    let msg = format!(
                        "{kernel} at {shape} on {}: its candidates disagree ({}) and no majority decides which are right; none dropped",
                        self.0.gpu.info.name,
                        groups.iter().map(|g| format!("[{}]", names(g))).collect::<Vec<_>>().join(" vs ")
                    );
                    self.0.warnings.borrow_mut().push(format!("autotune: {msg}"));
                    self.0.miscompiles.borrow_mut().push(msg);
                    return Ok(Vec::new());
                }
                (top[0].clone(), format!("the majority ({}) agrees", names(top[0])))
            }
        };
        let wrong: Vec<usize> = (0..outputs.len()).filter(|i| !right.contains(i)).collect();
        let msg = format!(
            "{kernel} at {shape} on {} ({}): {} computed other bits than the rest ({how}); dropped for this shape. Please report this adapter and driver",
            self.0.gpu.info.name,
            self.0.gpu.info.driver_info,
            names(&wrong)
        );
        self.0.warnings.borrow_mut().push(format!("autotune: {msg}"));
        self.0.miscompiles.borrow_mut().push(msg);
        Ok(wrong)
    }

    /// What the runtime has to tell the user since the last call (a corrupt tune cache, a bad
    /// `DAE_KERNELS`, a miscompiled candidate): the runtime prints nothing; jobs pass these on
    /// as warnings and `main.rs` prints the rest.
    pub fn take_warnings(&self) -> Vec<String> {
        let mut w = std::mem::take(&mut *self.0.warnings.borrow_mut());
        w.extend(self.0.tuner.borrow_mut().take_warnings());
        w
    }

    /// What autotune's cross-check found wrong in this process (each also a warning).
    pub fn miscompiles(&self) -> Vec<String> {
        self.0.miscompiles.borrow().clone()
    }

    /// Run `f`'s dispatches on their own (any open recording and GPU timer set aside, earlier
    /// work submitted and finished first) and return their wall time in seconds.
    fn run_alone(&self, f: impl FnOnce() -> Result<()>) -> Result<f64> {
        let rec = self.0.recording.borrow_mut().take();
        let timer = self.0.timer.borrow_mut().take();
        let r = (|| {
            self.flush()?;
            self.0.gpu.wait()?;
            let t0 = std::time::Instant::now();
            f()?;
            self.flush()?;
            self.0.gpu.wait()?;
            Ok(t0.elapsed().as_secs_f64())
        })();
        *self.0.recording.borrow_mut() = rec;
        *self.0.timer.borrow_mut() = timer;
        r
    }

    /// The autotune choices this process used, "kernel | shape" -> label (checkpoints keep them).
    pub fn tuned_choices(&self) -> std::collections::BTreeMap<String, String> {
        self.0.tuner.borrow().used()
    }

    /// Every candidate this process timed, "kernel | shape" -> (label, ms).
    pub fn tuned_times(&self) -> std::collections::BTreeMap<String, Vec<(String, f64)>> {
        self.0.tuner.borrow().timed()
    }

    /// Uses of shapes the autotune budget left untuned, so far in this process: work encoded
    /// while this grew runs some kernel untuned.
    fn tune_deferrals(&self) -> u64 {
        self.0.tuner.borrow().deferrals()
    }

    /// Whether autotune may still time in this process (its budget is not spent).
    pub fn tune_budget_left(&self) -> bool {
        self.0.tuner.borrow().has_budget()
    }

    /// Allow at least `secs` of autotune timing in this process (unless `DAE_TUNE_BUDGET` is set).
    pub fn widen_tune_budget(&self, secs: f64) {
        self.0.tuner.borrow_mut().widen_budget(secs);
    }

    /// Use these choices (from a checkpoint) wherever they name a candidate, before any cache.
    pub fn pin_tuned(&self, choices: std::collections::BTreeMap<String, String>) {
        self.0.tuner.borrow_mut().pin(choices);
    }

    /// Dispatches encoded so far (all submits).
    pub fn dispatch_count(&self) -> u64 {
        self.0.dispatches.get()
    }

    /// The largest buffer a kernel can bind, in bytes, and the limit that sets it.
    pub fn largest_buffer(&self) -> (u64, &'static str) {
        let l = &self.0.gpu.limits;
        if l.max_storage_buffer_binding_size < l.max_buffer_size {
            (l.max_storage_buffer_binding_size, "max_storage_buffer_binding_size")
        } else {
            (l.max_buffer_size, "max_buffer_size")
        }
    }

    fn check_size(&self, op: &'static str, bytes: u64) -> Result<()> {
        let (limit, name) = self.largest_buffer();
        if bytes > limit {
            return Err(Error::Limit { op, what: "a buffer".into(), need: bytes, limit, limit_name: name });
        }
        Ok(())
    }

    /// A buffer of `len` f32/u32 elements for `op` (whose name the size error carries).
    pub fn alloc(&self, op: &'static str, len: usize) -> Result<View> {
        self.alloc_from(op, len, true)
    }

    /// `alloc`, from the pool or (`pooled` false) always a new buffer.
    fn alloc_from(&self, op: &'static str, len: usize, pooled: bool) -> Result<View> {
        let need = (len as u64 * 4).max(16);
        // Round to 256 bytes so near sizes share pool buckets and views stay offset-aligned.
        let bytes = need.div_ceil(256) * 256;
        self.check_size(op, need)?;
        let reused = if pooled { self.0.pool.borrow_mut().free.get_mut(&bytes).and_then(|v| v.pop_first()) } else { None };
        let (id, buf) = match reused {
            Some(x) => x,
            None => {
                let buf = self.0.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(op),
                    size: bytes,
                    // UNIFORM too: the conv's packed weight blocks are bound as uniform buffers.
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                self.count(|c| c.buffers += 1);
                (self.next_id(), buf)
            }
        };
        let view = View { storage: Rc::new(Storage { buf, id, bytes, pool: Rc::downgrade(&self.0.pool) }), offset: 0, len };
        if self.1 && len > 0 {
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
        // While a plan records, the host's write lands before every dispatch of each replay: a
        // recycled buffer that an earlier dispatch of the same plan also uses would be
        // overwritten after the upload. An upload then gets a buffer of its own, kept by the plan.
        // Not poisoned: it is written whole at once.
        let v = Ctx(self.0.clone(), false).alloc_from(op, len, !self.recording())?;
        self.flush()?;
        if !bytes.is_empty() {
            self.0.gpu.queue.write_buffer(&v.storage.buf, v.offset, bytes);
        }
        if let Some(rec) = self.0.recording.borrow_mut().as_mut() {
            rec.keep.push(v.clone());
        }
        Ok(v)
    }

    /// Overwrite `v` with u32 host data (flushes first, for the same reason as `upload`).
    pub fn write_u32(&self, v: &View, data: &[u32]) -> Result<()> {
        if self.recording() {
            return Err(Error::Msg("a host write while a plan is recording (it would land before the plan's own dispatches)".into()));
        }
        if data.len() != v.len {
            return Err(Error::Msg(format!("write of {} elements into a view of {}", data.len(), v.len)));
        }
        self.flush()?;
        if !data.is_empty() {
            self.0.gpu.queue.write_buffer(&v.storage.buf, v.offset, bytemuck::cast_slice(data));
        }
        Ok(())
    }

    /// Overwrite `v` with host data (flushes first, for the same reason as `upload`).
    pub fn write(&self, v: &View, data: &[f32]) -> Result<()> {
        if self.recording() {
            return Err(Error::Msg("a host write while a plan is recording (it would land before the plan's own dispatches)".into()));
        }
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
        let m = self
            .0
            .gpu
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(family), source: wgpu::ShaderSource::Wgsl(src.into()) });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu { kernel: format!("{family}.wgsl"), message: device::error_chain(&e) });
        }
        let m = Rc::new(Module { wgpu: m, naga, info });
        self.0.modules.borrow_mut().insert(family, m.clone());
        Ok(m)
    }

    fn pipe(&self, family: &'static str, entry: &'static str, overrides: Overrides) -> Result<Rc<Pipe>> {
        let key = PipeKey { family, entry, overrides: overrides.iter().map(|(k, v)| (*k, v.to_bits())).collect() };
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

    /// The bind group of a launch (cached by its pipeline and buffers; a cache miss creates it).
    fn bind_group<P: GpuParams>(&self, pipe: &Pipe, l: &Launch<'_, P>) -> Result<wgpu::BindGroup> {
        let mut given: Vec<u32> = l.bindings.iter().map(|(b, _)| *b).collect();
        given.sort_unstable();
        if given != pipe.storage {
            return Err(Error::Gpu { kernel: l.entry.into(), message: format!("launcher binds {given:?}, the entry point uses {:?}", pipe.storage) });
        }
        self.0.hashes.set(self.0.hashes.get() + 1);
        let key = BindKey { pipe: pipe.id, bufs: l.bindings.iter().map(|(b, v)| (*b, v.storage.id, v.offset, v.binding_size())).collect() };
        let mut binds = self.0.binds.borrow_mut();
        if binds.len() > BIND_CACHE_MAX {
            binds.clear();
        }
        let pbytes = std::mem::size_of::<P>() as u64;
        let bg = binds.entry(key).or_insert_with(|| {
            self.count(|c| c.bind_groups += 1);
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &self.0.arena,
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

    /// Encode one dispatch (or, while a plan records, add it to the plan). Each dispatch gets
    /// its own uniform slot (rule 6 of STYLE.md).
    pub fn dispatch<P: GpuParams>(&self, l: Launch<'_, P>) -> Result<()> {
        let pipe = self.pipe(l.family, l.entry, l.overrides)?;
        let bg = self.bind_group(&pipe, &l)?;
        let pbytes = bytemuck::bytes_of(l.params);
        debug_assert!(pbytes.len() as u64 <= self.0.slot_bytes);
        if let Some(rec) = self.0.recording.borrow_mut().as_mut() {
            if rec.dispatches.len() >= ARENA_SLOTS {
                return Err(Error::Msg(format!("a plan holds at most {ARENA_SLOTS} dispatches")));
            }
            let at = rec.dispatches.len() * self.0.slot_bytes as usize;
            rec.params.resize(at + self.0.slot_bytes as usize, 0);
            rec.params[at..at + pbytes.len()].copy_from_slice(pbytes);
            for (_, v) in l.bindings {
                rec.buffers.insert(v.storage.id, v.storage.bytes);
            }
            if let Some(name) = rec.scopes.last() {
                let i = rec.dispatches.len();
                rec.slots.entry(name.clone()).or_default().push(i);
            }
            rec.dispatches.push(Planned { pipe, bind: bg, groups: l.groups, entry: l.entry, params_len: pbytes.len() });
            return Ok(());
        }
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
        if enc.encoder.is_none() {
            enc.encoder = Some(self.0.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("dae step") }));
        }
        if enc.pass.is_none() {
            let timer = self.0.timer.borrow();
            let pass = enc.encoder.as_mut().map(|e| {
                e.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("dae kernels"), timestamp_writes: Ctx::timestamps(&timer) })
                    .forget_lifetime()
            });
            enc.pass = pass;
        }
        let pass = enc.pass.as_mut().ok_or_else(|| Error::Msg("no compute pass".into()))?;
        pass.set_pipeline(&pipe.pipeline);
        pass.set_bind_group(0, &bg, &[slot as u32]);
        pass.dispatch_workgroups(l.groups[0], l.groups[1], l.groups[2]);
        self.0.dispatches.set(self.0.dispatches.get() + 1);
        drop(enc);
        if self.0.profile.borrow().is_some() {
            let t0 = std::time::Instant::now();
            self.flush()?;
            self.0.gpu.wait()?;
            self.profiled(l.entry, t0.elapsed().as_secs_f64());
        }
        Ok(())
    }

    fn profiled(&self, entry: &'static str, secs: f64) {
        if let Some(m) = self.0.profile.borrow_mut().as_mut() {
            let e = m.entry(entry).or_default();
            e.0 += 1;
            e.1 += secs;
        }
    }

    /// Bind-group keys hashed so far (each non-planned dispatch hashes one; a replayed plan none).
    pub fn bind_keys_hashed(&self) -> u64 {
        self.0.hashes.get()
    }

    // ---- plans: a step recorded once, replayed every step --------------------------------------

    /// Name the per-step values of the dispatches `f` encodes: while a plan records, they form
    /// the slot `name`, whose Params a replay rewrites through [`Plan::set`] (the batch offset,
    /// the noise keys, the learning rate, the log slot: whatever changes between replays). The
    /// innermost name holds a dispatch; the same name given twice gathers both. Outside a
    /// recording it only runs `f`. It changes nothing of what the launchers do.
    pub fn named<T>(&self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let recording = match self.0.recording.borrow_mut().as_mut() {
            Some(rec) => {
                rec.scopes.push(name.to_string());
                true
            }
            None => false,
        };
        let r = f();
        if recording && let Some(rec) = self.0.recording.borrow_mut().as_mut() {
            rec.scopes.pop();
        }
        r
    }

    /// Record the work `encode` encodes as a plan: its dispatches are built (pipelines, bind
    /// groups) and kept in order with their Params instead of being encoded. Buffers freed during
    /// the recording go back to the pool and are reused by later dispatches of the same
    /// recording, which plans their lifetimes: a buffer is reused once its last reader has been
    /// recorded. Nothing runs until [`Ctx::replay`].
    pub fn record(&self, encode: impl FnOnce() -> Result<()>) -> Result<Plan> {
        self.flush()?;
        {
            let mut r = self.0.recording.borrow_mut();
            if r.is_some() {
                return Err(Error::Msg("a plan is already recording".into()));
            }
            *r = Some(PlanBuilder { deferrals: self.tune_deferrals(), ..Default::default() });
        }
        let encoded = encode();
        // Ends the recording after an error too.
        let b = self.0.recording.borrow_mut().take().ok_or_else(|| Error::Msg("no plan is recording".into()))?;
        encoded?;
        Ok(Plan {
            peak_bytes: b.buffers.values().sum(),
            untuned: self.tune_deferrals() > b.deferrals,
            dispatches: b.dispatches,
            slots: b.slots,
            params: b.params,
            keep: b.keep,
            slot: self.0.slot_bytes,
        })
    }

    /// Progressive autotune, after a replay of `plan`: true when its recording ran shapes the
    /// autotune budget left untimed and the tuner grants another slice of it (`DAE_TUNE_BUDGET`,
    /// 1 s by default), so the caller should record the plan anew (that recording times at least
    /// one more shape; every candidate computes the same bits, so switching mid-run changes no
    /// result).
    pub fn retune(&self, plan: &Plan) -> bool {
        plan.untuned && self.0.tuner.borrow_mut().extend()
    }

    /// Whether a plan is recording (work then cannot be read back until it is replayed).
    pub fn recording(&self) -> bool {
        self.0.recording.borrow().is_some()
    }

    /// Run a plan: write its Params into the uniform arena and encode its dispatches into one
    /// pass of one submit. Creates nothing and hashes nothing.
    pub fn replay(&self, plan: &Plan) -> Result<()> {
        if self.recording() {
            return Err(Error::Msg("replay while a plan is recording".into()));
        }
        self.flush()?;
        let slot = self.0.slot_bytes;
        if self.0.profile.borrow().is_some() {
            // One dispatch per submit, timed (bench --profile, DAE_SYNC=1).
            for (i, d) in plan.dispatches.iter().enumerate() {
                let t0 = std::time::Instant::now();
                self.0.gpu.queue.write_buffer(&self.0.arena, 0, &plan.params[i * slot as usize..(i + 1) * slot as usize]);
                let mut e = self.0.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("dae plan") });
                {
                    let mut pass = e.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(d.entry), timestamp_writes: None });
                    pass.set_pipeline(&d.pipe.pipeline);
                    pass.set_bind_group(0, &d.bind, &[0]);
                    pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
                }
                self.0.gpu.queue.submit([e.finish()]);
                self.0.gpu.check(|| d.entry.to_string())?;
                self.0.gpu.wait()?;
                self.profiled(d.entry, t0.elapsed().as_secs_f64());
            }
            self.0.dispatches.set(self.0.dispatches.get() + plan.dispatches.len() as u64);
            return Ok(());
        }
        if !plan.params.is_empty() {
            self.0.gpu.queue.write_buffer(&self.0.arena, 0, &plan.params);
        }
        let mut e = self.0.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("dae plan") });
        {
            let timer = self.0.timer.borrow();
            let mut pass = e.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("dae plan"), timestamp_writes: Ctx::timestamps(&timer) });
            for (i, d) in plan.dispatches.iter().enumerate() {
                pass.set_pipeline(&d.pipe.pipeline);
                pass.set_bind_group(0, &d.bind, &[(i as u64 * slot) as u32]);
                pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
            }
        }
        self.submit_timed(e)?;
        self.0.dispatches.set(self.0.dispatches.get() + plan.dispatches.len() as u64);
        self.0.gpu.check(|| summarize(&plan.dispatches.iter().map(|d| d.entry).collect::<Vec<_>>()))
    }

    /// Keep at most one unit of paced work (a training step, an evaluation batch) queued
    /// behind the one the GPU runs: wait until what was submitted before the previous call has
    /// finished. Nothing else in a step loop waits, so without this the host queues steps far
    /// ahead of the GPU, and an interrupt, which stops the loop, then waits for all of them.
    pub fn pace(&self) -> Result<()> {
        let newest = self.0.submitted.borrow().clone();
        let Some(prev) = self.0.paced.replace(newest) else { return Ok(()) };
        self.0.gpu.device.poll(wgpu::PollType::Wait { submission_index: Some(prev), timeout: None }).map_err(|e| Error::DeviceLost(e.to_string()))?;
        self.0.gpu.check(|| "pace".into())
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
        self.submit_timed(encoder)?;
        self.0.gpu.check(|| summarize(&kernels))
    }

    /// Flush, copy `v` to a mappable buffer and read it back (waits for the GPU).
    pub fn read_bytes(&self, v: &View) -> Result<Vec<u8>> {
        if self.recording() {
            return Err(Error::Msg("a read back while a plan is recording (its work has not run yet)".into()));
        }
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
        let data = staging.get_mapped_range(..).map_err(|e| Error::Gpu { kernel: "readback".into(), message: e.to_string() })?.to_vec();
        staging.unmap();
        Ok(data[..v.len * 4].to_vec())
    }

    pub fn read(&self, v: &View) -> Result<Vec<f32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.read_bytes(v)?))
    }

    /// Start reading `v` back without waiting: its copy is queued after the work submitted so
    /// far and mapped when the GPU gets there; [`Ctx::try_take`] polls, [`Ctx::take`] waits.
    /// Two staging buffers per size take turns, so a read can start while the previous one is
    /// still pending (a third would wait for the oldest).
    pub fn read_async(&self, v: &View) -> Result<PendingRead> {
        if self.recording() {
            return Err(Error::Msg("a read back while a plan is recording (its work has not run yet)".into()));
        }
        self.flush()?;
        let size = (v.len as u64 * 4).max(4);
        let dev = &self.0.gpu.device;
        let staging = {
            let mut cache = self.0.async_staging.borrow_mut();
            let (turn, bufs) = cache.entry(size).or_insert_with(|| {
                self.count(|c| c.buffers += 2);
                let mk = || {
                    dev.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("async readback"),
                        size,
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    })
                };
                (0, [mk(), mk()])
            });
            *turn = 1 - *turn;
            bufs[*turn].clone()
        };
        let mut encoder = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("async readback") });
        encoder.copy_buffer_to_buffer(&v.storage.buf, v.offset, &staging, 0, size);
        self.0.gpu.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        Ok(PendingRead { staging, len: v.len, rx })
    }

    /// The values of a pending read if the GPU has delivered them (never waits).
    pub fn try_take(&self, p: &PendingRead) -> Result<Option<Vec<f32>>> {
        self.0.gpu.device.poll(wgpu::PollType::Poll).map_err(|e| Error::DeviceLost(e.to_string()))?;
        match p.rx.try_recv() {
            Ok(r) => {
                r.map_err(|e| Error::Gpu { kernel: "readback".into(), message: e.to_string() })?;
                Ok(Some(p.finish()?))
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => Ok(None),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => Err(Error::Msg("readback: map callback dropped".into())),
        }
    }

    /// The values of a pending read (waits for the GPU).
    pub fn take(&self, p: PendingRead) -> Result<Vec<f32>> {
        self.0.gpu.wait()?;
        p.rx.recv()
            .map_err(|_| Error::Msg("readback: map callback never ran".into()))?
            .map_err(|e| Error::Gpu { kernel: "readback".into(), message: e.to_string() })?;
        p.finish()
    }

    pub fn read_u32(&self, v: &View) -> Result<Vec<u32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.read_bytes(v)?))
    }
}

/// A read back in flight (see [`Ctx::read_async`]).
pub struct PendingRead {
    staging: wgpu::Buffer,
    len: usize,
    rx: std::sync::mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
}

impl PendingRead {
    fn finish(&self) -> Result<Vec<f32>> {
        let data = self.staging.get_mapped_range(..).map_err(|e| Error::Gpu { kernel: "readback".into(), message: e.to_string() })?.to_vec();
        self.staging.unmap();
        Ok(bytemuck::pod_collect_to_vec(&data[..self.len * 4]))
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
