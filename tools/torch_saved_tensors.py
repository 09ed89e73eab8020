#!/usr/bin/env python3
"""Write tests/fixtures/torch_saved_tensors.json: the bytes PyTorch saves for backward.

    python tools/torch_saved_tensors.py              # regenerate the fixture (needs torch)
    python tools/torch_saved_tensors.py --breakdown  # also print the saved bytes per autograd op

dae's benchmark compares the GPU memory its recorded training step needs against an analytic
minimum: parameters + gradients + two Adam moments + EMA (5 x param_bytes) plus what PyTorch keeps
for backward in the same model and batch. This tool measures the latter on the PyTorch twin of
dae's models (tools/dae_models.py): float32, train mode, x = rand(batch, 1, 28, 28),
t = rand(batch, 1, 28, 28), loss = mse(model(x), t), all under
`torch.autograd.graph.saved_tensors_hooks`. The pack hook sees every tensor an op saves; the
tool counts unique storages (keyed by `untyped_storage().data_ptr()`: one storage saved by several
ops, e.g. a ReLU output that the next conv saves as its input, counts once; a view counts its whole
storage) and sums their `untyped_storage().nbytes()`.

For each row:
  params             parameter count (checked against the SPEC for the three architectures)
  param_bytes        4 * params
  saved_bytes        unique saved storages, parameters excluded (dae counts those separately);
                     includes the batch x and the target t where an op saves them
  saved_count        number of those storages
  saved_param_bytes  unique saved storages that are parameters (information only)
  saved_input_bytes  the part of saved_bytes that is x or t (information only)
  min_bytes          5 * param_bytes + saved_bytes

The pack hook returns the tensor itself, so every saved storage stays alive until the end of the
forward and no address can be reused by a later allocation during the count. The numbers are
measured on CPU; the ops saved by the CUDA kernels (cuDNN conv, group norm, max pool, sigmoid,
ReLU) are the same tensors with the same shapes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

OUT = REPO / "tests" / "fixtures" / "torch_saved_tensors.json"

MODELS = {
    "unet16x2": dict(name="unet", base_ch=16, num_downs=2),
    "unet64x3": dict(name="unet", base_ch=64, num_downs=3),
    "conv64x3": dict(name="conv", base_ch=64, num_downs=3),
}
# Parameter counts from the SPEC: a mismatch means dae_models.py is not dae's model.
SPEC_PARAMS = {"unet16x2": 65_153, "unet64x3": 4_281_089, "conv64x3": 6_665_089}
ROWS = ["unet16x2@32", "unet64x3@16", "unet64x3@128", "conv64x3@16", "conv64x3@128", "unet16x2@128"]
HW = 28

NOTE = (
    "Tensors PyTorch saves for backward (saved_tensors_hooks) in a float32 train-mode step of the "
    "dae_models.py twin: x, t = rand(batch, 1, 28, 28), loss = mse(model(x), t). Unique storages "
    "by untyped_storage().data_ptr(), bytes = untyped_storage().nbytes(). saved_bytes excludes "
    "parameters (saved_param_bytes, information only) and includes x and t where saved "
    "(saved_input_bytes). min_bytes = 5 * param_bytes (params, grads, Adam m and v, EMA) + "
    "saved_bytes. Regenerate with python tools/torch_saved_tensors.py."
)


def measure(model_name: str, batch: int, breakdown: bool) -> dict:
    import torch
    import torch.nn.functional as F

    from dae_models import build_model, num_params

    model = build_model(MODELS[model_name]).float().train()
    params = num_params(model)
    if params != SPEC_PARAMS[model_name]:
        raise SystemExit(
            f"{model_name}: {params:,} parameters, the SPEC says {SPEC_PARAMS[model_name]:,}"
        )
    param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
    x = torch.rand(batch, 1, HW, HW)
    t = torch.rand(batch, 1, HW, HW)
    input_ptrs = {x.untyped_storage().data_ptr(), t.untyped_storage().data_ptr()}

    storages: dict[int, int] = {}  # data_ptr -> nbytes
    first_seen: dict[int, tuple] = {}  # data_ptr -> (dtype, shape) of the first saved view

    def pack(tensor):
        st = tensor.untyped_storage()
        ptr = st.data_ptr()
        storages.setdefault(ptr, st.nbytes())
        first_seen.setdefault(ptr, (str(tensor.dtype).removeprefix("torch."), tuple(tensor.shape)))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = F.mse_loss(model(x), t)

    saved = {p: n for p, n in storages.items() if p not in param_ptrs}
    saved_bytes = sum(saved.values())
    param_bytes = 4 * params
    row = {
        "params": params,
        "param_bytes": param_bytes,
        "saved_bytes": saved_bytes,
        "saved_count": len(saved),
        "saved_param_bytes": sum(n for p, n in storages.items() if p in param_ptrs),
        "saved_input_bytes": sum(n for p, n in saved.items() if p in input_ptrs),
        "min_bytes": 5 * param_bytes + saved_bytes,
    }
    if breakdown:
        print_breakdown(loss, param_ptrs)
    # Finish the step so that the saved tensors are consumed the normal way.
    loss.backward()
    return row


def print_breakdown(loss, param_ptrs: set[int]) -> None:
    """Saved bytes per autograd node type: a storage is attributed to the first node (in a
    breadth-first walk from the loss) that saves it; the `_saved_*` attributes name what is saved."""
    import torch

    by_op: dict[str, int] = defaultdict(int)
    what: dict[str, set] = defaultdict(set)
    seen_ptrs: set[int] = set()
    seen_nodes: set = set()
    queue = [loss.grad_fn]
    while queue:
        node = queue.pop(0)
        if node is None or node in seen_nodes:
            continue
        seen_nodes.add(node)
        op = type(node).__name__
        for attr in dir(node):
            if not attr.startswith("_saved_"):
                continue
            try:
                v = getattr(node, attr)
            except RuntimeError:
                continue
            vals = v if isinstance(v, (list, tuple)) else [v]
            for tv in vals:
                if isinstance(tv, torch.Tensor):
                    ptr = tv.untyped_storage().data_ptr()
                    tag = "param" if ptr in param_ptrs else str(tv.dtype).removeprefix("torch.")
                    what[op].add(f"{attr[7:]}:{tag}")
                    if ptr in param_ptrs or ptr in seen_ptrs:
                        continue
                    seen_ptrs.add(ptr)
                    by_op[op] += tv.untyped_storage().nbytes()
        queue.extend(n for n, _ in node.next_functions)
    total = sum(by_op.values())
    for op, n in sorted(by_op.items(), key=lambda kv: -kv[1]):
        print(f"    {op:32s} {n / 2**20:9.2f} MiB  {100 * n / max(total, 1):5.1f}%  "
              f"saves {', '.join(sorted(what[op]))}")
    for op in sorted(set(what) - set(by_op)):
        print(f"    {op:32s} {0:9.2f} MiB  (only repeats / params: {', '.join(sorted(what[op]))})")


def main() -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--breakdown", action="store_true", help="print the saved bytes per autograd op")
    ap.add_argument("--out", type=Path, default=OUT, help="where to write the JSON fixture")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    rows = {}
    for key in ROWS:
        model_name, batch = key.split("@")
        if args.breakdown:
            print(f"{key}:")
        rows[key] = r = measure(model_name, int(batch), args.breakdown)
        mib = lambda n: n / 2**20  # noqa: E731
        print(f"{key:14s} params {r['params']:>9,}  saved {mib(r['saved_bytes']):9.2f} MiB "
              f"({r['saved_count']} storages)  min {mib(r['min_bytes']):9.2f} MiB")
    doc = {"torch": torch.__version__, "note": NOTE, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
