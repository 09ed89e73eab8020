//! GPU tests (lavapipe in CI): every kernel entry point against the CPU reference, the autograd
//! plumbing, the caches, and bad input turning into errors. Without an adapter these FAIL with
//! instructions; nothing is skipped.

use dae::autograd::Graph;
use dae::check::{self, CheckRow};
use dae::error::{Error, NO_ADAPTER_HELP};
use dae::gpu::block_on;
use dae::ops::reduce;
use dae::{Ctx, Tensor};

fn ctx() -> Ctx {
    match Ctx::open(std::env::var("DAE_ADAPTER").ok().as_deref()) {
        Ok(c) => c,
        Err(e) => panic!("the GPU tests need an adapter and found none usable: {e}\n{NO_ADAPTER_HELP}"),
    }
}

fn family(name: &str) -> Vec<CheckRow> {
    let rows = block_on(check::run(&ctx(), Some(name))).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(!rows.is_empty(), "{name}: no checks ran");
    let bad: Vec<CheckRow> = rows.iter().filter(|r| !r.pass).cloned().collect();
    assert!(bad.is_empty(), "{name}: {} of {} checks failed:\n{}", bad.len(), rows.len(), check::table(&bad));
    rows
}

/// Every variant (naive, tiled, channel blocks) of the three conv kernels, for conv2d and
/// conv_transpose2d.
#[test]
fn convs_match_reference() {
    let rows = family("conv2d");
    // Lavapipe has shader-f16: the half-precision (amp) convs must have run too.
    if ctx().gpu().has_f16() {
        assert!(rows.iter().filter(|r| r.entry.ends_with(" f16")).count() >= 100, "the f16 conv checks did not run");
    }
}

/// Mixed precision's f16 cast (bit for bit, overflow flag) and the loss scaler driving AdamW
/// and the EMA through applied and skipped steps.
#[test]
fn amp_cast_and_loss_scaler_match_reference() {
    family("loss scaler");
}

/// Autotune's two blockings compute the same bits (each output is one invocation's sum in the
/// same order; only which invocation computes it differs), so a tuned choice cannot change a
/// training run; and a conv run under autotune notes its choice for the checkpoint.
#[test]
fn conv_blockings_agree_bit_for_bit_and_autotune_notes_its_choice() {
    use dae::ops::Chans;
    use dae::ops::conv2d::{ConvGeom, conv2d_forward, conv2d_input_grad, conv2d_weight_grad};
    use dae::ops::kernels::{CONV_BLOCKINGS, Kernels, Pin, WGRAD_BLOCKINGS, WgradBlocking, every_pin};
    let c = ctx();
    // Several channel blocks at stride 1, a stride-2 4x4 conv on odd sizes (the input grad's
    // stride phases, rows padded to whole phases in the subgroup kernel), and a conv whose
    // uniform-weight kernels run over two ranges of taps.
    let geoms = [
        ConvGeom { n: 3, cin: 17, h: 28, w: 28, cout: 19, ho: 28, wo: 28, kh: 3, kw: 3, stride: (1, 1), pad: (1, 1), xs: Chans::PLAIN },
        ConvGeom { n: 2, cin: 9, h: 15, w: 13, cout: 11, ho: 7, wo: 6, kh: 4, kw: 4, stride: (2, 2), pad: (1, 1), xs: Chans::PLAIN },
        // Past 2048 summed channels x taps: the uniform kernels run over ranges of taps.
        ConvGeom { n: 1, cin: 240, h: 5, w: 5, cout: 230, ho: 5, wo: 5, kh: 3, kw: 3, stride: (1, 1), pad: (1, 1), xs: Chans::PLAIN },
        // Past 256 summed channels both ways: the workgroup-memory kernels stage two chunks.
        ConvGeom { n: 1, cin: 300, h: 4, w: 4, cout: 270, ho: 4, wo: 4, kh: 3, kw: 3, stride: (1, 1), pad: (1, 1), xs: Chans::PLAIN },
    ];
    let mut rng = dae::util::rng::Rng::new(11);
    for g in geoms {
        let x = c.upload("t", &rng.vec(g.n * g.cin * g.h * g.w)).unwrap();
        let w = c.upload("t", &rng.vec(g.cout * g.cin * g.kh * g.kw)).unwrap();
        let b = c.upload("t", &rng.vec(g.cout)).unwrap();
        let dy = c.upload("t", &rng.vec(g.n * g.cout * g.ho * g.wo)).unwrap();
        let run = |pin: Pin| -> (Vec<u32>, Vec<u32>, Vec<u32>) {
            let kn = &Kernels::pinned(pin);
            let y = c.alloc("t", g.n * g.cout * g.ho * g.wo).unwrap();
            let dx = c.alloc("t", g.n * g.cin * g.h * g.w).unwrap();
            let dw = c.alloc("t", g.cout * g.cin * g.kh * g.kw).unwrap();
            conv2d_forward(&c, kn, &g, &x, &w, Some(&b), &y, false).unwrap();
            conv2d_input_grad(&c, kn, &g, &w, None, &dy, &dx, false).unwrap();
            conv2d_weight_grad(&c, kn, &g, &x, &dy, &dw, false).unwrap();
            let bits = |v: Vec<f32>| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
            (bits(block_on(c.read(&y)).unwrap()), bits(block_on(c.read(&dx)).unwrap()), bits(block_on(c.read(&dw)).unwrap()))
        };
        // Every pin of the kernel table's rows (each forward / input-grad blocking with a
        // weight-gradient one), and autotune's picks, against the first.
        let first = run(every_pin()[1]);
        assert!(first.0.iter().any(|&b| b != 0) && first.1.iter().any(|&b| b != 0) && first.2.iter().any(|&b| b != 0), "a kernel wrote nothing");
        // A 256-bit lavapipe has subgroups of 8 lanes and 64 KiB uniform bindings: there every
        // blocking runs itself (not the fallback an adapter without them gets).
        let name = &c.gpu().info.name;
        if name.contains("llvmpipe") && name.contains("256 bits") {
            for r in CONV_BLOCKINGS.iter() {
                assert!(r.needs.met(c.gpu()), "{name}: {} does not run here", r.pin);
            }
            for r in WGRAD_BLOCKINGS.iter() {
                assert!(r.needs.met(c.gpu()), "{name}: {} does not run here", r.pin);
            }
        }
        for pin in every_pin().into_iter().skip(2).chain([Pin::AUTO]) {
            assert!(first == run(pin), "{pin:?} differs from {:?} at {g:?}", every_pin()[1]);
        }
    }
    // The uniform-dy weight gradient where a row slice holds more pixels than one 64 KiB uniform
    // block of dy: 18 x 128 channels of 3x3 make 12 slices of 2 rows (24 rows), a block holds
    // 1024 / 520 = 1 row, so each slice runs as 2 dispatches per 16-channel block, the second
    // continuing the partial (48 dispatches, within the kernel's 64; the 18 channels leave a
    // partial second block). The geometries above cover ranges that cross slice boundaries.
    let g = ConvGeom { n: 1, cin: 128, h: 24, w: 520, cout: 18, ho: 24, wo: 520, kh: 3, kw: 3, stride: (1, 1), pad: (1, 1), xs: Chans::PLAIN };
    let x = c.upload("t", &rng.vec(g.n * g.cin * g.h * g.w)).unwrap();
    let dy = c.upload("t", &rng.vec(g.n * g.cout * g.ho * g.wo)).unwrap();
    let wgrad = |pin: Pin| -> Vec<u32> {
        let dw = c.alloc("t", g.cout * g.cin * g.kh * g.kw).unwrap();
        conv2d_weight_grad(&c, &Kernels::pinned(pin), &g, &x, &dy, &dw, false).unwrap();
        block_on(c.read(&dw)).unwrap().iter().map(|f| f.to_bits()).collect()
    };
    let tiled = wgrad(Pin::wgrad(WgradBlocking::Split(4, 4)));
    assert!(tiled.iter().all(|&b| b != 0), "the weight gradient left zeros");
    assert!(tiled == wgrad(Pin::wgrad(WgradBlocking::UniformDy)), "the uniform-dy weight gradient differs from tiled over row ranges");
    let noted = c.tuner().choices();
    for entry in ["conv2d_forward_tiled", "conv2d_input_grad_tiled", "conv2d_weight_grad_tiled"] {
        assert!(noted.keys().any(|k| k.starts_with(entry) && k.contains("n3 17x28x28 -> 19x28x28")), "{entry} not noted: {noted:?}");
    }
}
/// The norms' workgroup sizes (autotune's candidates) compute the same bits: every sum runs
/// over the same slots (group norm 64, batch norm 256) in the same order whichever size runs it.
#[test]
fn norm_workgroup_sizes_agree_bit_for_bit() {
    use dae::ops::activation::Activation;
    use dae::ops::amp::Operand;
    use dae::ops::group_norm::{GroupNormParams, group_norm_forward, group_norm_input_grad, group_norm_param_grad};
    use dae::ops::kernels::{Kernels, Pin};
    let c = ctx();
    let mut rng = dae::util::rng::Rng::new(12);
    // One-channel groups of 575 pixels whose parameter-gradient chunks start inside an image;
    // 2-channel groups of 25; 3 channels a group of 49 with a fused activation.
    for (n, ch, hw, groups, act) in [(3, 2, 575, 2, None), (2, 64, 25, 32, None), (4, 6, 49, 2, Some(Activation::Silu))] {
        let x = c.upload("t", &rng.vec(n * ch * hw)).unwrap();
        let gamma = c.upload("t", &rng.vec(ch)).unwrap();
        let beta = c.upload("t", &rng.vec(ch)).unwrap();
        let dy = c.upload("t", &rng.vec(n * ch * hw)).unwrap();
        let p = GroupNormParams {
            n: n as u32,
            c: ch as u32,
            hw: hw as u32,
            groups: groups as u32,
            eps: 1e-5,
            slope: 0.0,
            s_c: ch as u32,
            s_off: 0,
            s_total: ch as u32,
            ..Default::default()
        };
        let run = |wg: usize| -> Vec<Vec<u32>> {
            let kn = &Kernels::pinned(Pin { norm: Some(wg), ..Pin::AUTO });
            let stats = c.alloc("t", n * groups * 2).unwrap();
            let (y, dx) = (c.alloc("t", n * ch * hw).unwrap(), c.alloc("t", n * ch * hw).unwrap());
            let (dg, db) = (c.alloc("t", ch).unwrap(), c.alloc("t", ch).unwrap());
            group_norm_forward(&c, kn, act, p, &x, &gamma, &beta, &stats, &y).unwrap();
            group_norm_input_grad(&c, kn, act, p, Operand::F32(&x), &gamma, &beta, &dy, &stats, &dx).unwrap();
            group_norm_param_grad(&c, kn, act, p, Operand::F32(&x), &gamma, &beta, &dy, &stats, &dg, &db).unwrap();
            [stats, y, dx, dg, db].iter().map(|v| block_on(c.read(v)).unwrap().iter().map(|f| f.to_bits()).collect()).collect()
        };
        let first = run(0);
        assert!(first.iter().all(|v| v.iter().any(|&b| b != 0)), "a kernel wrote nothing");
        for wg in 1..4 {
            assert!(first == run(wg), "workgroup-size candidate {wg} differs from the first at n {n}, {ch} channels, {hw} pixels, {groups} groups");
        }
    }
    // Batch norm's two reductions: channels of 2185 values in 3 chunks that start inside images,
    // and of 8192 in 8.
    use dae::ops::batch_norm::{BatchNormParams, batch_norm_backward, batch_norm_forward_train};
    for (n, ch, hw) in [(5, 3, 437), (8, 2, 1024)] {
        let x = c.upload("t", &rng.vec(n * ch * hw)).unwrap();
        let gamma = c.upload("t", &rng.vec(ch)).unwrap();
        let beta = c.upload("t", &rng.vec(ch)).unwrap();
        let dy = c.upload("t", &rng.vec(n * ch * hw)).unwrap();
        let p = BatchNormParams {
            n: n as u32,
            c: ch as u32,
            hw: hw as u32,
            eps: 1e-5,
            momentum: 0.1,
            write_dx: 1,
            write_dparams: 1,
            s_c: ch as u32,
            s_total: ch as u32,
            ..Default::default()
        };
        let run = |wg: usize| -> Vec<Vec<u32>> {
            let kn = &Kernels::pinned(Pin { norm: Some(wg), ..Pin::AUTO });
            let (stats, rm, rv) = (c.alloc("t", 2 * ch).unwrap(), c.upload("t", &vec![0.0; ch]).unwrap(), c.upload("t", &vec![1.0; ch]).unwrap());
            let (y, dx) = (c.alloc("t", n * ch * hw).unwrap(), c.alloc("t", n * ch * hw).unwrap());
            let (dg, db) = (c.alloc("t", ch).unwrap(), c.alloc("t", ch).unwrap());
            batch_norm_forward_train(&c, kn, None, p, &x, &gamma, &beta, &stats, &rm, &rv, &y).unwrap();
            batch_norm_backward(&c, kn, None, p, Operand::F32(&x), &gamma, &beta, &dy, &stats, &dx, &dg, &db).unwrap();
            [stats, rm, rv, y, dx, dg, db].iter().map(|v| block_on(c.read(v)).unwrap().iter().map(|f| f.to_bits()).collect()).collect()
        };
        let first = run(0);
        assert!(first.iter().all(|v| v.iter().any(|&b| b != 0)), "a batch-norm kernel wrote nothing");
        for wg in 1..4 {
            assert!(first == run(wg), "batch norm's workgroup-size candidate {wg} differs from the first at n {n}, {ch} channels, {hw} pixels");
        }
    }
}
#[test]
fn group_norm_matches_reference() {
    family("group_norm");
}
#[test]
fn batch_norm_matches_reference() {
    family("batch_norm");
}
/// The norms with their activation fused in, forward and backward.
#[test]
fn fused_norm_activation_matches_reference() {
    family("fused activation");
}
#[test]
fn activations_match_reference() {
    family("activation");
}
#[test]
fn maxpool2d_matches_reference() {
    family("maxpool2d");
}
#[test]
fn resize_bilinear_matches_reference() {
    family("resize_bilinear");
}
#[test]
fn pad2d_matches_reference() {
    family("pad2d");
}
#[test]
fn concat_matches_reference() {
    family("concat");
}
#[test]
fn dropout2d_matches_reference() {
    family("dropout2d");
}
#[test]
fn elementwise_matches_reference() {
    family("elementwise");
}
#[test]
fn losses_match_reference() {
    family("loss");
}
#[test]
fn reductions_match_reference() {
    family("sum");
}
#[test]
fn optimizers_and_ema_match_reference() {
    family("optim");
}
#[test]
fn batch_gather_and_noise_match_reference() {
    family("data");
}
#[test]
fn image_metrics_match_reference() {
    family("metrics");
}
/// The FFT against the DFT by definition (relative L2 of the whole spectrum below 1e-5).
#[test]
fn fft_matches_the_dft() {
    family("fft");
}
/// The limitations analysis's kernels (Laplacian / gradient statistics, nearest image).
#[test]
fn analysis_kernels_match_reference() {
    family("analysis");
}
/// LPIPS kernels against their twins, and alex and vgg against the `lpips` package.
#[test]
fn lpips_matches_reference_and_the_lpips_package() {
    family("lpips");
}
#[test]
fn model_training_steps_match_reference() {
    family("model");
}
/// The same models on PyTorch's weights against PyTorch's own outputs and gradients
/// (tests/fixtures/torch_reference.safetensors, from tools/torch_reference.py).
#[test]
fn models_match_pytorch() {
    family("torch");
}
#[test]
fn composed_graph_matches_reference() {
    family("composed");
}

