//! The autograd: a [`Graph`] value owned by its caller. While it records, every op whose inputs
//! want a gradient adds a [`Node`] (the op with what its backward needs, its inputs, its output)
//! in forward order. `backward(loss)` walks, in reverse, only the nodes the loss depends on, calls
//! each op's backward through ONE `match`, and drops each node (and the tensors it saved) as soon
//! as its backward has been encoded. Dropping a graph without a backward frees everything it
//! saved: nothing of it lives in the GPU runtime.
//!
//! Gradient buffers: the first contribution to a tensor's gradient is written (`=`) into a fresh
//! buffer, later ones accumulate (`+=`); a parameter (a leaf with a grad slot) always accumulates
//! into its slot. Every backward kernel takes that `accumulate` flag.

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::gpu::{Ctx, View};
use crate::ops::activation::{self, Activation};
use crate::ops::kernels::Kernels;
use crate::ops::loss::{self, LossKind};
use crate::ops::reduce::{self, ReduceKind};
use crate::ops::{self, Sink, batch_norm, concat, conv2d, dropout2d, elementwise, group_norm, maxpool2d, pad2d, resize_bilinear};
use crate::tensor::{Handle, Tensor};

/// A recorded op: what its backward needs beyond the handles of its inputs, saved by the op
/// itself when it ran (each `*Op` owns the tensors its backward reads; a variant without one
/// reads no input's values).
pub enum Op {
    Conv2d(conv2d::Conv2dOp),
    ConvTranspose2d(conv2d::Conv2dOp),
    GroupNorm(group_norm::GroupNormOp),
    BatchNorm(batch_norm::BatchNormOp),
    Activation(activation::ActivationOp),
    MaxPool2d(maxpool2d::MaxPool2dOp),
    ResizeBilinear(resize_bilinear::ResizeOp),
    Pad2d(pad2d::Pad2dOp),
    Concat(concat::ConcatOp),
    /// A concatenation whose parts were written in place (channel slices of its buffer).
    ConcatInPlace,
    Dropout2d(dropout2d::Dropout2dOp),
    Add,
    Mul(elementwise::MulOp),
    Scale(f32),
    BiasAdd,
    Loss(loss::LossOp),
    Reduce(reduce::ReduceOp),
}

/// A node keeps its inputs and output as handles (identity, shape, layout: where gradients
/// go), never their values: those its backward reads, its op saved.
pub struct Node {
    op: Op,
    inputs: Vec<Handle>,
    output: Handle,
}

/// What a tensor is to the graph.
enum Tracked {
    /// A leaf that wants a gradient; with a slot (a parameter) it accumulates there.
    Leaf(Option<View>),
    /// The output of node k.
    Out(usize),
}

/// A differentiable computation, owned by whoever runs it.
pub struct Graph {
    ctx: Ctx,
    /// How its ops run their kernels (precision, pinned blockings); each op keeps it for its
    /// backward.
    kernels: Kernels,
    record: bool,
    nodes: Vec<Node>,
    tracked: HashMap<u64, Tracked>,
}

/// The gradients `backward` computed for leaves without a grad slot.
pub struct Grads {
    ctx: Ctx,
    map: HashMap<u64, (View, Vec<usize>)>,
}

impl Grads {
    pub fn get(&self, t: &Tensor) -> Option<Tensor> {
        self.map.get(&t.id()).map(|(v, s)| Tensor::wrap(&self.ctx, s.clone(), v.clone()))
    }
}

/// The targets of one backward pass: the graph's tracking plus the gradients so far.
struct Targets<'a> {
    ctx: &'a Ctx,
    tracked: &'a HashMap<u64, Tracked>,
    grads: &'a mut HashMap<u64, View>,
}

