#!/bin/sh
# run_dnnl_versions.sh — issue 12 deliverable 2: Debian's oneDNN 2.x (what diffad links)
# against PyPI's oneDNN 3.x (`onednn-devel`) on diffad's own convolutions and GroupNorm,
# bench/dnnl_versions.c compiled against each, run alternately, medians per op.
#
#   sh bench/run_dnnl_versions.sh [--rounds R] [--reps N] [--threads T] OUT
#
# Downloads the 3.x wheels (onednn-devel and its runtime: PyPI's oneDNN is built for the SYCL
# CPU runtime, so it needs Intel's SYCL, OpenCL CPU and compiler runtimes, ~600 MB of wheels,
# ~1.3 GB unpacked) into $ONEDNN3_DIR (default build/onednn3) once; nothing is installed
# system-wide (pip3 from PyPI, or PIP=...). Writes OUT/v2.R.txt, OUT/v3.R.txt (raw) and OUT/table.md (medians, ratios).
# 2.x threads: OMP_NUM_THREADS=T. 3.x: its SYCL CPU device uses every CPU of the process, so
# T must equal the machine's CPU count for a fair comparison (checked).
set -eu
ROUNDS=2 REPS=10 THREADS=$(nproc)
while [ $# -gt 1 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    *) echo "run_dnnl_versions.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -eq 1 ] || { echo "usage: run_dnnl_versions.sh [--rounds R] [--reps N] [--threads T] OUT" >&2; exit 2; }
for v in "$ROUNDS" "$REPS" "$THREADS"; do
  case "$v" in ''|*[!0-9]*|0) echo "run_dnnl_versions.sh: --rounds, --reps and --threads take a positive integer, not '$v'" >&2; exit 2 ;; esac
done
OUT=$1
[ "$THREADS" -eq "$(nproc)" ] || { echo "run_dnnl_versions.sh: --threads must be $(nproc) (oneDNN 3.x's SYCL CPU device uses every CPU)" >&2; exit 2; }
BUILD=${BUILD:-build}
PY=${PYTHON:-/usr/bin/python3}
D=${ONEDNN3_DIR:-$BUILD/onednn3}
mkdir -p "$OUT" "$D"
if [ ! -f "$D/lib/libdnnl.so.3" ]; then
  echo "run_dnnl_versions.sh: fetching oneDNN 3.x from PyPI into $D" >&2
  ${PIP:-pip3} download --quiet onednn-devel -d "$D/wheels"
  rm -rf "$D/x" "$D/lib" "$D/include"; mkdir -p "$D/x" "$D/lib"
  for w in "$D"/wheels/*.whl; do $PY -m zipfile -e "$w" "$D/x"; done
  for l in "$D"/x/*/data/lib; do cp -a "$l"/. "$D/lib/"; done
  cp -a "$D"/x/onednn_devel-*/data/include "$D/include"
  rm -rf "$D/x"
fi
make -s "$BUILD/bench/dnnl_versions"
${CC:-cc} -std=c11 -O3 -march=native -Wall -Wextra -I"$D/include" -o "$BUILD/bench/dnnl_versions3" \
  bench/dnnl_versions.c -L"$D/lib" -l:libdnnl.so.3 -lm -Wl,-rpath-link,"$D/lib"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/load.txt"
r=1
while [ $r -le "$ROUNDS" ]; do
  OMP_NUM_THREADS=$THREADS "$BUILD/bench/dnnl_versions" --reps "$REPS" >"$OUT/v2.$r.txt"
  OCL_ICD_FILENAMES="$D/lib/libintelocl.so" LD_LIBRARY_PATH="$D/lib" \
    "$BUILD/bench/dnnl_versions3" --reps "$REPS" 2>/dev/null | grep -v '^onednn_verbose' >"$OUT/v3.$r.txt"
  r=$((r+1))
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load.txt"
$PY - "$OUT" "$ROUNDS" <<'EOF'
import statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def read(v):
    times, impl, head = {}, {}, None
    for r in range(1, rounds + 1):
        for line in open(f"{out}/v{v}.{r}.txt"):
            f = line.split()
            if line.startswith("oneDNN"): head = line.strip(); continue
            key = (f[0], f[1], f[2])
            times.setdefault(key, []).append(float(f[3]))
            impl[key] = line[line.rfind("[") + 1:line.rfind("]")]
    return head, times, impl
h2, t2, i2 = read(2)
h3, t3, i3 = read(3)
rows = [f"2.x: {h2}  \n3.x: {h3}\n",
        "| op | shape | precision | 2.x ms (impl) | 3.x ms (impl) | 3.x / 2.x time |",
        "|---|---|---|---:|---:|---:|"]
for k in t2:
    if k not in t3: continue
    a, b = statistics.median(t2[k]), statistics.median(t3[k])
    rows.append(f"| {k[0]} | {k[1]} | {k[2]} | {a:.3f} ({i2[k]}) | {b:.3f} ({i3[k]}) | {b / a:.2f} |")
for k in t3:
    if k not in t2:
        rows.append(f"| {k[0]} | {k[1]} | {k[2]} | – | {statistics.median(t3[k]):.3f} ({i3[k]}) | |")
open(f"{out}/table.md", "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
EOF
