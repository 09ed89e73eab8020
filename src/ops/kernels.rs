//! The kernel table and how an op call runs its kernels.
//!
//! Every blocking of the conv kernels is declared here once: its entry point, its fixed override
//! constants, how its grid is laid out, what it needs of the adapter (and what runs where the
//! adapter lacks it), its label (autotune's and `dae bench`'s), its pin name (`DAE_KERNELS`) and
//! why it is kept. The launchers (`ops::conv2d`), autotune's candidate lists, the checks, `dae
//! bench` and README.md's tables (a test compares them) all read these rows.
//!
//! Which blocking runs, and whether the operands are f32 or f16, is a value of the caller: a
//! [`Kernels`] the Graph owns for a model's ops (and each op keeps for its backward), or that a
//! check or benchmark passes to a launcher. Nothing on the GPU context switches it.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Overrides, View};

/// How an op call runs its kernels: operand precision and pinned blockings.
#[derive(Clone, Default)]
pub struct Kernels {
    /// Half precision (`train.amp`): the families with an f16 twin take f16 operands, cast from
    /// f32 by their launchers, which raise this one-word flag buffer when a value is outside
    /// f16's range. `None`: f32. The caller checks `gpu().has_f16()` first.
    pub half: Option<View>,
    pub pin: Pin,
}

impl Kernels {
    /// f32 operands and the given pins.
    pub fn pinned(pin: Pin) -> Kernels {
        Kernels { half: None, pin }
    }

    /// The same pins with f16 operands raising `flag` (None: f32).
    pub fn with_half(&self, flag: Option<View>) -> Kernels {
        Kernels { half: flag, pin: self.pin }
    }

    /// f32 operands and the pins of `DAE_KERNELS` ([`Pin::from_env`]): how a job's graphs run.
    pub fn from_env() -> Result<Kernels> {
        Ok(Kernels::pinned(Pin::from_env()?))
    }

    pub fn is_half(&self) -> bool {
        self.half.is_some()
    }
}

/// Which kernels run where a family has several: `None` lets autotune pick per shape (the
/// default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pin {
    /// The simple kernels (one output per invocation) for the convs, the first workgroup size for
    /// the norms (`DAE_KERNELS=naive`).
    pub simple: bool,
    /// The conv forward / input-gradient blocking.
    pub conv: Option<ConvBlocking>,
    /// The conv weight-gradient blocking.
    pub wgrad: Option<WgradBlocking>,
    /// The norms' reduction workgroup size (index into their candidates).
    pub norm: Option<usize>,
}

impl Pin {
    pub const AUTO: Pin = Pin { simple: false, conv: None, wgrad: None, norm: None };
    pub const SIMPLE: Pin = Pin { simple: true, conv: None, wgrad: None, norm: None };

    /// One conv blocking pinned, the rest tuned.
    pub fn conv(b: ConvBlocking) -> Pin {
        Pin { conv: Some(b), ..Pin::AUTO }
    }

    /// One weight-gradient blocking pinned, the rest tuned.
    pub fn wgrad(b: WgradBlocking) -> Pin {
        Pin { wgrad: Some(b), ..Pin::AUTO }
    }

    /// `DAE_KERNELS` (or `DAE_NAIVE=1`): a comma-separated list of `auto`, `naive` and pin names
    /// of the two tables (`ubo16`, `dwsg8x4`, `ubo16,dwsg8x4`); unset or empty is `auto`.
    pub fn from_env() -> Result<Pin> {
        if std::env::var_os("DAE_NAIVE").is_some_and(|v| !v.is_empty() && v != "0") {
            return Ok(Pin::SIMPLE);
        }
        match std::env::var("DAE_KERNELS") {
            Ok(v) => Pin::parse(&v).map_err(|e| Error::Msg(format!("DAE_KERNELS: {e}"))),
            Err(_) => Ok(Pin::AUTO),
        }
    }

    /// See [`Pin::from_env`].
    pub fn parse(s: &str) -> std::result::Result<Pin, String> {
        let mut pin = Pin::AUTO;
        for tok in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if tok == "auto" {
                continue;
            } else if tok == "naive" {
                pin.simple = true;
            } else if let Some(r) = CONV_BLOCKINGS.iter().find(|r| r.pin == tok) {
                pin.conv = Some(r.blocking);
            } else if let Some(r) = WGRAD_BLOCKINGS.iter().find(|r| r.pin == tok) {
                pin.wgrad = Some(r.blocking);
            } else {
                return Err(format!(
                    "{tok:?} is not auto, naive, a conv blocking ({}) or a weight-gradient blocking ({})",
                    conv_pins(),
                    wgrad_pins()
                ));
            }
        }
        Ok(pin)
    }
}

