//! `dae`: denoising autoencoders on any Vulkan / Metal / DX12 GPU through wgpu. All tensor math
//! runs in the hand-written WGSL kernels of `shaders/`, launched from `ops/`, differentiated by
//! the tape in `autograd/`, and checked against the plain-Rust CPU twins in `reference/`.

#[cfg(not(target_arch = "wasm32"))]
pub mod analysis;
pub mod autograd;
#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
#[cfg(not(target_arch = "wasm32"))]
pub mod bundle;
pub mod check;
pub mod checkpoint;
pub mod config;
#[cfg(not(target_arch = "wasm32"))]
pub mod data;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod eval;
pub mod feed;
pub mod gpu;
#[cfg(not(target_arch = "wasm32"))]
pub mod infer;
pub mod metrics;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod reference;
#[cfg(not(target_arch = "wasm32"))]
pub mod report;
pub mod tensor;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;
pub mod util;
pub mod web;

pub use error::{Error, Result};
pub use gpu::Ctx;
pub use tensor::Tensor;

/// The layering of `src/`, bottom-up: a module may use only modules of its own layer or below
/// (`check` and `reference` consume the product code; nothing in the product imports them; the
/// binary's `gradcheck` command may call `check`). Test-only modules (`#[cfg(test)] mod ...`)
/// may reach anywhere.
#[cfg(test)]
mod layering {
    /// The order, once. Each module is its own layer, lowest first.
    const LAYERS: &[&str] = &[
        "data",
        "error",
        "util",
        "bundle",
        "config",
        "metrics",
        "gpu",
        "tensor",
        "ops",
        "autograd",
        "nn",
        "optim",
        "checkpoint",
        "feed",
        "eval",
        "analysis",
        "report",
        "train",
        "infer",
        "bench",
        "reference",
        "check",
        "web",
    ];

    fn rank(m: &str) -> Option<usize> {
        LAYERS.iter().position(|l| *l == m)
    }

    /// The crate-level modules a Rust source file names through `crate::...` paths, in `use`
    /// trees (`use crate::{a, b::c}`) and inline (`crate::check::Rng::new`), outside its test
    /// modules.
    pub fn crate_refs(text: &str) -> Vec<String> {
        let mut body = text.to_string();
        // Cut test modules: from `#[cfg(test)]` followed by `mod` to the end of that item
        // (brace counting).
        while let Some(at) = body.find("#[cfg(test)]") {
            let rest = &body[at..];
            let Some(brace) = rest.find('{').filter(|b| rest[..*b].contains("mod ")) else {
                body.replace_range(at..at + "#[cfg(test)]".len(), "");
                continue;
            };
            let mut depth = 0;
            let mut end = rest.len();
            for (i, ch) in rest[brace..].char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = brace + i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            body.replace_range(at..at + end, "");
        }
        let mut out = Vec::new();
        let mut rest = body.as_str();
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                // `use crate::{a, b::c}`: every top-level name of the group.
                let close = group.find('}').unwrap_or(group.len());
                for part in group[..close].split(',') {
                    let name: String = part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() {
                        out.push(name);
                    }
                }
            } else {
                let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.push(name);
            }
            rest = after;
        }
        out
    }

    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// Every upward reference in `src/`, as "file: module -> target".
    pub fn violations(src: &std::path::Path) -> Vec<String> {
        let mut all = Vec::new();
        files(src, &mut all);
        let mut bad = Vec::new();
        for f in all {
            let rel = f.strip_prefix(src).unwrap();
            let module = rel.iter().next().unwrap().to_string_lossy().trim_end_matches(".rs").to_string();
            if module == "lib" || module == "main" {
                continue;
            }
            let Some(own) = rank(&module) else {
                bad.push(format!("{}: module `{module}` has no place in LAYERS", rel.display()));
                continue;
            };
            for target in crate_refs(&std::fs::read_to_string(&f).unwrap()) {
                match rank(&target) {
                    Some(t) if t > own => bad.push(format!("{}: {module} -> {target}", rel.display())),
                    None if !["Ctx", "Tensor", "Error", "Result", "gpu_params", "ensure"].contains(&target.as_str()) => {
                        bad.push(format!("{}: unknown crate path `crate::{target}`", rel.display()))
                    }
                    _ => {}
                }
            }
        }
        bad
    }

    #[test]
    fn no_module_imports_from_a_layer_above_it() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let bad = violations(&src);
        assert!(bad.is_empty(), "upward imports (the order is LAYERS in src/lib.rs):\n{}", bad.join("\n"));
    }

    /// The scanner sees use trees and inline paths, and ignores test modules.
    #[test]
    fn the_scanner_finds_every_kind_of_path() {
        let text = "use crate::{gpu::Ctx, ops};\nfn f() { crate::check::Rng::new(1); }\n#[cfg(test)]\nmod tests { use crate::train; }\n";
        assert_eq!(crate_refs(text), vec!["gpu", "ops", "check"]);
    }
}
