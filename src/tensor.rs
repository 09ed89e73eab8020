//! [`Tensor`]: an f32 GPU buffer view with a shape and the context it lives in. Whether it is
//! part of a differentiable graph is the caller's `autograd::Graph`'s business, not the
//! tensor's: a tensor holds no graph, so dropping a graph frees everything it saved.

use std::rc::Rc;

use crate::error::{Error, Result};
use crate::gpu::{Ctx, View};

pub(crate) struct TensorInner {
    pub(crate) id: u64,
    pub(crate) shape: Vec<usize>,
    /// None only inside a [`Handle`] (see [`Tensor::hollow`]).
    pub(crate) view: Option<View>,
    pub(crate) ctx: Ctx,
    pub(crate) slice: Option<ChannelSlice>,
}

/// Where a channel slice's channels live: an NCHW tensor of c channels stored as channels
/// [off, off + c) of a buffer with `total` channels per image (a part of an in-place
/// concatenation). With a batch above 1 it is strided, so only the kernels that take a slice
/// (their launchers say so) accept one; every other op refuses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelSlice {
    pub off: usize,
    pub total: usize,
}

/// Cheap to clone (shared); clones keep the id, which is how a graph knows the tensor.
#[derive(Clone)]
pub struct Tensor(pub(crate) Rc<TensorInner>);

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor#{}{:?}", self.0.id, self.0.shape)
    }
}

pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    /// A tensor over an existing view (a fresh id).
    pub fn wrap(ctx: &Ctx, shape: Vec<usize>, view: View) -> Tensor {
        Tensor(Rc::new(TensorInner { id: ctx.next_id(), shape, view: Some(view), ctx: ctx.clone(), slice: None }))
    }

    /// Channels [off, off + c) of the NCHW tensor `whole` as a tensor of its own (a fresh id,
    /// the same storage): what a producer writes in place and a consumer of the part reads.
    pub fn channel_slice(whole: &Tensor, off: usize, c: usize) -> Result<Tensor> {
        let [n, total, h, w] = whole.nchw("channel slice")?;
        if whole.is_slice() || c == 0 || off + c > total {
            return Err(Error::shape("channel slice", format!("channels [{off}, {}) of {:?}", off + c, whole.shape())));
        }
        let inner = TensorInner {
            id: whole.ctx().next_id(),
            shape: vec![n, c, h, w],
            view: Some(whole.view().clone()),
            ctx: whole.ctx().clone(),
            slice: Some(ChannelSlice { off, total }),
        };
        Ok(Tensor(Rc::new(inner)))
    }

    /// Some(where) for a channel slice, None for a plain tensor.
    pub fn slice(&self) -> Option<ChannelSlice> {
        self.0.slice
    }
    pub fn is_slice(&self) -> bool {
        self.0.slice.is_some()
    }

    /// Upload `data` (row-major) as a tensor of `shape`.
    pub fn from_slice(ctx: &Ctx, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        if numel(shape) != data.len() {
            return Err(Error::shape("tensor", format!("shape {shape:?} holds {} elements, got {}", numel(shape), data.len())));
        }
        let view = ctx.upload("tensor", data)?;
        Ok(Tensor::wrap(ctx, shape.to_vec(), view))
    }

    /// A tensor of `value` (uploaded: small tensors such as a backward's seed).
    pub fn full(ctx: &Ctx, shape: &[usize], value: f32) -> Result<Tensor> {
        Tensor::from_slice(ctx, shape, &vec![value; numel(shape)])
    }

    pub fn zeros(ctx: &Ctx, shape: &[usize]) -> Result<Tensor> {
        Tensor::full(ctx, shape, 0.0)
    }

    /// The same storage with another shape of equal element count (a new tensor: a graph does
    /// not see through it).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.numel() {
            return Err(Error::shape("reshape", format!("{:?} -> {shape:?} changes the element count", self.0.shape)));
        }
        Ok(Tensor::wrap(&self.0.ctx, shape.to_vec(), self.view().clone()))
    }

    pub fn id(&self) -> u64 {
        self.0.id
    }
    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    /// Elements of the tensor (of its own channels, for a slice).
    pub fn numel(&self) -> usize {
        numel(&self.0.shape)
    }
    pub fn ctx(&self) -> &Ctx {
        &self.0.ctx
    }
    /// The buffer behind the tensor: all of it, also for a slice (whose own elements are
    /// strided through it; see [`ChannelSlice`]).
    pub fn view(&self) -> &View {
        match &self.0.view {
            Some(v) => v,
            // Hollow tensors live only inside handles, which never hand one out.
            None => unreachable!("{self:?}: a hollow tensor escaped its Handle"),
        }
    }

    /// The same tensor without its values (its id, shape and layout), for a [`Handle`]: its
    /// buffer returns to the pool as soon as nothing else holds it.
    fn hollow(&self) -> Tensor {
        Tensor(Rc::new(TensorInner { view: None, shape: self.0.shape.clone(), ctx: self.0.ctx.clone(), ..*self.0 }))
    }

    /// The tensor's identity to a graph, without its values ([`Handle`]).
    pub fn handle(&self) -> Handle {
        Handle(self.hollow())
    }

    /// Elements of the buffer a gradient of this tensor needs: its own, or for a channel slice
    /// the whole concatenation's (a slice's gradient has its layout).
    pub fn buffer_len(&self) -> usize {
        match self.0.slice {
            Some(s) => self.numel() / self.0.shape[1] * s.total,
            None => self.numel(),
        }
    }

    /// Read back to the host (flushes; resolves once the GPU has done the work before it); a
    /// slice reads its own channels.
    pub async fn to_vec(&self) -> Result<Vec<f32>> {
        let all = self.0.ctx.read(self.view()).await?;
        match (self.0.slice, &self.0.shape[..]) {
            (Some(s), [n, c, h, w]) => {
                let hw = h * w;
                Ok((0..*n).flat_map(|b| all[(b * s.total + s.off) * hw..(b * s.total + s.off + c) * hw].iter().copied()).collect())
            }
            _ => Ok(all),
        }
    }

    /// The dims of an NCHW tensor, or a shape error naming `op`.
    pub fn nchw(&self, op: &'static str) -> Result<[usize; 4]> {
        match self.0.shape[..] {
            [n, c, h, w] => Ok([n, c, h, w]),
            _ => Err(Error::shape(op, format!("expects an NCHW tensor, got shape {:?}", self.0.shape))),
        }
    }
}

/// A tensor's identity to a graph (id, shape, layout) without its values: what a graph node
/// keeps of its inputs, to route their gradients. The values a backward reads are the ones its
/// op saved when it ran (`ops::*Op`); a handle has no way to reach a buffer, so a backward
/// cannot read what its op did not save.
#[derive(Clone, Debug)]
pub struct Handle(Tensor);

impl Handle {
    pub fn id(&self) -> u64 {
        self.0.id()
    }
    pub fn shape(&self) -> &[usize] {
        self.0.shape()
    }
    pub fn buffer_len(&self) -> usize {
        self.0.buffer_len()
    }
    pub fn nchw(&self, op: &'static str) -> Result<[usize; 4]> {
        self.0.nchw(op)
    }
}
