"""modelfile.py -- a diffad model file read from Python with numpy alone, and the noise
diffad's inference draws.

  read_safetensors(path) -> (metadata, tensors)   the container (docs/model-file.md "Layout"):
        header length, JSON header, every tensor's dtype, shape and byte range checked;
        tensors as numpy arrays (F32 -> float32, I64 -> int64)
  read_model(path) -> (config, tensors, metadata)  a diffad model file: format, version, the
        `config` metadata parsed and checked with the model key table of
        scripts/convert_checkpoint.py (the Python mirror of src/model/config.c; keys missing
        from an older file take the paper value, as the C reader does), and exactly the
        tensors that config declares (checkpoint extras adam_* / ema.* are left out), all
        finite -- the checks of src/model/modelfile.c, so a file diffad refuses is refused here
  topk(config)                                     k of the image score (dd_model_topk)
  draw_noise(h, w, grey, seed) -> (eps_s, eps_b)   the two noise images diffad draws for one
        inference (dd_scorer_create: dd_rng_seed(seed), dd_model_draw_noise of 2 images):
        xoshiro256** seeded by splitmix64, Box-Muller normals (src/core/rng.c), NHWC order,
        eps_s first; grey: one value per pixel. Returned NCHW float32, (1, 3, h, w), or
        (1, 1, h, w) for grey noise. `diffad predict` and the C API draw them once per
        context from the seed (default PREDICT_SEED, `--seed` / diffad_params.seed) and use
        them for every image and every tile.

Every failure raises ModelFileError with one line naming the file and the problem.
Used by scripts/export_onnx.py and tests/py/compare_models.py.
"""
import json
import math
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_checkpoint as CK  # noqa: E402  (the model key table and the declared tensors)

FORMAT_VERSION = "1"          # DD_FORMAT_VERSION, src/model/model.h
HEADER_MAX = 64 << 20         # DD_HEADER_MAX
PREDICT_SEED = 0x5EED         # DD_PREDICT_SEED: the noise seed of predict, test and calibration
DTYPES = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8"), "U8": np.dtype("u1")}
ROI_TENSOR = "roi.mask"  # the region of interest (src/model/roi.h): U8 [H, W] of 0/1


class ModelFileError(Exception):
    pass


def read_safetensors(path):
    """(metadata dict of strings, {name: numpy array}) of a safetensors file, checked."""
    def fail(msg):
        raise ModelFileError("%s: %s" % (path, msg))
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except IsADirectoryError:
        fail("is a folder, not a model file")
    except OSError as e:
        fail("cannot read (%s)" % (e.strerror or e))
    if len(blob) < 8:
        fail("%d bytes: not a model file or truncated" % len(blob))
    n = struct.unpack("<Q", blob[:8])[0]
    if n == 0 or n > HEADER_MAX or n > len(blob) - 8:
        fail("header length %d does not fit the file's %d bytes: not a model file or truncated" % (n, len(blob)))
    def no_repeats(pairs):  # json keeps the last of a repeated key; the C reader refuses the file
        out = {}
        for k, v in pairs:
            if k in out:
                raise KeyError(k)
            out[k] = v
        return out
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"), object_pairs_hook=no_repeats)
    except KeyError as e:
        fail("header key %s appears twice" % e)
    except (UnicodeDecodeError, ValueError) as e:
        fail("header is not valid JSON (%s): not a model file or damaged" % str(e).split("\n")[0])
    if not isinstance(header, dict):
        fail("header is not a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        fail("__metadata__ must be an object of strings")
    data = memoryview(blob)[8 + n:]
    tensors = {}
    for name, t in header.items():
        if not isinstance(t, dict) or not {"dtype", "shape", "data_offsets"} <= set(t):
            fail("tensor %s: entry needs dtype, shape and data_offsets" % name)
        if t["dtype"] not in DTYPES:
            fail("tensor %s: dtype %r is not F32, I64 or U8" % (name, t["dtype"]))
        shape, off = t["shape"], t["data_offsets"]
        if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)
                or not isinstance(off, list) or len(off) != 2 or not all(isinstance(o, int) for o in off)):
            fail("tensor %s: malformed shape %r or data_offsets %r" % (name, shape, off))
        dt = DTYPES[t["dtype"]]
        need = dt.itemsize * math.prod(shape)
        if not (0 <= off[0] <= off[1] <= len(data)):
            fail("tensor %s: bytes %d..%d lie outside the %d data bytes (truncated?)" % (name, off[0], off[1], len(data)))
        if off[1] - off[0] != need:
            fail("tensor %s: %d bytes for %s %s, which needs %d" % (name, off[1] - off[0], t["dtype"], shape, need))
        tensors[name] = np.frombuffer(data[off[0]:off[1]], dtype=dt).reshape(shape).copy()
    spans = sorted((t["data_offsets"][0], t["data_offsets"][1], name) for name, t in header.items() if need_bytes(t))
    for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:]):
        if b0 < a1:
            fail("tensors %s (bytes %d..%d) and %s (bytes %d..%d) overlap" % (an, a0, a1, bn, b0, b1))
    return meta, tensors


