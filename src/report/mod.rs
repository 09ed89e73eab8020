//! Figures. So far: the reconstruction grid (rows clean | noisy | reconstructed), written as PNG.

use std::path::Path;

use crate::error::{Error, Result};

/// A grid of `rows` image rows (each `n` images of h x w in [0, 1]), 1 px gaps, scaled `zoom`x.
pub fn grid_png(path: &Path, rows: &[&[f32]], n: usize, h: usize, w: usize, zoom: usize) -> Result<()> {
    let gap = 1;
    let (cw, ch) = (n * (w + gap) + gap, rows.len() * (h + gap) + gap);
    let mut img = image::GrayImage::from_pixel((cw * zoom) as u32, (ch * zoom) as u32, image::Luma([128]));
    for (r, data) in rows.iter().enumerate() {
        for i in 0..n.min(data.len() / (h * w)) {
            for y in 0..h {
                for x in 0..w {
                    let v = (data[i * h * w + y * w + x].clamp(0.0, 1.0) * 255.0).round() as u8;
                    let (px, py) = (gap + i * (w + gap) + x, gap + r * (h + gap) + y);
                    for dy in 0..zoom {
                        for dx in 0..zoom {
                            img.put_pixel((px * zoom + dx) as u32, (py * zoom + dy) as u32, image::Luma([v]));
                        }
                    }
                }
            }
        }
    }
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::Msg(format!("cannot create {}: {e}", d.display())))?;
    }
    let tmp = path.with_extension("png.tmp");
    img.save_with_format(&tmp, image::ImageFormat::Png).map_err(|e| Error::Msg(format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::Msg(format!("cannot write {}: {e}", path.display())))
}
