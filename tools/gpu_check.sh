#!/usr/bin/env bash
# The real-GPU check, one script that fits in 10 minutes: the adapters dae sees, every kernel
# check on the chosen one, the benchmark suite as JSON (with --amp), unet64x3's training step at
# batch 128, and PyTorch's own step of the same model and batch (CUDA, f32, TF32 off) when torch
# with CUDA is importable. Results go to $OUT (default gpu_check/), one .out and one .err file
# per part; each part has its own time limit (seconds, env T_<PART>), so one that hangs cannot
# eat the others' time.
#
#   tools/gpu_check.sh [--adapter NAME]
#
# DAE=path/to/dae uses a built binary (a machine without cargo or without network: build
# `cargo build --release` elsewhere on the same architecture and bring target/release/dae).
# Without a Vulkan loader (`ldconfig -p | grep libvulkan` prints nothing), `dae devices` finds
# no adapter: install or unpack libvulkan1 first.
set -uo pipefail
out=${OUT:-gpu_check}
mkdir -p "$out"
dae=${DAE:-}
if [ -z "$dae" ]; then
  cargo build --release -q || exit 1
  dae=target/release/dae
fi
failed=0
run() { # name, limit in seconds, command...
  local name=$1 limit=$2; shift 2
  local s; s=$(date +%s)
  timeout -k 5 "$limit" "$@" >"$out/$name.out" 2>"$out/$name.err"
  local rc=$?
  [ $rc -eq 0 ] || failed=1
  local why=""
  [ $rc -eq 124 ] && why=" (past its ${limit} s limit)"
  echo "$name: exit $rc$why, $(( $(date +%s) - s )) s -> $out/$name.out" | tee -a "$out/summary.txt"
}
: >"$out/summary.txt"
run devices "${T_DEVICES:-30}" "$dae" "$@" devices --json
run gradcheck "${T_GRADCHECK:-150}" "$dae" "$@" gradcheck --json
run bench "${T_BENCH:-240}" "$dae" "$@" bench --json --amp
run bench_unet64x3_b128 "${T_BENCH_B128:-90}" "$dae" "$@" bench --models unet64x3 --batch 128 --warmup 2 --iters 10 --amp --json
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  run torch_unet64x3_b128 "${T_TORCH:-60}" python3 "$(dirname "$0")/torch_step_bench.py" --model unet64x3 --batch 128 --device cuda
else
  echo "torch_unet64x3_b128: skipped (no torch with CUDA here)" | tee -a "$out/summary.txt" "$out/torch_unet64x3_b128.out"
fi
exit $failed
