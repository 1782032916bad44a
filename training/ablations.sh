#!/usr/bin/env bash
# Short A/B runs that chose the training recipe (training/README.md, "What was measured").
# "full" is the first candidate (rpgan + R1 + R2, DiffAugment, image-wide paths); the
# others change one thing each.
# Each run: the same data, seed and plan (32² for 6 kimg, then 64² for 14 kimg with a
# 4-kimg fade), two threads, alone on the machine; then the EMA generator is scored at its
# native 64² against 256 held-out images (SWD ratio to real-vs-real; lower is better).
#
#   bash training/ablations.sh [name ...]     # default: all
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=${ABLATION_OUT:-training/outputs/ablations}
PLAN=${ABLATION_PLAN:-32:6,64:14:4}
mkdir -p "$OUT"

declare -A RUNS=(
  [full]='{"loss": "rpgan"}'
  [logistic_r1]='{"loss": "logistic"}'
  [no_global_paths]='{"loss": "rpgan", "generator": {"global_dim": 0, "excitation": false}}'
  [no_diffaugment]='{"loss": "rpgan", "augment": null}'
  [gamma_1]='{"loss": "rpgan", "r1_gamma": 1.0}'
  [logistic_gamma_0.1]='{"loss": "logistic", "r1_gamma": 0.1}'
  [rpgan_gamma_0.1]='{"loss": "rpgan", "r1_gamma": 0.1}'
  [logistic_seed_1]='{"loss": "logistic", "seed": 1}'
  [full_seed_1]='{"loss": "rpgan", "seed": 1}'
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(full logistic_r1 no_global_paths no_diffaugment gamma_1 \
  logistic_gamma_0.1 rpgan_gamma_0.1 logistic_seed_1 full_seed_1)
for name in "${names[@]}"; do
  echo "${RUNS[$name]}" > "$OUT/$name.json"
  echo "== $name ${RUNS[$name]} (load $(cut -d' ' -f1-3 /proc/loadavg))"
  start=$(date +%s)
  seed=$($PY -c "import json,sys; print(json.load(open(sys.argv[1])).get('seed', 0))" \
    "$OUT/$name.json")
  $PY -m training.train_gan --plan "$PLAN" --batch-size 16 --threads 2 --epoch-iterations 250 \
    --checkpoint-every 250 --config "$OUT/$name.json" --out "$OUT/$name" --no-progress \
    --seed "$seed" \
    > "$OUT/$name.log" 2>&1
  echo "   trained in $(( $(date +%s) - start )) s (load $(cut -d' ' -f1-3 /proc/loadavg))"
  $PY -m training.evaluate --checkpoint "$OUT/$name/travel.ckpt" --size 64 --samples 256 \
    > "$OUT/$name.eval.json"
  $PY - "$OUT/$name.eval.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["stats"]
print(f"   SWD ratio {r['swd_ratio']['trained']:.2f} (untrained {r['swd_ratio']['untrained']:.2f}, "
      f"ceiling {r['swd_ratio']['ceiling']:.2f}); sharpness {s['trained']['sharpness']:.3f} vs "
      f"real {s['real']['sharpness']:.3f}; saturation {s['trained']['saturation']:.2f} vs "
      f"{s['real']['saturation']:.2f}; smoothness {r['interpolation_smoothness']:.2f}")
PY
done
