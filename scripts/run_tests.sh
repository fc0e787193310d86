#!/bin/sh
# Runs each test program given as an argument (*.py ones with $PYTHON), adds up their
# "name: N passed, N failed, N skipped" lines and prints the total last.
# Exit status: 0 only if every program exited 0.
set -u
pass=0; fail=0; skip=0; bad=0
for t in "$@"; do
  case $t in
    *.py) out=$("${PYTHON:-/usr/bin/python3}" "$t" 2>&1); rc=$? ;;  # Python tests: with $PYTHON
    *) out=$("$t" 2>&1); rc=$? ;;
  esac
  printf '%s\n' "$out" | grep -E '^(FAIL|SKIP)' | head -n 40
  line=$(printf '%s\n' "$out" | grep -E '^[A-Za-z0-9_]+: [0-9]+ passed, [0-9]+ failed' | tail -n 1)
  if [ -z "$line" ]; then
    printf '%s\n' "$out" | tail -n 20
    echo "$(basename "$t"): crashed or printed no summary (exit $rc)"; bad=$((bad+1)); fail=$((fail+1))
    continue
  fi
  echo "$line"
  p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
  f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
  s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p'); s=${s:-0}
  pass=$((pass+p)); fail=$((fail+f)); skip=$((skip+s))
  [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && { echo "$(basename "$t"): exit $rc"; fail=$((fail+1)); }
done
echo "total: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
