#!/usr/bin/env bash
# How the bundled models/ generator is made on a CPU (no GPU): the procedural set, one
# resumable progressive run (32² → 64² → 128²), export at the native 128², evaluation.
#
#   bash training/cpu_run.sh [max-minutes]      # run again to continue where it stopped
#
# The schedule follows images seen, so a run stopped (by max-minutes, Ctrl-C, a paused
# process) and continued behaves as one run. Lightning's max-minutes counts wall time over
# all segments, paused time included: leave it out for a run that is paused now and then.
#
# The run keeps training/outputs/cpu-run/travel.ckpt (≤ 20 MB) up to date; a copy lives in
# training/checkpoints/cpu-run.ckpt so a run can continue on another machine or session:
#   RESUME=training/checkpoints/cpu-run.ckpt bash training/cpu_run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
limit=()
[ -z "${1:-}" ] || limit=(--max-minutes "$1")
OUT=training/outputs/cpu-run
# The 128² stage fades in over 15 kimg (as 64² does), not the default 30: on two cores
# that is the difference between a first 128² export in one sitting and in two.
PLAN="32:30,64:90:15,128:280:15:1.0"
# latent_blur: the latent grid is low-passed before the first convolution (the white noise
# of z otherwise shows as a checkerboard at the grid's Nyquist; the run switched it on at
# 152 kimg, resuming the same weights: the blur has no parameters).
mkdir -p "$OUT"

$PY -m training.make_dataset --set abstract-v2 --count 5000 --size 256
resume=()
if [ -n "${RESUME:-}" ]; then
  resume=(--resume "$RESUME")
elif [ -f "$OUT/checkpoints/last.ckpt" ]; then
  resume=(--resume "$OUT/checkpoints/last.ckpt")
fi
$PY -m training.train_gan --set abstract-v2 --plan "$PLAN" --batch-size 16 --threads 2 \
  --epoch-iterations 250 --checkpoint-every 250 --out "$OUT" --no-progress \
  --generator '{"latent_blur": true}' \
  "${limit[@]}" "${resume[@]}"
$PY -m training.export_onnx --checkpoint "$OUT/checkpoints/last.ckpt" --out models \
  --anchor-samples 384 --version 0.2.1
$PY -m training.evaluate --model models --set abstract-v2 --figures training/figures
