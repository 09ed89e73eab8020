//! The `dae` command line: main -> run() -> ExitCode; errors are printed once, here.

use std::process::ExitCode;

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

#[derive(Subcommand)]
enum Cmd {
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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> dae::Result<ExitCode> {
    match cli.cmd {
        Cmd::Devices { json } => devices(json),
        Cmd::Gradcheck { json, only } => gradcheck(cli.adapter.as_deref(), json, only.as_deref()),
    }
}

fn devices(json: bool) -> dae::Result<ExitCode> {
    let adapters = device::adapters();
    if adapters.is_empty() {
        return Err(dae::Error::NoAdapter);
    }
    let mut out = Vec::new();
    for (i, a) in adapters.iter().enumerate() {
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
            "limits": {
                "max_buffer_size": l.max_buffer_size,
                "max_storage_buffer_binding_size": l.max_storage_buffer_binding_size,
                "max_storage_buffers_per_shader_stage": l.max_storage_buffers_per_shader_stage,
                "max_compute_workgroup_storage_size": l.max_compute_workgroup_storage_size,
                "max_compute_invocations_per_workgroup": l.max_compute_invocations_per_workgroup,
                "max_compute_workgroups_per_dimension": l.max_compute_workgroups_per_dimension,
            },
            "features": {
                "shader_f16": f.contains(wgpu::Features::SHADER_F16),
                "timestamp_query": f.contains(wgpu::Features::TIMESTAMP_QUERY),
                "subgroup": f.contains(wgpu::Features::SUBGROUP),
            },
        });
        if !json {
            println!("{}", device::describe(i, &info));
            println!(
                "    max buffer {} MiB, max storage binding {} MiB, {} storage buffers/stage, {} B workgroup memory, {} invocations/workgroup",
                l.max_buffer_size >> 20,
                l.max_storage_buffer_binding_size >> 20,
                l.max_storage_buffers_per_shader_stage,
                l.max_compute_workgroup_storage_size,
                l.max_compute_invocations_per_workgroup
            );
            println!("    features: shader-f16 {}, timestamp-query {}, subgroup {}", rec["features"]["shader_f16"], rec["features"]["timestamp_query"], rec["features"]["subgroup"]);
        }
        out.push(rec);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out).map_err(|e| dae::Error::Msg(e.to_string()))?);
    }
    Ok(ExitCode::SUCCESS)
}

fn gradcheck(adapter: Option<&str>, json: bool, only: Option<&str>) -> dae::Result<ExitCode> {
    if let Some(w) = only {
        if !dae::check::families().iter().any(|f| f.contains(w)) {
            return Err(dae::Error::Msg(format!("--only {w:?} matches no op family; families: {}", dae::check::families().join(", "))));
        }
    }
    let ctx = dae::Ctx::open(adapter)?;
    if !json {
        let info = &ctx.gpu().info;
        eprintln!("adapter: {} ({:?}, {:?}, {})", info.name, info.backend, info.device_type, info.driver_info);
    }
    let t0 = std::time::Instant::now();
    let rows = dae::check::run(&ctx, only)?;
    let failed = rows.iter().filter(|r| !r.pass).count();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).map_err(|e| dae::Error::Msg(e.to_string()))?);
    } else {
        print!("{}", dae::check::table(&rows));
        println!("{} checks, {} passed, {} failed ({:.1} s)", rows.len(), rows.len() - failed, failed, t0.elapsed().as_secs_f64());
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
