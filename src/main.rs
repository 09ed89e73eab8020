//! The `dae` command line: main -> run() -> ExitCode; errors are printed once, here.

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use dae::gpu::device;

#[derive(Parser)]
#[command(name = "dae", version, about = "Denoising autoencoders on any Vulkan / Metal / DX12 GPU, with hand-written WGSL kernels")]
struct Cli {
    /// Adapter to use: an index from `dae devices` or a substring of its name.
    #[arg(long, global = true, env = "DAE_ADAPTER")]
    adapter: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// The flags of the jobs that read a checkpoint and the test split.
#[derive(clap::Args, Clone)]
struct EvalArgs {
    /// Weights file (default: <out_dir>/ckpts/best_model.safetensors, the EMA weights).
    #[arg(long)]
    ckpt: Option<PathBuf>,
    /// Use the raw weights of <out_dir>/ckpts/last instead of best_model's EMA weights.
    #[arg(long, conflicts_with = "ckpt")]
    no_ema: bool,
    /// Noise levels, e.g. 0.1,0.5 (sigmas; amounts for salt_pepper; peaks for poisson).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    sigmas: Option<Vec<f32>>,
    /// Noise model (default: the config's noise.type).
    #[arg(long, value_enum)]
    noise: Option<NoiseArg>,
    /// Images per forward pass (default eval.batch_size).
    #[arg(long, allow_hyphen_values = true)]
    batch: Option<usize>,
    /// Skip LPIPS even when eval.lpips names weights (it is the slow part).
    #[arg(long)]
    no_lpips: bool,
    /// The other dataset's folder for the report's out-of-distribution section (Fashion-MNIST
    /// for an MNIST model and the other way round; overrides eval.ood_root).
    #[arg(long)]
    ood_data_dir: Option<PathBuf>,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
}

impl EvalArgs {
    fn options(&self, common: &Common) -> dae::eval::EvalOptions {
        dae::eval::EvalOptions {
            ckpt: self.ckpt.clone(),
            no_ema: self.no_ema,
            levels: self.sigmas.clone(),
            noise: self.noise.map(Into::into),
            batch: self.batch,
            data_dir: common.data_dir.clone(),
            ood_data_dir: self.ood_data_dir.clone(),
            verbose: !self.quiet,
            no_lpips: self.no_lpips,
        }
    }
}

#[derive(Subcommand)]
enum VizCmd {
    /// grids/recon_grid_<level>.png: rows clean | noisy | reconstructed, for every level.
    ReconGrid(Job),
    /// panels/sigma_panel_<k>.png: one image across every level, PSNR under each.
    SigmaPanel(Job),
    /// grids/best_cases.png and worst_cases.png by PSNR.
    Cases(Job),
    /// reports/training_curves.png from the training logs.
    Curves(Job),
    /// reports/frequency_analysis.png: mean spectra and radial profiles, clean vs reconstructed.
    Frequency(Job),
    /// grids/diversity_collapse_demo.png: one image, N noise draws, N reconstructions.
    Diversity(Job),
    /// reports/demo.html: the live denoiser (this checkpoint on the browser's WebGPU; one
    /// self-contained file, also written by `dae report`).
    Demo(Job),
}

#[derive(clap::Args)]
struct Job {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    ev: EvalArgs,
}

#[derive(Subcommand)]
enum CompareCmd {
    /// reports/limitations_analysis.json and .html: over-smoothing, frequency content, diversity
    /// collapse, mode averaging.
    Limitations(Job),
    /// Generation from noise: annealed Langevin dynamics with the denoiser's Tweedie score and
    /// iterated denoising, measured against the test set and baselines (reports/generation.json,
    /// grids/generation_attempts.png).
    Generation(Job),
    /// The evaluation tables of several runs side by side, and their validation curves overlaid.
    Runs {
        /// Run folders (each an out_dir with logs/evaluation_results.json).
        #[arg(required = true, num_args = 2..)]
        dirs: Vec<PathBuf>,
        /// Where the overlaid curves go.
        #[arg(long, default_value = "outputs/compare")]
        out: PathBuf,
    },
}

/// Flags every job shares.
#[derive(clap::Args, Clone)]
struct Common {
    /// YAML config (strict: unknown keys are errors).
    #[arg(long, default_value = "configs/mnist.yaml")]
    config: PathBuf,
    /// Output folder (overrides `out_dir`).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Folder holding the four IDX .gz files (overrides DAE_DATA_DIR and `data.root`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Seed (overrides `seed`).
    #[arg(long, allow_hyphen_values = true)]
    seed: Option<u64>,
    /// Override a config field, e.g. `--set train.lr=1e-3` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

impl Common {
    fn load(&self) -> dae::Result<dae::config::Config> {
        let mut sets = self.sets.clone();
        if let Some(s) = self.seed {
            sets.push(format!("seed={s}"));
        }
        if let Some(o) = &self.out_dir {
            sets.push(format!("out_dir={}", serde_json::to_string(&o.display().to_string()).unwrap_or_default()));
        }
        dae::config::Config::load(&self.config, &sets)
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Train a denoiser (SPEC sections 1-4): logs, checkpoints and validation in the output folder.
    Train {
        #[command(flatten)]
        common: Common,
        /// Continue from `<out_dir>/ckpts/last.*` (weights, EMA, optimiser state, position).
        #[arg(long)]
        resume: bool,
        /// Validate and pick best_model with the raw weights instead of the EMA.
        #[arg(long)]
        no_ema: bool,
        /// Delete an earlier run's logs, checkpoints and figures in the output folder and start over.
        #[arg(long, conflicts_with = "resume")]
        overwrite: bool,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
        /// Crash injection for the tests: abort at the N-th checkpoint write point after epoch
        /// E's steps (`E:N`).
        #[arg(long, hide = true, value_parser = parse_crash_at)]
        crash_at: Option<(usize, u64)>,
        /// For the tests of late interrupts: send this process SIGINT during the last epoch's
        /// validation (`validation`) or just before its checkpoint saves (`save`).
        #[arg(long, hide = true, value_parser = parse_raise_at)]
        raise_at: Option<dae::train::RaiseAt>,
    },
    /// Evaluate a checkpoint on the whole test split at every test level: a table beside the
    /// noisy input, and <out_dir>/logs/evaluation_results.json.
    Eval {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ev: EvalArgs,
    },
    /// Draw one figure of SPEC section 5 from a checkpoint (or, for curves, the training logs).
    Viz {
        #[command(subcommand)]
        fig: VizCmd,
    },
    /// The limitations analysis (compare limitations), or several runs side by side (compare runs).
    Compare {
        #[command(subcommand)]
        what: CompareCmd,
    },
    /// Everything after training in one go: evaluation, every figure, the limitations analysis
    /// and its HTML page.
    Report {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ev: EvalArgs,
    },
    /// Kernel microbenchmarks (median wall time per submit, GFLOP/s) on this adapter, and whole
    /// training steps of the SPEC models with --models.
    Bench {
        /// Images per training step with --models.
        #[arg(long, allow_hyphen_values = true, default_value_t = 32)]
        batch: usize,
        /// Time only training steps of these models, e.g. unet16x2,conv64x3 (without it: the
        /// ceilings, every kernel family at batch 128, and unet16x2@32, unet64x3@16, conv64x3@16).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Untimed runs before the timed ones (--models).
        #[arg(long, allow_hyphen_values = true, default_value_t = 2)]
        warmup: usize,
        /// Timed runs per row (the median is reported); whole training steps in the full suite
        /// take an eighth of them (at least 3), the naive kernels (--all) a quarter, the FFT at most 3.
        #[arg(long, allow_hyphen_values = true, default_value_t = 20)]
        iters: usize,
        #[arg(long)]
        json: bool,
        /// Only the kernel families (and models) whose name contains this, e.g. conv2d.
        #[arg(long)]
        filter: Option<String>,
        /// Also every row of the kernel table pinned (each forward / input-gradient blocking with a
        /// weight-gradient one; README's "Conv blockings") and the naive kernels.
        #[arg(long)]
        all: bool,
        /// With --models: time one more step dispatch by dispatch, a row per entry point.
        #[arg(long)]
        profile: bool,
        /// Also time mixed precision (train.amp): the convs with f16 operands beside f32, and each
        /// training step under amp beside its f32 row (adapters with shader-f16).
        #[arg(long)]
        amp: bool,
    },
    /// Denoise your own images with a checkpoint: a PNG file or a folder of them (written as
    /// PNG), or a safetensors file with tensor `input` [n,c,h,w] in [0, 1] (written as `output`;
    /// tools/torch_check.py uses this).
    Infer {
        /// Weights file (e.g. <out_dir>/ckpts/best_model.safetensors); its metadata holds the model.
        #[arg(long)]
        ckpt: PathBuf,
        /// A PNG file, a folder of PNG files, or a safetensors file with tensor `input` [n,c,h,w].
        #[arg(long)]
        input: PathBuf,
        /// Where the output goes: a PNG file or folder (for PNG input), or a safetensors file.
        #[arg(long)]
        output: PathBuf,
        /// Images per forward pass at most (halved when a chunk does not fit the adapter).
        #[arg(long, allow_hyphen_values = true, default_value_t = 256)]
        batch: usize,
    },
    /// List every adapter wgpu can see, with backend, type, driver, key limits and features.
    Devices {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run every kernel check (forward and gradients against the CPU reference) on this adapter.
    Gradcheck {
        /// Print one JSON array of {op, entry, shape, rel_err, tol, pass}.
        #[arg(long)]
        json: bool,
        /// Only the op families whose name contains this (see the list in the error on a miss).
        #[arg(long)]
        only: Option<String>,
        /// Run the checks in headless Chromium on its WebGPU adapter (the engine built for the
        /// browser) instead of on a native adapter.
        #[arg(long, conflicts_with = "write_page")]
        browser: bool,
        /// Write the checks as one self-contained HTML page for any browser with WebGPU (it
        /// runs them when opened and shows the table), and exit.
        #[arg(long, value_name = "FILE")]
        write_page: Option<std::path::PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum NoiseArg {
    Gaussian,
    #[value(alias = "salt_pepper")]
    SaltPepper,
    Poisson,
    Speckle,
}

impl From<NoiseArg> for dae::config::NoiseKind {
    fn from(n: NoiseArg) -> Self {
        use dae::config::NoiseKind as K;
        match n {
            NoiseArg::Gaussian => K::Gaussian,
            NoiseArg::SaltPepper => K::SaltPepper,
            NoiseArg::Poisson => K::Poisson,
            NoiseArg::Speckle => K::Speckle,
        }
    }
}

fn parse_raise_at(s: &str) -> Result<dae::train::RaiseAt, String> {
    match s {
        "validation" => Ok(dae::train::RaiseAt::Validation),
        "save" => Ok(dae::train::RaiseAt::Save),
        _ => Err("expected validation or save".into()),
    }
}

fn parse_crash_at(s: &str) -> Result<(usize, u64), String> {
    let (e, n) = s.split_once(':').ok_or("expected EPOCH:N")?;
    Ok((e.parse().map_err(|_| "bad EPOCH")?, n.parse().map_err(|_| "bad N")?))
}

/// The runtime's warnings a job did not pass on (the commands without events: gradcheck, bench,
/// infer, devices), printed at the end.
fn print_warnings(ctx: &dae::Ctx) {
    for w in ctx.take_warnings() {
        eprintln!("warning: {w}");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // What the first Ctrl-C does, said the moment it arrives (on a line of its own, past any
    // progress bar).
    dae::util::signal::set_announcer(|m| eprintln!("\n{m}"));
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli) -> dae::Result<ExitCode> {
    match cli.cmd {
        Cmd::Devices { json } => devices(cli.adapter.as_deref(), json),
        Cmd::Gradcheck { json, only, browser: false, write_page: None } => gradcheck(cli.adapter.as_deref(), json, only.as_deref()),
        Cmd::Gradcheck { write_page: Some(path), .. } => {
            dae::checkpoint::write_file(&path, dae::bundle::gradcheck_page()?.as_bytes())?;
            eprintln!("wrote {} (open it in a browser with WebGPU; #filter=NAME in the URL runs only the families matching NAME)", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Gradcheck { json, only, browser: true, .. } => gradcheck_browser(json, only.as_deref()),
        Cmd::Train { common, resume, no_ema, overwrite, quiet, crash_at, raise_at } => {
            let opts = dae::train::TrainOptions {
                data_dir: common.data_dir.clone(),
                resume,
                no_ema,
                verbose: !quiet,
                overwrite,
                crash_at,
                raise_at,
                ..Default::default()
            };
            train(cli.adapter.as_deref(), &common, &opts)
        }
        Cmd::Bench { batch, models, warmup, iters, json, filter, all, profile, amp } => {
            for (name, v, lo, hi) in [("--batch", batch, 1, 4096), ("--warmup", warmup, 0, 1000), ("--iters", iters, 1, 10_000)] {
                if !(lo..=hi).contains(&v) {
                    return Err(dae::Error::Config(format!("{name} must be in {lo}..={hi}, got {v}")));
                }
            }
            let ctx = dae::Ctx::open(cli.adapter.as_deref())?;
            if !models.is_empty() {
                let mut rows = Vec::new();
                for m in &models {
                    if !json {
                        eprintln!(
                            "measuring {m} at batch {batch} (autotune times the kernels of shapes the tune cache lacks first: minutes on a CPU adapter) ..."
                        );
                    }
                    rows.push(dae::bench::model_step(&ctx, m, batch, warmup, iters, profile, false)?);
                    if amp {
                        rows.push(dae::bench::model_step(&ctx, m, batch, warmup, iters, profile, true)?);
                    }
                }
                print_warnings(&ctx);
                if json {
                    let train: Vec<&dae::bench::TrainRow> = rows.iter().map(|r| &r.0).collect();
                    let tuned = dae::bench::tuned_rows(&ctx);
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({ "train": train, "tuned": tuned }))
                            .map_err(|e| dae::Error::Msg(e.to_string()))?
                    );
                } else {
                    eprintln!("adapter: {}", ctx.gpu().info.name);
                    print!("{}", dae::bench::train_table(&rows));
                    print!("{}", dae::bench::tuned_table(&dae::bench::tuned_rows(&ctx)));
                }
                return Ok(ExitCode::SUCCESS);
            }
            let suite = dae::bench::Suite {
                filter,
                all,
                runs: iters,
                models: vec![("unet16x2".into(), 32), ("unet64x3".into(), 16), ("conv64x3".into(), 16)],
                model_runs: (iters / 8).max(3),
                amp,
            };
            let report = dae::bench::suite(&ctx, &suite, &mut |what| {
                if !json {
                    eprintln!("measuring {what} ...");
                }
            })?;
            print_warnings(&ctx);
            if json {
                println!("{}", serde_json::to_string_pretty(&report).map_err(|e| dae::Error::Msg(e.to_string()))?);
            } else {
                print!("{}", dae::bench::table(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Eval { common, ev } => {
            let cfg = common.load()?;
            let ctx = dae::Ctx::open(cli.adapter.as_deref())?;
            let opts = ev.options(&common);
            let mut shown = Shown::new(opts.verbose);
            let r = dae::eval::run(&ctx, &cfg, &opts, &mut |e| shown.event(e));
            shown.finish();
            print_warnings(&ctx);
            match r? {
                Some(r) => {
                    print!("{}", dae::eval::table(&r));
                    println!(
                        "{} images x {} levels at {:.0} images/s ({}); {}",
                        r.n_images,
                        r.results.len(),
                        r.images_per_s,
                        r.lpips_net.as_ref().map_or("without LPIPS".to_string(), |n| format!("with LPIPS {n}")),
                        std::path::Path::new(&cfg.out_dir).join("logs/evaluation_results.json").display()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                None => interrupted_exit("evaluation", "no results were written"),
            }
        }
        Cmd::Viz { fig } => {
            use dae::report::jobs::Figure;
            let (f, job) = match fig {
                VizCmd::ReconGrid(j) => (Figure::ReconGrid, j),
                VizCmd::SigmaPanel(j) => (Figure::SigmaPanel, j),
                VizCmd::Cases(j) => (Figure::Cases, j),
                VizCmd::Curves(j) => (Figure::Curves, j),
                VizCmd::Frequency(j) => (Figure::Frequency, j),
                VizCmd::Diversity(j) => (Figure::Diversity, j),
                VizCmd::Demo(j) => (Figure::Demo, j),
            };
            let cfg = job.common.load()?;
            let ctx = dae::Ctx::open(cli.adapter.as_deref())?;
            let opts = job.ev.options(&job.common);
            let mut shown = Shown::new(opts.verbose);
            let r = dae::report::jobs::viz(&ctx, &cfg, &opts, f, &mut |e| shown.event(e));
            shown.finish();
            print_warnings(&ctx);
            match r? {
                Some(files) => {
                    for p in files {
                        println!("{}", p.display());
                    }
                    Ok(ExitCode::SUCCESS)
                }
                None => interrupted_exit("viz", "no figure was written"),
            }
        }
        Cmd::Compare { what: CompareCmd::Runs { dirs, out } } => {
            print!("{}", dae::report::jobs::compare_runs(&dirs, &out)?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Compare { what: CompareCmd::Generation(job) } => compare_generation(cli.adapter.as_deref(), &job.common, &job.ev),
        Cmd::Compare { what: CompareCmd::Limitations(job) } => analyse(cli.adapter.as_deref(), &job.common, &job.ev, false),
        Cmd::Report { common, ev } => analyse(cli.adapter.as_deref(), &common, &ev, true),
        Cmd::Infer { ckpt, input, output, batch } => infer(cli.adapter.as_deref(), &ckpt, &input, &output, batch),
    }
}

fn analyse(adapter: Option<&str>, common: &Common, ev: &EvalArgs, full: bool) -> dae::Result<ExitCode> {
    let cfg = common.load()?;
    let ctx = dae::Ctx::open(adapter)?;
    let t0 = std::time::Instant::now();
    let opts = ev.options(common);
    let mut shown = Shown::new(opts.verbose);
    let r = dae::report::jobs::analyse(&ctx, &cfg, &opts, full, &mut |e| shown.event(e));
    shown.finish();
    print_warnings(&ctx);
    let Some(w) = r? else {
        return interrupted_exit(
            if full { "report" } else { "compare limitations" },
            "files written before the interrupt are complete; the rest were not written",
        );
    };
    if let Some(e) = &w.eval {
        print!("{}", dae::eval::table(e));
    }
    let l = &w.limitations;
    println!(
        "limitations: smoothing {:.3}, high_freq_ratio {:.3}, diversity collapse {:.3}, mode-averaging ratio {:.3}; overall {:.3}",
        l.smoothing_score, l.high_freq_ratio, l.diversity.collapse, l.mode_averaging.ratio, l.overall_limitation_score
    );
    if let Some(g) = &w.generation {
        print!("{}", dae::report::study::generation_table(g));
    }
    let total = t0.elapsed().as_secs_f64();
    println!("wrote {} files in {:.0} s:", w.files.len(), total);
    for f in &w.files {
        println!("  {}", f.display());
    }
    if !w.study_secs.is_empty() {
        let parts: Vec<String> = w.study_secs.iter().map(|(k, v)| format!("{k} {v:.1} s")).collect();
        let sum: f64 = w.study_secs.iter().map(|x| x.1).sum();
        println!("the study's sections took {sum:.1} s of {total:.0} ({:.0}%): {}", 100.0 * sum / total.max(1e-9), parts.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

fn compare_generation(adapter: Option<&str>, common: &Common, ev: &EvalArgs) -> dae::Result<ExitCode> {
    let cfg = common.load()?;
    let ctx = dae::Ctx::open(adapter)?;
    let t0 = std::time::Instant::now();
    let opts = ev.options(common);
    let mut shown = Shown::new(opts.verbose);
    let r = dae::report::study::compare_generation(&ctx, &cfg, &opts, &mut |e| shown.event(e));
    shown.finish();
    print_warnings(&ctx);
    let Some((g, files)) = r? else {
        return interrupted_exit("compare generation", "no file was written");
    };
    print!("{}", dae::report::study::generation_table(&g));
    println!("wrote {} files in {:.0} s:", files.len(), t0.elapsed().as_secs_f64());
    for f in &files {
        println!("  {}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// How a job's events are shown: notes (unless --quiet) and warnings on stderr, and per pass a
/// progress bar on a terminal, or without one a plain line at most every 10 s.
struct Shown {
    verbose: bool,
    bar: Option<indicatif::ProgressBar>,
    what: String,
    plain: bool,
    last_line: std::time::Instant,
}

impl Shown {
    fn new(verbose: bool) -> Shown {
        let plain = verbose && !std::io::IsTerminal::is_terminal(&std::io::stderr());
        Shown { verbose, bar: None, what: String::new(), plain, last_line: std::time::Instant::now() }
    }

    /// A line above the bar, if there is one.
    fn line(&self, text: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    fn event(&mut self, e: dae::util::events::Event) {
        use dae::util::events::Event;
        match e {
            Event::Note(m) if self.verbose => self.line(&m),
            Event::Note(_) => {}
            Event::Warning(m) => self.line(&format!("warning: {m}")),
            Event::Start { what, total, done } => {
                if self.verbose {
                    let bar = indicatif::ProgressBar::new(total as u64);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}")
                            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                    bar.set_prefix(what.clone());
                    bar.set_position(done as u64);
                    self.bar = Some(bar);
                }
                self.what = what;
            }
            Event::Progress { done, msg } => {
                if self.plain && self.last_line.elapsed().as_secs_f64() >= 10.0 {
                    eprintln!("{} {done} {msg}", self.what);
                    self.last_line = std::time::Instant::now();
                }
                if let Some(b) = &self.bar {
                    b.set_position(done as u64);
                    b.set_message(msg);
                }
            }
            Event::End { finished } => {
                if let Some(b) = self.bar.take() {
                    if finished { b.finish_and_clear() } else { b.abandon() }
                }
            }
        }
    }

    /// The job ended (an error may have cut a pass short): leave the bar where it stood.
    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.abandon();
        }
    }
}

/// The exit for a job an interrupt stopped: 130 (SIGINT) or 143 (SIGTERM).
fn interrupted_exit(job: &str, what: &str) -> dae::Result<ExitCode> {
    let code = dae::util::signal::interrupted().unwrap_or(130);
    eprintln!("{job} stopped by {}; {what}", dae::util::signal::name(code));
    Ok(ExitCode::from(code))
}

fn train(adapter: Option<&str>, common: &Common, opts: &dae::train::TrainOptions) -> dae::Result<ExitCode> {
    let cfg = common.load()?;
    let ctx = dae::Ctx::open(adapter)?;
    let t0 = std::time::Instant::now();
    let mut shown = Shown::new(opts.verbose);
    let r = dae::train::train_with(&ctx, &cfg, opts, &mut |e| shown.event(e));
    shown.finish();
    print_warnings(&ctx);
    let s = r?;
    let out = std::path::Path::new(&cfg.out_dir);
    if s.already_finished {
        eprintln!(
            "the run in {} is already complete: all {} epochs are done (step {}); nothing to resume. Raise train.epochs to train on, or score it with dae eval / dae report",
            out.display(),
            s.epochs_done,
            s.steps
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(code) = s.interrupted {
        if s.epochs_done >= cfg.train.epochs && s.validated {
            eprintln!("stopped at step {} with training complete ({} epochs): its checkpoints and logs are all written", s.steps, s.epochs_done);
        } else if s.epochs_done >= cfg.train.epochs {
            eprintln!("stopped at step {} with every training step done; the same command with --resume runs the final validation", s.steps);
        } else {
            eprintln!("stopped at step {}; continue with the same command and --resume", s.steps);
        }
        return Ok(ExitCode::from(code));
    }
    println!("trained {} epochs ({} steps) in {:.1} s; best mean val PSNR {:.2} dB", s.epochs_done, s.steps, t0.elapsed().as_secs_f64(), s.best_psnr);
    println!("{:>6} {:>9} {:>9} {:>11} {:>8} {:>10}", "sigma", "psnr dB", "ssim", "noisy dB", "gain dB", "val loss");
    for r in &s.last_val {
        println!("{:>6} {:>9.2} {:>9.4} {:>11.2} {:>8.2} {:>10.5}", r.sigma, r.psnr, r.ssim, r.psnr_noisy, r.psnr - r.psnr_noisy, r.loss);
    }
    println!("logs: {}  checkpoints: {}", out.join("logs").display(), out.join("ckpts").display());
    Ok(ExitCode::SUCCESS)
}

fn infer(adapter: Option<&str>, ckpt: &std::path::Path, input: &std::path::Path, output: &std::path::Path, batch: usize) -> dae::Result<ExitCode> {
    if batch == 0 {
        return Err(dae::Error::Config("--batch must be > 0".into()));
    }
    let ctx = dae::Ctx::open(adapter)?;
    let done = dae::infer::run(&ctx, ckpt, input, output, batch)?;
    print_warnings(&ctx);
    for w in &done.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!("denoised {} image(s) into {}", done.images, done.output.display());
    Ok(ExitCode::SUCCESS)
}

fn devices(wanted: Option<&str>, json: bool) -> dae::Result<ExitCode> {
    let adapters = device::adapters();
    if adapters.is_empty() {
        return Err(dae::Error::NoAdapter);
    }
    // With --adapter, only the adapter it picks (an error naming the choices when none matches).
    let chosen = match wanted.map(str::trim).filter(|w| !w.is_empty()) {
        Some(_) => Some(device::select_adapter(wanted)?.get_info()),
        None => None,
    };
    let mut out = Vec::new();
    for (i, a) in adapters.iter().enumerate() {
        if chosen.as_ref().is_some_and(|c| *c != a.get_info()) {
            continue;
        }
        let info = a.get_info();
        let l = a.limits();
        let f = a.features();
        let rec = serde_json::json!({
            "index": i,
            "name": info.name,
            "backend": format!("{:?}", info.backend),
            "device_type": format!("{:?}", info.device_type),
            "driver": info.driver,
            "driver_info": info.driver_info,
            "vendor": format!("0x{:04x}", info.vendor),
            "device": format!("0x{:04x}", info.device),
            "limits": device::REQUIREMENTS.iter().map(|r| (r.name.to_string(), serde_json::json!({"adapter": (r.get)(&l), "dae_needs": r.need}))).collect::<serde_json::Map<_, _>>(),
            "usable": device::unmet(&l).is_empty(),
            "features": {
                "shader_f16": f.contains(wgpu::Features::SHADER_F16),
                "timestamp_query": f.contains(wgpu::Features::TIMESTAMP_QUERY),
                "subgroup": f.contains(wgpu::Features::SUBGROUP),
            },
        });
        if !json {
            println!("{}", device::describe(i, &info));
            println!("    {:<50} {:>12} {:>12}", "limit", "adapter", "dae needs");
            for r in device::REQUIREMENTS {
                let have = (r.get)(&l);
                println!("    {:<50} {:>12} {:>12}{}", r.name, have, r.need, if have < r.need { "  TOO LOW" } else { "" });
            }
            println!(
                "    features: shader-f16 {}, timestamp-query {}, subgroup {}",
                rec["features"]["shader_f16"], rec["features"]["timestamp_query"], rec["features"]["subgroup"]
            );
        }
        out.push(rec);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out).map_err(|e| dae::Error::Msg(e.to_string()))?);
    }
    Ok(ExitCode::SUCCESS)
}

fn known_family(only: Option<&str>) -> dae::Result<()> {
    if let Some(w) = only
        && !dae::check::families().iter().any(|f| f.contains(w))
    {
        return Err(dae::Error::Config(format!("--only {w:?} matches no op family; families: {}", dae::check::families().join(", "))));
    }
    Ok(())
}

/// Print the rows as a table (and a summary) or JSON; exit 1 on any failure.
fn report_checks(rows: &[dae::check::CheckRow], json: bool, secs: f64) -> dae::Result<ExitCode> {
    let failed = rows.iter().filter(|r| !r.pass).count();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).map_err(|e| dae::Error::Msg(e.to_string()))?);
    } else {
        print!("{}", dae::check::table(rows));
        println!("{} checks, {} passed, {} failed ({secs:.1} s)", rows.len(), rows.len() - failed, failed);
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `dae gradcheck --browser`: the checks in headless Chromium, through the self-contained page.
fn gradcheck_browser(json: bool, only: Option<&str>) -> dae::Result<ExitCode> {
    known_family(only)?;
    let run = dae::web::browser_checks(only, &mut |m| eprintln!("{m}"))?;
    eprintln!("adapter: {} (headless {}, WebGPU)", run.adapter, run.browser);
    for e in &run.errors {
        eprintln!("warning: the page logged {e}");
    }
    report_checks(&run.rows, json, run.seconds)
}

fn gradcheck(adapter: Option<&str>, json: bool, only: Option<&str>) -> dae::Result<ExitCode> {
    known_family(only)?;
    let ctx = dae::Ctx::open(adapter)?;
    if !json {
        let info = &ctx.gpu().info;
        eprintln!("adapter: {} ({:?}, {:?}, {})", info.name, info.backend, info.device_type, info.driver_info);
    }
    let t0 = std::time::Instant::now();
    let rows = dae::gpu::block_on(dae::check::run(&ctx, only))?;
    print_warnings(&ctx);
    report_checks(&rows, json, t0.elapsed().as_secs_f64())
}
