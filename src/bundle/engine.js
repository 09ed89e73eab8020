// Shared by dae's browser pages (dae writes it into each): start the engine on this browser's
// WebGPU. Expects WASM_B64 (the module as base64) and the glue's global `wasm_bindgen`.
const NO_WEBGPU = "This page needs WebGPU, which this browser does not offer: use a recent Chrome, Edge or Safari " +
  "(or Firefox with WebGPU enabled).";
const NO_ADAPTER = "This browser has WebGPU but gave no graphics adapter for it (hardware acceleration may be off, " +
  "or the GPU is blocked): turn hardware acceleration on, or try a recent Chrome, Edge or Safari.";

// An error whose message is a sentence for the person reading the page (shown as it is).
class UserError extends Error {}
function messageOf(e) { return e && e.message ? e.message : String(e); }

// Base64 to bytes (the wasm module is several MB: the native decoder where there is one).
function b64bytes(s) {
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(s);
  const bin = atob(s), out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// Check for WebGPU and an adapter, then instantiate the embedded module (no fetch: pages open
// as file://). Resolves to the adapter's name as WebGPU gives it (wgpu cannot name a browser's
// adapter); `status(text)` shows progress.
async function startEngine(status) {
  if (!navigator.gpu) throw new UserError(NO_WEBGPU);
  let adapter = null;
  try { adapter = await navigator.gpu.requestAdapter(); } catch (e) { console.error(e); }
  if (!adapter) throw new UserError(NO_ADAPTER);
  const info = adapter.info || {};
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ");
  if (typeof wasm_bindgen === "undefined") throw new UserError("The engine's JavaScript is missing from this page.");
  status("Loading the engine\u2026");
  try {
    await wasm_bindgen({ module_or_path: b64bytes(WASM_B64) });
  } catch (e) {
    console.error(e);
    throw new UserError("The WebAssembly engine could not be loaded: " + messageOf(e));
  }
  return name;
}
