"""peers.py -- the peer runtimes of bench/run_peers.sh: PyTorch, ONNX Runtime and
OpenVINO running the whole batch-1 inference of the repo's PyTorch reference
(tests/py/ref_model.py) with the same deterministic weights as bench/bench_model.c.

  peers.py export --config C --onnx FILE          whole inference -> ONNX (fixed t_s, t_b;
                                                  inputs x0, eps_s, eps_b; outputs map, x0_hat)
  peers.py check  --config C --onnx FILE --dump DUMP [--threads N]
        agreement with diffad's C output (DUMP from `bench_model --dump`: image, noise,
        map, recon), same input and noise, for torch / ort / ov; one JSON record each
  peers.py time   --config C --runtime torch|ort|ov [--layout nchw|cl] --onnx FILE
                  [--precision f32|bf16] [--threads N] [--warmup W] --reps R
        latency per call, noise drawn inside the timed call (as dd_model_infer does);
        bf16 only where the runtime offers it on CPU: OpenVINO (INFERENCE_PRECISION_HINT
        bf16: bf16 compute, f32 inputs/outputs). ONNX Runtime's CPU execution provider has no
        bf16 convolution kernels, and PyTorch 1.13's CPU bf16 autocast is not a deployment
        path, so both run f32 only and say so
  peers.py table  RAW [RAW...] [--out FILE]

Run it with the venv of run_peers.sh (onnxruntime, openvino, onnx from PyPI over
Debian's torch 1.13 and numpy)."""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "py"))
import model_torch as MT  # noqa: E402


def rec(**kw):
    print(json.dumps(kw), flush=True)


def read_dump(path, h, w):
    import numpy as np
    a = np.fromfile(path, dtype=np.float32)
    hw = h * w
    if a.size != hw * 3 + 2 * hw * 3 + hw + hw * 3:
        sys.exit(f"peers.py: {path} has {a.size} floats, expected {hw * 10} for {h}x{w}")
    o = 0

    def take(n, shape):
        nonlocal o
        v = a[o:o + n].reshape(shape)
        o += n
        return v
    img = take(hw * 3, (h, w, 3))
    eps = take(2 * hw * 3, (2, h, w, 3))
    mp = take(hw, (h, w))
    rc = take(hw * 3, (h, w, 3))
    nchw = lambda t: np.ascontiguousarray(t.transpose(2, 0, 1)[None])  # noqa: E731
    return nchw(img), nchw(eps[0]), nchw(eps[1]), mp, rc


def stamp(cfg):
    """What the exported graph depends on: the reference networks and the inference module."""
    import hashlib
    import inspect
    h = hashlib.sha256()
    with open(os.path.join(HERE, "..", "tests", "py", "ref_model.py"), "rb") as f:
        h.update(f.read())
    for fn in (MT.make_infer_module, MT.build, MT.build_from):
        h.update(inspect.getsource(fn).encode())
    h.update(json.dumps(MT.CONFIGS[cfg], sort_keys=True).encode())
    return h.hexdigest()[:16]


def export(args):
    import torch
    unet, seg = MT.build(args.config)
    mod = MT.make_infer_module(unet, seg)
    c = MT.CONFIGS[args.config]
    x = torch.rand(1, 3, c["h"], c["w"])
    t0 = time.time()
    with torch.no_grad():
        torch.onnx.export(mod, (x, torch.randn_like(x), torch.randn_like(x)), args.onnx, opset_version=args.opset,
                          input_names=["x0", "eps_s", "eps_b"], output_names=["map", "x0_hat"], do_constant_folding=True)
    import onnx
    onnx.checker.check_model(args.onnx)
    with open(args.onnx + ".stamp", "w") as f:
        f.write(f"{stamp(args.config)} opset {args.opset}\n")
    print(f"peers.py: exported {args.onnx} (opset {args.opset}) in {time.time() - t0:.0f} s", file=sys.stderr)


class Runner:
    """One runtime with the graph (x0, eps_s, eps_b) -> (map, x0_hat), NCHW float32."""

    def __init__(self, kind, cfg, onnx_path, threads, layout="nchw", precision="f32"):
        self.kind = kind
        if precision != "f32" and kind != "ov":
            sys.exit(f"peers.py: {kind} runs f32 only here (no CPU bf16 path offered), not {precision}")
        if kind == "torch":
            import torch
            torch.set_num_threads(threads)
            unet, seg = MT.build(cfg)
            self.mod = MT.make_infer_module(unet, seg)
            self.cl = layout == "cl"
            if self.cl:
                self.mod = self.mod.to(memory_format=torch.channels_last)
            self.torch = torch
        elif kind == "ort":
            import onnxruntime as ort
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        elif kind == "ov":
            import openvino as ov
            core = ov.Core()
            model = core.read_model(onnx_path)
            self.comp = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                                          "INFERENCE_PRECISION_HINT": precision, "NUM_STREAMS": 1})
            self.req = self.comp.create_infer_request()
        else:
            raise ValueError(kind)

    def __call__(self, x0, es, eb):
        if self.kind == "torch":
            torch = self.torch
            with torch.no_grad():
                t = [torch.from_numpy(a) for a in (x0, es, eb)]
                if self.cl:
                    t = [a.contiguous(memory_format=torch.channels_last) for a in t]
                m, r = self.mod(*t)
                return m.numpy(), r.numpy()
        if self.kind == "ort":
            m, r = self.sess.run(None, {"x0": x0, "eps_s": es, "eps_b": eb})
            return m, r
        res = self.req.infer({"x0": x0, "eps_s": es, "eps_b": eb})
        outs = list(res.values())
        return outs[0], outs[1]


