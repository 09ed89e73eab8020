#!/usr/bin/env python3
"""Check a `dae` checkpoint against PyTorch.

    python tools/torch_check.py CKPT.safetensors [--dae target/release/dae] [--batch 4] [--seed 0]
    python tools/torch_check.py --self-test          # no dae needed
    python tools/torch_check.py --write-fixtures     # regenerate tests/fixtures/torch_state_dicts.json

    python tools/torch_check.py CKPT.safetensors --eval --data-dir DIR [--sigmas 0.1,0.3,0.7,1.0]
        [--limit N] [--dae-json outputs/logs/evaluation_results.json] [--seed 0] [--batch 500]

With a checkpoint: builds the PyTorch model from the checkpoint's `config` metadata (its `model:`
section), loads the tensors with `load_state_dict(strict=True)`, runs a deterministic batch
(numpy default_rng(seed), values in [0, 1)) through `dae infer` and through PyTorch (eval mode),
and prints the max absolute difference. Exit status 1 when it is above --tol, 2 on any error.

--eval: PyTorch evaluates the checkpoint on its own, without dae: the first --limit images
(default all) of DIR/t10k-images-idx3-ubyte.gz (MNIST or Fashion-MNIST: whatever DIR holds),
x = uint8 / 255. For each sigma (default: the config's noise.test_sigmas; noise.type must be
gaussian): noisy = x + sigma * N(0, 1), the noise from a torch.Generator seeded with
--seed + 1000 * (index of the sigma in the list), clipped to noise.clip_range unless that is null
(absent: [0, 1], dae's default). The network gets noisy (data.normalize zero_one) or 2 * noisy - 1
(minus_one_one), float32, eval mode, batches of --batch; its output (after the sigmoid) is the
reconstruction. Per image, against the clean image: MSE, PSNR = 10 log10(1 / MSE) (data range 1,
100 dB when MSE <= 1e-10) and scikit-image SSIM (gaussian_weights, sigma 1.5,
use_sample_covariance=False, data_range 1, float64); the same for the clipped noisy image. Per
sigma: means over the images (PSNR averaged per image) and the population std of PSNR.
With --dae-json (dae's evaluation_results.json) dae's numbers are printed beside PyTorch's with
the differences; exit 1 when any |PSNR or noisy PSNR difference| > 0.05 dB or any |SSIM or noisy
SSIM difference| > 0.002 (the two use different noise draws, so small differences are expected),
a warning when dae's n_images differs from the number of images evaluated here. Exit 2 on errors.

Needs: torch, safetensors, numpy, pyyaml; --eval also scikit-image.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

FIXTURE_PATH = REPO / "tests" / "fixtures" / "torch_state_dicts.json"

# Fixture configs: id -> model config (SPEC defaults for the rest: in_ch = out_ch = 1, dropout 0).
FIXTURES = {
    "conv-16x2-group-relu": dict(name="conv", base_ch=16, num_downs=2, norm_type="group", activation="relu"),
    "conv-16x3-batch-silu-drop": dict(name="conv", base_ch=16, num_downs=3, norm_type="batch", activation="silu", dropout=0.1),
    "conv-8x2-none-gelu": dict(name="conv", base_ch=8, num_downs=2, norm_type="none", activation="gelu"),
    "unet-16x2-group-relu-bilinear": dict(name="unet", base_ch=16, num_downs=2, norm_type="group", activation="relu", up="bilinear"),
    "unet-16x3-instance-leakyrelu-transposed": dict(name="unet", base_ch=16, num_downs=3, norm_type="instance", activation="leakyrelu", up="transposed"),
    "unet-8x2-batch-relu-bilinear-drop": dict(name="unet", base_ch=8, num_downs=2, norm_type="batch", activation="relu", up="bilinear", dropout=0.1),
    "unet-16x4-group-silu-bilinear": dict(name="unet", base_ch=16, num_downs=4, norm_type="group", activation="silu", up="bilinear"),
    "unet-8x1-none-relu-transposed": dict(name="unet", base_ch=8, num_downs=1, norm_type="none", activation="relu", up="transposed"),
    "unet-16x2-group-relu-bilinear-in3-out3": dict(name="unet", base_ch=16, num_downs=2, norm_type="group", activation="relu", up="bilinear", in_ch=3, out_ch=3),
}

# SPEC section 3 parameter counts (group norm, relu, in = out = 1).
SPEC_COUNTS = {
    "conv-64x3-group-relu": (dict(name="conv", base_ch=64, num_downs=3), 6_665_089),
    "conv-32x3-group-relu": (dict(name="conv", base_ch=32, num_downs=3), 1_667_521),
    "conv-32x2-group-relu": (dict(name="conv", base_ch=32, num_downs=2), 404_929),
    "conv-16x2-group-relu": (dict(name="conv", base_ch=16, num_downs=2), 101_601),
    "unet-64x3-group-relu-bilinear": (dict(name="unet", base_ch=64, num_downs=3, up="bilinear"), 4_281_089),
    "unet-64x4-group-relu-bilinear": (dict(name="unet", base_ch=64, num_downs=4, up="bilinear"), 17_261_825),
    "unet-32x2-group-relu-bilinear": (dict(name="unet", base_ch=32, num_downs=2, up="bilinear"), 259_329),
    "unet-16x2-group-relu-bilinear": (dict(name="unet", base_ch=16, num_downs=2, up="bilinear"), 65_153),
    "unet-64x3-group-relu-transposed": (dict(name="unet", base_ch=64, num_downs=3, up="transposed"), 7_699_009),
    "unet-32x3-group-relu-transposed": (dict(name="unet", base_ch=32, num_downs=3, up="transposed"), 1_926_433),
}

# --eval: allowed |PyTorch - dae| differences of the per-sigma means (noisy_* use the same).
EVAL_TOL_PSNR = 0.05  # dB
EVAL_TOL_SSIM = 0.002
PSNR_CAP = 100.0  # dB, where MSE <= 1e-10
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"

MODEL_KEYS = ("name", "base_ch", "num_downs", "norm_type", "activation", "dropout", "up", "in_ch", "out_ch")


class CheckError(Exception):
    pass


def need(module: str, pip_name: str | None = None):
    try:
        return __import__(module)
    except ImportError:
        raise CheckError(f"python package '{pip_name or module}' is missing: pip install {pip_name or module}")


def state_dict_entries(model) -> list:
    return [[name, list(t.shape)] for name, t in model.state_dict().items()]


def fixture_data() -> dict:
    from dae_models import build_model, num_params

    data = {}
    for fid, cfg in FIXTURES.items():
        data[fid] = state_dict_entries(build_model(cfg))
    data["param_counts"] = {sid: num_params(build_model(cfg)) for sid, (cfg, _) in SPEC_COUNTS.items()}
    data["configs"] = {fid: dict(cfg) for fid, cfg in FIXTURES.items()}
    return data


def dump_fixtures(data: dict) -> str:
    # One [name, shape] pair per line: small and diff-friendly.
    lines = ["{"]
    keys = list(data)
    for ki, key in enumerate(keys):
        val = data[key]
        end = "," if ki < len(keys) - 1 else ""
        if isinstance(val, list):
            lines.append(f"  {json.dumps(key)}: [")
            for j, pair in enumerate(val):
                lines.append(f"    {json.dumps(pair)}" + ("," if j < len(val) - 1 else ""))
            lines.append(f"  ]{end}")
        else:
            lines.append(f"  {json.dumps(key)}: {{")
            items = list(val.items())
            for j, (k, v) in enumerate(items):
                lines.append(f"    {json.dumps(k)}: {json.dumps(v)}" + ("," if j < len(items) - 1 else ""))
            lines.append(f"  }}{end}")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# Checkpoint side


def read_checkpoint(path: Path, prefix: str = ""):
    """(model config dict, {name: torch tensor}, metadata) from a dae safetensors checkpoint."""
    need("safetensors")
    yaml = need("yaml", "pyyaml")
    from safetensors import safe_open

    if not path.is_file():
        raise CheckError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - report the library's message as is
        raise CheckError(f"cannot read {path} as safetensors: {e}")
    if "config" not in meta:
        raise CheckError(f"{path}: safetensors metadata has no 'config' key (keys: {sorted(meta)})")
    try:
        cfg = yaml.safe_load(meta["config"])
    except yaml.YAMLError as e:
        raise CheckError(f"{path}: metadata 'config' is not valid YAML: {e}")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict):
        raise CheckError(f"{path}: metadata 'config' has no 'model:' mapping")
    model_cfg = {k: v for k, v in cfg["model"].items() if k in MODEL_KEYS}
    ignored = sorted(set(cfg["model"]) - set(MODEL_KEYS))
    if ignored:
        print(f"note: model config keys not used by the PyTorch builder: {ignored}")
    if prefix:
        tensors = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not tensors:
            raise CheckError(f"{path}: no tensor name starts with prefix {prefix!r}")
    return model_cfg, tensors, meta


def load_model(model_cfg: dict, tensors: dict):
    torch = need("torch")
    from dae_models import build_model, num_params

    try:
        model = build_model(model_cfg)
    except ValueError as e:
        raise CheckError(f"cannot build the model from the checkpoint's config: {e}")
    # num_batches_tracked is int64 in PyTorch; the checkpoint may store it as another dtype.
    sd = {}
    for k, v in tensors.items():
        sd[k] = v.to(torch.int64) if k.endswith("num_batches_tracked") else v
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise CheckError(f"load_state_dict(strict=True) failed:\n{e}")
    return model, num_params(model)


def find_dae(arg: str) -> Path:
    cands = [Path(arg)]
    if not Path(arg).is_absolute():
        cands.append(REPO / arg)
    for c in cands:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    w = shutil.which(arg)
    if w:
        return Path(w)
    raise CheckError(f"dae binary not found or not executable: {arg} "
                     f"(build it with `cargo build --release`, or pass --dae PATH)")


def run_check(args) -> int:
    np = need("numpy")
    torch = need("torch")
    from safetensors.numpy import load_file, save_file

    ckpt = Path(args.ckpt)
    model_cfg, tensors, meta = read_checkpoint(ckpt, args.prefix)
    yaml = need("yaml", "pyyaml")
    normalize = ((yaml.safe_load(meta["config"]) or {}).get("data") or {}).get("normalize", "zero_one")
    model, n = load_model(model_cfg, tensors)
    model.eval()
    in_ch = int(model_cfg.get("in_ch", 1))
    print(f"checkpoint: {ckpt}  ({len(tensors)} tensors)")
    print(f"model: {model_cfg}  params: {n:,}")
    dae = find_dae(args.dae)

    rng = np.random.default_rng(args.seed)
    x = rng.random((args.batch, in_ch, args.size, args.size), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="torch_check_") as tmp:
        inp, out = Path(tmp) / "input.safetensors", Path(tmp) / "output.safetensors"
        save_file({"input": x}, str(inp))
        cmd = [str(dae), "infer", "--ckpt", str(ckpt), "--input", str(inp), "--output", str(out)]
        print("running:", " ".join(cmd))
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            raise CheckError(f"dae infer did not finish within {args.timeout} s")
        except OSError as e:
            raise CheckError(f"cannot run {dae}: {e}")
        if proc.returncode != 0:
            raise CheckError(f"dae infer failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
        if not out.is_file():
            raise CheckError(f"dae infer exited 0 but wrote no {out}")
        got = load_file(str(out))
        if "output" not in got:
            raise CheckError(f"dae output has no tensor 'output' (tensors: {sorted(got)})")
        y_dae = got["output"].astype(np.float64)

    # Reference in float64 so the difference measures the dae side's error. `dae infer` takes
    # [0, 1] images and normalises them as the model was trained (data.normalize); so does this.
    x_net = torch.from_numpy(x).double()
    if normalize == "minus_one_one":
        x_net = x_net * 2.0 - 1.0
    elif normalize != "zero_one":
        raise CheckError(f"{ckpt}: data.normalize {normalize!r} is neither zero_one nor minus_one_one")
    with torch.no_grad():
        y_ref = model.double()(x_net).numpy()
    print(f"input shape:  {list(x.shape)}")
    print(f"dae shape:    {list(y_dae.shape)}")
    print(f"torch shape:  {list(y_ref.shape)}")
    if y_dae.shape != y_ref.shape:
        print("FAIL: output shapes differ")
        return 1
    if not np.all(np.isfinite(y_dae)):
        print(f"FAIL: dae output has {int(np.sum(~np.isfinite(y_dae)))} non-finite values")
        return 1
    diff = np.abs(y_dae - y_ref)
    print(f"max abs diff: {diff.max():.3e}  (mean {diff.mean():.3e}, tol {args.tol:.1e})")
    if diff.max() > args.tol:
        idx = np.unravel_index(int(np.argmax(diff)), diff.shape)
        print(f"FAIL: worst at {list(map(int, idx))}: dae {y_dae[idx]:.6f} vs torch {y_ref[idx]:.6f}")
        return 1
    print("OK")
    return 0


# ----------------------------------------------------------------------------------------------
# Evaluation (--eval)


def full_config(meta: dict) -> dict:
    """The whole YAML config stored in a checkpoint's metadata (read_checkpoint checked it)."""
    yaml = need("yaml", "pyyaml")
    return yaml.safe_load(meta["config"]) or {}


