//! The browser bundle embedded in the native binary (built by `build.rs`: the engine for
//! wasm32 and its wasm-bindgen glue), and the self-contained pages made from it. A page opened
//! as `file://` cannot load modules or fetch files, so each page carries everything inline:
//! the glue as a classic script, the wasm module (and the demo's model and images) as base64.

use base64::Engine;

use crate::error::{Error, Result};

#[cfg(feature = "web-bundle")]
const GLUE: &str = include_str!(concat!(env!("OUT_DIR"), "/dae.js"));
#[cfg(feature = "web-bundle")]
const WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dae_bg.wasm"));

const GRADCHECK: &str = include_str!("gradcheck.html");
const DEMO: &str = include_str!("demo.html");
/// What both pages share: the WebGPU check and the engine's start (`startEngine`).
const ENGINE_JS: &str = include_str!("engine.js");

/// The glue and the wasm module, or why this binary has none.
fn bundle() -> Result<(&'static str, &'static [u8])> {
    #[cfg(feature = "web-bundle")]
    return Ok((GLUE, WASM));
    #[cfg(not(feature = "web-bundle"))]
    Err(Error::Msg("this dae was built without the browser bundle (cargo's --no-default-features); build it with the default features".into()))
}

/// `template` with each placeholder replaced by its text; each must occur exactly once (a
/// template edited out of step with this code fails here, not in a browser).
fn fill(template: &str, parts: &[(&str, &str)]) -> Result<String> {
    let mut out = template.to_string();
    for (key, value) in parts {
        let n = out.matches(key).count();
        if n != 1 {
            return Err(Error::Msg(format!("page template: placeholder {key} occurs {n} times, not once")));
        }
        out = out.replacen(key, value, 1);
    }
    Ok(out)
}

/// A JavaScript string literal of the base64 of `bytes`.
fn b64_literal(bytes: &[u8]) -> String {
    format!("\"{}\"", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The glue as it goes inside a `<script>` element (a "</script" in it would end the element).
fn glue() -> Result<(String, String)> {
    let (glue, wasm) = bundle()?;
    if glue.to_ascii_lowercase().contains("</script") {
        return Err(Error::Msg("the bundle's glue holds \"</script\"; it cannot be inlined".into()));
    }
    Ok((glue.to_string(), b64_literal(wasm)))
}

/// The kernel checks as one page for any browser with WebGPU: it runs them on load (the URL's
/// `#filter=NAME` keeps the families whose name contains NAME) and shows the table;
/// `window.daeChecks` resolves to `{adapter, seconds, rows}`.
pub fn gradcheck_page() -> Result<String> {
    let (glue, wasm) = glue()?;
    fill(GRADCHECK, &[("/*DAE_GLUE*/", &glue), ("\"DAE_WASM_B64\"", &wasm), ("/*DAE_ENGINE_JS*/", ENGINE_JS)])
}

/// The live denoiser: `model` the bytes of a weights file, `data` the page's JSON (the test
/// images as base64 of their u8 pixels, labels, noise levels and captions; see demo.html).
pub fn demo_page(model: &[u8], data: &serde_json::Value) -> Result<String> {
    let (glue, wasm) = glue()?;
    let data = data.to_string().replace("</", "<\\/");
    fill(
        DEMO,
        &[
            ("/*DAE_GLUE*/", &glue),
            ("\"DAE_WASM_B64\"", &wasm),
            ("/*DAE_ENGINE_JS*/", ENGINE_JS),
            ("\"DAE_MODEL_B64\"", &b64_literal(model)),
            ("DAE_DATA_JSON", &data),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every placeholder occurs once in its template, and a filled page holds none.
    #[test]
    fn the_templates_hold_each_placeholder_once() {
        let shared = ["/*DAE_GLUE*/", "\"DAE_WASM_B64\"", "/*DAE_ENGINE_JS*/"];
        let demo = [&shared[..], &["\"DAE_MODEL_B64\"", "DAE_DATA_JSON"]].concat();
        for (t, keys) in [(GRADCHECK, &shared[..]), (DEMO, &demo[..])] {
            let parts: Vec<(&str, &str)> = keys.iter().map(|k| (*k, "x")).collect();
            let page = fill(t, &parts).unwrap();
            assert!(!page.contains("DAE_"), "a placeholder is left");
        }
        assert!(fill("a", &[("b", "c")]).is_err());
    }
}
