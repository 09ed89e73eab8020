//! Checks of the evaluation kernels: image metrics, LPIPS (and against the lpips package), the FFT, the analysis statistics.

use super::*;

/// Per-image metrics (MSE, PSNR, MAE, Charbonnier, SSIM) into result slots at an offset, the
/// prediction optionally mapped by an affine first (the noisy input in [-1, 1]).
pub(super) async fn check_metrics(c: &mut Checker<'_>) -> Result<()> {
    use crate::ops::metrics::{self as m, Slots};
    // (shape, slot offset, slots, affine)
    let cases = [([3, 1, 28, 28], 2usize, 6usize, (1.0f32, 0.0f32)), ([1, 1, 23, 19], 0, 1, (1.0, 0.0)), ([3, 2, 13, 17], 1, 4, (0.5, 0.5))];
    for (shape, offset, n_slots, (sc, sh)) in cases {
        let [n, ch, h, w] = shape;
        let len = n * ch * h * w;
        // A prediction near the clean image, so SSIM is far from 0 and the comparison relative.
        let clean: Vec<f32> = c.rng.vec(len).iter().map(|v| 0.5 + 0.4 * v).collect();
        let pred: Vec<f32> = clean.iter().zip(c.rng.vec(len)).map(|(x, e)| ((x + 0.1 * e) - sh) / sc).collect();
        c.case("metrics", format!("x{} slots {offset}..{} of {n_slots}, pred*{sc}+{sh}", dims(&shape), offset + n));
        let slots = Slots::new(c.ctx, n_slots)?;
        let pv = c.ctx.upload("check", &pred)?;
        let cv = c.ctx.upload("check", &clean)?;
        m::image_metrics(c.ctx, &pv, &cv, shape, (sc, sh), &slots, offset)?;
        let (stats, ssim) = slots.read(c.ctx).await?;
        let (pr, cr) = (f64s(&pred), f64s(&clean));
        let per = ch * h * w;
        let (mut want_stats, mut want_ssim, mut got_stats, mut got_ssim) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let r = i * per..(i + 1) * per;
            let w4 = r::metrics::metrics_pixel(
                &pr[r.clone()],
                &cr[r.clone()],
                sc as f64,
                sh as f64,
                m::CHARBONNIER_EPS as f64,
                m::MSE_FLOOR as f64,
                m::PSNR_CAP as f64,
            );
            want_stats.extend(w4);
            want_ssim.push(r::metrics::ssim(&pr[r.clone()], &cr[r], ch, h, w, sc as f64, sh as f64));
            got_stats.extend(stats[offset + i]);
            got_ssim.push(ssim[offset + i]);
        }
        c.cmp("metrics_pixel", &got_stats, &want_stats);
        c.cmp("ssim_rows+ssim_image", &got_ssim, &want_ssim);
    }
    Ok(())
}

