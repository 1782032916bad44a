#!/usr/bin/env bash
# How the bundled models/generator.onnx was trained: on a shared 2-core CPU, no GPU.
# Two resolution stages (32², then 64² from the 32² weights), each capped by wall time,
# then the EMA generator is exported with anchors and axes. A GPU run would instead use
# --resolution 256 (or 64 → 128 → 256 stages) with many more iterations.
#
#   bash training/cpu_bundle.sh [minutes_stage_a] [minutes_stage_b]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
A_MIN=${1:-22}
B_MIN=${2:-35}
OUT=training/outputs
CFG=$OUT/cpu-config.json
mkdir -p $OUT
# R1 γ = 1 at these low resolutions: γ = 10 (meant for 256²) over-smooths D at 32–64².
echo '{"r1_gamma": 1.0, "val_samples": 96, "val_grid": 16}' > $CFG

$PY training/make_dataset.py --set abstract-v1 --count 1200 --size 256
nice -n 10 $PY training/train_gan.py --set abstract-v1 --resolution 32 --batch-size 16 \
  --iterations 500 --epoch-iterations 50 --checkpoint-every 50 --threads 1 \
  --max-minutes "$A_MIN" --config $CFG --out $OUT/cpu-32 --no-progress
nice -n 10 $PY training/train_gan.py --set abstract-v1 --resolution 64 --batch-size 16 \
  --iterations 500 --epoch-iterations 50 --checkpoint-every 50 --threads 1 \
  --max-minutes "$B_MIN" --config $CFG --out $OUT/cpu-64 --no-progress \
  --init-from $OUT/cpu-32/checkpoints/last.ckpt
$PY training/export_onnx.py --checkpoint $OUT/cpu-64/checkpoints/last.ckpt --out models
