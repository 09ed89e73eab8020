#!/usr/bin/env bash
# Every figure of a trained run, one `dae viz` each (dae report draws them all in one pass and
# adds the limitations analysis; this is for redrawing one kind after a change):
#
#   tools/make_figures.sh [CONFIG] [extra flags, e.g. --ckpt P, --sigmas 0.1,0.5, --set ...]
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=${1:-configs/quick.yaml}
shift || true
cargo build --release -q
dae=target/release/dae
for fig in recon-grid sigma-panel cases curves frequency diversity; do
  echo "== $fig"
  "$dae" viz "$fig" --config "$cfg" -q "$@"
done
