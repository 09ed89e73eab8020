//! Figures and the HTML report. Every figure is drawn into an RGB buffer: images blitted pixel
//! for pixel, text and curves by `plotters` with the DejaVu Sans font embedded in the binary
//! (a CI machine has no system fonts), then written as PNG through `image`, atomically.

pub mod demo;
pub mod figures;
pub mod html;
pub mod jobs;
pub mod study;

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};

/// DejaVu Sans (Bitstream Vera license, fonts/LICENSE-DejaVu.txt).
const FONT: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");
pub const SANS: &str = "sans-serif";

/// Register the embedded font as plotters' sans-serif, once.
pub fn fonts() -> Result<()> {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *DONE.get_or_init(|| plotters::style::register_font(SANS, FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(Error::Msg("the embedded DejaVu Sans font did not load".into())) }
}

/// A plotters error as ours.
pub fn pe<E: std::fmt::Debug>(e: E) -> Error {
    Error::Msg(format!("drawing a figure: {e:?}"))
}

/// An RGB image being composed.
pub struct Canvas {
    pub w: u32,
    pub h: u32,
    pub buf: Vec<u8>,
}

/// Where a text's (x, y) sits on it.
#[derive(Clone, Copy)]
pub enum Anchor {
    TopLeft,
    TopCenter,
    MiddleLeft,
}

impl Canvas {
    pub fn new(w: u32, h: u32) -> Canvas {
        Canvas { w, h, buf: vec![255; (w * h * 3) as usize] }
    }

    /// An h x w image in [0, 1] (clamped; grey) at (x0, y0), each pixel a zoom x zoom block.
    pub fn blit_grey(&mut self, img: &[f32], h: usize, w: usize, x0: u32, y0: u32, zoom: u32) {
        self.blit(h, w, x0, y0, zoom, |i| {
            let v = (img[i].clamp(0.0, 1.0) * 255.0).round() as u8;
            [v, v, v]
        });
    }

    /// Like [`Canvas::blit_grey`] with a colour map over [lo, hi].
    #[allow(clippy::too_many_arguments)]
    pub fn blit_map(&mut self, img: &[f32], h: usize, w: usize, x0: u32, y0: u32, zoom: u32, lo: f32, hi: f32) {
        self.blit(h, w, x0, y0, zoom, |i| colormap(((img[i] - lo) / (hi - lo).max(1e-12)).clamp(0.0, 1.0)));
    }

    fn blit(&mut self, h: usize, w: usize, x0: u32, y0: u32, zoom: u32, px: impl Fn(usize) -> [u8; 3]) {
        for y in 0..h {
            for x in 0..w {
                let c = px(y * w + x);
                for dy in 0..zoom {
                    for dx in 0..zoom {
                        let (cx, cy) = (x0 + x as u32 * zoom + dx, y0 + y as u32 * zoom + dy);
                        if cx < self.w && cy < self.h {
                            let k = ((cy * self.w + cx) * 3) as usize;
                            self.buf[k..k + 3].copy_from_slice(&c);
                        }
                    }
                }
            }
        }
    }

    /// Text of `size` px at (x, y).
    pub fn text(&mut self, s: &str, x: i32, y: i32, size: f64, anchor: Anchor) -> Result<()> {
        fonts()?;
        let (w, h) = (self.w, self.h);
        let root = BitMapBackend::with_buffer(&mut self.buf, (w, h)).into_drawing_area();
        let pos = match anchor {
            Anchor::TopLeft => Pos::new(HPos::Left, VPos::Top),
            Anchor::TopCenter => Pos::new(HPos::Center, VPos::Top),
            Anchor::MiddleLeft => Pos::new(HPos::Left, VPos::Center),
        };
        let style = TextStyle::from((SANS, size).into_font()).color(&BLACK).pos(pos);
        root.draw(&Text::new(s.to_string(), (x, y), style)).map_err(pe)?;
        root.present().map_err(pe)
    }

    pub fn png(&self) -> Result<Vec<u8>> {
        let img = image::RgbImage::from_raw(self.w, self.h, self.buf.clone()).ok_or_else(|| Error::Msg("figure buffer size".into()))?;
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).map_err(|e| Error::Msg(format!("encoding a PNG: {e}")))?;
        Ok(out.into_inner())
    }

    /// Write as PNG, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::checkpoint::write_file(path, &self.png()?)
    }
}

/// A perceptually ordered map from [0, 1] to colour (dark blue -> teal -> yellow, like viridis).
pub fn colormap(t: f32) -> [u8; 3] {
    const STOPS: [[f32; 3]; 5] = [[68.0, 1.0, 84.0], [59.0, 82.0, 139.0], [33.0, 145.0, 140.0], [94.0, 201.0, 98.0], [253.0, 231.0, 37.0]];
    let x = t * (STOPS.len() - 1) as f32;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f32;
    let mut c = [0u8; 3];
    for k in 0..3 {
        c[k] = (STOPS[i][k] + f * (STOPS[i + 1][k] - STOPS[i][k])).round() as u8;
    }
    c
}

/// The colours of a figure's series, in order.
pub fn series_colour(i: usize) -> RGBColor {
    const C: [(u8, u8, u8); 8] =
        [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194), (23, 190, 207)];
    let (r, g, b) = C[i % C.len()];
    RGBColor(r, g, b)
}
