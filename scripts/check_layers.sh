#!/bin/sh
# check_layers.sh [ROOT] — the dependency rule of docs/architecture.md, checked.
#
# Reads every `#include "..."` in ROOT/src (default: the repository root) and in
# ROOT/tools, and fails, naming file:line, when an include points upward or
# sideways across layers. A file's layer is its first folder under src/
# (src/backend/cpu/x.c is in "backend"); src/*.c (the public API, api.c) is "api".
#
#   layer     may include
#   core      core
#   backend   core backend
#   nn        core backend nn
#   model     core backend nn model
#   data      core data
#   eval      core data eval
#   train     core backend nn model data eval train
#   api       every src layer and include/diffad.h
#   tools     include/diffad.h, every src layer, tools' own headers
#
# Every quoted include must be path-qualified ("core/status.h") and name a file
# that exists; only api (src/*.c) and tools may include the public header.
# Output: one "FAIL file:line: ..." line per violation, then
# "check_layers: N passed, M failed" (N, M: include lines). Exit 0 iff M == 0.
set -u
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
if [ ! -d "$ROOT/src" ]; then
  echo "FAIL check_layers: no src/ under $ROOT"
  echo "check_layers: 0 passed, 1 failed"
  exit 1
fi
cd "$ROOT" || exit 1

files=$(find src tools -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | LC_ALL=C sort)
[ -n "$files" ] || { echo "FAIL check_layers: no sources under $ROOT/src"; echo "check_layers: 0 passed, 1 failed"; exit 1; }

# One record per quoted include: file<TAB>line<TAB>target, then the verdicts in awk.
# shellcheck disable=SC2086
awk '
  match($0, /^[ \t]*#[ \t]*include[ \t]*"[^"]+"/) {
    s = substr($0, RSTART, RLENGTH); sub(/^[^"]*"/, "", s); sub(/"$/, "", s)
    printf "%s\t%d\t%s\n", FILENAME, FNR, s
  }' $files | awk -F '\t' -v root="$ROOT" '
  BEGIN {
    allow["core"]    = " core "
    allow["backend"] = " core backend "
    allow["nn"]      = " core backend nn "
    allow["model"]   = " core backend nn model "
    allow["data"]    = " core data "
    allow["eval"]    = " core data eval "
    allow["infer"]   = " core backend nn model data eval infer "
    allow["train"]   = " core backend nn model data eval infer train "
    allow["api"]     = " core backend nn model data eval infer train public "
    allow["tools"]   = " core backend nn model data eval infer train public tools "
    pass = 0; fail = 0
  }
  function exists(p,   r, line) {
    r = (getline line < p); close(p)
    return r >= 0
  }
  function layer_of(f,   n, part) {
    n = split(f, part, "/")
    if (part[1] == "tools") return "tools"
    if (n == 2) return "api"          # src/api.c and any other src/*.c
    return part[2]
  }
  function bad(msg) { printf "FAIL %s:%d: %s\n", $1, $2, msg; fail++ }
  {
    file = $1; target = $3; from = layer_of(file)
    if (!(from in allow)) { bad("file is in no known layer (src/" from "/); see docs/architecture.md"); next }
    dir = file; sub(/\/[^\/]*$/, "", dir)
    if (target == "diffad.h" && exists(root "/include/diffad.h")) to = "public"
    else if (from == "tools" && index(target, "/") == 0 && exists(root "/tools/" target)) to = "tools"
    else if (index(target, "/") == 0) {
      if (exists(root "/" dir "/" target))
        bad("#include \"" target "\" is not path-qualified (write \"" substr(dir, 5) "/" target "\")")
      else bad("#include \"" target "\" names no file in src/, include/ or tools/")
      next
    } else if (index(target, "..") > 0) { bad("#include \"" target "\" climbs with .. (write a path from src/)"); next }
    else if (!exists(root "/src/" target)) { bad("#include \"" target "\" names no file under src/"); next }
    else { n = split(target, part, "/"); to = part[1] }
    if (index(allow[from], " " to " ") == 0) {
      if (to == "public") bad("layer " from " includes the public header diffad.h (only src/api.c and tools/ may)")
      else { ok = allow[from]; gsub(/^ +| +$/, "", ok); bad("layer " from " includes " target " from layer " to " (" from " may include: " ok ")") }
      next
    }
    pass++
  }
  END {
    printf "check_layers: %d passed, %d failed\n", pass, fail
    exit fail > 0
  }'