def need_bytes(t):
    return t["data_offsets"][1] > t["data_offsets"][0]


def parse_config(path, text):
    """The `config` metadata -> config dict (convert_checkpoint's form), over the paper values."""
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise ModelFileError("%s: config metadata is not valid JSON (%s)" % (path, e))
    if not isinstance(raw, dict):
        raise ModelFileError("%s: config metadata is not a JSON object" % path)
    cfg = CK.profile("paper")
    try:
        for key, val in raw.items():
            if not isinstance(val, str):
                raise CK.ConvertError("config key '%s': value must be a string, got %r" % (key, val))
            cfg[key] = CK.parse_value(key, val, "config key '%s'" % key)
        CK.check_config(cfg)
    except CK.ConvertError as e:
        raise ModelFileError("%s: %s" % (path, e))
    return cfg


def declared_tensors(cfg):
    """name -> shape of every tensor the config's networks declare ("unet.*", "seg.*")."""
    out = {"unet." + n: s for n, s in CK.unet_tensors(cfg).items()}
    out.update({"seg." + n: s for n, s in CK.seg_tensors(cfg["seg_width"]).items()})
    return out


def read_model(path):
    """(config, {name: array} of exactly the declared tensors, metadata) of a diffad model file;
    the region of interest, when the file has one, is in the dict too (ROI_TENSOR: uint8 [H, W])."""
    meta, tensors = read_safetensors(path)
    fmt = meta.get("format")
    if fmt != "diffad":
        raise ModelFileError("%s: %s; a reference PyTorch checkpoint goes through scripts/convert_checkpoint.py first"
                             % (path, "no format metadata: a plain safetensors file, not a diffad model" if fmt is None
                                else "format '%s' is not 'diffad'" % fmt))
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError("%s: format version %s, this reader reads version %s"
                             % (path, meta.get("format_version", "(none)"), FORMAT_VERSION))
    if "config" not in meta:
        raise ModelFileError("%s: no config metadata" % path)
    cfg = parse_config(path, meta["config"])
    want = declared_tensors(cfg)
    out = {}
    for name, shape in want.items():
        a = tensors.get(name)
        if a is None:
            raise ModelFileError("%s: tensor %s is missing (file from a different model config?)" % (path, name))
        counter = name.endswith("num_batches_tracked")
        if a.dtype != (np.int64 if counter else np.float32) or tuple(a.shape) != tuple(shape):
            raise ModelFileError("%s: tensor %s is %s %s, the config declares %s %s (file from a different model "
                                 "config?)" % (path, name, "I64" if a.dtype == np.int64 else "F32", list(a.shape),
                                               "I64" if counter else "F32", list(shape)))
        if not counter and not np.isfinite(a).all():
            raise ModelFileError("%s: tensor %s holds NaN or infinite values" % (path, name))
        out[name] = a
    roi = tensors.get(ROI_TENSOR)
    if roi is not None:
        # the C loader's checks (src/model/modelfile.c): U8, 2-D, values 0/1, something inspected
        if roi.dtype != np.uint8 or roi.ndim != 2 or min(roi.shape) < 1 or roi.max() > 1 or not roi.any():
            raise ModelFileError("%s: tensor %s must be a U8 [H, W] mask of 0/1 values with an inspected pixel"
                                 % (path, ROI_TENSOR))
        out[ROI_TENSOR] = roi
    for name in tensors:
        if name == ROI_TENSOR:
            continue
        # a checkpoint's optimiser state and EMA copy are not part of the model (the C loader skips them too)
        if name not in want and not name.startswith("adam_") and not (name.startswith("ema.") and name[4:] in want):
            raise ModelFileError("%s: tensor %s is not part of the model its config describes "
                                 "(file from a different model config?)" % (path, name))
    return cfg, out, meta


