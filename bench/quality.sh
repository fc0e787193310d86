#!/bin/sh
# quality.sh — the quality benchmark: train the default (CPU) profile on the two shared
# categories for a fixed budget, once per seed, `diffad test` each model, and print one
# Markdown table of what was reached (README "Quality on real data").
#
#   bench/quality.sh [--minutes N | --steps S] [--seeds K] [--out DIR] [--extra "--key value ..."]
#                    [--threads T] [--categories "ball_screw pcb"] [--profile NAME] [--bin PATH]
#                    [--no-report] [--force] [--dry-run] [--table DIR]
#
# Categories (data from ../shared/data relative to the repository root, or
# $DIFFAD_SHARED_DATA; a missing one is skipped with a message):
#   ball_screw  bsdata/ball_screw  --size 96x224 --attention 12 --foreground none --textures <shared>/textures
#   pcb         deeppcb/pcb        --foreground none --tile_scale 0.5 --textures <shared>/textures
# (pcb in 128-px crops of the 320-px working image, 3x3 tiles at inference: docs/training.md
# finding 23; before 2026-11-30 evening pcb was fit whole at 128x128)
# Per category and seed 1..K (run one after the other, never side by side, so samples/s
# is the machine's, not a share of it):
#   diffad train --data D --out RUN/model.safetensors --profile P <category flags> --seed K
#                <budget> [--threads T] <extra>          (extra last: it overrides the rest)
#   diffad test  --model RUN/model.safetensors --data D --out RUN/test [--report] [--threads T]
# Budget: --minutes N passes `--minutes N` (a wall-clock budget of the training loop) with
# `--steps 1000000000`, so the time decides and not the profile's step count; --steps S
# passes `--steps S` (both: whichever comes first). A diffad without the `minutes` setting
# needs --steps. Default: --minutes 60.
#
# Everything lands in DIR (default quality-<UTC date-time>): commands.sh (every command, in
# order, runnable again from the repository root), and per run DIR/<category>/seed<K>/:
# train.cmd, settings.txt (`diffad train ... --help`: every setting in effect), train.log
# (stdout+stderr), model.safetensors, model.safetensors.log.csv (losses), test.cmd,
# test.log, test/ (metrics.json, metrics.md, scores.csv, report.html), times.txt (wall
# seconds). The table goes to stdout and DIR/results.md, the numbers to DIR/results.csv.
# A run whose test/metrics.json exists is not redone (--force redoes it), so an
# interrupted benchmark continues with the first unfinished run. --table DIR re-prints a table.
#
# Table columns: minutes and steps of the training loop, samples seen (steps x batch),
# samples/s, and the overall image AUROC, pixel AUROC and AUPRO of `diffad test` in percent;
# per category a mean row and the spread over seeds (sample standard deviation, min..max).
# --dry-run writes and prints the commands without running them.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PWD0=$(pwd)
MINUTES=
STEPS=
SEEDS=3
OUT=
EXTRA=
THREADS=
CATS="ball_screw pcb"
PROFILE=cpu
BIN=${DIFFAD:-}
REPORT=1
FORCE=0
DRY=0
TABLE=

usage() { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "quality.sh: $*" >&2; exit 2; }

# One shell word, quoted so that eval and commands.sh read it back unchanged.
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
INVOCATION=bench/quality.sh
for a in "$@"; do INVOCATION="$INVOCATION $(q "$a")"; done
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --no-report) REPORT=0; shift; continue ;;
    --force) FORCE=1; shift; continue ;;
    --dry-run) DRY=1; shift; continue ;;
  esac
  [ $# -ge 2 ] || die "option $1 needs a value (see --help)"
  case "$1" in
    --minutes) MINUTES=$2 ;;
    --steps) STEPS=$2 ;;
    --seeds) SEEDS=$2 ;;
    --out) OUT=$2 ;;
    --extra) EXTRA=$2 ;;
    --threads) THREADS=$2 ;;
    --categories) CATS=$2 ;;
    --profile) PROFILE=$2 ;;
    --bin) BIN=$2 ;;
    --table) TABLE=$2 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift 2
