//! The buffer pool: GPU buffers recycled by size, the views kernels bind, host uploads and writes.
//!
//! Buffers freed by dropped tensors return to a size-keyed pool and keep their ids, so a loop
//! that allocates the same shapes each step gets the same buffers back and hits the bind-group
//! cache every time.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use super::Ctx;
use crate::error::{Error, Result};

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
pub(super) struct Pool {
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

    pub(super) fn binding_size(&self) -> u64 {
        (self.len as u64 * 4).max(4)
    }
}

/// The pool's part of the runtime.
pub(super) struct Memory {
    pub(super) free: Rc<RefCell<Pool>>,
    /// A small buffer bound where a kernel declares a binding a call does not use.
    pub(super) dummy: RefCell<Option<View>>,
    pub(super) next_id: Cell<u64>,
}

impl Memory {
    pub(super) fn new() -> Memory {
        Memory { free: Rc::default(), dummy: RefCell::new(None), next_id: Cell::new(1) }
    }
}

impl Ctx {
    pub fn next_id(&self) -> u64 {
        let id = self.0.mem.next_id.get();
        self.0.mem.next_id.set(id + 1);
        id
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

    pub(super) fn check_size(&self, op: &'static str, bytes: u64) -> Result<()> {
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
    pub(super) fn alloc_from(&self, op: &'static str, len: usize, pooled: bool) -> Result<View> {
        let need = (len as u64 * 4).max(16);
        // Round to 256 bytes so near sizes share pool buckets and views stay offset-aligned.
        let bytes = need.div_ceil(256) * 256;
        self.check_size(op, need)?;
        let reused = if pooled { self.0.mem.free.borrow_mut().free.get_mut(&bytes).and_then(|v| v.pop_first()) } else { None };
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
        let view = View { storage: Rc::new(Storage { buf, id, bytes, pool: Rc::downgrade(&self.0.mem.free) }), offset: 0, len };
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
        if let Some(d) = self.0.mem.dummy.borrow().as_ref() {
            return Ok(d.clone());
        }
        let d = self.alloc("dummy", 4)?;
        *self.0.mem.dummy.borrow_mut() = Some(d.clone());
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

    pub(super) fn upload_bytes(&self, op: &'static str, bytes: &[u8], len: usize) -> Result<View> {
        // While a plan records, the host's write lands before every dispatch of each replay: a
        // recycled buffer that an earlier dispatch of the same plan also uses would be
        // overwritten after the upload. An upload then gets a buffer of its own, kept by the plan.
        // Not poisoned: it is written whole at once.
        let v = Ctx(self.0.clone(), false).alloc_from(op, len, !self.recording())?;
        self.flush()?;
        if !bytes.is_empty() {
            self.0.gpu.queue.write_buffer(&v.storage.buf, v.offset, bytes);
        }
        if let Some(rec) = self.0.enc.recording.borrow_mut().as_mut() {
            rec.keep.push(v.clone());
        }
        Ok(v)
    }

    /// Overwrite `v` with host data (flushes first, for the same reason as `upload`).
    pub fn write(&self, v: &View, data: &[f32]) -> Result<()> {
        self.write_bytes(v, bytemuck::cast_slice(data), data.len())
    }

    /// Overwrite `v` with u32 host data, likewise.
    pub fn write_u32(&self, v: &View, data: &[u32]) -> Result<()> {
        self.write_bytes(v, bytemuck::cast_slice(data), data.len())
    }

    fn write_bytes(&self, v: &View, bytes: &[u8], len: usize) -> Result<()> {
        if self.recording() {
            return Err(Error::Msg("a host write while a plan is recording (it would land before the plan's own dispatches)".into()));
        }
        if len != v.len {
            return Err(Error::Msg(format!("write of {len} elements into a view of {}", v.len)));
        }
        self.flush()?;
        if !bytes.is_empty() {
            self.0.gpu.queue.write_buffer(&v.storage.buf, v.offset, bytes);
        }
        Ok(())
    }
}
