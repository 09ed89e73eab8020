#!/usr/bin/env python3
"""Write tests/fixtures/metrics_reference.safetensors: SSIM, PSNR, MSE and 2-D FFT as scikit-image
and numpy compute them.

    python tools/metrics_reference.py          # regenerate the fixture (needs numpy, scipy,
                                               # scikit-image, safetensors)

`cargo test` checks dae's CPU metric references (and through them the GPU kernels) against these
values, so a mistake in the window, the constants, the border handling or the FFT's sign
convention shows up as a mismatch with the libraries everyone else reports numbers with.

Deterministic: numpy's default_rng(SEED). Every input image is rounded through float32 first, so
the values dae reads as f32 are exactly the ones the references were computed from; the
references themselves are computed in float64. Every tensor is stored as F64. The file holds:

  ssim.clean, ssim.distorted   [K, 1, 28, 28], K = 8 pairs of digit-like stroke images in [0, 1]
                               and a distorted copy; pair k uses distortion DISTORTIONS[k]:
                                 0 noise0.05   gaussian noise sigma 0.05, clipped to [0, 1]
                                 1 noise0.2    gaussian noise sigma 0.2, clipped
                                 2 noise0.5    gaussian noise sigma 0.5, clipped
                                 3 box3        3x3 box blur (scipy uniform_filter, mode reflect)
                                 4 shift1      shifted one pixel right and one down, the first
                                               row / column repeated
                                 5 contrast0.5 0.5 + 0.5 (x - 0.5)
                                 6 saltpepper  10% of the pixels set to 0 or 1 (even odds)
                                 7 near        gaussian noise sigma 1e-3, clipped
  ssim.value   [K]   skimage.metrics.structural_similarity(clean, distorted,
                     gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                     data_range=1.0) on the 2-D arrays (float64). That is: an 11-tap Gaussian
                     (radius int(3.5 * 1.5 + 0.5) = 5, exp(-x^2 / 4.5) normalised), K1 0.01,
                     K2 0.03, population variances, and the mean of the SSIM map with a 5-pixel
                     border cropped, i.e. over the "valid" region, where the reflect padding
                     skimage filters with never enters.
  psnr.value   [K]   skimage.metrics.peak_signal_noise_ratio(clean, distorted, data_range=1.0)
  mse.value    [K]   mean((clean - distorted)^2)
  ssim_odd.clean, ssim_odd.distorted [2, 1, 23, 19], ssim_odd.value [2]: the same SSIM call on odd,
                     non-square sizes (pair 0: noise 0.1, pair 1: 3x3 box blur).
  fft.{h}x{w}.x      [3, h, w] random images in [0, 1), for (h, w) in FFT_SIZES
  fft.{h}x{w}.re, fft.{h}x{w}.im  [3, h, w] real and imaginary parts of numpy.fft.fft2(x) over the
                     last two axes: X[k, l] = sum_{y, x} x[y, x] exp(-2 pi i (k y / h + l x / w)),
                     no shift, no normalisation.
Metadata: skimage, numpy, scipy versions, the seed and the distortion list.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

OUT = REPO / "tests" / "fixtures" / "metrics_reference.safetensors"

SEED = 20260417
HW = 28
DISTORTIONS = ["noise0.05", "noise0.2", "noise0.5", "box3", "shift1", "contrast0.5", "saltpepper", "near"]
FFT_SIZES = [(28, 28), (32, 32), (27, 31), (64, 64), (1, 1)]


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


def f32(a):
    """Round to float32 and back: the values dae will read."""
    import numpy as np

    return np.asarray(a, dtype=np.float32).astype(np.float64)


def strokes(rng, h: int, w: int):
    """A digit-like image: 2-4 thick strokes (segments and arcs) on a dark background, in [0, 1]."""
    import numpy as np

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w))
    m = 0.2 * min(h, w)
    for _ in range(rng.integers(2, 5)):
        width = rng.uniform(0.9, 1.6)
        if rng.random() < 0.6:  # segment
            p0 = rng.uniform([m, m], [h - m, w - m])
            p1 = rng.uniform([m, m], [h - m, w - m])
            d = p1 - p0
            t = ((yy - p0[0]) * d[0] + (xx - p0[1]) * d[1]) / max(d @ d, 1e-9)
            t = np.clip(t, 0.0, 1.0)
            dist2 = (yy - p0[0] - t * d[0]) ** 2 + (xx - p0[1] - t * d[1]) ** 2
        else:  # arc of a circle
            c = rng.uniform([0.35 * h, 0.35 * w], [0.65 * h, 0.65 * w])
            r = rng.uniform(0.15, 0.3) * min(h, w)
            a0 = rng.uniform(0, 2 * np.pi)
            span = rng.uniform(np.pi / 2, 2 * np.pi)
            ang = np.mod(np.arctan2(yy - c[0], xx - c[1]) - a0, 2 * np.pi)
            rad = np.hypot(yy - c[0], xx - c[1])
            on = ang <= span
            # Off the arc: distance to the nearer end point.
            ends = [c + r * np.array([np.sin(a), np.cos(a)]) for a in (a0, a0 + span)]
            de = np.minimum(*[(yy - e[0]) ** 2 + (xx - e[1]) ** 2 for e in ends])
            dist2 = np.where(on, (rad - r) ** 2, de)
        img = np.maximum(img, rng.uniform(0.7, 1.0) * np.exp(-dist2 / (2 * width**2)))
    # A faint smooth background so the image is nowhere exactly constant.
    img = img + 0.05 * rng.random() * (yy / h + xx / w)
    return f32(np.clip(img, 0.0, 1.0))


def distort(rng, img, kind: str):
    import numpy as np
    from scipy.ndimage import uniform_filter

    if kind.startswith("noise"):
        out = img + float(kind[5:]) * rng.standard_normal(img.shape)
    elif kind == "near":
        out = img + 1e-3 * rng.standard_normal(img.shape)
    elif kind == "box3":
        out = uniform_filter(img, size=3, mode="reflect")
    elif kind == "shift1":
        out = np.empty_like(img)
        out[1:, 1:] = img[:-1, :-1]
        out[0, 1:] = img[0, :-1]
        out[1:, 0] = img[:-1, 0]
        out[0, 0] = img[0, 0]
    elif kind == "contrast0.5":
        out = 0.5 + 0.5 * (img - 0.5)
    elif kind == "saltpepper":
        out = img.copy()
        hit = rng.random(img.shape) < 0.1
        out[hit] = (rng.random(img.shape) < 0.5)[hit].astype(np.float64)
    else:
        raise ValueError(kind)
    return f32(np.clip(out, 0.0, 1.0))


def ssim_ref(a, b) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0))


def ssim_valid(a, b) -> float:
    """The same SSIM computed as dae's CPU reference does (valid-region separable filter); only a
    cross-check that the two formulations agree."""
    import numpy as np

    x = np.arange(11) - 5.0
    g = np.exp(-(x**2) / (2 * 1.5**2))
    g /= g.sum()

    def filt(im):
        h, w = im.shape
        rows = np.stack([im[:, i : i + 11] @ g for i in range(w - 10)], axis=1)
        return np.stack([g @ rows[i : i + 11, :] for i in range(h - 10)], axis=0)

    ma, mb = filt(a), filt(b)
    va, vb, cov = filt(a * a) - ma * ma, filt(b * b) - mb * mb, filt(a * b) - ma * mb
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return float(s.mean())


def main() -> int:
    import numpy as np
    import scipy
    import skimage
    from safetensors.numpy import save_file
    from skimage.metrics import peak_signal_noise_ratio

    rng = np.random.default_rng(SEED)
    out: dict[str, np.ndarray] = {}

    k = len(DISTORTIONS)
    clean = np.stack([strokes(rng, HW, HW) for _ in range(k)])
    dist = np.stack([distort(rng, clean[i], d) for i, d in enumerate(DISTORTIONS)])
    ssim = np.array([ssim_ref(clean[i], dist[i]) for i in range(k)])
    psnr = np.array([peak_signal_noise_ratio(clean[i], dist[i], data_range=1.0) for i in range(k)])
    mse = ((clean - dist) ** 2).mean(axis=(1, 2))
    for i in range(k):
        assert np.ptp(clean[i]) > 0.5 and np.ptp(dist[i]) > 0.1, "constant image"
        assert abs(ssim[i] - ssim_valid(clean[i], dist[i])) < 1e-12, "valid-region SSIM disagrees with skimage"
    out["ssim.clean"], out["ssim.distorted"] = clean[:, None], dist[:, None]
    out["ssim.value"], out["psnr.value"], out["mse.value"] = ssim, psnr, mse

    oh, ow = 23, 19
    oc = np.stack([strokes(rng, oh, ow) for _ in range(2)])
    od = np.stack([distort(rng, oc[0], "noise0.1"), distort(rng, oc[1], "box3")])
    osv = np.array([ssim_ref(oc[i], od[i]) for i in range(2)])
    for i in range(2):
        assert abs(osv[i] - ssim_valid(oc[i], od[i])) < 1e-12
    out["ssim_odd.clean"], out["ssim_odd.distorted"], out["ssim_odd.value"] = oc[:, None], od[:, None], osv

    for h, w in FFT_SIZES:
        x = f32(rng.random((3, h, w)))
        X = np.fft.fft2(x, axes=(-2, -1))
        out[f"fft.{h}x{w}.x"] = x
        out[f"fft.{h}x{w}.re"] = np.ascontiguousarray(X.real)
        out[f"fft.{h}x{w}.im"] = np.ascontiguousarray(X.imag)
    assert np.array_equal(out["fft.1x1.re"], out["fft.1x1.x"]) and not out["fft.1x1.im"].any()

    out = {name: np.ascontiguousarray(v, dtype=np.float64) for name, v in out.items()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "skimage": skimage.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "seed": str(SEED),
        "distortions": ",".join(DISTORTIONS),
        "ssim_odd_distortions": "noise0.1,box3",
    }
    save_file(out, str(OUT), metadata=meta)
    canonical_header(OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB, {len(out)} tensors, skimage {skimage.__version__}, numpy {np.__version__})")
    for i, d in enumerate(DISTORTIONS):
        print(f"  {i} {d:12s} ssim {ssim[i]:.12f}  psnr {psnr[i]:9.5f} dB  mse {mse[i]:.6e}")
    print(f"  odd 23x19   ssim {osv[0]:.12f}  {osv[1]:.12f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
