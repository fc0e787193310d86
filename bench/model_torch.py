"""model_torch.py -- the PyTorch half of bench/run_model.sh (and the table maker).

The networks are the repo's PyTorch reference (tests/py/ref_model.py: UNet, SegNet,
step_forward), filled with the deterministic weights of fill() -- the rule
bench/bench_model.c applies on the C side -- so both sides run identical weights.

  model_torch.py --config cpu|paper --layout nchw|cl [--threads N] [--warmup W]
                 [--limit-gb G] (--infer REPS | --train REPS --batch B | --iter PASSES)
  model_torch.py --table RAW [RAW...] [--out FILE]      (Markdown tables from the records)

--infer: batch-1 inference as dd_model_infer: both denoiser passes as one batch of 2,
the norm-guided one-step reconstruction and the segmentation pass, eval() and no_grad(),
noise drawn per call (torch.randn, as ours draws its noise inside the timed call).
--train: one joint training step (step_forward: both denoiser passes, guided
reconstruction, seg net, joint loss) + backward + Adam (two groups), BatchNorm in train
mode, timesteps and noise drawn per step.
--iter: iterative DDPM reconstruction from t = 400 with a batch-1 denoiser: PASSES
passes timed (each a record), extrapolated by the table maker when < 401.
Records: one JSON object per line on stdout, as bench_model prints them.
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "py"))

CONFIGS = {
    # h, w, base, mult, res_blocks, attn, heads, seg width (src/model/config.c profiles)
    "cpu": dict(h=128, w=128, base=32, mult=[1, 2, 2, 4], rb=1, attn=[16], heads=4, segw=16),
    "paper": dict(h=256, w=256, base=128, mult=[1, 1, 2, 2, 4, 4], rb=2, attn=[32, 16, 8], heads=4, segw=64),
}
T_S, T_B, GUIDE_W = 200, 400, 1.0
# FLOPs of one batch-1 inference (convolutions, linears and the attention products of
# the denoiser at batch 2 plus the seg net at batch 1), counted with forward hooks on
# the reference networks: cpu 22.02 + 1.21 GFLOP, paper 1126.35 + 76.03 GFLOP.
INFER_GFLOP = {"cpu": 23.23, "paper": 1202.38}


def proc_mem():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024.0
    return out.get("VmHWM", -1), out.get("VmRSS", -1)


def build_from(c, fill=True):
    """The reference networks for a config of CONFIGS' form (h, w, base, mult, rb, attn, heads,
    segw; optional groups, default ref_model.GROUPS = 32, the paper's), filled with fill()'s
    deterministic weights unless fill is False (scripts/export_onnx.py loads a model file's)."""
    import ref_model as R
    unet = R.UNet(c["h"], c["w"], c["base"], c["mult"], c["rb"], c["attn"], c["heads"], c.get("groups"))
    seg = R.SegNet(c["segw"])
    if fill:
        R.fill(unet, "unet")
        R.fill(seg, "seg")
    return unet, seg


def build(cfg_name, fill=True):
    return build_from(CONFIGS[cfg_name], fill)


def make_infer_module(unet, seg, ts=T_S, tb=T_B, w=GUIDE_W, T=1000):
    """The whole batch-1 inference as one module: (x0, eps_s, eps_b) -> (map, x0_hat),
    NCHW, the two denoiser passes as one batch of 2, at noise levels ts < tb of a T-step
    schedule with guidance weight w. Used for timing and ONNX export (bench/peers.py,
    scripts/export_onnx.py)."""
    import torch
    import torch.nn as nn
    import ref_model as R

    ab = R.alpha_bar(T)
    a_s, a_b = float(ab[ts]), float(ab[tb])

    class Infer(nn.Module):
        def __init__(self):
            super().__init__()
            self.unet, self.seg = unet, seg
            self.register_buffer("tvec", torch.tensor([ts, tb], dtype=torch.int64), persistent=False)

        def forward(self, x0, eps_s, eps_b):
            x_ts = math.sqrt(a_s) * x0 + math.sqrt(1 - a_s) * eps_s
            x_tb = math.sqrt(a_b) * x0 + math.sqrt(1 - a_b) * eps_b
            e = self.unet(torch.cat([x_ts, x_tb]), self.tvec)
            e_s, e_b = e[0:1], e[1:2]
            x0_b = torch.clamp(x_tb * (1 / math.sqrt(a_b)) - math.sqrt(1 / a_b - 1) * e_b, -1, 1)
            k = math.sqrt(1 - a_s)
            r = math.sqrt(a_s) * x0_b + k * e_s
            e_hat = e_s - k * w * (r - x_ts)
            x0_hat = torch.clamp(x_ts * (1 / math.sqrt(a_s)) - math.sqrt(1 / a_s - 1) * e_hat, -1, 1)
            m = self.seg(torch.cat([x0, x0_hat], 1))
            return m, x0_hat

    return Infer().eval()


def bench_image(h, w):
    """Same values as bench_image() in bench_model.c (NCHW, batch 1)."""
    import numpy as np
    import ref_model as R
    u = R.hash_uniform("bench.image", h * w * 3).reshape(h, w, 3).astype(np.float32)
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    s = 0.5 + 0.3 * np.sin(np.float32(0.05) * (x + 2 * c).astype(np.float32)) * np.cos(np.float32(0.07) * y.astype(np.float32))
    return (s.astype(np.float32) + np.float32(0.1) * u).transpose(2, 0, 1)[None].copy()


def rec(args, what, batch, **kw):
    d = dict(impl="torch", layout=args.layout, cfg=args.config, threads=args.threads, what=what, batch=batch)
    d.update(kw)
    print(json.dumps(d), flush=True)


def run_infer(args, torch):
    unet, seg = build(args.config)
    mod = make_infer_module(unet, seg)
    c = CONFIGS[args.config]
    x0 = torch.from_numpy(bench_image(c["h"], c["w"]))
    cl = args.layout == "cl"
    if cl:
        mod = mod.to(memory_format=torch.channels_last)
        x0 = x0.contiguous(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for i in range(args.warmup + args.infer):
            t0 = time.perf_counter()
            es = torch.randn(x0.shape, generator=g)
            eb = torch.randn(x0.shape, generator=g)
            if cl:
                es = es.contiguous(memory_format=torch.channels_last)
                eb = eb.contiguous(memory_format=torch.channels_last)
            m, _ = mod(x0, es, eb)
            ms = (time.perf_counter() - t0) * 1e3
            if i >= args.warmup:
                rec(args, "infer", 1, ms=round(ms, 3))
    hwm, rss = proc_mem()
    rec(args, "mem_infer", 1, hwm_mb=round(hwm, 1), rss_mb=round(rss, 1))


def run_train(args, torch):
    import numpy as np
    import ref_model as R
    unet, seg = build(args.config)
    unet.train(), seg.train()
    c, B = CONFIGS[args.config], args.batch
    cl = args.layout == "cl"
    if cl:
        unet = unet.to(memory_format=torch.channels_last)
        seg = seg.to(memory_format=torch.channels_last)
    x0 = torch.from_numpy(np.concatenate([bench_image(c["h"], c["w"])] * B))
    labels = torch.tensor([b % 2 for b in range(B)])
    mask = torch.zeros(B, 1, c["h"], c["w"])
    for b in range(B):
        if labels[b] == 1:
            mask[b, :, c["h"] // 4: c["h"] // 2, c["w"] // 3: c["w"] // 2] = 1.0
    if cl:
        x0 = x0.contiguous(memory_format=torch.channels_last)
        mask = mask.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam([{"params": list(unet.parameters()), "lr": 1e-4},
                            {"params": list(seg.parameters()), "lr": 1e-5}], betas=(0.9, 0.999), eps=1e-8)
    ab = R.alpha_bar()
    rng = np.random.default_rng(11)
    for i in range(args.warmup + args.train):
        t0 = time.perf_counter()
        ts = rng.integers(0, 300, B)
        tb = rng.integers(300, 1000, B)
        es, eb = torch.randn(x0.shape), torch.randn(x0.shape)
        if cl:
            es = es.contiguous(memory_format=torch.channels_last)
            eb = eb.contiguous(memory_format=torch.channels_last)
        try:
            opt.zero_grad(set_to_none=True)
            r = R.step_forward(unet, seg, x0, mask, labels, ts, tb, es, eb, ab)
            r["loss"].backward()
            opt.step()
        except RuntimeError as e:  # out of memory under --limit-gb
            hwm, rss = proc_mem()
            rec(args, "train_fail", B, error=str(e)[:200], hwm_mb=round(hwm, 1))
            sys.exit(3)
        ms = (time.perf_counter() - t0) * 1e3
        if i >= args.warmup:
            rec(args, "train", B, ms=round(ms, 3), loss=float(r["loss"]))
    hwm, rss = proc_mem()
    rec(args, "mem_train", B, hwm_mb=round(hwm, 1), rss_mb=round(rss, 1))


def run_iter(args, torch):
    import numpy as np
    import ref_model as R
    unet, _ = build(args.config)
    unet.eval()
    c = CONFIGS[args.config]
    cl = args.layout == "cl"
    x0 = torch.from_numpy(bench_image(c["h"], c["w"]))
    if cl:
        unet = unet.to(memory_format=torch.channels_last)
        x0 = x0.contiguous(memory_format=torch.channels_last)
    ab = R.alpha_bar()
    betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)  # docs/method.md section 2, T = 1000
    passes = min(args.iter, T_B + 1)
    x = math.sqrt(ab[T_B]) * x0 + math.sqrt(1 - ab[T_B]) * torch.randn(x0.shape)
    with torch.no_grad():
        for _ in range(args.warmup):
            unet(x, torch.tensor([T_B]))
        tstart = time.perf_counter()
        for k in range(passes):
            t = T_B - k
            p0 = time.perf_counter()
            e = unet(x, torch.tensor([t]))
            x0e = torch.clamp(x / math.sqrt(ab[t]) - math.sqrt(1 / ab[t] - 1) * e, -1, 1)
            if t == 0:
                x = x0e
            else:
                ap = ab[t - 1]
                mean = (betas[t] * math.sqrt(ap) / (1 - ab[t])) * x0e + ((1 - ap) * math.sqrt(1 - betas[t]) / (1 - ab[t])) * x
                x = mean + math.sqrt(betas[t]) * torch.randn(x.shape)
            rec(args, "iter_pass", 1, ms=round((time.perf_counter() - p0) * 1e3, 3), t=t)
    total = (time.perf_counter() - tstart) * 1e3
    rec(args, "iter_total" if passes == T_B + 1 else "iter_partial", 1, ms=round(total, 3), passes=passes, t_start=T_B)


# ---------------------------------------------------------------- tables
def load(paths):
    recs = []
    for p in paths:
        with open(p) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        recs.append(json.loads(line))
                    except json.JSONDecodeError:
                        pass
    return recs


def med(xs):
    return statistics.median(xs) if xs else None


def fmt_ms(v):
    if v is None:
        return "–"
    return f"{v / 1000:.2f} s" if v >= 10000 else f"{v:.1f} ms" if v < 1000 else f"{v / 1000:.3f} s"


def env_lines(R):
    """Machine notes from the env and sgemm records."""
    out = []
    for r in R:
        if r.get("what") == "env":
            out.append(f"- {r['when']}: {r['date']}, load average {r['load']}, `diffad train` processes running: "
                       f"{r['diffad_train_running']}{' (**contended**)' if r['diffad_train_running'] else ''}, "
                       f"MemAvailable {r['mem_avail_mb']} MiB.")
    for when in ("before", "after"):
        g = [r["gflops"] for r in R if r.get("what") == "sgemm" and r.get("when") == when]
        if g:
            out.append(f"- dnnl_sgemm 2048³ peak {when}: {max(g):.0f} GFLOP/s (best of {len(g)}; median {statistics.median(g):.0f}).")
    return out


def table(paths, out=None):
    R = load(paths)
    lines = []
    P = lines.append
    for e in env_lines(R):
        P(e)
    if lines:
        P("")

    def sel(**kw):
        return [r for r in R if all(r.get(k) == v for k, v in kw.items())]

    threads = sorted({r["threads"] for r in R if "threads" in r})
    # ours' main rows: the library default ("auto" since conv_algo auto; "direct" in older records)
    main = "auto" if any(r.get("algo") == "auto" for r in R) else "direct"
    cfg_of = lambda r: r.get("cfg")  # noqa: E731
    cfgs = [c for c in ("cpu", "paper") if any(cfg_of(r) == c for r in R)]
    for th in threads:
        P(f"### {th} thread{'s' if th > 1 else ''}")
        P("")
        P("Medians over all timed repetitions of all rounds (n = number of repetitions). "
          "PyTorch: the faster of NCHW and channels_last (CL) per row; both in the details.")
        P("")
        P("| config | what | diffad | PyTorch | PyTorch / diffad (speed-up) | diffad ms_unet / ms_seg | n ours / torch |")
        P("|---|---|---:|---:|---:|---|---|")
        summary = {}
        for cfg in cfgs:
            # inference
            o = sel(impl="ours", cfg=cfg, threads=th, what="infer", algo=main)
            ow = sel(impl="ours", cfg=cfg, threads=th, what="infer", algo="winograd")
            tl = {lay: [r["ms"] for r in sel(impl="torch", cfg=cfg, threads=th, what="infer", layout=lay)] for lay in ("nchw", "cl")}
            best = min((lay for lay in tl if tl[lay]), key=lambda l: med(tl[l]), default=None)
            om = med([r["ms"] for r in o])
            tm = med(tl[best]) if best else None
            if om or tm:
                sp = f"**{tm / om:.2f}×**" if om and tm else "–"
                gf = f" ({INFER_GFLOP[cfg] / om * 1e3:.0f} GFLOP/s)" if om else ""
                gt = f" ({INFER_GFLOP[cfg] / tm * 1e3:.0f} GFLOP/s)" if tm else ""
                P(f"| {cfg} | inference, batch 1 | {fmt_ms(om)}{gf} | {fmt_ms(tm)} {'CL' if best == 'cl' else 'NCHW' if best else ''}{gt} | {sp} | "
                  f"{fmt_ms(med([r['ms_unet'] for r in o]))} / {fmt_ms(med([r['ms_seg'] for r in o]))} | {len(o)} / {len(tl[best]) if best else 0} |")
                summary[(cfg, "infer")] = (om, tm)
                if tl["nchw"] or tl["cl"]:
                    P(f"| {cfg} | PyTorch inference by layout | | NCHW {fmt_ms(med(tl['nchw']))} / CL {fmt_ms(med(tl['cl']))} | | | – / {len(tl['nchw'])}+{len(tl['cl'])} |")
            if ow:
                owm = med([r["ms"] for r in ow])
                sp = f"{tm / owm:.2f}×" if tm else "–"
                P(f"| {cfg} | inference, batch 1, ours with Winograd (`--conv_algo winograd`) | {fmt_ms(owm)} | {fmt_ms(tm)} | {sp} | "
                  f"{fmt_ms(med([r['ms_unet'] for r in ow]))} / {fmt_ms(med([r['ms_seg'] for r in ow]))} | {len(ow)} / – |")
            # training
            batches = sorted({r["batch"] for r in R if r.get("cfg") == cfg and r.get("what") in ("train", "train_fail") and r.get("threads") == th})
            for B in batches:
                o = [r["ms"] for r in sel(impl="ours", cfg=cfg, threads=th, what="train", batch=B, algo=main)]
                tl = {lay: [r["ms"] for r in sel(impl="torch", cfg=cfg, threads=th, what="train", batch=B, layout=lay)] for lay in ("nchw", "cl")}
                best = min((lay for lay in tl if tl[lay]), key=lambda l: med(tl[l]), default=None)
                om, tm = med(o), (med(tl[best]) if best else None)
                fail = sel(cfg=cfg, threads=th, what="train_fail", batch=B)
                note = " (PyTorch: out of memory under the limit)" if fail and not tm else ""
                sp = f"**{tm / om:.2f}×**" if om and tm else "–"
                if tl["nchw"] or tl["cl"]:
                    P(f"| {cfg} | PyTorch training step by layout, batch {B} | | NCHW {fmt_ms(med(tl['nchw']))} / CL {fmt_ms(med(tl['cl']))} | | | |")
                P(f"| {cfg} | training step, batch {B}{note} | {fmt_ms(om)} | {fmt_ms(tm)} {'CL' if best == 'cl' else 'NCHW' if best else ''} | {sp} | – | {len(o)} / {len(tl[best]) if best else 0} |")
                summary[(cfg, f"train{B}")] = (om, tm)
            # memory
            om = [r["hwm_mb"] for r in sel(impl="ours", cfg=cfg, threads=th, what="mem_infer", algo=main)]
            tm = {lay: [r["hwm_mb"] for r in sel(impl="torch", cfg=cfg, threads=th, what="mem_infer", layout=lay)] for lay in ("nchw", "cl")}
            if om or any(tm.values()):
                tmin = min((max(v) for v in tm.values() if v), default=None)
                ratio = f"{max(om) / tmin:.2f} (diffad / PyTorch)" if om and tmin else "–"
                P(f"| {cfg} | peak RSS (VmHWM) of an inference process | {max(om):.0f} MiB | "
                  f"{tmin:.0f} MiB | {ratio} | NCHW {max(tm['nchw']) if tm['nchw'] else '–'} / CL {max(tm['cl']) if tm['cl'] else '–'} MiB | – |"
                  if om and tmin else f"| {cfg} | peak RSS inference | {max(om) if om else '–'} | {tmin} | – | – | – |")
                summary[(cfg, "mem")] = (max(om) if om else None, tmin)
            for B in sorted({r["batch"] for r in sel(cfg=cfg, threads=th, what="mem_train")}):
                om = [r["hwm_mb"] for r in sel(impl="ours", cfg=cfg, threads=th, what="mem_train", batch=B)]
                tm = {lay: [r["hwm_mb"] for r in sel(impl="torch", cfg=cfg, threads=th, what="mem_train", batch=B, layout=lay)] for lay in ("nchw", "cl")}
                tt = " / ".join(f"{'CL' if l == 'cl' else 'NCHW'} {max(v):.0f}" for l, v in tm.items() if v)
                P(f"| {cfg} | peak RSS of a training process, batch {B} | {max(om):.0f} MiB | {tt or '–'} MiB | – | – | – |" if om else
                  f"| {cfg} | peak RSS of a training process, batch {B} | – | {tt or '–'} MiB | – | – | – |")
        for r in sel(what="train_nofit", threads=th):
            P(f"| {r['cfg']} | training step, batch {r['batch']}: ours does not fit | needs {r['need_mb']:.0f} MiB | | | MemAvailable {r['avail_mb']} MiB (+ 1.5 GiB margin) | |")
        for r in sel(what="train_fail", threads=th):
            P(f"| {r['cfg']} | training step, batch {r['batch']}: PyTorch failed | | {r['error'][:60]}… | | | |")
        P("")
        # one-step vs iterative
        rows = []
        for cfg in cfgs:
            for impl in ("ours", "torch"):
                one = [r["ms"] for r in sel(impl=impl, cfg=cfg, threads=th, what="onestep_recon")]
                full = sel(impl=impl, cfg=cfg, threads=th, what="iter_total")
                part = sel(impl=impl, cfg=cfg, threads=th, what="iter_partial")
                passes = [r["ms"] for r in sel(impl=impl, cfg=cfg, threads=th, what="iter_pass")]
                if not (full or part):
                    continue
                if full:
                    it, how = med([r["ms"] for r in full]), f"measured ({full[0]['passes']} passes)"
                else:
                    it, how = med(passes) * (T_B + 1), f"extrapolated: {T_B + 1} × median pass of {len(passes)}"
                infr = sel(impl=impl, cfg=cfg, threads=th, what="infer")
                if impl == "ours":
                    infr = [r for r in infr if r.get("algo") == main]
                else:  # the faster layout
                    lay = {l: med([r["ms"] for r in infr if r["layout"] == l]) for l in ("nchw", "cl") if any(r["layout"] == l for r in infr)}
                    infr = [r for r in infr if lay and r["layout"] == min(lay, key=lay.get)]
                inf = med([r["ms"] for r in infr])
                seg = med([r["ms_seg"] for r in infr]) if impl == "ours" and infr else None
                rows.append((cfg, "diffad" if impl == "ours" else "PyTorch", fmt_ms(med(passes)), fmt_ms(it), how,
                             fmt_ms(med(one)) if one else "–", f"{it / med(one):.0f}×" if one else "–",
                             fmt_ms(inf), (f"{(it + seg) / inf:.0f}×" if seg is not None else f"{it / inf:.0f}× (without seg)") if inf else "–"))
        if rows:
            P("One-step (norm-guided, 2 denoiser passes as one batch of 2) versus iterative DDPM reconstruction from "
              "t = 400 (401 batch-1 denoiser passes, t = 400 … 0):")
            P("")
            P("| config | impl | batch-1 denoiser pass (median) | iterative reconstruction | how | one-step reconstruction | iterative / one-step | whole one-step inference | iterative + seg / one-step inference |")
            P("|---|---|---:|---:|---|---:|---:|---:|---:|")
            for r in rows:
                P("| " + " | ".join(r) + " |")
            P("")
        # targets
        if ("paper", "infer") in summary:
            om, tm = summary[("paper", "infer")]
            if om and tm:
                P(f"- Target inference ≥ 2× PyTorch at the paper config: **{tm / om:.2f}×** — {'met' if tm / om >= 2 else 'not met'}.")
        tr = [k for k in summary if k[0] == "paper" and k[1].startswith("train")]
        for k in tr:
            om, tm = summary[k]
            if om and tm:
                P(f"- Target training step ≥ 1.5× PyTorch at the paper config ({k[1].replace('train', 'batch ')}): **{tm / om:.2f}×** — {'met' if tm / om >= 1.5 else 'not met'}.")
        if ("paper", "mem") in summary:
            om, tm = summary[("paper", "mem")]
            if om and tm:
                P(f"- Target peak inference memory ≤ PyTorch's at the paper config: {om:.0f} vs {tm:.0f} MiB — {'met' if om <= tm else 'not met'}.")
        P("")
    text = "\n".join(lines)
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    ap.add_argument("--layout", choices=("nchw", "cl"), default="nchw")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--limit-gb", type=float, default=0)
    ap.add_argument("--infer", type=int, default=0)
    ap.add_argument("--train", type=int, default=0)
    ap.add_argument("--iter", type=int, default=0)
    ap.add_argument("--table", nargs="+")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.table:
        table(args.table, args.out)
        return
    if args.limit_gb > 0:
        lim = int(args.limit_gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(5)
    if args.infer:
        run_infer(args, torch)
    elif args.train:
        run_train(args, torch)
    elif args.iter:
        run_iter(args, torch)
    else:
        ap.error("one of --infer, --train, --iter, --table")


if __name__ == "__main__":
    main()
