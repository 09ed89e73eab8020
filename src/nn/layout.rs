//! The parameter layout: every parameter and buffer with its PyTorch name, shape, init and offset
//! in one flat arena (offsets aligned to 64 elements so each is a valid storage-binding offset).
//! The optimiser, the gradient, the EMA and the Adam moments all share this layout, so each of
//! them is ONE buffer and ONE dispatch.

use crate::autograd::Graph;
use crate::error::Result;
use crate::gpu::{Ctx, View};
use crate::tensor::Tensor;
use crate::util::rng::Rng;

/// Elements per alignment unit: 256 bytes, the storage offset alignment we request.
pub const ALIGN: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Kaiming-normal, mode fan_out, gain for relu: N(0, 2 / fan_out), fan_out = shape[0] * kh * kw
    /// (PyTorch's rule, also for a transposed conv's [cin, cout, kh, kw] weight).
    KaimingFanOut,
    /// Kaiming-normal, mode fan_in, gain for relu: N(0, 2 / fan_in), fan_in = shape[1] * kh * kw.
    KaimingFanIn,
    Zeros,
    Ones,
    Constant(f32),
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub init: Init,
}

impl Entry {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// Trained parameters, in registration (= PyTorch state_dict) order.
    pub params: Vec<Entry>,
    /// Non-trained state (batch-norm running statistics), in their own arena.
    pub buffers: Vec<Entry>,
    /// Batch-norm `num_batches_tracked` names: int64 scalars in PyTorch, kept on the host.
    pub counters: Vec<String>,
    param_len: usize,
    buffer_len: usize,
}

fn push(list: &mut Vec<Entry>, len: &mut usize, name: String, shape: Vec<usize>, init: Init) -> usize {
    let offset = *len;
    let n: usize = shape.iter().product();
    *len = offset + n.div_ceil(ALIGN) * ALIGN;
    list.push(Entry { name, shape, offset, init });
    list.len() - 1
}

impl Layout {
    pub fn param(&mut self, name: String, shape: Vec<usize>, init: Init) -> usize {
        push(&mut self.params, &mut self.param_len, name, shape, init)
    }
    pub fn buffer(&mut self, name: String, shape: Vec<usize>, init: Init) -> usize {
        push(&mut self.buffers, &mut self.buffer_len, name, shape, init)
    }
    /// Arena length in elements (with alignment gaps).
    pub fn param_len(&self) -> usize {
        self.param_len.max(ALIGN)
    }
    pub fn buffer_len(&self) -> usize {
        self.buffer_len.max(ALIGN)
    }
    /// The parameter count PyTorch would print (no gaps, no buffers).
    pub fn num_params(&self) -> usize {
        self.params.iter().map(Entry::numel).sum()
    }

    fn fill(entries: &[Entry], len: usize, rng: &mut Rng) -> Vec<f32> {
        let mut out = vec![0.0f32; len];
        for e in entries {
            let dst = &mut out[e.offset..e.offset + e.numel()];
            match e.init {
                Init::Zeros => {}
                Init::Ones => dst.fill(1.0),
                Init::Constant(c) => dst.fill(c),
                Init::KaimingFanIn => {
                    let fan_in = e.shape[1] * e.shape[2..].iter().product::<usize>();
                    let std = (2.0 / fan_in as f64).sqrt();
                    for v in dst.iter_mut() {
                        *v = (std * rng.normal()) as f32;
                    }
                }
                Init::KaimingFanOut => {
                    let fan_out = e.shape[0] * e.shape[2..].iter().product::<usize>();
                    let std = (2.0 / fan_out as f64).sqrt();
                    for v in dst.iter_mut() {
                        *v = (std * rng.normal()) as f32;
                    }
                }
            }
        }
        out
    }

    /// Initial parameter and buffer values (host), deterministic in `seed`.
    pub fn init(&self, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = Rng::new(seed);
        (Layout::fill(&self.params, self.param_len(), &mut rng), Layout::fill(&self.buffers, self.buffer_len(), &mut rng))
    }
}

/// A set of GPU tensors laid out by a [`Layout`]: views into one parameter arena (with gradient
/// slots into one gradient arena when training) and one buffer arena.
pub struct Weights {
    pub params: Vec<Tensor>,
    pub buffers: Vec<Tensor>,
    /// Each parameter's slot in the gradient arena, when training.
    slots: Option<Vec<View>>,
}

impl Weights {
    /// Views of `arena` (and of `grads`, when given: each parameter's gradient slot) and of
    /// `buffers`.
    pub fn views(ctx: &Ctx, layout: &Layout, arena: &View, grads: Option<&View>, buffers: &View) -> Result<Weights> {
        let mut params = Vec::with_capacity(layout.params.len());
        for e in &layout.params {
            params.push(Tensor::wrap(ctx, e.shape.clone(), arena.slice(e.offset, e.numel())?));
        }
        let slots = match grads {
            Some(g) => Some(layout.params.iter().map(|e| g.slice(e.offset, e.numel())).collect::<Result<Vec<_>>>()?),
            None => None,
        };
        let mut bufs = Vec::with_capacity(layout.buffers.len());
        for e in &layout.buffers {
            bufs.push(Tensor::wrap(ctx, e.shape.clone(), buffers.slice(e.offset, e.numel())?));
        }
        Ok(Weights { params, buffers: bufs, slots })
    }

    /// Make the parameters leaves of `g` whose gradients accumulate into their slots (an error
    /// for weights made without a gradient arena).
    pub fn attach(&self, g: &mut Graph) -> Result<()> {
        let slots = self.slots.as_ref().ok_or_else(|| crate::error::Error::Autograd("these weights have no gradient arena".into()))?;
        for (t, s) in self.params.iter().zip(slots) {
            g.param(t, s.clone())?;
        }
        Ok(())
    }
}
