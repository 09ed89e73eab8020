//! ConvDAE and UNetDAE exactly as SPEC section 3: the layout registers every tensor under the
//! name PyTorch gives the same structure (Sequential indices included), and `forward` is plain
//! calls to the graph ops.

use crate::autograd::Graph;
use crate::error::{Error, Result};
use crate::nn::layout::{Init, Layout, Weights};
use crate::ops::activation::Activation;
use crate::tensor::Tensor;

pub use crate::config::{ActName, Arch, ModelConfig, NormType, OutInit, UpMode};

impl ModelConfig {
    fn out_weight_init(&self) -> Init {
        match self.out_init {
            OutInit::KaimingFanOut => Init::KaimingFanOut,
            OutInit::KaimingFanIn => Init::KaimingFanIn,
        }
    }

    fn act(&self) -> Activation {
        match self.activation {
            ActName::Relu => Activation::Relu,
            ActName::Leakyrelu => Activation::LeakyRelu(0.2),
            ActName::Gelu => Activation::GeluErf,
            ActName::Silu => Activation::Silu,
        }
    }
}

/// What the model code needs from a backend: the GPU ops under an `autograd::Graph` or the CPU
/// reference tape (`reference::graph::Graph`, which implements this trait itself), so one model definition runs on both and a training step can be
/// checked end to end against the reference.
pub trait Backend {
    type T: Clone;
    fn dims(&self, t: &Self::T) -> Result<[usize; 4]>;
    fn conv2d(&mut self, x: &Self::T, w: &Self::T, b: Option<&Self::T>, s: (usize, usize), p: (usize, usize)) -> Result<Self::T>;
    /// The ops that can write their output into a part of a concat (`concat_slots`) take it as
    /// `into`; a backend without slots ignores it.
    fn conv_transpose2d(
        &mut self,
        x: &Self::T,
        w: &Self::T,
        b: Option<&Self::T>,
        s: (usize, usize),
        p: (usize, usize),
        into: Option<&Self::T>,
    ) -> Result<Self::T>;
    fn group_norm(&mut self, x: &Self::T, groups: usize, g: &Self::T, b: &Self::T, eps: f32) -> Result<Self::T>;
    #[allow(clippy::too_many_arguments)]
    fn batch_norm(
        &mut self,
        x: &Self::T,
        g: &Self::T,
        b: &Self::T,
        rm: &Self::T,
        rv: &Self::T,
        training: bool,
        momentum: f32,
        eps: f32,
    ) -> Result<Self::T>;
    fn act(&mut self, x: &Self::T, a: Activation, into: Option<&Self::T>) -> Result<Self::T>;
    /// A norm and the activation after it (a backend may fuse the two).
    #[allow(clippy::too_many_arguments)]
    fn group_norm_act(
        &mut self,
        x: &Self::T,
        groups: usize,
        g: &Self::T,
        b: &Self::T,
        eps: f32,
        a: Activation,
        into: Option<&Self::T>,
    ) -> Result<Self::T> {
        let h = self.group_norm(x, groups, g, b, eps)?;
        self.act(&h, a, into)
    }
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_act(
        &mut self,
        x: &Self::T,
        g: &Self::T,
        b: &Self::T,
        rm: &Self::T,
        rv: &Self::T,
        training: bool,
        momentum: f32,
        eps: f32,
        a: Activation,
        into: Option<&Self::T>,
    ) -> Result<Self::T> {
        let h = self.batch_norm(x, g, b, rm, rv, training, momentum, eps)?;
        self.act(&h, a, into)
    }
    fn maxpool2d(&mut self, x: &Self::T) -> Result<Self::T>;
    fn resize(&mut self, x: &Self::T, ho: usize, wo: usize, align_corners: bool, into: Option<&Self::T>) -> Result<Self::T>;
    fn pad(&mut self, x: &Self::T, pads: (usize, usize, usize, usize), into: Option<&Self::T>) -> Result<Self::T>;
    fn concat(&mut self, a: &Self::T, b: &Self::T) -> Result<Self::T>;
    /// Training-mode dropout with the Philox stream of (`step`, `layer`) (`ops::dropout2d::stream`).
    fn dropout2d(&mut self, x: &Self::T, p: f32, seed: u64, step: u64, layer: u32) -> Result<Self::T>;
    /// Reserve the channel concatenation [n, sum(chans), h, w] of parts produced later: one slot
    /// per part, to pass as `into` to the op producing it. `None` slots (the default, the CPU
    /// reference's) mean `concat` copies.
    fn concat_slots(&mut self, _n: usize, chans: &[usize], _h: usize, _w: usize) -> Result<Vec<Option<Self::T>>> {
        Ok(vec![None; chans.len()])
    }
}

