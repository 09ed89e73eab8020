//! Headless Chromium driven over the DevTools protocol, so a page can run dae's kernels on the
//! browser's WebGPU (Dawn) and report back: open a local HTML file, evaluate JS in it (awaiting
//! promises for minutes), and collect its console output, errors and a screenshot.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Emulation, Page as Cdp, Runtime};
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// Flags beyond headless_chrome's defaults. `--headless=new` is the full browser run headless
/// (Chrome 109-131 took plain `--headless` as the old, separate implementation); without
/// `--enable-unsafe-webgpu`, Chromium on Linux offers no WebGPU adapter. Without a GPU, Dawn falls
/// back to SwiftShader by itself.
const FLAGS: &[&str] = &["--headless=new", "--enable-unsafe-webgpu"];

/// How long one DevTools call may wait and how long the connection may go without a message
/// before headless_chrome drops it (its default of 30 s would cut a long test suite short).
const DEVTOOLS_TIMEOUT: Duration = Duration::from_secs(3600);

/// How long a page may take to reach its load event.
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);

fn msg(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Msg(format!("{context}: {e}"))
}

/// Builds a DevTools command from the fields that matter; the rest take their defaults.
fn command<T: serde::de::DeserializeOwned>(fields: Value) -> T {
    serde_json::from_value(fields).expect("DevTools command fields match the protocol")
}

/// A running headless Chromium; dropping it kills the process.
pub struct Browser {
    inner: headless_chrome::Browser,
}

impl Browser {
    /// Finds the browser (the binary `DAE_CHROMIUM` names, else `chromium`, `chromium-browser` or
    /// `google-chrome` on PATH, else /usr/bin/chromium) and starts it headless with WebGPU on.
    pub fn launch() -> Result<Browser> {
        Browser::launch_with(true)
    }

    /// [`Browser::launch`], or with `webgpu` false a browser that offers no WebGPU adapter (as
    /// one without the flag, or with its GPU blocked): what a page does for such a person.
    pub fn launch_with(webgpu: bool) -> Result<Browser> {
        let path = find_chromium()?;
        // headless_chrome retries a browser that never prints its DevTools address for 5 minutes,
        // so a binary that is not a working Chromium is caught here first.
        if !std::process::Command::new(&path).arg("--version").output().is_ok_and(|out| out.status.success()) {
            let path = path.display();
            return Err(Error::Msg(format!(
                "`{path} --version` failed (run it to see why); set DAE_CHROMIUM to a working Chromium or Chrome binary"
            )));
        }
        let options = headless_chrome::LaunchOptions {
            path: Some(path.clone()),
            headless: false, // FLAGS picks the headless mode
            sandbox: false,
            enable_gpu: true, // otherwise headless_chrome passes --disable-gpu
            window_size: Some((1200, 900)),
            idle_browser_timeout: DEVTOOLS_TIMEOUT,
            args: FLAGS.iter().filter(|f| webgpu || **f != "--enable-unsafe-webgpu").map(std::ffi::OsStr::new).collect(),
            ..Default::default()
        };
        let inner = headless_chrome::Browser::new(options).map_err(|e| msg(&format!("could not start {}", path.display()), e))?;
        Ok(Browser { inner })
    }

    /// The browser's product and version, e.g. "Chrome/136.0.7103.113".
    pub fn version(&self) -> Result<String> {
        Ok(self.inner.get_version().map_err(|e| msg("could not ask the browser its version", e))?.product)
    }

    /// Opens `page` as a file:// URL in a new tab and waits for its load event. Console and error
    /// capture starts before navigation, so what the page logs while loading is kept.
    pub fn open(&self, page: &Path) -> Result<Page> {
        self.open_at(page, "")
    }

    /// [`Browser::open`] with `fragment` (the URL's part after `#`, which a page reads as its
    /// input: e.g. gradcheck.html's `filter=NAME`); empty for none.
    pub fn open_at(&self, page: &Path, fragment: &str) -> Result<Page> {
        let mut url = file_url(page)?;
        if !fragment.is_empty() {
            url = format!("{url}#{fragment}");
        }
        let fail = |e| msg(&format!("could not load {url}"), e);
        let tab = self.inner.new_tab().map_err(fail)?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (sink, (loaded, load_events)) = (Arc::clone(&log), mpsc::channel());
        tab.add_event_listener(Arc::new(move |event: &Event| match (event, log_entry(event)) {
            (Event::PageLifecycleEvent(e), _) if e.params.name == "load" => drop(loaded.send(e.params.loader_id.clone())),
            (_, Some(entry)) => sink.lock().unwrap().push(entry),
            _ => {}
        }))
        .map_err(fail)?;
        tab.enable_runtime().and_then(|tab| tab.enable_log()).map_err(fail)?;
        let nav = tab.call_method(command::<Cdp::Navigate>(json!({"url": url}))).map_err(fail)?;
        if let Some(e) = nav.error_text {
            return Err(Error::Msg(format!("could not load {url}: {e}")));
        }
        // The load event of this navigation, not a late one of the tab's initial about:blank.
        let deadline = Instant::now() + LOAD_TIMEOUT;
        while let Ok(id) = load_events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if nav.loader_id.as_ref().is_none_or(|l| *l == id) {
                return Ok(Page { tab, log });
            }
        }
        Err(Error::Msg(format!("{url} did not finish loading within {LOAD_TIMEOUT:?}")))
    }
}

