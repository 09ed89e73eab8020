//! The encoder and the plan recorder. Work is encoded, not run: each launch appends a dispatch
//! to ONE compute pass, its Params in its own slot of a uniform arena; `flush` writes the arena
//! and submits. While a plan records, dispatches are kept with their Params instead, and a
//! replay encodes them all in one pass; named slots let a replay rewrite per-step values.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::params::GpuParams;
use super::pipelines::Pipe;
use super::{Ctx, Launch, View, summarize};
use crate::error::{Error, Result};

/// Uniform slots per submit; a batch with more dispatches is split into several submits.
pub(super) const ARENA_SLOTS: usize = 4096;

pub(super) struct Encoding {
    pub(super) encoder: Option<wgpu::CommandEncoder>,
    pub(super) pass: Option<wgpu::ComputePass<'static>>,
    pub(super) staging: Vec<u8>,
    pub(super) slots: usize,
    pub(super) kernels: Vec<&'static str>,
}

/// One recorded dispatch: its pipeline, its bind group (Params bound with a dynamic offset) and
/// its workgroup counts.
pub(super) struct Planned {
    pub(super) pipe: Rc<Pipe>,
    pub(super) bind: wgpu::BindGroup,
    pub(super) groups: [u32; 3],
    pub(super) entry: &'static str,
    /// Bytes of its Params (what a slot's setter must match).
    pub(super) params_len: usize,
}

#[derive(Default)]
pub(super) struct PlanBuilder {
    pub(super) dispatches: Vec<Planned>,
    pub(super) params: Vec<u8>,
    /// Every buffer bound, by id, with its size.
    pub(super) buffers: HashMap<u64, u64>,
    /// Buffers the host filled during the recording (uploads): the plan reads them every replay,
    /// so they must not return to the pool.
    pub(super) keep: Vec<View>,
    /// `Ctx::tune_deferrals` when the recording began.
    pub(super) deferrals: u64,
    /// The slot names of [`Ctx::named`] open now, innermost last, and the dispatches each name
    /// holds.
    pub(super) scopes: Vec<String>,
    pub(super) slots: HashMap<String, Vec<usize>>,
}

/// A recorded sequence of dispatches (a training step, an evaluation batch), replayed with
/// [`Ctx::replay`]. Between replays only its Params change ([`Plan::set`], by slot name): the learning rate,
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

/// The encoder's part of the runtime.
pub(super) struct Encoder {
    pub(super) open: RefCell<Encoding>,
    /// The uniform arena every dispatch's Params live in, one slot of `slot_bytes` each.
    pub(super) arena: wgpu::Buffer,
    pub(super) slot_bytes: u64,
    pub(super) recording: RefCell<Option<PlanBuilder>>,
    /// The newest submission, and the one `pace` waits for next.
    pub(super) submitted: RefCell<Option<wgpu::SubmissionIndex>>,
    pub(super) paced: RefCell<Option<wgpu::SubmissionIndex>>,
    pub(super) dispatches: Cell<u64>,
}

impl Encoder {
    pub(super) fn new(gpu: &super::Gpu) -> Encoder {
        let slot_bytes = gpu.limits.min_uniform_buffer_offset_alignment.max(256) as u64;
        let arena = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("uniform arena"),
            size: slot_bytes * ARENA_SLOTS as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Encoder {
            open: RefCell::new(Encoding { encoder: None, pass: None, staging: Vec::new(), slots: 0, kernels: Vec::new() }),
            arena,
            slot_bytes,
            recording: RefCell::new(None),
            submitted: RefCell::new(None),
            paced: RefCell::new(None),
            dispatches: Cell::new(0),
        }
    }
}

