//! Checks of the training machinery: the fused optimiser step and EMA, the batch gather and the noise.

use super::*;

pub(super) async fn check_optim(c: &mut Checker<'_>) -> Result<()> {
    use crate::ops::optim::OptKind;
    use crate::optim::{Hyper, Optimizer};
    use r::optim as ro;
    let kinds = [(OptKind::Adamw, ro::Optimizer::AdamW), (OptKind::Adam, ro::Optimizer::Adam), (OptKind::Sgd, ro::Optimizer::Sgd)];
    for (kind, rk) in kinds {
        for (len, clip) in [(1000usize, Some(0.5f32)), (1757, None), (300, Some(100.0))] {
            c.case(
                if kind == OptKind::Sgd {
                    "sgd"
                } else if kind == OptKind::Adam {
                    "adam"
                } else {
                    "adamw"
                },
                format!("len {len} clip {clip:?} 3 steps"),
            );
            let h = Hyper { kind, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, momentum: 0.9, grad_clip: clip };
            let rh = ro::Hyper {
                lr: 0.01f32 as f64,
                beta1: 0.9f32 as f64,
                beta2: 0.999f32 as f64,
                eps: 1e-8f32 as f64,
                weight_decay: 0.01f32 as f64,
                momentum: 0.9f32 as f64,
                max_norm: clip.map(|x| x as f64),
            };
            let p0 = c.rng.vec(len);
            let param = c.ctx.upload("check", &p0)?;
            let ema = c.ctx.upload("check", &p0)?;
            let mut opt = Optimizer::new(c.ctx, len, h)?;
            let (mut rp, mut rm, mut rv, mut rema) = (f64s(&p0), vec![0.0; len], vec![0.0; len], f64s(&p0));
            for t in 1..=3u64 {
                let g = c.rng.vec(len);
                let grad = c.ctx.upload("check", &g)?;
                opt.step(c.ctx, &param, &grad, 0.01)?;
                crate::optim::ema_update(c.ctx, 0.9, &param, &ema)?;
                let mut rg = f64s(&g);
                ro::optim_step(rk, &rh, t, &mut rp, &mut rg, &mut rm, &mut rv);
                ro::ema_update(0.9f32 as f64, &mut rema, &rp);
                if t == 3 {
                    let gz = c.ctx.read(&grad).await?;
                    c.cmp("optim_step", &gz.iter().map(|v| v + 1.0).collect::<Vec<_>>(), &vec![1.0; len]);
                }
            }
            c.cmp("optim_step", &c.ctx.read(&param).await?, &rp);
            c.cmp("optim_step", &c.ctx.read(&opt.m).await?, &rm);
            if kind != OptKind::Sgd {
                c.cmp("optim_step", &c.ctx.read(&opt.v).await?, &rv);
            }
            c.cmp("ema_update", &c.ctx.read(&ema).await?, &rema);
        }
    }
    Ok(())
}

