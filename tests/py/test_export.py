#!/usr/bin/python3
"""test_export.py — scripts/export_onnx.py against diffad's own output.

Run by `make test` (scripts/run_tests.sh) as `$PYTHON tests/py/test_export.py` with BUILD set
(default build); a plain script, no pytest. Prints "FAIL ..."/"SKIP ..." lines and
"test_export: N passed, N failed, N skipped"; exit status 1 on any failure.

Two tiny models are trained with the CLI (32x32, 1-2 steps on 4 sample images): A with
per-channel noise, attention at 16 px and topk 5; B with grey noise (1-channel noise inputs)
and tile_scale 0.5 (the graph is one tile). For a 32x32 image, which diffad scores as one
model pass, and the same noise (scripts/modelfile.py draw_noise: diffad's own draw for the
seed, checked here by the agreement itself), the exported module must equal diffad at
`precision f32` (the Python binding: map, reconstruction, score):
  (a) the PyTorch module that is exported: map and score within TOL_MAP, reconstruction
      within TOL_RECON, for the default seed and seed 7; swapping the two noise images must
      move the result far outside these (the comparison can fail);
  (b) the ONNX file in ONNX Runtime (and OpenVINO when importable) — with this Python when it
      has onnxruntime, else with build-bench/venv/bin/python (bench/run_peers.sh makes it; or
      DIFFAD_ORT_PYTHON), else SKIP — for the noise-input graph and the --fixed-noise graph
      (image only, equal to diffad predict's default noise); the metadata (size, topk,
      thresholds, noise) read back through the runtime.
Also: k of the score by hand; the score is the top-k mean of the map; bad inputs (missing,
non-model, truncated, plain safetensors, bad config, NaN weight, bad options, unwritable
output) exit 2 with one line naming the file, leaving an existing output untouched.
Skips with a message when numpy, PyTorch, $BUILD/libdiffad.so or the CLI is missing."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

NAME = "test_export"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
if not os.path.isabs(BUILD):
    BUILD = os.path.join(ROOT, BUILD)
LIB = os.path.join(BUILD, "libdiffad.so")
CLI = os.path.join(BUILD, "diffad")
EXPORT = os.path.join(ROOT, "scripts", "export_onnx.py")
SAMPLE = os.path.join(ROOT, "data", "sample", "pcb")
# Measured 2026-11-30 (3 models, 2 seeds; PyTorch 1.13, ONNX Runtime 1.32, OpenVINO 2026.4): map and
# score within 9e-8, reconstruction within 1.3e-6 of diffad f32; a wrong GroupNorm group count or swapped
# noise moves them by 8e-4 / 0.6 or more. The bounds leave room for other CPUs and library versions.
TOL_MAP, TOL_RECON = 1e-5, 1e-4

passed = failed = skipped = 0


def check(cond, msg):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL %s: %s" % (NAME, msg), flush=True)
    return cond


def skip(msg, n=1):
    global skipped
    skipped += n
    print("SKIP %s: %s" % (NAME, msg), flush=True)


def summary():
    print("%s: %d passed, %d failed, %d skipped" % (NAME, passed, failed, skipped), flush=True)
    return 1 if failed else 0


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, **kw)


def train(tmp, name, extra):
    """A tiny model trained on 4 good sample images (about a second)."""
    good = os.path.join(tmp, "good")
    if not os.path.isdir(good):
        os.makedirs(good)
        src = os.path.join(SAMPLE, "train", "good")
        for f in sorted(os.listdir(src))[:4]:
            shutil.copy(os.path.join(src, f), good)
    out = os.path.join(tmp, name)
    p = run([CLI, "train", "--data", good, "--out", out, "--size", "32x32", "--base_channels", "8",
             "--channel_mult", "1,2", "--groups", "8", "--seg_width", "4", "--batch", "2", "--threads", "1",
             "--quiet"] + list(extra))
    check(p.returncode == 0 and os.path.exists(out), "diffad train %s: exit %d: %s" % (name, p.returncode, p.stderr[-2000:]))
    return out if p.returncode == 0 else None


def export(model, out, *opts):
    """Runs the exporter; (exit status, stdout, stderr)."""
    p = run([sys.executable, EXPORT, model, out] + list(opts))
    return p.returncode, p.stdout, p.stderr


# ---------------------------------------------------------------- runtimes (child process)
def run_onnx(onnx_path, inputs_npz, out_npz):
    """Child mode: the graph in ONNX Runtime (and OpenVINO when importable) on the inputs of
    inputs_npz; writes ort_<output>, ov_<output> and the metadata (JSON) to out_npz."""
    import numpy as np
    import onnxruntime as ort
    feed = dict(np.load(inputs_npz))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    res = {"ort_" + o.name: v for o, v in zip(sess.get_outputs(), sess.run(None, feed))}
    meta = sess.get_modelmeta().custom_metadata_map
    res["inputs"] = np.array(json.dumps({i.name: list(i.shape) for i in sess.get_inputs()}))
    res["meta"] = np.array(json.dumps(dict(meta)))
    try:
        import openvino as ov
    except ImportError:
        ov = None
    if ov is not None:
        comp = ov.Core().compile_model(onnx_path, "CPU", {"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32"})
        out = comp.create_infer_request().infer(feed)
        for port, v in out.items():
            res["ov_" + port.get_any_name()] = v
    np.savez(out_npz, **res)
    return 0


def ort_python():
    """An interpreter with onnxruntime: this one, $DIFFAD_ORT_PYTHON or run_peers.sh's venv."""
    cands = [sys.executable, os.environ.get("DIFFAD_ORT_PYTHON"), os.path.join(ROOT, "build-bench", "venv", "bin", "python")]
    for py in cands:
        if py and os.path.exists(py) and run([py, "-c", "import onnxruntime, numpy"]).returncode == 0:
            return py
    return None


