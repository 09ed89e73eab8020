//! `cargo bench`: the `dae bench` suite (ceilings, every kernel family at batch 128, training
//! steps of unet16x2@32, unet64x3@16 and conv64x3@16) on the default adapter.
//! DAE_BENCH_FILTER=conv2d keeps only matching rows; DAE_BENCH_ALL=1 adds the other variants (each
//! conv blocking pinned, the naive kernels); DAE_BENCH_AMP=1 adds the f16-operand convs and the
//! training steps under train.amp;
//! DAE_BENCH_RUNS sets the runs per row (median; default 20).

fn main() {
    let ctx = match dae::Ctx::open(std::env::var("DAE_ADAPTER").ok().as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("benches need an adapter: {e}");
            std::process::exit(1);
        }
    };
    let runs: usize = std::env::var("DAE_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let suite = dae::bench::Suite {
        filter: std::env::var("DAE_BENCH_FILTER").ok().filter(|f| !f.is_empty()),
        all: std::env::var_os("DAE_BENCH_ALL").is_some_and(|v| v != "0"),
        runs,
        models: vec![("unet16x2".into(), 32), ("unet64x3".into(), 16), ("conv64x3".into(), 16)],
        model_runs: (runs / 8).max(3),
        amp: std::env::var_os("DAE_BENCH_AMP").is_some_and(|v| v != "0"),
    };
    let report = dae::bench::suite(&ctx, &suite, &mut |what| eprintln!("measuring {what} ...")).unwrap_or_else(|e| panic!("{e}"));
    print!("{}", dae::bench::table(&report));
}
