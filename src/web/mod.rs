//! dae in the browser: the engine built for `wasm32-unknown-unknown` runs the same WGSL kernels
//! on the browser's WebGPU adapter. In the wasm module, [`bindings`] is what JavaScript calls
//! (the kernel checks, the demo's denoiser); natively, `driver` opens the self-contained pages
//! of [`crate::bundle`] in headless Chromium (`dae gradcheck --browser`, the tests).

#[cfg(target_arch = "wasm32")]
pub mod bindings;
#[cfg(not(target_arch = "wasm32"))]
pub mod driver;

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use super::driver::{Browser, Page};
    use crate::check::CheckRow;
    use crate::error::{Error, Result};

    /// How long the browser may take over the whole check suite (minutes on a CPU adapter).
    const CHECKS_TIMEOUT: Duration = Duration::from_secs(60 * 60);

    /// How long the demo may take to load its engine and model and denoise (twice).
    const DEMO_TIMEOUT: Duration = Duration::from_secs(5 * 60);

    /// What `dae gradcheck --browser` ran: the rows, the browser's adapter and version, the
    /// suite's time in the page, and the errors the page logged (none when all is well).
    pub struct BrowserChecks {
        pub rows: Vec<CheckRow>,
        pub adapter: String,
        pub browser: String,
        pub seconds: f64,
        pub errors: Vec<String>,
    }

    /// A folder of its own under the temp dir for one run's page, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(what: &str) -> Result<Scratch> {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            let dir = std::env::temp_dir().join(format!("dae-{what}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| Error::Msg(format!("cannot make {}: {e}", dir.display())))?;
            Ok(Scratch(dir))
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// `s` for a URL fragment (everything but letters, digits and `-._~` percent-encoded).
    fn fragment_part(s: &str) -> String {
        s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
    }

    /// An error `e` with what the page logged.
    fn with_log(e: Error, page: &Page) -> Error {
        let log = page.console();
        if log.is_empty() { e } else { Error::Msg(format!("{e}\nthe page logged:\n{}", log.join("\n"))) }
    }

    /// The kernel checks of the families containing `only` (all when `None`) in headless
    /// Chromium on its WebGPU adapter, through the page `dae gradcheck --write-page` writes.
    pub fn browser_checks(only: Option<&str>, log: &mut dyn FnMut(&str)) -> Result<BrowserChecks> {
        let scratch = Scratch::new("gradcheck")?;
        let path = scratch.0.join("gradcheck.html");
        crate::checkpoint::write_file(&path, crate::bundle::gradcheck_page()?.as_bytes())?;
        let browser = Browser::launch()?;
        let version = browser.version()?;
        log(&format!("running the kernel checks in headless {version} on its WebGPU adapter (minutes on a CPU adapter) ..."));
        let page = browser.open_at(&path, &only.map(|w| format!("filter={}", fragment_part(w))).unwrap_or_default())?;
        let v = page.eval("window.daeChecks", CHECKS_TIMEOUT).map_err(|e| with_log(e, &page))?;
        let field = |k: &str| v.get(k).cloned().ok_or_else(|| Error::Msg(format!("the checks' page gave no {k:?}")));
        let rows: Vec<CheckRow> =
            serde_json::from_value(field("rows")?).map_err(|e| Error::Msg(format!("the checks' page gave rows dae cannot read: {e}")))?;
        Ok(BrowserChecks {
            rows,
            adapter: field("adapter")?.as_str().unwrap_or("?").to_string(),
            browser: version,
            seconds: field("seconds")?.as_f64().unwrap_or(f64::NAN),
            errors: page.errors(),
        })
    }

    /// One denoise of the demo page (`window.dae.denoise`), as the page returns it.
    pub struct DemoDenoise {
        /// The embedded test image as the page hands it to the engine (in [0, 1]).
        pub clean: Vec<f32>,
        pub noisy: Vec<f32>,
        pub denoised: Vec<f32>,
        pub psnr: f64,
        pub ssim: f64,
        /// The page's own time for the call, in milliseconds: the first (which compiles the
        /// pipelines) and a second, identical one.
        pub first_ms: f64,
        pub ms: f64,
        /// Whether the second call gave the same bits.
        pub repeatable: bool,
        /// What the page logged as errors from its load to the end of the call.
        pub errors: Vec<String>,
        pub adapter: String,
    }

    /// Open the demo page `demo` in headless Chromium and denoise its embedded test image
    /// `image` under `noise` at `level` from `seed`, twice; `shot`: a screenshot of the page after.
    pub fn demo_denoise(demo: &Path, image: usize, noise: &str, level: f32, seed: u32, shot: Option<&Path>) -> Result<DemoDenoise> {
        let browser = Browser::launch()?;
        let page = browser.open(demo)?;
        let args = serde_json::json!({ "image": image, "noise": noise, "sigma": level, "seed": seed });
        let js = format!(
            "window.dae.ready.then(async () => {{ const t0 = performance.now(); const r = await window.dae.denoise({args}); \
             const t1 = performance.now(); const again = await window.dae.denoise({args}); const t2 = performance.now(); \
             const same = r.denoised.every((v, i) => Object.is(v, again.denoised[i])) && r.noisy.every((v, i) => Object.is(v, again.noisy[i])); \
             return {{ clean: Array.from(testImage({image})), noisy: Array.from(r.noisy), denoised: Array.from(r.denoised), psnr: r.psnr, ssim: r.ssim, \
             first_ms: t1 - t0, ms: t2 - t1, same }}; }})"
        );
        let v = page.eval(&js, DEMO_TIMEOUT).map_err(|e| with_log(e, &page))?;
        let floats = |k: &str| -> Result<Vec<f32>> {
            serde_json::from_value(v.get(k).cloned().unwrap_or_default()).map_err(|e| Error::Msg(format!("the demo's {k}: {e}")))
        };
        let adapter = page.eval("document.body.innerText.match(/WebGPU adapter: (.*)\\./)?.[1] ?? ''", Duration::from_secs(10))?;
        if let Some(p) = shot {
            page.screenshot(p)?;
        }
        Ok(DemoDenoise {
            clean: floats("clean")?,
            noisy: floats("noisy")?,
            denoised: floats("denoised")?,
            psnr: v["psnr"].as_f64().unwrap_or(f64::NAN),
            ssim: v["ssim"].as_f64().unwrap_or(f64::NAN),
            first_ms: v["first_ms"].as_f64().unwrap_or(f64::NAN),
            ms: v["ms"].as_f64().unwrap_or(f64::NAN),
            repeatable: v["same"].as_bool().unwrap_or(false),
            errors: page.errors(),
            adapter: adapter.as_str().unwrap_or("").to_string(),
        })
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::time::Duration;

    use super::driver::Browser;
    use crate::gpu::shaders::SHADERS;

    /// Every shader family as Chromium's WGSL compiler (Tint) sees it: compiled in a page and
    /// asked for its compilation messages. Tint is stricter than naga in places (it refused
    /// `a >= b & c <= d` without parentheses, as WGSL's grammar requires, and a constant
    /// expression that is infinite). Tint wants `enable subgroups;` where naga does not, so the
    /// subgroup families get it. A family that needs a feature this browser lacks (shader-f16
    /// here) is compiled all the same: its only errors must name that extension, and its body
    /// with the f32 operand header instead must compile cleanly.
    #[test]
    fn every_shader_compiles_under_tint() {
        use crate::gpu::shaders::{OPERANDS_F16, OPERANDS_F32};
        // (family, the features it needs, its source for Tint, the body under f32 operands)
        let families: Vec<(&str, Vec<&str>, String, Option<String>)> = SHADERS
            .iter()
            .map(|s| {
                let code = s.parts.concat();
                let sg = code.contains("subgroup");
                let f16 = s.parts.contains(&OPERANDS_F16);
                let enable = if sg { "enable subgroups;\n" } else { "" };
                let needs = [(f16, "shader-f16"), (sg, "subgroups")].iter().filter(|(n, _)| *n).map(|(_, f)| *f).collect();
                let as_f32 = f16.then(|| format!("{enable}{}", code.replacen(OPERANDS_F16, OPERANDS_F32, 1)));
                (s.family, needs, format!("{enable}{code}"), as_f32)
            })
            .collect();
        let page = format!(
            "<script>const FAMILIES = {};\n{}</script>",
            serde_json::to_string(&families).unwrap(),
            r#"window.result = (async () => {
  const adapter = await navigator.gpu.requestAdapter();
  const has = ["shader-f16", "subgroups"].filter(f => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredFeatures: has });
  const errors = async code => (await device.createShaderModule({ code }).getCompilationInfo()).messages
    .filter(m => m.type === "error").map(m => `${m.lineNum}:${m.linePos} ${m.message}`);
  const out = [];
  for (const [family, needs, code, asF32] of FAMILIES) {
    const missing = needs.filter(f => !has.includes(f));
    out.push([family, missing, await errors(code), missing.length && asF32 ? await errors(asF32) : []]);
  }
  return out;
})();"#
        );
        let path = std::env::temp_dir().join(format!("dae-tint-{}.html", std::process::id()));
        std::fs::write(&path, page).unwrap();
        let browser = Browser::launch().unwrap_or_else(|e| panic!("{e}"));
        let tab = browser.open(&path).unwrap_or_else(|e| panic!("{e}"));
        let v = tab.eval("window.result", Duration::from_secs(300)).unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::remove_file(&path);
        let rows: Vec<(String, Vec<String>, Vec<String>, Vec<String>)> = serde_json::from_value(v).unwrap();
        assert_eq!(rows.len(), SHADERS.len());
        let mut refused = Vec::new();
        for (family, missing, errors, as_f32) in &rows {
            // An error about a missing extension names it ("f16", "subgroups").
            let about_missing = |e: &String| missing.iter().any(|f| e.contains(f.trim_start_matches("shader-")));
            if missing.is_empty() && !errors.is_empty() {
                refused.push(format!("{family}.wgsl: {}", errors.join("\n")));
            }
            if !missing.is_empty() && (errors.is_empty() || !errors.iter().all(about_missing)) {
                refused.push(format!("{family}.wgsl (this browser lacks {missing:?}): {}", errors.join("\n")));
            }
            if !as_f32.is_empty() {
                refused.push(format!("{family}.wgsl with f32 operands: {}", as_f32.join("\n")));
            }
        }
        assert!(refused.is_empty(), "Tint refuses:\n{}", refused.join("\n"));
        let whole = rows.iter().filter(|r| r.1.is_empty()).count();
        eprintln!(
            "Tint: {whole} of {} families compiled as they are; the rest lack only {:?}",
            rows.len(),
            rows.iter().flat_map(|r| r.1.clone()).collect::<std::collections::BTreeSet<_>>()
        );
    }
}
