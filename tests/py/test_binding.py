#!/usr/bin/python3
"""test_binding.py — the Python binding (python/diffad.py) against the C library and CLI.

Run by `make test` (scripts/run_tests.sh) as `$PYTHON tests/py/test_binding.py` with BUILD set
(default build); a plain script, no pytest. Prints "FAIL ..."/"SKIP ..." lines and
"test_binding: N passed, N failed, N skipped"; exit status 1 on any failure. Skips with a
message when numpy, $BUILD/libdiffad.so, the diffad CLI or a C compiler is missing.

Checks: the ctypes structs have the size, field order, offsets and field sizes of the C
structs (tests/py/helper.c prints them from include/diffad.h); scores equal `diffad predict`'s
bit for bit (%.9g) on the sample images, from the binding and from examples/embed.py;
uint8 grey / uint8 RGB / float32 / padded, sliced, flipped and Fortran-order arrays give the
same bits; maps at the input size (fit and tiled models); seeds, skip_recon, thresholds,
regions; a model with a region of interest (train --roi) reports it (Model.roi), returns it
at each image's size (Result.roi) with the map 0 outside and the scores of `diffad predict`;
bad images and bad models raise DiffadError with the C message and code and leave
the model usable; the context manager frees the context (no growth over many open/close).
Needs about 10 s (two tiny models trained for one step on 4 sample images)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

NAME = "test_binding"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
if not os.path.isabs(BUILD):
    BUILD = os.path.join(ROOT, BUILD)
LIB = os.path.join(BUILD, "libdiffad.so")
CLI = os.path.join(BUILD, "diffad")
SAMPLE = os.path.join(ROOT, "data", "sample", "pcb")

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


def raises(fn, code=None, has=None):
    """The DiffadError fn raises (checked for code and message text), or None."""
    try:
        fn()
    except diffad.DiffadError as e:
        ok = (code is None or e.code == code) and (has is None or has in e.message)
        check(ok, "DiffadError %r (code %d): expected code %s and %r in the message" % (e.message, e.code, code, has))
        return e
    check(False, "no DiffadError raised (expected code %s, %r)" % (code, has))
    return None


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, **kw)


def train(tmp, name, extra=()):
    """A tiny model trained one step on 4 good sample images (seconds)."""
    good = os.path.join(tmp, "good")
    if not os.path.isdir(good):
        os.makedirs(good)
        src = os.path.join(SAMPLE, "train", "good")
        for f in sorted(os.listdir(src))[:4]:
            shutil.copy(os.path.join(src, f), good)
    out = os.path.join(tmp, name)
    p = run([CLI, "train", "--data", good, "--out", out, "--size", "32x32", "--base_channels", "8",
             "--channel_mult", "1,2", "--attention", "none", "--heads", "1", "--groups", "8", "--seg_width", "4",
             "--batch", "2", "--steps", "1", "--threads", "1", "--quiet"] + list(extra))
    check(p.returncode == 0 and os.path.exists(out), "diffad train %s: exit %d: %s" % (name, p.returncode, p.stderr[-2000:]))
    return out if p.returncode == 0 else None


def decode(helper, path, channels):
    """The file's pixels as examples/embed.c decodes them (stb_image): uint8 (H,W,C)."""
    p = subprocess.run([helper, "decode", path, str(channels)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode:
        raise RuntimeError("helper decode %s: %s" % (path, p.stderr.decode()))
    head, _, data = p.stdout.partition(b"\n")
    w, h, c = map(int, head.split())
    return np.frombuffer(data, np.uint8).reshape(h, w, c)


def same(a, b):
    """Bit-identical results: score, map and reconstruction."""
    return (np.float32(a.score).tobytes() == np.float32(b.score).tobytes() and a.map.tobytes() == b.map.tobytes()
            and (a.recon is None) == (b.recon is None) and (a.recon is None or a.recon.tobytes() == b.recon.tobytes()))


# --- 1. struct layout --------------------------------------------------------------------
def test_layout(helper):
    p = run([helper, "layout"])
    if not check(p.returncode == 0, "helper layout: %s" % p.stderr):
        return
    c_sizes, c_fields = {}, {}
    for line in p.stdout.splitlines():
        name, *nums = line.split()
        if "." in name:
            s, f = name.split(".")
            c_fields.setdefault(s, []).append((f, int(nums[0]), int(nums[1])))
        else:
            c_sizes[name] = int(nums[0])
    py = {"diffad_params": diffad._Params, "diffad_image": diffad._Image, "diffad_result": diffad._Result,
          "diffad_region": diffad._Region, "diffad_region_params": diffad._RegionParams}
    for s, n in c_sizes.items():
        t = py.get(s)
        if not check(t is not None, "C struct %s has no ctypes mirror in python/diffad.py" % s):
            continue
        check(ctypes.sizeof(t) == n, "sizeof(%s): C %d, ctypes %d" % (s, n, ctypes.sizeof(t)))
        mine = [(f, getattr(t, f).offset, getattr(t, f).size) for f, _ in t._fields_]
        check(mine == c_fields[s], "%s fields (name, offset, size): C %s, ctypes %s" % (s, c_fields[s], mine))
    for s in py:
        check(s in c_sizes, "ctypes mirrors %s, which include/diffad.h does not declare" % s)


# --- 2. agreement with the CLI ----------------------------------------------------------
def sample_files():
    out = []
    for kind in ("good", "defect"):
        d = os.path.join(SAMPLE, "test", kind)
        out += [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith(".png")]
    return out


def cli_scores(model, files, extra=()):
    p = run([CLI, "predict", "--model", model, "--threads", "1"] + list(extra) + files)
    check(p.returncode in (0, 1), "diffad predict: exit %d: %s" % (p.returncode, p.stderr[-2000:]))
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    check(len(lines) == len(files), "diffad predict printed %d lines for %d files" % (len(lines), len(files)))
    return {d["path"]: d for d in lines}


def test_cli_agreement(model, helper):
    files = sample_files()
    ref = cli_scores(model, files)
    with diffad.Model(model, threads=1) as m:
        t = m.thresholds
        bad = []
        for f in files:
            r = m.predict(decode(helper, f, 3))
            d = ref.get(f, {})
            if ("%.9g" % r.score != "%.9g" % d.get("score", -1) or "%.9g" % r.normalized != "%.9g" % d.get("normalized", -1)
                    or r.decision != d.get("decision")):
                bad.append("%s: python %.9g %.9g %s, CLI %s" % (f, r.score, r.normalized, r.decision, d))
            check(r.map.shape == (640, 640) and r.map.dtype == np.float32, "map shape %s, input 640x640" % (r.map.shape,))
        check(not bad, "scores differ from diffad predict on %d of %d images: %s" % (len(bad), len(files), bad[:3]))
        check(t.calibrated and "%.9g" % t.image == "%.9g" % ref[files[0]]["threshold"],
              "thresholds %r vs the CLI's %r" % (t, ref[files[0]].get("threshold")))

    # the seed is the CLI's --seed
    with diffad.Model(model, threads=1, seed=7) as m:
        r = m.predict(decode(helper, files[0], 3))
    d = cli_scores(model, files[:1], ["--seed", "7"])[files[0]]
    check("%.9g" % r.score == "%.9g" % d["score"], "seed 7: python %.9g, CLI %.9g" % (r.score, d["score"]))

    # examples/embed.py (its own PNG reader, DIFFAD_LIB) prints the same scores
    env = dict(os.environ, DIFFAD_LIB=LIB)
    p = run([sys.executable, os.path.join(ROOT, "examples", "embed.py"), model, "--threads", "1"] + files[:6], env=env)
    check(p.returncode in (0, 1), "examples/embed.py: exit %d: %s" % (p.returncode, p.stderr[-2000:]))
    got = {}
    for line in p.stdout.splitlines():
        if ": score " in line:
            path, rest = line.split(": score ", 1)
            got[path] = rest.split()[0]
    for f in files[:6]:
        check(got.get(f) == "%.9g" % ref[f]["score"], "embed.py %s: score %s, CLI %.9g" % (f, got.get(f), ref[f]["score"]))


# --- 3. pixel formats and memory layouts ------------------------------------------------
def test_formats(model, helper):
    rgb = decode(helper, os.path.join(SAMPLE, "test", "defect", sorted(os.listdir(os.path.join(SAMPLE, "test", "defect")))[0]), 3)
    grey = np.ascontiguousarray(rgb[..., 0])
    h, w = grey.shape
    with diffad.Model(model, threads=1) as m:
        base = m.predict(rgb)
        check(base.map.shape == (h, w) and base.recon.shape == (h, w, 3), "map %s recon %s for a %dx%d image"
              % (base.map.shape, base.recon.shape, w, h))
        check(base.work_map.shape == m.model_size and (base.tiles_x, base.tiles_y) == (1, 1),
              "fit model: work map %s (model %s), tiles %dx%d" % (base.work_map.shape, m.model_size, base.tiles_x, base.tiles_y))
        check(0 < base.score < 1 and float(base.map.min()) >= 0 and float(base.map.max()) <= 1, "score %g in (0,1), map in [0,1]" % base.score)
        big = np.zeros((2 * h, w + 7, 3), np.uint8)
        big[::2, 3:3 + w] = rgb
        wide = np.repeat(rgb, 2, axis=1)
        variants = {
            "uint8 grey (H,W)": grey,
            "uint8 grey (H,W,1)": grey[..., None],
            "float32 RGB k/255": rgb.astype(np.float32) / np.float32(255),
            "float32 grey, sliced every other row": np.repeat(grey.astype(np.float32) / np.float32(255), 2, axis=0)[::2],
            "uint8 RGB, padded rows (passed with its stride)": big[::2, 3:3 + w],
            "uint8 RGB, every other column (copied)": wide[:, ::2],
            "uint8 RGB, channels reversed (grey image: same)": rgb[..., ::-1],
            "uint8 RGB, Fortran order": np.asfortranarray(rgb),
            "uint8 RGB, read-only": np.frombuffer(rgb.tobytes(), np.uint8).reshape(rgb.shape),
        }
        for name, img in variants.items():
            r = m.predict(img)
            check(same(r, base), "%s: score %.9g, uint8 RGB %.9g (map/recon bits equal: %s)"
                  % (name, r.score, base.score, r.map.tobytes() == base.map.tobytes()))
        # an odd-sized image: map at its size
        odd = np.ascontiguousarray(rgb[5:42, 9:59])
        r = m.predict(odd)
        check(r.map.shape == (37, 50) and r.recon.shape == (37, 50, 3), "50x37 image: map %s" % (r.map.shape,))
        # results are copies: the next prediction leaves them alone
        keep = base.map.copy()
        m.predict(np.zeros((20, 30), np.uint8))
        check(base.map.tobytes() == keep.tobytes(), "a result's map changed after the next predict")
        check(m.memory > 0 and m.model_size == (32, 32), "memory %d, model size %s" % (m.memory, m.model_size))
        d = base.as_dict()
        check(set(d) >= {"score", "normalized", "threshold", "is_ng", "calibrated", "map", "recon", "work_map",
                         "tiles_x", "tiles_y", "ms", "decision"}, "as_dict keys %s" % sorted(d))
        check(set(base.ms) == {"preprocess", "denoise", "segment", "postprocess"} and all(v >= 0 for v in base.ms.values()),
              "ms %s" % base.ms)
        check(base.threshold == m.thresholds.image and base.pixel_threshold == m.thresholds.pixel,
              "result thresholds %g %g vs model %r" % (base.threshold, base.pixel_threshold, m.thresholds))
    with diffad.Model(model, threads=1, skip_recon=True) as m:
        r = m.predict(rgb)
        check(r.recon is None and r.map.tobytes() == base.map.tobytes(), "skip_recon: recon %s, same map" % type(r.recon))
    # precision: f32 on request; auto gives what the machine has; maps of the two within bf16's tolerance
    with diffad.Model(model, threads=1, precision="f32") as f, diffad.Model(model, threads=1, precision="auto") as a:
        check(f.precision == "f32" and a.precision in ("f32", "bf16"), "precision f32 / auto: %s / %s" % (f.precision, a.precision))
        rf, ra = f.predict(rgb), a.predict(rgb)
        d = float(np.abs(rf.map - ra.map).max())
        check(d < 0.05, "map f32 vs %s: max difference %.4f" % (a.precision, d))
    try:
        diffad.Model(model, precision="fp8")
        check(False, "precision 'fp8' refused")
    except ValueError as e:
        check("precision" in str(e), "precision 'fp8' refused: %s" % e)


def test_tiled(model, helper):
    rgb = decode(helper, sample_files()[0], 3)
    with diffad.Model(model, threads=1) as m:
        r = m.predict(rgb)
        check(r.map.shape == rgb.shape[:2], "tiled model: map %s, input %s" % (r.map.shape, rgb.shape[:2]))
        check(r.tiles_x * r.tiles_y > 1 and r.work_map is not None and r.work_map.shape[0] > 32,
              "tiled model: %dx%d tiles, work map %s" % (r.tiles_x, r.tiles_y, None if r.work_map is None else r.work_map.shape))
        r2 = m.predict(rgb[:300, :200])
        check(r2.map.shape == (300, 200), "tiled model, 200x300 image: map %s" % (r2.map.shape,))


def test_regions(model, helper):
    if not hasattr(diffad.load_library(LIB), "diffad_set_region_params"):
        skip("this libdiffad has no region API")
        return
    rgb = decode(helper, sample_files()[0], 3)
    with diffad.Model(model, threads=1) as m:
        rp = m.region_params
        r = m.predict(rgb)
        check(len(r.regions) == min(r.regions_found, rp.max_regions), "%d regions listed, %d found, max %d"
              % (len(r.regions), r.regions_found, rp.max_regions))
        check(all(0 <= g.x and 0 <= g.y and g.x + g.width <= 640 and g.y + g.height <= 640 and 0 < g.area <= g.width * g.height
                  for g in r.regions), "region boxes inside the image: %s" % r.regions[:3])
        m.set_region_params(max_regions=1, mm_per_pixel=0.5)
        check(m.region_params == diffad.RegionParams(rp.min_area, 1, 0.5, rp.review_lo, rp.review_hi),
              "region params %r" % (m.region_params,))
        r1 = m.predict(rgb)
        check(len(r1.regions) == min(1, r.regions_found), "max_regions 1: %d listed" % len(r1.regions))
        if r1.regions:
            g = r1.regions[0]
            check(abs(g.area_mm2 - g.area * 0.25) <= 1e-3 * g.area, "area_mm2 %g for %d px at 0.5 mm" % (g.area_mm2, g.area))
        raises(lambda: m.set_region_params(min_area=-1), diffad.E_RANGE)
        check(m.region_params == diffad.RegionParams(rp.min_area, 1, 0.5, rp.review_lo, rp.review_hi),
              "a refused setting changed the params")
        # the three-way decision: a band holding every score makes the part REVIEW
        m.set_region_params(review_band=(-1.0, 100.0))
        rr = m.predict(rgb)
        check(rr.decision == "REVIEW" and not rr.is_ng and rr.as_dict()["decision"] == "REVIEW",
              "review band (-1, 100]: decision %s" % rr.decision)
        raises(lambda: m.set_region_params(review_band=(0.5, 0.1)), diffad.E_RANGE)
        m.set_region_params(review_band=(0, 0))
        check(m.predict(rgb).decision in ("OK", "NG"), "review band off: OK or NG")
        scores, n_img = m.calibration_scores
        check(scores.dtype == np.float32 and len(scores) == n_img and len(scores) > 0 and bool(np.all(np.diff(scores) >= 0))
              and m.thresholds.image >= float(scores[0]),
              "calibration scores: %d values for %d images, ascending, the threshold not below them" % (len(scores), n_img))


def test_roi(tmp, model, helper):
    if not hasattr(diffad.load_library(LIB), "diffad_roi"):
        skip("this libdiffad has no region-of-interest API")
        return
    # a binary PGM over the 640x640 frame, drawn at 80x64: left quarter and bottom rows ignored
    mask = np.full((64, 80), 255, np.uint8)
    mask[:, :20] = 0
    mask[56:, :] = 0
    pgm = os.path.join(tmp, "roi.pgm")
    with open(pgm, "wb") as f:
        f.write(b"P5\n80 64\n255\n" + mask.tobytes())
    roi_model = train(tmp, "roi.safetensors", ["--roi", pgm])
    if not roi_model:
        return
    files = sample_files()[:3]
    ref = cli_scores(roi_model, files)
    with diffad.Model(model, threads=1) as plain, diffad.Model(roi_model, threads=1) as m:
        check(plain.roi is None and m.roi == (64, 80), "Model.roi: %r without, %r with (64, 80 expected)" % (plain.roi, m.roi))
        for f in files:
            r = m.predict(decode(helper, f, 3))
            check(r.roi is not None and r.roi.shape == (640, 640) and r.roi.dtype == np.uint8, "Result.roi %s"
                  % (None if r.roi is None else r.roi.shape,))
            if r.roi is None:
                continue
            # 640 / 64 = 10 in y and 640 / 80 = 8 in x, integer factors: the half-the-area rule replicates
            want = np.repeat(np.repeat(mask != 0, 10, axis=0), 8, axis=1)
            check(np.array_equal(r.roi.astype(bool), want), "Result.roi is the mask scaled up to 640x640")
            check(not r.map[r.roi == 0].any() and r.map[r.roi == 1].any(), "map 0 outside the ROI, nonzero inside")
            check("%.9g" % r.score == "%.9g" % ref[f]["score"], "%s: python %.9g, CLI %.9g" % (f, r.score, ref[f]["score"]))
            check(all(g.x >= 160 and g.y + g.height <= 560 for g in r.regions), "regions inside the ROI: %s" % r.regions[:3])
        r = plain.predict(decode(helper, files[0], 3))
        check(r.roi is None, "no ROI: Result.roi is None")


# --- 4. errors --------------------------------------------------------------------------
def test_errors(model, tmp):
    with diffad.Model(model, threads=1) as m:
        good = np.full((16, 16), 128, np.uint8)
        ref = m.predict(good)
        raises(lambda: m.predict(np.zeros((16, 16), np.float64)), diffad.E_INVALID, "float64")
        raises(lambda: m.predict(np.zeros((16, 16), np.int32)), diffad.E_INVALID, "int32")
        raises(lambda: m.predict(np.zeros(16, np.uint8)), diffad.E_INVALID, "shape")
        raises(lambda: m.predict(np.zeros((16, 16, 4), np.uint8)), diffad.E_INVALID, "4 channels")
        raises(lambda: m.predict(np.zeros((16, 16, 2), np.float32)), diffad.E_INVALID, "2 channels")
        nan = np.zeros((16, 16, 3), np.float32)
        nan[5, 7, 1] = np.nan
        raises(lambda: m.predict(nan), diffad.E_INVALID, "NaN")
        inf = np.zeros((16, 16), np.float32)
        inf[0, 0] = np.inf
        raises(lambda: m.predict(inf), diffad.E_INVALID)
        hot = np.zeros((16, 16), np.float32)
        hot[2, 3] = 3.0
        e = raises(lambda: m.predict(hot), diffad.E_RANGE)
        check(e is not None and "(3,2)" in e.message, "out-of-range message names the pixel (3,2): %s" % (e and e.message))
        raises(lambda: m.predict(np.zeros((0, 16), np.uint8)), diffad.E_INVALID)
        # the C message also reaches a log callback; the model stays usable after refusals
        check(same(m.predict(good), ref), "a refused image changed the next result")
        check("E_INVALID" in str(diffad.DiffadError("x", diffad.E_INVALID)), "str(DiffadError) names the code")
    raises(lambda: diffad.Model(os.path.join(tmp, "missing.safetensors")), diffad.E_IO, "missing.safetensors")
    junk = os.path.join(tmp, "junk.safetensors")
    with open(junk, "wb") as f:
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    raises(lambda: diffad.Model(junk), diffad.E_FORMAT)
    raises(lambda: diffad.Model(model, memory_budget=4096), diffad.E_NOMEM)
    raises(lambda: diffad.Model(model, lib=os.path.join(tmp, "no", "libdiffad.so")), diffad.E_IO, "not found")


# --- 5. lifetime, log, threads ----------------------------------------------------------
def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_lifetime(model):
    msgs = []
    with diffad.Model(model, threads=1, log=lambda level, text: msgs.append((level, text))) as m:
        check(not m.closed, "open model reports closed")
        mem = m.memory
    check(m.closed, "the context manager did not close the model")
    check(any(level == diffad.LOG_INFO and "loaded" in text for level, text in msgs), "log callback got %s" % msgs)
    raises(lambda: m.predict(np.zeros((8, 8), np.uint8)), diffad.E_INVALID, "closed")
    raises(lambda: m.memory, diffad.E_INVALID, "closed")
    m.close()  # idempotent
    # open/close repeatedly (context manager, close(), garbage collection): no growth
    img = np.zeros((64, 64), np.uint8)
    for i in range(5):  # warm up allocators
        with diffad.Model(model, threads=1) as m:
            m.predict(img)
    before = rss_kib()
    n = 40
    for i in range(n):
        if i % 2:
            with diffad.Model(model, threads=1) as m:
                m.predict(img)
        else:
            m = diffad.Model(model, threads=1)
            m.predict(img)
            del m
    grown = rss_kib() - before
    check(grown < 0.25 * n * mem / 1024, "RSS grew %d KiB over %d open/close of a %d KiB context" % (grown, n, mem // 1024))

    # two models in two threads (ctypes releases the GIL): the same score
    rgb = np.tile(np.arange(96, dtype=np.uint8)[None, :, None], (80, 1, 3))
    with diffad.Model(model, threads=1) as m:
        want = m.predict(rgb).score
    got = [None, None]

    def work(i):
        with diffad.Model(model, threads=1) as mm:
            for _ in range(3):
                got[i] = mm.predict(rgb).score
    ts = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(got == [want, want], "two threads: %s, one thread %r" % (got, want))


def main():
    global np, diffad, ctypes
    try:
        import numpy as np
    except ImportError:
        skip("numpy is not installed (Debian python3-numpy); the binding tests did not run")
        return summary()
    import ctypes
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import diffad
    for path, what in ((LIB, "the shared library"), (CLI, "the diffad CLI")):
        if not os.path.exists(path):
            skip("%s %s not found (make BUILD=... all first); the binding tests did not run" % (what, path))
            return summary()
    with open(LIB, "rb") as f:
        if b"libasan.so" in f.read():  # an ASan runtime cannot be loaded into python after the fact
            skip("%s is a sanitizer build (make san-test); the binding tests did not run" % LIB)
            return summary()
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("cc")
    if not cc:
        skip("no C compiler to build tests/py/helper.c; the binding tests did not run")
        return summary()
    diffad.load_library(LIB)  # every Model below uses this one (the first library loaded is remembered by path)
    os.environ["DIFFAD_LIB"] = LIB
    tmp = tempfile.mkdtemp(prefix="test_binding.")
    try:
        helper = os.path.join(tmp, "helper")
        p = run([cc, "-std=c11", "-O1", "-I" + os.path.join(ROOT, "include"), os.path.join(ROOT, "tests", "py", "helper.c"),
                 "-lstb", "-o", helper])
        if not check(p.returncode == 0, "cc tests/py/helper.c: %s" % p.stderr[-2000:]):
            return summary()
        test_layout(helper)
        if failed:  # a wrong layout would corrupt memory below
            print("%s: struct layout differs; the other checks did not run" % NAME)
            return summary()
        model = train(tmp, "tiny.safetensors")
        tiled = train(tmp, "tiled.safetensors", ["--tile_scale", "0.1"])
        if model:
            test_cli_agreement(model, helper)
            test_formats(model, helper)
            test_regions(model, helper)
            test_roi(tmp, model, helper)
            test_errors(model, tmp)
            test_lifetime(model)
        if tiled:
            test_tiled(tiled, helper)
    except Exception as e:  # a crash in a check is a failure with its traceback, not a silent exit
        import traceback
        traceback.print_exc()
        check(False, "exception: %r" % e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
