//! outputs/reports/limitations_analysis.html: one self-contained page (figures embedded as data
//! URIs, no script, no external file) with the evaluation table beside the noisy baseline, the
//! limitation scores, and a short plain-language reading of each number.

use base64::Engine;

use crate::analysis::Limitations;
use crate::analysis::generation::Generation;
use crate::eval::EvalResults;
use crate::report::study::{Mismatch, Ood};

/// The sections of `dae report` beyond the limitations: each with its figure (PNG bytes).
#[derive(Default)]
pub struct Study {
    pub generation: Option<(Generation, Vec<u8>)>,
    pub ood: Option<(Ood, Option<Vec<u8>>)>,
    pub mismatch: Option<Mismatch>,
    /// Whether `demo.html` (the live denoiser) sits beside the page.
    pub demo: bool,
}

/// A table of the model's quality per level (level, PSNR, the noisy input's, the gain, SSIM, the
/// noisy input's) with `extra` columns after, each row's extra cells already formatted.
fn quality_table(extra: &[&str], rows: impl Iterator<Item = (f32, f64, f64, f64, f64, Vec<String>)>) -> String {
    let mut h = String::from("<table><tr><th>level</th><th>PSNR dB</th><th>noisy input dB</th><th>gain dB</th><th>SSIM</th><th>noisy SSIM</th>");
    for e in extra {
        h += &format!("<th>{e}</th>");
    }
    h += "</tr>\n";
    for (sigma, psnr, noisy_psnr, ssim, noisy_ssim, cells) in rows {
        h += &format!(
            "<tr><td>{sigma}</td><td>{psnr:.2}</td><td>{noisy_psnr:.2}</td><td>{:+.2}</td><td>{ssim:.4}</td><td>{noisy_ssim:.4}</td>",
            psnr - noisy_psnr
        );
        for c in cells {
            h += &format!("<td>{c}</td>");
        }
        h += "</tr>\n";
    }
    h + "</table>\n"
}

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