def in_runtime(py, tmp, onnx_path, feed):
    """{name: array} of the graph's outputs in the runtimes, plus meta and inputs (dicts)."""
    inp, outp = os.path.join(tmp, "feed.npz"), os.path.join(tmp, "out.npz")
    np.savez(inp, **feed)
    p = run([py, os.path.abspath(__file__), "--run-onnx", onnx_path, inp, outp])
    if not check(p.returncode == 0, "%s --run-onnx %s: exit %d: %s" % (py, onnx_path, p.returncode, p.stderr[-2000:])):
        return None
    r = dict(np.load(outp))
    r["meta"] = json.loads(str(r["meta"]))
    r["inputs"] = json.loads(str(r["inputs"]))
    return r


# ---------------------------------------------------------------- checks
def diffad_result(model, img, seed=None):
    with diffad.Model(model, threads=1, precision="f32", seed=seed) as m:
        r = m.predict(img)
        cfg_ok = m.precision == "f32"
    check(cfg_ok, "diffad did not run at f32")
    check(r.work_map.shape == (32, 32) and (r.tiles_x, r.tiles_y) == (1, 1),
          "a 32x32 image is one model pass: work map %s, tiles %dx%d" % (r.work_map.shape, r.tiles_x, r.tiles_y))
    return r


def diffs(what, m, recon, score, r):
    """Max abs differences (map, recon, score) of NCHW outputs against diffad's result r."""
    dm = float(np.abs(np.asarray(m).reshape(32, 32) - r.map).max())
    dr = float(np.abs(np.asarray(recon).reshape(3, 32, 32).transpose(1, 2, 0) - r.recon).max())
    ds = abs(float(np.asarray(score).reshape(-1)[0]) - r.score)
    print("%s: %s vs diffad f32: max abs diff map %.2e, recon %.2e, score %.2e" % (NAME, what, dm, dr, ds), flush=True)
    return dm, dr, ds


def within(what, d):
    dm, dr, ds = d
    check(dm <= TOL_MAP and dr <= TOL_RECON and ds <= TOL_MAP,
          "%s: map %.2e, recon %.2e, score %.2e (tolerances %g, %g, %g)" % (what, dm, dr, ds, TOL_MAP, TOL_RECON, TOL_MAP))


