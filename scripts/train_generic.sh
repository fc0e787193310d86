#!/bin/sh
# Trains the generic start for `diffad train --init`: both networks of the cpu profile
# (128 x 128, attention at 16 px) on texture images only (DTD + GIMP patterns from
# ../shared/data/textures, 356 images), so it has seen neither shared category and no
# product a user trains on. The textures are the good images and also the anomaly sources.
# A fixed step count, so the result is bit-reproducible with the same thread count.
# usage: scripts/train_generic.sh [--steps N] [--seed S] [--threads T] [--textures DIR]
#                                [--out FILE] [--bin PATH]
# (defaults: 1305 steps = the 30-minute step count of the cpu profile at 128 px, seed 1,
#  2 threads, ../shared/data/textures, generic-cpu.safetensors, build/diffad)
# The good-image folder is made of symbolic links in a temporary directory (the textures are
# not copied); the training log lands next to the model (<out>.log.csv, <out>.train.log).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STEPS=1305
SEED=1
THREADS=2
TEXTURES=$ROOT/../shared/data/textures
OUT=generic-cpu.safetensors
BIN=$ROOT/build/diffad
die() { echo "train_generic.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "option $1 needs a value"
  case "$1" in
    --steps) STEPS=$2 ;;
    --seed) SEED=$2 ;;
    --threads) THREADS=$2 ;;
    --textures) TEXTURES=$2 ;;
    --out) OUT=$2 ;;
    --bin) BIN=$2 ;;
    *) die "unknown option '$1'" ;;
  esac
  shift 2
done
[ -d "$TEXTURES" ] || die "$TEXTURES: no such folder (the texture images)"
[ -x "$BIN" ] || die "$BIN: not an executable (build with make first)"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/diffad-generic-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
mkdir -p "$TMP/train/good"
# sorted, numbered links: the image order (and so the split and the run) does not depend on
# the file system's listing order
n=0
# (read line by line: a path with spaces stays one path; the count comes back from the list)
find "$TEXTURES" -type f \( -name '*.jpg' -o -name '*.jpeg' -o -name '*.png' \) | LC_ALL=C sort > "$TMP/list"
while IFS= read -r f; do
  n=$((n + 1))
  ln -s "$f" "$TMP/train/good/$(printf 'tex%04d' $n).${f##*.}"
done < "$TMP/list"
[ "$n" -ge 2 ] || die "$TEXTURES: fewer than 2 texture images"
echo "train_generic.sh: $n texture images from $TEXTURES, $STEPS steps, seed $SEED"
"$BIN" train --data "$TMP" --profile cpu --foreground none --textures "$TEXTURES" \
  --seed "$SEED" --steps "$STEPS" --threads "$THREADS" --val_every_min 100 --keep_best 0 \
  --out "$OUT" > "$OUT.train.log" 2>&1 || { rc=$?; cat "$OUT.train.log" >&2; exit $rc; }
tail -n 4 "$OUT.train.log"
