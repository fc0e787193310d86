#!/bin/sh
# check_exports.sh — the shared library exports the public API and nothing else.
#
# With $BUILD (default build) as made by `make`:
#   1. `nm -D --defined-only $BUILD/libdiffad.so` lists only diffad_* symbols
#      (the library is compiled with -fvisibility=hidden; include/diffad.h marks
#      the public functions DIFFAD_API);
#   2. every function declared DIFFAD_API in include/diffad.h is exported;
#   3. examples/embed.c, a host program over diffad.h only, links against the .so.
# Skips with a message when nm is missing (2 and 3 need 1's symbol list: all skip).
# Output: "FAIL ..."/"SKIP ..." lines, then "check_exports: N passed, M failed, K skipped".
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
LIB="$BUILD/libdiffad.so"
pass=0; fail=0; skip=0
no() { echo "FAIL check_exports: $1"; fail=$((fail+1)); }
summary() { echo "check_exports: $pass passed, $fail failed, $skip skipped"; [ "$fail" -eq 0 ]; exit $?; }

NM=${NM:-nm}
if ! command -v "$NM" >/dev/null 2>&1; then
  echo "SKIP check_exports: '$NM' not found (binutils); the export checks did not run"
  skip=3; summary
fi
[ -f "$LIB" ] || { no "$LIB not found (run make BUILD=... all first)"; summary; }

# 1. Only diffad_*: nm -D prints "ADDRESS TYPE NAME"; undefined symbols are left out.
syms=$("$NM" -D --defined-only "$LIB" 2>&1) || { no "$NM -D failed on $LIB: $syms"; summary; }
others=$(printf '%s\n' "$syms" | awk 'NF >= 3 && $3 !~ /^diffad_/ { print $2 " " $3 }')
if [ -n "$others" ]; then
  n=$(printf '%s\n' "$others" | wc -l | tr -d ' ')
  no "$LIB exports $n symbols outside diffad_* (first 20 below; mark only public functions DIFFAD_API)"
  printf '%s\n' "$others" | head -n 20 | sed 's/^/    /'
else
  pass=$((pass+1))
fi

# 2. Every DIFFAD_API function of the header is exported as code (type T).
decl=$(sed -n 's/^DIFFAD_API[^(]*[ *]\(diffad_[A-Za-z0-9_]*\)(.*/\1/p' "$ROOT/include/diffad.h")
if [ -z "$decl" ]; then
  no "include/diffad.h declares no DIFFAD_API function"
else
  missing=""
  for f in $decl; do
    printf '%s\n' "$syms" | awk -v f="$f" '$2 == "T" && $3 == f { found = 1 } END { exit !found }' || missing="$missing $f"
  done
  if [ -n "$missing" ]; then no "declared DIFFAD_API but not exported by $LIB:$missing"
  else pass=$((pass+1)); fi
fi

# 3. A host program over the public header links against the shared library alone
#    (-lstb is the example's own image decoding).
CC=${CC:-cc}
if ! command -v "$CC" >/dev/null 2>&1; then
  echo "SKIP check_exports: no C compiler '$CC' to link examples/embed.c against the .so"; skip=$((skip+1))
elif [ ! -f "$ROOT/examples/embed.c" ]; then
  echo "SKIP check_exports: examples/embed.c not found"; skip=$((skip+1))
else
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_exports.XXXXXX") || exit 1
  san=""
  "$NM" -D "$LIB" 2>/dev/null | grep -q ' U __asan_' && san="-fsanitize=address,undefined"
  if out=$("$CC" -std=c11 -O0 $san -I"$ROOT/include" "$ROOT/examples/embed.c" -L"$BUILD" -ldiffad -lstb -lpthread \
             -Wl,-rpath,"$BUILD" -o "$tmp/embed" 2>&1); then
    pass=$((pass+1))
  else
    no "examples/embed.c does not link against $LIB alone:"
    printf '%s\n' "$out" | head -n 20 | sed 's/^/    /'
  fi
  rm -rf "$tmp"
fi
summary
