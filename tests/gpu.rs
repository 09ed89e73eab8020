//! GPU tests (lavapipe in CI): every kernel entry point against the CPU reference, the autograd
//! plumbing, the caches, and bad input turning into errors. Without an adapter these FAIL with
//! instructions; nothing is skipped.

use dae::check::{self, CheckRow};
use dae::error::{Error, NO_ADAPTER_HELP};
use dae::ops::{activation, batch_norm, concat, conv2d, dropout2d, elementwise, group_norm, loss, maxpool2d, reduce, resize_bilinear};
use dae::{Ctx, Tensor};

fn ctx() -> Ctx {
    match Ctx::open(std::env::var("DAE_ADAPTER").ok().as_deref()) {
        Ok(c) => c,
        Err(e) => panic!("the GPU tests need an adapter and found none usable: {e}\n{NO_ADAPTER_HELP}"),
    }
}

fn family(name: &str) -> Vec<CheckRow> {
    let rows = check::run(&ctx(), Some(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(!rows.is_empty(), "{name}: no checks ran");
    let bad: Vec<CheckRow> = rows.iter().filter(|r| !r.pass).cloned().collect();
    assert!(bad.is_empty(), "{name}: {} of {} checks failed:\n{}", bad.len(), rows.len(), check::table(&bad));
    rows
}

#[test]
fn conv2d_matches_reference() {
    family("conv2d");
}
#[test]
fn conv_transpose2d_matches_reference() {
    family("conv_transpose2d");
}
#[test]
fn group_norm_matches_reference() {
    family("group_norm");
}
#[test]
fn batch_norm_matches_reference() {
    family("batch_norm");
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
fn composed_graph_matches_reference() {
    family("composed");
}

/// The full suite covers every op the engine-core issue names and every entry point of every
/// shader, each on at least three shapes (so a new kernel cannot land unchecked).
#[test]
fn every_op_and_entry_point_is_checked() {
    let rows = check::run(&ctx(), None).unwrap();
    let ops = [
        "conv2d", "conv_transpose2d", "group_norm", "batch_norm", "relu", "leaky_relu", "gelu", "silu", "sigmoid", "maxpool2d",
        "resize_bilinear", "pad2d", "concat", "dropout2d", "add", "mul", "scale", "bias_add", "mse_loss", "l1_loss",
        "charbonnier_loss", "sum",
    ];
    for op in ops {
        let shapes: std::collections::HashSet<&str> = rows.iter().filter(|r| r.op == op).map(|r| r.shape.as_str()).collect();
        assert!(shapes.len() >= 3, "op {op} is checked on {} shapes, want >= 3", shapes.len());
    }
    let checked: std::collections::HashSet<&str> = rows.iter().flat_map(|r| r.entry.split('+')).collect();
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
    let t = |shape: &[usize]| Tensor::zeros(&c, shape).unwrap();
    let x = t(&[1, 3, 7, 7]);
    shape_err(conv2d::conv2d(&x, &t(&[4, 2, 3, 3]), None, (1, 1), (1, 1)), "conv2d");
    shape_err(conv2d::conv2d(&t(&[1, 1, 2, 2]), &t(&[1, 1, 5, 5]), None, (1, 1), (0, 0)), "conv2d");
    shape_err(conv2d::conv2d(&x, &t(&[4, 3, 3, 3]), Some(&t(&[5])), (1, 1), (1, 1)), "conv2d");
    shape_err(conv2d::conv2d(&x, &t(&[4, 3, 3, 3]), None, (0, 1), (1, 1)), "conv2d");
    shape_err(conv2d::conv2d(&t(&[3, 7, 7]), &t(&[4, 3, 3, 3]), None, (1, 1), (1, 1)), "conv2d");
    shape_err(conv2d::conv_transpose2d(&x, &t(&[3, 2, 4, 4]), None, (2, 2), (1, 1), (2, 0)), "conv_transpose2d");
    shape_err(group_norm::group_norm(&x, 2, &t(&[3]), &t(&[3]), 1e-5), "group_norm");
    shape_err(group_norm::group_norm(&x, 3, &t(&[4]), &t(&[3]), 1e-5), "group_norm");
    let one = t(&[1, 3, 1, 1]);
    shape_err(batch_norm::batch_norm(&one, &t(&[3]), &t(&[3]), &t(&[3]), &t(&[3]), true, 0.1, 1e-5), "batch_norm");
    shape_err(maxpool2d::max_pool2d(&t(&[1, 1, 1, 5]), (2, 2), (2, 2)), "maxpool2d");
    shape_err(resize_bilinear::resize_bilinear(&x, 0, 4, false), "resize_bilinear");
    shape_err(concat::concat(&[&x, &t(&[1, 2, 7, 6])]), "concat");
    shape_err(concat::concat(&[]), "concat");
    shape_err(dropout2d::dropout2d(&x, 1.0, 0, 0), "dropout2d");
    shape_err(elementwise::add(&x, &t(&[1, 3, 7, 6])), "add");
    shape_err(elementwise::bias_add(&x, &t(&[4])), "bias_add");
    shape_err(loss::mse_loss(&x, &t(&[1, 3, 7, 6])), "mse_loss");
    shape_err(activation::relu(&Tensor::from_slice(&c, &[0, 3], &[]).unwrap()), "relu");
    shape_err(reduce::sum(&Tensor::from_slice(&c, &[0], &[]).unwrap()), "sum");
    shape_err(Tensor::from_slice(&c, &[2, 2], &[1.0; 3]), "tensor");

    // Over the adapter's storage-binding limit: an error naming the op and the limit, before
    // wgpu sees anything.
    let limit = c.gpu().limits.max_storage_buffer_binding_size;
    let side = ((limit / 4 / 64) as f64).sqrt() as usize + 8;
    let big_in = t(&[1, 1, side, side]);
    match conv2d::conv2d(&big_in, &t(&[64, 1, 3, 3]), None, (1, 1), (1, 1)) {
        Err(Error::Limit { op, limit_name, .. }) => assert_eq!((op, limit_name), ("conv2d", "max_storage_buffer_binding_size")),
        other => panic!("expected a limit error, got {other:?}"),
    }
    // Autograd misuse.
    let leaf = Tensor::leaf(&c, &[2], &[1.0, 2.0]).unwrap();
    let y = elementwise::scale(&leaf, 2.0).unwrap();
    assert!(matches!(c.backward(&y), Err(Error::Autograd(_))), "non-scalar loss must be refused");
    assert!(matches!(c.backward(&x), Err(Error::Autograd(_))), "a tensor outside the graph must be refused");
    // Nothing went wrong on the device along the way.
    c.flush().unwrap();
    c.gpu().wait().unwrap();
}

/// Parameters with a grad slot accumulate (`+=`) across backward passes; no_grad records nothing.
#[test]
fn grad_slots_accumulate_and_no_grad_records_nothing() {
    let c = ctx();
    let slot = c.alloc("test", 3).unwrap();
    dae::ops::elementwise::fill(&c, &slot, 0.0).unwrap();
    let w = Tensor::from_slice(&c, &[3], &[1.0, -2.0, 3.0]).unwrap().with_grad_slot(slot.clone()).unwrap();
    for _ in 0..2 {
        let l = reduce::sum_sq(&w).unwrap();
        c.backward(&l).unwrap();
    }
    let g = c.read(&slot).unwrap();
    assert_eq!(g, vec![4.0, -8.0, 12.0], "two backward passes of sum(w^2) must accumulate 2 * 2w");
    c.no_grad(|| reduce::sum_sq(&w).unwrap());
    assert_eq!(c.tape_len(), 0);
}

/// A repeated step creates no pipeline, bind group or buffer once warm (pool + caches). The first
/// step fills the pool in creation order, so the steady state starts with the second.
#[test]
fn a_repeated_step_creates_nothing_new() {
    let c = ctx();
    let x = Tensor::from_slice(&c, &[2, 3, 9, 9], &vec![0.5; 2 * 3 * 81]).unwrap();
    let w = Tensor::leaf(&c, &[4, 3, 3, 3], &vec![0.1; 108]).unwrap();
    let gm = Tensor::leaf(&c, &[4], &[1.0; 4]).unwrap();
    let bt = Tensor::leaf(&c, &[4], &[0.0; 4]).unwrap();
    let target = Tensor::zeros(&c, &[2, 4, 9, 9]).unwrap();
    let step = || -> dae::Result<f32> {
        let h = conv2d::conv2d(&x, &w, None, (1, 1), (1, 1))?;
        let h = group_norm::group_norm(&h, 2, &gm, &bt, 1e-5)?;
        let h = activation::silu(&h)?;
        let l = loss::mse_loss(&h, &target)?;
        let grads = c.backward(&l)?;
        let gw = grads.get(&w).expect("w has a gradient");
        drop(grads);
        Ok(gw.to_vec()?[0] + l.to_vec()?[0])
    };
    let first = step().unwrap();
    step().unwrap();
    let before = c.created();
    let third = step().unwrap();
    assert_eq!(first, third, "same inputs, same result");
    assert_eq!(c.created(), before, "a warm step created GPU objects");
}