def read_idx_images(path: Path):
    """uint8 array [n, rows, cols] from a gzipped IDX image file (magic 2051)."""
    np = need("numpy")
    if not path.is_file():
        raise CheckError(f"test images not found: {path}")
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise CheckError(f"cannot read {path} as gzip: {e}")
    if len(raw) < 16:
        raise CheckError(f"{path}: {len(raw)} bytes, too short for an IDX image header")
    magic, n, rows, cols = (int(v) for v in np.frombuffer(raw[:16], dtype=">u4"))
    if magic != 2051:
        raise CheckError(f"{path}: IDX magic {magic}, expected 2051 (unsigned byte images, 3 dims)")
    if n < 1 or rows < 1 or cols < 1:
        raise CheckError(f"{path}: bad IDX dims {n} x {rows} x {cols}")
    if len(raw) != 16 + n * rows * cols:
        raise CheckError(f"{path}: {len(raw) - 16} pixel bytes, dims {n} x {rows} x {cols} need {n * rows * cols}")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols)


def eval_settings(cfg: dict, sigmas_arg: str | None):
    """(sigmas, clip range or None, normalize) from the config and --sigmas."""
    noise = cfg.get("noise") or {}
    if not isinstance(noise, dict):
        raise CheckError(f"config 'noise' is not a mapping: {noise!r}")
    kind = noise.get("type", "gaussian")
    if kind != "gaussian":
        raise CheckError(f"noise.type is {kind!r}; --eval only does gaussian noise")
    if sigmas_arg is not None:
        try:
            sigmas = [float(v) for v in sigmas_arg.split(",") if v.strip()]
        except ValueError:
            raise CheckError(f"--sigmas must be comma-separated numbers, got {sigmas_arg!r}")
        src = "--sigmas"
    else:
        sigmas = noise.get("test_sigmas", [0.1, 0.3, 0.7, 1.0])
        src = "noise.test_sigmas"
        if not isinstance(sigmas, list):
            raise CheckError(f"noise.test_sigmas is not a list: {sigmas!r}")
    if not sigmas or not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in sigmas):
        raise CheckError(f"{src} must be a non-empty list of finite values >= 0, got {sigmas!r}")
    sigmas = [float(v) for v in sigmas]
    clip = noise.get("clip_range", [0.0, 1.0])
    if clip is not None:
        if (not isinstance(clip, list) or len(clip) != 2
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in clip) or clip[0] >= clip[1]):
            raise CheckError(f"noise.clip_range must be [lo, hi] with lo < hi, or null, got {clip!r}")
        clip = (float(clip[0]), float(clip[1]))
    normalize = (cfg.get("data") or {}).get("normalize", "zero_one")
    if normalize not in ("zero_one", "minus_one_one"):
        raise CheckError(f"data.normalize {normalize!r} is neither zero_one nor minus_one_one")
    return sigmas, clip, normalize


