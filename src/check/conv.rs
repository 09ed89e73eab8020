//! Checks of the convolution kernels: conv2d and conv_transpose2d, forward and both gradients,
//! in the simple kernels and every blocking of the kernel table (`ops::kernels`).

use super::*;
use crate::ops::kernels::{ConvGrid, ConvRow, Kernels, every_pin};

/// A blocking's kernels as a row names them: the pack kernel first for the uniform-weight ones,
/// the entry point (`pass` 0 forward, 1 input grad), its fixed overrides and `note`.
fn conv_kernels(r: &ConvRow, pass: usize, note: &str) -> String {
    let pack = if r.grid == ConvGrid::UniformDispatches { "conv2d_pack_weights+" } else { "" };
    let mut notes: Vec<String> = r.overrides.iter().map(|(k, v)| format!("{k} {v}")).collect();
    notes.extend((!note.is_empty()).then(|| note.to_string()));
    let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) };
    format!("{pack}{}{notes}", r.entries[pass])
}

/// The entry name of a conv kernel (`conv2d_forward` or `conv2d_input_grad`) as the checker's
/// kernels run it (" f16": the half-precision family, after amp_cast_f16 of its operands).
pub(super) fn ce(c: &Checker, entry: &str) -> String {
    let pass = if entry == "conv2d_forward" { 0 } else { 1 };
    let pin = c.kn.pin;
    let name = match pin.conv {
        _ if pin.simple => entry.to_string(),
        None => format!("{}_tiled (tuned)", entry),
        Some(b) => {
            let ran = b.on(c.ctx.gpu());
            conv_kernels(ran.row(), pass, if ran == b { "" } else { b.row().needs.unmet() })
        }
    };
    if c.kn.is_half() { format!("{name} f16") } else { name }
}

/// The weight-gradient kernels' name.
fn wg(c: &Checker) -> String {
    let pin = c.kn.pin;
    let name = match pin.wgrad {
        _ if pin.simple => "conv2d_weight_grad".to_string(),
        None => "conv2d_weight_grad_tiled (tuned)+conv2d_weight_grad_reduce".to_string(),
        Some(b) => {
            let ran = b.on(c.ctx.gpu());
            let note = if ran == b { String::new() } else { format!(" ({} asked; {})", b.row().label, b.row().needs.unmet()) };
            format!("{}{note}+conv2d_weight_grad_reduce", ran.row().kernels)
        }
    };
    if c.kn.is_half() { format!("{name} f16") } else { name }
}

/// Run the conv checks once per pin, with f16 operands raising `half` when given.
async fn each_pin(c: &mut Checker<'_>, half: Option<crate::gpu::View>) -> Result<()> {
    let base = c.kn.clone();
    let mut r = Ok(());
    for pin in every_pin() {
        c.set_kernels(Kernels { half: half.clone(), pin });
        r = match check_conv2d(c).await {
            Ok(()) => check_conv_transpose2d(c).await,
            e => e,
        };
        if r.is_err() {
            break;
        }
    }
    c.set_kernels(base);
    r
}

pub(super) async fn check_convs(c: &mut Checker<'_>) -> Result<()> {
    each_pin(c, None).await
}

/// The conv checks again with f16 operands (`train.amp`), where the adapter has shader-f16:
/// every kernel against the reference on the same f16-rounded operands at the f32 bounds (the
/// products are exact, the sums f32), and against the exact operands at the stated F16 bounds.
pub(super) async fn check_convs_f16(c: &mut Checker<'_>) -> Result<()> {
    let Some(flag) = f16_flag(c, "conv")? else { return Ok(()) };
    each_pin(c, Some(flag.clone())).await?;
    // Values in [-1, 1) never overflow f16: the flag must still be clear.
    c.case("amp_cast_f16", "every operand of the f16 conv checks".into());
    let raised = c.ctx.read_u32(&flag).await?[0];
    c.push(
        "amp_cast_f16 overflow flag",
        if raised == 0 { 0.0 } else { f64::INFINITY },
        (raised != 0).then(|| format!("flag {raised} with no value out of range")),
    );
    Ok(())
}

