#!/bin/sh
# test_install.sh — `make install` into a temporary PREFIX, then used from outside the tree.
#
# With $BUILD (default build) as made by `make` (run by `make test`):
#   1. make install PREFIX=$tmp/prefix puts the header, libdiffad.a, libdiffad.so ->
#      libdiffad.so.0 -> libdiffad.so.VERSION (soname libdiffad.so.0), the CLI, diffad.pc
#      and share/diffad/{python/diffad.py,examples/embed.c,examples/embed.py} in place;
#   2. pkg-config --cflags --libs diffad gives -I$prefix/include -L$prefix/lib -ldiffad, and
#      --static adds the private libraries;
#   3. examples/embed.c, copied to a folder outside the tree, compiles with
#      cc embed.c $(pkg-config --cflags --libs diffad) -lstb -lpthread, and against libdiffad.a
#      with pkg-config --static; both score a sample image with a tiny model trained by the
#      installed CLI, with the score `diffad predict` prints;
#   4. the installed examples/embed.py finds the installed binding and, through the path
#      make install wrote into it, the installed library (no DIFFAD_LIB), same score.
# Skips with a message what needs a missing tool (pkg-config, cc, numpy).
# Output: "FAIL ..."/"SKIP ..." lines, then "test_install: N passed, M failed, K skipped".
# shellcheck disable=SC2015  # "A && ok || no": ok always succeeds
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
PYTHON=${PYTHON:-/usr/bin/python3}
CC=${CC:-cc}
pass=0; fail=0; skip=0
ok() { pass=$((pass+1)); }
no() { echo "FAIL test_install: $1"; fail=$((fail+1)); }
skp() { echo "SKIP test_install: $1"; skip=$((skip+1)); }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_install.XXXXXX") || exit 1
summary() { rm -rf "$tmp"; echo "test_install: $pass passed, $fail failed, $skip skipped"; [ "$fail" -eq 0 ]; exit $?; }
prefix="$tmp/prefix"

# 1. install (a make of its own: not the jobserver of the make test that runs this)
if out=$(cd "$ROOT" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make BUILD="$BUILD" PREFIX="$prefix" install 2>&1); then ok
else no "make install PREFIX=$prefix failed:"; printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /'; summary; fi
version=$(sed -n 's/^#define DIFFAD_VERSION "\(.*\)"/\1/p' "$ROOT/include/diffad.h")
missing=""
for f in include/diffad.h lib/libdiffad.a "lib/libdiffad.so.$version" lib/libdiffad.so.0 lib/libdiffad.so bin/diffad \
         lib/pkgconfig/diffad.pc share/diffad/python/diffad.py share/diffad/examples/embed.c share/diffad/examples/embed.py; do
  [ -e "$prefix/$f" ] || missing="$missing $f"
done
[ -z "$missing" ] && ok || no "not installed:$missing"
[ -x "$prefix/bin/diffad" ] && [ -x "$prefix/share/diffad/examples/embed.py" ] && ok || no "bin/diffad or embed.py not executable"
[ "$(readlink "$prefix/lib/libdiffad.so")" = libdiffad.so.0 ] && [ "$(readlink "$prefix/lib/libdiffad.so.0")" = "libdiffad.so.$version" ] \
  && ok || no "libdiffad.so links: $(cd "$prefix/lib" && for f in libdiffad.so*; do printf '%s -> %s; ' "$f" "$(readlink "$f")"; done)"
if command -v readelf >/dev/null 2>&1; then
  soname=$(readelf -d "$prefix/lib/libdiffad.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
  [ "$soname" = libdiffad.so.0 ] && ok || no "soname of libdiffad.so.$version is '$soname', expected libdiffad.so.0"
else skp "no readelf: the soname was not checked"; fi
grep -q "^_INSTALLED_LIB = \"$prefix/lib/libdiffad.so.0\"" "$prefix/share/diffad/python/diffad.py" && ok \
  || no "share/diffad/python/diffad.py does not name the installed library"

# 2. pkg-config
if ! command -v pkg-config >/dev/null 2>&1; then skp "no pkg-config: the pkg-config and link checks did not run"; summary; fi
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
flags=$(pkg-config --cflags --libs diffad 2>&1) || { no "pkg-config --cflags --libs diffad: $flags"; summary; }
# shellcheck disable=SC2086,SC2116  # word splitting normalises pkg-config's spaces
[ "$(echo $flags)" = "-I$prefix/include -L$prefix/lib -ldiffad" ] && ok || no "pkg-config --cflags --libs diffad: '$flags'"
sflags=$(pkg-config --static --libs diffad)
lack=""
for l in -ldiffad -ldnnl -lstb -lm -lpthread -fopenmp; do
  case " $sflags " in *" $l "*) ;; *) lack="$lack $l" ;; esac
done
[ -z "$lack" ] && ok || no "pkg-config --static --libs diffad lacks$lack: '$sflags'"
[ "$(pkg-config --modversion diffad)" = "$version" ] && ok || no "pkg-config --modversion: $(pkg-config --modversion diffad)"

