#!/usr/bin/env bash
# Noise-model mismatch: evaluate a model trained on gaussian noise against every noise model
# and at sigmas beyond its training range, into one table per noise.
#
#   tools/eval_mismatch_noise.sh [CONFIG] [extra dae eval flags, e.g. --ckpt P or --set ...]
#
# The levels are those of `dae report`'s noise-model mismatch table (src/report/study.rs,
# MISMATCH), which scores the first eval.mismatch_images test images; this script scores the
# whole split. Keep the two in step.
#
# Each evaluation overwrites <out_dir>/logs/evaluation_results.json; the script keeps a copy per
# noise model in <out_dir>/logs/mismatch/ and prints every table.
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=${1:-configs/quick.yaml}
shift || true
cargo build --release -q
dae=target/release/dae
out=$(sed -n 's/^out_dir: *//p' "$cfg" | head -1)
out=${out:-outputs}
mkdir -p "$out/logs/mismatch"
run() {
  local name=$1; shift
  echo "== $name"
  "$dae" eval --config "$cfg" -q "$@"
  cp "$out/logs/evaluation_results.json" "$out/logs/mismatch/$name.json"
}
# Gaussian inside and far beyond a [0.1, 0.5] training range.
run gaussian --noise gaussian --sigmas 0.05,0.1,0.3,0.5,0.7,1.0,1.5 "$@"
run speckle --noise speckle --sigmas 0.1,0.3,0.5,1.0 "$@"
# Salt-and-pepper takes amounts, poisson takes peaks (photons at full intensity; lower = noisier).
run salt_pepper --noise salt-pepper --sigmas 0.02,0.05,0.1,0.2,0.4 "$@"
run poisson --noise poisson --sigmas 100,30,10,3 "$@"
echo "copies: $out/logs/mismatch/"