def test_image():
    """A 32x32 RGB test image (uint8 HWC) and the graph's input for it (0..1 NCHW)."""
    img = np.random.default_rng(5).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return img, np.ascontiguousarray((img.astype(np.float32) / np.float32(255)).transpose(2, 0, 1)[None])


def torch_check(model, label, seeds, wrong_groups=None):
    """(a): the module export_onnx.py exports, run in PyTorch, against diffad f32."""
    import torch
    cfg, tensors, _ = MF.read_model(model)
    grey, k = cfg["grey_noise"] == 1, MF.topk(cfg)
    unet, seg = EX.load_networks(model, cfg, tensors)
    graph = EX.make_graph(cfg, unet, seg, roi=EX.graph_roi(cfg, tensors))
    img, x = test_image()
    c = 1 if grey else 3

    def run(g, es, eb):
        with torch.no_grad():
            return [t.numpy() for t in g(torch.from_numpy(x), torch.from_numpy(es), torch.from_numpy(eb))]
    for seed in seeds:
        r = diffad_result(model, img, seed)
        es, eb = MF.draw_noise(32, 32, grey, MF.PREDICT_SEED if seed is None else seed)
        check(es.shape == (1, c, 32, 32), "%s: noise shape %s" % (label, es.shape))
        m, rec, sc = run(graph, es, eb)
        what = "%s seed %s, PyTorch module" % (label, "default" if seed is None else seed)
        within(what, diffs(what, m, rec, sc, r))
        top = np.sort(m.reshape(-1).astype(np.float64))[-k:].mean()
        check(abs(top - float(sc[0])) <= 1e-6, "%s: score %.9g is not the mean of the map's top %d (%.9g)" % (what, sc[0], k, top))
        # the comparison can fail: the other noise, or a network built wrong, is far outside the tolerances
        dm, dr, _ = diffs(what + ", noise swapped", *run(graph, eb, es), r)
        check(dm > 100 * TOL_MAP or dr > 100 * TOL_RECON, "%s: swapping the noise images changed nothing detectable" % what)
        if wrong_groups:
            bad = dict(cfg, groups=wrong_groups)
            g2 = EX.make_graph(bad, *EX.load_networks(model, bad, tensors))
            dm, dr, _ = diffs(what + ", built with groups %d" % wrong_groups, *run(g2, es, eb), r)
            check(dm > 100 * TOL_MAP or dr > 100 * TOL_RECON, "%s: GroupNorm groups %d instead of %d went unseen"
                  % (what, wrong_groups, cfg["groups"]))