/// The GPU ops, recorded by the caller's graph when their inputs want gradients.
impl Backend for Graph {
    type T = Tensor;
    fn dims(&self, t: &Tensor) -> Result<[usize; 4]> {
        t.nchw("model")
    }
    fn conv2d(&mut self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, s: (usize, usize), p: (usize, usize)) -> Result<Tensor> {
        Graph::conv2d(self, x, w, b, s, p)
    }
    fn conv_transpose2d(
        &mut self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        s: (usize, usize),
        p: (usize, usize),
        into: Option<&Tensor>,
    ) -> Result<Tensor> {
        Graph::conv_transpose2d_into(self, x, w, b, s, p, (0, 0), into)
    }
    fn group_norm(&mut self, x: &Tensor, groups: usize, g: &Tensor, b: &Tensor, eps: f32) -> Result<Tensor> {
        Graph::group_norm(self, x, groups, g, b, eps)
    }
    fn batch_norm(
        &mut self,
        x: &Tensor,
        g: &Tensor,
        b: &Tensor,
        rm: &Tensor,
        rv: &Tensor,
        training: bool,
        momentum: f32,
        eps: f32,
    ) -> Result<Tensor> {
        Graph::batch_norm(self, x, g, b, rm, rv, training, momentum, eps)
    }
    fn act(&mut self, x: &Tensor, a: Activation, into: Option<&Tensor>) -> Result<Tensor> {
        Graph::activation_into(self, x, a, into)
    }
    fn group_norm_act(
        &mut self,
        x: &Tensor,
        groups: usize,
        g: &Tensor,
        b: &Tensor,
        eps: f32,
        a: Activation,
        into: Option<&Tensor>,
    ) -> Result<Tensor> {
        Graph::group_norm_act_into(self, x, groups, g, b, eps, Some(a), into)
    }
    fn batch_norm_act(
        &mut self,
        x: &Tensor,
        g: &Tensor,
        b: &Tensor,
        rm: &Tensor,
        rv: &Tensor,
        training: bool,
        momentum: f32,
        eps: f32,
        a: Activation,
        into: Option<&Tensor>,
    ) -> Result<Tensor> {
        Graph::batch_norm_act_into(self, x, g, b, rm, rv, training, momentum, eps, Some(a), into)
    }
    fn maxpool2d(&mut self, x: &Tensor) -> Result<Tensor> {
        Graph::max_pool2d(self, x, (2, 2), (2, 2))
    }
    fn resize(&mut self, x: &Tensor, ho: usize, wo: usize, ac: bool, into: Option<&Tensor>) -> Result<Tensor> {
        Graph::resize_bilinear_into(self, x, ho, wo, ac, into)
    }
    fn pad(&mut self, x: &Tensor, pads: (usize, usize, usize, usize), into: Option<&Tensor>) -> Result<Tensor> {
        Graph::pad2d_into(self, x, pads, into)
    }
    fn concat(&mut self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        Graph::concat(self, &[a, b])
    }
    fn dropout2d(&mut self, x: &Tensor, p: f32, seed: u64, step: u64, layer: u32) -> Result<Tensor> {
        Graph::dropout2d(self, x, p, seed, step, layer)
    }
    fn concat_slots(&mut self, n: usize, chans: &[usize], h: usize, w: usize) -> Result<Vec<Option<Tensor>>> {
        Ok(Graph::concat_slots(self, n, chans, h, w)?.into_iter().map(Some).collect())
    }
}

/// Forward-pass settings: the parameters and buffers to use (in layout order), training or
/// eval, and the dropout stream.
pub struct Fwd<'a, T> {
    pub params: &'a [T],
    pub buffers: &'a [T],
    pub training: bool,
    pub seed: u64,
    pub step: u64,
}

impl<'a> Fwd<'a, Tensor> {
    pub fn gpu(w: &'a Weights, training: bool, seed: u64, step: u64) -> Self {
        Fwd { params: &w.params, buffers: &w.buffers, training, seed, step }
    }
}

#[derive(Clone, Debug)]
struct Conv {
    cin: usize,
    cout: usize,
    w: usize,
    b: Option<usize>,
    stride: usize,
    pad: usize,
    transposed: bool,
}

