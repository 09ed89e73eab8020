#!/usr/bin/env python3
"""Write tests/fixtures/torch_reference.safetensors: what PyTorch computes for small SPEC models.

    python tools/torch_reference.py            # regenerate the fixture (needs torch, safetensors)

`cargo test` loads the fixture and runs the same weights and batch through dae's GPU models: the
eval-mode output, the training-mode output, the MSE loss, every parameter gradient and the
batch-norm running statistics after the step must match PyTorch. dae's CPU reference tape runs
dae's own model code, so only this check would see a structural mistake shared by both (the order
of pad and concat, align_corners, the Sequential order of a block).

PyTorch computes in float64 here; the tensors are stored as float32. Dropout is off (PyTorch's
RNG is not dae's Philox stream; dae's dropout is checked against its own CPU twin). For each
config id the file holds:
  {id}.state.{name}       the state_dict: weights (PyTorch's init, then biases and norm affines
                          perturbed so that a swapped tensor shows) and batch-norm running mean /
                          var (random) as float32, num_batches_tracked as int64
  {id}.x, {id}.t          the batch and the target, [2, in_ch, 28, 28]
  {id}.y_eval             model.eval()(x)
  {id}.y_train            model.train()(x)
  {id}.loss               mse(y_train, t), shape [1]
  {id}.grad.{name}        d loss / d param
  {id}.buffer_after.{name} running statistics after the training forward
and the metadata key `configs` maps each id to its model config (JSON).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

OUT = REPO / "tests" / "fixtures" / "torch_reference.safetensors"

# Small configs that together cover both architectures, every norm type and activation, both
# up modes, num_downs 1..3, the conv model's 28 -> 32 -> 28 resize, and 3 channels.
CONFIGS = {
    "conv-4x3-group-relu": dict(name="conv", base_ch=4, num_downs=3, norm_type="group", activation="relu"),
    "conv-4x2-batch-silu": dict(name="conv", base_ch=4, num_downs=2, norm_type="batch", activation="silu"),
    "conv-4x2-none-gelu": dict(name="conv", base_ch=4, num_downs=2, norm_type="none", activation="gelu"),
    "unet-4x2-group-relu-bilinear": dict(name="unet", base_ch=4, num_downs=2, norm_type="group", activation="relu", up="bilinear"),
    "unet-4x3-instance-gelu-transposed": dict(name="unet", base_ch=4, num_downs=3, norm_type="instance", activation="gelu", up="transposed"),
    "unet-4x2-batch-leakyrelu-bilinear": dict(name="unet", base_ch=4, num_downs=2, norm_type="batch", activation="leakyrelu", up="bilinear"),
    "unet-4x1-none-silu-transposed": dict(name="unet", base_ch=4, num_downs=1, norm_type="none", activation="silu", up="transposed"),
    "unet-4x2-group-relu-bilinear-in3-out3": dict(name="unet", base_ch=4, num_downs=2, norm_type="group", activation="relu", up="bilinear", in_ch=3, out_ch=3),
}
BATCH, HW = 2, 28


def main() -> int:
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save_file

    from dae_models import build_model

    torch.manual_seed(20261201)
    out: dict[str, torch.Tensor] = {}
    f32 = lambda t: t.detach().to(torch.float32).contiguous()  # noqa: E731
    for cid, cfg in CONFIGS.items():
        model = build_model(cfg).double()
        with torch.no_grad():
            for name, p in model.named_parameters():
                # Zero biases and unit norm weights would hide a bias applied to the wrong layer.
                if name.endswith("bias") or p.dim() == 1:
                    p.add_(0.2 * torch.randn_like(p))
            for name, b in model.named_buffers():
                if name.endswith("running_mean"):
                    b.copy_(0.1 * torch.randn_like(b))
                elif name.endswith("running_var"):
                    b.copy_(1.0 + 0.5 * torch.rand_like(b))
        in_ch, out_ch = cfg.get("in_ch", 1), cfg.get("out_ch", 1)
        # Stored as float32 and computed from the float32 values, so both sides see one input.
        x = torch.rand(BATCH, in_ch, HW, HW, dtype=torch.float32).double()
        t = torch.rand(BATCH, out_ch, HW, HW, dtype=torch.float32).double()
        out[f"{cid}.x"], out[f"{cid}.t"] = f32(x), f32(t)
        # The weights the GPU sees are the float32 ones: compute from exactly those.
        with torch.no_grad():
            for _, p in model.named_parameters():
                p.copy_(p.to(torch.float32).double())
            for _, b in model.named_buffers():
                if b.is_floating_point():
                    b.copy_(b.to(torch.float32).double())
        for name, v in model.state_dict().items():
            out[f"{cid}.state.{name}"] = f32(v) if v.is_floating_point() else v.clone()
        model.eval()
        with torch.no_grad():
            out[f"{cid}.y_eval"] = f32(model(x))
        model.train()
        y = model(x)
        loss = F.mse_loss(y, t)
        loss.backward()
        out[f"{cid}.y_train"] = f32(y)
        out[f"{cid}.loss"] = f32(loss.reshape(1))
        for name, p in model.named_parameters():
            out[f"{cid}.grad.{name}"] = f32(p.grad)
        for name, b in model.named_buffers():
            if not name.endswith("num_batches_tracked"):
                out[f"{cid}.buffer_after.{name}"] = f32(b)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    meta = {"configs": json.dumps(CONFIGS), "torch": torch.__version__, "batch": str(BATCH), "hw": str(HW)}
    save_file(out, str(OUT), metadata=meta)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB, {len(CONFIGS)} configs, torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