/// The full suite covers every op the engine-core issue names and every entry point of every
/// shader, each on at least three shapes (so a new kernel cannot land unchecked).
#[test]
fn every_op_and_entry_point_is_checked() {
    let rows = block_on(check::run(&ctx(), None)).unwrap();
    let ops = [
        "conv2d",
        "conv_transpose2d",
        "group_norm",
        "batch_norm",
        "relu",
        "leaky_relu",
        "gelu",
        "silu",
        "sigmoid",
        "maxpool2d",
        "resize_bilinear",
        "pad2d",
        "concat",
        "dropout2d",
        "add",
        "mul",
        "scale",
        "bias_add",
        "mse_loss",
        "l1_loss",
        "charbonnier_loss",
        "sum",
        "metrics",
        "lpips",
        "fft",
        "analysis",
    ];
    for op in ops {
        let shapes: std::collections::HashSet<&str> = rows.iter().filter(|r| r.op == op).map(|r| r.shape.as_str()).collect();
        assert!(shapes.len() >= 3, "op {op} is checked on {} shapes, want >= 3", shapes.len());
    }
    // An entry reads "a+b (note)": each part's first word is an entry point.
    let checked: std::collections::HashSet<&str> = rows.iter().flat_map(|r| r.entry.split('+')).filter_map(|e| e.split_whitespace().next()).collect();
    for s in dae::gpu::shaders::SHADERS {
        let module = dae::gpu::shaders::validate(s.family).unwrap();
        for ep in &module.entry_points {
            assert!(checked.contains(ep.name.as_str()), "entry point {} of {}.wgsl is never checked", ep.name, s.family);
        }
    }
}

fn shape_err<T: std::fmt::Debug>(r: dae::Result<T>, op: &str) {
    match r {
        Err(Error::Shape { op: o, message }) => assert_eq!(o, op, "wrong op named: {message}"),
        other => panic!("{op}: expected a shape error, got {other:?}"),
    }
}

#[test]
fn bad_input_is_an_error_naming_the_op() {
    let c = ctx();
    let mut g = Graph::new(&c);
    let t = |shape: &[usize]| Tensor::zeros(&c, shape).unwrap();
    let x = t(&[1, 3, 7, 7]);
    shape_err(g.conv2d(&x, &t(&[4, 2, 3, 3]), None, (1, 1), (1, 1)), "conv2d");
    shape_err(g.conv2d(&t(&[1, 1, 2, 2]), &t(&[1, 1, 5, 5]), None, (1, 1), (0, 0)), "conv2d");
    shape_err(g.conv2d(&x, &t(&[4, 3, 3, 3]), Some(&t(&[5])), (1, 1), (1, 1)), "conv2d");
    shape_err(g.conv2d(&x, &t(&[4, 3, 3, 3]), None, (0, 1), (1, 1)), "conv2d");
    shape_err(g.conv2d(&t(&[3, 7, 7]), &t(&[4, 3, 3, 3]), None, (1, 1), (1, 1)), "conv2d");
    shape_err(g.conv_transpose2d(&x, &t(&[3, 2, 4, 4]), None, (2, 2), (1, 1), (2, 0)), "conv_transpose2d");
    shape_err(g.group_norm(&x, 2, &t(&[3]), &t(&[3]), 1e-5), "group_norm");
    shape_err(g.group_norm(&x, 3, &t(&[4]), &t(&[3]), 1e-5), "group_norm");
    let one = t(&[1, 3, 1, 1]);
    shape_err(g.batch_norm(&one, &t(&[3]), &t(&[3]), &t(&[3]), &t(&[3]), true, 0.1, 1e-5), "batch_norm");
    shape_err(g.max_pool2d(&t(&[1, 1, 1, 5]), (2, 2), (2, 2)), "maxpool2d");
    shape_err(g.resize_bilinear(&x, 0, 4, false), "resize_bilinear");
    shape_err(g.concat(&[&x, &t(&[1, 2, 7, 6])]), "concat");
    shape_err(g.concat(&[]), "concat");
    shape_err(g.dropout2d(&x, 1.0, 0, 0, 0), "dropout2d");
    shape_err(g.add(&x, &t(&[1, 3, 7, 6])), "add");
    shape_err(g.bias_add(&x, &t(&[4])), "bias_add");
    shape_err(g.mse_loss(&x, &t(&[1, 3, 7, 6])), "mse_loss");
    shape_err(g.relu(&Tensor::from_slice(&c, &[0, 3], &[]).unwrap()), "relu");
    shape_err(g.reduce(&Tensor::from_slice(&c, &[0], &[]).unwrap(), reduce::ReduceKind::Sum), "sum");
    shape_err(Tensor::from_slice(&c, &[2, 2], &[1.0; 3]), "tensor");

    // Over the adapter's storage-binding limit: an error naming the op and the limit, before
    // wgpu sees anything.
    let limit = c.gpu().limits.max_storage_buffer_binding_size;
    let side = ((limit / 4 / 64) as f64).sqrt() as usize + 8;
    let big_in = t(&[1, 1, side, side]);
    match g.conv2d(&big_in, &t(&[64, 1, 3, 3]), None, (1, 1), (1, 1)) {
        Err(Error::Limit { op, limit_name, .. }) => assert_eq!((op, limit_name), ("conv2d", "max_storage_buffer_binding_size")),
        other => panic!("expected a limit error, got {other:?}"),
    }
    // Autograd misuse.
    let mut g = Graph::new(&c);
    let leaf = g.leaf(&Tensor::from_slice(&c, &[2], &[1.0, 2.0]).unwrap());
    let y = g.scale(&leaf, 2.0).unwrap();
    assert!(matches!(g.backward(&y), Err(Error::Autograd(_))), "non-scalar loss must be refused");
    assert!(
        matches!(Graph::new(&c).backward(&x.reshape(&[21, 7]).unwrap().reshape(&[147]).unwrap()), Err(Error::Autograd(_))),
        "a non-scalar tensor outside the graph must be refused"
    );
    let s = Tensor::from_slice(&c, &[1], &[1.0]).unwrap();
    assert!(matches!(Graph::new(&c).backward(&s), Err(Error::Autograd(_))), "a tensor outside the graph must be refused");
    // Nothing went wrong on the device along the way.
    c.flush().unwrap();
    c.gpu().wait().unwrap();
}

/// Parameters with a grad slot accumulate (`+=`) across backward passes; an inference graph
/// records nothing.
#[test]
fn grad_slots_accumulate_and_inference_records_nothing() {
    let c = ctx();
    let slot = c.alloc("test", 3).unwrap();
    dae::ops::elementwise::fill(&c, &slot, 0.0).unwrap();
    let w = Tensor::from_slice(&c, &[3], &[1.0, -2.0, 3.0]).unwrap();
    for _ in 0..2 {
        let mut g = Graph::new(&c);
        g.param(&w, slot.clone()).unwrap();
        let l = g.sum_sq(&w).unwrap();
        g.backward(&l).unwrap();
    }
    let grad = block_on(c.read(&slot)).unwrap();
    assert_eq!(grad, vec![4.0, -8.0, 12.0], "two backward passes of sum(w^2) must accumulate 2 * 2w");
    let mut g = Graph::inference(&c);
    g.param(&w, slot.clone()).unwrap();
    g.sum_sq(&w).unwrap();
    assert_eq!(g.len(), 0);
}

/// backward visits only what the loss depends on: a branch recorded beside it runs no kernel;
/// and a graph dropped between forward and backward (an error in between) frees what it saved:
/// 100 such failures leave the buffer count flat.
#[test]
fn backward_visits_only_what_the_loss_needs_and_a_dropped_graph_frees_everything() {
    let c = ctx();
    let x = Tensor::from_slice(&c, &[2, 3, 9, 9], &vec![0.5; 2 * 3 * 81]).unwrap();
    let w = Tensor::from_slice(&c, &[4, 3, 3, 3], &vec![0.1; 108]).unwrap();
    let target = Tensor::zeros(&c, &[2, 4, 9, 9]).unwrap();
    let run = |with_branch: bool| -> u64 {
        let mut g = Graph::new(&c);
        let w = g.leaf(&w);
        let h = g.conv2d(&x, &w, None, (1, 1), (1, 1)).unwrap();
        if with_branch {
            // A second use of w that the loss does not depend on.
            let other = g.conv2d(&x, &w, None, (1, 1), (1, 1)).unwrap();
            let _ = g.sum_sq(&other).unwrap();
        }
        let l = g.mse_loss(&h, &target).unwrap();
        let before = c.dispatch_count();
        drop(g.backward(&l).unwrap());
        c.dispatch_count() - before
    };
    // Once untimed first: autotune may time this shape's kernels on their first use (extra
    // dispatches that would land in whichever run met them first).
    run(true);
    assert_eq!(run(true), run(false), "the unrelated branch's backward ran");
    let fail = || -> dae::Result<()> {
        let mut g = Graph::new(&c);
        let w = g.leaf(&w);
        let h = g.conv2d(&x, &w, None, (1, 1), (1, 1))?;
        let h = g.silu(&h)?;
        g.mse_loss(&h, &x)?; // a shape error between forward and backward
        Ok(())
    };
    assert!(fail().is_err());
    let warm = c.created();
    for _ in 0..100 {
        assert!(fail().is_err());
    }
    assert_eq!(c.created().buffers, warm.buffers, "failed steps leaked buffers");
}

/// A repeated step creates no pipeline, bind group or buffer once warm (pool + caches). The first
/// step fills the pool in creation order, so the steady state starts with the second.
#[test]
fn a_repeated_step_creates_nothing_new() {
    let c = ctx();
    let x = Tensor::from_slice(&c, &[2, 3, 9, 9], &vec![0.5; 2 * 3 * 81]).unwrap();
    let w = Tensor::from_slice(&c, &[4, 3, 3, 3], &vec![0.1; 108]).unwrap();
    let gm = Tensor::from_slice(&c, &[4], &[1.0; 4]).unwrap();
    let bt = Tensor::from_slice(&c, &[4], &[0.0; 4]).unwrap();
    let target = Tensor::zeros(&c, &[2, 4, 9, 9]).unwrap();
    let step = || -> dae::Result<f32> {
        let mut g = Graph::new(&c);
        for t in [&w, &gm, &bt] {
            g.leaf(t);
        }
        let h = g.conv2d(&x, &w, None, (1, 1), (1, 1))?;
        let h = g.group_norm(&h, 2, &gm, &bt, 1e-5)?;
        let h = g.silu(&h)?;
        let l = g.mse_loss(&h, &target)?;
        let grads = g.backward(&l)?;
        let gw = grads.get(&w).expect("w has a gradient");
        drop(grads);
        Ok(dae::gpu::block_on(gw.to_vec())?[0] + dae::gpu::block_on(l.to_vec())?[0])
    };
    let first = step().unwrap();
    step().unwrap();
    let before = c.created();
    let third = step().unwrap();
    assert_eq!(first, third, "same inputs, same result");
    assert_eq!(c.created(), before, "a warm step created GPU objects");
}

// ---- training ----------------------------------------------------------------------------