def read_dae_json(path: Path, sigmas: list) -> tuple[dict, dict]:
    """(the whole JSON, {index into sigmas: dae's row}); every sigma must have a row."""
    if not path.is_file():
        raise CheckError(f"--dae-json not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckError(f"cannot read {path} as JSON: {e}")
    rows = data.get("results") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise CheckError(f"{path}: no 'results' list")
    keys = ("sigma", "psnr", "ssim", "noisy_psnr", "noisy_ssim", "mse")
    by_sigma = {}
    for i, s in enumerate(sigmas):
        match = [r for r in rows if isinstance(r, dict) and isinstance(r.get("sigma"), (int, float))
                 and abs(r["sigma"] - s) <= 1e-6]
        if not match:
            have = [r.get("sigma") for r in rows if isinstance(r, dict)]
            raise CheckError(f"{path}: no result for sigma {s:g} (it has sigmas {have})")
        row = match[0]
        missing = [k for k in keys if not isinstance(row.get(k), (int, float))]
        if missing:
            raise CheckError(f"{path}: the sigma {s:g} result lacks numbers for {missing}")
        if row.get("noise", "gaussian") != "gaussian":
            raise CheckError(f"{path}: the sigma {s:g} result is for {row['noise']!r} noise, not gaussian")
        by_sigma[i] = row
    return data, by_sigma


def image_scores(a, clean, ssim_fn) -> tuple:
    """Per-image (MSE, PSNR, SSIM) arrays of a [n, h, w] float64 batch against clean."""
    np = need("numpy")
    mse = ((a - clean) ** 2).mean(axis=(1, 2))
    psnr = np.where(mse <= 1e-10, PSNR_CAP, 10.0 * np.log10(1.0 / np.maximum(mse, 1e-300)))
    ssim = np.array([ssim_fn(a[i], clean[i], gaussian_weights=True, sigma=1.5,
                             use_sample_covariance=False, data_range=1.0) for i in range(len(a))])
    return mse, psnr, ssim


def run_eval(args, results_out: list | None = None) -> int:
    np = need("numpy")
    torch = need("torch")
    need("skimage", "scikit-image")
    from skimage.metrics import structural_similarity

    ckpt = Path(args.ckpt)
    model_cfg, tensors, meta = read_checkpoint(ckpt, args.prefix)
    cfg = full_config(meta)
    sigmas, clip, normalize = eval_settings(cfg, args.sigmas)
    dae_data, dae_rows = read_dae_json(Path(args.dae_json), sigmas) if args.dae_json else (None, {})
    model, n_params = load_model(model_cfg, tensors)
    model.float().eval()
    if int(model_cfg.get("in_ch", 1)) != 1 or int(model_cfg.get("out_ch", 1)) != 1:
        raise CheckError(f"--eval needs a 1-channel model (in_ch = out_ch = 1), got {model_cfg}")
    images_path = Path(args.data_dir) / TEST_IMAGES
    pixels = read_idx_images(images_path)
    n = pixels.shape[0] if args.limit is None else min(args.limit, pixels.shape[0])
    clean32 = torch.from_numpy(pixels[:n].astype(np.float32) / np.float32(255.0)).unsqueeze(1)
    clean = clean32.squeeze(1).double().numpy()

    print(f"checkpoint: {ckpt}  ({len(tensors)} tensors, kind {meta.get('kind', '?')}, "
          f"dataset in config: {(cfg.get('data') or {}).get('dataset', '?')})")
    print(f"model: {model_cfg}  params: {n_params:,}")
    print(f"test images: {images_path}  ({n} of {pixels.shape[0]}, {pixels.shape[1]}x{pixels.shape[2]})")
    print(f"noise: gaussian, sigmas {sigmas}, clip {list(clip) if clip else None}, normalize {normalize}, "
          f"seed {args.seed} (+1000 per sigma index), batch {args.batch}, torch threads {torch.get_num_threads()}")
    if dae_data is not None:
        print(f"dae json: {args.dae_json}  (n_images {dae_data.get('n_images')}, "
              f"weights {dae_data.get('weights')}, seed {dae_data.get('seed')}, "
              f"checkpoint {dae_data.get('checkpoint')})")

    results = []
    t_all = time.perf_counter()
    for si, sigma in enumerate(sigmas):
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(args.seed + 1000 * si)
        noisy = clean32 + sigma * torch.randn(clean32.shape, generator=gen, dtype=torch.float32)
        if clip is not None:
            noisy = noisy.clamp(clip[0], clip[1])
        net_in = noisy if normalize == "zero_one" else noisy * 2.0 - 1.0
        outs = []
        with torch.no_grad():
            for b in range(0, n, args.batch):
                outs.append(model(net_in[b:b + args.batch]))
        recon = torch.cat(outs).squeeze(1).double().numpy()
        if recon.shape != clean.shape:
            raise CheckError(f"model output shape {list(recon.shape)} != images {list(clean.shape)}")
        if not np.all(np.isfinite(recon)):
            raise CheckError(f"sigma {sigma:g}: {int(np.sum(~np.isfinite(recon)))} non-finite output values")
        t_net = time.perf_counter() - t0
        r_mse, r_psnr, r_ssim = image_scores(recon, clean, structural_similarity)
        n_mse, n_psnr, n_ssim = image_scores(noisy.squeeze(1).double().numpy(), clean, structural_similarity)
        results.append(dict(sigma=sigma, psnr=float(r_psnr.mean()), noisy_psnr=float(n_psnr.mean()),
                            ssim=float(r_ssim.mean()), noisy_ssim=float(n_ssim.mean()), mse=float(r_mse.mean()),
                            noisy_mse=float(n_mse.mean()), psnr_std=float(r_psnr.std()), ssim_std=float(r_ssim.std())))
        print(f"sigma {sigma:g}: {n} images in {time.perf_counter() - t0:.1f} s "
              f"(network {t_net:.1f} s, metrics {time.perf_counter() - t0 - t_net:.1f} s)", flush=True)
    print(f"total {time.perf_counter() - t_all:.1f} s")
    if results_out is not None:
        results_out.extend(results)

    cols = ("psnr", "noisy_psnr", "ssim", "noisy_ssim", "mse", "psnr_std")
    heads = ("PSNR", "noisy PSNR", "SSIM", "noisy SSIM", "MSE", "PSNR std")
    fmts = ("{:.4f}", "{:.4f}", "{:.5f}", "{:.5f}", "{:.4e}", "{:.4f}")
    dfmts = ("{:+.4f}", "{:+.4f}", "{:+.5f}", "{:+.5f}", "{:+.2e}", "{:+.4f}")
    line = lambda first, src, vals: print(f"{first:>6}  {src:<6}" + "".join(f"  {v:>11}" for v in vals))
    print()
    line("sigma", "" if dae_data is None else "source", heads)
    failures = []
    for si, r in enumerate(results):
        sig = f"{r['sigma']:g}"
        line(sig, "torch" if dae_data is not None else "", [f.format(r[c]) for f, c in zip(fmts, cols)])
        if si not in dae_rows:
            continue
        d = dae_rows[si]
        line("", "dae", [f.format(d[c]) if isinstance(d.get(c), (int, float)) else "-" for f, c in zip(fmts, cols)])
        diffs = {c: r[c] - d[c] for c in cols if isinstance(d.get(c), (int, float))}
        line("", "diff", [f.format(diffs[c]) if c in diffs else "-" for f, c in zip(dfmts, cols)])
        for c, tol in (("psnr", EVAL_TOL_PSNR), ("noisy_psnr", EVAL_TOL_PSNR),
                       ("ssim", EVAL_TOL_SSIM), ("noisy_ssim", EVAL_TOL_SSIM)):
            if abs(diffs[c]) > tol:
                failures.append(f"sigma {sig}: |{c} difference| {abs(diffs[c]):.5f} > {tol}")
    if dae_data is None:
        return 0
    print(f"\ndiff = PyTorch - dae. Tolerances: |PSNR| and |noisy PSNR| <= {EVAL_TOL_PSNR} dB, "
          f"|SSIM| and |noisy SSIM| <= {EVAL_TOL_SSIM} (MSE and PSNR std: shown, not checked).")
    if dae_data.get("n_images") != n:
        print(f"WARNING: dae's JSON has n_images {dae_data.get('n_images')}, PyTorch evaluated {n} images")
    if failures:
        print("FAIL:")
        for f in failures:
            print("  -", f)
        return 1
    print("OK: PyTorch and dae agree within the tolerances")
    return 0


# ----------------------------------------------------------------------------------------------
# Self-test


def eval_self_test() -> list:
    """--eval on synthetic IDX data with a fixture model: runs, compares with a JSON made from its
    own numbers (exit 0), with shifted numbers (exit 1), and rejects a bad IDX magic (exit 2)."""
    try:
        need("skimage", "scikit-image")
    except CheckError as e:
        print(f"skip --eval self-test: {e}")
        return []
    np = need("numpy")
    torch = need("torch")
    import yaml
    from safetensors.torch import save_file

    from dae_models import build_model

    failures = []
    torch.manual_seed(1)
    model = build_model(FIXTURES["unet-16x2-group-relu-bilinear"]).eval()
    cfg = {"model": dict(FIXTURES["unet-16x2-group-relu-bilinear"]), "data": {"normalize": "minus_one_one"},
           "noise": {"type": "gaussian", "test_sigmas": [0.2, 0.5], "clip_range": [0.0, 1.0]}}
    pixels = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    header = np.array([2051, 7, 28, 28], dtype=">u4").tobytes()
    with tempfile.TemporaryDirectory(prefix="torch_check_eval_") as tmp:
        t = Path(tmp)
        ckpt = t / "m.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ckpt),
                  metadata={"config": yaml.safe_dump(cfg)})
        (t / "data").mkdir()
        with gzip.open(t / "data" / TEST_IMAGES, "wb") as f:
            f.write(header + pixels.tobytes())
        base = [str(ckpt), "--eval", "--data-dir", str(t / "data"), "--limit", "5", "--batch", "2"]

        def run(extra, results=None):
            buf = io.StringIO()
            with redirect_stdout(buf), redirect_stderr(buf):
                rc = main(base + extra, _eval_results=results)
            return rc, buf.getvalue()

        results = []
        rc, out = run([], results)
        if rc != 0 or [r["sigma"] for r in results] != [0.2, 0.5]:
            failures.append(f"--eval: exit {rc}, sigmas {[r['sigma'] for r in results]}:\n{out}")
        elif not (all(-1 <= r["ssim"] <= 1 and 0 < r["noisy_ssim"] <= 1 and 0 < r["psnr"] < PSNR_CAP
                      and r["noisy_psnr"] > 0 for r in results)
                  and results[0]["noisy_psnr"] > results[1]["noisy_psnr"]):
            failures.append(f"--eval: implausible numbers {results}")
        again = []
        run([], again)
        if again != results:
            failures.append("--eval: two runs with the same seed differ")
        js = t / "eval.json"
        for shift, want in ((0.0, 0), (0.01, 0), (0.1, 1)):
            rows = [dict(r, noise="gaussian", psnr=r["psnr"] + shift) for r in results]
            js.write_text(json.dumps({"n_images": 5, "results": rows}))
            rc, out = run(["--dae-json", str(js)])
            if rc != want:
                failures.append(f"--eval --dae-json with PSNR shifted by {shift}: exit {rc}, want {want}:\n{out}")
        rc, out = run(["--dae-json", str(js), "--sigmas", "0.3"])
        if rc != 2:
            failures.append(f"--eval --dae-json without the sigma: exit {rc}, want 2")
        with gzip.open(t / "data" / TEST_IMAGES, "wb") as f:
            f.write(np.array([2049, 7, 28, 28], dtype=">u4").tobytes() + pixels.tobytes())
        rc, out = run([])
        if rc != 2:
            failures.append(f"--eval with IDX magic 2049: exit {rc}, want 2")
    if not failures:
        print("ok   --eval on synthetic data: runs, deterministic, --dae-json tolerance, bad IDX rejected")
    return failures