pub(super) async fn check_data(c: &mut Checker<'_>) -> Result<()> {
    use crate::ops::data::{self as d, DataParams};
    let image_len = 49;
    let n_images = 11;
    let bytes: Vec<u8> = (0..n_images * image_len).map(|_| (c.rng.next_u64() >> 56) as u8).collect();
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    for (k, b) in bytes.iter().enumerate() {
        words[k / 4] |= (*b as u32) << (8 * (k % 4));
    }
    let dataset = c.ctx.upload_u32("check", &words)?;
    let perm: Vec<u32> = vec![3, 9, 0, 10, 5, 7, 1];
    let perm_v = c.ctx.upload_u32("check", &perm)?;
    let (start, batch) = (2usize, 4usize);
    c.case("data", format!("gather {batch} of {n_images} images of {image_len} px from perm offset {start}"));
    let clean = c.ctx.alloc("check", batch * image_len)?;
    d::data_gather(c.ctx, &dataset, &perm_v, start, batch, image_len, &clean)?;
    let clean_ref = r::data::data_gather(&bytes, &perm, start, batch, image_len);
    c.cmp("data_gather", &c.ctx.read(&clean).await?, &clean_ref);
    let levels = [0.1f32, 0.2, 0.3, 0.5];
    // (noise, range, clip, amount, peak, in_scale, in_shift, label)
    let cases = [
        (0u32, None, Some((0.0f32, 1.0f32)), 0.0f32, 0.0f32, 1.0f32, 0.0f32, "gaussian levels clip"),
        (0, Some((0.05f32, 0.6f32)), None, 0.0, 0.0, 2.0, -1.0, "gaussian range no-clip minus_one_one"),
        (1, None, Some((0.0, 1.0)), 0.2, 0.0, 1.0, 0.0, "salt_pepper 0.2"),
        (2, None, Some((0.0, 1.0)), 0.0, 10.0, 1.0, 0.0, "poisson peak 10"),
        (2, None, None, 0.0, 100.0, 1.0, 0.0, "poisson peak 100"),
        (3, None, Some((0.0, 1.0)), 0.0, 0.0, 1.0, 0.0, "speckle"),
    ];
    for (noise, range, clip, amount, peak, in_scale, in_shift, label) in cases {
        let (seed, epoch, step) = (0xABCD_EF01_2345u64, 3u32, 17u32);
        c.case("data", format!("noise {label}, {batch}x{image_len}"));
        let mut lv = [0f32; 16];
        lv[..levels.len()].copy_from_slice(&levels);
        let p = DataParams {
            len: (batch * image_len) as u32,
            image_len: image_len as u32,
            noise,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            epoch,
            step,
            n_levels: levels.len() as u32,
            use_range: range.is_some() as u32,
            has_clip: clip.is_some() as u32,
            level_lo: range.map_or(0.0, |r| r.0),
            level_hi: range.map_or(0.0, |r| r.1),
            level_scale: 0.75,
            amount,
            peak,
            clip_lo: clip.map_or(0.0, |c| c.0),
            clip_hi: clip.map_or(0.0, |c| c.1),
            in_scale,
            in_shift,
            levels: lv,
            ..Default::default()
        };
        let out = c.ctx.alloc("check", batch * image_len)?;
        d::data_noise(c.ctx, &p, &clean, &out)?;
        let nr = r::data::NoiseRef {
            noise,
            seed,
            epoch,
            step,
            start: 0,
            levels: levels.iter().map(|&l| l as f64).collect(),
            range: range.map(|(a, b)| (a as f64, b as f64)),
            level_scale: 0.75,
            amount: amount as f64,
            peak: peak as f64,
            clip: clip.map(|(a, b)| (a as f64, b as f64)),
            in_scale: in_scale as f64,
            in_shift: in_shift as f64,
        };
        // The reference gets the GPU's clean pixels (f32) so only the noise is compared, within
        // bounds from WGSL's stated accuracy of what the kernel calls (check/noise.rs); Poisson
        // counts by their own rows.
        let clean_gpu = f64s(&c.ctx.read(&clean).await?);
        let got = c.ctx.read(&out).await?;
        if noise == 2 {
            super::noise::check_poisson(c, &nr, &clean_gpu, image_len, &got);
        } else {
            let bound = super::noise::bounds(&nr, &clean_gpu, image_len);
            c.cmp_bounded("data_noise", &got, &r::data::data_noise(&nr, &clean_gpu, image_len), &bound);
        }
    }
    // Evaluation keys the noise by each image's index in the set (`start`): image 7 gets the
    // same noise in a batch of 4 from image 5 as in a batch of 1.
    c.case("data", format!("noise keyed by image index: batch of {batch} from image 5 vs image 7 alone"));
    let p = DataParams {
        len: (batch * image_len) as u32,
        image_len: image_len as u32,
        start: 5,
        seed_lo: 9,
        epoch: 1,
        n_levels: 1,
        levels: [0.4; 16],
        level_scale: 1.0,
        in_scale: 1.0,
        ..Default::default()
    };
    let out = c.ctx.alloc("check", batch * image_len)?;
    d::data_noise(c.ctx, &p, &clean, &out)?;
    let nr = r::data::NoiseRef {
        noise: 0,
        seed: 9,
        epoch: 1,
        step: 0,
        start: 5,
        levels: vec![0.4f32 as f64],
        range: None,
        level_scale: 1.0,
        amount: 0.0,
        peak: 0.0,
        clip: None,
        in_scale: 1.0,
        in_shift: 0.0,
    };
    let clean_gpu = f64s(&c.ctx.read(&clean).await?);
    let want = r::data::data_noise(&nr, &clean_gpu, image_len);
    let got = c.ctx.read(&out).await?;
    c.cmp_bounded("data_noise", &got, &want, &super::noise::bounds(&nr, &clean_gpu, image_len));
    let one_clean = c.ctx.upload("check", &c.ctx.read(&clean).await?[2 * image_len..3 * image_len])?;
    let one = c.ctx.alloc("check", image_len)?;
    d::data_noise(c.ctx, &DataParams { len: image_len as u32, start: 7, ..p }, &one_clean, &one)?;
    // The same kernel on the same counters and pixels: exactly equal.
    c.cmp_bounded("data_noise", &c.ctx.read(&one).await?, &f64s(&got[2 * image_len..3 * image_len]), &vec![0.0; image_len]);
    Ok(())
}