impl Conv {
    fn register(l: &mut Layout, prefix: &str, cin: usize, cout: usize, k: usize, stride: usize, pad: usize, bias: bool, transposed: bool) -> Conv {
        Conv::register_init(l, prefix, [cin, cout, k, stride, pad], bias, transposed, Init::KaimingFanOut, Init::Zeros)
    }

    /// `register` with the weight and bias inits given (the output conv's are configurable).
    fn register_init(
        l: &mut Layout,
        prefix: &str,
        [cin, cout, k, stride, pad]: [usize; 5],
        bias: bool,
        transposed: bool,
        wi: Init,
        bi: Init,
    ) -> Conv {
        let shape = if transposed { vec![cin, cout, k, k] } else { vec![cout, cin, k, k] };
        let w = l.param(format!("{prefix}.weight"), shape, wi);
        let b = bias.then(|| l.param(format!("{prefix}.bias"), vec![cout], bi));
        Conv { cin, cout, w, b, stride, pad, transposed }
    }

    fn forward<B: Backend>(&self, be: &mut B, f: &Fwd<B::T>, x: &B::T) -> Result<B::T> {
        self.forward_into(be, f, x, None)
    }

    /// `into`: a concat part a transposed conv writes its output into.
    fn forward_into<B: Backend>(&self, be: &mut B, f: &Fwd<B::T>, x: &B::T, into: Option<&B::T>) -> Result<B::T> {
        let w = &f.params[self.w];
        let b = self.b.map(|i| &f.params[i]);
        let (s, p) = ((self.stride, self.stride), (self.pad, self.pad));
        if self.transposed { be.conv_transpose2d(x, w, b, s, p, into) } else { be.conv2d(x, w, b, s, p) }
    }
}

#[derive(Clone, Debug)]
enum Norm {
    None,
    Group { groups: usize, gamma: usize, beta: usize },
    Batch { gamma: usize, beta: usize, mean: usize, var: usize },
}

/// conv, norm, activation, (dropout2d): one PyTorch Sequential run starting at index `idx`.
#[derive(Clone, Debug)]
struct Block {
    conv: Conv,
    norm: Norm,
    act: Activation,
    dropout: f32,
    drop_id: u32,
}

struct Builder<'c> {
    l: Layout,
    cfg: &'c ModelConfig,
    dropouts: u32,
}

impl Builder<'_> {
    /// Registers the block's tensors under `{seq}.{idx}...` and returns it and the next index.
    #[allow(clippy::too_many_arguments)]
    fn block(
        &mut self,
        seq: &str,
        idx: usize,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
        transposed: bool,
        dropout: f32,
    ) -> (Block, usize) {
        let nt = self.cfg.norm_type;
        let conv = Conv::register(&mut self.l, &format!("{seq}.{idx}"), cin, cout, k, stride, pad, nt == NormType::None, transposed);
        let mut next = idx + 1;
        let norm = match nt {
            NormType::None => Norm::None,
            NormType::Group | NormType::Instance => {
                let groups = if nt == NormType::Group { cout.min(32) } else { cout };
                let gamma = self.l.param(format!("{seq}.{next}.weight"), vec![cout], Init::Ones);
                let beta = self.l.param(format!("{seq}.{next}.bias"), vec![cout], Init::Zeros);
                Norm::Group { groups, gamma, beta }
            }
            NormType::Batch => {
                let gamma = self.l.param(format!("{seq}.{next}.weight"), vec![cout], Init::Ones);
                let beta = self.l.param(format!("{seq}.{next}.bias"), vec![cout], Init::Zeros);
                let mean = self.l.buffer(format!("{seq}.{next}.running_mean"), vec![cout], Init::Zeros);
                let var = self.l.buffer(format!("{seq}.{next}.running_var"), vec![cout], Init::Ones);
                self.l.counters.push(format!("{seq}.{next}.num_batches_tracked"));
                Norm::Batch { gamma, beta, mean, var }
            }
        };
        if nt != NormType::None {
            next += 1;
        }
        next += 1; // the activation
        let drop_id = self.dropouts;
        if dropout > 0.0 {
            next += 1;
            self.dropouts += 1;
        }
        (Block { conv, norm, act: self.cfg.act(), dropout, drop_id }, next)
    }

    /// DoubleConv(cin, cout, mid) under `{prefix}.double_conv`: [conv, norm, act, (dropout)] then
    /// [conv, norm, act] — the dropout only after the first activation.
    fn double_conv(&mut self, prefix: &str, cin: usize, mid: usize, cout: usize) -> [Block; 2] {
        let seq = format!("{prefix}.double_conv");
        let (a, next) = self.block(&seq, 0, cin, mid, 3, 1, 1, false, self.cfg.dropout);
        let (b, _) = self.block(&seq, next, mid, cout, 3, 1, 1, false, 0.0);
        [a, b]
    }
}

