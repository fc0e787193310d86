#!/usr/bin/env python3
"""Convert a DiffusionAD reference checkpoint (PyTorch) into a diffad model file.

Usage: convert_checkpoint.py IN.pth OUT.safetensors [--size HxW] [--profile paper|cpu]
                             [--unsafe-load] [--KEY VALUE ...]

IN.pth is what the reference implementation saves with torch.save:
    {'unet_model_state_dict': ..., 'seg_model_state_dict': ...}
(other entries, e.g. optimiser state or the epoch, are ignored; state_dict names
with a DataParallel "module." prefix are accepted). OUT is a safetensors file in
the layout src/model/modelfile.c reads: tensors "unet.<name>" and "seg.<name>" as F32 in
PyTorch layout, BatchNorm's num_batches_tracked as a 0-d I64, and the model config
(every model key of src/model/config.c as a string) in the metadata.

The network shape is read from the tensors: denoiser base channels, channel
multipliers, residual blocks per level, the levels with self-attention, and the
segmentation width. What the weights do not determine comes from the profile
(default "paper") or --KEY VALUE: the image size (--size, default 256x256 for
the paper profile), attention heads, GroupNorm groups, the diffusion settings.
A --KEY given for something the tensors determine must agree with them. The file
is uncalibrated (thresholds 0); every tensor is checked against the shapes diffad
builds for that config, so a checkpoint from another network is refused.

Needs PyTorch (Debian: /usr/bin/python3 with python3-torch) and NumPy.
Exit status: 0 written, 1 the checkpoint or the options are wrong, 2 usage or
missing PyTorch.
"""
import itertools
import json
import math
import os
import re
import struct
import sys

PROG = "convert_checkpoint.py"
UNET_KEY, SEG_KEY = "unet_model_state_dict", "seg_model_state_dict"


class ConvertError(Exception):
    pass


# ---------------- model keys (the model=1 rows of src/model/config.c KEYS) ----------------
# name -> (type, lo, hi)
KEYS = [
    ("size", "size", 32, 4096),
    ("base_channels", "int", 2, 1024),
    ("channel_mult", "mult", 1, 16),
    ("res_blocks", "int", 1, 8),
    ("attention", "attn", 1, 4096),
    ("heads", "int", 1, 64),
    ("groups", "int", 1, 1024),
    ("seg_width", "int", 1, 256),
    ("T", "int", 2, 4000),
    ("t_s", "int", 0, 3999),
    ("t_b", "int", 1, 3999),
    ("guide_w", "float", 0, 10),
    ("train_ts_max", "int", 0, 3999),
    ("train_tb_min", "int", 1, 3999),
    ("train_ts_min", "int", 0, 3999),
    ("train_tb_max", "int", 0, 3999),
    ("snr_gamma", "float", 0, 1e6),
    ("grey_noise", "int", -1, 1),
    ("tile_scale", "float", -1, 16),
    ("tile_overlap", "float", 0, 0.9),
    ("lr_unet", "float", 0, 1),
    ("lr_seg", "float", 0, 1),
    ("clip_norm", "float", 0, 1e9),
    ("focal_weight", "float", 0, 1000),
    ("focal_alpha", "float", 0, 1),
    ("focal_gamma", "float", 0, 10),
    ("smoothl1_beta", "float", 1e-6, 100),
    ("topk", "int", 0, 1 << 30),
    ("map_sigma", "float", 0, 64),
    ("conv_algo", "enum", 0, 1),
    ("precision", "enum", 0, 1),
    ("image_threshold", "float", -1e30, 1e30),
    ("pixel_threshold", "float", -1e30, 1e30),
    ("score_lo", "float", -1e30, 1e30),
    ("score_hi", "float", -1e30, 1e30),
    ("min_area", "int", 0, 1 << 28),
    ("max_regions", "int", 0, 1024),
    ("mm_per_pixel", "float", 0, 1000),
    ("review", "float", 0, 0.5),
    ("review_lo", "float", -1e30, 1e30),
    ("review_hi", "float", -1e30, 1e30),
]
ENUM_NAMES = {"conv_algo": ("auto", "direct", "winograd"), "precision": ("auto", "f32", "bf16")}
KEY_TYPE = {k: (t, lo, hi) for k, t, lo, hi in KEYS}
ARCH_KEYS = ("base_channels", "channel_mult", "res_blocks", "attention", "seg_width")


