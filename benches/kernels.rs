//! `cargo bench`: the same measurements as `dae bench` (conv kernels naive vs tiled at the
//! UNetDAE 16/2 shapes, then training steps of two SPEC models) on the default adapter.
//! DAE_BENCH_MODELS=unet16x2,conv64x3 and DAE_BENCH_BATCH pick other models and batches.

fn main() {
    let ctx = match dae::Ctx::open(std::env::var("DAE_ADAPTER").ok().as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("benches need an adapter: {e}");
            std::process::exit(1);
        }
    };
    let batch: usize = std::env::var("DAE_BENCH_BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    let models = std::env::var("DAE_BENCH_MODELS").unwrap_or_else(|_| "unet16x2,conv16x2".into());
    println!("adapter: {}", ctx.gpu().info.name);
    let mut rows = dae::bench::conv_rows(&ctx, batch, 2, 5).unwrap_or_else(|e| panic!("{e}"));
    rows.extend(dae::bench::fft_rows(&ctx, 2, 5).unwrap_or_else(|e| panic!("{e}")));
    print!("{}", dae::bench::table(&rows));
    let mut steps = Vec::new();
    for m in models.split(',').filter(|m| !m.is_empty()) {
        steps.push(dae::bench::model_step(&ctx, m.trim(), batch, 2, 5, false).unwrap_or_else(|e| panic!("{e}")));
    }
    print!("{}", dae::bench::train_table(&steps));
}