/// The pins that run every row of both conv tables (the checks run each, `dae bench --all`
/// times each): the simple kernels, then every forward / input-gradient blocking with the
/// weight-gradient blocking of the same index (the tables differ in length: the shorter one's
/// first rows come round again).
pub fn every_pin() -> Vec<Pin> {
    let n = CONV_BLOCKINGS.len().max(WGRAD_BLOCKINGS.len());
    let pinned = (0..n).map(|i| Pin {
        conv: Some(CONV_BLOCKINGS[i % CONV_BLOCKINGS.len()].blocking),
        wgrad: Some(WGRAD_BLOCKINGS[i % WGRAD_BLOCKINGS.len()].blocking),
        ..Pin::AUTO
    });
    std::iter::once(Pin::SIMPLE).chain(pinned).collect()
}

fn conv_pins() -> String {
    CONV_BLOCKINGS.iter().map(|r| r.pin).collect::<Vec<_>>().join(", ")
}

fn wgrad_pins() -> String {
    WGRAD_BLOCKINGS.iter().map(|r| r.pin).collect::<Vec<_>>().join(", ")
}

/// What a blocking needs of the adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// Subgroups of at least 8 lanes (one per channel of a block).
    Subgroups8,
    /// 64 KiB uniform bindings.
    Uniform64K,
}

impl Needs {
    pub fn met(self, gpu: &Gpu) -> bool {
        match self {
            Needs::Nothing => true,
            Needs::Subgroups8 => gpu.has_subgroups_of(8),
            Needs::Uniform64K => gpu.has_uniform_binding_of(65_536),
        }
    }

    /// Why the blocking does not run here (for the checks' row names).
    pub fn unmet(self) -> &'static str {
        match self {
            Needs::Nothing => "",
            Needs::Subgroups8 => "no subgroups of 8 here",
            Needs::Uniform64K => "uniform bindings under 64 KiB here",
        }
    }
}

/// The forward / input-gradient blockings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvBlocking {
    Tiled,
    ChannelBlocks,
    Workgroup,
    Subgroup,
    SubgroupWide,
    Uniform,
    UniformWide,
}

/// How a forward / input-gradient blocking lays out its grid. The unit is an item: 4 output
/// pixels (the input gradient's rows padded to whole stride phases) of one 8-channel block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvGrid {
    /// Items numbered across the channel blocks, 256 per workgroup.
    Across,
    /// Each workgroup on one channel block (its weight loads uniform), 256 items per workgroup.
    PerChannelBlock,
    /// Subgroup kernels: each workgroup on one channel block (two with 16 channels), sized down
    /// to the layer's items (SG_WG 8 to 256).
    Subgroup,
    /// One dispatch per channel block (two with 16 channels), its weights packed into a 64 KiB
    /// uniform binding by `conv2d_pack_weights`, over as many ranges of taps as 2048 summed
    /// channels x taps per dispatch take; workgroups sized down so a dispatch has 16 (UBO_WG).
    UniformDispatches,
}