def self_test(args) -> int:
    torch = need("torch")
    need("yaml", "pyyaml")
    from safetensors.torch import save_file
    import yaml

    from dae_models import build_model, num_params

    failures = []
    for sid, (cfg, want) in SPEC_COUNTS.items():
        got = num_params(build_model(cfg))
        ok = got == want
        print(f"{'ok  ' if ok else 'FAIL'} count {sid}: {got:,} (SPEC {want:,})")
        if not ok:
            failures.append(f"param count {sid}: {got} != {want}")

    if not FIXTURE_PATH.is_file():
        failures.append(f"fixture file missing: {FIXTURE_PATH} (run --write-fixtures)")
        fixtures = {}
    else:
        fixtures = json.loads(FIXTURE_PATH.read_text())
    fresh = fixture_data()
    for key, val in fresh.items():
        if fixtures and fixtures.get(key) != val:
            failures.append(f"fixture '{key}' differs from what PyTorch gives now")
            print(f"FAIL fixture {key}")
    extra = set(fixtures) - set(fresh)
    if extra:
        failures.append(f"fixture file has unknown keys {sorted(extra)}")

    # Each fixture config: forward at 28x28 (odd sizes + padding), and a checkpoint round trip
    # through the same reading path as a real check (safetensors + YAML config metadata).
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="torch_check_self_") as tmp:
        for fid, cfg in FIXTURES.items():
            model = build_model(cfg).eval()
            in_ch, out_ch = cfg.get("in_ch", 1), cfg.get("out_ch", 1)
            x = torch.rand(2, in_ch, 28, 28)
            with torch.no_grad():
                y = model(x)
            if list(y.shape) != [2, out_ch, 28, 28] or not torch.all((y >= 0) & (y <= 1)):
                failures.append(f"{fid}: bad forward output shape {list(y.shape)}")
            path = Path(tmp) / f"{fid}.safetensors"
            sd = {k: v.contiguous() for k, v in model.state_dict().items()}
            save_file(sd, str(path), metadata={"config": yaml.safe_dump({"model": dict(cfg)})})
            try:
                mcfg, tensors, _ = read_checkpoint(path)
                model2, _ = load_model(mcfg, tensors)
                with torch.no_grad():
                    y2 = model2.eval()(x)
                if not torch.equal(y, y2):
                    failures.append(f"{fid}: reloaded model gives a different output")
            except CheckError as e:
                failures.append(f"{fid}: round trip: {e}")
            # A missing key must be reported (strict).
            sd.pop(next(iter(sd)))
            try:
                load_model(mcfg, sd)
                failures.append(f"{fid}: strict load accepted a missing key")
            except CheckError:
                pass
            print(f"ok   fixture {fid}: {len(fresh[fid])} state_dict entries, "
                  f"{num_params(model):,} params")

    failures += eval_self_test()

    if failures:
        print("\nSELF-TEST FAILED:")
        for f in failures:
            print("  -", f)
        return 1
    print("\nself-test passed")
    return 0


