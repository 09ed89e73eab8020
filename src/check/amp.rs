//! Checks of mixed precision's own kernels (amp.wgsl): the f16 cast, bit for bit, with its
//! overflow flag, and the loss scaler driving the optimiser and the EMA through skipped and
//! applied steps.

use super::*;
use crate::ops::Chans;
use crate::ops::amp as k;

/// Exact agreement: a row with rel_err 0, or infinite with the first differences named.
fn exact(c: &mut Checker<'_>, entry: &str, gpu: &[u32], reference: &[u32]) {
    let bad: Vec<String> =
        gpu.iter().zip(reference).enumerate().filter(|(_, (g, r))| g != r).take(4).map(|(i, (g, r))| format!("[{i}] {g:#x} vs {r:#x}")).collect();
    let ok = bad.is_empty() && gpu.len() == reference.len();
    c.push(
        entry,
        if ok { 0.0 } else { f64::INFINITY },
        (!ok).then(|| {
            format!("{} of {} words differ: {}", gpu.iter().zip(reference).filter(|(g, r)| g != r).count(), reference.len(), bad.join(", "))
        }),
    );
}

/// The packed words the kernel should store for `vals`, and whether any overflows.
fn packed(vals: &[f32]) -> (Vec<u32>, bool) {
    let mut over = false;
    let words = vals
        .chunks(2)
        .map(|p| {
            let (lo, o1) = r::amp::f16_bits(p[0]);
            let (hi, o2) = p.get(1).map(|&v| r::amp::f16_bits(v)).unwrap_or((0, false));
            over |= o1 || o2;
            lo as u32 | (hi as u32) << 16
        })
        .collect();
    (words, over)
}

/// Random f32 values from f16's subnormals to just under its overflow, both signs, plus the
/// round-to-even ties around 1 and in the subnormal range.
fn wide_values(c: &mut Checker<'_>, n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n)
        .map(|_| {
            let r = c.rng.next_u64();
            let exp = 100 + (r % 42) as u32; // 2^-27 .. 2^14
            let mant = ((r >> 8) as u32) & 0x7f_ffff;
            let sign = ((r >> 40) as u32 & 1) << 31;
            f32::from_bits(sign | exp << 23 | mant)
        })
        .collect();
    for m in 0..16u32 {
        v.push(1.0 + (2 * m + 1) as f32 * 2f32.powi(-11));
        v.push((2 * m + 1) as f32 * 2f32.powi(-25));
    }
    v.push(65504.0);
    v.push(-65519.0);
    v
}

async fn check_cast(c: &mut Checker<'_>) -> Result<()> {
    let flag = c.ctx.alloc("check", 1)?;
    crate::ops::elementwise::fill(c.ctx, &flag, 0.0)?;
    // A plain tensor of odd length (the last word holds one value).
    let vals = wide_values(c, 1001);
    c.case("amp_cast_f16", format!("plain [{}]", vals.len()));
    let src = c.ctx.upload("check", &vals)?;
    let out = k::cast_f16(c.ctx, &src, 1, vals.len(), 1, Chans::PLAIN, &flag)?;
    let (want, _) = packed(&vals);
    exact(c, "amp_cast_f16", &c.ctx.read_u32(&out).await?, &want);
    exact(c, "amp_cast_f16 overflow flag", &c.ctx.read_u32(&flag).await?, &[0]);
    // Channels [1, 4) of a [2, 5, 7, 3] buffer: the copy is plain [2, 3, 21].
    let (n, total, hw, off, ch) = (2, 5, 21, 1, 3);
    let all = wide_values(c, n * total * hw - 34);
    c.case("amp_cast_f16", format!("channels [{off}, {}) of [{n},{total},7,3]", off + ch));
    let src = c.ctx.upload("check", &all)?;
    let out = k::cast_f16(c.ctx, &src, n, ch, hw, Chans { c: ch as u32, off: off as u32, total: total as u32 }, &flag)?;
    let part: Vec<f32> = (0..n).flat_map(|b| all[(b * total + off) * hw..(b * total + off + ch) * hw].iter().copied()).collect();
    exact(c, "amp_cast_f16", &c.ctx.read_u32(&out).await?, &packed(&part).0);
    // Out of range: stored as the largest finite f16 of its sign, and the flag raised.
    let over = [1.0, 70000.0, -1e30, f32::INFINITY, 0.5];
    c.case("amp_cast_f16", "values past f16's range".into());
    let src = c.ctx.upload("check", &over)?;
    let out = k::cast_f16(c.ctx, &src, 1, over.len(), 1, Chans::PLAIN, &flag)?;
    let (want, o) = packed(&over);
    assert!(o);
    exact(c, "amp_cast_f16", &c.ctx.read_u32(&out).await?, &want);
    exact(c, "amp_cast_f16 overflow flag", &c.ctx.read_u32(&flag).await?, &[1]);
    Ok(())
}

