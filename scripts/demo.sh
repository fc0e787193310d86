#!/bin/sh
# The built-in demo: train briefly on the bundled DeepPCB sample (data/sample/pcb,
# MIT licence), test it with the field's metrics and an HTML report, and score a
# few images with `diffad predict`. DEMO_MINUTES (default 7, so the whole demo stays under 10 minutes on
# a 2-core machine) sets the training budget
# (wall clock; DEMO_STEPS, if set, trains that many steps instead).
# usage: scripts/demo.sh [BUILD_DIR]   (results in demo-out/)
set -eu
BUILD=${1:-build}
BIN="$BUILD/diffad"
OUT=${DEMO_OUT:-demo-out}
MINUTES=${DEMO_MINUTES:-7}
if [ -n "${DEMO_STEPS:-}" ]; then BUDGET="--steps $DEMO_STEPS"; WHAT="$DEMO_STEPS steps"
else BUDGET="--minutes $MINUTES --steps 1000000000"; WHAT="$MINUTES minutes"; fi
mkdir -p "$OUT"
echo "== diffad demo: training for $WHAT on data/sample/pcb (60 good images, 128x128 model)"
"$BIN" train --data data/sample/pcb --out "$OUT/model.safetensors" --profile cpu \
  $BUDGET --foreground none --val_fraction 0.1 --checkpoint_every 0 --log_every 10
echo "== testing on the sample's 20 labelled test images"
"$BIN" test --model "$OUT/model.safetensors" --data data/sample/pcb --out "$OUT/test" --report
echo "== predicting 3 images (one JSON line each; exit status 1 means an NG was found)"
set +e
"$BIN" predict --model "$OUT/model.safetensors" --out "$OUT/predict" --save-overlay --save-map \
  data/sample/pcb/test/good/$(ls data/sample/pcb/test/good | head -n 1) \
  data/sample/pcb/test/defect/$(ls data/sample/pcb/test/defect | head -n 1) \
  data/sample/pcb/test/defect/$(ls data/sample/pcb/test/defect | sed -n 2p)
rc=$?
set -e
[ "$rc" -le 1 ] || { echo "demo: predict failed"; exit 1; }
echo
echo "== results"
echo "  model:          $OUT/model.safetensors (training log $OUT/model.safetensors.log.csv)"
echo "  metrics:        $OUT/test/metrics.md, metrics.json, metrics.csv, scores.csv"
echo "  report:         $OUT/test/report.html (open in a browser)"
echo "  predict output: $OUT/predict/"
echo "A $WHAT demo is far from a trained model; see README 'Quality on real data' for full runs."
