//! The profiler: per-entry wall times with each dispatch submitted alone (`dae bench --profile`,
//! `DAE_SYNC=1`), and GPU timestamps around every compute pass (benchmarks).

use std::cell::RefCell;
use std::collections::HashMap;

use super::Ctx;
use crate::error::{Error, Result};

/// Timestamp queries at the start and end of each compute pass, resolved and read back at each
/// submit (which then waits: benchmarks only), summed into `ns`.
pub(super) struct Timer {
    pub(super) set: wgpu::QuerySet,
    pub(super) resolve: wgpu::Buffer,
    pub(super) read: wgpu::Buffer,
    pub(super) ns: f64,
    pub(super) passes: u64,
}

/// The profiler's part of the runtime.
pub(super) struct Profiler {
    /// Per entry point (calls, seconds) while profiling; `None` otherwise.
    pub(super) profile: RefCell<Option<HashMap<&'static str, (u64, f64)>>>,
    /// GPU timestamps around every compute pass while on (`set_gpu_timer`).
    pub(super) timer: RefCell<Option<Timer>>,
}

impl Profiler {
    pub(super) fn new() -> Profiler {
        Profiler { profile: RefCell::new(sync_from_env()), timer: RefCell::new(None) }
    }
}

/// DAE_SYNC=1: every dispatch submitted on its own (the profiling path), so a GPU error names
/// its kernel.
fn sync_from_env() -> Option<HashMap<&'static str, (u64, f64)>> {
    std::env::var_os("DAE_SYNC").filter(|v| !v.is_empty() && v != "0").map(|_| HashMap::new())
}

impl Ctx {
    /// GPU timing: while on, every compute pass writes a timestamp at its start and end and
    /// every submit waits for them; [`Ctx::gpu_seconds`] sums the passes. Returns whether the
    /// adapter has timestamp queries (without them nothing is timed: use the wall clock).
    pub fn set_gpu_timer(&self, on: bool) -> Result<bool> {
        self.flush()?;
        if !on || !self.0.gpu.has_timestamps() {
            *self.0.prof.timer.borrow_mut() = None;
            return Ok(false);
        }
        let dev = &self.0.gpu.device;
        let buf = |label, usage| dev.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size: 16, usage, mapped_at_creation: false });
        *self.0.prof.timer.borrow_mut() = Some(Timer {
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
        Ok(self.0.prof.timer.borrow_mut().as_mut().map_or((0.0, 0), |t| (std::mem::take(&mut t.ns) * 1e-9, std::mem::take(&mut t.passes))))
    }

    /// The pass's timestamp writes while timing.
    pub(super) fn timestamps<'a>(t: &'a Option<Timer>) -> Option<wgpu::ComputePassTimestampWrites<'a>> {
        t.as_ref().map(|t| wgpu::ComputePassTimestampWrites {
            query_set: &t.set,
            beginning_of_pass_write_index: Some(0),
            end_of_pass_write_index: Some(1),
        })
    }

    /// Submit `encoder` (its pass ended); while timing, resolve the pass's two timestamps,
    /// wait, and add the difference.
    pub(super) fn submit_timed(&self, mut encoder: wgpu::CommandEncoder) -> Result<()> {
        let mut timer = self.0.prof.timer.borrow_mut();
        let Some(t) = timer.as_mut() else {
            *self.0.enc.submitted.borrow_mut() = Some(self.0.gpu.queue.submit([encoder.finish()]));
            return Ok(());
        };
        encoder.resolve_query_set(&t.set, 0..2, &t.resolve, 0);
        encoder.copy_buffer_to_buffer(&t.resolve, 0, &t.read, 0, 16);
        *self.0.enc.submitted.borrow_mut() = Some(self.0.gpu.queue.submit([encoder.finish()]));
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

    /// Profiling: each dispatch is submitted and waited for on its own, and the wall time of
    /// that adds to its entry point's total (slow; it shows where a step's time goes). Turning
    /// it off returns to the DAE_SYNC setting.
    pub fn set_profile(&self, on: bool) -> Result<()> {
        self.flush()?;
        self.0.gpu.wait()?;
        *self.0.prof.profile.borrow_mut() = if on { Some(HashMap::new()) } else { sync_from_env() };
        Ok(())
    }

    /// (entry point, calls, seconds) since `set_profile(true)`, slowest first.
    pub fn profile(&self) -> Vec<(&'static str, u64, f64)> {
        let mut v: Vec<_> = self.0.prof.profile.borrow().iter().flatten().map(|(k, (n, t))| (*k, *n, *t)).collect();
        v.sort_by(|a, b| b.2.total_cmp(&a.2));
        v
    }

    pub(super) fn profiled(&self, entry: &'static str, secs: f64) {
        if let Some(m) = self.0.prof.profile.borrow_mut().as_mut() {
            let e = m.entry(entry).or_default();
            e.0 += 1;
            e.1 += secs;
        }
    }
}
