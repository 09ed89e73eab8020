//! CPU twin of shaders/fft.wgsl (f64): the 2-D DFT by its definition (no fast algorithm: the
//! reference the Stockham kernel is checked against), fftshifted magnitude, radial profile and
//! batch mean of log-magnitude.

/// (re, im) [b, h, w] of the 2-D DFT of real x [b, h, w], as numpy.fft.fft2.
pub fn dft2(x: &[f64], b: usize, h: usize, w: usize) -> (Vec<f64>, Vec<f64>) {
    let tw = |k: usize, n: usize| {
        let a = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
        (a.cos(), a.sin())
    };
    let (mut re, mut im) = (vec![0.0; b * h * w], vec![0.0; b * h * w]);
    for img in 0..b {
        let at = |y: usize, x_: usize| img * h * w + y * w + x_;
        // Rows, then columns.
        let (mut rr, mut ri) = (vec![0.0; h * w], vec![0.0; h * w]);
        for y in 0..h {
            for u in 0..w {
                for x_ in 0..w {
                    let (c, s) = tw(u * x_ % w, w);
                    rr[y * w + u] += x[at(y, x_)] * c;
                    ri[y * w + u] += x[at(y, x_)] * s;
                }
            }
        }
        for v in 0..h {
            for u in 0..w {
                let (mut sr, mut si) = (0.0, 0.0);
                for y in 0..h {
                    let (c, s) = tw(v * y % h, h);
                    sr += rr[y * w + u] * c - ri[y * w + u] * s;
                    si += rr[y * w + u] * s + ri[y * w + u] * c;
                }
                re[at(v, u)] = sr;
                im[at(v, u)] = si;
            }
        }
    }
    (re, im)
}

/// |X| with fftshift: the zero frequency at (h/2, w/2).
pub fn magnitude(re: &[f64], im: &[f64], b: usize, h: usize, w: usize) -> Vec<f64> {
    let mut out = vec![0.0; b * h * w];
    for img in 0..b {
        for y in 0..h {
            for x in 0..w {
                let (sy, sx) = ((y + h - h / 2) % h, (x + w - w / 2) % w);
                let k = img * h * w + sy * w + sx;
                out[img * h * w + y * w + x] = (re[k] * re[k] + im[k] * im[k]).sqrt();
            }
        }
    }
    out
}

/// Unit-width radial bins up to the farthest corner from (h/2, w/2).
pub fn bins(h: usize, w: usize) -> usize {
    let (cy, cx) = (h / 2, w / 2);
    ((cy * cy + cx * cx) as f64).sqrt().floor() as usize + 1
}

/// Mean magnitude per ring k^2 <= d^2 < (k+1)^2 around (h/2, w/2); 0 for an empty ring.
pub fn radial(mag: &[f64], b: usize, h: usize, w: usize) -> Vec<f64> {
    let nb = bins(h, w);
    let (cy, cx) = ((h / 2) as i64, (w / 2) as i64);
    let mut out = vec![0.0; b * nb];
    for img in 0..b {
        let (mut s, mut c) = (vec![0.0; nb], vec![0usize; nb]);
        for y in 0..h {
            for x in 0..w {
                let d2 = ((y as i64 - cy).pow(2) + (x as i64 - cx).pow(2)) as usize;
                let k = (0..nb).find(|k| k * k <= d2 && d2 < (k + 1) * (k + 1)).unwrap_or(nb - 1);
                s[k] += mag[img * h * w + y * w + x];
                c[k] += 1;
            }
        }
        for k in 0..nb {
            out[img * nb + k] = if c[k] > 0 { s[k] / c[k] as f64 } else { 0.0 };
        }
    }
    out
}

/// scale * sum over the batch of log(1 + mag), per pixel.
pub fn mean_log(mag: &[f64], b: usize, hw: usize, scale: f64) -> Vec<f64> {
    (0..hw).map(|i| scale * (0..b).map(|img| (1.0 + mag[img * hw + i]).ln()).sum::<f64>()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition against numpy.fft.fft2 on the fixture's images (tools/metrics_reference.py).
    #[test]
    fn dft2_matches_numpy() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics_reference.safetensors");
        let f = crate::checkpoint::read(&path).expect("metrics_reference fixture");
        let get = |n: &str| -> (Vec<usize>, Vec<f64>) {
            let (_, s, d) = f.tensors.get(n).unwrap_or_else(|| panic!("fixture lacks {n}"));
            (s.clone(), bytemuck::pod_collect_to_vec(d))
        };
        for (h, w) in [(28, 28), (32, 32), (27, 31), (64, 64), (1, 1)] {
            let (shape, x) = get(&format!("fft.{h}x{w}.x"));
            let (re, im) = dft2(&x, shape[0], h, w);
            let (_, wr) = get(&format!("fft.{h}x{w}.re"));
            let (_, wi) = get(&format!("fft.{h}x{w}.im"));
            let scale = wr.iter().chain(&wi).fold(0.0f64, |m, v| m.max(v.abs()));
            for k in 0..re.len() {
                assert!(
                    (re[k] - wr[k]).abs() < 1e-9 * scale && (im[k] - wi[k]).abs() < 1e-9 * scale,
                    "{h}x{w} [{k}]: ({}, {}) vs numpy ({}, {})",
                    re[k],
                    im[k],
                    wr[k],
                    wi[k]
                );
            }
        }
    }

    #[test]
    fn shift_and_rings() {
        // A 4x5 spectrum: the zero frequency moves to (2, 2).
        let re: Vec<f64> = (0..20).map(|i| i as f64).collect();
        let m = magnitude(&re, &[0.0; 20], 1, 4, 5);
        assert_eq!(m[2 * 5 + 2], 0.0);
        assert_eq!(m[0], re[2 * 5 + 3]);
        assert_eq!(bins(28, 28), 20);
        assert_eq!(bins(1, 1), 1);
        let r = radial(&vec![1.0; 28 * 28], 1, 28, 28);
        assert!(r.iter().all(|v| *v == 1.0), "{r:?}");
    }
}
