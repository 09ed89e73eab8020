//! The tape autograd. While the tape is on, every op whose inputs want a gradient records a
//! [`Node`] (its op with what the backward needs saved, its inputs, its output) in forward order.
//! `backward` walks the nodes in reverse and calls each op's backward through ONE `match`.
//!
//! Gradient buffers: the first contribution to a tensor's gradient is written (`=`) into a fresh
//! buffer, later ones accumulate (`+=`); a leaf with a grad slot (a parameter) always
//! accumulates into its slot. Every backward kernel takes that `accumulate` flag.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::gpu::{Ctx, View};
use crate::ops::{self, activation, batch_norm, concat, conv2d, dropout2d, group_norm, loss, maxpool2d, pad2d, reduce, resize_bilinear};
use crate::tensor::Tensor;

pub(crate) enum Op {
    Conv2d(conv2d::Conv2dOp),
    ConvTranspose2d(conv2d::Conv2dOp),
    GroupNorm(group_norm::GroupNormOp),
    BatchNorm(batch_norm::BatchNormOp),
    Activation(activation::Activation),
    MaxPool2d(maxpool2d::MaxPool2dOp),
    ResizeBilinear(resize_bilinear::ResizeOp),
    Pad2d(pad2d::Pad2dOp),
    Concat(concat::ConcatOp),
    Dropout2d(dropout2d::Dropout2dOp),
    Add,
    Mul,
    Scale(f32),
    BiasAdd,
    Loss(loss::LossKind),
    Reduce(reduce::ReduceKind),
}

pub(crate) struct Node {
    pub op: Op,
    pub inputs: Vec<Tensor>,
    pub output: Tensor,
}

#[derive(Default)]
pub struct Tape {
    nodes: Vec<Node>,
}

impl Tape {
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// Where a backward kernel writes one input's gradient.
pub(crate) struct Sink<'a> {
    ctx: &'a Ctx,
    grads: &'a mut HashMap<u64, View>,
}

impl Sink<'_> {
    /// `None` when `t` wants no gradient; else the buffer and whether to accumulate into it.
    pub fn target(&mut self, t: &Tensor) -> Result<Option<(View, bool)>> {
        if !t.requires_grad() {
            return Ok(None);
        }
        if let Some(slot) = &t.0.grad_slot {
            return Ok(Some((slot.clone(), true)));
        }
        if let Some(g) = self.grads.get(&t.id()) {
            return Ok(Some((g.clone(), true)));
        }
        let g = self.ctx.alloc("gradient", t.numel())?;
        self.grads.insert(t.id(), g.clone());
        Ok(Some((g, false)))
    }

    pub fn ctx(&self) -> &Ctx {
        self.ctx
    }
}

/// The gradients `backward` computed for leaves without a grad slot.
pub struct Grads {
    ctx: Ctx,
    map: HashMap<u64, (View, Vec<usize>)>,
}

impl Grads {
    pub fn get(&self, t: &Tensor) -> Option<Tensor> {
        self.map.get(&t.id()).map(|(v, s)| Tensor::wrap(&self.ctx, s.clone(), v.clone(), false))
    }
}

impl Ctx {
    /// Whether an op on `inputs` records a node (tape on and some input wants a gradient).
    pub(crate) fn wants_grad(&self, inputs: &[&Tensor]) -> bool {
        self.0.grad_enabled.get() && inputs.iter().any(|t| t.requires_grad())
    }

    pub(crate) fn record(&self, op: Op, inputs: &[&Tensor], output: &Tensor) {
        if output.requires_grad() {
            self.0.tape.borrow_mut().nodes.push(Node { op, inputs: inputs.iter().map(|t| (*t).clone()).collect(), output: output.clone() });
        }
    }

    /// Nodes recorded and not yet consumed by a backward.
    pub fn tape_len(&self) -> usize {
        self.0.tape.borrow().len()
    }

    /// Drop the recorded graph without a backward (an evaluation that ran with the tape on).
    pub fn clear_tape(&self) {
        self.0.tape.borrow_mut().nodes.clear();
    }

    /// Backward from a scalar loss (seed 1).
    pub fn backward(&self, loss: &Tensor) -> Result<Grads> {
        if loss.numel() != 1 {
            return Err(Error::Autograd(format!("backward needs a scalar loss, got shape {:?}", loss.shape())));
        }
        let one = Tensor::full(self, &[1], 1.0)?;
        self.backward_with(loss, &one)
    }

    /// Backward from `y` with upstream gradient `dy` (same shape). Consumes the tape.
    pub fn backward_with(&self, y: &Tensor, dy: &Tensor) -> Result<Grads> {
        if y.shape() != dy.shape() {
            return Err(Error::Autograd(format!("gradient shape {:?} does not match output shape {:?}", dy.shape(), y.shape())));
        }
        if !y.requires_grad() {
            return Err(Error::Autograd("backward from a tensor that does not require a gradient (no input wanted one, or the tape was off)".into()));
        }
        let nodes = std::mem::take(&mut self.0.tape.borrow_mut().nodes);
        let mut grads: HashMap<u64, View> = HashMap::new();
        // Copy the seed: accumulation into y's gradient must not write the caller's tensor.
        let seed = self.alloc("gradient", dy.numel())?;
        ops::elementwise::copy(self, dy.view(), &seed, false)?;
        grads.insert(y.id(), seed);
        let mut shapes: HashMap<u64, Vec<usize>> = HashMap::new();
        for node in nodes.iter().rev() {
            let Some(g) = grads.remove(&node.output.id()) else { continue };
            for t in &node.inputs {
                shapes.entry(t.id()).or_insert_with(|| t.shape().to_vec());
            }
            let mut sink = Sink { ctx: self, grads: &mut grads };
            backward_node(node, &g, &mut sink)?;
        }
        let map = grads.into_iter().filter_map(|(id, v)| shapes.remove(&id).map(|s| (id, (v, s)))).collect();
        Ok(Grads { ctx: self.clone(), map })
    }
}

/// The one match: each op's backward, given the gradient of its output.
fn backward_node(node: &Node, dy: &View, sink: &mut Sink) -> Result<()> {
    let x = &node.inputs;
    match &node.op {
        Op::Conv2d(o) => o.backward_conv(x, dy, sink),
        Op::ConvTranspose2d(o) => o.backward_conv_transpose(x, dy, sink),
        Op::GroupNorm(o) => o.backward(x, dy, sink),
        Op::BatchNorm(o) => o.backward(x, dy, sink),
        Op::Activation(a) => activation::backward(*a, &x[0], dy, sink),
        Op::MaxPool2d(o) => o.backward(&x[0], dy, sink),
        Op::ResizeBilinear(o) => o.backward(&x[0], dy, sink),
        Op::Pad2d(o) => o.backward(&x[0], dy, sink),
        Op::Concat(o) => o.backward(x, dy, sink),
        Op::Dropout2d(o) => o.backward(&x[0], dy, sink),
        Op::Add => ops::elementwise::add_backward(x, dy, sink),
        Op::Mul => ops::elementwise::mul_backward(x, dy, sink),
        Op::Scale(a) => ops::elementwise::scale_backward(*a, &x[0], dy, sink),
        Op::BiasAdd => ops::elementwise::bias_add_backward(x, dy, sink),
        Op::Loss(k) => loss::backward(*k, x, dy, sink),
        Op::Reduce(k) => reduce::backward(*k, &x[0], dy, sink),
    }
}
