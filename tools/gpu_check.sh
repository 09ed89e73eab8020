#!/usr/bin/env bash
# The real-GPU check, one script (aimed at under 10 minutes on a discrete GPU): the adapters
# dae sees, every kernel check on the chosen one, the benchmark suite as JSON (with --amp), and
# PyTorch's own training step of unet64x3 at batch 128 (CUDA, f32, TF32 off) when torch with
# CUDA is importable. Results go to $OUT (default gpu_check/), one file per part.
#
#   tools/gpu_check.sh [--adapter NAME]     (DAE=path/to/dae to use a built binary)
set -uo pipefail
out=${OUT:-gpu_check}
mkdir -p "$out"
dae=${DAE:-}
if [ -z "$dae" ]; then
  cargo build --release -q || exit 1
  dae=target/release/dae
fi
run() { # name, command...
  local name=$1; shift
  local s; s=$(date +%s)
  "$@" >"$out/$name.out" 2>"$out/$name.err"
  local rc=$?
  echo "$name: exit $rc, $(( $(date +%s) - s )) s -> $out/$name.out"
}
run devices "$dae" "$@" devices --json
run gradcheck "$dae" "$@" gradcheck --json
run bench "$dae" "$@" bench --json --amp
run bench_unet64x3_b128 "$dae" "$@" bench --models unet64x3 --batch 128 --warmup 2 --iters 10 --amp --json
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  run torch_unet64x3_b128 python3 "$(dirname "$0")/torch_step_bench.py" --model unet64x3 --batch 128 --device cuda
else
  echo "torch_unet64x3_b128: skipped (no torch with CUDA here)" | tee "$out/torch_unet64x3_b128.out"
fi