def profile(name):
    """Defaults of src/model/config.c dd_settings_profile (model keys only)."""
    c = dict(size=(256, 256), base_channels=128, channel_mult=[1, 1, 2, 2, 4, 4], res_blocks=2,
             attention=[32, 16, 8], heads=4, groups=32, seg_width=64, T=1000, t_s=200, t_b=400,
             guide_w=1.0, train_ts_max=299, train_tb_min=300, train_ts_min=0, train_tb_max=0, snr_gamma=0.0, grey_noise=0, tile_scale=0.0, tile_overlap=0.25, lr_unet=1e-4, lr_seg=1e-5, clip_norm=0.0,
             focal_weight=5.0, focal_alpha=0.5, focal_gamma=4.0, smoothl1_beta=1.0, topk=0, map_sigma=0.0,
             conv_algo="auto", image_threshold=0.0, pixel_threshold=0.0, score_lo=0.0, score_hi=0.0,
             min_area=0, max_regions=16, mm_per_pixel=0.0, review=0.0, review_lo=0.0, review_hi=0.0,
             # a file without the key runs f32 (src/model/config.c: written before it existed); a
             # converted checkpoint keeps doing so unless --precision says otherwise
             precision="f32")
    if name == "paper":
        return c
    if name == "cpu":
        c.update(size=(128, 128), base_channels=32, channel_mult=[1, 2, 2, 4], res_blocks=1, attention=[16],
                 heads=4, seg_width=16, lr_unet=5e-4, lr_seg=1e-3)
        return c
    raise ConvertError("unknown profile '%s' (known: paper, cpu)" % name)


def parse_value(key, text, label=None):
    """--KEY VALUE text -> value, with the type and range rules of src/model/config.c.
    label names the setting in messages (default "--KEY"; scripts/modelfile.py names the
    model file's config key)."""
    if key not in KEY_TYPE:
        raise ConvertError("unknown %s (model settings: %s)" % (label or "model setting '--%s'" % key,
                                                                  ", ".join(k for k, *_ in KEYS)))
    label = label or "--" + key
    typ, lo, hi = KEY_TYPE[key]
    if typ == "size":
        m = re.fullmatch(r"\s*(\d+)\s*(?:x\s*(\d+))?\s*", text)
        if not m:
            raise ConvertError("%s needs HxW (e.g. 256x256), got '%s'" % (label, text))
        h = int(m.group(1))
        w = int(m.group(2)) if m.group(2) else h
        if not (lo <= h <= hi and lo <= w <= hi):
            raise ConvertError("%s %dx%d out of range %d..%d per side" % (label, h, w, lo, hi))
        return (h, w)
    if typ in ("mult", "attn"):
        if typ == "attn" and text.strip() in ("none", ""):
            return []
        try:
            v = [int(s) for s in text.split(",")]
        except ValueError:
            raise ConvertError("%s needs comma-separated integers%s, got '%s'"
                               % (label, " or 'none'" if typ == "attn" else "", text))
        if not v or any(not (lo <= x <= hi) for x in v) or len(v) > 8:
            raise ConvertError("%s: values must be %d..%d (at most 8 of them), got '%s'" % (label, lo, hi, text))
        return v
    if typ == "enum":
        if text not in ENUM_NAMES[key]:
            names = ["'%s'" % n for n in ENUM_NAMES[key]]
            raise ConvertError("%s must be %s or %s, got '%s'" % (label, ", ".join(names[:-1]), names[-1], text))
        return text
    try:
        x = float(text)
    except ValueError:
        raise ConvertError("%s needs a number, got '%s'" % (label, text))
    if not (lo <= x <= hi):  # NaN fails this too
        raise ConvertError("%s = %s is out of range %g..%g" % (label, text, lo, hi))
    if typ == "int":
        if x != int(x):
            raise ConvertError("%s needs a whole number, got '%s'" % (label, text))
        return int(x)
    return x


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def value_text(key, v):
    """The text src/model/config.c value_text() writes for a key."""
    typ = KEY_TYPE[key][0]
    if typ == "size":
        return "%dx%d" % v
    if typ in ("mult", "attn"):
        return ",".join(str(x) for x in v) if v else "none"
    if typ == "enum":
        return v
    if typ == "int":
        return "%d" % v
    return "%.9g" % f32(float(v))