/// `page` as a file:// URL, percent-encoded (a path may hold spaces, `#` or `%`).
fn file_url(page: &Path) -> Result<String> {
    let abs = std::path::absolute(page).ok().filter(|p| p.is_file()).ok_or_else(|| Error::Msg(format!("no page to open at {}", page.display())))?;
    let path = abs.to_string_lossy().replace('\\', "/");
    let mut url = String::from(if path.starts_with('/') { "file://" } else { "file:///" });
    for b in path.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'-' | b'.' | b'_' | b'~' | b':' => url.push(b as char),
            _ => url.push_str(&format!("%{b:02X}")),
        }
    }
    Ok(url)
}

/// The binary `DAE_CHROMIUM` names, else the first Chromium or Chrome found.
fn find_chromium() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("DAE_CHROMIUM") {
        return Ok(path.into());
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let on_path =
        ["chromium", "chromium-browser", "google-chrome"].iter().flat_map(|name| std::env::split_paths(&path_var).map(move |dir| dir.join(name)));
    on_path.chain([PathBuf::from("/usr/bin/chromium")]).find(|p| p.is_file()).ok_or_else(|| {
        Error::Msg(
            "no Chromium found (looked for chromium, chromium-browser and google-chrome on PATH and /usr/bin/chromium). \
             Install it with `sudo apt-get install chromium` (Debian/Ubuntu), or set DAE_CHROMIUM to a Chromium or Chrome binary."
                .into(),
        )
    })
}

/// One line of a page's log, with whether it counts as an error.
type LogEntry = (bool, String);

/// The log line for a console call, uncaught exception or browser log entry (e.g. a failed load).
fn log_entry(event: &Event) -> Option<LogEntry> {
    match event {
        Event::RuntimeConsoleAPICalled(e) => {
            let level = format!("{:?}", e.params.Type).to_lowercase();
            let text: Vec<String> = e.params.args.iter().map(remote_text).collect();
            Some((level == "error", format!("console.{level}: {}", text.join(" "))))
        }
        Event::RuntimeExceptionThrown(e) => Some((true, format!("uncaught: {}", exception_text(&e.params.exception_details)))),
        Event::LogEntryAdded(e) => {
            let entry = &e.params.entry;
            let level = format!("{:?}", entry.level).to_lowercase();
            let source = format!("{:?}", entry.source).to_lowercase();
            let url = entry.url.as_deref().map(|u| format!(" ({u})")).unwrap_or_default();
            Some((level == "error", format!("{source}.{level}: {}{url}", entry.text)))
        }
        _ => None,
    }
}

/// A JS value as console.log would show it: strings bare, errors with their stack.
fn remote_text(object: &Runtime::RemoteObject) -> String {
    match (&object.value, &object.description, &object.unserializable_value) {
        (Some(Value::String(s)), _, _) => s.clone(),
        (_, Some(description), _) => description.clone(),
        (Some(value), _, _) => value.to_string(),
        (_, _, Some(value)) => value.clone(),
        _ => object.subtype.as_ref().map_or_else(|| format!("{:?}", object.Type), |s| format!("{s:?}")).to_lowercase(), // null, undefined
    }
}

/// An exception's message and stack (Chromium puts both in the error's description).
fn exception_text(details: &Runtime::ExceptionDetails) -> String {
    details.exception.as_ref().map_or_else(|| details.text.clone(), remote_text)
}

/// A tab showing one page, with everything it has logged since it was opened.
pub struct Page {
    tab: Arc<headless_chrome::Tab>,
    log: Arc<Mutex<Vec<LogEntry>>>,
}

impl Page {
    /// Evaluates the JS expression `js`; when it yields a Promise, waits up to `timeout` for it.
    /// Returns the value as JSON (undefined as null). A throw or rejection is an error holding the
    /// JS message and stack.
    pub fn eval(&self, js: &str, timeout: Duration) -> Result<Value> {
        let evaluate: Runtime::Evaluate = command(json!({"expression": js, "returnByValue": true, "awaitPromise": true}));
        let tab = Arc::clone(&self.tab);
        let (send, reply) = mpsc::channel();
        // On its own thread, so the wait ends at `timeout` even while the page never answers.
        std::thread::spawn(move || drop(send.send(tab.call_method(evaluate))));
        let short: String = js.chars().take(80).collect();
        let answer = reply
            .recv_timeout(timeout)
            .map_err(|_| Error::Msg(format!("gave up after {timeout:?} waiting for the page to evaluate `{short}`")))?
            .map_err(|e| msg(&format!("evaluating `{short}`"), e))?;
        match answer.exception_details {
            Some(details) => Err(Error::Msg(format!("`{short}` failed: {}", exception_text(&details)))),
            None => Ok(answer.result.value.unwrap_or(Value::Null)),
        }
    }