impl Block {
    /// Whether the block's last op is its norm/activation (which can write into a slot).
    fn ends_in_norm(&self, training: bool) -> bool {
        !(self.dropout > 0.0 && training)
    }

    /// `into`: a concat slot the output is written into (see `Backend::concat_slots`).
    fn forward<B: Backend>(&self, be: &mut B, f: &Fwd<B::T>, x: &B::T, into: Option<&B::T>) -> Result<B::T> {
        let h = self.conv.forward(be, f, x)?;
        let p = f.params;
        let into = if self.ends_in_norm(f.training) { into } else { None };
        // The norm and the activation after it in one op (the GPU fuses them).
        let h = match self.norm {
            Norm::None => be.act(&h, self.act, into)?,
            Norm::Group { groups, gamma, beta } => be.group_norm_act(&h, groups, &p[gamma], &p[beta], 1e-5, self.act, into)?,
            Norm::Batch { gamma, beta, mean, var } => {
                be.batch_norm_act(&h, &p[gamma], &p[beta], &f.buffers[mean], &f.buffers[var], f.training, 0.1, 1e-5, self.act, into)?
            }
        };
        if self.dropout > 0.0 && f.training {
            // A distinct Philox stream per (step, dropout layer).
            be.dropout2d(&h, self.dropout, f.seed, f.step, self.drop_id)
        } else {
            Ok(h)
        }
    }
}

/// The blocks in turn; the last one's output goes `into` a concat slot when given.
fn run<B: Backend>(be: &mut B, blocks: &[Block], f: &Fwd<B::T>, x: &B::T, into: Option<&B::T>) -> Result<B::T> {
    let mut h = x.clone();
    for (i, b) in blocks.iter().enumerate() {
        h = b.forward(be, f, &h, if i + 1 == blocks.len() { into } else { None })?;
    }
    Ok(h)
}

#[derive(Clone, Debug)]
pub struct ConvDae {
    encoder: Vec<Block>,
    bottleneck: Block,
    decoder: Vec<Block>,
    out: Conv,
}

#[derive(Clone, Debug)]
struct Up {
    up: Option<Conv>,
    conv: [Block; 2],
}

#[derive(Clone, Debug)]
pub struct UnetDae {
    inc: [Block; 2],
    downs: Vec<[Block; 2]>,
    ups: Vec<Up>,
    outc: Conv,
}

impl UnetDae {
    /// The concat slots of level `i` (its skip, then the upsampled part), [n, c, h, w] each:
    /// none when the skip's last block ends in dropout (the concat then copies).
    fn slots<B: Backend>(&self, be: &mut B, f: &Fwd<B::T>, i: usize, n: usize, h: usize, w: usize) -> Result<Vec<Option<B::T>>> {
        let last = if i == 0 { &self.inc[1] } else { &self.downs[i - 1][1] };
        let total = self.ups[self.downs.len() - 1 - i].conv[0].conv.cin;
        let cs = last.conv.cout;
        if !last.ends_in_norm(f.training) || total <= cs {
            return Ok(vec![None, None]);
        }
        be.concat_slots(n, &[cs, total - cs], h, w)
    }
}

#[derive(Clone, Debug)]
pub enum Model {
    Conv(ConvDae),
    Unet(UnetDae),
}

