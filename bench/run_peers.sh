#!/bin/sh
# run_peers.sh — batch-1 predict latency of diffad next to the runtimes a user would
# deploy instead: PyTorch (the reference networks, eval + no_grad), ONNX Runtime and
# OpenVINO (the whole inference exported from the PyTorch reference to ONNX: both
# denoiser passes as one batch of 2, the norm-guided reconstruction and the seg net,
# with the noise as graph inputs). Same deterministic weights, same thread count.
#
#   bench/run_peers.sh [--threads N] [--rounds R] [--configs "cpu paper"]
#                      [--reps-cpu N] [--reps-paper N] [--torch-layout nchw|cl]
#                      [--runtimes "ours ours_f32 torch ort ov ov_bf16"] [OUTFILE]
#    ours = diffad at its default precision (bf16 on CPUs with AVX512-BF16), ours_f32 = float32;
#    ov_bf16 = OpenVINO with INFERENCE_PRECISION_HINT bf16 (OpenVINO's own default on such CPUs);
#    ONNX Runtime's CPU provider and PyTorch run f32 (no CPU bf16 path offered; peers.py)
#
# 1. Creates build-bench/venv (python3 -m venv --system-site-packages over Debian's
#    torch 1.13 and numpy) and pip-installs onnxruntime, openvino and onnx into it
#    (numpy kept < 2 for Debian's torch) unless they import already.
# 2. Per configuration: exports the ONNX graph (opset 14; cached in build-bench/peers,
#    re-exported when the stamp of tests/py/ref_model.py and the inference module in
#    bench/model_torch.py changes), runs diffad once
#    on a fixed image with fixed noise (bench_model --dump) and checks every peer
#    against that output: max |diff| of the anomaly map and of the reconstruction.
# 3. Latency: R rounds, each runtime in its own process per round (order rotating),
#    1 warm-up call then the repetitions; noise is drawn inside each timed call on
#    every side. Then a few batch-1 denoiser passes of ours for the one-step versus
#    iterative DDPM ratio (401 passes from t = 400, extrapolated).
# Raw JSON records: OUTFILE.raw; table: stdout and OUTFILE
# (`build-bench/venv/bin/python bench/peers.py table OUTFILE.raw` re-prints it).
set -eu
cd "$(dirname "$0")/.."

THREADS=2 ROUNDS=2 CONFIGS="cpu paper" REPS_CPU=5 REPS_PAPER=2 TLAY=cl RUNTIMES="ours ours_f32 torch ort ov ov_bf16" OUT=
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --configs) CONFIGS=$2; shift 2 ;;
    --reps-cpu) REPS_CPU=$2; shift 2 ;;
    --reps-paper) REPS_PAPER=$2; shift 2 ;;
    --torch-layout) TLAY=$2; shift 2 ;;
    --runtimes) RUNTIMES=$2; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    -*) echo "run_peers.sh: unknown option $1" >&2; exit 2 ;;
    *) OUT=$1; shift ;;
  esac
done

BUILD=${BUILD:-build-bench}
BIN=$BUILD/bench/bench_model
VENV=$BUILD/venv
PY=$VENV/bin/python
DIR=$BUILD/peers
make -s BUILD="$BUILD" "$BIN" "$BUILD/bench/bench_conv" >&2
mkdir -p "$DIR"

if ! [ -x "$PY" ] || ! "$PY" -c 'import onnxruntime, openvino, onnx, torch' 2>/dev/null; then
  echo "run_peers.sh: creating $VENV and installing onnxruntime, openvino, onnx from PyPI" >&2
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
  "$PY" -m pip install -q "numpy<2" onnxruntime openvino onnx
fi

if [ -n "$OUT" ]; then RAW=$OUT.raw; else RAW=$(mktemp); trap 'rm -f "$RAW"' EXIT; fi
: > "$RAW"
export OMP_NUM_THREADS="$THREADS"
start=$(date +%s)
log() { echo "run_peers.sh: $* ($(($(date +%s) - start)) s)" >&2; }
env_rec() {
  printf '{"what":"env","when":"%s","date":"%s","load":"%s","diffad_train_running":%d,"mem_avail_mb":%d}\n' \
    "$1" "$(date -u +%FT%TZ)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(pgrep -f "diffad train" | wc -l)" \
    "$(awk '/MemAvailable/ {print int($2 / 1024)}' /proc/meminfo)" >> "$RAW"
}
sgemm() {
  "$BUILD/bench/bench_conv" --threads "$THREADS" --min-time 0.6 --sgemm |
    awk -v w="$1" '/^sgemm / {printf "{\"what\":\"sgemm\",\"when\":\"%s\",\"gflops\":%s}\n", w, $2}' >> "$RAW"
}

"$PY" bench/peers.py versions >> "$RAW"
env_rec before
log "sgemm peak"
sgemm before

for cfg in $CONFIGS; do
  onnx=$DIR/$cfg.onnx
  if ! [ -s "$onnx" ] || [ "$("$PY" bench/peers.py stamp --config "$cfg")" != "$(cat "$onnx.stamp" 2>/dev/null)" ]; then
    log "$cfg: exporting $onnx"
    "$PY" bench/peers.py export --config "$cfg" --onnx "$onnx" 2>"$DIR/export_$cfg.log" || { cat "$DIR/export_$cfg.log" >&2; exit 1; }
  fi
  log "$cfg: agreement check against diffad's output"
  # f32 on our side: the peers run the graph in f32, so the check is of the arithmetic (bf16 would
  # add its own rounding, ~1e-4 on the map, 1e-2 on the reconstruction)
  "$BIN" --config "$cfg" --threads "$THREADS" --precision f32 --dump "$DIR/$cfg.dump"
  "$PY" bench/peers.py check --config "$cfg" --onnx "$onnx" --dump "$DIR/$cfg.dump" --threads "$THREADS" >> "$RAW"
  if [ "$cfg" = paper ]; then REPS=$REPS_PAPER; else REPS=$REPS_CPU; fi
  r=1
  while [ "$r" -le "$ROUNDS" ]; do
    log "$cfg latency, round $r/$ROUNDS"
    set -- $RUNTIMES
    k=$(((r - 1) % $#))
    while [ "$k" -gt 0 ]; do x=$1; shift; set -- "$@" "$x"; k=$((k - 1)); done
    for rt in "$@"; do
      case "$rt" in
        ours) "$BIN" --config "$cfg" --threads "$THREADS" --infer "$REPS" >> "$RAW" ;;
        ours_f32) "$BIN" --config "$cfg" --threads "$THREADS" --precision f32 --infer "$REPS" >> "$RAW" ;;
        *)
          impl=${rt%_bf16}; prec=f32; [ "$impl" != "$rt" ] && prec=bf16
          "$PY" bench/peers.py time --config "$cfg" --runtime "$impl" --precision "$prec" \
            --layout "$([ "$impl" = torch ] && echo "$TLAY" || echo nchw)" \
            --onnx "$onnx" --threads "$THREADS" --reps "$REPS" >> "$RAW" || log "$cfg: $rt failed" ;;
      esac
    done
    r=$((r + 1))
  done
  log "$cfg: batch-1 denoiser passes (iterative DDPM)"
  if [ "$cfg" = paper ]; then IT=2; else IT=10; fi
  "$BIN" --config "$cfg" --threads "$THREADS" --iter "$IT" >> "$RAW" 2>/dev/null
done

log "sgemm peak"
sgemm after
env_rec after
log "done"
if [ -n "$OUT" ]; then "$PY" bench/peers.py table "$RAW" --out "$OUT"
else "$PY" bench/peers.py table "$RAW"; fi
