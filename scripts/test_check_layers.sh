#!/bin/sh
# test_check_layers.sh — shows that scripts/check_layers.sh passes a clean tree and
# fails, naming file:line, on each kind of planted violation: in a small synthetic
# tree, and in a temporary copy of the real src/ with one upward include added.
# Output: "FAIL ..." lines, then "test_check_layers: N passed, M failed".
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CHECK="$HERE/check_layers.sh"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/check_layers.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
pass=0; fail=0
ok() { pass=$((pass+1)); }
no() { echo "FAIL test_check_layers: $1"; fail=$((fail+1)); }

# A clean miniature of the layout: every allowed edge once.
mk() { # mk DIR: write the clean tree into DIR
  d=$1
  mkdir -p "$d/src/core" "$d/src/backend/cpu" "$d/src/nn" "$d/src/model" "$d/src/data" \
           "$d/src/eval" "$d/src/train" "$d/include" "$d/tools"
  printf '#include <stddef.h>\n' > "$d/src/core/status.h"
  printf '#include "core/status.h"\n' > "$d/src/core/arena.c"
  printf '#include "core/status.h"\n' > "$d/src/backend/backend.h"
  printf '#include "backend/backend.h"\n#include "core/status.h"\n' > "$d/src/backend/cpu/ops.c"
  printf '#include "backend/backend.h"\n' > "$d/src/nn/unet.h"
  printf '#include "nn/unet.h"\n#include "backend/cpu/ops.c"\n' > "$d/src/nn/unet.c"
  printf '#include "nn/unet.h"\n' > "$d/src/model/model.h"
  printf '#include "core/status.h"\n' > "$d/src/data/image.h"
  printf '#include "data/image.h"\n' > "$d/src/eval/metrics.h"
  printf '#include "model/model.h"\n#include "data/image.h"\n#include "eval/metrics.h"\n' > "$d/src/train/trainer.c"
  printf '#include "diffad.h"\n#include "model/model.h"\n#include "train/trainer.c"\n' > "$d/src/api.c"
  printf '/* public */\n' > "$d/include/diffad.h"
  printf '#include "diffad.h"\n' > "$d/tools/cli_util.h"
  printf '#include "cli_util.h"\n#include "train/trainer.c"\n#include "diffad.h"\n' > "$d/tools/cmd_train.c"
}

mk "$TMP/clean"
if out=$(sh "$CHECK" "$TMP/clean" 2>&1); then
  echo "$out" | grep -q '^check_layers: 20 passed, 0 failed$' && ok || no "clean tree: unexpected summary: $out"
else
  no "clean tree rejected: $out"
fi

# plant NAME FILE LINE-TEXT EXPECTED-SUBSTRING: appended as the file's last line.
plant() {
  d="$TMP/$1"; rm -rf "$d"; mk "$d"
  printf '%s\n' "$3" >> "$d/$2"
  n=$(wc -l < "$d/$2" | tr -d ' ')
  if out=$(sh "$CHECK" "$d" 2>&1); then
    no "$1: planted violation in $2 was accepted"
  elif ! echo "$out" | grep -q "^FAIL $2:$n: .*$4"; then
    no "$1: no 'FAIL $2:$n: ...$4' line in: $out"
  elif ! echo "$out" | grep -q '^check_layers: [0-9]* passed, 1 failed$'; then
    no "$1: summary does not count exactly one failure: $out"
  else ok; fi
}
plant upward        src/core/arena.c      '#include "nn/unet.h"'        'layer core includes nn/unet.h from layer nn'
plant up-from-cpu   src/backend/cpu/ops.c '#include "model/model.h"'    'layer backend includes model/model.h'
plant sideways      src/data/image.h      '#include "model/model.h"'    'layer data includes model/model.h'
plant sideways2     src/eval/metrics.h    '#include "backend/backend.h"' 'layer eval includes backend/backend.h'
plant model-data    src/model/model.h     '#include "data/image.h"'     'layer model includes data/image.h'
plant train-api     src/train/trainer.c   '#include "diffad.h"'         'public header'
plant unqualified   src/nn/unet.c         '#include "unet.h"'           'not path-qualified'
plant missing       src/model/model.h     '#include "model/nothere.h"'  'names no file'
plant dotdot        src/nn/unet.c         '#include "../core/status.h"' 'climbs with'
plant spaced        src/core/arena.c      '  #  include "eval/metrics.h"' 'layer core includes eval/metrics.h'

# The real tree, copied, with one upward include planted in a core file.
mkdir -p "$TMP/real"
cp -R "$REPO/src" "$TMP/real/src" && cp -R "$REPO/include" "$TMP/real/include" && cp -R "$REPO/tools" "$TMP/real/tools" 2>/dev/null
victim=$(cd "$TMP/real" && ls src/core/*.c | head -n 1)
if [ -z "$victim" ]; then
  no "real tree: no src/core/*.c to plant into"
else
  printf '#include "eval/metrics.h"\n' >> "$TMP/real/$victim"
  n=$(wc -l < "$TMP/real/$victim" | tr -d ' ')
  if out=$(sh "$CHECK" "$TMP/real" 2>&1); then
    no "real tree copy: planted '#include \"eval/metrics.h\"' in $victim was accepted"
  elif echo "$out" | grep -q "^FAIL $victim:$n: layer core includes eval/metrics.h"; then ok
  else no "real tree copy: no FAIL line for $victim:$n in: $out"; fi
fi

echo "test_check_layers: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