impl Model {
    /// The model and its parameter layout.
    pub fn new(cfg: &ModelConfig) -> Result<(Model, Layout)> {
        cfg.validate()?;
        let mut b = Builder { l: Layout::default(), cfg, dropouts: 0 };
        let (n, base) = (cfg.num_downs, cfg.base_ch);
        let model = match cfg.name {
            Arch::Conv => {
                let mut encoder = vec![b.block("encoder.0.block", 0, cfg.in_ch, base, 3, 1, 1, false, cfg.dropout).0];
                let mut ch = base;
                for i in 1..=n {
                    encoder.push(b.block(&format!("encoder.{i}.block"), 0, ch, 2 * ch, 3, 2, 1, false, cfg.dropout).0);
                    ch *= 2;
                }
                let bottleneck = b.block("bottleneck.block", 0, ch, ch, 3, 1, 1, false, cfg.dropout).0;
                let mut decoder = Vec::new();
                let mut j = 0;
                for _ in 0..n {
                    let (blk, next) = b.block("decoder", j, ch, ch / 2, 4, 2, 1, true, cfg.dropout);
                    decoder.push(blk);
                    j = next;
                    ch /= 2;
                }
                let out = Conv::register_init(
                    &mut b.l,
                    &format!("decoder.{j}"),
                    [ch, cfg.out_ch, 3, 1, 1],
                    true,
                    false,
                    cfg.out_weight_init(),
                    Init::Constant(cfg.out_bias),
                );
                Model::Conv(ConvDae { encoder, bottleneck, decoder, out })
            }
            Arch::Unet => {
                let f = if cfg.up == UpMode::Bilinear { 2 } else { 1 };
                let chs: Vec<usize> = (0..=n).map(|i| base << i).collect();
                let inc = b.double_conv("inc", cfg.in_ch, base, base);
                let mut downs = Vec::new();
                for i in 0..n {
                    let cout = if i == n - 1 { chs[n] / f } else { chs[i + 1] };
                    downs.push(b.double_conv(&format!("downs.{i}.maxpool_conv.1"), chs[i], cout, cout));
                }
                let mut ups = Vec::new();
                for k in 0..n {
                    let i = n - k;
                    let up = (cfg.up == UpMode::Transposed)
                        .then(|| Conv::register(&mut b.l, &format!("ups.{k}.up"), chs[i], chs[i] / 2, 2, 2, 0, true, true));
                    let cout = if i == 1 { chs[0] } else { chs[i - 1] / f };
                    let mid = if cfg.up == UpMode::Bilinear { chs[i] / 2 } else { cout };
                    ups.push(Up { up, conv: b.double_conv(&format!("ups.{k}.conv"), chs[i], mid, cout) });
                }
                let outc = Conv::register_init(
                    &mut b.l,
                    "outc",
                    [base, cfg.out_ch, 1, 1, 0],
                    true,
                    false,
                    cfg.out_weight_init(),
                    Init::Constant(cfg.out_bias),
                );
                Model::Unet(UnetDae { inc, downs, ups, outc })
            }
        };
        Ok((model, b.l))
    }

    /// The reconstruction of `x` [n, in_ch, h, w], in [0, 1] (sigmoid), at x's size, on the GPU.
    /// The forward on the GPU, recorded in `g` (an inference graph records nothing).
    pub fn forward(&self, g: &mut Graph, f: &Fwd<Tensor>, x: &Tensor) -> Result<Tensor> {
        self.forward_on(g, f, x)
    }