impl Sink for Targets<'_> {
    fn target(&mut self, t: &Handle) -> Result<Option<(View, bool)>> {
        match self.tracked.get(&t.id()) {
            None => Ok(None),
            Some(Tracked::Leaf(Some(slot))) => Ok(Some((slot.clone(), true))),
            Some(_) => {
                if let Some(g) = self.grads.get(&t.id()) {
                    return Ok(Some((g.clone(), true)));
                }
                // A channel slice's gradient has its layout: a buffer like the whole concat.
                let g = self.ctx.alloc("gradient", t.buffer_len())?;
                self.grads.insert(t.id(), g.clone());
                Ok(Some((g, false)))
            }
        }
    }
    fn wants(&self, t: &Handle) -> bool {
        self.tracked.contains_key(&t.id())
    }
    fn alias(&mut self, t: &Handle, g: &View) -> bool {
        match self.tracked.get(&t.id()) {
            None => true,
            Some(Tracked::Leaf(Some(_))) => false,
            Some(_) if self.grads.contains_key(&t.id()) => false,
            Some(_) => {
                self.grads.insert(t.id(), g.clone());
                true
            }
        }
    }
    fn ctx(&self) -> &Ctx {
        self.ctx
    }
}

impl Graph {
    /// A graph that records (training).
    pub fn new(ctx: &Ctx) -> Graph {
        Graph { ctx: ctx.clone(), kernels: Kernels::default(), record: true, nodes: Vec::new(), tracked: HashMap::new() }
    }

    /// A graph that records nothing (evaluation): ops run, nothing is kept for a backward.
    pub fn inference(ctx: &Ctx) -> Graph {
        Graph { record: false, ..Graph::new(ctx) }
    }

    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// This graph with its ops running their kernels as `k` says (f16 operands, pinned
    /// blockings; the default: f32, autotuned).
    pub fn with_kernels(mut self, k: Kernels) -> Graph {
        self.kernels = k;
        self
    }

    /// Run the ops recorded from now on as `k` says (those recorded keep how they ran).
    pub fn set_kernels(&mut self, k: Kernels) {
        self.kernels = k;
    }

    pub fn kernels(&self) -> &Kernels {
        &self.kernels
    }

    /// Nodes recorded so far.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// `t` as a leaf that wants a gradient (returned by `backward` in its [`Grads`]).
    pub fn leaf(&mut self, t: &Tensor) -> Tensor {
        if self.record {
            self.tracked.insert(t.id(), Tracked::Leaf(None));
        }
        t.clone()
    }

    /// `t` as a parameter: its gradient accumulates (`+=`) into `slot` (same element count).
    pub fn param(&mut self, t: &Tensor, slot: View) -> Result<Tensor> {
        if slot.len() != t.numel() {
            return Err(Error::shape("grad slot", format!("slot has {} elements, tensor {:?}", slot.len(), t.shape())));
        }
        if self.record {
            self.tracked.insert(t.id(), Tracked::Leaf(Some(slot)));
        }
        Ok(t.clone())
    }

    /// Whether `t` wants a gradient in this graph.
    pub fn wants(&self, t: &Tensor) -> bool {
        self.tracked.contains_key(&t.id())
    }

    fn record(&mut self, op: Op, inputs: &[&Tensor], output: &Tensor) {
        if self.record && inputs.iter().any(|t| self.wants(t)) {
            self.tracked.insert(output.id(), Tracked::Out(self.nodes.len()));
            // Only handles: a buffer the op did not save goes back to the pool once the forward
            // is done with it.
            let inputs = inputs.iter().map(|t| t.handle()).collect();
            self.nodes.push(Node { op, inputs, output: output.handle() });
        }
    }

    // ---- in-place concatenation ----------------------------------------------------------------

