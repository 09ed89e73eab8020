//! [`Tensor`]: an f32 GPU buffer view with a shape, the context it lives in, and what the
//! autograd needs (an id, whether it wants a gradient, an optional persistent gradient slot).

use std::rc::Rc;

use crate::error::{Error, Result};
use crate::gpu::{Ctx, View};

pub(crate) struct TensorInner {
    pub(crate) id: u64,
    pub(crate) shape: Vec<usize>,
    pub(crate) view: View,
    pub(crate) ctx: Ctx,
    pub(crate) requires_grad: bool,
    /// A parameter's gradient buffer: backward accumulates (`+=`) into it instead of handing
    /// back a fresh gradient.
    pub(crate) grad_slot: Option<View>,
}

#[derive(Clone)]
pub struct Tensor(pub(crate) Rc<TensorInner>);

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor#{}{:?}{}", self.0.id, self.0.shape, if self.0.requires_grad { " (grad)" } else { "" })
    }
}

pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    pub(crate) fn wrap(ctx: &Ctx, shape: Vec<usize>, view: View, requires_grad: bool) -> Tensor {
        Tensor(Rc::new(TensorInner { id: ctx.next_id(), shape, view, ctx: ctx.clone(), requires_grad, grad_slot: None }))
    }

    /// Upload `data` (row-major) as a tensor of `shape`.
    pub fn from_slice(ctx: &Ctx, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        if numel(shape) != data.len() {
            return Err(Error::shape("tensor", format!("shape {shape:?} holds {} elements, got {}", numel(shape), data.len())));
        }
        let view = ctx.upload("tensor", data)?;
        Ok(Tensor::wrap(ctx, shape.to_vec(), view, false))
    }

    /// A leaf that wants a gradient (a parameter or a checked input).
    pub fn leaf(ctx: &Ctx, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        Ok(Tensor::from_slice(ctx, shape, data)?.requiring_grad())
    }

    pub fn full(ctx: &Ctx, shape: &[usize], value: f32) -> Result<Tensor> {
        let view = ctx.alloc("full", numel(shape))?;
        crate::ops::elementwise::fill(ctx, &view, value)?;
        Ok(Tensor::wrap(ctx, shape.to_vec(), view, false))
    }

    pub fn zeros(ctx: &Ctx, shape: &[usize]) -> Result<Tensor> {
        Tensor::full(ctx, shape, 0.0)
    }

    /// The same storage as a leaf that wants a gradient.
    pub fn requiring_grad(&self) -> Tensor {
        let i = &self.0;
        Tensor(Rc::new(TensorInner {
            id: i.ctx.next_id(),
            shape: i.shape.clone(),
            view: i.view.clone(),
            ctx: i.ctx.clone(),
            requires_grad: true,
            grad_slot: i.grad_slot.clone(),
        }))
    }

    /// The same storage cut off from the graph.
    pub fn detach(&self) -> Tensor {
        Tensor::wrap(&self.0.ctx, self.0.shape.clone(), self.0.view.clone(), false)
    }

    /// A leaf whose gradient accumulates into `slot` (same element count).
    pub fn with_grad_slot(&self, slot: View) -> Result<Tensor> {
        if slot.len() != self.numel() {
            return Err(Error::shape("grad slot", format!("slot has {} elements, tensor {:?}", slot.len(), self.0.shape)));
        }
        let i = &self.0;
        Ok(Tensor(Rc::new(TensorInner {
            id: i.ctx.next_id(),
            shape: i.shape.clone(),
            view: i.view.clone(),
            ctx: i.ctx.clone(),
            requires_grad: true,
            grad_slot: Some(slot),
        })))
    }

    /// The same storage with another shape of equal element count.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.numel() {
            return Err(Error::shape("reshape", format!("{:?} -> {shape:?} changes the element count", self.0.shape)));
        }
        if self.0.requires_grad {
            return Err(Error::shape("reshape", "reshape of a tensor in the graph is not supported; reshape its leaf instead"));
        }
        Ok(Tensor::wrap(&self.0.ctx, shape.to_vec(), self.0.view.clone(), false))
    }

    pub fn id(&self) -> u64 {
        self.0.id
    }
    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    pub fn numel(&self) -> usize {
        self.0.view.len()
    }
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }
    pub fn ctx(&self) -> &Ctx {
        &self.0.ctx
    }
    pub fn view(&self) -> &View {
        &self.0.view
    }

    /// Read back to the host (flushes and waits).
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        self.0.ctx.read(&self.0.view)
    }

    /// The dims of an NCHW tensor, or a shape error naming `op`.
    pub fn nchw(&self, op: &'static str) -> Result<[usize; 4]> {
        match self.0.shape[..] {
            [n, c, h, w] => Ok([n, c, h, w]),
            _ => Err(Error::shape(op, format!("expects an NCHW tensor, got shape {:?}", self.0.shape))),
        }
    }
}