def main(argv=None, _eval_results: list | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt", nargs="?", help="dae checkpoint (.safetensors)")
    p.add_argument("--dae", default="target/release/dae", help="path to the dae binary")
    p.add_argument("--batch", type=int, default=None, help="batch size (default 4; --eval: 500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=28, help="input height = width (default 28)")
    p.add_argument("--tol", type=float, default=1e-4, help="max abs difference allowed")
    p.add_argument("--prefix", default="", help="only use tensors whose name starts with this (stripped)")
    p.add_argument("--timeout", type=float, default=600, help="seconds allowed for dae infer")
    p.add_argument("--self-test", action="store_true", help="check models, counts and fixtures (no dae)")
    p.add_argument("--write-fixtures", action="store_true", help=f"regenerate {FIXTURE_PATH.relative_to(REPO)}")
    e = p.add_argument_group("evaluation (--eval; no dae needed)")
    e.add_argument("--eval", action="store_true", help="evaluate the checkpoint on the test split in PyTorch")
    e.add_argument("--data-dir", help=f"folder holding {TEST_IMAGES} (MNIST or Fashion-MNIST)")
    e.add_argument("--sigmas", help="comma-separated noise sigmas (default: the config's noise.test_sigmas)")
    e.add_argument("--limit", type=int, default=None, help="evaluate the first N test images (default all)")
    e.add_argument("--dae-json", help="dae's evaluation_results.json to compare with (exit 1 beyond tolerance)")
    args = p.parse_args(argv)
    try:
        if args.write_fixtures:
            need("torch")
            FIXTURE_PATH.parent.mkdir(parents=True, exist_ok=True)
            FIXTURE_PATH.write_text(dump_fixtures(fixture_data()))
            print(f"wrote {FIXTURE_PATH}")
            return 0
        if args.self_test:
            return self_test(args)
        if not args.ckpt:
            p.error("a checkpoint path is required (or --self-test / --write-fixtures)")
        if args.batch is None:
            args.batch = 500 if args.eval else 4
        if args.batch < 1 or args.size < 1:
            p.error("--batch and --size must be >= 1")
        if args.eval:
            if not args.data_dir:
                p.error("--eval needs --data-dir")
            if args.limit is not None and args.limit < 1:
                p.error("--limit must be >= 1")
            return run_eval(args, _eval_results)
        if args.data_dir or args.sigmas or args.limit is not None or args.dae_json:
            p.error("--data-dir, --sigmas, --limit and --dae-json go with --eval")
        return run_check(args)
    except CheckError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