# a tiny model, trained by the installed CLI on 4 sample images, and the CLI's score
mkdir -p "$tmp/good" "$tmp/work"
n=0
for f in "$ROOT"/data/sample/pcb/train/good/*.png; do [ $n -lt 4 ] && cp "$f" "$tmp/good/"; n=$((n+1)); done
for img in "$ROOT"/data/sample/pcb/test/defect/*.png; do break; done
model="$tmp/tiny.safetensors"
if ! out=$("$prefix/bin/diffad" train --data "$tmp/good" --out "$model" --size 32x32 --base_channels 8 --channel_mult 1,2 \
      --attention none --heads 1 --groups 8 --seg_width 4 --batch 2 --steps 1 --threads 1 --quiet 2>&1); then
  no "installed diffad train failed:"; printf '%s\n' "$out" | tail -n 10 | sed 's/^/    /'; summary
fi
ok
cli=$("$prefix/bin/diffad" predict --model "$model" --threads 1 "$img" 2>/dev/null | sed -n 's/.*"score":\([^,]*\),.*/\1/p')
[ -n "$cli" ] && ok || { no "installed diffad predict printed no score"; summary; }
want=$(awk -v s="$cli" 'BEGIN { printf "%.6f", s }')

# 3. examples/embed.c outside the tree, shared and static
cp "$prefix/share/diffad/examples/embed.c" "$tmp/work/"
cd "$tmp/work" || exit 1
if ! command -v "$CC" >/dev/null 2>&1; then skp "no C compiler '$CC': embed.c was not built"; else
  san=""  # a sanitizer build's library needs the runtime in the program too
  command -v nm >/dev/null 2>&1 && nm -D "$prefix/lib/libdiffad.so" 2>/dev/null | grep -q ' U __asan_' && san="-fsanitize=address,undefined"
  statlibs=""; cflags=$(pkg-config --cflags diffad)
  for f in $sflags; do [ "$f" = -ldiffad ] || statlibs="$statlibs $f"; done
  # shellcheck disable=SC2086
  if out=$($CC -O1 $san embed.c $flags -lstb -lpthread -o embed_shared 2>&1); then ok
  else no "cc embed.c \$(pkg-config --cflags --libs diffad) failed:"; printf '%s\n' "$out" | head -n 20 | sed 's/^/    /'; fi
  # shellcheck disable=SC2086
  if out=$($CC -O1 $san embed.c $cflags "$prefix/lib/libdiffad.a" $statlibs -o embed_static 2>&1); then ok
  else no "cc embed.c libdiffad.a \$(pkg-config --static --libs diffad) failed:"; printf '%s\n' "$out" | head -n 20 | sed 's/^/    /'; fi
  for kind in shared static; do
    [ -x "embed_$kind" ] || continue
    out=$(LD_LIBRARY_PATH="$prefix/lib" "./embed_$kind" "$model" "$img" 2>&1); rc=$?
    got=$(printf '%s\n' "$out" | sed -n 's/^image .*: score \([0-9.]*\) .*/\1/p')
    [ "$rc" -eq 0 ] && [ "$got" = "$want" ] && ok || { no "embed_$kind: exit $rc, score '$got', CLI $want:"; printf '%s\n' "$out" | tail -n 8 | sed 's/^/    /'; }
  done
  if [ -x embed_shared ] && command -v ldd >/dev/null 2>&1; then
    LD_LIBRARY_PATH="$prefix/lib" ldd embed_shared | grep -q "libdiffad.so.0 => $prefix/lib/libdiffad.so.0" && ok \
      || no "embed_shared does not load $prefix/lib/libdiffad.so.0: $(LD_LIBRARY_PATH="$prefix/lib" ldd embed_shared | grep diffad)"
  fi
fi

# 4. the installed Python binding and example, with the installed library, from here
if ! "$PYTHON" -c 'import numpy' >/dev/null 2>&1; then skp "no numpy for $PYTHON: the installed binding was not run"
elif grep -q 'libasan\.so' "$prefix/lib/libdiffad.so.$version"; then skp "a sanitizer build cannot be loaded into $PYTHON"
else
  out=$(env -u DIFFAD_LIB -u PYTHONPATH "$PYTHON" "$prefix/share/diffad/examples/embed.py" "$model" "$img" --threads 1 2>&1); rc=$?
  got=$(printf '%s\n' "$out" | sed -n 's/^.*: score \([0-9.e-]*\) .*/\1/p')
  [ "$rc" -le 1 ] && [ "$got" = "$cli" ] && ok || { no "installed embed.py: exit $rc, score '$got', CLI $cli:"; printf '%s\n' "$out" | tail -n 8 | sed 's/^/    /'; }
  out=$(env -u DIFFAD_LIB PYTHONPATH="$prefix/share/diffad/python" "$PYTHON" -c 'import diffad, sys
lib = diffad.load_library()
print(diffad.__file__, lib._name)' 2>&1)
  case $out in "$prefix/share/diffad/python/diffad.py $prefix/lib/libdiffad.so.0") ok ;;
    *) no "import diffad with PYTHONPATH=$prefix/share/diffad/python: '$out'" ;; esac
fi
summary
