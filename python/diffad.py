"""diffad.py — Python binding of the diffad C API (include/diffad.h) over libdiffad.so.

ctypes only: no build step beyond `make`; numpy for the images and the maps.

    import numpy as np, diffad
    with diffad.Model("model.safetensors", threads=2) as m:
        r = m.predict(image)            # numpy (H,W) or (H,W,3), uint8 0..255 or float32 0..1
        print(r.score, r.decision, r.map.shape)   # map: float32 (H,W), at the input's own size

Every C error raises DiffadError(message, code) with the library's message.
The library is found, in this order: Model(..., lib=PATH), the environment variable
DIFFAD_LIB, the path `make install` wrote below (_INSTALLED_LIB), libdiffad.so next to
this file, ../build/libdiffad.so (the source tree), then the system's search path.

One Model is one C context: it is not to be used by two threads at once (a lock
serialises its calls); give each thread its own Model, e.g. with threads=1 each.
ctypes releases the GIL during diffad_predict, so two Models run in parallel.
"""
import collections
import ctypes
import os
import threading

import numpy as np

__all__ = ["Model", "Result", "Thresholds", "Region", "RegionParams", "DiffadError", "load_library",
           "OK", "E_INVALID", "E_NOMEM", "E_IO", "E_FORMAT", "E_BACKEND", "E_RANGE"]

# status codes and formats of include/diffad.h
OK, E_INVALID, E_NOMEM, E_IO, E_FORMAT, E_BACKEND, E_RANGE = range(7)
_CODE_NAMES = {OK: "DIFFAD_OK", E_INVALID: "DIFFAD_E_INVALID", E_NOMEM: "DIFFAD_E_NOMEM",
               E_IO: "DIFFAD_E_IO", E_FORMAT: "DIFFAD_E_FORMAT", E_BACKEND: "DIFFAD_E_BACKEND",
               E_RANGE: "DIFFAD_E_RANGE"}
_U8, _F32 = 0, 1
_MAX_STRIDE = 1 << 31  # DIFFAD_MAX_STRIDE
LOG_ERROR, LOG_WARN, LOG_INFO = 0, 1, 2

# Replaced by `make install` with the installed library's path.
_INSTALLED_LIB = None


class DiffadError(Exception):
    """A diffad call failed: .message is the library's message, .code a DIFFAD_E_* value."""

    def __init__(self, message, code=E_INVALID):
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def code_name(self):
        return _CODE_NAMES.get(self.code, str(self.code))

    def __str__(self):
        return "%s (%s)" % (self.message, self.code_name)


# --- the C structs, field for field in the order of include/diffad.h -----------------
_LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


class _Params(ctypes.Structure):
    _fields_ = [("threads", ctypes.c_int),
                ("memory_budget", ctypes.c_size_t),
                ("seed", ctypes.c_uint64),
                ("log", _LOG_FN),
                ("log_user", ctypes.c_void_p),
                ("skip_recon", ctypes.c_int),
                ("precision", ctypes.c_int)]


class _Image(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p),
                ("width", ctypes.c_int),
                ("height", ctypes.c_int),
                ("channels", ctypes.c_int),
                ("stride", ctypes.c_size_t),
                ("format", ctypes.c_int)]


class _Region(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int),
                ("y", ctypes.c_int),
                ("width", ctypes.c_int),
                ("height", ctypes.c_int),
                ("area", ctypes.c_long),
                ("area_mm2", ctypes.c_float),
                ("peak", ctypes.c_float),
                ("mean", ctypes.c_float)]


class _RegionParams(ctypes.Structure):
    _fields_ = [("min_area", ctypes.c_long),
                ("max_regions", ctypes.c_int),
                ("mm_per_pixel", ctypes.c_float),
                ("review_lo", ctypes.c_float),
                ("review_hi", ctypes.c_float)]


_FP = ctypes.POINTER(ctypes.c_float)