def check_config(c):
    """The checks of dd_model_config_check that a converted file must pass."""
    h, w = c["size"]
    L = len(c["channel_mult"])
    div = 1 << (L - 1)
    if h % div or w % div or h % 32 or w % 32:
        raise ConvertError("size %dx%d: each side must be divisible by %d (32 for the segmentation net's "
                           "poolings, 2^(levels-1) = %d for the %d denoiser levels); pass the training size "
                           "with --size HxW" % (h, w, max(div, 32), div, L))
    if c["base_channels"] % 2:
        raise ConvertError("base channels %d must be even" % c["base_channels"])
    for i, m in enumerate(c["channel_mult"]):
        ch = c["base_channels"] * m
        if ch % c["heads"]:
            raise ConvertError("%d channels at level %d are not divisible by %d attention heads (set --heads)"
                               % (ch, i, c["heads"]))
    if not (0 <= c["t_s"] < c["t_b"] < c["T"]):
        raise ConvertError("need 0 <= t_s < t_b < T (t_s=%d t_b=%d T=%d)" % (c["t_s"], c["t_b"], c["T"]))
    if not (0 <= c["train_ts_max"] < c["train_tb_min"] < c["T"]):
        raise ConvertError("need 0 <= train_ts_max < train_tb_min < T (%d, %d, T=%d)"
                           % (c["train_ts_max"], c["train_tb_min"], c["T"]))
    if not (0 <= c["train_ts_min"] <= c["train_ts_max"]):
        raise ConvertError("need 0 <= train_ts_min <= train_ts_max (%d, %d)" % (c["train_ts_min"], c["train_ts_max"]))
    if not (c["tile_scale"] == 0 or 0 < c["tile_scale"] <= 16):
        raise ConvertError("tile_scale %g: a model file needs 0 (fit) or a factor 0 < f <= 16 (-1, auto, is a "
                           "training setting)" % c["tile_scale"])
    if c["train_tb_max"] and not (c["train_tb_min"] <= c["train_tb_max"] < c["T"]):
        raise ConvertError("need train_tb_min <= train_tb_max < T, or train_tb_max 0 for T-1 (%d, %d, T=%d)"
                           % (c["train_tb_min"], c["train_tb_max"], c["T"]))
    if c["topk"] > h * w:
        raise ConvertError("topk %d exceeds the %d pixels of %dx%d" % (c["topk"], h * w, h, w))
    if c["review_lo"] > c["review_hi"]:
        raise ConvertError("review_lo %g is above review_hi %g" % (c["review_lo"], c["review_hi"]))


# ---------------- the tensors diffad builds for a config (src/nn/unet.c, src/nn/segnet.c) ----------------
def _conv(t, name, cin, cout, k):
    t[name + ".weight"] = (cout, cin, k, k)
    t[name + ".bias"] = (cout,)


def _lin(t, name, cin, cout):
    t[name + ".weight"] = (cout, cin)
    t[name + ".bias"] = (cout,)


def _gn(t, name, c):
    t[name + ".weight"] = (c,)
    t[name + ".bias"] = (c,)


def _bn(t, name, c):
    for s in ("weight", "bias", "running_mean", "running_var"):
        t[name + "." + s] = (c,)
    t[name + ".num_batches_tracked"] = ()