/// The 2-D FFT (mixed-radix Stockham) against the DFT by definition: the whole spectrum at
/// relative L2 below 1e-5 (and the per-element bound), then magnitude with fftshift, radial
/// profile and batch mean of log-magnitude; sizes with radix 4, 2, 3, 7, a prime (31, 251) and
/// the degenerate 1x1, batches 1 and 3.
pub(super) async fn check_fft(c: &mut Checker<'_>) -> Result<()> {
    use crate::ops::fft::Fft2d;
    let sizes = [(28, 28, 3), (28, 28, 1), (32, 32, 1), (27, 31, 3), (64, 64, 1), (1, 1, 3), (1, 1, 1), (7, 251, 1), (256, 2, 1)];
    for (h, w, b) in sizes {
        let x: Vec<f32> = c.rng.vec(b * h * w).iter().map(|v| 0.5 + 0.5 * v).collect();
        c.case("fft", format!("x[{b},{h},{w}] factors {:?} x {:?}", crate::ops::fft::factors(h), crate::ops::fft::factors(w)));
        let plan = Fft2d::new(c.ctx, h, w)?;
        let xv = c.ctx.upload("check", &x)?;
        let spec = c.ctx.alloc("check", 2 * b * h * w)?;
        plan.forward(c.ctx, &xv, b, &spec)?;
        let (re, im) = r::fft::dft2(&f64s(&x), b, h, w);
        let want: Vec<f64> = re.iter().zip(&im).flat_map(|(a, b)| [*a, *b]).collect();
        let prev = std::mem::replace(&mut c.tol, Tol { rel_l2: 1e-5, ..F32 });
        c.cmp("fft_rows+fft_cols", &c.ctx.read(&spec).await?, &want);
        c.tol = prev;
        let mag = c.ctx.alloc("check", b * h * w)?;
        plan.magnitude(c.ctx, &spec, b, &mag)?;
        // The later stages read the GPU's spectrum, so only their own work is compared.
        let spec_gpu = f64s(&c.ctx.read(&spec).await?);
        let (gr, gi): (Vec<f64>, Vec<f64>) = spec_gpu.chunks(2).map(|p| (p[0], p[1])).unzip();
        c.cmp("fft_magnitude", &c.ctx.read(&mag).await?, &r::fft::magnitude(&gr, &gi, b, h, w));
        let mag_gpu = f64s(&c.ctx.read(&mag).await?);
        let prof = c.ctx.alloc("check", (b + 1) * plan.bins())?;
        plan.radial(c.ctx, &mag, b, &prof, 1)?;
        c.cmp("fft_radial", &c.ctx.read(&prof).await?[plan.bins()..], &r::fft::radial(&mag_gpu, b, h, w));
        let acc = c.ctx.alloc("check", h * w)?;
        plan.mean_log(c.ctx, &mag, b, 0.5, &acc, false)?;
        plan.mean_log(c.ctx, &mag, b, 0.25, &acc, true)?;
        c.cmp("fft_mean_log", &c.ctx.read(&acc).await?, &r::fft::mean_log(&mag_gpu, b, h * w, 0.75));
    }
    Ok(())
}

/// The limitations analysis's kernels: Laplacian / gradient statistics per image at offsets, and
/// the nearest-image search over a packed u8 dataset through an index list.
pub(super) async fn check_analysis(c: &mut Checker<'_>) -> Result<()> {
    use crate::ops::analysis as a;
    for (n, h, w, offset, slots) in [(3usize, 28usize, 28usize, 1usize, 5usize), (1, 13, 11, 0, 1), (2, 3, 5, 2, 4)] {
        let x: Vec<f32> = c.rng.vec(n * h * w).iter().map(|v| 0.5 + 0.5 * v).collect();
        c.case("analysis", format!("image stats x[{n},{h},{w}] slots {offset}.. of {slots}"));
        let xv = c.ctx.upload("check", &x)?;
        let stats = c.ctx.alloc("check", 2 * slots)?;
        a::image_stats(c.ctx, &xv, [n, h, w], &stats, offset)?;
        let xr = f64s(&x);
        let want: Vec<f64> = (0..n)
            .flat_map(|i| {
                let (l, g) = r::analysis::image_stats(&xr[i * h * w..(i + 1) * h * w], h, w);
                [l, g]
            })
            .collect();
        c.cmp("analysis_image_stats", &c.ctx.read(&stats).await?[2 * offset..2 * (offset + n)], &want);
    }
    for (q, len, count, n_images) in [(3usize, 49usize, 300usize, 400usize), (1, 784, 17, 20), (5, 13, 1, 3)] {
        let bytes: Vec<u8> = (0..n_images * len).map(|_| (c.rng.next_u64() >> 56) as u8).collect();
        let idx: Vec<u32> = (0..count).map(|_| (c.rng.next_u64() % n_images as u64) as u32).collect();
        let x: Vec<f32> = c.rng.vec(q * len).iter().map(|v| 0.5 + 0.5 * v).collect();
        c.case("analysis", format!("nearest: {q} queries of {len} px against {count} of {n_images} images"));
        let ds = c.ctx.upload_u32("check", &crate::ops::data::pack_u8(&bytes))?;
        let iv = c.ctx.upload_u32("check", &idx)?;
        let xv = c.ctx.upload("check", &x)?;
        let dist = c.ctx.alloc("check", q + 1)?;
        a::nearest(c.ctx, &xv, q, len, &ds, &iv, count, &dist, 1)?;
        let xr = f64s(&x);
        let want: Vec<f64> = (0..q).map(|k| r::analysis::nearest(&xr[k * len..(k + 1) * len], &bytes, &idx, len)).collect();
        c.cmp("analysis_nearest", &c.ctx.read(&dist).await?[1..], &want);
    }
    // A whole training set's worth of candidates (60,000 images of 784 pixels, MNIST's), each
    // query an exact copy of one image: distance 0. One dispatch over all of them would run each
    // invocation's loops 184,000 times, past the 65,535 after which lavapipe stops them
    // (`ops::LOOP_BUDGET`): before the launcher split the search, this found none of the copies.
    let (len, count) = (784usize, 60_000usize);
    let bytes: Vec<u8> = (0..count * len).map(|_| (c.rng.next_u64() >> 56) as u8).collect();
    let idx: Vec<u32> = (0..count as u32).collect();
    let planted = [45_678usize, 59_999, 5];
    let x: Vec<f32> = planted.iter().flat_map(|&k| bytes[k * len..(k + 1) * len].iter().map(|&b| b as f32 / 255.0)).collect();
    c.case("analysis", format!("nearest: {} queries of {len} px against all {count} images, each a copy of one", planted.len()));
    let ds = c.ctx.upload_u32("check", &crate::ops::data::pack_u8(&bytes))?;
    let iv = c.ctx.upload_u32("check", &idx)?;
    let xv = c.ctx.upload("check", &x)?;
    let dist = c.ctx.alloc("check", planted.len())?;
    a::nearest(c.ctx, &xv, planted.len(), len, &ds, &iv, count, &dist, 0)?;
    let got = c.ctx.read(&dist).await?;
    let worst = got.iter().fold(0f32, |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d.abs()) });
    // The kernel's pixel / 255 may differ from the host's correctly rounded one by WGSL's 2.5 ULP
    // for a division (below 2.5 * 2^-23 for values up to 1), so the copy's distance is at most
    // sqrt(len) times that (SwiftShader: 8.9e-7; lavapipe: 0); a missed copy is about 7 away.
    let bound = (len as f32).sqrt() * 2.5 * f32::EPSILON;
    c.push(
        "analysis_nearest (60,000 candidates)",
        worst as f64,
        (worst > bound).then(|| format!("distances {got:?}, want at most {bound:.1e} (a copy of each query is in the list)")),
    );
    Ok(())
}

