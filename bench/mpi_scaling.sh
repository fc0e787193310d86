#!/bin/sh
# mpi_scaling.sh — data-parallel training on this machine (docs/training.md "Several processes"):
#  1. samples/s of `diffad train` (default profile, bundled sample, global batch 8, STEPS steps):
#     1 process x 2 threads against 2 processes x 1 thread (mpirun, one core each), ROUNDS rounds
#     alternating, medians; the trainer's own time per step in the sums is printed too;
#  2. MPI_Allreduce of the gradient block (the cpu profile's 20.6 MB and the paper's 640 MB) over
#     loopback, 2 processes (bench/mpi/allreduce.c, built here with mpicc).
#   bench/mpi_scaling.sh [--steps S] [--rounds R] [--bin PATH]
set -eu
cd "$(dirname "$0")/.."
STEPS=12 ROUNDS=2 BIN=build/diffad
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) STEPS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    *) echo "usage: bench/mpi_scaling.sh [--steps S] [--rounds R] [--bin PATH]" >&2; exit 2 ;;
  esac
done
T=$(mktemp -d /tmp/mpi_scaling_XXXXXX)
MPI="mpirun --allow-run-as-root -np 2 --bind-to core"
ARGS="--data data/sample/pcb --batch 8 --steps $STEPS --val_fraction 0.1 --checkpoint_every 0 --quiet --seed 1"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
r=1
while [ $r -le "$ROUNDS" ]; do
  $BIN train $ARGS --threads 2 --out $T/one.safetensors 2>&1 | grep "wrote" | sed 's/^/1 process x 2 threads: /'
  $MPI $BIN train $ARGS --threads 1 --out $T/two.safetensors 2>&1 | grep "wrote" | sed 's/^/2 processes x 1 thread: /'
  r=$((r+1))
done
mpicc -O2 -o $T/mpi_allreduce bench/mpi/allreduce.c
for bytes in 20561616 640000000; do mpirun --allow-run-as-root -np 2 $T/mpi_allreduce $bytes 10; done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$T"
