//! Reading GPU buffers back to the host, through MAP_READ staging buffers reused by size: `read`
//! (a future that resolves once the copy is mapped), or `read_async` (started now, then
//! `try_take` or `take`). The futures resolve from the map callback: natively during the device
//! poll they make, in the browser when its event loop runs the callback; native code waits on
//! them with [`super::block_on`].

use std::cell::RefCell;
use std::collections::HashMap;

use super::{Ctx, View};
use crate::error::{Error, Result};

/// The staging buffers' part of the runtime.
#[derive(Default)]
pub(super) struct Readback {
    /// MAP_READ buffers by size, reused by every readback (the training loop reads its log).
    pub(super) staging: RefCell<HashMap<u64, wgpu::Buffer>>,
    /// Two MAP_READ buffers per size for reads that do not wait, used in turn.
    pub(super) async_staging: RefCell<HashMap<u64, (usize, [wgpu::Buffer; 2])>>,
}

impl Ctx {
    /// Flush, copy `v` to a mappable buffer and read it back (resolves when the GPU has done
    /// the work before it).
    pub async fn read_bytes(&self, v: &View) -> Result<Vec<u8>> {
        let mut p = self.start_read(v, false)?;
        self.wait_for(&mut p).await?;
        p.finish()
    }

    pub async fn read(&self, v: &View) -> Result<Vec<f32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.read_bytes(v).await?))
    }

    pub async fn read_u32(&self, v: &View) -> Result<Vec<u32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.read_bytes(v).await?))
    }

    /// Start reading `v` back without waiting: its copy is queued after the work submitted so
    /// far and mapped when the GPU gets there; [`Ctx::try_take`] polls, [`Ctx::take`] waits.
    /// Two staging buffers per size take turns, so a read can start while the previous one is
    /// still pending (a third would wait for the oldest).
    pub fn read_async(&self, v: &View) -> Result<PendingRead> {
        self.start_read(v, true)
    }

    /// The values of a pending read if the GPU has delivered them (never waits).
    pub fn try_take(&self, p: &mut PendingRead) -> Result<Option<Vec<f32>>> {
        self.0.gpu.device.poll(wgpu::PollType::Poll).map_err(|e| Error::DeviceLost(e.to_string()))?;
        match p.rx.try_recv() {
            Ok(Some(r)) => {
                r.map_err(|e| Error::Gpu { kernel: "readback".into(), message: e.to_string() })?;
                Ok(Some(bytemuck::pod_collect_to_vec(&p.finish()?)))
            }
            Ok(None) => Ok(None),
            Err(_) => Err(Error::Msg("readback: map callback dropped".into())),
        }
    }

    /// The values of a pending read (resolves when the GPU has delivered them).
    pub async fn take(&self, mut p: PendingRead) -> Result<Vec<f32>> {
        self.wait_for(&mut p).await?;
        Ok(bytemuck::pod_collect_to_vec(&p.finish()?))
    }

    /// Flush, then queue the copy of `v` into a staging buffer of its size (`turns`: the pair
    /// that read_async alternates, else the one the waiting reads share) and its mapping.
    fn start_read(&self, v: &View, turns: bool) -> Result<PendingRead> {
        if self.recording() {
            return Err(Error::Msg("a read back while a plan is recording (its work has not run yet)".into()));
        }
        self.flush()?;
        let size = (v.len as u64 * 4).max(4);
        let dev = &self.0.gpu.device;
        let make = |label| {
            dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let staging = if turns {
            let mut cache = self.0.readback.async_staging.borrow_mut();
            let (turn, bufs) = cache.entry(size).or_insert_with(|| {
                self.count(|c| c.buffers += 2);
                (0, [make("async readback"), make("async readback")])
            });
            *turn = 1 - *turn;
            bufs[*turn].clone()
        } else {
            let mut cache = self.0.readback.staging.borrow_mut();
            cache
                .entry(size)
                .or_insert_with(|| {
                    self.count(|c| c.buffers += 1);
                    make("readback")
                })
                .clone()
        };
        let mut encoder = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        encoder.copy_buffer_to_buffer(&v.storage.buf, v.offset, &staging, 0, size);
        self.0.gpu.queue.submit([encoder.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        Ok(PendingRead { staging, len: v.len, rx })
    }

    /// Resolves when the GPU has mapped a pending read (natively after waiting for the queue,
    /// which runs the callback; in the browser when the event loop has run it, after which the
    /// errors the device reported meanwhile are surfaced).
    async fn wait_for(&self, p: &mut PendingRead) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        self.0.gpu.wait()?;
        (&mut p.rx)
            .await
            .map_err(|_| Error::Msg("readback: map callback never ran".into()))?
            .map_err(|e| Error::Gpu { kernel: "readback".into(), message: e.to_string() })?;
        #[cfg(target_arch = "wasm32")]
        self.0.gpu.check(|| "the work before a readback".into())?;
        Ok(())
    }
}

/// A read back in flight (see [`Ctx::read_async`]).
pub struct PendingRead {
    staging: wgpu::Buffer,
    len: usize,
    rx: futures_channel::oneshot::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
}

impl PendingRead {
    /// Its bytes, once mapped.
    fn finish(&self) -> Result<Vec<u8>> {
        let mut data = self.staging.get_mapped_range(..).map_err(|e| Error::Gpu { kernel: "readback".into(), message: e.to_string() })?.to_vec();
        self.staging.unmap();
        data.truncate(self.len * 4);
        Ok(data)
    }
}
