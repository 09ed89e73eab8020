#!/usr/bin/env bash
# Train one config with several seeds and print one table of the final validation PSNR per
# sigma per seed, with the mean, min and spread (max - min) of each column, and the noisy
# input's PSNR beside it.
#
#   tools/seed_sweep.sh [-c configs/quick.yaml] [-s "7 8 9 10 11"] [-o outputs/seed_sweep] [-- extra dae train args]
#
# Runs one after another (a GPU is shared badly); each seed's run goes to <out>/seed_<s>.
# Set DAE=path/to/dae to use a built binary instead of `cargo run --release`.
set -euo pipefail
cfg=configs/quick.yaml
seeds="7 8 9 10 11"
out=outputs/seed_sweep
while [ $# -gt 0 ]; do
  case "$1" in
    -c) cfg=$2; shift 2 ;;
    -s) seeds=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [-c CONFIG] [-s \"SEEDS\"] [-o OUT] [-- extra dae train args]" >&2; exit 2 ;;
  esac
done
dae=${DAE:-}
if [ -z "$dae" ]; then
  cargo build --release -q
  dae=target/release/dae
fi
mkdir -p "$out"
for s in $seeds; do
  d="$out/seed_$s"
  if [ -f "$d/logs/val_metrics.csv" ] && [ -f "$d/.done" ]; then
    echo "seed $s: already done in $d" >&2
    continue
  fi
  echo "seed $s -> $d" >&2
  start=$(date +%s)
  "$dae" train --config "$cfg" --seed "$s" --out-dir "$d" --overwrite -q "$@" >"$d.log" 2>&1 || { echo "seed $s failed; see $d.log" >&2; exit 1; }
  echo $(( $(date +%s) - start )) > "$d/.done"
done
python3 - "$out" $seeds <<'PY'
import csv, sys, statistics
out, seeds = sys.argv[1], sys.argv[2:]
rows = {}
for s in seeds:
    with open(f"{out}/seed_{s}/logs/val_metrics.csv") as f:
        r = list(csv.DictReader(f))
    last = max(int(x["epoch"]) for x in r)
    rows[s] = {x["sigma"]: (float(x["psnr"]), float(x["psnr_noisy"])) for x in r if int(x["epoch"]) == last}
    rows[s]["_secs"] = int(open(f"{out}/seed_{s}/.done").read())
sigmas = [k for k in rows[seeds[0]] if k != "_secs"]
print("validation PSNR (dB) of the final EMA model; in brackets: the model minus the noisy input")
print("| seed | " + " | ".join(f"sigma {s}" for s in sigmas) + " | run s |")
print("|---|" + "---:|" * (len(sigmas) + 1))
for s in seeds:
    print(f"| {s} | " + " | ".join(f"{rows[s][k][0]:.2f} ({rows[s][k][0]-rows[s][k][1]:+.2f})" for k in sigmas) + f" | {rows[s]['_secs']} |")
for name, f in [("mean", statistics.mean), ("min", min), ("max", max)]:
    print(f"| {name} | " + " | ".join(f"{f(rows[s][k][0] for s in seeds):.2f}" for k in sigmas) + " | |")
print("| spread | " + " | ".join(f"{max(rows[s][k][0] for s in seeds) - min(rows[s][k][0] for s in seeds):.2f}" for k in sigmas) + " | |")
print("| noisy input | " + " | ".join(f"{rows[seeds[0]][k][1]:.2f}" for k in sigmas) + " | |")
PY
