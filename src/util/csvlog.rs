//! The run's CSV logs (`logs/train_metrics.csv`, `logs/val_metrics.csv`) as serde rows through
//! the `csv` crate: appended by `dae train`, read back by `--resume` (which drops rows past its
//! checkpoint) and by the figures. A row that does not parse is an error naming the file and
//! line, except a last line without its newline (a run killed while writing it), which is left
//! out with a warning.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A row of `logs/train_metrics.csv`: one per step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainLogRow {
    pub step: u64,
    pub epoch: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub images_per_s: f64,
}

/// A row of `logs/val_metrics.csv`: one per epoch and evaluation level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValLogRow {
    pub epoch: u64,
    pub sigma: f32,
    pub val_loss: f64,
    pub psnr: f64,
    pub ssim: f64,
    pub psnr_noisy: f64,
    pub ssim_noisy: f64,
}

/// `x` to `digits` decimals: what a log keeps (the shortest form of the rounded value is
/// written).
pub fn round(x: f64, digits: i32) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let s = 10f64.powi(digits);
    (x * s).round() / s
}

/// `x` to `digits` significant digits (a learning rate of 5.6e-4 computed in f64 is written
/// 0.00056, not 0.0005600000000000001).
pub fn round_sig(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    round(x, digits - 1 - x.abs().log10().floor() as i32)
}

/// Append `rows` to the log `path` (created with its header when missing; never through a
/// symbolic link).
pub fn append<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let fresh = !path.exists();
    let file = crate::util::files::open_append(path)?;
    let mut w = csv::WriterBuilder::new().has_headers(fresh).from_writer(file);
    let bad = |e: &dyn std::fmt::Display| Error::Msg(format!("cannot write {}: {e}", path.display()));
    for r in rows {
        w.serialize(r).map_err(|e| bad(&e))?;
    }
    w.flush().map_err(|e| bad(&e))
}

/// The rows of the log `path`; a torn last line goes into `warnings`.
pub fn read<T: serde::de::DeserializeOwned>(path: &Path, warnings: &mut Vec<String>) -> Result<Vec<T>> {
    let bytes = std::fs::read(path).map_err(|e| Error::Msg(format!("cannot read {}: {e} (the training logs; train first)", path.display())))?;
    parse(&bytes, path, warnings)
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], path: &Path, warnings: &mut Vec<String>) -> Result<Vec<T>> {
    let torn = !bytes.is_empty() && !bytes.ends_with(b"\n");
    let mut r = csv::ReaderBuilder::new().from_reader(bytes);
    let mut out = Vec::new();
    let mut records = r.deserialize::<T>().peekable();
    while let Some(row) = records.next() {
        match row {
            Ok(v) => out.push(v),
            Err(_) if torn && records.peek().is_none() => {
                warnings.push(format!("{}: the last line is cut off (a run killed while writing it); it is left out", path.display()));
            }
            Err(e) => {
                let line = e.position().map_or(String::new(), |p| format!(" line {}", p.line()));
                return Err(Error::Msg(format!("{}{line}: not a row of a dae log: {e}", path.display())));
            }
        }
    }
    Ok(out)
}

/// Keep the rows of the log `path` that `keep` accepts (atomically rewritten); a missing log
/// is left missing.
pub fn retain<T: Serialize + serde::de::DeserializeOwned>(path: &Path, keep: impl Fn(&T) -> bool, warnings: &mut Vec<String>) -> Result<()> {
    let Ok(bytes) = std::fs::read(path) else { return Ok(()) };
    let rows: Vec<T> = parse::<T>(&bytes, path, warnings)?.into_iter().filter(|r| keep(r)).collect();
    let mut w = csv::WriterBuilder::new().has_headers(true).from_writer(Vec::new());
    let bad = |e: &dyn std::fmt::Display| Error::Msg(format!("cannot rewrite {}: {e}", path.display()));
    // With no rows serde writes no header either: the header alone then.
    if rows.is_empty() {
        let header = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        return crate::util::files::write_file(path, &[header, b"\n"].concat());
    }
    for r in &rows {
        w.serialize(r).map_err(|e| bad(&e))?;
    }
    let text = w.into_inner().map_err(|e| bad(&e))?;
    crate::util::files::write_file(path, &text)
}

#[cfg(test)]
mod tests {

    #[test]
    fn round_sig_keeps_significant_digits() {
        assert_eq!(super::round_sig(0.0005600000000000001, 6).to_string(), "0.00056");
        assert_eq!(super::round_sig(8.0e-5, 6).to_string(), "0.00008");
        assert_eq!(super::round_sig(1234.5678, 3), 1230.0);
        assert_eq!(super::round_sig(0.0, 6), 0.0);
    }
    use super::*;

    #[test]
    fn rows_round_trip_a_torn_last_line_is_a_warning_and_a_bad_row_an_error() {
        let dir = std::env::temp_dir().join(format!("dae-csvlog-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("train_metrics.csv");
        let row = |s| TrainLogRow { step: s, epoch: 1, loss: round(0.1234567, 6), lr: 2e-3, grad_norm: 0.5, images_per_s: 41.5 };
        append(&p, &[row(1), row(2)]).unwrap();
        append(&p, &[row(3)]).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("step,epoch,loss,lr,grad_norm,images_per_s\n1,1,0.123457,0.002,0.5,41.5\n"), "{text}");
        let mut w = Vec::new();
        assert_eq!(read::<TrainLogRow>(&p, &mut w).unwrap(), vec![row(1), row(2), row(3)]);
        std::fs::write(&p, format!("{text}4,1,0.1")).unwrap();
        assert_eq!(read::<TrainLogRow>(&p, &mut w).unwrap().len(), 3);
        assert!(w.len() == 1 && w[0].contains("cut off"), "{w:?}");
        std::fs::write(&p, format!("{text}x,1,0.1,1,1,1\n4,1,0.1,1,1,1\n")).unwrap();
        let e = read::<TrainLogRow>(&p, &mut w).unwrap_err().to_string();
        assert!(e.contains("train_metrics.csv line 5"), "{e}");
        std::fs::write(&p, &text).unwrap();
        retain::<TrainLogRow>(&p, |r| r.step <= 1, &mut w).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "step,epoch,loss,lr,grad_norm,images_per_s\n1,1,0.123457,0.002,0.5,41.5\n");
        retain::<TrainLogRow>(&p, |_| false, &mut w).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "step,epoch,loss,lr,grad_norm,images_per_s\n");
        std::fs::remove_dir_all(&dir).ok();
    }
}