done

is_num() { case "$1" in ''|*[!0-9.]*|*.*.*) return 1 ;; esac; return 0; }
is_int() { case "$1" in ''|*[!0-9]*) return 1 ;; esac; return 0; }

# The table, from whatever runs DIR holds (python3: the JSON reader; plain sh has none).
print_table() {
  /usr/bin/env python3 - "$1" <<'PY'
import csv, glob, json, math, os, re, statistics, sys

out = sys.argv[1]
rows = []
for run in sorted(glob.glob(os.path.join(out, "*", "seed*"))):
    cat, seed = os.path.basename(os.path.dirname(run)), os.path.basename(run)[4:]
    r = {"category": cat, "seed": int(seed) if seed.isdigit() else seed, "status": "not run"}
    # training loop: the last line of the loss log (step, samples_per_s, elapsed_s)
    logs = glob.glob(os.path.join(run, "*.log.csv"))
    if logs:
        with open(logs[0]) as f:
            lines = [l for l in csv.DictReader(f)]
        if lines:
            last = lines[-1]
            r["steps"] = int(float(last["step"]))
            r["sps"] = float(last["samples_per_s"])
            r["minutes"] = float(last["elapsed_s"]) / 60
    # batch: the last --batch of the command (later settings win), else the settings in
    # effect (train --help), else samples/s x seconds / steps
    batch = None
    for name, pat in (("train.cmd", r"--batch\s+'?(\d+)"), ("settings.txt", r"^\s*--batch\s+(\d+)")):
        try:
            found = re.findall(pat, open(os.path.join(run, name)).read(), re.M)
        except OSError:
            found = []
        if found:
            batch = int(found[-1])
            break
    if batch is None and "steps" in r and r["steps"] > 0:
        batch = max(1, round(r["sps"] * r["minutes"] * 60 / r["steps"]))
    if batch and "steps" in r:
        r["samples"] = r["steps"] * batch
    mj = os.path.join(run, "test", "metrics.json")
    if os.path.exists(mj):
        with open(mj) as f:
            overall = json.load(f)["sets"][0]["metrics"]
        for k in ("image_auroc", "pixel_auroc", "aupro"):
            v = overall.get(k, {}).get("value")
            r[k] = None if v is None else 100 * v
        r["status"] = "ok"
    elif os.path.exists(os.path.join(run, "train.log")):
        r["status"] = "failed (see train.log / test.log)"
    rows.append(r)

cols = [("minutes", "minutes", "{:.1f}"), ("steps", "steps", "{:,}"), ("samples", "samples seen", "{:,}"),
        ("sps", "samples/s", "{:.2f}"), ("image_auroc", "image AUROC", "{:.1f}"),
        ("pixel_auroc", "pixel AUROC", "{:.1f}"), ("aupro", "AUPRO", "{:.1f}")]

def cell(r, k, fmt):
    v = r.get(k)
    return "–" if v is None else fmt.format(v)

md = ["| category | seed | " + " | ".join(c[1] for c in cols) + " |",
      "|---|---:|" + "---:|" * len(cols)]
for cat in sorted({r["category"] for r in rows}):
    group = [r for r in rows if r["category"] == cat]
    for r in group:
        line = "| %s | %s | " % (cat, r["seed"]) + " | ".join(cell(r, k, f) for k, _, f in cols) + " |"
        if r["status"] != "ok":
            line += " " + r["status"]
        md.append(line)
    mean, spread = [], []
    for k, _, f in cols:
        vals = [r[k] for r in group if r.get(k) is not None and r["status"] == "ok"]
        if not vals:
            mean.append("–"); spread.append("–"); continue
        mean.append(f.format(statistics.mean(vals)) if k not in ("steps", "samples") else "{:,.0f}".format(statistics.mean(vals)))
        sd = statistics.stdev(vals) if len(vals) > 1 else float("nan")
        g = (lambda x: "{:.1f}".format(x)) if k not in ("sps",) else (lambda x: "{:.2f}".format(x))
        if k in ("steps", "samples"):
            g = lambda x: "{:,.0f}".format(x)
        spread.append("–" if len(vals) < 2 else "±" + g(sd) + " (" + g(min(vals)) + "–" + g(max(vals)) + ")")
    n_ok = sum(r["status"] == "ok" for r in group)
    md.append("| **%s** | mean of %d | " % (cat, n_ok) + " | ".join(mean) + " |")
    md.append("| | sd (min–max) | " + " | ".join(spread) + " |")
text = "\n".join(md) + "\n"
sys.stdout.write(text)
with open(os.path.join(out, "results.md"), "w") as f:
    f.write(text)
with open(os.path.join(out, "results.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["category", "seed", "status"] + [c[0] for c in cols])
    for r in rows:
        w.writerow([r["category"], r["seed"], r["status"]] + ["" if r.get(k) is None else r[k] for k, _, _ in cols])
PY
}

if [ -n "$TABLE" ]; then
  [ -d "$TABLE" ] || die "$TABLE: no such folder"
  print_table "$TABLE"
  exit $?
fi

{ is_int "$SEEDS" && [ "$SEEDS" -ge 1 ]; } || die "--seeds needs a whole number >= 1, got '$SEEDS'"
[ -z "$MINUTES" ] || is_num "$MINUTES" || die "--minutes needs a number, got '$MINUTES'"
[ -z "$STEPS" ] || is_int "$STEPS" || die "--steps needs a whole number, got '$STEPS'"
[ -z "$THREADS" ] || is_int "$THREADS" || die "--threads needs a whole number, got '$THREADS'"
[ -n "$MINUTES" ] || [ -n "$STEPS" ] || MINUTES=60

# --out, --bin and $DIFFAD are relative to where this was started; the commands run from the root.
[ -n "$OUT" ] || OUT=quality-$(date -u +%Y%m%d-%H%M%S)
case "$OUT" in /*) ;; *) OUT=$PWD0/$OUT ;; esac
case "$BIN" in '') BIN=build/diffad ;; /*) ;; *) BIN=$PWD0/$BIN ;; esac
cd "$ROOT" || die "cannot enter $ROOT"
[ -x "$BIN" ] || die "$BIN: no diffad binary (run make first, or give --bin PATH)"
if [ -n "$MINUTES" ] && ! "$BIN" train --help 2>/dev/null | grep -q -- '--minutes'; then
  die "this diffad train has no 'minutes' setting: give a step budget with --steps S instead"
fi
if [ -n "$MINUTES" ]; then BUDGET="--minutes $MINUTES --steps ${STEPS:-1000000000}"
else BUDGET="--steps $STEPS"
fi
TARGS=
[ -n "$THREADS" ] && TARGS="--threads $THREADS"

# Relative to the repository root as the commands run from there (commands.sh starts with cd).
SHARED=${DIFFAD_SHARED_DATA:-../shared/data}
data_of() {
  case "$1" in
    ball_screw) echo "$SHARED/bsdata/ball_screw" ;;
    pcb) echo "$SHARED/deeppcb/pcb" ;;
    *) die "unknown category '$1' (ball_screw, pcb)" ;;
  esac
}
HAVE=0
for cat in $CATS; do
  DATA=$(data_of "$cat") || exit 2
  if [ -d "$DATA" ]; then HAVE=$((HAVE + 1))
  else echo "quality.sh: skipping $cat: $DATA not found (the shared data live in ../shared/data next to the repository, or \$DIFFAD_SHARED_DATA)" >&2
  fi
done
[ "$HAVE" -gt 0 ] || { echo "quality.sh: no category's data found; nothing to run" >&2; exit 0; }
mkdir -p "$OUT" || die "$OUT: cannot create the output folder"


CMDS="$OUT/commands.sh"
if [ ! -f "$CMDS" ]; then
  { echo "#!/bin/sh"; echo "# bench/quality.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo 'no git')";
    echo "set -e"; echo "cd $(q "$ROOT")"; } > "$CMDS"
fi
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ): $INVOCATION$([ "$DRY" = 1 ] && echo ' (dry run: nothing below ran)')" >> "$CMDS"

trap 'echo; echo "quality.sh: interrupted; the same command again keeps the finished runs and redoes the rest" >&2; exit 130' INT TERM

FAILED=0
for cat in $CATS; do
  DATA=$(data_of "$cat")
  [ -d "$DATA" ] || continue
  case "$cat" in
    ball_screw) CARGS="--size 96x224 --attention 12 --foreground none --textures $(q "$SHARED/textures")" ;;
    pcb) CARGS="--foreground none --tile_scale 0.5 --textures $(q "$SHARED/textures")" ;;
  esac
  seed=1
  while [ "$seed" -le "$SEEDS" ]; do
    RUN=$OUT/$cat/seed$seed
    if [ "$FORCE" = 0 ] && [ -f "$RUN/test/metrics.json" ]; then
      echo "== $cat seed $seed: done before ($RUN/test/metrics.json; --force redoes it)" >&2
      seed=$((seed + 1)); continue
    fi
    mkdir -p "$RUN"
    TRAIN="$(q "$BIN") train --data $(q "$DATA") --out $(q "$RUN/model.safetensors") --profile $(q "$PROFILE") $CARGS --seed $seed${BUDGET:+ $BUDGET}${TARGS:+ $TARGS}${EXTRA:+ $EXTRA}"
    TEST="$(q "$BIN") test --model $(q "$RUN/model.safetensors") --data $(q "$DATA") --out $(q "$RUN/test")"
    [ "$REPORT" = 1 ] && TEST="$TEST --report"
    [ -n "$TARGS" ] && TEST="$TEST $TARGS"
    printf '%s\n' "$TRAIN" > "$RUN/train.cmd"
    printf '%s\n' "$TEST" > "$RUN/test.cmd"
    { echo; echo "# $cat, seed $seed"; echo "$TRAIN > $(q "$RUN/train.log") 2>&1"; echo "$TEST > $(q "$RUN/test.log") 2>&1"; } >> "$CMDS"
    echo "== $cat seed $seed: $TRAIN" >&2
    if [ "$DRY" = 1 ]; then seed=$((seed + 1)); continue; fi
    eval "$TRAIN --help" > "$RUN/settings.txt" 2>&1 || die "$cat: the train command is refused: $(tail -n 1 "$RUN/settings.txt")"
    rm -f "$RUN/test/metrics.json"
    t0=$(date +%s)
    if eval "$TRAIN" > "$RUN/train.log" 2>&1; then
      t1=$(date +%s)
      echo "   trained in $((t1 - t0)) s: $(grep 'wrote' "$RUN/train.log" | tail -n 1)" >&2
      if eval "$TEST" > "$RUN/test.log" 2>&1; then
        echo "   tested in $(( $(date +%s) - t1 )) s" >&2
      else
        FAILED=$((FAILED + 1)); echo "   test FAILED: $(tail -n 1 "$RUN/test.log")" >&2
      fi
      printf 'train_wall_s=%s\ntest_wall_s=%s\n' "$((t1 - t0))" "$(( $(date +%s) - t1 ))" > "$RUN/times.txt"
    else
      rc=$?
      FAILED=$((FAILED + 1)); echo "   training FAILED (exit $rc): $(tail -n 1 "$RUN/train.log")" >&2
      [ "$rc" = 130 ] && { echo "quality.sh: training was interrupted; the same command again keeps the finished runs" >&2; exit 130; }
    fi
    seed=$((seed + 1))
  done
done

[ "$DRY" = 1 ] && { echo "quality.sh: dry run; commands in $CMDS" >&2; exit 0; }
echo >&2
print_table "$OUT" || exit 2
echo "quality.sh: everything is in $OUT (commands.sh, per run: *.cmd, settings.txt, train.log, test.log, test/)" >&2
[ "$FAILED" = 0 ] || { echo "quality.sh: $FAILED run(s) failed" >&2; exit 1; }