/// The page. `figures`: (title, PNG bytes, caption) in display order; consecutive figures with
/// one title share its heading (and a caption said once).
pub fn page(lim: &Limitations, eval: Option<&EvalResults>, figures: &[(String, Vec<u8>, String)], study: &Study) -> String {
    let mut h = String::new();
    h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>dae: limitations analysis</title>\n<style>\n";
    h += "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\n";
    h += "table{border-collapse:collapse;margin:0.6em 0 1.2em}td,th{border:1px solid #ccc;padding:4px 9px;text-align:right}th{background:#f1f1f1}td:first-child,th:first-child{text-align:left}\n";
    h += "img{max-width:100%;border:1px solid #ddd;margin:0.4em 0}.reading{background:#f7f9fc;border-left:4px solid #4a78b5;padding:0.5em 0.9em;margin:0.5em 0 1.2em}\n";
    h += ".score{font-size:1.6em;font-weight:600}code{background:#f3f3f3;padding:0 3px}\n</style></head><body>\n";
    h += "<h1>Limitations of a denoising autoencoder</h1>\n";
    let mut contents = vec![
        ("quality", "How good the denoiser is"),
        ("smoothing", "Over-smoothing"),
        ("frequency", "Frequency content"),
        ("diversity", "Diversity collapse"),
        ("modes", "Mode averaging"),
    ];
    if study.generation.is_some() {
        contents.push(("generation", "Generation from noise"));
    }
    if study.ood.is_some() {
        contents.push(("ood", "Out of distribution"));
    }
    if study.mismatch.is_some() {
        contents.push(("mismatch", "Noise-model mismatch"));
    }
    if !figures.is_empty() {
        contents.push(("figures", "Figures"));
    }
    h += "<nav><b>Contents</b><ol>";
    for (id, t) in &contents {
        h += &format!("<li><a href=\"#{id}\">{t}</a></li>");
    }
    h += "</ol></nav>\n";
    h += &format!(
        "<p>Checkpoint <code>{}</code> ({} weights), {} test images of {}, {} noise.</p>\n",
        esc(&lim.checkpoint),
        esc(&lim.weights),
        lim.n_images,
        esc(&lim.dataset),
        esc(&lim.noise)
    );
    if study.demo {
        h += "<p>Try the model yourself: <a href=\"demo.html\">demo.html</a> denoises a test image or a digit you draw, at the noise and level you choose, with these weights and the same WGSL kernels, on your browser's WebGPU (one self-contained file; no network).</p>\n";
    }
    h += &format!(
        "<p>Overall limitation score: <span class=\"score\">{:.3}</span> (the mean of the smoothing score {:.3}, the diversity collapse {:.3} and one minus the high-frequency ratio {:.3}; 0 would be a model that loses nothing, 1 one that loses everything).</p>\n",
        lim.overall_limitation_score, lim.smoothing_score, lim.diversity.collapse, lim.high_freq_ratio
    );

    h += "<h2 id=\"quality\">How good the denoiser is</h2>\n";
    if let Some(e) = eval {
        let lp = |v: Option<f64>| v.map_or("unavailable".to_string(), |x| format!("{x:.4}"));
        let rows = e.results.iter().map(|r| (r.sigma, r.psnr, r.noisy_psnr, r.ssim, r.noisy_ssim, vec![lp(r.lpips), lp(r.noisy_lpips)]));
        h += &quality_table(&["LPIPS", "noisy LPIPS"], rows);
    } else {
        h += &quality_table(&[], lim.baseline.iter().map(|b| (b.sigma, b.psnr, b.noisy_psnr, b.ssim, b.noisy_ssim, vec![])));
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

    h += "<h2 id=\"smoothing\">Over-smoothing</h2>\n<table><tr><th>level</th><th>hf_ratio</th><th>grad_ratio</th><th>smoothing score</th><th>Laplacian t (p)</th><th>gradient t (p)</th><th>reading</th><th>images</th></tr>\n";
    let verdict = |r: f64| {
        if r < 0.95 {
            "blurred"
        } else if r <= 1.05 {
            "about the same"
        } else {
            "more than clean (residual noise)"
        }
    };
    for s in &lim.smoothing {
        let reading = if verdict(s.hf_ratio) == verdict(s.grad_ratio) {
            verdict(s.hf_ratio).to_string()
        } else {
            format!("Laplacian: {}; gradient: {}", verdict(s.hf_ratio), verdict(s.grad_ratio))
        };
        h += &format!(
            "<tr><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.1} ({})</td><td>{:.1} ({})</td><td>{}</td><td>{}</td></tr>\n",
            s.sigma,
            s.hf_ratio,
            s.grad_ratio,
            s.smoothing_score,
            s.hf_t,
            p_text(s.hf_p),
            s.grad_t,
            p_text(s.grad_p),
            reading,
            s.images
        );
    }
    h += "</table>\n";
    // The ratios are means of per-image ratios; the t-tests compare the per-image values. A few
    // images with large ratios can put the mean ratio above 1 while most images lose detail:
    // say so where the two point in opposite directions.
    let mut disagree = String::new();
    for s in &lim.smoothing {
        for (what, ratio, t, recon, clean) in
            [("Laplacian", s.hf_ratio, s.hf_t, s.recon_hf, s.clean_hf), ("gradient", s.grad_ratio, s.grad_t, s.recon_grad, s.clean_grad)]
        {
            if (ratio - 1.0) * t < 0.0 && clean > 0.0 {
                disagree += &format!(
                    " At level {}, for the {what} the mean of the per-image ratios ({ratio:.3}) and the t-test (t = {t:.1}) point in opposite directions: a few images with large ratios pull the mean; the ratio of the mean values is {:.3}.",
                    s.sigma,
                    recon / clean
                );
            }
        }
    }
    h += &format!(
        "<div class=\"reading\">hf_ratio is the reconstructions' high-frequency energy (RMS of the Laplacian) as a fraction of the clean images'; grad_ratio the same for edge strength (mean gradient magnitude); both are per-image ratios averaged. Below 0.95 the reconstructions are blurred; above 1.05 they carry more fine structure than the clean digits, which is residual noise or artefacts, not detail. The paired t-tests ask whether the per-image differences are systematic (t below 0: less than clean).{disagree}</div>\n"
    );
    h += "<div class=\"reading\">Why a DAE blurs: trained with an L2 loss it predicts the mean of all clean images that could have produced the noisy input, and a mean is smoother than any one of them; the more noise, the more candidates it averages.</div>\n";

    h += "<h2 id=\"frequency\">Frequency content</h2>\n<table><tr><th>level</th><th>high_freq_ratio</th></tr>\n";
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
        "<h2 id=\"diversity\">Diversity collapse</h2>\n<p>{} test images, {} noise draws each at sigma {}: mean pairwise MSE of the outputs {:.3e} (of the noisy inputs {:.3e}); diversity score {:.4}; collapse {:.3}.</p>\n",
        d.images, d.draws, d.sigma, d.mean_pairwise_mse, d.input_pairwise_mse, d.diversity_score, d.collapse
    );
    h += &format!(
        "<div class=\"reading\">Different noise on the same image gives outputs only {:.1e} apart (MSE), against a noise variance of {:.2}: the model maps every noisy version to nearly one answer. A generative model would instead sample different plausible clean images; a denoising autoencoder is a deterministic function and cannot.</div>\n",
        d.mean_pairwise_mse,
        d.sigma * d.sigma
    );

    let m = &lim.mode_averaging;
    h += &format!(
        "<h2 id=\"modes\">Mode averaging</h2>\n<p>At sigma {}, the mean L2 distance from each of {} outputs to its nearest of {} training images is {:.3}; for the real test images it is {:.3}: ratio {:.3}.</p>\n",
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

    if let Some((g, png)) = &study.generation {
        h += &generation_section(g, png);
    }
    if let Some((o, png)) = &study.ood {
        h += &ood_section(o, png.as_deref());
    }
    if let Some(m) = &study.mismatch {
        h += &mismatch_section(m);
    }

    if !figures.is_empty() {
        h += "<h2 id=\"figures\">Figures</h2>\n";
    }
    let mut last: Option<(&str, &str)> = None;
    for (title, png, caption) in figures {
        if last.map(|l| l.0) != Some(title.as_str()) {
            h += &format!("<h3>{}</h3>\n<p>{}</p>\n", esc(title), esc(caption));
        } else if last.map(|l| l.1) != Some(caption.as_str()) {
            h += &format!("<p>{}</p>\n", esc(caption));
        }
        h += &format!("{}\n", img(png, title));
        last = Some((title, caption));
    }
    h += "<p><small>Written by dae. Definitions: SPEC section 5; JSON beside this page.</small></p>\n</body></html>\n";
    h
}

fn generation_section(g: &Generation, png: &[u8]) -> String {
    let mut h = String::from("<h2 id=\"generation\">Generation from noise</h2>\n");
    let sig = |v: &[f32]| v.iter().map(|s| format!("{s:.3}")).collect::<Vec<_>>().join(", ");
    h += &format!(
        "<p>A denoiser D trained on Gaussian noise of level sigma estimates the score of the noisy data, (D(x) - x) / sigma<sup>2</sup> (Tweedie; Vincent 2011), so one can try to generate by following it from noise. Two samplers, {} chains each, over {} levels (sigma {}; inside the training range, since D has no sigma input), {} updates per level, x clipped to [{}, {}] before every call of D, starting from {}:</p>\n<ul><li><b>annealed Langevin dynamics</b>: x &larr; x + a (D(x) - x) + sqrt(2a) sigma z with a = {}, then one last denoising D(x);</li><li><b>iterated denoising</b>: x &larr; D(x + sigma z).</li></ul>\n",
        g.chains,
        g.sigmas.len(),
        sig(&g.sigmas),
        g.steps_per_level,
        g.clip[0],
        g.clip[1],
        esc(&g.start),
        g.step_size
    );
    h += &format!(
        "<p>A sample counts as <b>{}-like</b> only if each of five features lies inside the window ({:.1}% to {:.1}% quantiles) that {} real test images span: the L2 distance to the nearest of {} training images ({:.2} to {:.2}; alone it is unsound: a blank image passes), the class margin, how much farther the nearest training image of the second-closest class is ({:.2} to {:.2}; a blend of strokes sits between classes), the ink mass (mean pixel {:.3} to {:.3}), the contrast (pixel standard deviation {:.3} to {:.3}) and the edge sharpness (mean gradient magnitude {:.3} to {:.3}; blurred digits lack it). {:.0}% of those reference images pass all five; the held-out real test images below are the fair comparison.</p>\n",
        esc(&g.item),
        100.0 * g.window_quantile,
        100.0 * (1.0 - g.window_quantile),
        g.reference_images,
        g.train_images,
        g.windows.nn.lo,
        g.windows.nn.hi,
        g.windows.margin.lo,
        g.windows.margin.hi,
        g.windows.ink.lo,
        g.windows.ink.hi,
        g.windows.contrast.lo,
        g.windows.contrast.hi,
        g.windows.sharpness.lo,
        g.windows.sharpness.hi,
        100.0 * g.reference_digit_like
    );
    h += &format!(
        "<table><tr><th>set</th><th>images</th><th>nearest training image (mean L2)</th><th>class margin</th><th>pairwise distance (mean L2)</th><th>{}-like</th><th>nearest ok</th><th>margin ok</th><th>ink ok</th><th>contrast ok</th><th>sharpness ok</th></tr>\n",
        esc(&g.item)
    );
    for s in &g.sets {
        h += &format!(
            "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td><b>{}</b></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&s.name),
            s.images,
            s.mean_nn,
            s.mean_margin,
            s.mean_pairwise,
            pct(s.digit_like),
            pct(s.pass_nn),
            pct(s.pass_margin),
            pct(s.pass_ink),
            pct(s.pass_contrast),
            pct(s.pass_sharpness)
        );
    }
    h += "</table>\n";
    h +=
        &format!("<p>Real test images: mean nearest-training distance {:.3} over the {} reference images.</p>\n", g.reference_nn, g.reference_images);
    h += &img(png, "generation attempts");
    h += "\n";
    let real = g.sets.iter().find(|s| s.name.starts_with("real test images"));
    let mut reading = String::new();
    for s in g.sets.iter().take(2) {
        reading += &format!(
            "{}: {} of the final samples are {}-like (real held-out test images: {}); their mean distance to the nearest training image is {:.2} against {:.2} for real test images, and two samples are on average {:.2} apart ({}). ",
            esc(&s.name),
            pct(s.digit_like),
            esc(&g.item),
            real.map_or("-".to_string(), |r| pct(r.digit_like)),
            s.mean_nn,
            g.reference_nn,
            s.mean_pairwise,
            match real {
                Some(r) if s.mean_pairwise < 0.5 * r.mean_pairwise => "the chains collapse toward a few images".to_string(),
                Some(r) => format!("real test images {:.2} apart: the chains do not collapse to one image", r.mean_pairwise),
                None => String::new(),
            }
        );
    }
    let best = g.sets.iter().take(2).map(|s| s.digit_like).fold(0.0, f64::max);
    let item = esc(&g.item);
    reading += &if best > 0.0 {
        format!(
            "So the score hidden in an unconditioned DAE is real: followed from noise it does produce some samples that pass as {item}s by every measure here, and the figure shows what the rest are (shapes and blends that sit between classes and farther from every training image than real {item}s do). It is a poor generator because one network with no noise-level input has to serve every sigma, and because nothing steers the chains toward the data's proportions. A noise-conditioned score model (NCSN, Song and Ermon 2019) gives D the sigma as input and trains it over a wide range down to small noise; a diffusion model (DDPM, Ho et al. 2020) does the same with a fixed forward process and a learned reverse step. That is the step after this project."
        )
    } else {
        format!(
            "No final sample passes as a {item}: followed from noise, the denoiser's implied score leads to shapes and blends, not {item}s. A noise-conditioned score model (NCSN, Song and Ermon 2019) gives the network the sigma as input and trains it over a wide range down to small noise; a diffusion model (DDPM, Ho et al. 2020) does the same with a fixed forward process and a learned reverse step. That is the step after this project."
        )
    };
    h += &format!("<div class=\"reading\">{reading}</div>\n");
    h
}

fn ood_section(o: &Ood, png: Option<&[u8]>) -> String {
    let mut h = format!("<h2 id=\"ood\">Out of distribution: a {} model on {}</h2>\n", esc(&o.trained_on), esc(&o.dataset));
    if let Some(why) = &o.unavailable {
        h += &format!(
            "<p><b>Unavailable</b>: the {} test files could not be had from <code>{}</code> ({}). Put the four IDX files there, or name their folder with <code>--ood-data-dir</code> or <code>eval.ood_root</code>, and run the report again.</p>\n",
            esc(&o.dataset),
            esc(&o.folder),
            esc(why)
        );
        return h;
    }
    h += &format!(
        "<p>The first {} {} test images, {} noise at each level, the same keyed noise as the evaluation.</p>\n",
        o.images,
        esc(&o.dataset),
        esc(&o.noise)
    );
    let opt = |v: Option<f64>, d: usize| v.map_or("-".to_string(), |x| format!("{x:.d$}"));
    let rows = o.rows.iter().map(|r| (r.sigma, r.psnr, r.noisy_psnr, r.ssim, r.noisy_ssim, vec![opt(r.in_dist_psnr, 2), opt(r.in_dist_ssim, 4)]));
    h += &quality_table(&["own test set PSNR dB", "own test set SSIM"], rows);
    if let Some(p) = png {
        h += &img(p, "out-of-distribution reconstructions");
        h += "\n";
    }
    let worse: Vec<String> = o.rows.iter().filter(|r| r.psnr < r.noisy_psnr).map(|r| r.sigma.to_string()).collect();
    let losses: Vec<(f32, f64)> = o.rows.iter().filter_map(|r| r.in_dist_psnr.map(|i| (r.sigma, i - r.psnr))).collect();
    let mean_loss = crate::eval::mean(losses.iter().map(|l| l.1));
    let (ood, own) = (esc(&o.dataset), esc(&o.trained_on));
    let mut reading = String::new();
    if !losses.is_empty() {
        reading += &format!(
            "Against its own test set the model loses {} (mean {:.1} dB; a negative loss is a gain). ",
            losses.iter().map(|(s, l)| format!("{l:.1} dB at {s}")).collect::<Vec<_>>().join(", "),
            mean_loss
        );
    }
    reading += &if worse.is_empty() {
        "It still beats the noisy input at every level here. ".to_string()
    } else {
        format!(
            "At level(s) {} it is <b>worse than doing nothing</b>: the noisy input scores a higher PSNR than the reconstruction. ",
            worse.join(", ")
        )
    };
    reading += &if mean_loss > 1.0 {
        format!(
            "A denoising autoencoder does not learn \"denoising\" in general: it learns to project onto the manifold of its training images. Images from elsewhere are pulled toward what the model knows (in the reconstructed rows {ood} shapes turn into {own}-like strokes and blobs), so their own detail is lost."
        )
    } else {
        format!(
            "Here what the model learned carries over: {ood}'s images lie close to what it saw in {own} (shapes on a black background), so it denoises them about as well as its own. The other direction need not hold: a denoising autoencoder learns the manifold of its training images, and images far from it are pulled toward it."
        )
    };
    h += &format!("<div class=\"reading\">{reading}</div>\n");
    h
}

fn mismatch_section(m: &Mismatch) -> String {
    let mut h = String::from("<h2 id=\"mismatch\">Noise-model mismatch</h2>\n");
    h += &format!(
        "<p>The model (trained on {} noise, sigma {} to {}) against every noise model at the levels of <code>tools/eval_mismatch_noise.sh</code>, on the first {} test images (the script scores the whole split).</p>\n",
        esc(&m.trained_noise),
        m.trained_sigmas[0],
        m.trained_sigmas[1],
        m.images
    );
    h += "<table><tr><th>noise</th><th>level</th><th>PSNR dB</th><th>noisy input dB</th><th>gain dB</th><th>SSIM</th><th>noisy SSIM</th></tr>\n";
    for r in &m.rows {
        let out =
            m.trained_noise == "gaussian" && r.noise == "gaussian" && (r.level < m.trained_sigmas[0] - 1e-6 || r.level > m.trained_sigmas[1] + 1e-6);
        h += &format!(
            "<tr><td>{}</td><td>{} {}{}</td><td>{:.2}</td><td>{:.2}</td><td>{:+.2}</td><td>{:.4}</td><td>{:.4}</td></tr>\n",
            esc(&r.noise),
            esc(&r.level_name),
            r.level,
            if out { " (outside training)" } else { "" },
            r.psnr,
            r.noisy_psnr,
            r.psnr - r.noisy_psnr,
            r.ssim,
            r.noisy_ssim
        );
    }
    h += "</table>\n";
    let worse: Vec<String> = m.rows.iter().filter(|r| r.psnr < r.noisy_psnr).map(|r| format!("{} {} {}", r.noise, r.level_name, r.level)).collect();
    h += &format!(
        "<div class=\"reading\">A negative gain means the model is worse than doing nothing. {} A denoiser learns the statistics of the noise it was trained on; noise of another kind or strength is partly taken for content.</div>\n",
        if worse.is_empty() {
            "The model beats the noisy input under every noise model and level here.".to_string()
        } else {
            format!("It is worse than the noisy input at: {}.", esc(&worse.join("; ")))
        }
    );
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
        let html = page(&lim, None, &[], &Study::default());
        assert_eq!(html.matches("point in opposite directions").count(), 1, "{html}");
        assert!(
            html.contains("mean of the per-image ratios (1.035) and the t-test (t = -6.5)") && html.contains("ratio of the mean values is 0.988"),
            "{html}"
        );
    }

    /// The out-of-distribution reading follows the numbers: a model that loses much on the
    /// other dataset gets the manifold reading and "worse than doing nothing" where it is; one
    /// that does about as well gets the reading that its learning carries over; an unavailable
    /// dataset is said plainly.
    #[test]
    fn the_ood_reading_follows_the_numbers() {
        use crate::report::study::{Ood, OodRow};
        let row = |sigma: f32, psnr: f64, noisy: f64, own: f64| OodRow {
            sigma,
            psnr,
            noisy_psnr: noisy,
            ssim: 0.5,
            noisy_ssim: 0.4,
            in_dist_psnr: Some(own),
            in_dist_ssim: Some(0.9),
        };
        let ood = |rows: Vec<OodRow>, unavailable: Option<String>| Ood {
            trained_on: "MNIST".into(),
            dataset: "Fashion-MNIST".into(),
            folder: "data/fashion-mnist".into(),
            images: 500,
            noise: "gaussian".into(),
            rows,
            unavailable,
        };
        let far = ood_section(&ood(vec![row(0.1, 13.08, 21.62, 25.82), row(1.0, 9.57, 6.32, 13.67)], None), None);
        assert!(far.contains("project onto the manifold") && far.contains("At level(s) 0.1 it is <b>worse than doing nothing</b>"), "{far}");
        assert!(far.contains("12.7 dB at 0.1, 4.1 dB at 1 (mean 8.4 dB"), "{far}");
        let near = ood_section(&ood(vec![row(0.1, 21.03, 22.66, 20.67), row(0.3, 17.90, 13.30, 18.46)], None), None);
        assert!(near.contains("carries over") && !near.contains("project onto"), "{near}");
        let gone = ood_section(&ood(Vec::new(), Some("dataset Fashion-MNIST not found".into())), None);
        assert!(gone.contains("<b>Unavailable</b>") && gone.contains("data/fashion-mnist") && !gone.contains("<table>"), "{gone}");
    }
}