/// LPIPS: its two kernels against their CPU twins, then both whole networks against the `lpips`
/// package itself (tests/fixtures/lpips_reference.safetensors, tools/export_lpips.py --fixture):
/// the backbones are regenerated from the splitmix64 stream (seed 1234) the fixture script used,
/// the linear heads are the package's own.
/// The `lpips` package's scaling layer (its weights files carry the same values).
pub(super) const LPIPS_SHIFT: [f32; 3] = [-0.030, -0.088, -0.188];

pub(super) const LPIPS_SCALE: [f32; 3] = [0.458, 0.448, 0.450];

pub(super) async fn check_lpips(c: &mut Checker<'_>) -> Result<()> {
    use crate::ops::lpips as k;
    let (shift, scale) = (LPIPS_SHIFT, LPIPS_SCALE);
    let wide = |v: [f32; 3]| v.map(|x| x as f64);
    for (shape, affine) in [([3, 1, 13, 11], (2.0f32, -1.0f32)), ([1, 3, 7, 9], (1.0, 0.0)), ([2, 1, 64, 64], (2.0, -1.0))] {
        let [n, ch, h, w] = shape;
        let x = c.rng.vec(n * ch * h * w).iter().map(|v| 0.5 + 0.5 * v).collect::<Vec<f32>>();
        c.case("lpips", format!("input x{} affine {affine:?}", dims(&shape)));
        let xv = c.ctx.upload("check", &x)?;
        let y = c.ctx.alloc("check", n * 3 * h * w)?;
        k::lpips_input(c.ctx, &xv, shape, affine, shift, scale, &y)?;
        let want = r::lpips::lpips_input(&f64s(&x), n, ch, h * w, affine.0 as f64, affine.1 as f64, wide(shift), wide(scale));
        c.cmp("lpips_input", &c.ctx.read(&y).await?, &want);
    }
    for (shape, offset, slots) in [([3, 5, 7, 7], 1usize, 5usize), ([1, 64, 3, 3], 0, 1), ([2, 17, 15, 15], 2, 4)] {
        let [n, ch, h, w] = shape;
        let len = n * ch * h * w;
        let a = c.rng.vec(len);
        let b: Vec<f32> = a.iter().zip(c.rng.vec(len)).map(|(x, e)| x + 0.3 * e).collect();
        let head: Vec<f32> = c.rng.vec(ch).iter().map(|v| 0.5 + 0.5 * v).collect();
        c.case("lpips", format!("distance x{} slots {offset}.. of {slots}, then accumulated", dims(&shape)));
        let (av, bv, hv) = (c.ctx.upload("check", &a)?, c.ctx.upload("check", &b)?, c.ctx.upload("check", &head)?);
        let out = c.ctx.alloc("check", slots)?;
        k::lpips_distance(c.ctx, &av, &bv, &hv, shape, &out, offset, false)?;
        let want = r::lpips::lpips_distance(&f64s(&a), &f64s(&b), &f64s(&head), n, ch, h * w, k::EPS as f64);
        c.cmp("lpips_distance", &c.ctx.read(&out).await?[offset..offset + n], &want);
        k::lpips_distance(c.ctx, &av, &bv, &hv, shape, &out, offset, true)?;
        c.cmp("lpips_distance", &c.ctx.read(&out).await?[offset..offset + n], &want.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    }
    check_lpips_package(c).await
}

pub(super) const LPIPS_REFERENCE: &[u8] = include_bytes!("../../tests/fixtures/lpips_reference.safetensors");

pub(super) async fn check_lpips_package(c: &mut Checker<'_>) -> Result<()> {
    use crate::config::LpipsNet;
    use crate::nn::lpips::{Lpips, net_name, tensor_specs};
    let path = std::path::Path::new("tests/fixtures/lpips_reference.safetensors");
    let file = crate::checkpoint::parse(LPIPS_REFERENCE, path)?;
    let bad = |m: String| crate::error::Error::Msg(format!("{}: {m}", path.display()));
    let get = |name: &str| -> Result<(Vec<usize>, Vec<f64>)> {
        let (dt, shape, data) = file.tensors.get(name).ok_or_else(|| bad(format!("missing {name}")))?;
        let v = match dt {
            safetensors::Dtype::F64 => bytemuck::pod_collect_to_vec::<u8, f64>(data),
            _ => bytemuck::pod_collect_to_vec::<u8, f32>(data).iter().map(|&x| x as f64).collect(),
        };
        Ok((shape.clone(), v))
    };
    let (xs, x0) = get("x0")?;
    let (_, x1) = get("x1")?;
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let t0 = Tensor::from_slice(c.ctx, &xs, &f32s(&x0))?;
    let t1 = Tensor::from_slice(c.ctx, &xs, &f32s(&x1))?;
    for net in [LpipsNet::Alex, LpipsNet::Vgg] {
        let name = net_name(net);
        // The fixture's backbone: one splitmix64 stream, each conv's weight (u * sqrt(6 /
        // fan_in), in f32) then its bias (0.1 * u), in forward order.
        let mut rng = crate::util::rng::Rng::new(1234);
        let mut values = std::collections::HashMap::new();
        for (t, shape) in tensor_specs(net) {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = if t.starts_with("net.") && t.ends_with(".weight") {
                let bound = (6.0f64 / (shape[1] * shape[2] * shape[3]) as f64).sqrt() as f32;
                (0..n).map(|_| rng.uniform() * bound).collect()
            } else if t.starts_with("net.") {
                (0..n).map(|_| 0.1f32 * rng.uniform()).collect()
            } else if t == "scaling_layer.shift" {
                LPIPS_SHIFT.to_vec()
            } else if t == "scaling_layer.scale" {
                LPIPS_SCALE.to_vec()
            } else {
                f32s(&get(&format!("{name}.{t}"))?.1)
            };
            values.insert(t, v);
        }
        let lp = Lpips::from_tensors(c.ctx, net, &|t: &str, _: &[usize]| values.get(t).cloned().ok_or_else(|| bad(format!("no values for {t}"))))?;
        c.case("lpips", format!("LPIPS {name} (lpips package, random backbone) x{} -> 64x64", dims(&xs)));
        let out = c.ctx.alloc("check", xs[0])?;
        let (fa, fb) = (lp.features(&t0, (2.0, -1.0))?, lp.features(&t1, (2.0, -1.0))?);
        lp.distance(&fa, &fb, &out, 0)?;
        let prev = std::mem::replace(&mut c.tol, F32_CHAINED);
        c.cmp("lpips (whole network)", &c.ctx.read(&out).await?, &get(&format!("{name}.lpips"))?.1);
        c.tol = prev;
    }
    Ok(())
}
