#!/usr/bin/env bash
# How the bundled models/generator.onnx was made: on a shared 2-core CPU, no GPU.
# One 32² stage (the generator's 64²–256² stages keep their zero-initialised toRGB, so the
# 256² output is the smooth upsampling of the 32² image), capped by wall time, then the
# EMA generator is exported with anchors and axes and evaluated for training/README.md.
# A GPU run would go on with --resolution 64, 128 and 256 stages (--init-from the last one).
#
#   bash training/cpu_bundle.sh [minutes]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
MINUTES=${1:-42}
OUT=training/outputs
CFG=$OUT/cpu-config.json
mkdir -p $OUT
# R1 γ = 1 at this low resolution: γ = 10 (meant for 256²) over-smooths D at 32².
echo '{"r1_gamma": 1.0, "val_samples": 96, "val_grid": 16}' > $CFG

$PY training/make_dataset.py --set abstract-v1 --count 1200 --size 256
# Lightning checkpoints its timer: --max-minutes is the total over resumed segments.
$PY training/train_gan.py --set abstract-v1 --resolution 32 --batch-size 16 \
  --iterations 700 --epoch-iterations 50 --checkpoint-every 50 --threads 1 \
  --max-minutes "$MINUTES" --config $CFG --out $OUT/cpu-32 --no-progress
$PY training/export_onnx.py --checkpoint $OUT/cpu-32/checkpoints/last.ckpt --out models \
  --anchor-samples 256
$PY training/evaluate.py --model models --set abstract-v1 --figures training/figures