class _Result(ctypes.Structure):
    _fields_ = [("score", ctypes.c_float),
                ("normalized", ctypes.c_float),
                ("threshold", ctypes.c_float),
                ("is_ng", ctypes.c_int),
                ("calibrated", ctypes.c_int),
                ("map_width", ctypes.c_int),
                ("map_height", ctypes.c_int),
                ("map", _FP),
                ("recon", _FP),
                ("pixel_threshold", ctypes.c_float),
                ("work_width", ctypes.c_int),
                ("work_height", ctypes.c_int),
                ("tiles_x", ctypes.c_int),
                ("tiles_y", ctypes.c_int),
                ("work_map", _FP),
                ("ms_preprocess", ctypes.c_double),
                ("ms_denoise", ctypes.c_double),
                ("ms_segment", ctypes.c_double),
                ("ms_postprocess", ctypes.c_double),
                ("n_regions", ctypes.c_int),
                ("regions", ctypes.POINTER(_Region)),
                ("regions_found", ctypes.c_long),
                ("decision", ctypes.c_int)]


# --- finding and loading the library -----------------------------------------------
_libs = {}
_libs_lock = threading.Lock()


def _candidates(path):
    if path:
        return [path]
    env = os.environ.get("DIFFAD_LIB")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    c = []
    if _INSTALLED_LIB:
        c.append(_INSTALLED_LIB)
    c += [os.path.join(here, "libdiffad.so"),
          os.path.join(os.path.dirname(here), "build", "libdiffad.so")]
    return c


def _declare(lib):
    c_int, c_char_p, c_size_t, c_void_p = ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p
    ip, fp = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_float)
    sigs = {
        "diffad_params_init": (None, [ctypes.POINTER(_Params)]),
        "diffad_create": (c_int, [c_char_p, ctypes.POINTER(_Params), ctypes.POINTER(c_void_p), c_char_p, c_size_t]),
        "diffad_predict": (c_int, [c_void_p, ctypes.POINTER(_Image), ctypes.POINTER(_Result)]),
        "diffad_error": (c_char_p, [c_void_p]),
        "diffad_model_size": (None, [c_void_p, ip, ip]),
        "diffad_memory": (c_size_t, [c_void_p]),
        "diffad_precision": (ctypes.c_char_p, [c_void_p]),
        "diffad_thresholds": (c_int, [c_void_p, fp, fp]),
        "diffad_free": (None, [c_void_p]),
        "diffad_get_region_params": (c_int, [c_void_p, ctypes.POINTER(_RegionParams)]),
        "diffad_set_region_params": (c_int, [c_void_p, ctypes.POINTER(_RegionParams)]),
        "diffad_calibration_scores": (c_int, [c_void_p, ctypes.POINTER(_FP), ip]),
        "diffad_roi": (c_int, [c_void_p, ip, ip]),
        "diffad_roi_mask": (ctypes.POINTER(ctypes.c_ubyte), [c_void_p]),
    }
    optional = ("diffad_get_region_params", "diffad_set_region_params",  # newer libraries
                "diffad_calibration_scores", "diffad_roi", "diffad_roi_mask")
    for name, (res, args) in sigs.items():
        if name in optional and not hasattr(lib, name):
            continue
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


def load_library(path=None):
    """The loaded libdiffad (a ctypes.CDLL), from path or the search order above."""
    tried = []
    for p in _candidates(path):
        if os.sep in p and not os.path.exists(p):
            tried.append(p + " (not found)")
            continue
        key = os.path.realpath(p) if os.sep in p else p
        with _libs_lock:
            if key in _libs:
                return _libs[key]
            try:
                lib = _declare(ctypes.CDLL(p))
            except (OSError, AttributeError) as e:
                tried.append("%s (%s)" % (p, e))
                continue
            _libs[key] = lib
            return lib
    if not path and not os.environ.get("DIFFAD_LIB"):
        try:  # the system's search path (ldconfig, LD_LIBRARY_PATH)
            lib = _declare(ctypes.CDLL("libdiffad.so"))
            with _libs_lock:
                _libs.setdefault("libdiffad.so", lib)
            return lib
        except (OSError, AttributeError) as e:
            tried.append("libdiffad.so (%s)" % e)
    raise DiffadError("libdiffad.so not found; pass lib=PATH or set DIFFAD_LIB (tried: %s)" % "; ".join(tried), E_IO)


