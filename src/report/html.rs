//! outputs/reports/limitations_analysis.html: one self-contained page (figures embedded as data
//! URIs, no script, no external file) with the evaluation table beside the noisy baseline, the
//! limitation scores, and a short plain-language reading of each number.

use base64::Engine;

use crate::analysis::Limitations;
use crate::eval::EvalResults;

/// Escape text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An <img> with the PNG inline.
pub fn img(png: &[u8], alt: &str) -> String {
    format!("<img alt=\"{}\" src=\"data:image/png;base64,{}\">", esc(alt), base64::engine::general_purpose::STANDARD.encode(png))
}

fn pct(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

fn p_text(p: f64) -> String {
    if p < 1e-10 { "p < 1e-10".into() } else { format!("p = {p:.2e}") }
}

/// The page. `figures`: (title, PNG bytes, caption) in display order.
pub fn page(lim: &Limitations, eval: Option<&EvalResults>, figures: &[(String, Vec<u8>, String)]) -> String {
    let mut h = String::new();
    h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>dae: limitations analysis</title>\n<style>\n";
    h += "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\n";
    h += "table{border-collapse:collapse;margin:0.6em 0 1.2em}td,th{border:1px solid #ccc;padding:4px 9px;text-align:right}th{background:#f1f1f1}td:first-child,th:first-child{text-align:left}\n";
    h += "img{max-width:100%;border:1px solid #ddd;margin:0.4em 0}.reading{background:#f7f9fc;border-left:4px solid #4a78b5;padding:0.5em 0.9em;margin:0.5em 0 1.2em}\n";
    h += ".score{font-size:1.6em;font-weight:600}code{background:#f3f3f3;padding:0 3px}\n</style></head><body>\n";
    h += "<h1>Limitations of a denoising autoencoder</h1>\n";
    h += &format!(
        "<p>Checkpoint <code>{}</code> ({} weights), {} test images of {}, {} noise.</p>\n",
        esc(&lim.checkpoint),
        esc(&lim.weights),
        lim.n_images,
        esc(&lim.dataset),
        esc(&lim.noise)
    );
    h += &format!(
        "<p>Overall limitation score: <span class=\"score\">{:.3}</span> (the mean of the smoothing score {:.3}, the diversity collapse {:.3} and one minus the high-frequency ratio {:.3}; 0 would be a model that loses nothing, 1 one that loses everything).</p>\n",
        lim.overall_limitation_score, lim.smoothing_score, lim.diversity.collapse, lim.high_freq_ratio
    );

    h += "<h2>How good the denoiser is</h2>\n";
    if let Some(e) = eval {
        h += "<table><tr><th>level</th><th>PSNR dB</th><th>noisy input dB</th><th>gain dB</th><th>SSIM</th><th>noisy SSIM</th><th>LPIPS</th><th>noisy LPIPS</th></tr>\n";
        for r in &e.results {
            let lp = |v: Option<f64>| v.map_or("unavailable".to_string(), |x| format!("{x:.4}"));
            h += &format!(
                "<tr><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:+.2}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td><td>{}</td></tr>\n",
                r.sigma,
                r.psnr,
                r.noisy_psnr,
                r.psnr - r.noisy_psnr,
                r.ssim,
                r.noisy_ssim,
                lp(r.lpips),
                lp(r.noisy_lpips)
            );
        }
        h += "</table>\n";
    } else {
        h += "<table><tr><th>level</th><th>PSNR dB</th><th>noisy input dB</th><th>gain dB</th><th>SSIM</th><th>noisy SSIM</th></tr>\n";
        for b in &lim.baseline {
            h += &format!(
                "<tr><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:+.2}</td><td>{:.4}</td><td>{:.4}</td></tr>\n",
                b.sigma,
                b.psnr,
                b.noisy_psnr,
                b.psnr - b.noisy_psnr,
                b.ssim,
                b.noisy_ssim
            );
        }
        h += "</table>\n";
    }
    let worse: Vec<String> = lim.baseline.iter().filter(|b| b.psnr < b.noisy_psnr).map(|b| b.sigma.to_string()).collect();
    h += &format!(
        "<div class=\"reading\">PSNR is averaged per image (an exact image counts as 100 dB). {}</div>\n",
        if worse.is_empty() {
            "At every level the model's output is closer to the clean image than the noisy input is.".to_string()
        } else {
            format!("At level(s) {} the model is <b>worse than doing nothing</b>: the noisy input itself scores a higher PSNR.", worse.join(", "))
        }
    );

    h += "<h2>Over-smoothing</h2>\n<table><tr><th>level</th><th>hf_ratio</th><th>grad_ratio</th><th>smoothing score</th><th>Laplacian t (p)</th><th>gradient t (p)</th><th>images</th></tr>\n";
    for s in &lim.smoothing {
        h += &format!(
            "<tr><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.1} ({})</td><td>{:.1} ({})</td><td>{}</td></tr>\n",
            s.sigma,
            s.hf_ratio,
            s.grad_ratio,
            s.smoothing_score,
            s.hf_t,
            p_text(s.hf_p),
            s.grad_t,
            p_text(s.grad_p),
            s.images
        );
    }
    h += "</table>\n";
    for s in &lim.smoothing {
        let verdict = |r: f64, what: &str| {
            if r < 0.95 {
                format!("{} of the clean images' {what}: blurred", pct(r))
            } else if r <= 1.05 {
                format!("{} of the clean images' {what}: about the same", pct(r))
            } else {
                format!("{} of the clean images' {what}: more than the clean images have (residual noise or artefacts, not smoothing)", pct(r))
            }
        };
        // The ratios are means of per-image ratios; the t-tests compare the per-image values. A
        // few images with large ratios can put the mean ratio above 1 while most images lose
        // detail: say so where the two point in opposite directions.
        let mut disagree = String::new();
        for (what, ratio, t, recon, clean) in
            [("Laplacian", s.hf_ratio, s.hf_t, s.recon_hf, s.clean_hf), ("gradient", s.grad_ratio, s.grad_t, s.recon_grad, s.clean_grad)]
        {
            if (ratio - 1.0) * t < 0.0 && clean > 0.0 {
                disagree += &format!(
                    " For the {what} the mean of the per-image ratios ({ratio:.3}) and the t-test (t = {t:.1}) point in opposite directions: a few images with large ratios pull the mean; the ratio of the mean values is {:.3}.",
                    recon / clean
                );
            }
        }
        h += &format!(
            "<div class=\"reading\">At level {} the reconstructions have {} and {}. The paired t-tests ask whether the per-image differences are systematic ({} for the Laplacian, {} for the gradient; t below 0 means less than clean).{disagree}</div>\n",
            s.sigma,
            verdict(s.hf_ratio, "high-frequency energy (RMS of the Laplacian)"),
            verdict(s.grad_ratio, "edge strength (mean gradient magnitude)"),
            p_text(s.hf_p),
            p_text(s.grad_p)
        );
    }
    h += "<div class=\"reading\">Why a DAE blurs: trained with an L2 loss it predicts the mean of all clean images that could have produced the noisy input, and a mean is smoother than any one of them; the more noise, the more candidates it averages.</div>\n";

    h += "<h2>Frequency content</h2>\n<table><tr><th>level</th><th>high_freq_ratio</th></tr>\n";
    for (l, r) in &lim.frequency {
        h += &format!("<tr><td>{l}</td><td>{r:.3}</td></tr>\n");
    }
    h += "</table>\n";
    let hf = lim.high_freq_ratio;
    h += &format!(
        "<div class=\"reading\">The radial spectrum's last quarter (the finest detail an image of this size holds) carries on average {} of the clean images' energy in the reconstructions (mean over the levels). {}</div>\n",
        pct(hf),
        if hf < 0.95 {
            "Below 100% the model acts as a low-pass filter: fine detail is lost."
        } else if hf <= 1.05 {
            "About 100%: at these levels the model keeps the finest frequencies at their clean strength."
        } else {
            "Above 100%: the reconstructions carry more fine-scale energy than the clean digits, which is residual noise and artefacts (look at the highest levels in the table), not detail."
        }
    );

    let d = &lim.diversity;
    h += &format!(
        "<h2>Diversity collapse</h2>\n<p>{} test images, {} noise draws each at sigma {}: mean pairwise MSE of the outputs {:.3e} (of the noisy inputs {:.3e}); diversity score {:.4}; collapse {:.3}.</p>\n",
        d.images, d.draws, d.sigma, d.mean_pairwise_mse, d.input_pairwise_mse, d.diversity_score, d.collapse
    );
    h += &format!(
        "<div class=\"reading\">Different noise on the same image gives outputs only {:.1e} apart (MSE), against a noise variance of {:.2}: the model maps every noisy version to nearly one answer. A generative model would instead sample different plausible clean images; a denoising autoencoder is a deterministic function and cannot.</div>\n",
        d.mean_pairwise_mse,
        d.sigma * d.sigma
    );

    let m = &lim.mode_averaging;
    h += &format!(
        "<h2>Mode averaging</h2>\n<p>At sigma {}, the mean L2 distance from each of {} outputs to its nearest of {} training images is {:.3}; for the real test images it is {:.3}: ratio {:.3}.</p>\n",
        m.sigma, m.images, m.train_images, m.output_nn_distance, m.real_nn_distance, m.ratio
    );
    h += &format!(
        "<div class=\"reading\">{}</div>\n",
        if m.ratio > 1.0 {
            format!(
                "The outputs sit {:.0}% farther from any training image than real digits do: under heavy noise the model returns a blend between several plausible digits (a point between the modes of the data), not one of them.",
                100.0 * (m.ratio - 1.0)
            )
        } else {
            "The outputs are as close to real training images as real test images are: no sign of averaging between modes at this level.".to_string()
        }
    );

    h += "<h2>Figures</h2>\n";
    for (title, png, caption) in figures {
        h += &format!("<h3>{}</h3>\n{}\n<p>{}</p>\n", esc(title), img(png, title), esc(caption));
    }
    h += "<p><small>Written by dae. Definitions: SPEC section 5; JSON beside this page.</small></p>\n</body></html>\n";
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quick checkpoint's sigma-1 row: the mean per-image gradient ratio is above 1 while the
    /// paired t-test finds lower gradients; the page says they disagree and gives the ratio of
    /// the means. A row where both agree gets no such sentence.
    #[test]
    fn a_ratio_and_t_test_pointing_apart_are_explained() {
        let row = |sigma: f32, grad_ratio: f64, grad_t: f64| {
            format!(
                r#"{{"sigma": {sigma}, "hf_ratio": 0.88, "grad_ratio": {grad_ratio}, "smoothing_score": 0.12, "recon_hf": 0.3676, "clean_hf": 0.4234,
                "recon_grad": 0.1099, "clean_grad": 0.1112, "hf_t": -103.7, "hf_p": 0.0, "grad_t": {grad_t}, "grad_p": 1e-10, "images": 10000}}"#
            )
        };
        let json = format!(
            r#"{{"checkpoint": "c", "weights": "ema", "dataset": "MNIST", "noise": "gaussian", "n_images": 10000,
            "smoothing": [{}, {}], "smoothing_score": 0.1, "frequency": [[1.0, 0.91]], "high_freq_ratio": 0.95,
            "diversity": {{"sigma": 0.5, "images": 8, "draws": 16, "mean_pairwise_mse": 0.017, "input_pairwise_mse": 0.16, "diversity_score": 0.07, "collapse": 0.93}},
            "mode_averaging": {{"sigma": 1.0, "images": 500, "train_images": 60000, "output_nn_distance": 4.1, "real_nn_distance": 4.3, "ratio": 0.95}},
            "overall_limitation_score": 0.36, "baseline": []}}"#,
            row(1.0, 1.035, -6.5),
            row(0.1, 0.97, -41.0)
        );
        let lim: Limitations = serde_json::from_str(&json).unwrap();
        let html = page(&lim, None, &[]);
        assert_eq!(html.matches("point in opposite directions").count(), 1, "{html}");
        assert!(
            html.contains("mean of the per-image ratios (1.035) and the t-test (t = -6.5)") && html.contains("ratio of the mean values is 0.988"),
            "{html}"
        );
    }
}