def check(args):
    import numpy as np
    c = MT.CONFIGS[args.config]
    x0, es, eb, mp, rc = read_dump(args.dump, c["h"], c["w"])
    for kind in ("torch", "ort", "ov"):
        try:
            run = Runner(kind, args.config, args.onnx, args.threads)
            m, r = run(x0, es, eb)
        except Exception as e:  # a missing or failing runtime is reported, not fatal
            rec(impl=kind, cfg=args.config, what="check_fail", error=str(e)[:300])
            continue
        m = np.asarray(m).reshape(c["h"], c["w"])
        r = np.asarray(r).reshape(3, c["h"], c["w"]).transpose(1, 2, 0)
        rec(impl=kind, cfg=args.config, what="check", map_maxabs=float(np.abs(m - mp).max()),
            recon_maxabs=float(np.abs(r - rc).max()), map_range=[float(mp.min()), float(mp.max())],
            recon_range=[float(rc.min()), float(rc.max())], map_mean_abs=float(np.abs(m - mp).mean()))
        del run


def time_runtime(args):
    import numpy as np
    c = MT.CONFIGS[args.config]
    run = Runner(args.runtime, args.config, args.onnx, args.threads, args.layout, args.precision)
    x0 = MT.bench_image(c["h"], c["w"])
    g = np.random.default_rng(1234)
    for i in range(args.warmup + args.reps):
        t0 = time.perf_counter()
        es = g.standard_normal(x0.shape, dtype=np.float32)
        eb = g.standard_normal(x0.shape, dtype=np.float32)
        run(x0, es, eb)
        ms = (time.perf_counter() - t0) * 1e3
        if i >= args.warmup:
            rec(impl=args.runtime, layout=args.layout, precision=args.precision, cfg=args.config, threads=args.threads,
                what="infer", batch=1, ms=round(ms, 3))
    hwm, rss = MT.proc_mem()
    rec(impl=args.runtime, layout=args.layout, precision=args.precision, cfg=args.config, threads=args.threads,
        what="mem_infer", batch=1, hwm_mb=round(hwm, 1), rss_mb=round(rss, 1))


NAMES = {"ours": "diffad (C, oneDNN)", "torch": "PyTorch 1.13 (eval, no_grad)", "ort": "ONNX Runtime (CPU EP)",
         "ov": "OpenVINO (CPU)"}


def prec(r):
    """A record's precision; records from before it was recorded ran f32."""
    return r.get("precision", "f32")


