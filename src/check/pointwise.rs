//! Checks of the elementwise kernels: activations, dropout2d, add / mul / scale / bias_add / fill / copy.

use super::*;

pub(super) async fn check_activations(c: &mut Checker<'_>) -> Result<()> {
    let acts = [
        (Activation::Relu, r::activation::Activation::Relu),
        (Activation::LeakyRelu(0.2), r::activation::Activation::LeakyRelu(0.2f32 as f64)),
        (Activation::GeluErf, r::activation::Activation::GeluErf),
        (Activation::GeluTanh, r::activation::Activation::GeluTanh),
        (Activation::Silu, r::activation::Activation::Silu),
        (Activation::Sigmoid, r::activation::Activation::Sigmoid),
    ];
    for (a, ra) in acts {
        for shape in [[3, 5, 7, 7], [1, 3, 13, 11], [2, 6, 3, 3]] {
            let (x, xr) = c.leaf_in(&shape, -4.0, 4.0)?;
            let variant = match a {
                Activation::GeluErf => " erf",
                Activation::GeluTanh => " tanh",
                _ => "",
            };
            c.case(a.name(), format!("x{}{variant}", dims(&shape)));
            let y = c.g.activation(&x, a)?;
            c.cmp_t("activation_forward", &y, &r::activation::activation_forward(ra, &xr)).await?;
            let (grads, g) = c.backward(&y)?;
            c.grad("activation_backward", &grads, &x, &r::activation::activation_backward(ra, &xr, &g)).await?;
        }
    }
    Ok(())
}

pub(super) async fn check_dropout(c: &mut Checker<'_>) -> Result<()> {
    // (step, layer): streams 0, 41 and 2^33 (a high word).
    for (shape, p, seed, step, layer) in
        [([3, 5, 7, 7], 0.3f32, 7u64, 0u64, 0u32), ([1, 3, 13, 11], 0.5, 0x1234_5678_9abc, 0, 41), ([4, 6, 3, 3], 0.1, 99, 1 << 27, 0)]
    {
        let [n, ch, h, w] = shape;
        let (x, xr) = c.leaf(&shape)?;
        let stream = crate::ops::dropout2d::stream(step, layer);
        c.case("dropout2d", format!("x{} p{p} seed {seed} stream {stream}", dims(&shape)));
        let y = c.g.dropout2d(&x, p, seed, step, layer)?;
        // The kernel compares against p rounded to f32; the reference gets the same value.
        c.cmp_t("dropout2d_forward", &y, &r::dropout2d::dropout2d_forward(n, ch, h * w, p as f64, seed, stream, &xr)).await?;
        let (grads, g) = c.backward(&y)?;
        c.grad("dropout2d_backward", &grads, &x, &r::dropout2d::dropout2d_backward(n, ch, h * w, p as f64, seed, stream, &g)).await?;
    }
    Ok(())
}

pub(super) async fn check_elementwise(c: &mut Checker<'_>) -> Result<()> {
    for shape in [[3, 5, 7, 7], [1, 3, 13, 11], [2, 6, 3, 3]] {
        let [n, ch, h, w] = shape;
        let (a, ar) = c.leaf(&shape)?;
        let (b, br) = c.leaf(&shape)?;
        c.case("add", format!("x{}", dims(&shape)));
        let y = c.g.add(&a, &b)?;
        c.cmp_t("add_forward", &y, &r::elementwise::add_forward(&ar, &br)).await?;
        let (grads, g) = c.backward(&y)?;
        c.grad("add_backward", &grads, &a, &g).await?;
        c.grad("add_backward", &grads, &b, &g).await?;

        c.case("mul", format!("x{}", dims(&shape)));
        let y = c.g.mul(&a, &b)?;
        c.cmp_t("mul_forward", &y, &r::elementwise::mul_forward(&ar, &br)).await?;
        let (grads, g) = c.backward(&y)?;
        let (da, db) = r::elementwise::mul_backward(&ar, &br, &g);
        c.grad("mul_backward", &grads, &a, &da).await?;
        c.grad("mul_backward", &grads, &b, &db).await?;

        c.case("fill", format!("x{} value 0.625", dims(&shape)));
        let f = Tensor::full(c.ctx, &shape, 0.625)?;
        c.cmp_t("fill", &f, &vec![0.625; f.numel()]).await?;

        c.case("copy_offset", format!("x{} into a buffer of {} at 13", dims(&shape), a.numel() + 20));
        let dst = c.ctx.alloc("check", a.numel() + 20)?;
        crate::ops::elementwise::fill(c.ctx, &dst, 0.0)?;
        crate::ops::elementwise::copy_offset(c.ctx, a.view(), &dst, 13)?;
        let mut want = vec![0.0; a.numel() + 20];
        want[13..13 + a.numel()].copy_from_slice(&ar);
        c.cmp("copy_offset", &c.ctx.read(&dst).await?, &want);

        let alpha = 0.37f32;
        c.case("scale", format!("x{} alpha {alpha}", dims(&shape)));
        let y = c.g.scale(&a, alpha)?;
        c.cmp_t("scale_forward", &y, &r::elementwise::scale_forward(alpha as f64, &ar)).await?;
        let (grads, g) = c.backward(&y)?;
        c.grad("scale_backward", &grads, &a, &r::elementwise::scale_forward(alpha as f64, &g)).await?;

        let (bias, biasr) = c.leaf(&[ch])?;
        c.case("bias_add", format!("x{} b[{ch}]", dims(&shape)));
        let y = c.g.bias_add(&a, &bias)?;
        c.cmp_t("bias_add_forward", &y, &r::elementwise::bias_add_forward(n, ch, h * w, &ar, &biasr)).await?;
        let (grads, g) = c.backward(&y)?;
        c.grad("add_backward", &grads, &a, &g).await?;
        c.grad("bias_grad_partial+bias_grad_final", &grads, &bias, &r::elementwise::bias_add_backward(n, ch, h * w, &g)).await?;
    }
    Ok(())
}

/// The benchmark probes compute what they claim: the FMA chains (against the same recurrence in
/// f64) and the copy (exactly).
pub(super) async fn check_probe(c: &mut Checker<'_>) -> Result<()> {
    use crate::ops::probe;
    let (threads, steps) = (300usize, 50usize);
    c.case("probe", format!("{threads} invocations x {steps} steps"));
    let out = c.ctx.alloc("check", 4 * threads)?;
    probe::fma_chain(c.ctx, threads, steps, &out)?;
    let m = [0.9999f32, 0.9998, 0.9997, 0.9996];
    let a = [1e-4f32, 2e-4, 3e-4, 4e-4];
    let mut want = vec![0.0f64; 4 * threads];
    for i in 0..threads {
        let s = (i & 1023) as f32 * 1e-6;
        for k in 0..8 {
            let init = if k == 0 { s } else { s + 0.1 * k as f32 };
            for l in 0..4 {
                let mut x = init as f64;
                for _ in 0..steps {
                    x = x * m[l] as f64 + a[l] as f64;
                }
                want[4 * i + l] += x;
            }
        }
    }
    c.cmp("fma_chain", &c.ctx.read(&out).await?, &want);
    let src: Vec<f32> = c.rng.vec(4 * 1000);
    let a = c.ctx.upload("check", &src)?;
    let b = c.ctx.alloc("check", src.len())?;
    probe::copy_vec4(c.ctx, &a, &b)?;
    c.cmp("copy_vec4", &c.ctx.read(&b).await?, &f64s(&src));
    Ok(())
}
