#!/bin/sh
# run_model.sh — whole-model benchmark: diffad (bench/bench_model.c, the C library)
# against the PyTorch reference networks (bench/model_torch.py on Debian's
# /usr/bin/python3 with torch 1.13), same weights (the deterministic fill() rule),
# same machine, same thread count.
#
#   bench/run_model.sh [--threads N] [--rounds R] [--configs "cpu paper"]
#                      [--reps-cpu N] [--reps-paper N] [--train-batch B]
#                      [--paper-train-reps N] [--paper-train-warmup N]
#                      [--train-cpu-reps N] [--iter-cpu PASSES]
#                      [--parts "infer train iter"] [--train-layout auto|nchw|cl]
#                      [--winograd] [OUTFILE]
#
# Per configuration (cpu = the 128 px CPU profile, paper = the paper profile at 256 px, docs/training.md):
#  1. batch-1 inference (2 denoiser passes as one batch of 2 + guided reconstruction +
#     segmentation pass): ours, PyTorch NCHW and PyTorch channels_last, each in its own
#     process (so each process's VmHWM is that configuration's peak), R rounds with the
#     order rotating between rounds;
#  2. a joint training step (full backward, Adam) at batch 4 — for the paper config the
#     largest batch <= 4 that fits: ours is sized by bench_model --plan against
#     MemAvailable, PyTorch runs under RLIMIT_AS = MemAvailable - 1 GiB and steps down
#     on failure; the PyTorch layout there is the faster one at the cpu config;
#  3. iterative DDPM reconstruction from t = 400: ours the whole chain (401 batch-1
#     passes) at the cpu config, a few passes elsewhere (extrapolated; the table says so).
# The dnnl_sgemm peak (bench_conv --sgemm) is measured before and after; the raw JSON
# records go to OUTFILE.raw and the Markdown table to stdout and OUTFILE
# (`python3 bench/model_torch.py --table OUTFILE.raw` re-prints it).
# Defaults: 2 threads, 2 rounds, 5 inference repetitions per process at cpu and 2 at
# paper (after 1 warm-up), training 3 steps at cpu and 1 at paper (after 1 warm-up;
# --paper-train-warmup 0 times the very first step, page faults and primitive creation included).
set -eu
cd "$(dirname "$0")/.."

THREADS=2 ROUNDS=2 CONFIGS="cpu paper" REPS_CPU=5 REPS_PAPER=2 TRAIN_B=4 PTRAIN_REPS=1 WINO=0 ITER_CPU=401 TRAIN_CPU_REPS=3 PTRAIN_WARM=1 PARTS="infer train iter" TLAY=auto OUT=
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --configs) CONFIGS=$2; shift 2 ;;
    --reps-cpu) REPS_CPU=$2; shift 2 ;;
    --reps-paper) REPS_PAPER=$2; shift 2 ;;
    --train-batch) TRAIN_B=$2; shift 2 ;;
    --paper-train-reps) PTRAIN_REPS=$2; shift 2 ;;
    --paper-train-warmup) PTRAIN_WARM=$2; shift 2 ;;
    --winograd) WINO=1; shift ;;
    --parts) PARTS=$2; shift 2 ;;
    --train-layout) TLAY=$2; shift 2 ;;
    --iter-cpu) ITER_CPU=$2; shift 2 ;;
    --train-cpu-reps) TRAIN_CPU_REPS=$2; shift 2 ;;
    -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
    -*) echo "run_model.sh: unknown option $1" >&2; exit 2 ;;
    *) OUT=$1; shift ;;
  esac
done

BUILD=${BUILD:-build-bench}
PY=/usr/bin/python3
BIN=$BUILD/bench/bench_model
make -s BUILD="$BUILD" "$BIN" "$BUILD/bench/bench_conv" >&2
"$PY" -c 'import torch' || { echo "run_model.sh: $PY has no torch (apt install python3-torch)" >&2; exit 1; }

if [ -n "$OUT" ]; then RAW=$OUT.raw; else RAW=$(mktemp); trap 'rm -f "$RAW"' EXIT; fi
: > "$RAW"
export OMP_NUM_THREADS="$THREADS"
start=$(date +%s)
log() { echo "run_model.sh: $* ($(($(date +%s) - start)) s)" >&2; }
avail_mb() { awk '/MemAvailable/ {print int($2 / 1024)}' /proc/meminfo; }
env_rec() {  # machine state: load, other diffad training runs, free memory
  others=$(pgrep -f "diffad train" | wc -l)
  printf '{"what":"env","when":"%s","date":"%s","load":"%s","diffad_train_running":%d,"mem_avail_mb":%d}\n' \
    "$1" "$(date -u +%FT%TZ)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$others" "$(avail_mb)" >> "$RAW"
}
sgemm() {
  "$BUILD/bench/bench_conv" --threads "$THREADS" --min-time 0.6 --sgemm |
    awk -v w="$1" '/^sgemm / {printf "{\"what\":\"sgemm\",\"when\":\"%s\",\"gflops\":%s}\n", w, $2}' >> "$RAW"
}

ours() { c=$1; shift; "$BIN" --config "$c" --threads "$THREADS" "$@" >> "$RAW"; }
torch() { "$PY" bench/model_torch.py --threads "$THREADS" "$@" >> "$RAW"; }