def test_model(model, tmp, label, k, py, seeds=(None,), wrong_groups=None):
    cfg, tensors, meta = MF.read_model(model)
    grey = cfg["grey_noise"] == 1
    check(MF.topk(cfg) == k, "%s: topk %d, expected %d" % (label, MF.topk(cfg), k))
    # the exporter's command line
    out = os.path.join(tmp, label + ".onnx")
    rc, so, se = export(model, out)
    check(rc == 0 and os.path.exists(out) and so.startswith("export_onnx.py: wrote %s" % out) and "top-%d mean" % k in so,
          "%s: export exit %d: %s%s" % (label, rc, so, se[-2000:]))
    check(not [f for f in os.listdir(tmp) if ".tmp" in f], "%s: temporary files left: %s" % (label, os.listdir(tmp)))
    if importlib.util.find_spec("onnx"):  # the exporter runs the ONNX checker when it can
        check("onnx checker passed" in so, "%s: onnx is importable but the checker did not run: %s" % (label, so))
    tiled = cfg["tile_scale"] > 0
    check(("tiles images" in se) == tiled, "%s: the tiling note on stderr (tile_scale %g): %r" % (label, cfg["tile_scale"], se))
    torch_check(model, label, seeds, wrong_groups)
    img, x = test_image()
    c = 1 if grey else 3
    # (b) the ONNX file in the runtimes
    if py is None:
        skip("%s: no Python with onnxruntime (bench/run_peers.sh makes build-bench/venv; or set DIFFAD_ORT_PYTHON): "
             "the ONNX Runtime checks did not run" % label)
        return
    r = diffad_result(model, img)
    es, eb = MF.draw_noise(32, 32, grey)
    got = in_runtime(py, tmp, out, {"image": x, "eps_s": es, "eps_b": eb})
    if got is None:
        return
    check(got["inputs"] == {"image": [1, 3, 32, 32], "eps_s": [1, c, 32, 32], "eps_b": [1, c, 32, 32]},
          "%s: graph inputs %s" % (label, got["inputs"]))
    within(label + ", ONNX Runtime", diffs(label + ", ONNX Runtime", got["ort_map"], got["ort_recon"], got["ort_score"], r))
    if "ov_map" in got:
        within(label + ", OpenVINO", diffs(label + ", OpenVINO", got["ov_map"], got["ov_recon"], got["ov_score"], r))
    else:
        skip("%s: openvino is not importable in %s: the OpenVINO check did not run" % (label, py))
    md = got["meta"]
    want = {"size": "32x32", "topk": str(k), "grey_noise": "1" if grey else "0", "calibrated": "1",
            "image_threshold": "%.9g" % cfg["image_threshold"], "pixel_threshold": "%.9g" % cfg["pixel_threshold"],
            "score_lo": "%.9g" % cfg["score_lo"], "score_hi": "%.9g" % cfg["score_hi"],
            "tile_scale": "%.9g" % cfg["tile_scale"]}
    bad = {key: (md.get(key), v) for key, v in want.items() if md.get(key) != v}
    check(not bad and cfg["score_hi"] > cfg["score_lo"], "%s: metadata (got, want): %s" % (label, bad))
    check(("not in the graph" in md.get("tiling", "")) == tiled, "%s: tiling metadata %r" % (label, md.get("tiling")))
    # --fixed-noise: the image alone gives diffad predict's result (its default noise)
    fixed = os.path.join(tmp, label + ".fixed.onnx")
    rc, so, se = export(model, fixed, "--fixed-noise")
    if not check(rc == 0 and "noise fixed (seed %d)" % MF.PREDICT_SEED in so, "%s --fixed-noise: exit %d: %s%s" % (label, rc, so, se)):
        return
    got = in_runtime(py, tmp, fixed, {"image": x})
    if got is None:
        return
    check(list(got["inputs"]) == ["image"], "%s --fixed-noise: inputs %s" % (label, got["inputs"]))
    within(label + " --fixed-noise, ONNX Runtime",
           diffs(label + " --fixed-noise, ONNX Runtime", got["ort_map"], got["ort_recon"], got["ort_score"], r))