impl Ctx {
    /// Encode one dispatch (or, while a plan records, add it to the plan). Each dispatch gets
    /// its own uniform slot (rule 6 of STYLE.md).
    pub fn dispatch<P: GpuParams>(&self, l: Launch<'_, P>) -> Result<()> {
        let pipe = self.pipe(l.family, l.entry, l.overrides)?;
        let bg = self.bind_group(&pipe, &l)?;
        let pbytes = bytemuck::bytes_of(l.params);
        debug_assert!(pbytes.len() as u64 <= self.0.enc.slot_bytes);
        if let Some(rec) = self.0.enc.recording.borrow_mut().as_mut() {
            if rec.dispatches.len() >= ARENA_SLOTS {
                return Err(Error::Msg(format!("a plan holds at most {ARENA_SLOTS} dispatches")));
            }
            let at = rec.dispatches.len() * self.0.enc.slot_bytes as usize;
            rec.params.resize(at + self.0.enc.slot_bytes as usize, 0);
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
        if self.0.enc.open.borrow().slots >= ARENA_SLOTS {
            self.flush()?;
        }
        let mut enc = self.0.enc.open.borrow_mut();
        let slot = enc.slots as u64 * self.0.enc.slot_bytes;
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
            let timer = self.0.prof.timer.borrow();
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
        self.0.enc.dispatches.set(self.0.enc.dispatches.get() + 1);
        drop(enc);
        if self.0.prof.profile.borrow().is_some() {
            let t0 = web_time::Instant::now();
            self.flush()?;
            self.0.gpu.wait()?;
            self.profiled(l.entry, t0.elapsed().as_secs_f64());
        }
        Ok(())
    }

    /// Dispatches encoded so far (all submits).
    pub fn dispatch_count(&self) -> u64 {
        self.0.enc.dispatches.get()
    }

    /// Name the per-step values of the dispatches `f` encodes: while a plan records, they form
    /// the slot `name`, whose Params a replay rewrites through [`Plan::set`] (the batch offset,
    /// the noise keys, the learning rate, the log slot: whatever changes between replays). The
    /// innermost name holds a dispatch; the same name given twice gathers both. Outside a
    /// recording it only runs `f`. It changes nothing of what the launchers do.
    pub fn named<T>(&self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let recording = match self.0.enc.recording.borrow_mut().as_mut() {
            Some(rec) => {
                rec.scopes.push(name.to_string());
                true
            }
            None => false,
        };
        let r = f();
        if recording && let Some(rec) = self.0.enc.recording.borrow_mut().as_mut() {
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
            let mut r = self.0.enc.recording.borrow_mut();
            if r.is_some() {
                return Err(Error::Msg("a plan is already recording".into()));
            }
            *r = Some(PlanBuilder { deferrals: self.0.tune.deferrals(), ..Default::default() });
        }
        let encoded = encode();
        // Ends the recording after an error too.
        let b = self.0.enc.recording.borrow_mut().take().ok_or_else(|| Error::Msg("no plan is recording".into()))?;
        encoded?;
        Ok(Plan {
            peak_bytes: b.buffers.values().sum(),
            untuned: self.0.tune.deferrals() > b.deferrals,
            dispatches: b.dispatches,
            slots: b.slots,
            params: b.params,
            keep: b.keep,
            slot: self.0.enc.slot_bytes,
        })
    }

    /// Progressive autotune, after a replay of `plan`: true when its recording ran shapes the
    /// autotune budget left untimed and the tuner grants another slice of it (`DAE_TUNE_BUDGET`,
    /// 1 s by default), so the caller should record the plan anew (that recording times at least
    /// one more shape; every candidate computes the same bits, so switching mid-run changes no
    /// result).
    pub fn retune(&self, plan: &Plan) -> bool {
        plan.untuned && self.0.tune.tuner.borrow_mut().extend()
    }

    /// Whether a plan is recording (work then cannot be read back until it is replayed).
    pub fn recording(&self) -> bool {
        self.0.enc.recording.borrow().is_some()
    }

    /// Run a plan: write its Params into the uniform arena and encode its dispatches into one
    /// pass of one submit. Creates nothing and hashes nothing.
    pub fn replay(&self, plan: &Plan) -> Result<()> {
        if self.recording() {
            return Err(Error::Msg("replay while a plan is recording".into()));
        }
        self.flush()?;
        let slot = self.0.enc.slot_bytes;
        if self.0.prof.profile.borrow().is_some() {
            // One dispatch per submit, timed (bench --profile, DAE_SYNC=1).
            for (i, d) in plan.dispatches.iter().enumerate() {
                let t0 = web_time::Instant::now();
                self.0.gpu.queue.write_buffer(&self.0.enc.arena, 0, &plan.params[i * slot as usize..(i + 1) * slot as usize]);
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
            self.0.enc.dispatches.set(self.0.enc.dispatches.get() + plan.dispatches.len() as u64);
            return Ok(());
        }
        if !plan.params.is_empty() {
            self.0.gpu.queue.write_buffer(&self.0.enc.arena, 0, &plan.params);
        }
        let mut e = self.0.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("dae plan") });
        {
            let timer = self.0.prof.timer.borrow();
            let mut pass = e.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("dae plan"), timestamp_writes: Ctx::timestamps(&timer) });
            for (i, d) in plan.dispatches.iter().enumerate() {
                pass.set_pipeline(&d.pipe.pipeline);
                pass.set_bind_group(0, &d.bind, &[(i as u64 * slot) as u32]);
                pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
            }
        }
        self.submit_timed(e)?;
        self.0.enc.dispatches.set(self.0.enc.dispatches.get() + plan.dispatches.len() as u64);
        self.0.gpu.check(|| summarize(&plan.dispatches.iter().map(|d| d.entry).collect::<Vec<_>>()))
    }

    /// Keep at most one unit of paced work (a training step, an evaluation batch) queued
    /// behind the one the GPU runs: wait until what was submitted before the previous call has
    /// finished. Nothing else in a step loop waits, so without this the host queues steps far
    /// ahead of the GPU, and an interrupt, which stops the loop, then waits for all of them.
    pub fn pace(&self) -> Result<()> {
        let newest = self.0.enc.submitted.borrow().clone();
        let Some(prev) = self.0.enc.paced.replace(newest) else { return Ok(()) };
        self.0.gpu.device.poll(wgpu::PollType::Wait { submission_index: Some(prev), timeout: None }).map_err(|e| Error::DeviceLost(e.to_string()))?;
        self.0.gpu.check(|| "pace".into())
    }

    /// Submit everything encoded so far (one `queue.submit`). Does not wait.
    pub fn flush(&self) -> Result<()> {
        let mut enc = self.0.enc.open.borrow_mut();
        enc.pass = None;
        let Some(encoder) = enc.encoder.take() else { return Ok(()) };
        let used = enc.slots * self.0.enc.slot_bytes as usize;
        if used > 0 {
            self.0.gpu.queue.write_buffer(&self.0.enc.arena, 0, &enc.staging[..used.min(enc.staging.len())]);
        }
        enc.slots = 0;
        let kernels = std::mem::take(&mut enc.kernels);
        drop(enc);
        self.submit_timed(encoder)?;
        self.0.gpu.check(|| summarize(&kernels))
    }
}