    /// Console errors, uncaught exceptions, unhandled rejections and failed loads, in order.
    pub fn errors(&self) -> Vec<String> {
        self.log.lock().unwrap().iter().filter(|(error, _)| *error).map(|(_, line)| line.clone()).collect()
    }

    /// Every console message and log entry, as "source.level: text", in order.
    pub fn console(&self) -> Vec<String> {
        self.log.lock().unwrap().iter().map(|(_, line)| line.clone()).collect()
    }

    /// Saves a PNG of the whole page: 1200 px wide, as tall as its content.
    pub fn screenshot(&self, path: &Path) -> Result<()> {
        let height = self.eval("document.documentElement.scrollHeight", Duration::from_secs(10))?.as_u64().unwrap_or(900);
        let size: Emulation::SetDeviceMetricsOverride = command(json!({"width": 1200, "height": height, "deviceScaleFactor": 1, "mobile": false}));
        let png = self
            .tab
            .call_method(size)
            .and_then(|_| self.tab.capture_screenshot(Cdp::CaptureScreenshotFormatOption::Png, None, None, true))
            .and_then(|png| self.tab.call_method(Emulation::ClearDeviceMetricsOverride(None)).map(|_| png))
            .map_err(|e| msg("screenshot failed", e))?;
        std::fs::write(path, png).map_err(|e| msg(&format!("could not write {}", path.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `html` to a fresh file in the temp dir and opens it in a new browser.
    fn open(name: &str, html: &str) -> (Browser, Page) {
        let path = std::env::temp_dir().join(format!("dae driver #{}-{name}.html", std::process::id()));
        std::fs::write(&path, html).unwrap();
        let browser = Browser::launch().unwrap_or_else(|e| panic!("{e}"));
        let page = browser.open(&path).unwrap_or_else(|e| panic!("{e}"));
        (browser, page)
    }

    #[test]
    fn webgpu_compute_runs_in_a_file_page() {
        let (browser, page) = open(
            "webgpu",
            r#"<script>
async function double() {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error("no WebGPU adapter");
  const device = await adapter.requestDevice();
  const module = device.createShaderModule({ code: `
    @group(0) @binding(0) var<storage, read_write> data: array<f32, 4>;
    @compute @workgroup_size(4) fn main(@builtin(global_invocation_id) id: vec3u) { data[id.x] *= 2.0; }` });
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const data = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
  new Float32Array(data.getMappedRange()).set([1, 2, 3, 4]);
  data.unmap();
  const read = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: data } }] }));
  pass.dispatchWorkgroups(1);
  pass.end();
  encoder.copyBufferToBuffer(data, 0, read, 0, 16);
  device.queue.submit([encoder.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const { vendor, architecture, description } = adapter.info;
  return { adapter: [vendor, architecture, description].join(" "), out: Array.from(new Float32Array(read.getMappedRange())) };
}
</script>"#,
        );
        let result = page.eval("double()", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}\nconsole: {:?}", page.console()));
        eprintln!("{}: adapter {}", browser.version().unwrap(), result["adapter"]);
        assert_eq!(result["out"], json!([2, 4, 6, 8]));
        assert!(!result["adapter"].as_str().unwrap().trim().is_empty(), "no adapter info: {result}");
        let shot = std::env::temp_dir().join(format!("dae-driver-{}.png", std::process::id()));
        page.screenshot(&shot).unwrap();
        let png = std::fs::read(&shot).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png[16..20] == 1200u32.to_be_bytes(), "not a 1200 px wide PNG");
    }

    #[test]
    fn errors_include_load_time_console_errors_and_uncaught_exceptions() {
        let (_browser, page) = open(
            "errors",
            r#"<script src="missing.js"></script>
<script>
console.log("hello");
console.error("boom");
setTimeout(() => { throw new Error("late"); });
Promise.reject(new Error("nobody caught"));
</script>"#,
        );
        page.eval("new Promise(r => setTimeout(r, 200))", Duration::from_secs(10)).unwrap();
        let errors = page.errors();
        assert!(errors.iter().any(|e| e.contains("missing.js")), "{errors:?}");
        assert!(errors.iter().any(|e| e == "console.error: boom"), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("uncaught: ") && e.contains("late")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("uncaught: ") && e.contains("nobody caught")), "{errors:?}");
        assert!(page.console().contains(&"console.log: hello".to_string()));
    }

    #[test]
    fn eval_reports_rejections_timeouts_and_returns_large_values() {
        let (_browser, page) = open("eval", "<p>eval</p>");
        let err = page.eval("Promise.reject(new Error('no luck'))", Duration::from_secs(10)).unwrap_err().to_string();
        assert!(err.contains("no luck"), "{err}");
        let err = page.eval("new Promise(() => {})", Duration::from_millis(500)).unwrap_err().to_string();
        assert!(err.contains("500ms") && err.contains("new Promise"), "{err}");
        let big = page.eval("'x'.repeat(1 << 21)", Duration::from_secs(10)).unwrap();
        assert_eq!(big.as_str().map(str::len), Some(1 << 21));
        assert!(page.errors().is_empty(), "{:?}", page.errors());
    }
}