/// One forward / input-gradient blocking.
pub struct ConvRow {
    pub blocking: ConvBlocking,
    /// Its `DAE_KERNELS` name.
    pub pin: &'static str,
    /// Autotune's and `dae bench`'s name.
    pub label: &'static str,
    /// Its entry points: the forward's and the input gradient's.
    pub entries: [&'static str; 2],
    /// The entry points live in conv2d_subgroup.wgsl (family `conv2d_sg`), not conv2d.wgsl.
    pub subgroup_family: bool,
    /// Override constants fixed for the blocking (the workgroup-size ones are per shape).
    pub overrides: Overrides,
    pub grid: ConvGrid,
    /// Output channels per invocation (16: autotune offers it only to layers of 2 blocks or more).
    pub channels: usize,
    pub needs: Needs,
    /// What runs where the adapter lacks `needs`.
    pub fallback: ConvBlocking,
    /// What it is (README's table).
    pub about: &'static str,
    /// Why it is kept: which measured adapter picks it, or what it is for.
    pub kept: &'static str,
}

pub const CONV_BLOCKINGS: [ConvRow; 7] = [
    ConvRow {
        blocking: ConvBlocking::Tiled,
        pin: "tiled",
        label: "tiled",
        entries: ["conv2d_forward_tiled", "conv2d_input_grad_tiled"],
        subgroup_family: false,
        overrides: &[],
        grid: ConvGrid::Across,
        channels: 8,
        needs: Needs::Nothing,
        fallback: ConvBlocking::Tiled,
        about: "blocks numbered across the grid",
        kept: "the first candidate: what runs untuned; picked by lavapipe for a few shapes",
    },
    ConvRow {
        blocking: ConvBlocking::ChannelBlocks,
        pin: "cb",
        label: "channel blocks",
        entries: ["conv2d_forward_tiled", "conv2d_input_grad_tiled"],
        subgroup_family: false,
        overrides: &[("CHANNEL_BLOCKS", 1.0)],
        grid: ConvGrid::PerChannelBlock,
        channels: 8,
        needs: Needs::Nothing,
        fallback: ConvBlocking::ChannelBlocks,
        about: "each workgroup on one 8-channel block, so every weight it loads is the same for all its invocations (an override constant)",
        kept: "the fallback of the subgroup and uniform blockings; picked by lavapipe for a few shapes",
    },
    ConvRow {
        blocking: ConvBlocking::Workgroup,
        pin: "wgm",
        label: "workgroup weights",
        entries: ["conv2d_forward_wgm", "conv2d_input_grad_wgm"],
        subgroup_family: false,
        overrides: &[("CHANNEL_BLOCKS", 1.0)],
        grid: ConvGrid::PerChannelBlock,
        channels: 8,
        needs: Needs::Nothing,
        fallback: ConvBlocking::Workgroup,
        about: "channel blocks with the workgroup staging its weights in workgroup memory, one tap and up to 256 summed channels at a time, for its invocations to read there",
        kept: "never picked on lavapipe (the slowest there); kept as the GPU way of sharing a GEMM operand until a real GPU is measured",
    },
    ConvRow {
        blocking: ConvBlocking::Subgroup,
        pin: "sg",
        label: "subgroup",
        entries: ["conv2d_forward_sg", "conv2d_input_grad_sg"],
        subgroup_family: true,
        overrides: &[],
        grid: ConvGrid::Subgroup,
        channels: 8,
        needs: Needs::Subgroups8,
        fallback: ConvBlocking::ChannelBlocks,
        about: "channel blocks whose weights one lane loads and hands to the others by subgroup broadcast (conv2d_subgroup.wgsl; 8 channels per invocation; workgroups sized down to the layer's items, 8 to 256)",
        kept: "lavapipe's most frequent pick",
    },
    ConvRow {
        blocking: ConvBlocking::SubgroupWide,
        pin: "sg16",
        label: "subgroup x16",
        entries: ["conv2d_forward_sg", "conv2d_input_grad_sg"],
        subgroup_family: true,
        overrides: &[("SG_CH", 16.0)],
        grid: ConvGrid::Subgroup,
        channels: 16,
        needs: Needs::Subgroups8,
        fallback: ConvBlocking::ChannelBlocks,
        about: "the same with 16 channels per invocation",
        kept: "picked by lavapipe for many shapes",
    },
    ConvRow {
        blocking: ConvBlocking::Uniform,
        pin: "ubo",
        label: "uniform weights",
        entries: ["conv2d_forward_ubo", "conv2d_input_grad_ubo"],
        subgroup_family: false,
        overrides: &[],
        grid: ConvGrid::UniformDispatches,
        channels: 8,
        needs: Needs::Uniform64K,
        fallback: ConvBlocking::ChannelBlocks,
        about: "one dispatch per 8-channel block with that block's weights packed into a 64 KiB uniform binding (summed channels at most 2048; past 2048 summed channels x taps it runs once per range of taps, each range continuing the previous one's sums, so the order of summation is kept)",
        kept: "picked by lavapipe for some shapes (a CPU driver loads a uniform at a uniform offset once, a storage value once per invocation)",
    },
    ConvRow {
        blocking: ConvBlocking::UniformWide,
        pin: "ubo16",
        label: "uniform weights x16",
        entries: ["conv2d_forward_ubo", "conv2d_input_grad_ubo"],
        subgroup_family: false,
        overrides: &[("UBO_CH", 16.0)],
        grid: ConvGrid::UniformDispatches,
        channels: 16,
        needs: Needs::Uniform64K,
        fallback: ConvBlocking::ChannelBlocks,
        about: "the same with two such blocks per dispatch (16 channels x 4 pixels per invocation, so each input load feeds 64 FMAs, not 32)",
        kept: "picked by lavapipe for some shapes",
    },
];

impl ConvBlocking {
    pub fn row(self) -> &'static ConvRow {
        CONV_BLOCKINGS.iter().find(|r| r.blocking == self).unwrap_or(&CONV_BLOCKINGS[0])
    }