def _res(t, name, cin, cout, E):
    _gn(t, name + ".in_layers.0", cin)
    _conv(t, name + ".in_layers.2", cin, cout, 3)
    _lin(t, name + ".embed_layers.1", E, cout)
    _gn(t, name + ".out_layers.0", cout)
    _conv(t, name + ".out_layers.3", cout, cout, 3)
    if cin != cout:
        _conv(t, name + ".skip_connection", cin, cout, 1)


def _attn(t, name, c):
    _gn(t, name + ".norm", c)
    t[name + ".to_qkv.weight"] = (3 * c, c, 1)
    t[name + ".to_qkv.bias"] = (3 * c,)
    t[name + ".proj_out.weight"] = (c, c, 1)
    t[name + ".proj_out.bias"] = (c,)


def unet_tensors(c):
    """name -> shape, in the order of dd_unet_declare."""
    t = {}
    C, E = c["base_channels"], 4 * c["base_channels"]
    mult, R, attn = c["channel_mult"], c["res_blocks"], set(c["attention"])
    h, w = c["size"]
    _lin(t, "time_embedding.1", C, E)
    _lin(t, "time_embedding.3", E, E)
    _conv(t, "down.0.0", 3, C, 3)
    skip, ch, k = [C], C, 1
    for lvl, m in enumerate(mult):
        for _ in range(R):
            _res(t, "down.%d.0" % k, ch, C * m, E)
            ch = C * m
            if min(h, w) in attn:
                _attn(t, "down.%d.1" % k, ch)
            skip.append(ch)
            k += 1
        if lvl != len(mult) - 1:
            _res(t, "down.%d.0" % k, ch, ch, E)
            k += 1
            skip.append(ch)
            h, w = h // 2, w // 2
    _res(t, "middle.0", ch, ch, E)
    _attn(t, "middle.1", ch)
    _res(t, "middle.2", ch, ch, E)
    k = 0
    for lvl in reversed(range(len(mult))):
        for r in range(R + 1):
            out = C * mult[lvl]
            _res(t, "up.%d.0" % k, ch + skip.pop(), out, E)
            ch, sub = out, 1
            if min(h, w) in attn:
                _attn(t, "up.%d.%d" % (k, sub), ch)
                sub += 1
            if lvl != 0 and r == R:
                _res(t, "up.%d.%d" % (k, sub), ch, ch, E)
                h, w = h * 2, w * 2
            k += 1
    _gn(t, "out.0", ch)
    _conv(t, "out.2", ch, 3, 3)
    return t


def seg_tensors(W, in_ch=6):
    """name -> shape, in the order of dd_segnet_declare."""
    t = {}
    enc = [W, 2 * W, 4 * W, 8 * W, 8 * W, 8 * W]
    cin = in_ch
    for b in range(6):
        for j in range(2):
            _conv(t, "encoder_segment.block%d.%d" % (b + 1, 3 if j else 0), cin, enc[b], 3)
            _bn(t, "encoder_segment.block%d.%d" % (b + 1, 4 if j else 1), enc[b])
            cin = enc[b]
    up = [8 * W, 4 * W, 2 * W, W, W]
    for st, (un, dn) in enumerate(zip(["up_b", "up1", "up2", "up3", "up4"], ["db_b", "db1", "db2", "db3", "db4"])):
        _conv(t, "decoder_segment.%s.1" % un, cin, up[st], 3)
        _bn(t, "decoder_segment.%s.2" % un, up[st])
        cin = up[st] + enc[4 - st]
        for j in range(2):
            _conv(t, "decoder_segment.%s.%d" % (dn, 3 if j else 0), cin, up[st], 3)
            _bn(t, "decoder_segment.%s.%d" % (dn, 4 if j else 1), up[st])
            cin = up[st]
    _conv(t, "decoder_segment.fin_out.0", W, 1, 3)
    return t


# ---------------- reading the checkpoint ----------------
def shape_of(sd, what, name):
    if name not in sd:
        raise ConvertError("cannot infer the network: tensor '%s' is missing from '%s'" % (name, what))
    return tuple(sd[name].shape)


