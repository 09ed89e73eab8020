//! Two things for the build: the git commit, for checkpoint metadata (unknown outside a git
//! checkout); and the browser bundle: the engine built for `wasm32-unknown-unknown` (a nested
//! cargo build in its own target folder, `target/web`) and its JavaScript glue (wasm-bindgen's
//! no-modules form, generated here by the same version of wasm-bindgen's library the engine
//! links), both written to OUT_DIR, where `src/bundle/mod.rs` embeds them in the native binary.

#[cfg(feature = "web-bundle")]
use std::path::PathBuf;
#[cfg(feature = "web-bundle")]
use std::process::Command;

fn main() {
    let hash = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=DAE_GIT_HASH={hash}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    // The nested build itself (the engine for the browser) embeds nothing.
    #[cfg(feature = "web-bundle")]
    if !std::env::var("TARGET").is_ok_and(|t| t.starts_with("wasm32")) {
        bundle();
    }
}

#[cfg(feature = "web-bundle")]
fn bundle() {
    for p in ["src", "shaders", "tests/fixtures", "Cargo.toml", "Cargo.lock", "build.rs"] {
        println!("cargo:rerun-if-changed={p}");
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let target_dir = manifest.join("target").join("web");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(&manifest)
        .args([
            "rustc",
            "--lib",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "--crate-type",
            "cdylib",
            "--no-default-features",
            "--target-dir",
        ])
        .arg(&target_dir)
        // The host's flags (a target CPU, say) are not the browser's.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .unwrap_or_else(|e| panic!("could not run {cargo} for the browser bundle: {e}"));
    if !status.success() {
        panic!(
            "the browser bundle (the engine for wasm32-unknown-unknown) did not build; the target comes with rust-toolchain.toml, or: rustup target add wasm32-unknown-unknown"
        );
    }
    let wasm = target_dir.join("wasm32-unknown-unknown").join("release").join("dae.wasm");
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .no_modules(true)
        .expect("no-modules glue")
        .typescript(false)
        .out_name("dae")
        .generate(&out)
        .unwrap_or_else(|e| panic!("wasm-bindgen on {}: {e}", wasm.display()));
}
