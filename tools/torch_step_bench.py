#!/usr/bin/env python3
"""PyTorch's own training step of a SPEC model, the step `dae bench --models` times: forward,
MSE, backward, global grad-norm clip 1.0, AdamW (lr 2e-4, weight decay 1e-4), EMA 0.999, on
random [0, 1) data, NCHW f32 with TF32 off for matmul and cuDNN. Prints one JSON line.

    python tools/torch_step_bench.py --model unet64x3 --batch 128 [--device cuda] [--iters 20]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dae_models import build_model, num_params  # noqa: E402


def spec(name: str) -> dict:
    for arch in ("unet", "conv"):
        if name.startswith(arch):
            base, downs = name[len(arch):].split("x")
            return {"name": arch, "base_ch": int(base), "num_downs": int(downs)}
    raise SystemExit(f"--model {name!r} is not like unet64x3 or conv64x3")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="unet64x3")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    dev = torch.device(a.device)
    torch.manual_seed(0)
    model = build_model(spec(a.model)).to(dev).train()
    ema = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=1e-4, betas=(0.9, 0.999), eps=1e-8)
    x = torch.rand(a.batch, 1, 28, 28, device=dev)
    y = torch.rand(a.batch, 1, 28, 28, device=dev)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, list(model.parameters()), 1 - 0.999)

    t0 = time.perf_counter()
    step()
    sync()
    first = time.perf_counter() - t0
    for _ in range(a.warmup):
        step()
    sync()
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({
        "framework": f"pytorch {torch.__version__}",
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "model": a.model, "batch": a.batch, "params": num_params(model),
        "tf32": False, "median_step_ms": 1e3 * med, "images_per_s": a.batch / med, "first_step_s": first,
    }))


if __name__ == "__main__":
    main()