def infer_arch(usd, ssd, size):
    """Architecture keys from tensor names and shapes (see docs/model-file.md)."""
    a = {}
    te = shape_of(usd, UNET_KEY, "time_embedding.1.weight")
    if len(te) != 2 or te[0] != 4 * te[1]:
        raise ConvertError("'%s' time_embedding.1.weight has shape %s, expected [4C, C] (Linear C -> 4C)"
                           % (UNET_KEY, list(te)))
    C = a["base_channels"] = te[1]
    inc = shape_of(usd, UNET_KEY, "down.0.0.weight")
    if len(inc) != 4 or inc[1] != 3 or inc[0] != C:
        raise ConvertError("'%s' down.0.0.weight (the input conv) has shape %s, expected [%d, 3, 3, 3]"
                           % (UNET_KEY, list(inc), C))

    def modules(prefix):
        idx = set()
        for n in usd:
            m = re.match(prefix + r"\.(\d+)\.", n)
            if m:
                idx.add(int(m.group(1)))
        return idx

    down, up = modules("down"), modules("up")
    if not up or sorted(up) != list(range(len(up))) or sorted(down) != list(range(len(down))):
        raise ConvertError("'%s': the down.K / up.K modules are not numbered 0, 1, 2, ... (down: %s; up: %s)"
                           % (UNET_KEY, sorted(down), sorted(up)))
    # An up module whose 2nd or 3rd entry is a ResBlock ends a level (upsampling): levels - 1 of them.
    upsample = [k for k in sorted(up)
                if "up.%d.1.in_layers.2.weight" % k in usd or "up.%d.2.in_layers.2.weight" % k in usd]
    L = len(upsample) + 1
    U = len(up)
    R = U // L - 1
    if U % L or R < 1 or len(down) - 1 != L * R + L - 1 or upsample != [(i + 1) * (R + 1) - 1 for i in range(L - 1)]:
        raise ConvertError("'%s': %d down and %d up modules with upsampling at up.%s do not form a U-Net of "
                           "docs/method.md section 4 (levels x residual blocks)" % (UNET_KEY, len(down), U, upsample))
    a["res_blocks"] = R
    mult, attn_levels = [], []
    for lvl in range(L):
        k = 1 + lvl * (R + 1)
        s = shape_of(usd, UNET_KEY, "down.%d.0.in_layers.2.weight" % k)
        if len(s) != 4 or s[0] % C:
            raise ConvertError("'%s' down.%d.0.in_layers.2.weight has shape %s: %d output channels are not a "
                               "multiple of the base %d" % (UNET_KEY, k, list(s), s[0], C))
        mult.append(s[0] // C)
        if "down.%d.1.to_qkv.weight" % k in usd:
            attn_levels.append(lvl)
    a["channel_mult"] = mult
    h, w = size
    a["attention"] = [min(h, w) >> lvl for lvl in attn_levels]
    a["_attention_levels"] = attn_levels
    sb = shape_of(ssd, SEG_KEY, "encoder_segment.block1.0.weight")
    if len(sb) != 4 or sb[1] != 6:
        raise ConvertError("'%s' encoder_segment.block1.0.weight has shape %s, expected [w, 6, 3, 3] "
                           "(input: image and reconstruction)" % (SEG_KEY, list(sb)))
    a["seg_width"] = sb[0]
    return a


def strip_module(sd):
    keys = list(sd.keys())
    if keys and all(isinstance(k, str) and k.startswith("module.") for k in keys):
        return {k[len("module."):]: v for k, v in sd.items()}
    return sd


def compare(what, sd, expected):
    """Every expected tensor present with its shape, nothing else."""
    missing = [n for n in expected if n not in sd]
    extra = [n for n in sd if n not in expected]
    wrong = [(n, tuple(sd[n].shape), expected[n]) for n in expected if n in sd and tuple(sd[n].shape) != expected[n]]
    msgs = []

    def some(lst, fmt):
        return ", ".join(fmt(x) for x in lst[:8]) + (", ... (%d in all)" % len(lst) if len(lst) > 8 else "")

    if missing:
        msgs.append("missing tensor%s %s" % ("s" if len(missing) > 1 else "", some(missing, lambda n: "'%s'" % n)))
    if extra:
        msgs.append("unexpected tensor%s %s" % ("s" if len(extra) > 1 else "", some(extra, lambda n: "'%s'" % n)))
    if wrong:
        msgs.append("shape mismatch: " + some(wrong, lambda x: "'%s' is %s, expected %s" % (x[0], list(x[1]), list(x[2]))))
    if msgs:
        raise ConvertError("'%s' does not match the network inferred for this config: %s" % (what, "; ".join(msgs)))


def load_checkpoint(path, unsafe):
    try:
        import torch  # noqa: F401
    except ImportError as e:
        sys.stderr.write("%s: PyTorch is needed to read .pth checkpoints and is not installed for %s (%s).\n"
                         "Install it (Debian: apt install python3-torch) or run the script with a Python that "
                         "has it, e.g. /usr/bin/python3 %s ...\n" % (PROG, sys.executable, e, sys.argv[0]))
        sys.exit(2)
    import torch
    if not os.path.isfile(path):
        raise ConvertError("%s: no such file" % path)
    kw = {"map_location": "cpu"}
    try:
        if not unsafe:
            try:
                return torch.load(path, weights_only=True, **kw)
            except TypeError:  # torch < 1.13 has no weights_only
                pass
        return torch.load(path, **kw)
    except Exception as e:  # noqa: BLE001 -- any reason torch gives
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = ""
        if not unsafe and ("weights_only" in str(e) or "Unpickl" in type(e).__name__):
            hint = " (if the file comes from a source you trust and holds other Python objects, add --unsafe-load)"
        raise ConvertError("%s: cannot read as a PyTorch checkpoint: %s%s" % (path, msg, hint))


def to_numpy(name, t, counter):
    import numpy as np
    import torch
    if not isinstance(t, torch.Tensor):
        raise ConvertError("'%s' is a %s, not a tensor" % (name, type(t).__name__))
    t = t.detach().cpu()
    if counter:
        if t.numel() != 1:
            raise ConvertError("'%s' should hold one integer, has shape %s" % (name, list(t.shape)))
        return np.array([int(t.reshape(-1)[0].item())], dtype="<i8")
    if not t.is_floating_point():
        raise ConvertError("'%s' has dtype %s, expected a floating-point tensor" % (name, t.dtype))
    a = t.float().contiguous().numpy().astype("<f4", copy=False)
    if not np.isfinite(a).all():
        raise ConvertError("'%s' holds NaN or infinity" % name)
    return a


def write_model(out, cfg, tensors):
    """tensors: list of (name, numpy array) in file order."""
    config_text = json.dumps({k: value_text(k, cfg[k]) for k, *_ in KEYS}, separators=(",", ":"))
    header = {"__metadata__": {"format": "diffad", "format_version": "1", "config": config_text}}
    off = 0
    for name, a in tensors:
        counter = a.dtype.kind == "i"
        header[name] = {"dtype": "I64" if counter else "F32", "shape": [] if counter else list(a.shape),
                        "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)  # data starts 8-byte aligned
    # a generator: one tensor's bytes at a time, never the whole model twice in memory
    write_atomic(out, itertools.chain([struct.pack("<Q", len(hb)), hb], (a.tobytes() for _, a in tensors)), ConvertError)


def write_atomic(out, chunks, error=None):
    """The scripts' one atomic writer: the byte strings of chunks into a temporary file next to
    out, flushed to disk, renamed over out; on failure the temporary file is removed, an existing
    out is untouched, and error (an exception class; default ConvertError) is raised naming out."""
    d = os.path.dirname(os.path.abspath(out))
    tmp = os.path.join(d, ".%s.tmp%d" % (os.path.basename(out), os.getpid()))
    try:
        with open(tmp, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise (error or ConvertError)("%s: cannot write (%s); an existing file there is untouched" % (out, e.strerror or e))


USAGE = ("usage: %s IN.pth OUT.safetensors [--size HxW] [--profile paper|cpu] [--unsafe-load] [--KEY VALUE ...]\n"
         "  model keys: %s\n" % (PROG, " ".join(k for k, *_ in KEYS)))


def parse_args(argv):
    pos, opts, prof, unsafe = [], {}, "paper", False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            sys.stdout.write(__doc__ + "\n" + USAGE)
            sys.exit(0)
        if a == "--unsafe-load":
            unsafe = True
        elif a.startswith("--"):
            key, _, val = a[2:].partition("=")
            if not _:
                if i + 1 >= len(argv):
                    raise ConvertError("option --%s needs a value" % key)
                i += 1
                val = argv[i]
            if key == "profile":
                prof = val
            else:
                opts[key] = parse_value(key, val)
        else:
            pos.append(a)
        i += 1
    if len(pos) != 2:
        sys.stderr.write(USAGE)
        sys.exit(2)
    return pos[0], pos[1], prof, opts, unsafe


def main(argv):
    src, out, prof, opts, unsafe = parse_args(argv)
    cfg = profile(prof)
    if "size" in opts:
        cfg["size"] = opts["size"]
    ck = load_checkpoint(src, unsafe)
    if not isinstance(ck, dict):
        raise ConvertError("%s: not a dict but a %s; expected the reference's {'%s': ..., '%s': ...}"
                           % (src, type(ck).__name__, UNET_KEY, SEG_KEY))
    miss = [k for k in (UNET_KEY, SEG_KEY) if k not in ck]
    if miss:
        raise ConvertError("%s: missing key%s %s (has: %s); expected the reference's {'%s': ..., '%s': ...}"
                           % (src, "s" if len(miss) > 1 else "", ", ".join("'%s'" % k for k in miss),
                              ", ".join("'%s'" % k for k in list(ck)[:10]) or "nothing", UNET_KEY, SEG_KEY))
    sds = []
    for k in (UNET_KEY, SEG_KEY):
        if not isinstance(ck[k], dict):
            raise ConvertError("%s: '%s' is a %s, not a state_dict" % (src, k, type(ck[k]).__name__))
        sds.append(strip_module(ck[k]))
    usd, ssd = sds
    arch = infer_arch(usd, ssd, cfg["size"])
    levels = arch.pop("_attention_levels")
    for k in ARCH_KEYS:
        if k in opts and opts[k] != arch[k]:
            note = ""
            if k == "attention":
                note = (" at size %dx%d (levels %s have attention; the attention sizes follow from --size)"
                        % (cfg["size"][0], cfg["size"][1], levels))
            raise ConvertError("--%s %s does not match the checkpoint, which has %s%s"
                               % (k, value_text(k, opts[k]), value_text(k, arch[k]), note))
    cfg.update(arch)
    cfg.update(opts)
    check_config(cfg)
    exp_u, exp_s = unet_tensors(cfg), seg_tensors(cfg["seg_width"])
    compare(UNET_KEY, usd, exp_u)
    compare(SEG_KEY, ssd, exp_s)
    tensors = []
    for pfx, sd, exp in (("unet.", usd, exp_u), ("seg.", ssd, exp_s)):
        for n in exp:
            tensors.append((pfx + n, to_numpy(n, sd[n], n.endswith("num_batches_tracked"))))
    write_model(out, cfg, tensors)
    n_u = sum(math.prod(s) for s in exp_u.values())
    n_s = sum(math.prod(s) for n, s in exp_s.items() if not n.endswith(("running_mean", "running_var", "num_batches_tracked")))
    print("%s: wrote %s: size %s, base %d, channel_mult %s, res_blocks %d, attention %s, heads %d, groups %d, "
          "seg_width %d; %d tensors (%d + %d parameters); uncalibrated"
          % (PROG, out, value_text("size", cfg["size"]), cfg["base_channels"], value_text("channel_mult", cfg["channel_mult"]),
             cfg["res_blocks"], value_text("attention", cfg["attention"]), cfg["heads"], cfg["groups"],
             cfg["seg_width"], len(tensors), n_u, n_s))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except ConvertError as e:
        sys.stderr.write("%s: %s\n" % (PROG, e))
        sys.exit(1)
