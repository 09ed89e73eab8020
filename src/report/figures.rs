//! The figures of SPEC section 5, each from plain host data (pixels in [0, 1], CSV rows,
//! spectra): reconstruction grids, the sigma panel, best / worst cases, training curves, the
//! frequency analysis and the diversity demo.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Anchor, Canvas, SANS, fonts, pe, series_colour};
use crate::error::Result;

const ZOOM: u32 = 3;
const GAP: u32 = 4;
const LABEL_W: u32 = 120;

/// The side of one zoomed image cell.
fn cell(hw: usize) -> u32 {
    hw as u32 * ZOOM
}

/// Rows of images with a label at the left of each row and a title on top: `rows` holds
/// (label, n images of hw x hw), `under` optional captions under the images of a row.
fn labelled_rows(title: &str, rows: &[(String, &[f32], Option<Vec<String>>)], n: usize, hw: usize) -> Result<Canvas> {
    let c = cell(hw);
    let caption_h = 16;
    let row_h = |r: &(String, &[f32], Option<Vec<String>>)| c + GAP + if r.2.is_some() { caption_h } else { 0 };
    let top = 34;
    let w = LABEL_W + n as u32 * (c + GAP) + GAP;
    let h = top + rows.iter().map(row_h).sum::<u32>() + GAP;
    let mut cv = Canvas::new(w, h);
    cv.text(title, 8, 8, 18.0, Anchor::TopLeft)?;
    let mut y = top;
    for r in rows {
        let (label, imgs, under) = r;
        cv.text(label, 8, (y + c / 2) as i32, 15.0, Anchor::MiddleLeft)?;
        let per = hw * hw;
        for i in 0..n.min(imgs.len() / per) {
            let x = LABEL_W + i as u32 * (c + GAP);
            cv.blit_grey(&imgs[i * per..(i + 1) * per], hw, hw, x, y, ZOOM);
            if let Some(caps) = under
                && let Some(t) = caps.get(i)
            {
                cv.text(t, (x + c / 2) as i32, (y + c + 2) as i32, 12.0, Anchor::TopCenter)?;
            }
        }
        y += row_h(r);
    }
    Ok(cv)
}

/// Rows of n images each under a label (the out-of-distribution grid).
pub fn image_rows(path: &Path, title: &str, rows: &[(String, Vec<f32>)], n: usize, hw: usize) -> Result<()> {
    let rows: Vec<(String, &[f32], Option<Vec<String>>)> = rows.iter().map(|(l, v)| (l.clone(), v.as_slice(), None)).collect();
    labelled_rows(title, &rows, n, hw)?.save(path)
}

/// Chains a generation figure shows per method.
pub const GEN_ROWS: usize = 8;

/// `grids/generation_attempts.png`: per method (a block with its name), the first chains as rows
/// and the snapshots along the schedule as columns (`blocks`: (method, [(column label, n
/// images)])).
pub fn generation(path: &Path, title: &str, blocks: &[(String, Vec<(String, Vec<f32>)>)], n: usize, hw: usize) -> Result<()> {
    let c = cell(hw);
    let rows = n.min(GEN_ROWS);
    let cols = blocks.iter().map(|b| b.1.len()).max().unwrap_or(0) as u32;
    let (head, colhead) = (34u32, 44u32);
    let block_h = colhead + rows as u32 * (c + GAP) + 8;
    let w = (LABEL_W + cols * (c + GAP) + GAP).max(760);
    let h = head + blocks.len() as u32 * block_h;
    let mut cv = Canvas::new(w, h);
    cv.text(title, 8, 8, 16.0, Anchor::TopLeft)?;
    let per = hw * hw;
    for (bi, (name, snaps)) in blocks.iter().enumerate() {
        let y0 = head + bi as u32 * block_h;
        cv.text(name, 8, (y0 + 4) as i32, 16.0, Anchor::TopLeft)?;
        for (ci, (label, imgs)) in snaps.iter().enumerate() {
            let x = LABEL_W + ci as u32 * (c + GAP);
            cv.text(label, (x + c / 2) as i32, (y0 + 26) as i32, 11.0, Anchor::TopCenter)?;
            for r in 0..rows.min(imgs.len() / per) {
                cv.blit_grey(&imgs[r * per..(r + 1) * per], hw, hw, x, y0 + colhead + r as u32 * (c + GAP), ZOOM);
            }
        }
        for r in 0..rows {
            cv.text(&format!("chain {r}"), 8, (y0 + colhead + r as u32 * (c + GAP) + c / 2) as i32, 13.0, Anchor::MiddleLeft)?;
        }
    }
    cv.save(path)
}