    /// The same on any backend (the CPU reference tape in the checks).
    pub fn forward_on<B: Backend>(&self, be: &mut B, f: &Fwd<B::T>, x: &B::T) -> Result<B::T> {
        let [_, _, h, w] = be.dims(x)?;
        match self {
            Model::Conv(m) => {
                let mut t = run(be, &m.encoder, f, x, None)?;
                t = m.bottleneck.forward(be, f, &t, None)?;
                t = run(be, &m.decoder, f, &t, None)?;
                let o = m.out.forward(be, f, &t)?;
                let y = be.act(&o, Activation::Sigmoid, None)?;
                let [_, _, yh, yw] = be.dims(&y)?;
                if (yh, yw) == (h, w) { Ok(y) } else { be.resize(&y, h, w, false, None) }
            }
            Model::Unet(m) => {
                // Each skip and the upsampled tensor beside it are written straight into their
                // channels of the concat the up block reads (reserved before the skip is made).
                let levels = m.downs.len();
                let n = be.dims(x)?[0];
                let mut slots = vec![m.slots(be, f, 0, n, h, w)?];
                let mut skips = vec![run(be, &m.inc, f, x, slots[0][0].as_ref())?];
                for (i, d) in m.downs.iter().enumerate() {
                    let last = skips.last().ok_or_else(|| Error::Msg("unet: no skip".into()))?.clone();
                    let pooled = be.maxpool2d(&last).map_err(|e| match e {
                        Error::Shape { message, .. } => {
                            Error::shape("model", format!("input {h}x{w} is too small for {levels} downsamplings: {message}"))
                        }
                        e => e,
                    })?;
                    let [_, _, ph, pw] = be.dims(&pooled)?;
                    slots.push(if i + 1 < levels { m.slots(be, f, i + 1, n, ph, pw)? } else { vec![None, None] });
                    skips.push(run(be, d, f, &pooled, slots[i + 1][0].as_ref())?);
                }
                let mut t = skips.pop().ok_or_else(|| Error::Msg("unet: no bottom".into()))?;
                for (k, u) in m.ups.iter().enumerate() {
                    let skip = skips.pop().ok_or_else(|| Error::Msg("unet: missing skip".into()))?;
                    let slot = slots[levels - 1 - k][1].as_ref();
                    // Both up modes double the size; the padding (odd sizes) writes the slot then.
                    let [_, _, th, tw] = be.dims(&t)?;
                    let [_, _, sh, sw] = be.dims(&skip)?;
                    let (dy, dx) = (sh - 2 * th, sw - 2 * tw);
                    let padding = dy != 0 || dx != 0;
                    let up_into = if padding { None } else { slot };
                    let upx = match &u.up {
                        Some(c) => c.forward_into(be, f, &t, up_into)?,
                        None => be.resize(&t, 2 * th, 2 * tw, true, up_into)?,
                    };
                    let padded = if padding { be.pad(&upx, (dx / 2, dx - dx / 2, dy / 2, dy - dy / 2), slot)? } else { upx };
                    let cat = be.concat(&skip, &padded)?;
                    t = run(be, &u.conv, f, &cat, None)?;
                }
                let o = m.outc.forward(be, f, &t)?;
                be.act(&o, Activation::Sigmoid, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(name: Arch, base: usize, downs: usize, up: UpMode) -> usize {
        let cfg = ModelConfig { name, base_ch: base, num_downs: downs, up, ..Default::default() };
        Model::new(&cfg).unwrap().1.num_params()
    }

    /// SPEC section 3's parameter counts (group norm, relu, in = out = 1).
    #[test]
    fn parameter_counts_match_the_spec() {
        use Arch::*;
        use UpMode::*;
        assert_eq!(count(Conv, 64, 3, Bilinear), 6_665_089);
        assert_eq!(count(Conv, 32, 3, Bilinear), 1_667_521);
        assert_eq!(count(Conv, 32, 2, Bilinear), 404_929);
        assert_eq!(count(Conv, 16, 2, Bilinear), 101_601);
        assert_eq!(count(Unet, 64, 3, Bilinear), 4_281_089);
        assert_eq!(count(Unet, 64, 4, Bilinear), 17_261_825);
        assert_eq!(count(Unet, 32, 2, Bilinear), 259_329);
        assert_eq!(count(Unet, 16, 2, Bilinear), 65_153);
        assert_eq!(count(Unet, 64, 3, Transposed), 7_699_009);
        assert_eq!(count(Unet, 32, 3, Transposed), 1_926_433);
    }
}

#[cfg(test)]
mod torch_names {
    use super::*;

    /// The layout's names and shapes equal PyTorch's state_dict for the same structure (fixture
    /// written by tools/dae_models.py --write-fixtures), batch-norm buffers and counters included.
    #[test]
    fn layout_names_and_shapes_match_pytorch() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torch_state_dicts.json")).unwrap();
        let fx: serde_json::Value = serde_json::from_str(&text).unwrap();
        let configs = fx["configs"].as_object().unwrap();
        assert!(configs.len() >= 9);
        for (id, cfg) in configs {
            let mut cfg = cfg.clone();
            if let Some(o) = cfg.as_object_mut() {
                o.retain(|k, _| {
                    ["name", "base_ch", "num_downs", "norm_type", "activation", "dropout", "up", "in_ch", "out_ch"].contains(&k.as_str())
                });
            }
            let mc: ModelConfig = serde_json::from_value(cfg).unwrap_or_else(|e| panic!("{id}: {e}"));
            let (_, l) = Model::new(&mc).unwrap();
            let mut ours: Vec<(String, Vec<usize>)> = l.params.iter().chain(&l.buffers).map(|e| (e.name.clone(), e.shape.clone())).collect();
            ours.extend(l.counters.iter().map(|c| (c.clone(), vec![])));
            ours.sort();
            let mut theirs: Vec<(String, Vec<usize>)> = fx[id.as_str()]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect()))
                .collect();
            theirs.sort();
            assert_eq!(ours, theirs, "{id}: layout differs from PyTorch's state_dict");
        }
    }
}