    /// The blocking that runs on `gpu` when this one is asked for.
    pub fn on(self, gpu: &Gpu) -> ConvBlocking {
        let r = self.row();
        if r.needs.met(gpu) { self } else { r.fallback }
    }
}

/// The weight-gradient blockings (split-K partials over slices of the (n, oy) rows, then a
/// reduce; the slices are those of the 4 x 4 blocking whatever runs, so all sum in one order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WgradBlocking {
    /// conv2d_weight_grad_tiled: (output, input) channels of one tap per invocation.
    Split(usize, usize),
    /// conv2d_pack_dy + conv2d_weight_grad_ubo: dy in 16-channel uniform blocks.
    UniformDy,
    /// conv2d_weight_grad_sg: 8 output x (8 or 4) input channels, dy by subgroup broadcast.
    Subgroup(usize),
}

/// One weight-gradient blocking.
pub struct WgradRow {
    pub blocking: WgradBlocking,
    pub pin: &'static str,
    pub label: &'static str,
    /// The kernels that run, as the checks name them.
    pub kernels: &'static str,
    pub needs: Needs,
    /// What runs where the adapter lacks `needs` (the uniform-dy blocking also where a row of
    /// dy passes one 64 KiB block, or the layer would take more than 64 dispatches).
    pub fallback: WgradBlocking,
    pub about: &'static str,
    pub kept: &'static str,
}

pub const WGRAD_BLOCKINGS: [WgradRow; 6] = [
    WgradRow {
        blocking: WgradBlocking::Split(4, 4),
        pin: "dw4x4",
        label: "4 x 4 channels",
        kernels: "conv2d_weight_grad_tiled (4 x 4)",
        needs: Needs::Nothing,
        fallback: WgradBlocking::Split(4, 4),
        about: "4 output x 4 input channels of one tap per invocation",
        kept: "the first candidate: what runs untuned; picked by lavapipe for many shapes",
    },
    WgradRow {
        blocking: WgradBlocking::Split(8, 4),
        pin: "dw8x4",
        label: "8 x 4 channels",
        kernels: "conv2d_weight_grad_tiled (8 x 4)",
        needs: Needs::Nothing,
        fallback: WgradBlocking::Split(8, 4),
        about: "8 output x 4 input channels of one tap per invocation",
        kept: "the subgroup blockings' fallback; picked by lavapipe for some shapes",
    },
    WgradRow {
        blocking: WgradBlocking::Split(8, 8),
        pin: "dw8x8",
        label: "8 x 8 channels",
        kernels: "conv2d_weight_grad_tiled (8 x 8)",
        needs: Needs::Nothing,
        fallback: WgradBlocking::Split(8, 8),
        about: "8 output x 8 input channels of one tap per invocation",
        kept: "the uniform-dy blocking's fallback; lavapipe's most frequent pick",
    },
    WgradRow {
        blocking: WgradBlocking::UniformDy,
        pin: "dwubo",
        label: "uniform dy x16",
        kernels: "conv2d_pack_dy+conv2d_weight_grad_ubo",
        needs: Needs::Uniform64K,
        fallback: WgradBlocking::Split(8, 8),
        about: "dy copied into 16-channel blocks bound as a 64 KiB uniform, each invocation on 4 input channels of one tap (16 x 4 sums), over row ranges of at most 1024 pixels that continue their slice's partial sums",
        kept: "picked by lavapipe for a few shapes",
    },
    WgradRow {
        blocking: WgradBlocking::Subgroup(8),
        pin: "dwsg8x8",
        label: "subgroup dy 8 x 8",
        kernels: "conv2d_weight_grad_sg (8 x 8)",
        needs: Needs::Subgroups8,
        fallback: WgradBlocking::Split(8, 4),
        about: "a workgroup on one 8-channel output block, tap and row slice, each invocation on 8 input channels, one lane loading each output channel's dy and broadcasting it (per pixel 9 loads feed 64 FMAs, against 16 in the 8 x 8 blocking)",
        kept: "picked by lavapipe for a few shapes",
    },
    WgradRow {
        blocking: WgradBlocking::Subgroup(4),
        pin: "dwsg8x4",
        label: "subgroup dy 8 x 4",
        kernels: "conv2d_weight_grad_sg (8 x 4)",
        needs: Needs::Subgroups8,
        fallback: WgradBlocking::Split(8, 4),
        about: "the same with 4 input channels per invocation, so a 32-channel layer still fills 8 lanes",
        kept: "picked by lavapipe for some shapes",
    },
];