/// `grids/recon_grid_*.png`: rows clean | noisy | reconstructed of n images at one noise level.
pub fn recon_grid(path: &Path, title: &str, [clean, noisy, recon]: [&[f32]; 3], n: usize, hw: usize) -> Result<()> {
    let rows = [("clean".to_string(), clean, None), ("noisy".to_string(), noisy, None), ("reconstructed".to_string(), recon, None)];
    labelled_rows(title, &rows, n, hw)?.save(path)
}

/// One level of the sigma panel: its value, the noisy image, the reconstruction and its PSNR.
pub struct PanelColumn {
    pub level: f32,
    pub noisy: Vec<f32>,
    pub recon: Vec<f32>,
    pub psnr: f64,
    pub noisy_psnr: f64,
}

/// `panels/sigma_panel_*.png`: one image across every level, noisy above reconstruction, the
/// PSNR under each.
pub fn sigma_panel(path: &Path, title: &str, clean: &[f32], cols: &[PanelColumn], level_name: &str, hw: usize) -> Result<()> {
    let n = cols.len();
    let c = cell(hw);
    let top = 34 + 20;
    // The PSNR under each image sits in a band of its own, clear of the image below.
    let caption = 24;
    let w = LABEL_W + (n as u32 + 1) * (c + GAP) + GAP;
    let h = top + 2 * (c + GAP + caption) + GAP;
    let mut cv = Canvas::new(w.max(420), h);
    cv.text(title, 8, 8, 18.0, Anchor::TopLeft)?;
    cv.text("clean", (LABEL_W + c / 2) as i32, 34, 13.0, Anchor::TopCenter)?;
    cv.blit_grey(clean, hw, hw, LABEL_W, top, ZOOM);
    cv.text("noisy", 8, (top + c / 2) as i32, 15.0, Anchor::MiddleLeft)?;
    cv.text("reconstructed", 8, (top + c + GAP + caption + c / 2) as i32, 15.0, Anchor::MiddleLeft)?;
    for (i, col) in cols.iter().enumerate() {
        let x = LABEL_W + (i as u32 + 1) * (c + GAP);
        cv.text(&format!("{level_name} {}", col.level), (x + c / 2) as i32, 34, 13.0, Anchor::TopCenter)?;
        cv.blit_grey(&col.noisy, hw, hw, x, top, ZOOM);
        cv.text(&format!("{:.1} dB", col.noisy_psnr), (x + c / 2) as i32, (top + c + 5) as i32, 12.0, Anchor::TopCenter)?;
        let y2 = top + c + GAP + caption;
        cv.blit_grey(&col.recon, hw, hw, x, y2, ZOOM);
        cv.text(&format!("{:.1} dB", col.psnr), (x + c / 2) as i32, (y2 + c + 5) as i32, 12.0, Anchor::TopCenter)?;
    }
    cv.save(path)
}

/// `grids/best_cases.png` / `worst_cases.png`: n images (clean, noisy, reconstructed) with the
/// reconstruction's PSNR under each.
pub fn cases(path: &Path, title: &str, [clean, noisy, recon]: [&[f32]; 3], psnr: &[f64], hw: usize) -> Result<()> {
    let n = psnr.len();
    let caps: Vec<String> = psnr.iter().map(|p| format!("{p:.1} dB")).collect();
    let rows = [("clean".to_string(), clean, None), ("noisy".to_string(), noisy, None), ("reconstructed".to_string(), recon, Some(caps))];
    labelled_rows(title, &rows, n, hw)?.save(path)
}

/// `grids/diversity_collapse_demo.png`: one clean image, N noise draws of it, and the N
/// reconstructions (nearly the same image: the model returns one answer, not a distribution).
pub fn diversity(path: &Path, title: &str, clean: &[f32], noisy: &[f32], recon: &[f32], draws: usize, hw: usize) -> Result<()> {
    let rows = [("clean".to_string(), clean, None), ("noise draws".to_string(), noisy, None), ("reconstructions".to_string(), recon, None)];
    labelled_rows(title, &rows, draws, hw)?.save(path)
}