    /// Reserve the channel concatenation [n, sum(chans), h, w] of parts to be produced later, and
    /// return the parts as channel slices of it. Pass a part as the `into` of the op that
    /// produces it (the `_into` forms of norm+activation, activation, pad, bilinear resize and
    /// transposed conv); `concat` of all the parts, in order, is then the reserved tensor with
    /// no copy.
    pub fn concat_slots(&mut self, n: usize, chans: &[usize], h: usize, w: usize) -> Result<Vec<Tensor>> {
        let total: usize = chans.iter().sum();
        let whole = Tensor::wrap(&self.ctx, vec![n, total, h, w], self.ctx.alloc("concat", n * total * h * w)?);
        let mut off = 0;
        chans
            .iter()
            .map(|&c| {
                off += c;
                Tensor::channel_slice(&whole, off - c, c)
            })
            .collect()
    }

    /// All parts are the channel slices of one buffer, in order, covering it: the concat is
    /// that buffer.
    fn concatenated(parts: &[&Tensor]) -> Option<Vec<usize>> {
        let first = parts.first()?;
        let [n, _, h, w] = first.nchw("concat").ok()?;
        let total = first.slice()?.total;
        let mut off = 0;
        for t in parts {
            let s = t.slice()?;
            let [tn, c, th, tw] = t.nchw("concat").ok()?;
            if s.off != off || s.total != total || (tn, th, tw) != (n, h, w) || !t.view().same(first.view()) {
                return None;
            }
            off += c;
        }
        (off == total).then_some(vec![n, total, h, w])
    }

    // ---- the differentiable ops ------------------------------------------------------------------

    pub fn conv2d(&mut self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: (usize, usize), pad: (usize, usize)) -> Result<Tensor> {
        let (y, op) = conv2d::conv2d(&self.kernels, x, w, b, stride, pad)?;
        let mut inputs = vec![x, w];
        inputs.extend(b);
        self.record(Op::Conv2d(op), &inputs, &y);
        Ok(y)
    }

    pub fn conv_transpose2d(
        &mut self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        stride: (usize, usize),
        pad: (usize, usize),
        output_pad: (usize, usize),
    ) -> Result<Tensor> {
        self.conv_transpose2d_into(x, w, b, stride, pad, output_pad, None)
    }

    /// `conv_transpose2d` written `into` a concat part when given.
    #[allow(clippy::too_many_arguments)]
    pub fn conv_transpose2d_into(
        &mut self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        stride: (usize, usize),
        pad: (usize, usize),
        output_pad: (usize, usize),
        into: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (y, op) = conv2d::conv_transpose2d(&self.kernels, x, w, b, stride, pad, output_pad, into)?;
        let mut inputs = vec![x, w];
        inputs.extend(b);
        self.record(Op::ConvTranspose2d(op), &inputs, &y);
        Ok(y)
    }