def table(paths, out):
    R = MT.load(paths)
    L = []
    P = L.append
    for e in MT.env_lines(R):
        P(e)
    vers = [r for r in R if r.get("what") == "versions"]
    if vers:
        P("Versions: " + ", ".join(f"{k} {v}" for k, v in vers[0].items() if k not in ("what",)) + ".")
        P("")
    cfgs = [c for c in ("cpu", "paper") if any(r.get("cfg") == c for r in R)]
    main = "auto" if any(r.get("algo") == "auto" for r in R) else "direct"
    chk = [r for r in R if r.get("what") in ("check", "check_fail")]
    if chk:
        P("Agreement with diffad's C output, same input image, same noise (eps_s, eps_b), same weights:")
        P("")
        P("| config | runtime | max abs diff, anomaly map | mean abs diff, map | max abs diff, reconstruction | diffad map range | diffad recon range |")
        P("|---|---|---:|---:|---:|---|---|")
        for r in chk:
            if r["what"] == "check_fail":
                P(f"| {r['cfg']} | {NAMES[r['impl']]} | failed: {r['error'][:80]} | | | | |")
            else:
                P(f"| {r['cfg']} | {NAMES[r['impl']]} | {r['map_maxabs']:.2e} | {r['map_mean_abs']:.2e} | {r['recon_maxabs']:.2e} | "
                  f"{r['map_range'][0]:.3f} … {r['map_range'][1]:.3f} | {r['recon_range'][0]:.3f} … {r['recon_range'][1]:.3f} |")
        P("")
    for th in sorted({r["threads"] for r in R if "threads" in r}):
        P(f"Batch-1 predict latency, {th} thread{'s' if th > 1 else ''}: medians over all timed calls of all rounds; "
          "throughput = 1 / median latency (one image at a time).")
        P("")
        P("| config | runtime | latency (median) | min … max | throughput | runtime / diffad time | peak RSS (VmHWM) | n |")
        P("|---|---|---:|---|---:|---:|---:|---:|")
        for cfg in cfgs:
            ours_all = [r for r in R if r.get("impl") == "ours" and r.get("cfg") == cfg and r.get("what") == "infer"
                        and r.get("threads") == th and r.get("algo", main) == main]
            ref_prec = "bf16" if any(prec(r) == "bf16" for r in ours_all) else "f32"
            ours = [r["ms"] for r in ours_all if prec(r) == ref_prec]
            om = statistics.median(ours) if ours else None
            for impl in ("ours", "torch", "ort", "ov"):
                keys = sorted({(r.get("layout", "-"), prec(r)) for r in R if r.get("impl") == impl and r.get("cfg") == cfg
                               and r.get("what") == "infer" and r.get("threads") == th}, key=lambda k: (k[0], k[1] != "bf16"))
                for lay, pr in keys:
                    v = [r["ms"] for r in R if r.get("impl") == impl and r.get("cfg") == cfg and r.get("what") == "infer"
                         and r.get("threads") == th and r.get("layout", "-") == lay and prec(r) == pr
                         and r.get("algo", main) == main]
                    if not v:
                        continue
                    mem = [r["hwm_mb"] for r in R if r.get("impl") == impl and r.get("cfg") == cfg and r.get("what") == "mem_infer"
                           and r.get("threads") == th and r.get("layout", "-") == lay and prec(r) == pr]
                    m = statistics.median(v)
                    name = NAMES[impl] + (" channels_last" if lay == "cl" else "") + f", {pr}"
                    memtxt = f"{max(mem):.0f} MiB" if mem else "–"
                    P(f"| {cfg} | {name} | {MT.fmt_ms(m)} | {MT.fmt_ms(min(v))} … {MT.fmt_ms(max(v))} | {1000 / m:.2f} img/s | "
                      f"{m / om:.2f}× | {memtxt} | {len(v)} |" if om else "")
        P("")
    for cfg in cfgs:
        passes = [r["ms"] for r in R if r.get("cfg") == cfg and r.get("what") == "iter_pass"]
        one = [r["ms"] for r in R if r.get("cfg") == cfg and r.get("what") == "onestep_recon"]
        inf = [r for r in R if r.get("impl") == "ours" and r.get("cfg") == cfg and r.get("what") == "infer"]
        if passes and one and inf:
            it = statistics.median(passes) * (MT.T_B + 1)
            seg = statistics.median([r["ms_seg"] for r in inf])
            im = statistics.median([r["ms"] for r in inf])
            P(f"- {cfg}: one-step versus iterative DDPM from t = 400 (diffad): iterative reconstruction = {MT.T_B + 1} batch-1 "
              f"denoiser passes × {MT.fmt_ms(statistics.median(passes))} (median of {len(passes)} measured passes, extrapolated) "
              f"= {MT.fmt_ms(it)}; one-step reconstruction {MT.fmt_ms(statistics.median(one))} → **{it / statistics.median(one):.0f}×**; "
              f"whole prediction (with the seg pass) {MT.fmt_ms(it + seg)} versus {MT.fmt_ms(im)} → **{(it + seg) / im:.0f}×**.")
    text = "\n".join(L)
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=("export", "check", "time", "table", "versions", "stamp"))
    ap.add_argument("raw", nargs="*")
    ap.add_argument("--config", choices=sorted(MT.CONFIGS), default="cpu")
    ap.add_argument("--onnx")
    ap.add_argument("--opset", type=int, default=14)
    ap.add_argument("--dump")
    ap.add_argument("--runtime", choices=("torch", "ort", "ov"))
    ap.add_argument("--layout", choices=("nchw", "cl"), default="nchw")
    ap.add_argument("--precision", choices=("f32", "bf16"), default="f32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.cmd == "export":
        export(a)
    elif a.cmd == "check":
        check(a)
    elif a.cmd == "time":
        time_runtime(a)
    elif a.cmd == "stamp":
        print(f"{stamp(a.config)} opset {a.opset}")
    elif a.cmd == "versions":
        import numpy
        import onnxruntime
        import openvino
        import torch
        rec(what="versions", torch=torch.__version__, onnxruntime=onnxruntime.__version__,
            openvino=openvino.__version__, numpy=numpy.__version__)
    else:
        table(a.raw, a.out)


if __name__ == "__main__":
    main()