# --- results ------------------------------------------------------------------------
Thresholds = collections.namedtuple("Thresholds", "image pixel calibrated")
Thresholds.__doc__ = """The model's stored image and pixel thresholds and whether it is calibrated."""


Region = collections.namedtuple("Region", "x y width height area area_mm2 peak mean")
Region.__doc__ = """A defect region (8-connected map pixels over the pixel threshold) in the input's
pixels: bounding box x, y, width, height; area (pixels); area_mm2 (0 if mm_per_pixel is 0);
peak and mean map value."""
RegionParams = collections.namedtuple("RegionParams", "min_area max_regions mm_per_pixel review_lo review_hi")
_DECISIONS = {0: "OK", 1: "NG", 2: "REVIEW", 3: "uncalibrated"}


class Result:
    """One prediction. The arrays are copies (numpy float32), owned by Python.

    score, normalized, threshold, pixel_threshold: floats (float32 values);
    is_ng, calibrated: bools; decision: "OK", "NG", "REVIEW" (inside the review band) or
    "uncalibrated";
    map: (H, W) anomaly map in [0,1] at the input image's own size;
    recon: (H, W, 3) reconstruction at the input size, or None (skip_recon);
    work_map: (work_height, work_width) map at the working size the networks saw;
    tiles_x, tiles_y: the tiles covering the working image (1, 1 for a fit model);
    ms: {"preprocess", "denoise", "segment", "postprocess"} milliseconds;
    regions: list of Region, highest peak first (at most max_regions; calibrated models);
    regions_found: how many regions there are in all;
    roi: (H, W) uint8 region of interest at the input size (1 inspected, 0 ignored: map is 0
    there), or None when the model has none."""
    __slots__ = ("score", "normalized", "threshold", "pixel_threshold", "is_ng", "calibrated",
                 "map", "recon", "work_map", "tiles_x", "tiles_y", "ms", "regions", "regions_found",
                 "decision", "roi")

    def __init__(self, r, roi=None):
        h, w = r.map_height, r.map_width
        self.score, self.normalized, self.threshold = r.score, r.normalized, r.threshold
        self.pixel_threshold = r.pixel_threshold
        self.is_ng, self.calibrated = bool(r.is_ng), bool(r.calibrated)
        self.map = _copy(r.map, (h, w))
        self.recon = _copy(r.recon, (h, w, 3)) if r.recon else None
        self.work_map = _copy(r.work_map, (r.work_height, r.work_width)) if r.work_map else None
        self.tiles_x, self.tiles_y = r.tiles_x, r.tiles_y
        self.ms = {"preprocess": r.ms_preprocess, "denoise": r.ms_denoise,
                   "segment": r.ms_segment, "postprocess": r.ms_postprocess}
        self.regions = [Region(*(getattr(g, f) for f, _ in _Region._fields_))
                        for g in (r.regions[i] for i in range(r.n_regions if r.regions else 0))]
        self.regions_found = r.regions_found
        self.decision = _DECISIONS.get(r.decision, "uncalibrated")
        self.roi = None
        if roi:
            self.roi = np.ctypeslib.as_array(roi, shape=(h * w,)).reshape((h, w)).copy()

    def as_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self):
        return "Result(score=%.9g, normalized=%.4g, decision=%s, map=%s)" % (
            self.score, self.normalized, self.decision, "x".join(map(str, self.map.shape)))


def _copy(ptr, shape):
    n = 1
    for s in shape:
        n *= s
    if n == 0 or not ptr:
        return np.zeros(shape, np.float32)
    return np.ctypeslib.as_array(ptr, shape=(n,)).reshape(shape).copy()


