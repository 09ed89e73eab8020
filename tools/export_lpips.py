#!/usr/bin/env python3
"""Export LPIPS weights for dae's evaluation, or write the LPIPS test fixture.

    python tools/export_lpips.py --net alex lpips_alex.safetensors    # weights for a dae config
    python tools/export_lpips.py --net vgg  lpips_vgg.safetensors
    python tools/export_lpips.py --fixture                            # tests/fixtures/lpips_reference.safetensors

Needs torch, torchvision, lpips (pip install lpips) and safetensors.

Export (--net NET OUT)
    Builds lpips.LPIPS(net=NET, version='0.1'). The linear heads ship inside the lpips pip
    package; the ImageNet backbone (AlexNet or VGG16 `features`) is downloaded by torchvision,
    once, on YOUR machine, into torch's hub cache: that download is yours to make, dae itself never
    downloads model weights. The whole state_dict is written to OUT as float32 under PyTorch's
    names (scaling_layer.shift, scaling_layer.scale, net.slice1.0.weight, ..., lin0.model.1.weight,
    ...), except the `lins.{k}.*` entries, which are aliases of `lin{k}.*` (the same tensors,
    registered twice by lpips; safetensors refuses shared tensors). Metadata: net, lpips_version
    (the pip package's version), version (the LPIPS weights version, 0.1). Prints the file's
    SHA-256 and the config section to paste:

        eval:
          lpips: {net: NET, weights: OUT, sha256: HEX}

    --random-backbone keeps torchvision's random init instead of downloading (tests only; the
    metadata says so).

Fixture (--fixture)
    `cargo test` checks dae's LPIPS against the real lpips package with this file. The backbones
    are NOT stored (VGG16's convolutions alone are 59 MB); both sides regenerate them. For each net
    in (alex, vgg): m = lpips.LPIPS(net=net, version='0.1', pnet_rand=True) (no download), then
    every Conv2d of m.net in forward order (alex: 5, vgg: 13; only the layers inside lpips'
    slices) gets its weight, then its bias, from ONE splitmix64 stream per net, seeded 1234:

        state += 0x9E3779B97F4A7C15                       (mod 2^64)
        z = state
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9          (mod 2^64)
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB          (mod 2^64)
        next_u64 = z ^ (z >> 31)
        u = f32(next_u64 >> 40) / f32(2^24) * 2 - 1       (f32 arithmetic; uniform in [-1, 1))

    i.e. the i-th draw (i = 0, 1, ...) mixes state_i = 1234 + (i + 1) * 0x9E3779B97F4A7C15.
    Weight values, in PyTorch's memory order ([cout, cin, kh, kw] row-major), are
    f32(u) * f32(sqrt(6 / fan_in)) with fan_in = cin * kh * kw, the product taken in float32;
    then the cout bias values are f32(0.1) * f32(u). The stream continues from layer to layer.
    The real linear heads of the pip package (weights v0.1) ARE stored.

    The file holds (F32 unless noted):
      x0, x1                    [P, 1, 28, 28] images in [0, 1], shared by both nets. Pair 0 is
                                identical, pair 1 adds noise 0.05, pair 2 noise 0.3 (clipped), pair
                                3 pairs two unrelated images.
      {net}.lin{k}.model.1.weight  [1, C_k, 1, 1] the heads, k = 0..4
      {net}.lpips               [P] F64, the reference distance
      {net}.lpips_layer         [P, 5] F64, per-tap contributions (they sum to {net}.lpips)
      {net}.conv_sum            [n_conv, 2] F64, sum of each conv's weight / bias values (a check
                                that the regenerated backbone matches)
    The reference is computed in float64 (m.double(), the float32 weights cast exactly): each
    image is resized with F.interpolate(x, size=(64, 64), mode='bilinear', align_corners=False),
    repeated to 3 channels, mapped to [-1, 1] by 2x - 1, then m(a, b, normalize=False) ->
    [P, 1, 1, 1]. Metadata: seed, resize, nets, torch, lpips.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

FIXTURE = REPO / "tests" / "fixtures" / "lpips_reference.safetensors"

SEED = 1234
GAMMA = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1
NETS = ("alex", "vgg")
P, HW, RESIZE = 4, 28, 64


def lpips_package_version() -> str:
    import lpips

    v = getattr(lpips, "__version__", None)
    if not v:
        try:
            from importlib.metadata import version

            v = version("lpips")
        except Exception:
            v = "0.1"
    return v


def build(net: str, pnet_rand: bool):
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's `pretrained=` deprecation warnings
        return lpips.LPIPS(net=net, version="0.1", pnet_rand=pnet_rand, verbose=False)


def state_tensors(m) -> dict:
    """The state_dict as contiguous float32, without the `lins.{k}` aliases of `lin{k}`."""
    out = {}
    for name, t in m.state_dict().items():
        if name.startswith("lins."):
            continue
        out[name] = t.detach().to("cpu").float().contiguous().clone()
    return out


def canonical_header(path) -> None:
    """Rewrite a safetensors header with sorted keys. safetensors serialises the metadata from a
    hash map, so its key order (and the file's hash) changes from run to run; this makes the
    bytes depend on the content only. Tensor data and offsets are untouched."""
    import json
    import struct

    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob[8 + n :])


# ----------------------------------------------------------------------------- splitmix64


def splitmix_scalar(seed: int, n: int) -> list[float]:
    """The Rust Rng, one Python int at a time (only to check the vectorised version)."""
    import numpy as np

    s, out = seed, []
    for _ in range(n):
        s = (s + GAMMA) & MASK
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        out.append(float(np.float32(np.float32(z >> 40) / np.float32(1 << 24)) * np.float32(2.0) - np.float32(1.0)))
    return out


def splitmix_uniform(seed: int, start: int, n: int):
    """Draws start .. start+n-1 of the stream seeded `seed`, as float32 in [-1, 1)."""
    import numpy as np

    with np.errstate(over="ignore"):
        i = np.arange(start + 1, start + n + 1, dtype=np.uint64)
        z = np.uint64(seed) + i * np.uint64(GAMMA)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    top = (z >> np.uint64(40)).astype(np.float32)  # < 2^24: exact
    return (top / np.float32(1 << 24)) * np.float32(2.0) - np.float32(1.0)


def fill_backbone(m, seed: int):
    """Overwrite every Conv2d of m.net, forward order, weight then bias, from one stream.
    Returns [(name, weight_sum, bias_sum)]."""
    import numpy as np
    import torch

    convs = [(n, c) for n, c in m.net.named_modules() if isinstance(c, torch.nn.Conv2d)]
    pos, sums = 0, []
    for name, conv in convs:
        cout, cin, kh, kw = conv.weight.shape
        nw = cout * cin * kh * kw
        scale = np.float32(math.sqrt(6.0 / (cin * kh * kw)))
        w = splitmix_uniform(seed, pos, nw) * scale
        pos += nw
        b = np.float32(0.1) * splitmix_uniform(seed, pos, cout)
        pos += cout
        assert w.dtype == np.float32 and b.dtype == np.float32
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w.reshape(cout, cin, kh, kw)))
            conv.bias.copy_(torch.from_numpy(b))
        sums.append((name, float(w.astype(np.float64).sum()), float(b.astype(np.float64).sum())))
    return sums, pos


# ----------------------------------------------------------------------------- modes


def export(net: str, out: str, random_backbone: bool) -> int:
    from safetensors.torch import save_file

    try:
        m = build(net, pnet_rand=random_backbone)
    except Exception as e:  # typically the torchvision download: no network, proxy, ...
        print(f"error: building lpips.LPIPS(net={net!r}) failed: {e}", file=sys.stderr)
        print("torchvision must download the ImageNet backbone once (or find it in ~/.cache/torch/hub).", file=sys.stderr)
        return 1
    tensors = state_tensors(m)
    meta = {"net": net, "lpips_version": lpips_package_version(), "version": "0.1"}
    if random_backbone:
        meta["backbone"] = "random (torchvision init; tests only)"
    save_file(tensors, out, metadata=meta)
    canonical_header(out)
    with open(out, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    n = sum(t.numel() for t in tensors.values())
    print(f"wrote {out}: {len(tensors)} tensors, {n} values (LPIPS {net}, v0.1, lpips {meta['lpips_version']})")
    print(f"sha256 {digest}")
    print("paste into the dae config:")
    print("eval:")
    print(f"  lpips: {{net: {net}, weights: {out}, sha256: {digest}}}")
    return 0


def smooth_image(rng, h: int, w: int):
    import numpy as np
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(rng.standard_normal((h, w)), sigma=rng.uniform(1.5, 3.0), mode="wrap")
    f = (f - f.min()) / (f.max() - f.min())
    return f


def fixture() -> int:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save_file

    # The vectorised stream must be the Rust function, draw for draw.
    ref = splitmix_scalar(SEED, 2000)
    vec = splitmix_uniform(SEED, 0, 2000)
    assert [float(v) for v in vec] == ref, "vectorised splitmix64 disagrees with the scalar one"
    assert [float(v) for v in splitmix_uniform(SEED, 1500, 500)] == ref[1500:]

    rng = np.random.default_rng(SEED)
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    x0 = np.stack([smooth_image(rng, HW, HW) for _ in range(P)])
    x1 = np.stack([
        x0[0],
        np.clip(x0[1] + 0.05 * rng.standard_normal((HW, HW)), 0, 1),
        np.clip(x0[2] + 0.3 * rng.standard_normal((HW, HW)), 0, 1),
        smooth_image(rng, HW, HW),
    ])
    x0, x1 = f32(x0)[:, None], f32(x1)[:, None]
    out: dict[str, torch.Tensor] = {"x0": torch.from_numpy(x0.copy()), "x1": torch.from_numpy(x1.copy())}

    def prep(x):
        x = torch.from_numpy(x).double()
        x = F.interpolate(x, size=(RESIZE, RESIZE), mode="bilinear", align_corners=False)
        return 2 * x.repeat(1, 3, 1, 1) - 1

    a, b = prep(x0), prep(x1)
    summary = []
    for net in NETS:
        m = build(net, pnet_rand=True)
        sums, used = fill_backbone(m, SEED)
        for k in range(5):
            name = f"lin{k}.model.1.weight"
            out[f"{net}.{name}"] = m.state_dict()[name].float().contiguous().clone()
        m = m.double().eval()
        with torch.no_grad():
            val, layers = m(a, b, retPerLayer=True, normalize=False)
        val = val.reshape(P)
        layers = torch.stack([r.reshape(P) for r in layers], dim=1)
        assert torch.allclose(layers.sum(1), val, rtol=1e-12, atol=0)
        out[f"{net}.lpips"] = val.contiguous()
        out[f"{net}.lpips_layer"] = layers.contiguous()
        out[f"{net}.conv_sum"] = torch.tensor([[w, bb] for _, w, bb in sums], dtype=torch.float64)
        summary.append((net, len(sums), used, val.tolist(), sums[0]))

    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "seed": str(SEED),
        "resize": f"{RESIZE}x{RESIZE} bilinear align_corners=false",
        "nets": ",".join(NETS),
        "torch": torch.__version__,
        "lpips": lpips_package_version(),
    }
    save_file(out, str(FIXTURE), metadata=meta)
    canonical_header(FIXTURE)
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size // 1024} KiB, {len(out)} tensors)")
    print(f"splitmix64 seed {SEED}, first uniforms: {', '.join(f'{v:.9g}' for v in ref[:4])}")
    for net, nconv, used, vals, first in summary:
        print(f"  {net}: {nconv} convs, {used} draws; lpips = {', '.join(f'{v:.12g}' for v in vals)}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", help="output .safetensors path (export mode)")
    ap.add_argument("--net", choices=NETS, help="backbone to export")
    ap.add_argument("--fixture", action="store_true", help=f"write {FIXTURE.relative_to(REPO)} instead")
    ap.add_argument("--random-backbone", action="store_true", help="export mode: no download, random backbone (tests only)")
    args = ap.parse_args()
    try:
        import lpips  # noqa: F401
        import safetensors  # noqa: F401
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as e:
        print(f"error: {e}; install with: pip install torch torchvision lpips safetensors", file=sys.stderr)
        return 2
    if args.fixture:
        if args.out or args.net:
            ap.error("--fixture takes no --net or output path")
        return fixture()
    if not (args.net and args.out):
        ap.error("export mode needs --net alex|vgg and an output path")
    return export(args.net, args.out, args.random_backbone)


if __name__ == "__main__":
    sys.exit(main())