pub(super) async fn check_conv2d(c: &mut Checker<'_>) -> Result<()> {
    // (n, cin, h, w, cout, k, stride, pad, bias)
    let cases = [
        (1, 3, 7, 7, 5, (3, 3), (1, 1), (1, 1), true),
        (3, 2, 13, 11, 6, (3, 3), (2, 2), (1, 1), false),
        (2, 5, 3, 3, 3, (1, 1), (1, 1), (0, 0), true),
        (1, 3, 8, 9, 2, (4, 4), (2, 2), (1, 1), true),
        (2, 1, 7, 5, 3, (3, 2), (1, 2), (0, 1), false),
        // Several 8-channel blocks in the forward (19 outputs) and input grad (17 inputs); the
        // split-K weight gradient gives some splits more than one of the 84 rows.
        (3, 17, 28, 28, 19, (3, 3), (1, 1), (1, 1), true),
        // Split-K with about four rows per split (729 blocks -> 23 splits over 32 rows).
        (2, 33, 16, 16, 35, (3, 3), (1, 1), (1, 1), false),
        // Summed channels x taps past the uniform kernels' 2048 per dispatch: two tap ranges
        // each way (240 and 230 summed channels), and five in the forward (700).
        (1, 240, 5, 5, 230, (3, 3), (1, 1), (1, 1), true),
        (1, 700, 3, 3, 9, (3, 3), (1, 1), (1, 1), false),
        // The input grad over 300 output channels: two chunks of the workgroup-memory kernel's
        // 256 (the forward's 700 above: three).
        (1, 10, 4, 4, 300, (3, 3), (1, 1), (1, 1), true),
    ];
    for (n, cin, h, w, cout, k, s, p, bias) in cases {
        let (x, xr) = c.leaf(&[n, cin, h, w])?;
        let (wt, wr) = c.leaf(&[cout, cin, k.0, k.1])?;
        let (b, br) = c.leaf(&[cout])?;
        c.case("conv2d", format!("x{} w{} s{:?} p{:?}{}", dims(&[n, cin, h, w]), dims(wt.shape()), s, p, if bias { " bias" } else { "" }));
        let y = c.g.conv2d(&x, &wt, bias.then_some(&b), s, p)?;
        let rs = r::conv2d::Conv2dShape { n, cin, h, w, cout, kh: k.0, kw: k.1, stride: s, pad: p };
        let fwd = |x: &[f64], w: &[f64]| r::conv2d::conv2d_forward(&rs, x, w, bias.then_some(&br[..]));
        c.cmp_q(&ce(c, "conv2d_forward"), &y, [&xr, &wr], fwd).await?;
        let (ho, wo) = rs.out_hw();
        let (grads, g) = c.backward(&y)?;
        c.grad_q(&ce(c, "conv2d_input_grad"), &grads, &x, [&wr, &g], |w, g| r::conv2d::conv2d_input_grad(&rs, w, g)).await?;
        c.grad_q(&wg(c), &grads, &wt, [&xr, &g], |x, g| r::conv2d::conv2d_weight_grad(&rs, x, g)).await?;
        if bias {
            c.grad("bias_grad_partial+bias_grad_final", &grads, &b, &r::elementwise::bias_add_backward(n, cout, ho * wo, &g)).await?;
        }
    }
    Ok(())
}

pub(super) async fn check_conv_transpose2d(c: &mut Checker<'_>) -> Result<()> {
    // (n, cin, h, w, cout, k, stride, pad, output_pad, bias)
    let cases = [
        (1, 3, 7, 7, 5, (4, 4), (2, 2), (1, 1), (0, 0), true),
        (3, 2, 4, 5, 3, (3, 3), (2, 2), (1, 1), (1, 1), false),
        (2, 6, 3, 3, 3, (2, 2), (2, 2), (0, 0), (0, 0), true),
        (1, 5, 5, 4, 2, (3, 3), (1, 1), (1, 1), (0, 0), true),
        (3, 3, 13, 11, 2, (4, 4), (2, 2), (1, 1), (0, 0), false),
        (2, 3, 5, 4, 5, (3, 2), (2, 1), (1, 0), (1, 0), true),
        (1, 2, 4, 3, 3, (3, 5), (3, 2), (0, 2), (2, 1), false),
        // The UNet's up-conv geometry with several channel blocks each way and split-K rows.
        (3, 17, 14, 14, 19, (4, 4), (2, 2), (1, 1), (0, 0), true),
    ];
    for (n, cin, h, w, cout, k, s, p, op, bias) in cases {
        let (x, xr) = c.leaf(&[n, cin, h, w])?;
        let (wt, wr) = c.leaf(&[cin, cout, k.0, k.1])?;
        let (b, br) = c.leaf(&[cout])?;
        c.case(
            "conv_transpose2d",
            format!("x{} w{} s{:?} p{:?} op{:?}{}", dims(&[n, cin, h, w]), dims(wt.shape()), s, p, op, if bias { " bias" } else { "" }),
        );
        let y = c.g.conv_transpose2d(&x, &wt, bias.then_some(&b), s, p, op)?;
        let rs = r::conv_transpose2d::ConvTranspose2dShape { n, cin, h, w, cout, kh: k.0, kw: k.1, stride: s, pad: p, output_pad: op };
        c.cmp_q(&ce(c, "conv2d_input_grad"), &y, [&xr, &wr], |x, w| {
            r::conv_transpose2d::conv_transpose2d_forward(&rs, x, w, bias.then_some(&br[..]))
        })
        .await?;
        let (ho, wo) = rs.out_hw();
        let (grads, g) = c.backward(&y)?;
        c.grad_q(&ce(c, "conv2d_forward"), &grads, &x, [&wr, &g], |w, g| r::conv_transpose2d::conv_transpose2d_input_grad(&rs, w, g)).await?;
        c.grad_q(&wg(c), &grads, &wt, [&xr, &g], |x, g| r::conv_transpose2d::conv_transpose2d_weight_grad(&rs, x, g)).await?;
        if bias {
            c.grad("bias_grad_partial+bias_grad_final", &grads, &b, &r::elementwise::bias_add_backward(n, cout, ho * wo, &g)).await?;
        }
    }
    Ok(())
}
