#!/usr/bin/env python3
"""compare_models.py A B [--tol T] [--abs] [--prefix P]: compare the tensors of two diffad model files.

Prints one line per file pair: the largest difference over all tensors (relative to the largest
absolute value of its tensor; with --abs, absolute), the tensor it is in, and the share of
elements that differ at all. Only tensors whose name starts with P (default: all). Exit 0 when
every tensor matches within T, 1 otherwise, 2 on unreadable files. Used by tests/test_mpi.sh (data-parallel equivalence)."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import modelfile  # noqa: E402  (the checked safetensors reader)


def read(path):
    """The F32 tensors of a model file or checkpoint."""
    _, tensors = modelfile.read_safetensors(path)
    return {name: a for name, a in tensors.items() if a.dtype == np.float32}


def main():
    args = sys.argv[1:]
    tol, prefix, absolute = 1e-5, "", "--abs" in args
    if absolute:
        args.remove("--abs")
    if "--tol" in args:
        i = args.index("--tol")
        tol = float(args[i + 1])
        del args[i:i + 2]
    if "--prefix" in args:
        i = args.index("--prefix")
        prefix = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        print(__doc__)
        return 2
    try:
        a, b = read(args[0]), read(args[1])
    except modelfile.ModelFileError as e:
        print("compare_models: %s" % e)
        return 2
    names = sorted(n for n in a if n.startswith(prefix))
    if set(names) != set(n for n in b if n.startswith(prefix)):
        print("compare_models: the files hold different tensors")
        return 1
    worst, where, differ, total = 0.0, "", 0, 0
    for n in names:
        x, y = a[n].astype(np.float64), b[n].astype(np.float64)
        if x.shape != y.shape:
            print("compare_models: %s has shape %s vs %s" % (n, x.shape, y.shape))
            return 1
        scale = 1.0 if absolute else max(np.abs(x).max(), 1e-12)
        d = float(np.abs(x - y).max()) / scale
        differ += int((x != y).sum())
        total += x.size
        if d > worst:
            worst, where = d, n
    print("compare_models: %d tensors, %d values; max %s difference %.3g (%s); %d values differ (%.2f%%)"
          % (len(names), total, "absolute" if absolute else "relative", worst, where or "-", differ,
             100.0 * differ / max(total, 1)))
    return 0 if worst <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