impl WgradBlocking {
    pub fn row(self) -> &'static WgradRow {
        WGRAD_BLOCKINGS.iter().find(|r| r.blocking == self).unwrap_or(&WGRAD_BLOCKINGS[0])
    }

    /// The blocking that runs on `gpu` when this one is asked for (adapter support only).
    pub fn on(self, gpu: &Gpu) -> WgradBlocking {
        let r = self.row();
        if r.needs.met(gpu) { self } else { r.fallback }
    }
}

/// README.md's two tables of blockings, as this table declares them (a test keeps README's
/// copy equal).
pub fn markdown_tables() -> [String; 2] {
    let need = |n: Needs| match n {
        Needs::Nothing => "-",
        Needs::Subgroups8 => "subgroups of 8 lanes",
        Needs::Uniform64K => "64 KiB uniform bindings",
    };
    let head = "| blocking | pin | what it is | needs (else runs) | kept because |\n|---|---|---|---|---|\n";
    let mut conv = head.to_string();
    for r in &CONV_BLOCKINGS {
        let needs = if r.needs == Needs::Nothing { "-".to_string() } else { format!("{} (else {})", need(r.needs), r.fallback.row().label) };
        conv += &format!("| {} | `{}` | {} | {needs} | {} |\n", r.label, r.pin, r.about, r.kept);
    }
    let mut wgrad = head.to_string();
    for r in &WGRAD_BLOCKINGS {
        let needs = if r.needs == Needs::Nothing { "-".to_string() } else { format!("{} (else {})", need(r.needs), r.fallback.row().label) };
        wgrad += &format!("| {} | `{}` | {} | {needs} | {} |\n", r.label, r.pin, r.about, r.kept);
    }
    [conv, wgrad]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README.md lists the blockings exactly as the table declares them.
    #[test]
    fn readme_lists_the_kernel_table() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        for t in markdown_tables() {
            assert!(readme.contains(&t), "README.md's table of blockings differs from src/ops/kernels.rs; it should read:\n{t}");
        }
    }

    /// Pin names are unique across both tables (one `DAE_KERNELS` list pins both) and parse back.
    #[test]
    fn pins_are_unique_and_parse() {
        let mut names: Vec<&str> = CONV_BLOCKINGS.iter().map(|r| r.pin).chain(WGRAD_BLOCKINGS.iter().map(|r| r.pin)).collect();
        names.extend(["auto", "naive"]);
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "a pin name is used twice");
        for r in &CONV_BLOCKINGS {
            assert_eq!(Pin::parse(r.pin).unwrap(), Pin::conv(r.blocking));
            assert_eq!(r.blocking.row().pin, r.pin);
            assert!(CONV_BLOCKINGS.iter().any(|f| f.blocking == r.fallback && f.needs == Needs::Nothing), "{}: its fallback needs something", r.pin);
        }
        for r in &WGRAD_BLOCKINGS {
            assert_eq!(Pin::parse(r.pin).unwrap(), Pin::wgrad(r.blocking));
            assert!(WGRAD_BLOCKINGS.iter().any(|f| f.blocking == r.fallback && f.needs == Needs::Nothing), "{}: its fallback needs something", r.pin);
        }
        let both = Pin::parse(" ubo16, dwsg8x4 ").unwrap();
        assert_eq!((both.conv, both.wgrad), (Some(ConvBlocking::UniformWide), Some(WgradBlocking::Subgroup(4))));
        assert_eq!(Pin::parse("").unwrap(), Pin::AUTO);
        assert_eq!(Pin::parse("naive").unwrap(), Pin::SIMPLE);
        let e = Pin::parse("ubo32").unwrap_err();
        assert!(e.contains("ubo32") && e.contains("sg16") && e.contains("dw8x8"), "{e}");
    }
}