env_rec before
log "sgemm peak"
sgemm before

for cfg in $CONFIGS; do
  if [ "$cfg" = paper ]; then REPS=$REPS_PAPER; else REPS=$REPS_CPU; fi
  has() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
  # 1. inference, interleaved
  r=1
  has infer || r=$((ROUNDS + 1))
  while [ "$r" -le "$ROUNDS" ]; do
    log "$cfg inference, round $r/$ROUNDS"
    case $((r % 3)) in
      1) ours "$cfg" --infer "$REPS"; torch --config "$cfg" --layout nchw --infer "$REPS"; torch --config "$cfg" --layout cl --infer "$REPS" ;;
      2) torch --config "$cfg" --layout cl --infer "$REPS"; ours "$cfg" --infer "$REPS"; torch --config "$cfg" --layout nchw --infer "$REPS" ;;
      0) torch --config "$cfg" --layout nchw --infer "$REPS"; torch --config "$cfg" --layout cl --infer "$REPS"; ours "$cfg" --infer "$REPS" ;;
    esac
    if [ "$WINO" = 1 ]; then "$BIN" --config "$cfg" --threads "$THREADS" --algo winograd --infer "$REPS" >> "$RAW"; fi
    r=$((r + 1))
  done
  # 2. training step
  if has train; then
  B=$TRAIN_B
  avail=$(avail_mb)
  while [ "$B" -gt 2 ]; do  # ours: the planned size (+ 1.5 GiB margin) must fit in MemAvailable
    need=$("$BIN" --config "$cfg" --plan --batch "$B" --training | sed 's/.*"model_mb":\([0-9.]*\).*/\1/')
    if awk -v n="$need" -v a="$avail" 'BEGIN {exit !(n + 1536 < a)}'; then break; fi
    log "$cfg training: ours at batch $B needs $need MiB, $avail MiB available: trying a smaller batch"
    printf '{"impl":"ours","cfg":"%s","threads":%d,"what":"train_nofit","batch":%d,"need_mb":%s,"avail_mb":%d}\n' \
      "$cfg" "$THREADS" "$B" "$need" "$avail" >> "$RAW"
    B=$((B - 1))
  done
  if [ "$cfg" = paper ]; then TR=$PTRAIN_REPS; else TR=$TRAIN_CPU_REPS; fi
  if [ "$cfg" = cpu ]; then
    r=1
    while [ "$r" -le "$ROUNDS" ]; do
      log "$cfg training step, batch $B, round $r/$ROUNDS"
      if [ $((r % 2)) -eq 1 ]; then ours "$cfg" --train "$TR" --batch "$B"; torch --config "$cfg" --layout nchw --train "$TR" --batch "$B"; torch --config "$cfg" --layout cl --train "$TR" --batch "$B"
      else torch --config "$cfg" --layout cl --train "$TR" --batch "$B"; torch --config "$cfg" --layout nchw --train "$TR" --batch "$B"; ours "$cfg" --train "$TR" --batch "$B"; fi
      r=$((r + 1))
    done
  else
    # the faster PyTorch layout at the cpu config in this run (nchw if not measured)
    LAY=$TLAY
    [ "$LAY" != auto ] || LAY=$("$PY" -c '
import json, statistics, sys
t = {"nchw": [], "cl": []}
for l in open(sys.argv[1]):
    if l.startswith("{"):
        r = json.loads(l)
        if r.get("impl") == "torch" and r.get("what") == "train" and r.get("cfg") == "cpu":
            t[r["layout"]].append(r["ms"])
print("cl" if t["cl"] and t["nchw"] and statistics.median(t["cl"]) < statistics.median(t["nchw"]) else "nchw")' "$RAW")
    while :; do
      lim=$(awk -v a="$(avail_mb)" 'BEGIN {printf "%.1f", (a - 1024) / 1024}')
      log "$cfg training step, batch $B: PyTorch ($LAY) under RLIMIT_AS $lim GiB"
      if torch --config "$cfg" --layout "$LAY" --train "$TR" --warmup "$PTRAIN_WARM" --batch "$B" --limit-gb "$lim"; then break; fi
      log "$cfg training: PyTorch failed at batch $B (out of memory?)"
      if [ "$B" -le 2 ]; then break; fi
      B=$((B - 1))
    done
    log "$cfg training step, batch $B: ours"
    ours "$cfg" --train "$TR" --warmup "$PTRAIN_WARM" --batch "$B"
  fi
  fi
  # 3. iterative DDPM from t = 400
  if [ "$cfg" = cpu ]; then IT=$ITER_CPU ITT=20; else IT=3 ITT=2; fi
  if has iter; then
    log "$cfg iterative DDPM: ours $IT passes, PyTorch $ITT passes"
    ours "$cfg" --iter "$IT"
    torch --config "$cfg" --layout nchw --iter "$ITT"
  fi
done

log "sgemm peak"
sgemm after
env_rec after
log "done"

if [ -n "$OUT" ]; then "$PY" bench/model_torch.py --table "$RAW" --out "$OUT"
else "$PY" bench/model_torch.py --table "$RAW"; fi