def rewrite(src, dst, config=None, tensors=None, metadata=True):
    """A copy of a model file with config keys replaced (dict of strings), tensors replaced
    ({name: array}, F32 values into the same byte ranges), or without its metadata."""
    import struct
    with open(src, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    data = bytearray(blob[8 + n:])
    if config:
        cfg = json.loads(header["__metadata__"]["config"])
        cfg.update(config)
        header["__metadata__"]["config"] = json.dumps(cfg)
    for name, a in (tensors or {}).items():
        lo, hi = header[name]["data_offsets"]
        data[lo:hi] = np.ascontiguousarray(a, "<f4").tobytes()
    if not metadata:
        del header["__metadata__"]
    hb = json.dumps(header).encode()
    hb += b" " * (-len(hb) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + bytes(data))
    return dst


def filled(model, dst, config=None):
    """The model file with every weight and BatchNorm statistic replaced by ref_model.fill()'s
    deterministic values (what tests/test_model_torch.c uses): after a step or two of training
    the denoiser's zero-initialised output layer makes its output almost independent of the
    layers before it, so an error there would go unseen; with these weights it cannot."""
    import ref_model as R
    cfg, tensors, _ = MF.read_model(model)
    unet, seg = EX.load_networks(model, cfg, tensors)
    R.fill(unet, "unet")
    R.fill(seg, "seg")
    new = {p + n: t.numpy() for p, net in (("unet.", unet), ("seg.", seg)) for n, t in net.state_dict().items()
           if not n.endswith("num_batches_tracked")}
    return rewrite(model, dst, config, new)


def test_bad_inputs(model, tmp):
    out = os.path.join(tmp, "keep.onnx")
    with open(out, "w") as f:
        f.write("an earlier export")
    text = os.path.join(tmp, "notes.safetensors")
    with open(text, "w") as f:
        f.write("these are notes, not a model\n")
    with open(model, "rb") as f:
        blob = f.read()
    trunc = os.path.join(tmp, "truncated.safetensors")
    with open(trunc, "wb") as f:
        f.write(blob[:len(blob) // 2])
    plain = rewrite(model, os.path.join(tmp, "plain.safetensors"), metadata=False)
    heads = rewrite(model, os.path.join(tmp, "heads.safetensors"), {"heads": "3"})
    unknown = rewrite(model, os.path.join(tmp, "unknown.safetensors"), {"batch": "8"})
    width = rewrite(model, os.path.join(tmp, "width.safetensors"), {"seg_width": "8"})
    smooth = rewrite(model, os.path.join(tmp, "smooth.safetensors"), {"map_sigma": "2"})
    name = "seg.decoder_segment.fin_out.0.bias"
    nan = rewrite(model, os.path.join(tmp, "nan.safetensors"), tensors={name: np.array([np.nan], np.float32)})
    # a header key twice; two tensors sharing bytes (the C reader refuses both)
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    first, second = [k for k in header if k != "__metadata__"][:2]
    htext = blob[8:8 + n].decode().rstrip()
    dup = os.path.join(tmp, "twice.safetensors")
    raw = (htext[:-1] + ',"%s":%s}' % (first, json.dumps(header[first]))).encode()
    raw += b" " * (-len(raw) % 8)
    with open(dup, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw + blob[8 + n:])
    lo, hi = header[second]["data_offsets"]
    header[second]["data_offsets"] = [lo - 4, hi - 4]
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    overlap = os.path.join(tmp, "overlap.safetensors")
    with open(overlap, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw + blob[8 + n:])
    cases = [
        (dup, "appears twice"),
        (overlap, "overlap"),
        (os.path.join(tmp, "missing.safetensors"), "cannot read"),
        (tmp, "folder"),
        (text, "not a model file"),
        (trunc, "truncated"),
        (plain, "convert_checkpoint.py"),
        (heads, "heads"),
        (unknown, "unknown config key 'batch'"),
        (width, "the config declares"),
        (nan, "NaN"),
        (smooth, "map_sigma 2"),
    ]
    for src, has in cases:
        rc, so, se = export(src, out)
        lines = se.strip().split("\n")
        check(rc == 2 and len(lines) == 1 and lines[0].startswith("export_onnx.py: " + src) and has in lines[0] and not so,
              "bad model %s: exit %d, expected 2 and one line naming the file with %r: %r" % (os.path.basename(src), rc, has, se))
    with open(out) as f:
        check(f.read() == "an earlier export", "a failed export changed the existing output file")
    with open(model, "rb") as f:
        before = f.read()
    rc, so, se = export(model, model)
    with open(model, "rb") as f:
        check(rc == 2 and "is the model file itself" in se and f.read() == before,
              "output = the model file: exit %d, %r, model unchanged" % (rc, se))
    rc, so, se = export(model, os.path.join(tmp, "no", "such", "folder", "x.onnx"))
    check(rc == 2 and "cannot write" in se and len(se.strip().split("\n")) == 1, "unwritable output: exit %d: %r" % (rc, se))
    for opts, has in ((["--opset", "9"], "--opset 9 out of range"), (["--seed", "7"], "--seed needs --fixed-noise"),
                      (["--fixed-noise", "--seed", "x"], "whole number")):
        rc, so, se = export(model, out, *opts)
        check(rc == 2 and has in se, "options %s: exit %d, expected 2 and %r: %r" % (opts, rc, has, se[-300:]))
    check(not [f for f in os.listdir(tmp) if ".tmp" in f], "temporary files left: %s" % os.listdir(tmp))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--run-onnx":
        return run_onnx(*sys.argv[2:])
    global np, diffad, MF, EX
    try:
        import numpy as np
        import torch  # noqa: F401
    except ImportError as e:
        skip("%s (Debian python3-numpy, python3-torch): the export tests did not run" % e)
        return summary()
    for path, what in ((LIB, "the shared library"), (CLI, "the diffad CLI")):
        if not os.path.exists(path):
            skip("%s %s not found (make BUILD=... all first); the export tests did not run" % (what, path))
            return summary()
    with open(LIB, "rb") as f:
        if b"libasan.so" in f.read():  # an ASan runtime cannot be loaded into python after the fact
            skip("%s is a sanitizer build (make san-test); the export tests did not run" % LIB)
            return summary()
    sys.path.insert(0, os.path.join(ROOT, "python"))
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    sys.path.insert(0, os.path.join(ROOT, "tests", "py"))
    import diffad
    import export_onnx as EX
    import modelfile as MF
    torch.set_num_threads(1)
    diffad.load_library(LIB)
    os.environ["DIFFAD_LIB"] = LIB  # every diffad.Model of this test uses the library under test
    tmp = tempfile.mkdtemp(prefix="test_export.")
    try:
        check(MF.topk(dict(topk=0, size=(32, 32))) == 1 and MF.topk(dict(topk=0, size=(256, 256))) == 50
              and MF.topk(dict(topk=0, size=(128, 128))) == 13 and MF.topk(dict(topk=0, size=(96, 224))) == 16
              and MF.topk(dict(topk=7, size=(32, 32))) == 7, "topk rule: round(50 h w / 65536), at least 1")
        py = ort_python()
        a = train(tmp, "a.safetensors", ["--steps", "2", "--attention", "16", "--heads", "2", "--topk", "5"])
        b = train(tmp, "b.safetensors", ["--steps", "2", "--attention", "none", "--heads", "1", "--grey_noise", "1",
                                         "--tile_scale", "0.5"])
        if a:
            torch_check(a, "A as trained", (None,))
            af = filled(a, os.path.join(tmp, "A.safetensors"))
            test_model(af, tmp, "A", 5, py, (None, 7), wrong_groups=32)
            test_bad_inputs(a, tmp)
        # a region of interest: a 64x64 frame whose left 25 columns are ignored
        roi_file = os.path.join(tmp, "roi.pgm")
        mask = np.ones((64, 64), np.uint8)
        mask[:, :25] = 0
        with open(roi_file, "wb") as f:
            f.write(b"P5 64 64 255\n" + (mask * 255).tobytes())
        c = train(tmp, "c.safetensors", ["--steps", "2", "--attention", "none", "--heads", "1", "--roi", roi_file])
        if c:
            cf = filled(c, os.path.join(tmp, "C.safetensors"))
            stored = MF.read_model(cf)[1].get(MF.ROI_TENSOR)
            check(stored is not None and (stored == mask).all(), "C: the ROI read back from the file")
            # the resampling rule of src/model/roi.c, against what the library applies
            img, _ = test_image()
            with diffad.Model(cf, threads=1, precision="f32") as m:
                for hh, ww in ((32, 32), (37, 50), (20, 7)):
                    r = m.predict(np.ascontiguousarray(np.resize(img, (hh, ww, 3))))
                    want = MF.roi_at(mask, hh, ww)
                    check(r.roi is not None and (r.roi == want).all() and not r.map[want == 0].any(),
                          "C: roi_at(%dx%d) equals the library's ROI, the map is 0 outside it" % (hh, ww))
            test_model(cf, tmp, "C", 1, py)
            rc, so, se = export(cf, os.path.join(tmp, "C2.onnx"))
            check(rc == 0, "C: export with an ROI: %s" % se)
        if b:  # grey noise, tiles, and the schedule's levels from the file
            bf = filled(b, os.path.join(tmp, "B.safetensors"), {"t_s": "100", "t_b": "300"})
            check(MF.read_model(bf)[0]["t_s"] == 100 and MF.read_model(bf)[0]["grey_noise"] == 1, "B: config edited")
            test_model(bf, tmp, "B", 1, py)
    except Exception as e:  # a crash in a check is a failure with its traceback, not a silent exit
        import traceback
        traceback.print_exc()
        check(False, "exception: %r" % e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