    pub fn group_norm(&mut self, x: &Tensor, groups: usize, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<Tensor> {
        self.group_norm_act(x, groups, gamma, beta, eps, None)
    }

    /// Group norm with the activation after it fused in (no dispatch of its own either way).
    pub fn group_norm_act(&mut self, x: &Tensor, groups: usize, gamma: &Tensor, beta: &Tensor, eps: f32, act: Option<Activation>) -> Result<Tensor> {
        self.group_norm_act_into(x, groups, gamma, beta, eps, act, None)
    }

    /// `group_norm_act` written `into` a concat part when given.
    #[allow(clippy::too_many_arguments)]
    pub fn group_norm_act_into(
        &mut self,
        x: &Tensor,
        groups: usize,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
        act: Option<Activation>,
        into: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (y, op) = group_norm::group_norm(&self.kernels, x, groups, gamma, beta, eps, act, into)?;
        self.record(Op::GroupNorm(op), &[x, gamma, beta], &y);
        Ok(y)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn batch_norm(
        &mut self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        training: bool,
        momentum: f32,
        eps: f32,
    ) -> Result<Tensor> {
        self.batch_norm_act(x, gamma, beta, running_mean, running_var, training, momentum, eps, None)
    }

    /// Batch norm with the activation after it fused in.
    #[allow(clippy::too_many_arguments)]
    pub fn batch_norm_act(
        &mut self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        training: bool,
        momentum: f32,
        eps: f32,
        act: Option<Activation>,
    ) -> Result<Tensor> {
        self.batch_norm_act_into(x, gamma, beta, running_mean, running_var, training, momentum, eps, act, None)
    }

    /// `batch_norm_act` written `into` a concat part when given.
    #[allow(clippy::too_many_arguments)]
    pub fn batch_norm_act_into(
        &mut self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        training: bool,
        momentum: f32,
        eps: f32,
        act: Option<Activation>,
        into: Option<&Tensor>,
    ) -> Result<Tensor> {
        if !training && self.record && [x, gamma, beta].iter().any(|t| self.wants(t)) {
            return Err(Error::shape("batch_norm", "eval-mode batch norm has no backward; run it in an inference graph"));
        }
        let (y, op) = batch_norm::batch_norm(&self.kernels, x, gamma, beta, running_mean, running_var, training, momentum, eps, act, into)?;
        if let Some(op) = op {
            self.record(Op::BatchNorm(op), &[x, gamma, beta], &y);
        }
        Ok(y)
    }

    pub fn activation(&mut self, x: &Tensor, a: Activation) -> Result<Tensor> {
        self.activation_into(x, a, None)
    }

    /// `activation` written `into` a concat part when given.
    pub fn activation_into(&mut self, x: &Tensor, a: Activation, into: Option<&Tensor>) -> Result<Tensor> {
        let y = activation::activation(x, a, into)?;
        self.record(Op::Activation(activation::ActivationOp::saving(a, x, &y)), &[x], &y);
        Ok(y)
    }
    pub fn relu(&mut self, x: &Tensor) -> Result<Tensor> {
        self.activation(x, Activation::Relu)
    }
    pub fn silu(&mut self, x: &Tensor) -> Result<Tensor> {
        self.activation(x, Activation::Silu)
    }
    pub fn sigmoid(&mut self, x: &Tensor) -> Result<Tensor> {
        self.activation(x, Activation::Sigmoid)
    }

    pub fn max_pool2d(&mut self, x: &Tensor, kernel: (usize, usize), stride: (usize, usize)) -> Result<Tensor> {
        let (y, op) = maxpool2d::max_pool2d(x, kernel, stride)?;
        self.record(Op::MaxPool2d(op), &[x], &y);
        Ok(y)
    }

    pub fn resize_bilinear(&mut self, x: &Tensor, ho: usize, wo: usize, align_corners: bool) -> Result<Tensor> {
        self.resize_bilinear_into(x, ho, wo, align_corners, None)
    }

    /// `resize_bilinear` written `into` a concat part when given.
    pub fn resize_bilinear_into(&mut self, x: &Tensor, ho: usize, wo: usize, align_corners: bool, into: Option<&Tensor>) -> Result<Tensor> {
        let (y, op) = resize_bilinear::resize_bilinear(x, ho, wo, align_corners, into)?;
        self.record(Op::ResizeBilinear(op), &[x], &y);
        Ok(y)
    }

    /// Bilinear x2 upsampling (F.interpolate(scale_factor=2)); for x2 PyTorch's scale 1/2 equals in/out.
    pub fn upsample2x(&mut self, x: &Tensor, align_corners: bool) -> Result<Tensor> {
        let [_, _, h, w] = x.nchw("resize_bilinear")?;
        self.resize_bilinear(x, 2 * h, 2 * w, align_corners)
    }

    pub fn pad2d(&mut self, x: &Tensor, pads: (usize, usize, usize, usize)) -> Result<Tensor> {
        self.pad2d_into(x, pads, None)
    }

    /// `pad2d` written `into` a concat part when given.
    pub fn pad2d_into(&mut self, x: &Tensor, pads: (usize, usize, usize, usize), into: Option<&Tensor>) -> Result<Tensor> {
        let (y, op) = pad2d::pad2d(x, pads, into)?;
        self.record(Op::Pad2d(op), &[x], &y);
        Ok(y)
    }

    /// torch.cat(parts, dim=1); no copy when the parts were written in place (`concat_slots`).
    pub fn concat(&mut self, parts: &[&Tensor]) -> Result<Tensor> {
        if let Some(shape) = Self::concatenated(parts) {
            let y = Tensor::wrap(&self.ctx, shape, parts[0].view().clone());
            self.record(Op::ConcatInPlace, parts, &y);
            return Ok(y);
        }
        let (y, op) = concat::concat(parts)?;
        self.record(Op::Concat(op), parts, &y);
        Ok(y)
    }

    pub fn dropout2d(&mut self, x: &Tensor, p: f32, seed: u64, step: u64, layer: u32) -> Result<Tensor> {
        let (y, op) = dropout2d::dropout2d(x, p, seed, step, layer)?;
        self.record(Op::Dropout2d(op), &[x], &y);
        Ok(y)
    }

    pub fn add(&mut self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let y = elementwise::add(a, b)?;
        self.record(Op::Add, &[a, b], &y);
        Ok(y)
    }
    pub fn mul(&mut self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let y = elementwise::mul(a, b)?;
        self.record(Op::Mul(elementwise::MulOp::saving(a, b)), &[a, b], &y);
        Ok(y)
    }
    pub fn scale(&mut self, x: &Tensor, alpha: f32) -> Result<Tensor> {
        let y = elementwise::scale(x, alpha)?;
        self.record(Op::Scale(alpha), &[x], &y);
        Ok(y)
    }
    pub fn bias_add(&mut self, x: &Tensor, b: &Tensor) -> Result<Tensor> {
        let y = elementwise::bias_add(x, b)?;
        self.record(Op::BiasAdd, &[x, b], &y);
        Ok(y)
    }

    /// The mean loss between `pred` and `target` (same shape), as a scalar tensor [1].
    pub fn loss(&mut self, pred: &Tensor, target: &Tensor, kind: LossKind) -> Result<Tensor> {
        let y = loss::loss(pred, target, kind)?;
        self.record(Op::Loss(loss::LossOp::saving(kind, pred, target)), &[pred, target], &y);
        Ok(y)
    }
    pub fn mse_loss(&mut self, pred: &Tensor, target: &Tensor) -> Result<Tensor> {
        self.loss(pred, target, LossKind::Mse)
    }

    /// Reduce all of `x` to a scalar tensor of shape [1].
    pub fn reduce(&mut self, x: &Tensor, kind: ReduceKind) -> Result<Tensor> {
        let y = reduce::reduce(x, kind)?;
        self.record(Op::Reduce(reduce::ReduceOp::saving(kind, x)), &[x], &y);
        Ok(y)
    }
    pub fn sum_sq(&mut self, x: &Tensor) -> Result<Tensor> {
        self.reduce(x, ReduceKind::SumSq)
    }

    // ---- backward ----------------------------------------------------------------------------------

    /// Backward from a scalar loss (seed 1). Consumes the graph.
    pub fn backward(self, loss: &Tensor) -> Result<Grads> {
        if loss.numel() != 1 {
            return Err(Error::Autograd(format!("backward needs a scalar loss, got shape {:?}", loss.shape())));
        }
        let one = Tensor::full(&self.ctx, &[1], 1.0)?;
        self.backward_with(loss, &one)
    }

    /// Backward from `y` with upstream gradient `dy` (same shape). Visits only the nodes `y`
    /// depends on, newest first, and drops each one (with what it saved) once its backward is
    /// encoded.
    pub fn backward_with(self, y: &Tensor, dy: &Tensor) -> Result<Grads> {
        if y.shape() != dy.shape() {
            return Err(Error::Autograd(format!("gradient shape {:?} does not match output shape {:?}", dy.shape(), y.shape())));
        }
        if y.is_slice() || dy.is_slice() {
            return Err(Error::Autograd("backward from a channel slice: start from the whole concat, or a plain tensor".into()));
        }
        let Some(Tracked::Out(last)) = self.tracked.get(&y.id()) else {
            return Err(Error::Autograd(
                "backward from a tensor that does not require a gradient (no input wanted one, or the graph records nothing)".into(),
            ));
        };
        let last = *last;
        let Graph { ctx, nodes, tracked, .. } = self;
        // What y depends on: the nodes reachable backwards from its own.
        let mut needed = HashSet::new();
        let mut stack = vec![last];
        while let Some(k) = stack.pop() {
            if needed.insert(k) {
                for t in &nodes[k].inputs {
                    if let Some(Tracked::Out(j)) = tracked.get(&t.id()) {
                        stack.push(*j);
                    }
                }
            }
        }
        let mut nodes: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
        let mut grads: HashMap<u64, View> = HashMap::new();
        // Copy the seed: accumulation into y's gradient must not write the caller's tensor.
        let seed = ctx.alloc("gradient", dy.numel())?;
        ops::elementwise::copy(&ctx, dy.view(), &seed, false)?;
        grads.insert(y.id(), seed);
        let mut shapes: HashMap<u64, Vec<usize>> = HashMap::new();
        for k in (0..=last).rev() {
            if !needed.contains(&k) {
                continue;
            }
            let Some(node) = nodes[k].take() else { continue };
            let Some(g) = grads.remove(&node.output.id()) else { continue };
            for t in &node.inputs {
                if matches!(tracked.get(&t.id()), Some(Tracked::Leaf(None))) {
                    shapes.entry(t.id()).or_insert_with(|| t.shape().to_vec());
                }
            }
            let mut sink = Targets { ctx: &ctx, tracked: &tracked, grads: &mut grads };
            backward_node(&node, &g, &mut sink)?;
            // `node` drops here: its saved tensors return to the pool.
        }
        let map = grads.into_iter().filter_map(|(id, v)| shapes.remove(&id).map(|s| (id, (v, s)))).collect();
        Ok(Grads { ctx, map })
    }
}

/// The one match: each op's backward, given the gradient of its output.
fn backward_node(node: &Node, dy: &View, sink: &mut dyn Sink) -> Result<()> {
    let x = &node.inputs;
    match &node.op {
        Op::Conv2d(o) => o.backward_conv(x, dy, sink),
        Op::ConvTranspose2d(o) => o.backward_conv_transpose(x, dy, sink),
        Op::GroupNorm(o) => o.backward(x, dy, sink),
        Op::BatchNorm(o) => o.backward(x, dy, sink),
        Op::Activation(o) => o.backward(&x[0], dy, sink),
        Op::MaxPool2d(o) => o.backward(&x[0], dy, sink),
        Op::ResizeBilinear(o) => o.backward(&x[0], dy, sink),
        Op::Pad2d(o) => o.backward(&x[0], dy, sink),
        Op::Concat(o) => o.backward(x, dy, sink),
        Op::ConcatInPlace => {
            for t in x {
                if sink.wants(t)
                    && !sink.alias(t, dy)
                    && let Some((g, _)) = sink.target(t)?
                {
                    // Both have the concat's layout: adding all of it adds t's channels.
                    ops::elementwise::copy(sink.ctx(), dy, &g, true)?;
                }
            }
            Ok(())
        }
        Op::Dropout2d(o) => o.backward(&x[0], dy, sink),
        Op::Add => ops::elementwise::add_backward(x, dy, sink),
        Op::Mul(o) => o.backward(x, dy, sink),
        Op::Scale(a) => ops::elementwise::scale_backward(*a, &x[0], dy, sink),
        Op::BiasAdd => ops::elementwise::bias_add_backward(x, dy, sink),
        Op::Loss(o) => o.backward(x, dy, sink),
        Op::Reduce(o) => o.backward(&x[0], dy, sink),
    }
}
