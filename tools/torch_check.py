#!/usr/bin/env python3
"""Check a `dae` checkpoint against PyTorch.

    python tools/torch_check.py CKPT.safetensors [--dae target/release/dae] [--batch 4] [--seed 0]
    python tools/torch_check.py --self-test          # no dae needed
    python tools/torch_check.py --write-fixtures     # regenerate tests/fixtures/torch_state_dicts.json

With a checkpoint: builds the PyTorch model from the checkpoint's `config` metadata (its `model:`
section), loads the tensors with `load_state_dict(strict=True)`, runs a deterministic batch
(numpy default_rng(seed), values in [0, 1)) through `dae infer` and through PyTorch (eval mode),
and prints the max absolute difference. Exit status 1 when it is above --tol, 2 on any error.

Needs: torch, safetensors, numpy, pyyaml.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
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
# Self-test


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

    if failures:
        print("\nSELF-TEST FAILED:")
        for f in failures:
            print("  -", f)
        return 1
    print("\nself-test passed")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt", nargs="?", help="dae checkpoint (.safetensors)")
    p.add_argument("--dae", default="target/release/dae", help="path to the dae binary")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=28, help="input height = width (default 28)")
    p.add_argument("--tol", type=float, default=1e-4, help="max abs difference allowed")
    p.add_argument("--prefix", default="", help="only use tensors whose name starts with this (stripped)")
    p.add_argument("--timeout", type=float, default=600, help="seconds allowed for dae infer")
    p.add_argument("--self-test", action="store_true", help="check models, counts and fixtures (no dae)")
    p.add_argument("--write-fixtures", action="store_true", help=f"regenerate {FIXTURE_PATH.relative_to(REPO)}")
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
        if args.batch < 1 or args.size < 1:
            p.error("--batch and --size must be >= 1")
        return run_check(args)
    except CheckError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
