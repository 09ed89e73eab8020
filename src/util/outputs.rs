//! The files dae writes in a run folder (`out_dir`), named once by pattern: `dae train
//! --overwrite` removes exactly these (and their `.tmp` leftovers) and keeps anything else a
//! user put there, listing it. A job that writes a new file into the run folder adds its name
//! here; a test runs training and the report and checks that every file they leave matches.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Paths relative to the run folder; `#` stands for one or more digits, `*` for any characters
/// but `/`.
pub const PATTERNS: &[&str] = &[
    "config.resolved.yaml",
    "logs/train_metrics.csv",
    "logs/val_metrics.csv",
    "logs/evaluation_results.json",
    "ckpts/last.safetensors",
    "ckpts/last.ema.safetensors",
    "ckpts/last.state.safetensors",
    "ckpts/last.manifest.json",
    "ckpts/epoch_#.safetensors",
    "ckpts/epoch_#.ema.safetensors",
    "ckpts/epoch_#.state.safetensors",
    "ckpts/epoch_#.manifest.json",
    "ckpts/best_model.safetensors",
    "figures/recon_epoch_#.png",
    "grids/recon_grid_*.png",
    "grids/best_cases.png",
    "grids/worst_cases.png",
    "grids/diversity_collapse_demo.png",
    "grids/generation_attempts.png",
    "grids/ood_recon_grid.png",
    "panels/sigma_panel_#.png",
    "reports/training_curves.png",
    "reports/frequency_analysis.png",
    "reports/limitations_analysis.json",
    "reports/generation.json",
    "reports/limitations_analysis.html",
    "reports/demo.html",
];

/// The folders of the run folder that dae writes into.
pub const FOLDERS: &[&str] = &["logs", "ckpts", "figures", "grids", "panels", "reports"];

/// Whether `rel` (a path relative to the run folder, `/`-separated) is a file dae writes, or
/// the `.tmp` file of one that a killed run left behind.
pub fn is_dae_output(rel: &str) -> bool {
    let rel = rel.strip_suffix(".tmp").unwrap_or(rel);
    PATTERNS.iter().any(|p| matches(p.as_bytes(), rel.as_bytes()))
}

fn matches(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'#', rest)) => {
            let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
            (1..=digits).any(|k| matches(rest, &s[k..]))
        }
        Some((b'*', rest)) => (0..=s.len()).take_while(|&k| k == 0 || s[k - 1] != b'/').any(|k| matches(rest, &s[k..])),
        Some((c, rest)) => s.first() == Some(c) && matches(rest, &s[1..]),
    }
}

/// The files under `out` (in dae's folders and at its top level; lock files excepted), split
/// into dae's own and the others, each sorted.
pub fn survey(out: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut ours, mut others) = (Vec::new(), Vec::new());
    let mut visit = |rel: String| {
        let p = out.join(rel.trim_end_matches('/'));
        if is_dae_output(&rel) { ours.push(p) } else { others.push(p) }
    };
    let list = |dir: &Path| -> Result<Vec<(String, bool)>> {
        match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .map(|e| {
                    let e = e.map_err(|e| Error::Msg(format!("cannot list {}: {e}", dir.display())))?;
                    // A link counts as a file (its target is not ours to walk or remove).
                    let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                    Ok((e.file_name().to_string_lossy().into_owned(), is_dir))
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::Msg(format!("cannot list {}: {e}", dir.display()))),
        }
    };
    for (name, is_dir) in list(out)? {
        if is_dir && FOLDERS.contains(&name.as_str()) {
            let mut stack = vec![name];
            while let Some(rel) = stack.pop() {
                for (n, d) in list(&out.join(&rel))? {
                    let r = format!("{rel}/{n}");
                    if d { stack.push(r) } else { visit(r) }
                }
            }
        } else if !name.starts_with(".dae-") || !name.ends_with(".lock") {
            if is_dir {
                // Another folder of the user's: left as it is, named as one entry.
                visit(format!("{name}/"));
            } else {
                visit(name);
            }
        }
    }
    ours.sort();
    others.sort();
    Ok((ours, others))
}

/// Remove dae's own files of an earlier run in `out` (and then any of dae's folders left
/// empty); returns how many were removed and the files that were kept.
pub fn remove_earlier_run(out: &Path) -> Result<(usize, Vec<PathBuf>)> {
    let (ours, others) = survey(out)?;
    for p in &ours {
        std::fs::remove_file(p).map_err(|e| Error::Msg(format!("--overwrite: cannot remove {}: {e}", p.display())))?;
    }
    for f in FOLDERS {
        // Fails (and is meant to) when the folder still holds something.
        let _ = std::fs::remove_dir(out.join(f));
    }
    Ok((ours.len(), others))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_dae_names_and_nothing_else() {
        for ok in [
            "config.resolved.yaml",
            "ckpts/epoch_003.ema.safetensors",
            "ckpts/epoch_12.manifest.json.tmp",
            "ckpts/last.state.safetensors",
            "figures/recon_epoch_001.png",
            "grids/recon_grid_sigma_0p1.png",
            "panels/sigma_panel_0.png",
            "logs/evaluation_results.json",
        ] {
            assert!(is_dae_output(ok), "{ok}");
        }
        for no in [
            "ckpts/my_pytorch_model.pt",
            "figures/holiday.png",
            "logs/notes.txt",
            "reports/thesis.tex",
            "ckpts/epoch_.safetensors",
            "ckpts/epoch_x1.safetensors",
            "grids/recon_grid_a/b.png",
            "figures/recon_epoch_001.png.bak",
            "config.resolved.yaml.orig",
        ] {
            assert!(!is_dae_output(no), "{no}");
        }
    }

    #[test]
    fn removing_an_earlier_run_keeps_foreign_files() {
        let out = std::env::temp_dir().join(format!("dae-outputs-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        for f in [
            "ckpts/last.safetensors",
            "ckpts/my_pytorch_model.pt",
            "logs/train_metrics.csv",
            "logs/notes.txt",
            "figures/recon_epoch_001.png",
            "grids/best_cases.png",
            "config.resolved.yaml",
            "mine/a.txt",
            ".dae-train.lock",
        ] {
            let p = out.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"x").unwrap();
        }
        let (n, kept) = remove_earlier_run(&out).unwrap();
        assert_eq!(n, 5);
        assert_eq!(kept, vec![out.join("ckpts/my_pytorch_model.pt"), out.join("logs/notes.txt"), out.join("mine")]);
        assert!(out.join("ckpts/my_pytorch_model.pt").exists() && out.join("mine/a.txt").exists() && out.join(".dae-train.lock").exists());
        assert!(!out.join("grids").exists() && !out.join("figures").exists() && !out.join("config.resolved.yaml").exists());
        std::fs::remove_dir_all(&out).ok();
    }
}
