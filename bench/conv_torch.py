#!/usr/bin/python3
"""conv_torch.py — the PyTorch side of the convolution op benchmark (bench/run_conv.sh).

For one or more conv shapes, times F.conv2d forward (under torch.no_grad()) and a training
pass (forward + backward with requires_grad on input, weight and bias, through
torch.autograd.grad with a fixed upstream gradient), in NCHW and in channels_last, with
torch.set_num_threads(--threads). Prints the same records as bench/bench_conv.c:

    time ID torch_nchw|torch_cl fwd|train SECONDS     one line per timed repetition
    info ID torch_conv TEXT
    meta torch VERSION

Shapes: --shape ID:N,Cin,Cout,H,W,k,stride,pad (repeatable); run_conv.sh passes the list
printed by `bench_conv --list`, so both sides measure the same shapes.
"""
import argparse
import math
import sys
import time

import torch
import torch.nn.functional as F


def parse_shape(text):
    sid, dims = text.split(":")
    n, cin, cout, h, w, k, stride, pad = (int(v) for v in dims.split(","))
    return int(sid), (n, cin, cout, h, w, k, stride, pad)


def measure(args, sid, who, what, fn):
    t1 = 0.0
    for _ in range(max(args.warmup, 1)):
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter() - t0
    reps = math.ceil(args.min_time / t1) if t1 > 0 else args.max_reps
    reps = min(max(reps, args.min_reps), args.max_reps)
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append("time %d %s %s %.9f" % (sid, who, what, time.perf_counter() - t0))
    print("\n".join(out), flush=True)


def bench_shape(args, sid, shape):
    n, cin, cout, h, w, k, stride, pad = shape
    g = torch.Generator().manual_seed(1234 + sid)
    x0 = torch.rand(n, cin, h, w, generator=g) * 2 - 1
    w0 = (torch.rand(cout, cin, k, k, generator=g) * 2 - 1) / math.sqrt(cin * k * k)
    b0 = (torch.rand(cout, generator=g) * 2 - 1) * 0.1
    ho = (h + 2 * pad - k) // stride + 1
    wo = (w + 2 * pad - k) // stride + 1
    gy0 = torch.rand(n, cout, ho, wo, generator=g) * 2 - 1
    for who in args.formats.split(","):
        mf = torch.channels_last if who == "torch_cl" else torch.contiguous_format
        x = x0.contiguous(memory_format=mf).requires_grad_()
        wt = w0.contiguous(memory_format=mf).requires_grad_()
        b = b0.clone().requires_grad_()
        gy = gy0.contiguous(memory_format=mf)

        def fwd():
            with torch.no_grad():
                return F.conv2d(x, wt, b, stride=stride, padding=pad)

        def train():
            y = F.conv2d(x, wt, b, stride=stride, padding=pad)
            return torch.autograd.grad(y, (x, wt, b), gy)

        measure(args, sid, who, "fwd", fwd)
        measure(args, sid, who, "train", train)
        if who == "torch_cl":
            y = fwd()
            fmt = "channels_last" if y.is_contiguous(memory_format=torch.channels_last) else "NCHW"
            print("info %d torch_conv cl-output-%s mkldnn=%s" %
                  (sid, fmt, torch.backends.mkldnn.is_available()), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", action="append", required=True, type=parse_shape,
                    help="ID:N,Cin,Cout,H,W,k,stride,pad (repeatable)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.6)
    ap.add_argument("--min-reps", type=int, default=5)
    ap.add_argument("--max-reps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--formats", default="torch_nchw,torch_cl",
                    help="comma list of torch_nchw, torch_cl")
    args = ap.parse_args()
    for f in args.formats.split(","):
        if f not in ("torch_nchw", "torch_cl"):
            ap.error("unknown format %s" % f)
    torch.set_num_threads(args.threads)
    print("meta torch %s (%s threads)" % (torch.__version__, torch.get_num_threads()), flush=True)
    for sid, shape in args.shape:
        bench_shape(args, sid, shape)
    return 0


if __name__ == "__main__":
    sys.exit(main())