/// A [lo, hi] range around values, padded, for an axis.
fn range(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = v.filter(|x| x.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}

/// Tick positions (log10 values) within [lo, hi] (log10 values): 1, 2 and 5 times each power of
/// ten, or only the powers of ten when the range spans more than three decades.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Vec::new();
    }
    let marks: &[f64] = if hi - lo > 3.0 { &[1.0] } else { &[1.0, 2.0, 5.0] };
    let mut out = Vec::new();
    for k in lo.floor() as i32..=hi.ceil() as i32 {
        for m in marks {
            let v = (m * 10f64.powi(k)).log10();
            if v >= lo && v <= hi {
                out.push(v);
            }
        }
    }
    out
}

/// One training log row: (step, loss, lr).
pub type TrainPoint = (f64, f64, f64);
/// One validation row: (epoch, level, PSNR, noisy PSNR).
pub type ValPoint = (f64, f32, f64, f64);

/// `reports/training_curves.png`: train loss (log scale) and lr against the step, validation
/// PSNR per level against the epoch (dashed: the noisy input's).
pub fn training_curves(path: &Path, title: &str, train: &[TrainPoint], val: &[ValPoint]) -> Result<()> {
    fonts()?;
    let (w, h) = (1500u32, 460u32);
    let mut cv = Canvas::new(w, h);
    {
        let root = BitMapBackend::with_buffer(&mut cv.buf, (w, h)).into_drawing_area();
        let (head, body) = root.split_vertically(36);
        head.draw(&Text::new(title.to_string(), (8, 8), (SANS, 18).into_font())).map_err(pe)?;
        let panels = body.split_evenly((1, 3));
        let steps = range(train.iter().map(|t| t.0));
        let steps = (steps.0.max(0.0), steps.1);
        // The loss on a log scale, drawn as log10(loss) on a linear axis with its ticks drawn
        // here at 1, 2 and 5 times the powers of ten: plotters' own log axis can put two ticks a
        // hair apart near a power of ten and print the same label twice.
        let pos: Vec<f64> = train.iter().map(|t| t.1).filter(|v| *v > 0.0 && v.is_finite()).collect();
        let (llo, lhi) = (pos.iter().cloned().fold(f64::INFINITY, f64::min), pos.iter().cloned().fold(0.0, f64::max));
        let (llo, lhi) = if pos.is_empty() { (-3.0, 0.0) } else { ((llo * 0.8).log10(), (lhi * 1.25).log10()) };
        let mut ch = ChartBuilder::on(&panels[0])
            .caption("training loss (log scale)", (SANS, 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(steps.0..steps.1, llo..lhi)
            .map_err(pe)?;
        ch.configure_mesh()
            .x_desc("step")
            .y_desc("loss")
            .y_labels(0)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(WHITE)
            .label_style((SANS, 12))
            .draw()
            .map_err(pe)?;
        let label = TextStyle::from((SANS, 12).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
        for v in log_ticks(llo, lhi) {
            ch.draw_series(LineSeries::new(vec![(steps.0, v), (steps.1, v)], RGBColor(205, 205, 205))).map_err(pe)?;
            let (px, py) = ch.backend_coord(&(steps.0, v));
            root.draw(&Text::new(format!("{:.0e}", 10f64.powf(v)), (px - 6, py), label.clone())).map_err(pe)?;
        }
        ch.draw_series(LineSeries::new(train.iter().filter(|t| t.1 > 0.0 && t.1.is_finite()).map(|t| (t.0, t.1.log10())), &series_colour(0)))
            .map_err(pe)?;

        let epochs = range(val.iter().map(|v| v.0));
        let ps = range(val.iter().flat_map(|v| [v.2, v.3]));
        let mut ch = ChartBuilder::on(&panels[1])
            .caption("validation PSNR (dashed: noisy input)", (SANS, 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(epochs.0..epochs.1, ps.0..ps.1)
            .map_err(pe)?;
        let n_epochs = (epochs.1 - epochs.0).round().max(1.0) as usize;
        ch.configure_mesh()
            .x_desc("epoch")
            .y_desc("PSNR dB")
            .x_labels(n_epochs.min(12) + 1)
            .x_label_formatter(&|v| if (v - v.round()).abs() < 1e-6 { format!("{v:.0}") } else { String::new() })
            .y_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(WHITE)
            .label_style((SANS, 12))
            .draw()
            .map_err(pe)?;
        let mut levels: Vec<f32> = val.iter().map(|v| v.1).collect();
        levels.sort_by(|a, b| a.total_cmp(b));
        levels.dedup();
        for (i, l) in levels.iter().enumerate() {
            let col = series_colour(i);
            let pts: Vec<(f64, f64)> = val.iter().filter(|v| v.1 == *l).map(|v| (v.0, v.2)).collect();
            ch.draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))
                .map_err(pe)?
                .label(format!("sigma {l}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2)));
            ch.draw_series(pts.iter().map(|p| Circle::new(*p, 3, col.filled()))).map_err(pe)?;
            let noisy: Vec<(f64, f64)> = val.iter().filter(|v| v.1 == *l).map(|v| (v.0, v.3)).collect();
            ch.draw_series(DashedLineSeries::new(noisy, 6, 4, col.stroke_width(1))).map_err(pe)?;
        }
        ch.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((SANS, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(pe)?;

        let lrs = range(train.iter().map(|t| t.2));
        let mut ch = ChartBuilder::on(&panels[2])
            .caption("learning rate", (SANS, 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(72)
            .build_cartesian_2d(steps.0..steps.1, lrs.0.max(0.0)..lrs.1)
            .map_err(pe)?;
        ch.configure_mesh()
            .x_desc("step")
            .y_desc("lr")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.1e}"))
            .light_line_style(WHITE)
            .label_style((SANS, 12))
            .draw()
            .map_err(pe)?;
        ch.draw_series(LineSeries::new(train.iter().map(|t| (t.0, t.2)), &series_colour(2))).map_err(pe)?;
        root.present().map_err(pe)?;
    }
    cv.save(path)
}

/// `reports/frequency_analysis.png`: the mean log-magnitude spectra (fftshifted) of the clean
/// images and of the reconstructions at each level, on one colour scale, and the radial
/// profiles (log scale).
pub fn frequency(
    path: &Path,
    title: &str,
    clean_log: &[f32],
    recon_logs: &[(f32, Vec<f32>)],
    hw: usize,
    clean_prof: &[f64],
    recon_profs: &[(f32, Vec<f64>)],
) -> Result<()> {
    fonts()?;
    let c = 4 * hw as u32;
    let n = 1 + recon_logs.len() as u32;
    let maps_w = 16 + n * (c + 12);
    let (w, h) = (maps_w.max(700), 36 + 24 + c + 24 + 380);
    let mut cv = Canvas::new(w, h);
    cv.text(title, 8, 8, 18.0, Anchor::TopLeft)?;
    let (lo, hi) = clean_log
        .iter()
        .chain(recon_logs.iter().flat_map(|(_, v)| v.iter()))
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), x| (a.min(*x), b.max(*x)));
    let top = 36 + 22;
    for (i, (label, img)) in std::iter::once(("clean".to_string(), clean_log))
        .chain(recon_logs.iter().map(|(l, v)| (format!("recon, sigma {l}"), v.as_slice())))
        .enumerate()
    {
        let x = 16 + i as u32 * (c + 12);
        cv.text(&label, (x + c / 2) as i32, 38, 13.0, Anchor::TopCenter)?;
        cv.blit_map(img, hw, hw, x, top, 4, lo, hi);
    }
    cv.text(
        &format!("mean log(1 + |F|), fftshifted (zero frequency at the centre); colour scale {lo:.2} .. {hi:.2}"),
        16,
        (top + c + 4) as i32,
        12.0,
        Anchor::TopLeft,
    )?;
    {
        let root = BitMapBackend::with_buffer(&mut cv.buf, (w, h)).into_drawing_area();
        let (_, bottom) = root.split_vertically(top + c + 24);
        let all: Vec<f64> = clean_prof.iter().chain(recon_profs.iter().flat_map(|(_, v)| v.iter())).cloned().filter(|v| *v > 0.0).collect();
        let (ylo, yhi) = (all.iter().cloned().fold(f64::INFINITY, f64::min).max(1e-6) * 0.8, all.iter().cloned().fold(1e-6, f64::max) * 1.25);
        let xmax = clean_prof.len().max(2) as f64 - 1.0;
        let mut ch = ChartBuilder::on(&bottom)
            .caption("radial profile: mean |F| per unit-width ring", (SANS, 15))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..xmax, (ylo..yhi).log_scale())
            .map_err(pe)?;
        ch.configure_mesh()
            .x_desc("frequency (cycles per image)")
            .y_desc("mean |F|")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .light_line_style(WHITE)
            .label_style((SANS, 12))
            .draw()
            .map_err(pe)?;
        let pts = |v: &[f64]| v.iter().enumerate().filter(|(_, y)| **y > 0.0).map(|(i, y)| (i as f64, *y)).collect::<Vec<_>>();
        ch.draw_series(LineSeries::new(pts(clean_prof), BLACK.stroke_width(3)))
            .map_err(pe)?
            .label("clean")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(3)));
        for (i, (l, v)) in recon_profs.iter().enumerate() {
            let col = series_colour(i);
            ch.draw_series(LineSeries::new(pts(v), col.stroke_width(2)))
                .map_err(pe)?
                .label(format!("reconstruction, sigma {l}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2)));
        }
        ch.configure_series_labels().label_font((SANS, 12)).background_style(WHITE.mix(0.85)).border_style(BLACK).draw().map_err(pe)?;
        root.present().map_err(pe)?;
    }
    cv.save(path)
}

/// `compare runs`: validation PSNR per epoch of several runs, one panel per level.
pub fn compare_curves(path: &Path, runs: &[(String, Vec<ValPoint>)]) -> Result<()> {
    fonts()?;
    let mut levels: Vec<f32> = runs.iter().flat_map(|(_, v)| v.iter().map(|p| p.1)).collect();
    levels.sort_by(|a, b| a.total_cmp(b));
    levels.dedup();
    let n = levels.len().max(1) as u32;
    let (w, h) = (460 * n.min(4), 40 + 400 * n.div_ceil(4));
    let mut cv = Canvas::new(w, h);
    {
        let root = BitMapBackend::with_buffer(&mut cv.buf, (w, h)).into_drawing_area();
        let (head, body) = root.split_vertically(36);
        head.draw(&Text::new("validation PSNR per epoch, by run".to_string(), (8, 8), (SANS, 18).into_font())).map_err(pe)?;
        let panels = body.split_evenly((n.div_ceil(4) as usize, n.min(4) as usize));
        for (l, panel) in levels.iter().zip(panels.iter()) {
            let pts: Vec<&ValPoint> = runs.iter().flat_map(|(_, v)| v.iter()).filter(|p| p.1 == *l).collect();
            let ex = range(pts.iter().map(|p| p.0));
            let ps = range(pts.iter().map(|p| p.2));
            let mut ch = ChartBuilder::on(panel)
                .caption(format!("sigma {l}"), (SANS, 15))
                .margin(10)
                .x_label_area_size(34)
                .y_label_area_size(52)
                .build_cartesian_2d(ex.0..ex.1, ps.0..ps.1)
                .map_err(pe)?;
            ch.configure_mesh()
                .x_desc("epoch")
                .y_desc("PSNR dB")
                .x_label_formatter(&|v| if (v - v.round()).abs() < 1e-6 { format!("{v:.0}") } else { String::new() })
                .light_line_style(WHITE)
                .label_style((SANS, 12))
                .draw()
                .map_err(pe)?;
            for (i, (name, v)) in runs.iter().enumerate() {
                let col = series_colour(i);
                let line: Vec<(f64, f64)> = v.iter().filter(|p| p.1 == *l).map(|p| (p.0, p.2)).collect();
                ch.draw_series(LineSeries::new(line, col.stroke_width(2)))
                    .map_err(pe)?
                    .label(name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2)));
            }
            ch.configure_series_labels().label_font((SANS, 11)).background_style(WHITE.mix(0.85)).border_style(BLACK).draw().map_err(pe)?;
        }
        root.present().map_err(pe)?;
    }
    cv.save(path)
}

#[cfg(test)]
mod tests {
    /// The loss axis's ticks: 1-2-5 per decade inside the range, each label printed once.
    #[test]
    fn log_ticks_are_distinct_round_values() {
        let t = super::log_ticks((4e-3f64).log10(), (0.13f64).log10());
        let labels: Vec<String> = t.iter().map(|v| format!("{:.0e}", 10f64.powf(*v))).collect();
        assert_eq!(labels, ["5e-3", "1e-2", "2e-2", "5e-2", "1e-1"]);
        assert_eq!(super::log_ticks(-6.0, 0.0).len(), 7);
        assert!(super::log_ticks(1.0, 1.0).is_empty());
    }
}