/// MNIST for the training tests: DAE_DATA_DIR (CI sets it), else the shared copy beside the
/// checkout, else a folder under target/ that `dae train`'s loader downloads into.
fn mnist_dir() -> std::path::PathBuf {
    if let Some(d) = std::env::var_os("DAE_DATA_DIR").filter(|d| !d.is_empty()) {
        return d.into();
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/data/mnist");
    if shared.join("train-images-idx3-ubyte.gz").is_file() { shared } else { root.join("target/test-data/mnist") }
}

fn quick(out: &std::path::Path, sets: &[&str]) -> dae::config::Config {
    let mut all: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    all.push(format!("out_dir={}", serde_json::to_string(&out.display().to_string()).unwrap()));
    dae::config::Config::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/quick.yaml"), &all).unwrap()
}

fn opts() -> dae::train::TrainOptions {
    dae::train::TrainOptions { data_dir: Some(mnist_dir()), ..Default::default() }
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("dae-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A trimmed configs/quick.yaml run: it learns (the EMA model beats the noisy input at sigma
/// 0.3 on the validation split), and writes the logs and checkpoints SPEC section 4 lists.
#[test]
fn quick_training_learns_and_writes_outputs() {
    let out = tmp("quick");
    // 50 steps: quick.yaml's output conv starts dark (loss ~0.1, the black background), and the
    // EMA model passes the noisy input by 2 dB after about 45 (at 30 it was +0.4 dB).
    let cfg = quick(
        &out,
        &[
            "train.epochs=1",
            "train.max_steps_per_epoch=50",
            "train.log_every=10",
            "train.ema_decay=0.8",
            "data.val_size=96",
            "noise.test_sigmas=[0.3]",
        ],
    );
    let s = dae::train::train(&ctx(), &cfg, &opts()).unwrap();
    assert_eq!((s.steps, s.epochs_done, s.interrupted), (50, 1, None));
    let v = &s.last_val[0];
    assert!(v.psnr > v.psnr_noisy + 2.0, "after 50 steps the EMA model should beat the noisy input at sigma 0.3: {v:?}");
    let csv = std::fs::read_to_string(out.join("logs/train_metrics.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "step,epoch,loss,lr,grad_norm,images_per_s");
    assert_eq!(rows.len(), 51);
    let loss = |r: &str| r.split(',').nth(2).unwrap().parse::<f64>().unwrap();
    assert!(loss(rows[50]) < 0.5 * loss(rows[1]), "loss should fall: {} -> {}", rows[1], rows[50]);
    let val = std::fs::read_to_string(out.join("logs/val_metrics.csv")).unwrap();
    assert_eq!(val.lines().count(), 2);
    for f in ["last.safetensors", "last.ema.safetensors", "last.state.safetensors", "best_model.safetensors"] {
        assert!(out.join("ckpts").join(f).is_file(), "{f} missing");
    }
    assert!(out.join("figures/recon_epoch_001.png").is_file(), "reconstruction grid missing");
    std::fs::remove_dir_all(&out).ok();
}

fn tensors(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let f = dae::checkpoint::read(path).unwrap();
    let mut v: Vec<(String, Vec<u8>)> = f.tensors.into_iter().map(|(k, (_, _, d))| (k, d)).collect();
    v.sort();
    v
}

/// 2N steps in one run and N + N with an interrupt (mid-epoch) and --resume end bit-identical:
/// weights, EMA, optimiser moments. Dropout and batch norm are on to cover their state.
#[test]
fn resume_is_bit_identical() {
    let sets = ["model.base_ch=8", "model.norm_type=batch", "model.dropout=0.1"];
    let (a, b, _) = straight_and_resumed("resume", &sets);
    let rows = |d: &std::path::Path| std::fs::read_to_string(d.join("logs/train_metrics.csv")).unwrap().lines().count();
    assert_eq!(rows(&a), rows(&b), "the resumed run's log has the same rows");
    std::fs::remove_dir_all(&a).ok();
    std::fs::remove_dir_all(&b).ok();
}

/// A 10-step run (2 epochs of 5 steps of 16 images, quick.yaml plus `extra`) straight (folder
/// a) and cut at step 7 then resumed (folder b), asserting the two end with identical `last`
/// files; the folders and both summaries.
fn straight_and_resumed(name: &str, extra: &[&str]) -> (std::path::PathBuf, std::path::PathBuf, [dae::train::Summary; 2]) {
    let mut sets = vec![
        "train.batch_size=16",
        "train.epochs=2",
        "train.max_steps_per_epoch=5",
        "train.log_every=3",
        "data.val_size=32",
        "data.train_limit=256",
        "noise.test_sigmas=[0.3]",
    ];
    sets.extend_from_slice(extra);
    let sets = &sets[..];
    let (a, b) = (tmp(&format!("{name}-a")), tmp(&format!("{name}-b")));
    let c = ctx();
    let sa = dae::train::train(&c, &quick(&a, sets), &opts()).unwrap();
    assert_eq!(sa.steps, 10);
    let cut = dae::train::TrainOptions { stop_after: Some(7), ..opts() };
    let sb = dae::train::train(&c, &quick(&b, sets), &cut).unwrap();
    assert!(sb.interrupted == Some(130) && sb.steps == 7, "{sb:?}");
    let resumed = dae::train::TrainOptions { resume: true, ..opts() };
    let sb = dae::train::train(&c, &quick(&b, sets), &resumed).unwrap();
    assert_eq!((sb.steps, sb.interrupted), (10, None));
    for f in ["last.safetensors", "last.ema.safetensors", "last.state.safetensors"] {
        assert!(tensors(&a.join("ckpts").join(f)) == tensors(&b.join("ckpts").join(f)), "{f} differs between the straight and the resumed run");
    }
    (a, b, [sa, sb])
}

/// train.amp from a loss scale of 2^32: the first steps overflow f16 and are skipped (logged
/// with grad_norm inf, counted, the scale halving) and training goes on; a run cut at step 7
/// and resumed ends bit-identical to a straight one, the scaler's state included.
#[test]
fn amp_skips_overflowing_steps_and_resumes_bit_identically() {
    let sets = ["model.base_ch=8", "train.amp=true", "train.amp_init_scale=4294967296", "train.amp_growth_interval=3"];
    assert!(ctx().gpu().has_f16(), "this test needs an adapter with shader-f16 (lavapipe has it)");
    let (a, b, [sa, sb]) = straight_and_resumed("amp", &sets);
    let (scale, skipped) = sa.amp.expect("amp is on");
    let csv = std::fs::read_to_string(a.join("logs/train_metrics.csv")).unwrap();
    let inf_rows = csv.lines().filter(|r| r.split(',').nth(4) == Some("inf")).count() as u64;
    assert!((1..10).contains(&skipped) && inf_rows == skipped, "skipped {skipped}, inf rows {inf_rows}:\n{csv}");
    assert!(scale < 4294967296.0, "the scale should have fallen: {scale}");
    assert!(sa.last_val[0].psnr.is_finite());
    assert_eq!(sb.amp, sa.amp, "the resumed run's scaler state");
    assert!(tensors(&a.join("ckpts/last.state.safetensors")).iter().any(|(k, _)| k == "amp_scaler"));
    std::fs::remove_dir_all(&a).ok();
    std::fs::remove_dir_all(&b).ok();
}

/// A diverging run stops with a message naming the step, and writes no checkpoint from after it.
#[test]
fn nan_loss_stops_naming_the_step() {
    let out = tmp("nan");
    let cfg = quick(
        &out,
        &[
            "model.base_ch=8",
            "train.lr=1e30",
            "train.grad_clip=null",
            "train.warmup_epochs=0",
            "train.max_steps_per_epoch=12",
            "train.log_every=4",
            "train.batch_size=16",
            "data.val_size=32",
        ],
    );
    let e = dae::train::train(&ctx(), &cfg, &opts()).unwrap_err().to_string();
    assert!(e.contains("at step") && e.contains("No checkpoint was written before it"), "{e}");
    assert!(
        e.contains("train.lr is 1000000000000000000000000000000") && e.contains("train.grad_clip is null"),
        "the message should name the fields that made it diverge: {e}"
    );
    assert!(!out.join("ckpts/last.safetensors").exists(), "no checkpoint may be written after the loss went bad");
    std::fs::remove_dir_all(&out).ok();
}

/// A run that goes bad after a good epoch leaves that epoch's `last` byte for byte.
#[test]
fn a_bad_epoch_leaves_the_good_last_checkpoint() {
    let out = tmp("nan-after");
    let sets = [
        "model.base_ch=8",
        "train.epochs=1",
        "train.max_steps_per_epoch=3",
        "train.log_every=3",
        "train.batch_size=8",
        "data.val_size=8",
        "noise.test_sigmas=[0.3]",
    ];
    dae::train::train(&ctx(), &quick(&out, &sets), &opts()).unwrap();
    let files = ["last.safetensors", "last.ema.safetensors", "last.state.safetensors"];
    let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(out.join("ckpts").join(f)).unwrap()).collect();
    let mut bad = sets.to_vec();
    bad.extend(["train.epochs=2", "train.lr=1e30", "train.grad_clip=null", "train.warmup_epochs=0"]);
    let resumed = dae::train::TrainOptions { resume: true, ..opts() };
    let e = dae::train::train(&ctx(), &quick(&out, &bad), &resumed).unwrap_err().to_string();
    assert!(e.contains("intact"), "{e}");
    for (f, b) in files.iter().zip(&before) {
        assert!(&std::fs::read(out.join("ckpts").join(f)).unwrap() == b, "{f} changed after the run went bad");
    }
    std::fs::remove_dir_all(&out).ok();
}

/// MNIST and Fashion-MNIST share file names: the other set's folder is refused, by name.
#[test]
fn the_other_datasets_files_are_refused() {
    let out = tmp("wrong-set");
    let cfg = quick(&out, &["data.dataset=fashion_mnist", "model.base_ch=8", "train.epochs=1", "train.max_steps_per_epoch=1"]);
    let e = dae::train::train(&ctx(), &cfg, &opts()).unwrap_err().to_string();
    assert!(e.contains("is MNIST's file") && e.contains("Fashion-MNIST"), "{e}");
    std::fs::remove_dir_all(&out).ok();
}

/// A VGG16-features file with random weights for convs 0..=14 (taps up to relu3_3).
fn random_vgg(path: &std::path::Path, drop: Option<&str>) {
    let mut rng = dae::util::rng::Rng::new(3);
    let convs = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256), (14, 256, 256)];
    let mut t = Vec::new();
    for (i, cin, cout) in convs {
        let w: Vec<f32> = rng.vec(cout * cin * 9).iter().map(|v| v * (2.0 / (cin * 9) as f32).sqrt()).collect();
        let b: Vec<f32> = rng.vec(cout).iter().map(|v| 0.1 * v).collect();
        t.push((format!("features.{i}.weight"), vec![cout, cin, 3, 3], bytemuck::cast_slice(&w).to_vec(), safetensors::Dtype::F32));
        t.push((format!("features.{i}.bias"), vec![cout], bytemuck::cast_slice(&b).to_vec(), safetensors::Dtype::F32));
    }
    t.retain(|(n, ..)| Some(n.as_str()) != drop);
    dae::checkpoint::write(path, t, Default::default()).unwrap();
}

/// `l2 + 0.1*perceptual` trains (finite, falling loss); a wrong hash and a partial VGG file are
/// errors naming the problem.
#[test]
fn perceptual_loss_trains_and_checks_its_weights() {
    let dir = tmp("vgg");
    std::fs::create_dir_all(&dir).unwrap();
    let vgg = dir.join("vgg.safetensors");
    random_vgg(&vgg, None);
    let sha = dae::nn::vgg::sha256_file(&vgg).unwrap();
    let base = |out: &std::path::Path, file: &std::path::Path, sha: &str| {
        let p = format!("train.perceptual={{weights: {}, sha256: {sha}, taps: [3, 8]}}", file.display());
        quick(
            out,
            &[
                "model.base_ch=8",
                "train.epochs=1",
                "train.batch_size=4",
                "train.max_steps_per_epoch=6",
                "train.log_every=3",
                "data.val_size=8",
                "noise.test_sigmas=[0.3]",
                "train.loss=l2 + 0.1*perceptual",
                &p,
            ],
        )
    };
    let out = dir.join("run");
    let s = dae::train::train(&ctx(), &base(&out, &vgg, &sha), &opts()).unwrap();
    assert_eq!(s.steps, 6);
    let csv = std::fs::read_to_string(out.join("logs/train_metrics.csv")).unwrap();
    let losses: Vec<f64> = csv.lines().skip(1).map(|r| r.split(',').nth(2).unwrap().parse().unwrap()).collect();
    assert!(losses.iter().all(|l| l.is_finite()) && losses[5] < losses[0], "{losses:?}");

    let e = dae::train::train(&ctx(), &base(&dir.join("bad"), &vgg, &"0".repeat(64)), &opts()).err().unwrap().to_string();
    assert!(e.contains("sha256") && e.contains("does not match"), "{e}");
    let partial = dir.join("partial.safetensors");
    random_vgg(&partial, Some("features.7.weight"));
    let sha_p = dae::nn::vgg::sha256_file(&partial).unwrap();
    let e = dae::train::train(&ctx(), &base(&dir.join("partial"), &partial, &sha_p), &opts()).err().unwrap().to_string();
    assert!(e.contains("features.7.weight"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A new run refuses an out_dir holding an earlier run (no mixed logs); --overwrite starts over.
#[test]
fn a_new_run_does_not_mix_with_an_earlier_one() {
    let out = tmp("mix");
    std::fs::create_dir_all(out.join("logs")).unwrap();
    std::fs::write(out.join("logs/train_metrics.csv"), "step,epoch,loss,lr,grad_norm,images_per_s\n1,1,0.5,0.001,1.0,10\n").unwrap();
    let cfg = quick(
        &out,
        &["model.base_ch=8", "train.epochs=1", "train.batch_size=8", "train.max_steps_per_epoch=2", "data.val_size=8", "noise.test_sigmas=[0.3]"],
    );
    // Without a checkpoint, --resume would fail: the hint offers only --overwrite.
    let e = dae::train::train(&ctx(), &cfg, &opts()).err().unwrap().to_string();
    assert!(e.contains("no complete checkpoint") && !e.contains("--resume") && e.contains("--overwrite"), "{e}");
    let over = dae::train::TrainOptions { overwrite: true, ..opts() };
    dae::train::train(&ctx(), &cfg, &over).unwrap();
    // With one, it offers --resume too.
    let e = dae::train::train(&ctx(), &cfg, &opts()).err().unwrap().to_string();
    assert!(e.contains("with --resume") && e.contains("--overwrite"), "{e}");
    let rows = std::fs::read_to_string(out.join("logs/train_metrics.csv")).unwrap().lines().count();
    assert_eq!(rows, 3, "header + the new run's 2 steps, nothing of the old run");
    assert!(out.join("config.resolved.yaml").is_file());
    std::fs::remove_dir_all(&out).ok();
}

// ---- the command line --------------------------------------------------------------------

fn dae_cmd(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_dae")).args(args).output().expect("run the dae binary")
}

/// `dae gradcheck --json` prints one JSON array of objects with exactly the six keys and exits 0
/// when every check passes; `dae devices --json` lists the adapter the tests run on.
#[test]
fn gradcheck_and_devices_commands() {
    let out = dae_cmd(&["gradcheck", "--json", "--only", "pad2d"]);
    assert!(out.status.success(), "dae gradcheck failed: {}", String::from_utf8_lossy(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("gradcheck --json prints JSON");
    let rows = rows.as_array().expect("a JSON array");
    assert!(rows.len() >= 6, "pad2d: forward and backward on >= 3 shapes, got {} rows", rows.len());
    for r in rows {
        let mut keys: Vec<&str> = r.as_object().expect("an object per check").keys().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["entry", "op", "pass", "rel_err", "shape", "tol"]);
        assert_eq!(r["op"], "pad2d");
        assert_eq!(r["pass"], true);
    }
    // The checks as a page for any browser: self-contained, every placeholder filled.
    let page = tmp("gradcheck-page").with_extension("html");
    let out = dae_cmd(&["gradcheck", "--write-page", page.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("wasm_bindgen") && !html.contains("DAE_") && !html.contains("<script src"), "not a filled, self-contained page");
    assert!(html.len() > 1_000_000, "no wasm module in the page ({} bytes)", html.len());
    let bad = dae_cmd(&["gradcheck", "--only", "no-such-op"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("families"), "{}", String::from_utf8_lossy(&bad.stderr));

    let out = dae_cmd(&["devices", "--json"]);
    assert!(out.status.success(), "dae devices failed: {}", String::from_utf8_lossy(&out.stderr));
    let devs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("devices --json prints JSON");
    assert!(!devs.as_array().expect("a JSON array").is_empty(), "no adapter listed");
}

/// SwiftShader's Vulkan driver (shipped with chromium) runs the kernel checks as a second
/// implementation beside lavapipe: a child `dae gradcheck` sees only that driver through
/// VK_ICD_FILENAMES. Its transcendental functions differ from lavapipe's (before the noise
/// kernel kept cos's argument in [-pi, pi] and its bounds came from WGSL's stated accuracy,
/// four noise checks failed there). Without the driver this fails with the install command.
#[test]
fn the_checks_pass_on_swiftshader_too() {
    const ICD: &str = "/usr/lib/chromium/vk_swiftshader_icd.json";
    assert!(
        std::path::Path::new(ICD).is_file(),
        "SwiftShader's Vulkan driver ({ICD}) is missing; it comes with chromium: sudo apt-get install chromium"
    );
    let t0 = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dae"))
        .env("VK_ICD_FILENAMES", ICD)
        .env_remove("DAE_ADAPTER")
        .env_remove("DAE_KERNELS")
        .args(["--adapter", "swiftshader", "gradcheck"])
        .output()
        .expect("run the dae binary");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stderr.contains("adapter: SwiftShader"), "the child did not run on SwiftShader:\n{stderr}");
    let summary = stdout.lines().last().unwrap_or("");
    let failed: Vec<&str> = stdout.lines().filter(|l| l.ends_with(" FAIL") || l.starts_with("    mismatches")).collect();
    assert!(out.status.success() && summary.contains(" 0 failed"), "dae gradcheck on SwiftShader: {summary}\n{}\n{stderr}", failed.join("\n"));
    let checks: usize = summary.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(checks >= 1000, "only {checks} checks ran on SwiftShader: {summary}");
    assert!(stdout.contains("data_noise flips"), "the noise checks did not run on SwiftShader");
    eprintln!("SwiftShader: {summary} (child {:.1} s)", t0.elapsed().as_secs_f64());
}

/// Every kernel check in headless Chromium on its WebGPU adapter (Dawn and its WGSL compiler
/// Tint, over SwiftShader on a machine without a GPU), through `dae gradcheck --browser`: the
/// engine built for wasm32, embedded in the binary. Without chromium this fails with the
/// install command.
#[test]
fn the_checks_pass_in_the_browser() {
    let t0 = std::time::Instant::now();
    let out = dae_cmd(&["gradcheck", "--browser", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rows: Vec<dae::check::CheckRow> =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("dae gradcheck --browser --json printed no rows ({e}):\n{stderr}"));
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| !r.pass)
        .map(|r| format!("{} {} {} {:.2e} > {:.0e} {:?}", r.op, r.entry, r.shape, r.rel_err, r.tol, r.mismatches))
        .collect();
    assert!(failed.is_empty(), "{} browser checks fail:\n{}\n{stderr}", failed.len(), failed.join("\n"));
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("the page logged"), "the checks' page logged errors:\n{stderr}");
    assert!(rows.len() >= 1000, "only {} checks ran in the browser", rows.len());
    assert!(rows.iter().any(|r| r.entry.starts_with("data_noise")), "the noise checks did not run in the browser");
    eprintln!(
        "browser: {} checks pass ({:.1} s with the browser's start); {}",
        rows.len(),
        t0.elapsed().as_secs_f64(),
        stderr.lines().find(|l| l.starts_with("adapter:")).unwrap_or("")
    );
}

/// `dae viz demo` writes the live denoiser: one self-contained page that, opened in headless
/// Chromium, loads without a logged error and whose `window.dae.denoise` gives what `dae infer`
/// gives on the same noisy image (the page's own `noisy` array) to 1e-5.
#[test]
fn the_demo_page_denoises_as_dae_infer_does() {
    let run = copy_run("demo");
    let o = eval_cmd(&["viz", "demo"], &run, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = run.join("reports/demo.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("src=\"http") && !html.contains("<script src") && !html.contains("DAE_"), "the page must be self-contained and filled");
    let shot = run.join("demo.png");
    let d = dae::web::demo_denoise(&page, 3, "gaussian", 0.3, 7, Some(&shot)).unwrap_or_else(|e| panic!("{e}"));
    assert!(d.errors.is_empty(), "the demo page logged errors: {:?}", d.errors);
    assert_eq!((d.noisy.len(), d.denoised.len()), (784, 784));
    assert!(d.repeatable, "the same call twice gave other bits");
    // The page's PSNR is the metric kernel's on the model's output against the clean image.
    let host = dae::metrics::psnr(&d.denoised, &d.clean, 100.0);
    assert!((d.psnr - host).abs() < 1e-3 && (0.0..=1.0).contains(&d.ssim), "psnr {} (host {host}) ssim {}", d.psnr, d.ssim);
    // The noise is gaussian at sigma 0.3 (clipped to [0, 1]): the mean |noisy - clean| of an
    // unclipped N(0, 0.3) is 0.24; clipping at the black background halves about half of it.
    let mad = d.noisy.iter().zip(&d.clean).map(|(n, c)| (n - c).abs() as f64).sum::<f64>() / 784.0;
    assert!((0.08..0.3).contains(&mad), "mean |noisy - clean| {mad}");
    // The same noisy image through `dae infer` (lavapipe, natively).
    let dir = tmp("demo-infer");
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("noisy.safetensors");
    dae::checkpoint::write(
        &input,
        vec![("input".into(), vec![1, 1, 28, 28], bytemuck::cast_slice(&d.noisy).to_vec(), safetensors::Dtype::F32)],
        Default::default(),
    )
    .unwrap();
    let output = dir.join("out.safetensors");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_dae"))
        .args(["infer", "--ckpt"])
        .arg(run.join("ckpts/best_model.safetensors"))
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let native: Vec<f32> = bytemuck::pod_collect_to_vec(&dae::checkpoint::read(&output).unwrap().tensors["output"].2);
    let diff = native.iter().zip(&d.denoised).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff <= 1e-5, "the demo's output differs from dae infer's by {diff:e} (max abs)");
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "no screenshot");
    // A browser that gives no WebGPU adapter: a sentence saying so, not a blank page.
    let plain = dae::web::driver::Browser::launch_with(false).unwrap_or_else(|e| panic!("{e}"));
    let tab = plain.open(&page).unwrap();
    let rejected = tab.eval("window.dae.ready.then(() => 'ready', e => e.message)", std::time::Duration::from_secs(60)).unwrap();
    let text = tab.eval("document.body.innerText", std::time::Duration::from_secs(10)).unwrap();
    assert!(rejected.as_str().is_some_and(|m| m.contains("WebGPU")), "without an adapter the page said {rejected}");
    assert!(text.as_str().is_some_and(|t| t.contains(rejected.as_str().unwrap())), "the reason is not on the page: {text}");
    eprintln!(
        "demo: {} bytes, one denoise {:.1} ms on {} (the first {:.1} ms); PSNR {:.2} dB, SSIM {:.3}; max |demo - dae infer| {diff:e}; screenshot {}",
        html.len(),
        d.ms,
        d.adapter,
        d.first_ms,
        d.psnr,
        d.ssim,
        shot.display()
    );
}

/// A real SIGINT (and SIGTERM) to `dae train`: it saves `last` at the next step boundary and
/// exits with 130 (143); `--resume` then goes on from there.
#[cfg(unix)]
#[test]
fn sigint_and_sigterm_save_last_and_exit_130_and_143() {
    use std::time::{Duration, Instant};
    for (sig, code, said) in [("INT", 130, "interrupt (Ctrl-C): saved"), ("TERM", 143, "SIGTERM: saved")] {
        let out = tmp(&format!("sig{sig}"));
        let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/quick.yaml");
        let sets = [
            "model.base_ch=8",
            "train.batch_size=8",
            "train.log_every=1",
            "data.val_size=8",
            "noise.test_sigmas=[0.3]",
            "train.epochs=2",
            "train.max_steps_per_epoch=400",
        ];
        let cmd = |extra: &[&str]| {
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_dae"));
            c.arg("train").arg("--config").arg(&cfg).arg("--out-dir").arg(&out).arg("--data-dir").arg(mnist_dir());
            for s in sets {
                c.args(["--set", s]);
            }
            c.args(extra);
            c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            c
        };
        let mut child = cmd(&[]).spawn().expect("start dae train");
        let csv = out.join("logs/train_metrics.csv");
        let t0 = Instant::now();
        while std::fs::read_to_string(&csv).map_or(0, |s| s.lines().count()) < 3 {
            if t0.elapsed() > Duration::from_secs(120) || child.try_wait().unwrap().is_some() {
                let _ = child.kill();
                panic!("dae train wrote no step rows in time: {:?}", child.wait_with_output().unwrap());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let killed = std::process::Command::new("kill").args([&format!("-{sig}"), &child.id().to_string()]).status().expect("run kill");
        assert!(killed.success());
        let t1 = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if t1.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("dae train did not stop within 60 s of SIG{sig}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "SIG{sig}: {err}");
        assert!(err.contains(said) && err.contains("--resume"), "{err}");
        let ckpt = dae::checkpoint::read(&out.join("ckpts/last.safetensors")).unwrap();
        let step: u64 = ckpt.meta["step"].parse().unwrap();
        assert!((2..800).contains(&step), "saved at step {step}");
        // The resumed run starts from that step (stopped again right away by the step limit).
        let o = cmd(&["--resume", "--set", "train.max_steps_per_epoch=1", "--set", "train.epochs=1"]).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("resumed at step {step}")), "{err}");
        std::fs::remove_dir_all(&out).ok();
    }
}

// ---- checkpoint sets ---------------------------------------------------------------------

fn tiny_train_cmd(out: &std::path::Path, extra: &[&str]) -> std::process::Command {
    tiny_train_cmd_on(out, &mnist_dir(), extra)
}

fn tiny_train_cmd_on(out: &std::path::Path, data: &std::path::Path, extra: &[&str]) -> std::process::Command {
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/quick.yaml");
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_dae"));
    c.arg("train").arg("--config").arg(&cfg).arg("--out-dir").arg(out).arg("--data-dir").arg(data).arg("-q");
    for s in [
        "model.base_ch=4",
        "model.num_downs=1",
        "train.epochs=2",
        "train.save_every=1",
        "train.batch_size=8",
        "train.max_steps_per_epoch=2",
        "data.val_size=8",
        "noise.test_sigmas=[0.3]",
    ] {
        c.args(["--set", s]);
    }
    c.args(extra);
    c
}

fn set_tensors(dir: &std::path::Path, stem: &str) -> Vec<Vec<(String, Vec<u8>)>> {
    ["", ".ema", ".state"].iter().map(|p| tensors(&dir.join(format!("{stem}{p}.safetensors")))).collect()
}

/// The process is aborted (as by SIGKILL) after each checkpoint write point of epoch 2's saves
/// in turn (every file written, rename and folder sync of best_model, `last` and epoch_002);
/// `--resume` then finishes with the same weights, EMA and optimiser state as an uninterrupted
/// run, and no `.tmp` file is left.
#[test]
fn a_crash_at_any_checkpoint_write_resumes_identically() {
    let root = tmp("crash");
    let straight = root.join("straight");
    let o = tiny_train_cmd(&straight, &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = set_tensors(&straight.join("ckpts"), "last");
    let want_epoch = set_tensors(&straight.join("ckpts"), "epoch_002");
    let mut points = 0;
    for n in 1.. {
        let out = root.join(format!("crash{n}"));
        let o = tiny_train_cmd(&out, &["--crash-at", &format!("2:{n}")]).output().unwrap();
        if o.status.success() {
            break; // past the last write point of epoch 2: no crash happened
        }
        assert!(String::from_utf8_lossy(&o.stderr).contains("crash injection"), "point {n}: {}", String::from_utf8_lossy(&o.stderr));
        points = n;
        let r = tiny_train_cmd(&out, &["--resume"]).output().unwrap();
        assert!(r.status.success(), "resume after a crash at point {n}: {}", String::from_utf8_lossy(&r.stderr));
        assert!(set_tensors(&out.join("ckpts"), "last") == want, "crash at point {n}: the resumed run ended elsewhere");
        assert!(set_tensors(&out.join("ckpts"), "epoch_002") == want_epoch, "crash at point {n}: epoch_002 differs or is missing");
        let tmps: Vec<_> = std::fs::read_dir(out.join("ckpts"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(tmps.is_empty(), "crash at point {n}: stale .tmp files left: {tmps:?}");
        std::fs::remove_dir_all(&out).ok();
    }
    assert!(points >= 20, "epoch 2's saves have {points} write points; expected best_model + two sets");
    std::fs::remove_dir_all(&root).ok();
}

/// A `last` set whose file no longer matches its manifest: --resume falls back to the newest
/// complete epoch set and says so; with nothing complete it names the folder and what to do.
#[test]
fn resume_falls_back_to_the_newest_complete_epoch_set() {
    let out = tmp("fallback");
    let o = tiny_train_cmd(&out, &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ck = out.join("ckpts");
    let f = ck.join("last.ema.safetensors");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    let r = tiny_train_cmd(&out, &["--resume", "--set", "train.epochs=3"]).output().unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{err}");
    assert!(err.contains("continuing from epoch_002"), "{err}");
    for stem in ["last", "epoch_001", "epoch_002", "epoch_003"] {
        std::fs::remove_file(ck.join(format!("{stem}.manifest.json"))).ok();
        std::fs::remove_file(ck.join(format!("{stem}.state.safetensors"))).ok();
    }
    let r = tiny_train_cmd(&out, &["--resume"]).output().unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && err.contains("no complete checkpoint") && err.contains("--overwrite"), "{err}");
    std::fs::remove_dir_all(&out).ok();
}

/// Checkpoints written before the manifest (format dae-checkpoint-1, kept in tests/fixtures)
/// still resume.
#[test]
fn checkpoints_of_the_first_format_still_resume() {
    let out = tmp("legacy");
    let ck = out.join("ckpts");
    std::fs::create_dir_all(&ck).unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy_ckpt");
    for e in std::fs::read_dir(&fixture).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), ck.join(e.file_name())).unwrap();
    }
    assert_eq!(dae::checkpoint::read(&ck.join("last.safetensors")).unwrap().meta["format"], "dae-checkpoint-1");
    // (The fixture was trained before quick.yaml changed its output conv's init: an init-only
    // difference does not stop a resume.)
    let r = tiny_train_cmd(&out, &["--resume", "--set", "train.epochs=2", "--set", "train.save_every=3"]).output().unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{err}");
    let set = dae::checkpoint::open_set(&ck, "last").unwrap().expect("a complete set after the resumed epoch");
    assert_eq!(set.step, 4);
    std::fs::remove_dir_all(&out).ok();
}

/// Two training runs into one folder: the second is refused at once, naming the folder and the
/// holder, and the first is unharmed; once the first is gone (killed: its OS lock dies with it)
/// the folder can be resumed.
#[cfg(unix)]
#[test]
fn a_second_training_run_into_a_busy_folder_is_refused() {
    use std::time::{Duration, Instant};
    let out = tmp("busy");
    let mut first = tiny_train_cmd(&out, &["--set", "train.max_steps_per_epoch=400", "--set", "train.log_every=1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let csv = out.join("logs/train_metrics.csv");
    let t0 = Instant::now();
    while std::fs::read_to_string(&csv).map_or(0, |s| s.lines().count()) < 2 {
        assert!(t0.elapsed() < Duration::from_secs(120) && first.try_wait().unwrap().is_none(), "the first run wrote no step");
        std::thread::sleep(Duration::from_millis(50));
    }
    for extra in [&[][..], &["--resume"][..]] {
        let o = tiny_train_cmd(&out, extra).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("in use by another training run") && err.contains(&format!("pid {}", first.id())), "{err}");
    }
    assert!(first.try_wait().unwrap().is_none(), "the first run must go on");
    first.kill().unwrap();
    first.wait().unwrap();
    let o = tiny_train_cmd(&out, &["--overwrite"]).output().unwrap();
    assert!(o.status.success(), "after the holder died the lock must be free: {}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_dir_all(&out).ok();
}

// ---- evaluation, figures, report ---------------------------------------------------------

/// One tiny trained run shared by the evaluation tests (trained once per test binary).
fn trained_run() -> std::path::PathBuf {
    static RUN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let out = tmp("eval-run");
        let o = tiny_train_cmd(&out, &["--set", "train.max_steps_per_epoch=6"]).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    })
    .clone()
}

/// `dae <args>` on the shared run's folder with the tiny config and a small test subset.
fn eval_cmd(sub: &[&str], out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/quick.yaml");
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_dae"));
    c.args(sub).arg("--config").arg(&cfg).arg("--out-dir").arg(out).arg("--data-dir").arg(mnist_dir()).arg("-q");
    for s in ["model.base_ch=4", "model.num_downs=1", "eval.test_limit=40", "eval.mode_images=8", "eval.diversity_images=2", "eval.diversity_draws=3"]
    {
        c.args(["--set", s]);
    }
    c.args(extra);
    c.output().unwrap()
}

/// The Fashion-MNIST files for the out-of-distribution tests: `DAE_FASHION_DATA_DIR`, else the
/// `fashion-mnist` folder beside the MNIST one, else the shared data folder. A test never skips:
/// without them it fails saying where to put them.
fn fashion_dir() -> std::path::PathBuf {
    let spec = &dae::data::FASHION_MNIST;
    let has_all = |d: &std::path::Path| spec.files.iter().all(|(f, _)| d.join(f).is_file());
    let mut tried = Vec::new();
    if let Some(d) = std::env::var_os("DAE_FASHION_DATA_DIR").filter(|d| !d.is_empty()) {
        tried.push(std::path::PathBuf::from(d));
    }
    if let Some(p) = mnist_dir().parent() {
        tried.push(p.join("fashion-mnist"));
    }
    tried.push(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/fashion-mnist"));
    match tried.iter().find(|d| has_all(d)) {
        Some(d) => d.clone(),
        None => panic!(
            "the out-of-distribution tests need Fashion-MNIST's four files ({}): set DAE_FASHION_DATA_DIR to their folder (tried {tried:?})",
            spec.files.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The report's settings that keep its study sections small in the tests.
const SMALL_STUDY: [&str; 10] = [
    "--set",
    "eval.generation.chains=4",
    "--set",
    "eval.generation.levels=2",
    "--set",
    "eval.generation.steps=1",
    "--set",
    "eval.ood_images=16",
    "--set",
    "eval.mismatch_images=8",
];

/// A copy of the shared run (tests that write into it must not race each other).
fn copy_run(name: &str) -> std::path::PathBuf {
    let src = trained_run();
    let dst = tmp(name);
    for sub in ["ckpts", "logs"] {
        std::fs::create_dir_all(dst.join(sub)).unwrap();
        for e in std::fs::read_dir(src.join(sub)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dst.join(sub).join(e.file_name())).unwrap();
        }
    }
    dst
}

/// `dae report` writes every file SPEC section 5 lists; the HTML parses, and every figure it
/// embeds decodes; the JSON files carry the documented keys.
#[test]
fn report_writes_every_file_and_its_page_embeds_every_figure() {
    let run = copy_run("report");
    let fashion = fashion_dir();
    let mut extra = vec!["--sigmas", "0.1,0.5", "--ood-data-dir", fashion.to_str().unwrap()];
    extra.extend(SMALL_STUDY);
    let o = eval_cmd(&["report"], &run, &extra);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Every file training and the report left is one `--overwrite` knows as dae's own.
    let (ours, others) = dae::util::outputs::survey(&run).unwrap();
    assert!(others.is_empty(), "files dae wrote that util::outputs does not name: {others:?}");
    assert!(ours.len() >= 20, "{ours:?}");
    for f in [
        "logs/evaluation_results.json",
        "grids/recon_grid_sigma_0.1.png",
        "grids/recon_grid_sigma_0.5.png",
        "panels/sigma_panel_0.png",
        "grids/best_cases.png",
        "grids/worst_cases.png",
        "grids/diversity_collapse_demo.png",
        "grids/generation_attempts.png",
        "grids/ood_recon_grid.png",
        "reports/training_curves.png",
        "reports/frequency_analysis.png",
        "reports/limitations_analysis.json",
        "reports/limitations_analysis.html",
        "reports/demo.html",
    ] {
        let p = run.join(f);
        assert!(p.is_file(), "{f} missing");
        if f.ends_with(".png") {
            image::open(&p).unwrap_or_else(|e| panic!("{f} does not decode: {e}"));
        }
    }
    let html = std::fs::read_to_string(run.join("reports/limitations_analysis.html")).unwrap();
    let dom = tl::parse(&html, tl::ParserOptions::default()).expect("the page parses");
    let imgs: Vec<String> = dom
        .query_selector("img")
        .unwrap()
        .filter_map(|h| h.get(dom.parser()))
        .filter_map(|n| n.as_tag().and_then(|t| t.attributes().get("src").flatten().map(|s| s.as_utf8_str().to_string())))
        .collect();
    assert!(imgs.len() >= 10, "the page embeds {} figures", imgs.len());
    for section in ["Contents", "Generation from noise", "Out of distribution", "Noise-model mismatch", "digit-like"] {
        assert!(html.contains(section), "the page lacks {section}");
    }
    assert_eq!(html.matches("<h3>Reconstructions</h3>").count(), 1, "one heading for the reconstruction grids of every level");
    for src in &imgs {
        let b64 = src.strip_prefix("data:image/png;base64,").expect("figures are inline PNG data URIs");
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64");
        image::load_from_memory(&bytes).expect("an embedded figure decodes");
    }
    assert!(!html.contains("src=\"http") && !html.contains("<script"), "the page must be self-contained");
    assert!(html.contains("<a href=\"demo.html\">"), "the page links to the live demo");
    let lim: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("reports/limitations_analysis.json")).unwrap()).unwrap();
    for k in [
        "smoothing",
        "smoothing_score",
        "frequency",
        "high_freq_ratio",
        "diversity",
        "mode_averaging",
        "overall_limitation_score",
        "baseline",
        "generation",
        "out_of_distribution",
        "noise_mismatch",
    ] {
        assert!(lim.get(k).is_some(), "limitations_analysis.json lacks {k}");
    }
    // The blank image and the training mean image are negative cases of "digit-like".
    let sets = lim["generation"]["sets"].as_array().unwrap();
    for name in ["blank (all 0)", "training mean image"] {
        let s = sets.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no {name} baseline"));
        assert_eq!(s["digit_like"].as_f64(), Some(0.0), "{name} must not count as digit-like: {s}");
    }
    let ood = &lim["out_of_distribution"];
    assert!(ood["unavailable"].is_null(), "{ood}");
    assert_eq!(
        (ood["dataset"].as_str(), ood["images"].as_u64(), ood["rows"].as_array().map(|r| r.len())),
        (Some("Fashion-MNIST"), Some(16), Some(2))
    );
    assert_eq!(lim["noise_mismatch"]["rows"].as_array().map(|r| r.len()), Some(20));
    let ev: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("logs/evaluation_results.json")).unwrap()).unwrap();
    for k in ["checkpoint", "weights", "dataset", "split", "n_images", "seed", "psnr_mode", "results", "lpips_input"] {
        assert!(ev.get(k).is_some(), "evaluation_results.json lacks {k}");
    }
    let row = &ev["results"][0];
    for k in ["noise", "sigma", "mse", "psnr", "ssim", "lpips", "noisy_mse", "noisy_psnr", "noisy_ssim", "noisy_lpips", "psnr_std", "ssim_std"] {
        assert!(row.get(k).is_some(), "a result row lacks {k}");
    }
    assert!(row["lpips"].is_null(), "without weights LPIPS is null, never 0");
    assert_eq!((ev["split"].as_str(), ev["psnr_mode"].as_str(), ev["weights"].as_str()), (Some("test"), Some("per_image_mean"), Some("ema")));
    std::fs::remove_dir_all(&run).ok();
}

fn results(run: &std::path::Path) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(run.join("logs/evaluation_results.json")).unwrap()).unwrap()["results"].clone()
}

/// Each image's noise is keyed by its index: the results do not depend on --batch, and repeat.
#[test]
fn eval_results_do_not_depend_on_the_batch() {
    let run = copy_run("batch");
    let mut got = Vec::new();
    for b in ["7", "40", "7"] {
        let o = eval_cmd(&["eval"], &run, &["--batch", b, "--noise", "salt-pepper", "--sigmas", "0.05,0.2"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        got.push(results(&run));
    }
    assert_eq!(got[0], got[1], "--batch 7 and 40 disagree");
    assert_eq!(got[0], got[2], "a repeated evaluation differs");
    assert_eq!(got[0][0]["noise"], "salt_pepper");
    std::fs::remove_dir_all(&run).ok();
}

/// Bad input to `dae eval`: a clear error naming the thing, the right exit status, and the
/// earlier results file untouched.
#[test]
fn eval_refuses_bad_input_and_leaves_earlier_results_alone() {
    let run = copy_run("bad-eval");
    let o = eval_cmd(&["eval"], &run, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json = run.join("logs/evaluation_results.json");
    let before = std::fs::read(&json).unwrap();
    let ck = run.join("ckpts/best_model.safetensors");
    let bytes = std::fs::read(&ck).unwrap();
    let cut = run.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    // An LPIPS file: random values under every name lpips uses; one without a head.
    let lp = |drop: Option<&str>| {
        let mut rng = dae::util::rng::Rng::new(5);
        let t: Vec<_> = dae::nn::lpips::tensor_specs(dae::config::LpipsNet::Alex)
            .into_iter()
            .filter(|(n, _)| Some(n.as_str()) != drop)
            .map(|(n, s)| {
                let v = rng.vec(s.iter().product()).iter().map(|x| 0.1 * x.abs() + 0.01).collect::<Vec<f32>>();
                (n, s, bytemuck::cast_slice(&v).to_vec(), safetensors::Dtype::F32)
            })
            .collect();
        let p = run.join(format!("lpips{}.safetensors", drop.map_or("", |_| "-partial")));
        dae::checkpoint::write(&p, t, Default::default()).unwrap();
        let sha = dae::nn::vgg::sha256_file(&p).unwrap();
        (p, sha)
    };
    let (full, sha) = lp(None);
    let (partial, sha_p) = lp(Some("lin2.model.1.weight"));
    let lp_set = |p: &std::path::Path, s: &str| format!("eval.lpips={{net: alex, weights: {}, sha256: {s}}}", p.display());
    let cases: Vec<(Vec<String>, i32, Vec<&str>)> = vec![
        (vec!["--set".into(), "model.base_ch=8".into()], 2, vec!["model.base_ch", "differs"]),
        (vec!["--set".into(), "model.name=conv".into()], 2, vec!["model.name", "conv"]),
        (vec!["--ckpt".into(), cut.display().to_string()], 1, vec!["cut.safetensors"]),
        (vec!["--ckpt".into(), run.join("ckpts/last.state.safetensors").display().to_string()], 1, vec!["optimiser state"]),
        (vec!["--ckpt".into(), run.join("nothing.safetensors").display().to_string()], 2, vec!["no checkpoint at"]),
        (vec!["--sigmas=-0.5".into()], 2, vec!["--sigmas", "-0.5"]),
        (vec!["--sigmas=inf".into()], 2, vec!["--sigmas", "inf"]),
        (vec!["--noise".into(), "salt-pepper".into(), "--sigmas=1.5".into()], 2, vec!["amounts", "1.5"]),
        (vec!["--batch".into(), "0".into()], 2, vec!["--batch"]),
        (vec!["--set".into(), lp_set(&full, &"0".repeat(64))], 2, vec!["eval.lpips.sha256", "does not match"]),
        (vec!["--set".into(), lp_set(&partial, &sha_p)], 1, vec!["lin2.model.1.weight"]),
    ];
    for (args, code, words) in &cases {
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let o = eval_cmd(&["eval"], &run, &a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(*code), "{args:?}: {err}");
        for w in words {
            assert!(err.contains(w), "{args:?}: the error should name {w:?}: {err}");
        }
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(std::fs::read(&json).unwrap(), before, "{args:?}: a failed run changed evaluation_results.json");
    }
    // The whole LPIPS file works and fills both LPIPS columns.
    let o = eval_cmd(&["eval"], &run, &["--set", &lp_set(&full, &sha), "--sigmas", "0.3"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = results(&run);
    assert!(r[0]["lpips"].as_f64().is_some_and(|v| v > 0.0) && r[0]["noisy_lpips"].as_f64().is_some_and(|v| v > 0.0), "{r}");
    std::fs::remove_dir_all(&run).ok();
}

/// Ctrl-C during `dae eval`: exit 130 and no results file (not a partial one).
#[cfg(unix)]
#[test]
fn an_interrupted_eval_writes_nothing() {
    let run = copy_run("eval-int");
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/quick.yaml");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_dae"))
        .args(["eval", "--batch", "1", "-q", "--set", "model.base_ch=4", "--set", "model.num_downs=1"])
        .arg("--config")
        .arg(&cfg)
        .arg("--out-dir")
        .arg(&run)
        .arg("--data-dir")
        .arg(mnist_dir())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("no results were written"), "{err}");
    assert!(!run.join("logs/evaluation_results.json").exists());
    std::fs::remove_dir_all(&run).ok();
}

/// `dae infer`: any number of images in chunks (the same numbers as one big batch), PNG files
/// and folders (grey from RGB), and NaN / inf input refused naming the first position.
#[test]
fn infer_chunks_reads_pngs_and_refuses_non_finite_input() {
    let run = trained_run();
    let dir = tmp("infer");
    std::fs::create_dir_all(dir.join("pngs")).unwrap();
    let ckpt = run.join("ckpts/best_model.safetensors");
    let mut rng = dae::util::rng::Rng::new(8);
    let n = 300;
    let x: Vec<f32> = rng.vec(n * 784).iter().map(|v| 0.5 + 0.5 * v).collect();
    let write = |name: &str, v: &[f32], shape: Vec<usize>| {
        let p = dir.join(name);
        dae::checkpoint::write(&p, vec![("input".into(), shape, bytemuck::cast_slice(v).to_vec(), safetensors::Dtype::F32)], Default::default())
            .unwrap();
        p
    };
    let input = write("in.safetensors", &x, vec![n, 1, 28, 28]);
    let infer = |inp: &std::path::Path, out: &std::path::Path, batch: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dae"))
            .args(["infer", "--batch", batch, "--ckpt"])
            .arg(&ckpt)
            .arg("--input")
            .arg(inp)
            .arg("--output")
            .arg(out)
            .output()
            .unwrap()
    };
    let read = |p: &std::path::Path| dae::checkpoint::read(p).unwrap().tensors["output"].2.clone();
    let (a, b) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    assert!(infer(&input, &a, "64").status.success());
    assert!(infer(&input, &b, "300").status.success());
    assert!(read(&a) == read(&b), "chunks of 64 and one batch of 300 disagree");
    let mut bad = x[..3 * 784].to_vec();
    bad[784 + 5 * 28 + 7] = f32::NAN;
    bad[2 * 784] = f32::INFINITY;
    let o = infer(&write("bad.safetensors", &bad, vec![3, 1, 28, 28]), &dir.join("bad_out.safetensors"), "8");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("2 of 2352") && err.contains("[1, 0, 5, 7]"), "{err}");
    assert!(!dir.join("bad_out.safetensors").exists());
    image::GrayImage::from_fn(28, 28, |i, j| image::Luma([((i * 9 + j * 5) % 256) as u8])).save(dir.join("pngs/grey.png")).unwrap();
    image::RgbImage::from_fn(33, 40, |i, j| image::Rgb([(i * 7) as u8, (j * 3) as u8, 90])).save(dir.join("pngs/rgb.png")).unwrap();
    let o = infer(&dir.join("pngs"), &dir.join("out"), "8");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("rgb.png: the model takes grey images; this one has colour"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Never in place: a file onto itself, a folder onto itself, safetensors onto itself.
    let grey = std::fs::read(dir.join("pngs/grey.png")).unwrap();
    let inputs = std::fs::read(&input).unwrap();
    for (inp, out) in [(dir.join("pngs/grey.png"), dir.join("pngs/grey.png")), (dir.join("pngs"), dir.join("pngs")), (input.clone(), input.clone())] {
        let o = infer(&inp, &out, "8");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("would replace the input"), "{err}");
    }
    assert!(std::fs::read(dir.join("pngs/grey.png")).unwrap() == grey && std::fs::read(&input).unwrap() == inputs);
    // The output's kind follows the input's.
    for (inp, out) in [(dir.join("pngs/grey.png"), dir.join("x.jpg")), (input.clone(), dir.join("x.png"))] {
        let o = infer(&inp, &out, "8");
        assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(!out.exists());
    }
    for (f, w, h) in [("grey.png", 28, 28), ("rgb.png", 33, 40)] {
        let img = image::open(dir.join("out").join(f)).unwrap();
        assert_eq!((img.width(), img.height()), (w, h), "{f}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Every subcommand fed zero, negative, huge, NaN and infinite values: exit status 2 (a usage or
/// config error), a message naming the value's flag or field, never a panic.
#[test]
fn bad_numbers_are_usage_errors_everywhere() {
    let run = trained_run();
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/quick.yaml");
    let cfg = cfg.to_str().unwrap();
    let out = tmp("bad-numbers");
    let out_s = out.to_str().unwrap().to_string();
    let run_s = run.to_str().unwrap().to_string();
    let data = mnist_dir().to_str().unwrap().to_string();
    let tiny = ["--set", "model.base_ch=4", "--set", "model.num_downs=1"];
    let mut cases: Vec<(Vec<String>, &str)> = Vec::new();
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    for (set, field) in [
        ("train.lr=0", "train.lr"),
        ("train.lr=-1", "train.lr"),
        ("train.lr=.nan", "train.lr"),
        ("train.lr=.inf", "train.lr"),
        ("train.lr=1e999", "train.lr"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.batch_size=-3", "train.batch_size"),
        ("train.batch_size=100000000000", "train.batch_size"),
        ("train.epochs=0", "train.epochs"),
        ("train.weight_decay=.inf", "train.weight_decay"),
        ("train.grad_clip=.nan", "train.grad_clip"),
        ("train.warmup_epochs=-1", "train.warmup_epochs"),
        ("train.ema_decay=1", "train.ema_decay"),
        ("train.log_every=0", "train.log_every"),
        ("model.base_ch=0", "model.base_ch"),
        ("model.base_ch=99999", "model.base_ch"),
        ("model.num_downs=9", "model.num_downs"),
        ("model.dropout=.nan", "model.dropout"),
        ("model.out_bias=.inf", "model.out_bias"),
        ("noise.test_sigmas=[.inf]", "noise.test_sigmas"),
        ("noise.test_sigmas=[]", "noise.test_sigmas"),
        ("noise.train_sigmas=[-0.1]", "noise.train_sigmas"),
        ("noise.train_sigma_range=[0, .inf]", "noise.train_sigma_range"),
        ("noise.amount=2", "noise.amount"),
        ("noise.peak=0", "noise.peak"),
        ("noise.clip_range=[1, 0]", "noise.clip_range"),
        ("data.val_size=0", "data.val_size"),
        ("data.val_size=1000000", "data.val_size"),
        ("eval.batch_size=0", "eval.batch_size"),
        ("eval.diversity_sigma=.nan", "eval.diversity_sigma"),
        ("seed=-1", "seed"),
    ] {
        cases.push((v(&["train", "--config", cfg, "--out-dir", &out_s, "--data-dir", &data, "--set", set]), field));
    }
    cases.push((v(&["train", "--config", cfg, "--out-dir", &out_s, "--seed", "-5"]), "--seed"));
    cases.push((v(&["train", "--config", cfg, "--out-dir", &out_s, "--seed", "1e30"]), "--seed"));
    for a in [
        &["--sigmas=.nan"][..],
        &["--sigmas=nan"],
        &["--sigmas=inf"],
        &["--sigmas=-1"],
        &["--sigmas=1e30,0.1"],
        &["--batch", "0"],
        &["--batch", "-2"],
        &["--batch", "99999999999"],
    ] {
        for sub in [&["eval"][..], &["report"], &["compare", "limitations"], &["viz", "recon-grid"]] {
            let mut c = v(sub);
            c.extend(v(&["--config", cfg, "--out-dir", &run_s, "--data-dir", &data]));
            c.extend(v(&tiny));
            c.extend(v(a));
            cases.push((c, if a[0].starts_with("--sigmas") { "--sigmas" } else { "--batch" }));
        }
    }
    for a in [&["--batch", "0"][..], &["--iters", "0"], &["--warmup", "-1"], &["--batch", "1e9"], &["--iters", "99999999"]] {
        let mut c = v(&["bench"]);
        c.extend(v(a));
        cases.push((c, a[0]));
    }
    cases.push((v(&["infer", "--batch", "0", "--ckpt", "x", "--input", "y", "--output", "z"]), "--batch"));
    cases.push((v(&["--adapter", "99", "devices"]), "99"));
    cases.push((v(&["--adapter", "99", "gradcheck", "--only", "pad2d"]), "99"));
    cases.push((v(&["gradcheck", "--only", "nope"]), "--only"));
    cases.push((v(&["compare", "runs", &run_s]), "runs"));
    for (args, word) in &cases {
        let o = dae_cmd(&args.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: expected a usage error (2): {err}");
        assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{args:?} panicked: {err}");
        assert!(err.contains(word), "{args:?}: the message should name {word:?}: {err}");
    }
    std::fs::remove_dir_all(&out).ok();
}

/// Resident memory of this process in bytes (Linux: /proc/self/statm).
#[cfg(target_os = "linux")]
fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    s.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4096
}

/// A soak: a tiny UNet trained for 300 steps through the real ops, autograd, optimiser and EMA;
/// after warm-up no GPU buffer, bind group or pipeline is created and the process's resident
/// memory stays flat.
#[cfg(target_os = "linux")]
#[test]
fn a_long_run_keeps_buffers_and_memory_flat() {
    use dae::nn::model::Fwd;
    use dae::nn::{Model, ModelConfig, Weights};
    let c = ctx();
    let mc = ModelConfig { base_ch: 4, num_downs: 2, ..Default::default() };
    let (model, layout) = Model::new(&mc).unwrap();
    let (p0, b0) = layout.init(1);
    let params = c.upload("soak", &p0).unwrap();
    let ema = c.upload("soak", &p0).unwrap();
    let buffers = c.upload("soak", &b0).unwrap();
    let grads = c.alloc("soak", layout.param_len()).unwrap();
    dae::ops::elementwise::fill(&c, &grads, 0.0).unwrap();
    let w = Weights::views(&c, &layout, &params, Some(&grads), &buffers).unwrap();
    let hyper = dae::optim::Hyper {
        kind: dae::ops::optim::OptKind::Adamw,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 1e-4,
        momentum: 0.0,
        grad_clip: Some(1.0),
    };
    let mut opt = dae::optim::Optimizer::new(&c, layout.param_len(), hyper).unwrap();
    let mut rng = dae::util::rng::Rng::new(4);
    let x = Tensor::from_slice(&c, &[4, 1, 28, 28], &rng.vec(4 * 784).iter().map(|v| 0.5 + 0.5 * v).collect::<Vec<_>>()).unwrap();
    let y = Tensor::from_slice(&c, &[4, 1, 28, 28], &rng.vec(4 * 784).iter().map(|v| 0.5 + 0.5 * v).collect::<Vec<_>>()).unwrap();
    let mut first_loss = 0.0;
    let mut warm = (c.created(), 0u64);
    let mut last = 0.0;
    for step in 0..300u64 {
        let mut g = Graph::new(&c);
        w.attach(&mut g).unwrap();
        let out = model.forward(&mut g, &Fwd::gpu(&w, true, 1, step), &x).unwrap();
        let l = g.mse_loss(&out, &y).unwrap();
        drop(g.backward(&l).unwrap());
        opt.step(&c, &params, &grads, 1e-3).unwrap();
        dae::optim::ema_update(&c, 0.99, &params, &ema).unwrap();
        if step % 50 == 0 || step == 299 {
            last = block_on(l.to_vec()).unwrap()[0];
            if step == 0 {
                first_loss = last;
            }
        }
        c.flush().unwrap();
        if step == 20 {
            c.gpu().wait().unwrap();
            warm = (c.created(), rss());
        }
    }
    c.gpu().wait().unwrap();
    let (created, mem) = (c.created(), rss());
    assert_eq!(created, warm.0, "GPU objects were created after warm-up");
    assert!(mem <= warm.1 + (16 << 20), "resident memory grew from {} MiB at step 20 to {} MiB at step 300", warm.1 >> 20, mem >> 20);
    assert!(last < first_loss, "the soak model should learn: loss {first_loss} -> {last}");
}

/// The recorded step: after the first step of unet16x2 and conv16x2 (real SPEC models, a real
/// batch) no pipeline, bind group or buffer is created and no bind-group key hashed.
#[test]
fn a_recorded_step_replays_without_creating_or_hashing_anything() {
    let c = ctx();
    for arch in ["unet", "conv"] {
        let out = tmp(&format!("plan-{arch}"));
        let cfg = quick(&out, &[&format!("model.name={arch}"), "model.base_ch=16", "model.num_downs=2", "train.batch_size=8", "data.val_size=16"]);
        let mut tr = dae::train::Trainer::new(&c, &cfg, &opts(), &mut |_| {}).unwrap();
        let log = c.alloc("test log", 20).unwrap();
        tr.write_perm(0).unwrap();
        // Progressive autotune records the plan anew while kernels wait for timing (an empty
        // tune cache): step until it settles, then only replays follow.
        let mut s = 0;
        while tr.retuning() {
            assert!(s < 100, "{arch}: the plan did not settle in 100 steps");
            tr.train_step(s, &log, s % 10).unwrap();
            s += 1;
        }
        c.gpu().wait().unwrap();
        let (made, hashed) = (c.created(), c.bind_keys_hashed());
        for k in s..s + 9 {
            tr.train_step(k, &log, k % 10).unwrap();
        }
        assert_eq!(c.created(), made, "{arch}: a replayed step created GPU objects");
        assert_eq!(c.bind_keys_hashed(), hashed, "{arch}: a replayed step hashed bind-group keys");
        let vals = block_on(c.read(&log)).unwrap();
        assert!(vals.iter().all(|v| v.is_finite()), "{arch}: {vals:?}");
        let (dispatches, bytes) = tr.plan_stats().unwrap();
        assert!(dispatches > 20 && bytes > 0, "{arch}: {dispatches} dispatches, {bytes} bytes");
    }
}

/// `dae bench --json` prints the documented keys: the adapter, how it timed, the measured
/// ceilings, and kernel rows with the roofline columns (a filtered, one-run suite).
#[test]
fn bench_json_has_the_documented_keys() {
    let o = dae_cmd(&["bench", "--filter", "ema", "--iters", "1", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in ["adapter", "backend", "driver", "timer", "ceilings", "kernels", "train"] {
        assert!(v.get(k).is_some(), "missing {k}: {v}");
    }
    assert!(v["ceilings"]["gflops"].as_f64().unwrap() > 0.0 && v["ceilings"]["gbps"].as_f64().unwrap() > 0.0, "{v}");
    let k = &v["kernels"][0];
    for key in ["name", "variant", "pass", "shape", "median_ms", "gflops", "gbps", "pct_of_bound"] {
        assert!(k.get(key).is_some(), "kernel row lacks {key}: {k}");
    }
    assert_eq!(k["name"], "ema");
    assert!(k["median_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(v["train"].as_array().unwrap().len(), 0, "the filter keeps no model");
}

/// The UNet's skip-concat is written in place: a whole training step of unet16x2 and of unet8x3
/// (28 -> 14 -> 7 -> 3, so its deepest up block pads 6x6 to 7x7 into the slot) runs no concat
/// kernel, forward or backward. (The transposed-conv producer is checked in `dae gradcheck`'s
/// "channel slices" family.)
#[test]
fn the_unet_step_runs_no_concat_copy() {
    let c = ctx();
    for spec in ["unet16x2", "unet8x3"] {
        let (row, prof) = dae::bench::model_step(&c, spec, 3, 0, 1, true, false).unwrap();
        let entries: Vec<&str> = prof.iter().map(|p| p.0).collect();
        // Any conv forward kernel: which blocking runs is autotune's (the tune cache's) choice.
        assert!(
            entries.iter().any(|e| e.starts_with("conv2d_forward")) && entries.contains(&"maxpool2d_backward"),
            "{spec}: the profile missed the step: {entries:?}"
        );
        assert!(!entries.iter().any(|e| e.starts_with("concat")), "{spec}: a concat copy ran: {entries:?}");
        assert!(row.dispatches > 40, "{spec}: {} dispatches", row.dispatches);
    }
}

/// Replaying the recorded step computes exactly what encoding every step anew computes
/// (dropout and batch norm on, across an epoch boundary): the same weights, EMA and moments;
/// and the validation pass replaying its recorded batch scores exactly what encoding each
/// batch scores.
#[test]
fn the_recorded_step_matches_encoding_every_step() {
    let sets = [
        "model.base_ch=8",
        "model.norm_type=batch",
        "model.dropout=0.1",
        "train.batch_size=16",
        "train.epochs=2",
        "train.max_steps_per_epoch=4",
        "train.log_every=3",
        "data.val_size=40",
        "data.train_limit=256",
        "noise.test_sigmas=[0.3, 0.7]",
    ];
    let (a, b) = (tmp("planned"), tmp("direct"));
    let c = ctx();
    dae::train::train(&c, &quick(&a, &sets), &opts()).unwrap();
    dae::train::train(&c, &quick(&b, &sets), &dae::train::TrainOptions { direct: true, ..opts() }).unwrap();
    for f in ["last.safetensors", "last.ema.safetensors", "last.state.safetensors"] {
        assert!(tensors(&a.join("ckpts").join(f)) == tensors(&b.join("ckpts").join(f)), "{f} differs between the replayed plan and direct encoding");
    }
    let log = |d: &std::path::Path| {
        std::fs::read_to_string(d.join("logs/train_metrics.csv"))
            .unwrap()
            .lines()
            .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(","))
            .collect::<Vec<_>>()
    };
    assert_eq!(log(&a), log(&b), "the logged losses differ");
    // Validation records its first full batch (16 of 40 images, both levels) and replays it
    // with the next offset; the partial batch of 8 is encoded directly. All must score the same.
    let val = |d: &std::path::Path| std::fs::read_to_string(d.join("logs/val_metrics.csv")).unwrap();
    assert_eq!(val(&a), val(&b), "the planned validation pass differs from encoding every batch");
    std::fs::remove_dir_all(&a).ok();
    std::fs::remove_dir_all(&b).ok();
}

// ---- nothing lost -------------------------------------------------------------------------

/// Every file under `dir` (lock files aside: each run rewrites its holder note) with its bytes.
fn snapshot(dir: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.file_name().unwrap().to_string_lossy().ends_with(".lock") {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// `--overwrite` removes the earlier run only once the new one has run its first step (a run
/// that cannot start leaves it whole), and then only the files dae wrote: a user's own files in
/// the run's folders stay, listed.
#[test]
fn overwrite_keeps_the_earlier_run_until_the_new_one_starts_and_keeps_foreign_files() {
    let out = tmp("overwrite");
    let o = tiny_train_cmd(&out, &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let foreign = ["ckpts/my_pytorch_model.pt", "figures/holiday.png", "logs/notes.txt", "reports/thesis.tex"];
    for f in foreign {
        std::fs::create_dir_all(out.join(f).parent().unwrap()).unwrap();
        std::fs::write(out.join(f), f.as_bytes()).unwrap();
    }
    let before = snapshot(&out);
    assert!(before.keys().any(|p| p.ends_with("ckpts/last.safetensors")));
    // Data that fails its check: every data file present, the training images empty.
    let bad = tmp("overwrite-bad-data");
    std::fs::create_dir_all(&bad).unwrap();
    for f in ["train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(mnist_dir().join(f), bad.join(f)).unwrap();
    }
    std::fs::write(bad.join("train-images-idx3-ubyte.gz"), b"").unwrap();
    let o = tiny_train_cmd_on(&out, &bad, &["--overwrite"]).output().unwrap();
    assert!(!o.status.success(), "training on an empty data file succeeded");
    assert!(snapshot(&out) == before, "a failed --overwrite start changed the earlier run: {}", String::from_utf8_lossy(&o.stderr));
    // A model too large for the adapter: refused before any parameter is built, naming the field.
    let o = tiny_train_cmd(&out, &["--overwrite", "--set", "model.base_ch=1024", "--set", "model.num_downs=2"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("model.base_ch") && err.contains("max_"), "{err}");
    assert!(snapshot(&out) == before, "a model that does not fit changed the earlier run");
    // The real thing: the earlier run's files go, the user's stay, byte for byte, and are named.
    let o = tiny_train_cmd(&out, &["--overwrite"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    for f in foreign {
        assert_eq!(std::fs::read(out.join(f)).unwrap(), f.as_bytes(), "{f}");
        assert!(err.contains(f), "the kept file {f} is not listed: {err}");
    }
    let rows = std::fs::read_to_string(out.join("logs/train_metrics.csv")).unwrap().lines().count();
    assert_eq!(rows, 5, "header + the new run's 4 steps");
    std::fs::remove_dir_all(&out).ok();
    std::fs::remove_dir_all(&bad).ok();
}

/// No file dae writes is written through a symbolic link: a link at the lock's name is refused,
/// and a link where a log, a figure, a checkpoint file, the resolved config or a temp file goes
/// is replaced, never followed: the files the links point to keep their bytes.
#[test]
fn no_file_is_written_through_a_symbolic_link() {
    let out = tmp("links");
    let sets = [
        "model.base_ch=4",
        "model.num_downs=1",
        "train.epochs=1",
        "train.save_every=1",
        "train.batch_size=8",
        "train.max_steps_per_epoch=2",
        "data.val_size=8",
        "noise.test_sigmas=[0.3]",
    ];
    dae::train::train(&ctx(), &quick(&out, &sets), &opts()).unwrap();
    let mine = tmp("links-precious");
    std::fs::create_dir_all(&mine).unwrap();
    let link = |at: &str| {
        let target = mine.join(at.replace('/', "_"));
        std::fs::write(&target, format!("the user's own {at}")).unwrap();
        let p = out.join(at);
        let _ = std::fs::remove_file(&p);
        std::os::unix::fs::symlink(&target, &p).unwrap();
    };
    let mut two = sets.to_vec();
    two.push("train.epochs=2");
    let resumed = dae::train::TrainOptions { resume: true, ..opts() };
    link(".dae-train.lock");
    let e = dae::train::train(&ctx(), &quick(&out, &two), &resumed).unwrap_err().to_string();
    assert!(e.contains("symbolic link") && e.contains(".dae-train.lock"), "{e}");
    std::fs::remove_file(out.join(".dae-train.lock")).unwrap();
    let written = [
        "config.resolved.yaml",
        "logs/val_metrics.csv",
        "figures/recon_epoch_002.png",
        "ckpts/epoch_002.safetensors",
        "ckpts/epoch_002.manifest.json",
        "ckpts/last.ema.safetensors.tmp",
    ];
    for at in written {
        link(at);
    }
    dae::train::train(&ctx(), &quick(&out, &two), &resumed).unwrap();
    for at in written {
        let target = mine.join(at.replace('/', "_"));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), format!("the user's own {at}"), "written through the link at {at}");
        let m = std::fs::symlink_metadata(out.join(at));
        assert!(m.map_or(at.ends_with(".tmp"), |m| m.file_type().is_file()), "{at} should be dae's own file now");
    }
    dae::checkpoint::read(&out.join("ckpts/epoch_002.safetensors")).unwrap();
    std::fs::remove_dir_all(&out).ok();
    std::fs::remove_dir_all(&mine).ok();
}

/// A SIGINT during the last epoch's validation, or just before its saves, is not ignored: the
/// run says at once what it will do, stops at the next safe point and exits 130 with `last`
/// intact; --resume then finishes what was cut (the validation) or trains on.
#[test]
fn a_late_sigint_exits_130_with_last_intact_and_resumable() {
    for at in ["validation", "save"] {
        let out = tmp(&format!("late-{at}"));
        let o = tiny_train_cmd(&out, &["--raise-at", at, "--set", "data.val_size=24"]).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "{at}: {err}");
        assert!(err.contains("interrupt (Ctrl-C) received: stopping") && err.contains("Ctrl-C again quits at once"), "{at}: {err}");
        let set = dae::checkpoint::open_set(&out.join("ckpts"), "last").unwrap().expect("last is intact");
        assert_eq!(set.step, 4, "{at}");
        let val_rows = || std::fs::read_to_string(out.join("logs/val_metrics.csv")).unwrap().lines().count();
        if at == "validation" {
            assert!(err.contains("--resume runs the final validation"), "{err}");
            assert_eq!(val_rows(), 2, "epoch 1's row only");
            let o = tiny_train_cmd(&out, &["--resume", "--set", "data.val_size=24"]).output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(val_rows(), 3, "the resumed run validated epoch 2");
        } else {
            assert!(err.contains("training complete"), "{err}");
            assert_eq!(val_rows(), 3);
            let o = tiny_train_cmd(&out, &["--resume", "--set", "data.val_size=24", "--set", "train.epochs=3"]).output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(dae::checkpoint::open_set(&out.join("ckpts"), "last").unwrap().unwrap().step, 6);
        }
        std::fs::remove_dir_all(&out).ok();
    }
}

/// `tools/bad_input_matrix.py` (a careless or hostile user's commands: bad configs and numbers,
/// damaged data and checkpoints, symbolic links where dae writes, `infer` in place, signals,
/// busy folders): every case is answered clearly or handled; none panics, is silently accepted,
/// gives a misleading error or loses a file.
#[test]
fn the_bad_input_matrix_is_all_clear_or_handled() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = std::process::Command::new("python3")
        .arg(root.join("tools/bad_input_matrix.py"))
        .arg("--dae")
        .arg(env!("CARGO_BIN_EXE_dae"))
        .arg("--data")
        .arg(mnist_dir())
        .output()
        .expect("python3 runs tools/bad_input_matrix.py (install it: apt-get install python3)");
    let out = String::from_utf8_lossy(&o.stdout);
    let bad: Vec<&str> = out.lines().filter(|l| ["unclear", "silent", "panic", "data loss"].iter().any(|k| l.starts_with(k))).collect();
    assert!(o.status.success() && bad.is_empty(), "{}\n{}\n{}", bad.join("\n"), out.lines().last().unwrap_or(""), String::from_utf8_lossy(&o.stderr));
}

/// A recorded step's per-step values live in named slots (`Ctx::named`, `Plan::set`): a step
/// with two noise draws (their own keys and sigmas) and three log copies, recorded once and
/// replayed with each step's values set slot by slot, computes bit for bit what encoding every
/// step anew computes. (Patching by kernel name gave both draws one set of Params.) A slot the
/// recording did not name, or Params of the wrong type, are errors.
#[test]
fn named_slots_replay_a_step_with_two_noise_draws_bit_for_bit() {
    use dae::ops::data::{DataParams, data_gather, data_noise};
    use dae::ops::elementwise::{ElementwiseParams, copy_offset};
    let c = ctx();
    let (images, image_len, b, steps) = (8usize, 64usize, 2usize, 4usize);
    let bytes: Vec<u8> = (0..images * image_len).map(|i| (i * 37 % 251) as u8).collect();
    let dataset = c.upload_u32("dataset", &dae::feed::pack_u8(&bytes)).unwrap();
    let perm = c.upload_u32("perm", &(0..images as u32).rev().collect::<Vec<_>>()).unwrap();
    let n = b * image_len;
    let (clean, xa, xb) = (c.alloc("clean", n).unwrap(), c.alloc("xa", n).unwrap(), c.alloc("xb", n).unwrap());
    let log = c.alloc("log", 3 * steps).unwrap();
    let cfg_a = dae::config::Config::from_yaml("seed: 3\nnoise: {train_sigmas: [0.1, 0.5]}\n", "a", &[]).unwrap();
    let cfg_b = dae::config::Config::from_yaml("seed: 11\nnoise: {train_sigmas: [0.9]}\n", "b", &[]).unwrap();
    let pa = |s: usize| dae::feed::noise_params(&cfg_a, n, 0, s as u32, None, 1.0);
    let pb = |s: usize| dae::feed::noise_params(&cfg_b, n, 1, 1000 + s as u32, None, 1.0);
    let encode = |s: usize| -> dae::Result<()> {
        c.named("batch", || data_gather(&c, &dataset, &perm, b * s, b, image_len, &clean))?;
        c.named("noise a", || data_noise(&c, &pa(s), &clean, &xa))?;
        c.named("noise b", || data_noise(&c, &pb(s), &clean, &xb))?;
        c.named("log a", || copy_offset(&c, &xa.slice(0, 1)?, &log, 3 * s))?;
        c.named("log b", || copy_offset(&c, &xb.slice(0, 1)?, &log, 3 * s + 1))?;
        c.named("log clean", || copy_offset(&c, &clean.slice(0, 1)?, &log, 3 * s + 2))
    };
    let bits = |v: &dae::gpu::View| block_on(c.read(v)).unwrap().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    dae::ops::elementwise::fill(&c, &log, 0.0).unwrap();
    let mut direct = Vec::new();
    for s in 0..steps {
        encode(s).unwrap();
        c.flush().unwrap();
        direct.push((bits(&xa), bits(&xb)));
    }
    let direct_log = bits(&log);
    assert_ne!(direct[0].0, direct[0].1, "the two draws must differ for the test to mean anything");
    dae::ops::elementwise::fill(&c, &log, 0.0).unwrap();
    let mut plan = c.record(|| encode(0)).unwrap();
    assert_eq!(plan.slot_names(), ["batch", "log a", "log b", "log clean", "noise a", "noise b"]);
    for (s, d) in direct.iter().enumerate() {
        plan.set::<DataParams>("batch", |_, p| p.start = (b * s) as u32).unwrap();
        plan.set::<DataParams>("noise a", |_, p| *p = pa(s)).unwrap();
        plan.set::<DataParams>("noise b", |_, p| *p = pb(s)).unwrap();
        for (k, name) in ["log a", "log b", "log clean"].iter().enumerate() {
            plan.set::<ElementwiseParams>(name, |_, p| p.offset = (3 * s + k) as u32).unwrap();
        }
        c.replay(&plan).unwrap();
        assert!((bits(&xa), bits(&xb)) == *d, "step {s}: the replayed draws differ from direct encoding");
    }
    assert_eq!(bits(&log), direct_log, "the replayed log differs");
    let e = plan.set::<DataParams>("noise c", |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("no slot \"noise c\"") && e.contains("noise b"), "{e}");
    let e = plan.set::<ElementwiseParams>("noise a", |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("bytes of Params"), "{e}");
}

/// Autotune compares the bits of the candidates it times (they compute the same bits by
/// design): on lavapipe all agree; a planted miscompile of one candidate (one flipped bit) is
/// found against the simple kernel (conv) or by majority (group norm's workgroup sizes),
/// dropped (never picked) and reported naming kernel, shape and adapter.
#[test]
fn autotune_cross_checks_candidates_and_drops_a_miscompiled_one() {
    use dae::ops::Chans;
    use dae::ops::conv2d::{ConvGeom, conv2d_forward, conv2d_weight_grad};
    let c = ctx();
    let kn = &dae::ops::kernels::Kernels::default();
    c.tuner().afresh(600.0);
    let g = ConvGeom { n: 2, cin: 13, h: 11, w: 9, cout: 10, ho: 11, wo: 9, kh: 3, kw: 3, stride: (1, 1), pad: (1, 1), xs: Chans::PLAIN };
    let mut rng = dae::util::rng::Rng::new(5);
    let x = c.upload("t", &rng.vec(g.n * g.cin * g.h * g.w)).unwrap();
    let w = c.upload("t", &rng.vec(g.cout * g.cin * g.kh * g.kw)).unwrap();
    let dy = c.upload("t", &rng.vec(g.n * g.cout * g.ho * g.wo)).unwrap();
    let (y, dw) = (c.alloc("t", g.n * g.cout * g.ho * g.wo).unwrap(), c.alloc("t", g.cout * g.cin * g.kh * g.kw).unwrap());
    conv2d_forward(&c, kn, &g, &x, &w, None, &y, false).unwrap();
    conv2d_weight_grad(&c, kn, &g, &x, &dy, &dw, false).unwrap();
    assert!(c.tuner().miscompiles().is_empty(), "the candidates disagree on this adapter: {:?}", c.tuner().miscompiles());
    let before = block_on(c.read(&y)).unwrap();
    // The same shapes timed again from scratch, "channel blocks" and "8 x 8 channels" planted wrong.
    for planted in ["channel blocks", "8 x 8 channels"] {
        c.tuner().afresh(600.0);
        c.tuner().plant_miscompile(Some(planted));
        conv2d_forward(&c, kn, &g, &x, &w, None, &y, false).unwrap();
        conv2d_weight_grad(&c, kn, &g, &x, &dy, &dw, false).unwrap();
        c.tuner().plant_miscompile(None);
        let found = c.tuner().miscompiles();
        let hit: Vec<&String> = found.iter().filter(|m| m.contains(&format!(": {planted} computed other bits"))).collect();
        assert_eq!(hit.len(), 1, "{planted}: {found:?}");
        assert!(hit[0].contains("simple kernel agrees") && hit[0].contains(&c.gpu().info.name) && hit[0].contains("n2 13x11x9"), "{}", hit[0]);
        assert!(c.tuner().choices().values().all(|l| l != planted), "the dropped candidate was picked: {:?}", c.tuner().choices());
        assert!(block_on(c.read(&y)).unwrap() == before, "the forward's result changed");
    }
    // Group norm's workgroup sizes have no simple kernel: the majority decides.
    c.tuner().afresh(600.0);
    let labels = c.tuner().miscompiles().len();
    let xn = Tensor::from_slice(&c, &[2, 8, 5, 7], &rng.vec(2 * 8 * 35)).unwrap();
    let (gamma, beta) = (Tensor::full(&c, &[8], 1.0).unwrap(), Tensor::full(&c, &[8], 0.0).unwrap());
    let planted = "32 per workgroup";
    c.tuner().plant_miscompile(Some(planted));
    Graph::inference(&c).group_norm(&xn, 4, &gamma, &beta, 1e-5).unwrap();
    c.tuner().plant_miscompile(None);
    let found = &c.tuner().miscompiles()[labels..];
    assert!(found.iter().any(|m| m.contains(&format!(": {planted} computed other bits")) && m.contains("majority")), "{found:?}");
}

/// Without the other dataset (offline, nothing in the folder) the report still completes and its
/// out-of-distribution section says plainly that the data is unavailable.
#[test]
fn report_says_when_the_other_dataset_is_unavailable() {
    let run = copy_run("report-no-ood");
    let missing = run.join("no-fashion-here");
    let mut extra = vec!["--sigmas", "0.3", "--ood-data-dir", missing.to_str().unwrap(), "--set", "data.download=false"];
    extra.extend(SMALL_STUDY);
    let o = eval_cmd(&["report"], &run, &extra);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(run.join("reports/limitations_analysis.html")).unwrap();
    assert!(html.contains("<b>Unavailable</b>") && html.contains("no-fashion-here"), "the page must say the other dataset is unavailable");
    assert!(!run.join("grids/ood_recon_grid.png").exists());
    std::fs::remove_dir_all(&run).ok();
}

/// `dae compare generation` writes its figure and JSON alone, and repeats: the noise is keyed.
#[test]
fn compare_generation_writes_alone_and_repeats() {
    let run = copy_run("generation");
    let mut got = Vec::new();
    for _ in 0..2 {
        let o = eval_cmd(&["compare", "generation"], &run, &SMALL_STUDY);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        got.push(std::fs::read_to_string(run.join("reports/generation.json")).unwrap());
    }
    assert_eq!(got[0], got[1], "a generation run repeats");
    assert!(run.join("grids/generation_attempts.png").is_file());
    assert!(!run.join("reports/limitations_analysis.html").exists(), "compare generation writes only its own files");
    std::fs::remove_dir_all(&run).ok();
}

/// The generation study's nearest distances and class margins on hand-made images with known
/// answers: a training set of three images in two classes.
#[test]
fn generation_nearest_distances_and_margins_have_known_answers() {
    use dae::analysis::generation::{TrainRef, features};
    let ctx = ctx();
    let len = 784;
    // Training images: 0 blank (class 0); 1 the first 100 pixels at 255 (class 1); 2 the first
    // 36 pixels at 255 (class 1).
    let mut px = vec![0u8; 3 * len];
    px[len..len + 100].fill(255);
    px[2 * len..2 * len + 36].fill(255);
    let ds = ctx.upload_u32("test set", &dae::feed::pack_u8(&px)).unwrap();
    let classes = vec![(ctx.upload_u32("class 0", &[0]).unwrap(), 1), (ctx.upload_u32("class 1", &[1, 2]).unwrap(), 2)];
    // Queries: blank (nearest: image 0 at 0; class 1 at 6 -> margin 6); the first 100 pixels
    // at 1 (image 1 at 0; class 0 at 10 -> margin 10); the first 64 pixels at 1 (image 2 at
    // sqrt(28); image 1 at 6, class 0 at 8 -> nn sqrt(28), margin 8 - sqrt(28)).
    let mut q = vec![0f32; 3 * len];
    q[len..len + 100].fill(1.0);
    q[2 * len..2 * len + 64].fill(1.0);
    let f = features(&ctx, &q, &TrainRef { ds: &ds, classes: &classes }).unwrap();
    let want = [(0.0, 6.0), (0.0, 10.0), (28f64.sqrt(), 8.0 - 28f64.sqrt())];
    for (i, (nn, margin)) in want.iter().enumerate() {
        assert!((f[i].nn - nn).abs() < 1e-5 && (f[i].margin - margin).abs() < 1e-5, "query {i}: {:?}, want nn {nn} margin {margin}", f[i]);
    }
    assert!((f[1].ink - 100.0 / 784.0).abs() < 1e-9 && f[0].contrast == 0.0 && f[0].sharpness == 0.0);
}

/// One annealed-Langevin step on the GPU against the same step computed on the CPU: clip, the
/// model's output D(clip(x)) (its forward is checked elsewhere), the update
/// y + a (D(y) - y) and the keyed Philox noise sqrt(2 a) sigma z of the CPU reference.
#[test]
fn langevin_step_matches_a_cpu_computation() {
    use dae::analysis::generation::{Method, denoise_clipped, key, langevin_step};
    let ctx = ctx();
    let run = trained_run();
    let file = dae::checkpoint::load_model(&run.join("ckpts/best_model.safetensors")).unwrap();
    let gm = dae::eval::GpuModel::upload(&ctx, &file).unwrap();
    let cfg = file.config.clone();
    let (n, len, sigma, a, step) = (3usize, 784usize, 0.3f32, 0.2f32, 5u32);
    // States partly outside [0, 1], as a chain's are after a noisy update.
    let x: Vec<f32> = (0..n * len).map(|i| ((i * 37 % 101) as f32 / 100.0) * 1.6 - 0.3).collect();
    let xv = ctx.upload("x", &x).unwrap();
    let got = block_on(ctx.read(&langevin_step(&ctx, &cfg, &gm.model, &gm.weights, &xv, n, sigma, a, step).unwrap())).unwrap();
    let y: Vec<f32> = x.iter().map(|v| v.clamp(0.0, 1.0)).collect();
    let d = block_on(denoise_clipped(&ctx, &cfg, &gm.model, &gm.weights, &ctx.upload("y", &y).unwrap(), n).unwrap().to_vec()).unwrap();
    let mix: Vec<f64> = y.iter().zip(&d).map(|(&y, &d)| y as f64 + a as f64 * (d as f64 - y as f64)).collect();
    let noise = dae::reference::data::NoiseRef {
        noise: 0,
        seed: cfg.seed,
        epoch: key(Method::Langevin, 1),
        step,
        start: 0,
        levels: vec![(2.0 * a as f64).sqrt() * sigma as f64],
        range: None,
        level_scale: 1.0,
        amount: 0.0,
        peak: 1.0,
        clip: None,
        in_scale: 1.0,
        in_shift: 0.0,
    };
    let want = dae::reference::data::data_noise(&noise, &mix, len);
    let worst = got.iter().zip(&want).map(|(g, w)| (*g as f64 - w).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-5, "the GPU step differs from the CPU one by up to {worst}");
    let moved = got.iter().zip(&y).filter(|(g, y)| (**g - **y).abs() > 1e-3).count();
    assert!(moved > n * len / 2, "the step must move the state ({moved} of {} pixels moved)", n * len);
}

/// The nearest-training distances of the generation study and of mode averaging against a CPU
/// search over the whole MNIST training file: a blank image and the first two test images.
#[test]
fn nearest_distances_match_a_cpu_search_over_the_training_file() {
    let ctx = ctx();
    let cfg = quick(&tmp("nearest-cpu"), &[]);
    let train = dae::report::study::TrainSet::load(&ctx, &cfg, Some(&mnist_dir()), &mut |_| {}).unwrap();
    let (tr, _) = dae::feed::load_labelled(&cfg, &mnist_dir(), true, &mut |_| {}).unwrap();
    let test = dae::feed::load_images(&cfg, &mnist_dir(), false, &mut |_| {}).unwrap();
    let mut q = vec![0f32; 784];
    q.extend(test.pixels[..2 * 784].iter().map(|&p| p as f32 / 255.0));
    let f = dae::analysis::generation::features(&ctx, &q, &train.by_class()).unwrap();
    for (k, img) in q.chunks(784).enumerate() {
        let best = tr
            .pixels
            .chunks(784)
            .map(|t| t.iter().zip(img).map(|(&a, &b)| (a as f64 / 255.0 - b as f64).powi(2)).sum::<f64>())
            .fold(f64::INFINITY, f64::min)
            .sqrt();
        assert!((f[k].nn - best).abs() < 1e-4, "query {k}: GPU {} against CPU {best}", f[k].nn);
    }
}