# --- the model ----------------------------------------------------------------------
class Model:
    """A loaded model file: one diffad context (diffad_create ... diffad_free).

    threads: compute threads (0 = all cores); seed: noise seed of the denoiser passes
    (None = the library's default, the CLI's); memory_budget: bytes (0 = no limit);
    skip_recon: leave the reconstruction out; precision: None (the model file's setting),
    "auto", "f32" or "bf16" (convolution arithmetic); log: optional callable(level, message),
    level 0 error, 1 warn, 2 info; lib: path of libdiffad.so (see load_library)."""

    def __init__(self, path, threads=0, seed=None, memory_budget=0, skip_recon=False, log=None, lib=None,
                 precision=None):
        self._ctx = None
        self._lock = threading.Lock()
        self._lib = load_library(lib)
        p = _Params()
        self._lib.diffad_params_init(ctypes.byref(p))
        p.threads = int(threads)
        p.memory_budget = int(memory_budget)
        if seed is not None:
            p.seed = int(seed) & 0xFFFFFFFFFFFFFFFF
        p.skip_recon = 1 if skip_recon else 0
        precisions = {None: 0, "auto": 1, "f32": 2, "bf16": 3}
        if precision not in precisions:
            raise ValueError("precision must be None, 'auto', 'f32' or 'bf16', not %r" % (precision,))
        p.precision = precisions[precision]
        self._log_fn = None  # kept alive as long as the context may call it
        if log is not None:
            def on_log(level, message, user, _cb=log):
                try:
                    _cb(level, message.decode("utf-8", "replace") if message else "")
                except Exception:  # an exception cannot cross the C library
                    pass
            self._log_fn = _LOG_FN(on_log)
            p.log = self._log_fn
        ctx = ctypes.c_void_p()
        msg = ctypes.create_string_buffer(1024)
        rc = self._lib.diffad_create(os.fsencode(path), ctypes.byref(p), ctypes.byref(ctx), msg, len(msg))
        if rc:
            raise DiffadError(msg.value.decode("utf-8", "replace"), rc)
        self._ctx = ctx
        self.path = path

    # context manager and lifetime
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        """Frees the C context (idempotent); the Model is unusable afterwards."""
        with self._lock:
            if self._ctx is not None:
                self._lib.diffad_free(self._ctx)
                self._ctx = None

    def __del__(self):
        if getattr(self, "_ctx", None) is not None and getattr(self, "_lib", None) is not None:
            self._lib.diffad_free(self._ctx)
            self._ctx = None

    @property
    def closed(self):
        return self._ctx is None

    def _live(self):
        if self._ctx is None:
            raise DiffadError("the model is closed", E_INVALID)
        return self._ctx

    # queries
    @property
    def model_size(self):
        """(height, width) of the model input."""
        with self._lock:
            h, w = ctypes.c_int(), ctypes.c_int()
            self._lib.diffad_model_size(self._live(), ctypes.byref(h), ctypes.byref(w))
            return h.value, w.value

    @property
    def thresholds(self):
        """Thresholds(image, pixel, calibrated) stored in the model file."""
        with self._lock:
            a, b = ctypes.c_float(), ctypes.c_float()
            cal = self._lib.diffad_thresholds(self._live(), ctypes.byref(a), ctypes.byref(b))
            return Thresholds(a.value, b.value, bool(cal))

    @property
    def memory(self):
        """Bytes this context holds."""
        with self._lock:
            return int(self._lib.diffad_memory(self._live()))

    @property
    def precision(self):
        """The convolution arithmetic this context runs: 'f32' or 'bf16'."""
        with self._lock:
            return self._lib.diffad_precision(self._live()).decode("ascii")

    @property
    def calibration_scores(self):
        """(scores, n_images): the good calibration images' scores the model file keeps for
        drift checks (float32 array, ascending), and how many images they stand for; an empty
        array when the file keeps none."""
        if not hasattr(self._lib, "diffad_calibration_scores"):
            return np.zeros(0, np.float32), 0
        with self._lock:
            ptr, n_img = _FP(), ctypes.c_int()
            n = self._lib.diffad_calibration_scores(self._live(), ctypes.byref(ptr), ctypes.byref(n_img))
            return _copy(ptr, (n,)) if n else np.zeros(0, np.float32), n_img.value

    @property
    def roi(self):
        """(height, width) of the region of interest stored in the model file, or None when
        every pixel is inspected. Result.roi holds it at each image's size."""
        if not hasattr(self._lib, "diffad_roi"):
            return None
        with self._lock:
            w, h = ctypes.c_int(), ctypes.c_int()
            has = self._lib.diffad_roi(self._live(), ctypes.byref(w), ctypes.byref(h))
            return (h.value, w.value) if has else None

    def _region_api(self):
        if not hasattr(self._lib, "diffad_set_region_params"):
            raise DiffadError("this libdiffad has no region settings (diffad_set_region_params)", E_INVALID)

    @property
    def region_params(self):
        """RegionParams(min_area, max_regions, mm_per_pixel, review_lo, review_hi) of this context."""
        self._region_api()
        with self._lock:
            rp = _RegionParams()
            self._check(self._lib.diffad_get_region_params(self._live(), ctypes.byref(rp)))
            return RegionParams(rp.min_area, rp.max_regions, rp.mm_per_pixel, rp.review_lo, rp.review_hi)

    def set_region_params(self, min_area=None, max_regions=None, mm_per_pixel=None, review_band=None):
        """Overrides the given region settings for this context (the others are kept).
        review_band: (lo, hi) raw scores of the three-way decision's REVIEW band, or (0, 0) for
        OK / NG only. A value out of range raises DiffadError (DIFFAD_E_RANGE) and changes nothing."""
        self._region_api()
        with self._lock:
            rp = _RegionParams()
            self._check(self._lib.diffad_get_region_params(self._live(), ctypes.byref(rp)))
            if min_area is not None:
                rp.min_area = int(min_area)
            if max_regions is not None:
                rp.max_regions = int(max_regions)
            if mm_per_pixel is not None:
                rp.mm_per_pixel = float(mm_per_pixel)
            if review_band is not None:
                rp.review_lo, rp.review_hi = float(review_band[0]), float(review_band[1])
            self._check(self._lib.diffad_set_region_params(self._ctx, ctypes.byref(rp)))

    def _check(self, rc):
        if rc:
            msg = self._lib.diffad_error(self._ctx)
            raise DiffadError(msg.decode("utf-8", "replace") if msg else "error %d" % rc, rc)

    def predict(self, image):
        """Scores one image: a numpy array (H,W) or (H,W,C), uint8 (0..255) or float32
        (0..1), any strides. Returns a Result; raises DiffadError on a bad image."""
        a = np.asarray(image)
        if a.dtype == np.uint8:
            fmt = _U8
        elif a.dtype == np.float32:
            fmt = _F32
        else:
            raise DiffadError("image dtype %s: diffad takes uint8 (0..255) or float32 (0..1); "
                              "convert with .astype" % a.dtype, E_INVALID)
        if a.ndim == 2:
            h, w, c = a.shape[0], a.shape[1], 1
        elif a.ndim == 3:
            h, w, c = a.shape
        else:
            raise DiffadError("image shape %s: diffad takes (H, W) or (H, W, channels)" % (a.shape,), E_INVALID)
        if max(h, w, c) > 2**31 - 1:
            raise DiffadError("image shape %s: too large" % (a.shape,), E_INVALID)
        item = a.itemsize
        row = w * c * item
        # the C API reads each row as w*c packed samples and steps rows by a positive byte
        # stride; anything else (column slices, flips, broadcasts) is copied first
        packed = a.strides[1] == c * item and (a.ndim == 2 or a.strides[2] == item)
        rows_ok = h <= 1 or row <= a.strides[0] <= _MAX_STRIDE
        if not (packed and rows_ok):
            a = np.ascontiguousarray(a)
        stride = a.strides[0] if h > 1 else row
        img = _Image(a.ctypes.data if a.size else None, w, h, c, stride, fmt)
        res = _Result()
        with self._lock:
            ctx = self._live()
            self._check(self._lib.diffad_predict(ctx, ctypes.byref(img), ctypes.byref(res)))
            roi = self._lib.diffad_roi_mask(ctx) if hasattr(self._lib, "diffad_roi_mask") else None
            return Result(res, roi)  # copies the arrays while the lock is held
