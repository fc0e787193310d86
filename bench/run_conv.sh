#!/bin/sh
# run_conv.sh — the convolution op benchmark, ours (bench/bench_conv.c) against PyTorch
# (bench/conv_torch.py on Debian's /usr/bin/python3), same thread count.
#
#   bench/run_conv.sh [--threads N] [--rounds R] [--min-time S] [OUTFILE]
#
# Builds build/bench/bench_conv, measures the dnnl_sgemm peak, then for each round and
# each shape runs our binary and the PyTorch script one after the other (the order
# alternates between rounds and shapes, so slow phases of a shared machine hit both),
# measures the sgemm peak again, and prints the Markdown table (medians over every
# repetition of every round; sgemm: best). With OUTFILE the table is also written there
# and the raw records to OUTFILE.raw (`bench_conv --table OUTFILE.raw` re-prints it;
# add `--stat min` for best-of times). Defaults: 2 threads, 3 rounds, 0.6 s of timed
# repetitions per measurement and process (at least 5 repetitions, at most 200).
set -eu
cd "$(dirname "$0")/.."

THREADS=2 ROUNDS=3 MIN_TIME=0.6 OUT=
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --min-time) MIN_TIME=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "run_conv.sh: unknown option $1" >&2; exit 2 ;;
    *) OUT=$1; shift ;;
  esac
done

case "$THREADS$ROUNDS" in *[!0-9]*|'') echo "run_conv.sh: --threads and --rounds take positive integers" >&2; exit 2 ;; esac

BUILD=${BUILD:-build}
PY=/usr/bin/python3
BIN=$BUILD/bench/bench_conv

# Build through the Makefile; if the library does not build right now (someone else's
# file mid-edit), build the benchmark from the two sources it needs.
if ! make -s BUILD="$BUILD" "$BIN" >&2; then
  echo "run_conv.sh: 'make $BIN' failed; building from bench/bench_conv.c src/backend/backend.c src/backend/cpu/*.c src/core/status.c" >&2
  mkdir -p "$BUILD/bench"
  ${CC:-cc} -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O3 -march=native -Wall -Wextra \
    -fopenmp -Iinclude -Isrc -o "$BIN" bench/bench_conv.c src/backend/backend.c src/backend/cpu/*.c \
    src/core/status.c -ldnnl -lm
fi
"$PY" -c 'import torch' || { echo "run_conv.sh: $PY has no torch (apt install python3-torch)" >&2; exit 1; }

if [ -n "$OUT" ]; then RAW=$OUT.raw; else RAW=$(mktemp); trap 'rm -f "$RAW"' EXIT; fi
: > "$RAW"
export OMP_NUM_THREADS="$THREADS"

ours() { "$BIN" --threads "$THREADS" --min-time "$MIN_TIME" --shape "$1" >> "$RAW"; }
torch() { "$PY" bench/conv_torch.py --threads "$THREADS" --min-time "$MIN_TIME" --shape "$1:$2" >> "$RAW"; }

start=$(date +%s)
echo "run_conv.sh: sgemm peak" >&2
"$BIN" --threads "$THREADS" --min-time "$MIN_TIME" --sgemm >> "$RAW"
r=1
while [ "$r" -le "$ROUNDS" ]; do
  "$BIN" --list | while read -r id n cin cout h w k s p; do
    echo "run_conv.sh: round $r/$ROUNDS, shape $id: ${n}x${cin}->${cout}x${h}x${w} k$k ($(($(date +%s) - start)) s)" >&2
    dims="$n,$cin,$cout,$h,$w,$k,$s,$p"
    if [ $(((r + id) % 2)) -eq 1 ]; then ours "$id"; torch "$id" "$dims"
    else torch "$id" "$dims"; ours "$id"; fi
  done
  r=$((r + 1))
done
"$BIN" --threads "$THREADS" --min-time "$MIN_TIME" --sgemm >> "$RAW"
echo "run_conv.sh: done in $(($(date +%s) - start)) s" >&2

if [ -n "$OUT" ]; then
  "$BIN" --table "$RAW" | tee "$OUT"
else
  "$BIN" --table "$RAW"
fi