/// AdamW with clipping under a loss scaler (growth interval 2) through five steps: applied,
/// skipped by the overflow flag, skipped by an infinite gradient, applied, applied (the scale
/// doubles); against the reference optimiser fed the unscaled gradients of the applied steps
/// only, with Adam's step count the applied steps'.
async fn check_scaler(c: &mut Checker<'_>) -> Result<()> {
    use crate::ops::optim::OptKind;
    use crate::optim::{Hyper, LossScaler, Optimizer};
    use r::optim as ro;
    let len = 777;
    c.case("loss scaler", format!("adamw len {len} clip 0.5, 5 steps (2 skipped)"));
    let h = Hyper { kind: OptKind::Adamw, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, momentum: 0.9, grad_clip: Some(0.5) };
    let rh = ro::Hyper {
        lr: 0.01f32 as f64,
        beta1: 0.9f32 as f64,
        beta2: 0.999f32 as f64,
        eps: 1e-8f32 as f64,
        weight_decay: 0.01f32 as f64,
        momentum: 0.9f32 as f64,
        max_norm: Some(0.5f32 as f64),
    };
    let p0 = c.rng.vec(len);
    let param = c.ctx.upload("check", &p0)?;
    let ema = c.ctx.upload("check", &p0)?;
    let mut opt = Optimizer::new(c.ctx, len, h)?;
    opt.scaler = Some(LossScaler::new(c.ctx, 1024.0, 2)?);
    let (mut rp, mut rm, mut rv, mut rema) = (f64s(&p0), vec![0.0; len], vec![0.0; len], f64s(&p0));
    let mut rst = [0f32; 8];
    rst.copy_from_slice(&k::initial_state(1024.0));
    let mut applied = 0u64;
    for step in 0..5 {
        let g = c.rng.vec(len);
        let scale = rst[0];
        let mut scaled: Vec<f32> = g.iter().map(|v| v * scale).collect();
        let overflow = step == 1;
        if step == 2 {
            scaled[100] = f32::INFINITY;
        }
        let (flag, state) = opt.scaler.as_ref().map(|s| (s.flag.clone(), s.state.clone())).expect("set above");
        if overflow {
            c.ctx.write_u32(&flag, &[1])?;
        }
        let grad = c.ctx.upload("check", &scaled)?;
        opt.step(c.ctx, &param, &grad, 0.01)?;
        crate::optim::ema_update_unless_skipped(c.ctx, 0.9, &param, &ema, Some(&state))?;
        let norm_sq: f32 = scaled.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() as f32;
        r::amp::scaler_update(&mut rst, norm_sq, overflow, 2, 0.9, 0.999);
        if rst[5] == 0.0 {
            applied += 1;
            let mut rg = f64s(&g);
            ro::optim_step(ro::Optimizer::AdamW, &rh, applied, &mut rp, &mut rg, &mut rm, &mut rv);
            ro::ema_update(0.9f32 as f64, &mut rema, &rp);
        }
        // Skipped or not, the step consumes the gradient.
        let gz = c.ctx.read(&grad).await?;
        c.cmp("optim_step (amp)", &gz.iter().map(|v| v + 1.0).collect::<Vec<_>>(), &vec![1.0; len]);
    }
    assert_eq!(applied, 3);
    let st = c.ctx.read(&opt.scaler.as_ref().expect("set above").state).await?;
    c.cmp("amp_update", &st, &rst.iter().map(|&v| v as f64).collect::<Vec<_>>());
    c.cmp("optim_step (amp)", &c.ctx.read(&param).await?, &rp);
    c.cmp("optim_step (amp)", &c.ctx.read(&opt.m).await?, &rm);
    c.cmp("optim_step (amp)", &c.ctx.read(&opt.v).await?, &rv);
    c.cmp("ema_update (amp)", &c.ctx.read(&ema).await?, &rema);
    Ok(())
}

pub(super) async fn check_amp(c: &mut Checker<'_>) -> Result<()> {
    check_cast(c).await?;
    check_scaler(c).await
}
