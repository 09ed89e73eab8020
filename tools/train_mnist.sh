#!/usr/bin/env bash
# Train the SPEC denoiser on MNIST (configs/mnist.yaml), then evaluate it and write every figure
# and the limitations report:
#
#   tools/train_mnist.sh [CONFIG] [extra dae train flags...]
#
# MNIST is downloaded into data.root (or --data-dir / DAE_DATA_DIR) when missing. An interrupted
# run continues with the same command (the script passes --resume when a checkpoint exists).
# configs/mnist.yaml is a GPU job; on a CPU (lavapipe) start with configs/quick.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=${1:-configs/mnist.yaml}
shift || true
cargo build --release -q
dae=target/release/dae
out=$(sed -n 's/^out_dir: *//p' "$cfg" | head -1)
out=${out:-outputs}
resume=()
if [ -f "$out/ckpts/last.manifest.json" ] || [ -f "$out/ckpts/last.safetensors" ]; then
  resume=(--resume)
fi
"$dae" train --config "$cfg" "${resume[@]}" "$@"
"$dae" report --config "$cfg" "$@"