def topk(cfg):
    """dd_model_topk: the config's topk, or 50 scaled by the area of 256 x 256, at least 1."""
    if cfg["topk"] > 0:
        return cfg["topk"]
    h, w = cfg["size"]
    return max(1, int(math.floor(50.0 * h * w / 65536.0 + 0.5)))  # lround: half away from zero


# ---------------- diffad's noise (src/core/rng.c, dd_model_draw_noise) ----------------
M64 = (1 << 64) - 1


class _Rng:
    """xoshiro256** seeded by splitmix64, with dd_rng_normal's Box-Muller pair."""

    def __init__(self, seed):
        st, s = seed & M64, []
        for _ in range(4):
            st = (st + 0x9E3779B97F4A7C15) & M64
            z = st
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            s.append(z ^ (z >> 31))
        if not any(s):
            s[0] = 1
        self.s = s
        self.spare = None

    def u64(self):
        s0, s1, s2, s3 = self.s
        m = (s1 * 5) & M64
        result = ((((m << 7) | (m >> 57)) & M64) * 9) & M64
        t = (s1 << 17) & M64
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = ((s3 << 45) | (s3 >> 19)) & M64
        self.s = [s0, s1, s2, s3]
        return result

    def uniform(self):
        return (self.u64() >> 11) * 2.0 ** -53

    def normal(self):
        if self.spare is not None:
            v, self.spare = self.spare, None
            return v
        u1 = self.uniform()
        while u1 <= 0.0:
            u1 = self.uniform()
        u2 = self.uniform()
        rad, th = math.sqrt(-2.0 * math.log(u1)), 2.0 * math.pi * u2
        self.spare = rad * math.sin(th)
        return rad * math.cos(th)


def draw_noise(h, w, grey, seed=PREDICT_SEED):
    """(eps_s, eps_b) as diffad draws them for one h x w inference: NCHW float32, 1 channel
    for grey noise (diffad copies it to the 3 channels), else 3."""
    r = _Rng(seed)
    c = 1 if grey else 3
    v = np.array([r.normal() for _ in range(2 * h * w * c)], dtype=np.float64).astype(np.float32)
    v = v.reshape(2, h, w, c).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(v[0:1]), np.ascontiguousarray(v[1:2])


def roi_at(mask, h, w):
    """dd_roi_resample (src/model/roi.c): the mask [H, W] of 0/1 at h x w, a pixel inspected when at
    least half of its area is, exactly in integers (each axis: output pixel o covers [o*N, (o+1)*N)
    and input pixel i covers [i*n, (i+1)*n) in units of 1/(n*N))."""
    H, W = mask.shape

    def overlaps(n_out, N):
        o = np.arange(n_out, dtype=np.int64)[:, None]
        i = np.arange(N, dtype=np.int64)[None, :]
        return np.clip(np.minimum((o + 1) * N, (i + 1) * n_out) - np.maximum(o * N, i * n_out), 0, None)

    acc = overlaps(h, H) @ mask.astype(np.int64) @ overlaps(w, W).T
    return (2 * acc >= H * W).astype(np.uint8)
