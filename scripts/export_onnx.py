#!/usr/bin/python3
"""Export a diffad model file's whole inference to ONNX, for ONNX Runtime, OpenVINO or any
other ONNX runtime.

Usage: export_onnx.py MODEL.safetensors OUT.onnx [--opset N] [--fixed-noise [--seed S]]

The graph is one batch-1 inference at the model size, as dd_model_infer computes it:
noising the image at t_s and t_b, both denoiser passes (one batch of 2), the norm-guided
one-step reconstruction, the segmentation net, and the image score. The networks are the
repo's PyTorch reference (tests/py/ref_model.py, built from the file's config by
bench/model_torch.py) with the file's weights (BatchNorm running statistics included);
tests/py/test_export.py checks the result against diffad's own output.

Inputs (float32, NCHW):
  image  1x3xHxW  RGB in 0..1 (8-bit values / 255, grey copied to the 3 channels), at the
         model size H x W. The scaling is diffad's: it feeds 0..1 to the networks as is. An
         image of another size must be resized first; diffad does it with area averaging
         along a side that shrinks and bilinear (align_corners=False) along one that grows.
  eps_s, eps_b  1xCxHxW  standard normal noise of the two denoiser passes; C = 3, or C = 1
         for a model with grey_noise 1 (one value per pixel, copied to the 3 channels in the
         graph). diffad draws them once per context from its seed (xoshiro256**, Box-Muller;
         scripts/modelfile.py draw_noise reproduces the draw) and uses them for every image;
         the outputs equal diffad's only for the same noise.
  With --fixed-noise the noise diffad's predict draws (seed 0x5EED, or --seed S as
  `diffad predict --seed S`) is stored in the graph, whose only input is then `image`.
Outputs:
  map    1x1xHxW  the anomaly map at the model size (0..1)
  recon  1x3xHxW  the reconstruction x0_hat
  score  1        the image score: mean of the top-k map values (k: the model's topk, or
                  round(50 H W / 65536), at least 1)
Metadata (metadata_props): size, topk, the calibration (image_threshold, pixel_threshold,
score_lo, score_hi, review_lo, review_hi, min_area, calibrated) and the decision rule, so a
runtime user decides OK / NG / REVIEW as diffad does; the noise, tiling and source file.

Not in the graph: resizing the image to the model size and the map back to the image size,
the defect regions (min_area), and for a tiled model (tile_scale > 0) the tiles: such a
graph scores one model-size tile, and the caller cuts the tiles, blends the tile maps and
scores the stitched map (src/infer/scorer.c). The arithmetic is float32 throughout: the
results follow diffad's `--precision f32` (bf16 convolutions differ by up to a few 1e-2).

Needs PyTorch (Debian's python3-torch) and NumPy; onnx (Debian python3-onnx) only for the
optional checker run. The output is written atomically (a temporary file renamed over OUT).
Exit status: 0 written; 2 a bad model file, output path or option, or a failed export: one
line on stderr naming the file and the problem (a bad option: the usage line and the error),
and OUT, if it exists, untouched.
"""
import argparse
import hashlib
import io
import os
import sys
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "py"))
import modelfile as MF  # noqa: E402

PROG = "export_onnx.py"
OPSETS = (12, 17)  # einsum needs 12; torch 1.13 exports up to 17
DEFAULT_OPSET = 14


class ExportError(Exception):
    pass


def net_config(cfg):
    """A model file's config in bench/model_torch.py's CONFIGS form."""
    h, w = cfg["size"]
    return dict(h=h, w=w, base=cfg["base_channels"], mult=cfg["channel_mult"], rb=cfg["res_blocks"],
                attn=cfg["attention"], heads=cfg["heads"], segw=cfg["seg_width"], groups=cfg["groups"])


def load_networks(path, cfg, tensors):
    """The reference networks of the config with the file's weights, in eval mode."""
    import torch
    import model_torch as MT
    unet, seg = MT.build_from(net_config(cfg), fill=False)
    for prefix, net in (("unet.", unet), ("seg.", seg)):
        sd = net.state_dict()
        mine = {prefix + n for n in sd}
        theirs = {n for n in tensors if n.startswith(prefix)}
        if mine != theirs:  # the reader checked the file against convert_checkpoint's table; this is the network
            diff = sorted(mine ^ theirs)
            raise ExportError("%s: the reference network and the file disagree on %d tensors (first: %s)"
                              % (path, len(diff), diff[0]))
        new = {}
        for n, t in sd.items():
            a = tensors[prefix + n]
            if tuple(a.shape) != tuple(t.shape):
                raise ExportError("%s: tensor %s%s has shape %s, the reference network %s"
                                  % (path, prefix, n, list(a.shape), list(t.shape)))
            new[n] = torch.from_numpy(a).to(t.dtype)
        net.load_state_dict(new, strict=True)
        net.eval()
    return unet, seg


def graph_roi(cfg, tensors):
    """The model's region of interest at the model size (uint8 0/1) when the graph can apply it
    (a fit model: the working size is the model size), else None."""
    roi = tensors.get(MF.ROI_TENSOR)
    if roi is None or cfg["tile_scale"] > 0:
        return None
    h, w = cfg["size"]
    return MF.roi_at(roi, h, w)


def make_graph(cfg, unet, seg, fixed_noise=None, roi=None):
    """The exported module: (image[, eps_s, eps_b]) -> (map, recon, score); roi: the region of
    interest at the model size (uint8 0/1) that zeroes the map before the score, or None."""
    import torch
    import torch.nn as nn
    import model_torch as MT
    infer = MT.make_infer_module(unet, seg, cfg["t_s"], cfg["t_b"], cfg["guide_w"], cfg["T"])
    k = MF.topk(cfg)
    grey = cfg["grey_noise"] == 1

    class Graph(nn.Module):
        def __init__(self):
            super().__init__()
            self.infer = infer
            self.fixed = fixed_noise is not None
            if self.fixed:
                self.register_buffer("eps_s", torch.from_numpy(fixed_noise[0]))
                self.register_buffer("eps_b", torch.from_numpy(fixed_noise[1]))
            self.masked = roi is not None
            if self.masked:
                self.register_buffer("roi", torch.from_numpy(roi.astype(np.float32))[None, None])

        def forward(self, image, *noise):
            eps_s, eps_b = (self.eps_s, self.eps_b) if self.fixed else noise
            if grey:  # one value per pixel for the 3 channels (dd_model_draw_noise)
                eps_s, eps_b = eps_s.expand(-1, 3, -1, -1), eps_b.expand(-1, 3, -1, -1)
            m, recon = self.infer(image, eps_s, eps_b)
            if self.masked:  # the scorer's rule: 0 outside the region of interest, before the top-k
                m = m * self.roi
            score = torch.topk(m.reshape(1, -1), k, dim=1).values.mean(dim=1)
            return m, recon, score

    return Graph().eval()


# ---------------- ONNX metadata without the onnx package: protobuf fields appended ----------------
def _varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num, payload):
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def with_metadata(blob, props, doc):
    """ModelProto bytes with metadata_props (field 14, StringStringEntryProto key 1 / value 2)
    and doc_string (field 6) appended: a protobuf reader merges appended fields, repeated
    ones add up and a later scalar replaces an earlier one."""
    out = bytearray(blob)
    for k, v in props.items():
        out += _field(14, _field(1, k.encode()) + _field(2, v.encode()))
    out += _field(6, doc.encode())
    return bytes(out)


def metadata(cfg, meta, src, fixed, seed, roi=None):
    g = "%.9g"
    h, w = cfg["size"]
    calibrated = cfg["score_hi"] > cfg["score_lo"]
    c = 1 if cfg["grey_noise"] == 1 else 3
    with open(src, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    p = {
        "diffad_export": "1",
        "source": os.path.basename(src),
        "source_sha256": sha,
        "size": "%dx%d" % (h, w),
        "input": "image 1x3x%dx%d float32 RGB 0..1 (8-bit / 255) at the model size" % (h, w),
        "noise": ("fixed: diffad's draw for seed %d (diffad predict --seed %d)" % (seed, seed) if fixed else
                  "inputs eps_s, eps_b 1x%dx%dx%d standard normal%s" % (c, h, w, ", one value per pixel for the 3 channels"
                                                                        if c == 1 else "")),
        "grey_noise": "%d" % cfg["grey_noise"],
        "topk": "%d" % MF.topk(cfg),
        "T": "%d" % cfg["T"], "t_s": "%d" % cfg["t_s"], "t_b": "%d" % cfg["t_b"], "guide_w": g % cfg["guide_w"],
        "calibrated": "1" if calibrated else "0",
        "image_threshold": g % cfg["image_threshold"], "pixel_threshold": g % cfg["pixel_threshold"],
        "score_lo": g % cfg["score_lo"], "score_hi": g % cfg["score_hi"],
        "review_lo": g % cfg["review_lo"], "review_hi": g % cfg["review_hi"],
        "min_area": "%d" % cfg["min_area"],
        "decision": ("uncalibrated model (score_hi <= score_lo): no decision" if not calibrated else
                     "REVIEW if review_lo < review_hi and review_lo < score <= review_hi; else NG if score > "
                     "image_threshold (and, with min_area > 0, a region of map pixels > pixel_threshold, "
                     "8-connected, of at least min_area pixels at the input size); else OK. normalized = "
                     "clamp(0.5 (score - score_lo) / (image_threshold - score_lo), 0, 1)"),
        "tile_scale": g % cfg["tile_scale"], "tile_overlap": g % cfg["tile_overlap"],
        "tiling": ("none: the whole image is resized to the model size" if cfg["tile_scale"] == 0 else
                   "the graph scores one model-size tile; diffad resizes the image by tile_scale, covers it with "
                   "tiles overlapping by tile_overlap, blends the tile maps with a raised-cosine window and takes "
                   "the top-k (k scaled by the area) of the stitched map: not in the graph"),
    }
    if roi is not None:
        p["roi"] = ("%dx%d region of interest (0 = ignored): " % (roi.shape[1], roi.shape[0]) +
                    ("applied in the graph at the model size (the map is 0 outside it before the score)"
                     if cfg["tile_scale"] == 0 else "NOT in the graph (tiled model): the caller must resample it to "
                     "the working image (a pixel is inspected when at least half of it is) and zero the stitched map"))
    if "calibration_scores" in meta:
        p["calibration_images"] = meta["calibration_scores"].split(":", 1)[0]
    return p


def export(src, out, opset, fixed_noise, seed):
    if os.path.exists(out) and os.path.exists(src) and os.path.samefile(src, out):
        raise ExportError("%s: is the model file itself; give another output name" % out)
    cfg, tensors, meta = MF.read_model(src)  # before importing torch: a bad file is told at once
    if cfg.get("map_sigma", 0) > 0:  # the graph has no smoothing step: it would score differently
        raise ExportError("%s: map_sigma %g (the map is smoothed before the score) is not exported; "
                          "set it to 0 first (diffad calibrate --map_sigma 0)" % (src, cfg["map_sigma"]))
    try:
        import torch
    except ImportError:
        raise ExportError("needs PyTorch (Debian: python3-torch; run with /usr/bin/python3)")
    torch.set_num_threads(1)
    unet, seg = load_networks(src, cfg, tensors)
    h, w = cfg["size"]
    grey = cfg["grey_noise"] == 1
    noise = MF.draw_noise(h, w, grey, seed) if fixed_noise else None
    roi = tensors.get(MF.ROI_TENSOR)
    graph = make_graph(cfg, unet, seg, noise, graph_roi(cfg, tensors))
    image = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1))
    c = 1 if grey else 3
    args = (image,) if fixed_noise else (image, torch.randn(1, c, h, w), torch.randn(1, c, h, w))
    names = ["image"] if fixed_noise else ["image", "eps_s", "eps_b"]
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about Python-number constants: by design here
        try:
            torch.onnx.export(graph, args, buf, opset_version=opset, input_names=names,
                              output_names=["map", "recon", "score"], do_constant_folding=True)
        except Exception as e:  # noqa: BLE001  (any exporter failure is reported in one line)
            raise ExportError("%s: torch.onnx.export failed: %s" % (src, str(e).strip().split("\n")[0]))
    props = metadata(cfg, meta, src, fixed_noise, seed, roi)
    doc = ("diffad inference of %s: inputs %s; outputs map, recon, score. See metadata_props and "
           "scripts/export_onnx.py." % (os.path.basename(src), ", ".join(names)))
    blob = with_metadata(buf.getvalue(), props, doc)
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        try:
            onnx.checker.check_model(onnx.load_from_string(blob))
        except Exception as e:  # noqa: BLE001
            raise ExportError("%s: the ONNX checker refused the exported graph: %s" % (out, str(e).split("\n")[0]))
    write_atomic(out, blob)
    return cfg, props, len(blob), onnx is not None


def write_atomic(out, blob):
    if os.path.isdir(out):
        raise ExportError("%s: is a folder" % out)
    MF.CK.write_atomic(out, [blob], ExportError)


def parse_seed(text):
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError("needs a whole number (decimal or 0x...), got '%s'" % text)
    if not 0 <= v < 1 << 64:
        raise argparse.ArgumentTypeError("must be 0 .. 2^64-1, got %s" % text)
    return v


def main(argv):
    ap = argparse.ArgumentParser(prog=PROG, description="\n\n".join(__doc__.split("\n\n", 2)[0::2]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="README 'Other runtimes: ONNX' has an example.")
    ap.add_argument("model", help="diffad model file (.safetensors)")
    ap.add_argument("out", help="ONNX file to write")
    ap.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                    help="ONNX opset, %d..%d (default %d)" % (OPSETS[0], OPSETS[1], DEFAULT_OPSET))
    ap.add_argument("--fixed-noise", action="store_true",
                    help="store the noise diffad's predict draws in the graph (input: image only)")
    ap.add_argument("--seed", type=parse_seed, default=None,
                    help="with --fixed-noise: the noise seed, as `diffad predict --seed` (default 0x5EED)")
    a = ap.parse_args(argv)
    if not OPSETS[0] <= a.opset <= OPSETS[1]:
        ap.error("--opset %d out of range %d..%d" % (a.opset, OPSETS[0], OPSETS[1]))
    if a.seed is not None and not a.fixed_noise:
        ap.error("--seed needs --fixed-noise (without it the noise is an input of the graph)")
    seed = MF.PREDICT_SEED if a.seed is None else a.seed
    try:
        cfg, props, size, checked = export(a.model, a.out, a.opset, a.fixed_noise, seed)
    except (MF.ModelFileError, ExportError) as e:
        sys.stderr.write("%s: %s\n" % (PROG, e))
        return 2
    h, w = cfg["size"]
    c = 1 if cfg["grey_noise"] == 1 else 3
    ins = "image 1x3x%dx%d" % (h, w) + ("" if a.fixed_noise else ", eps_s, eps_b 1x%dx%dx%d" % (c, h, w))
    print("%s: wrote %s (%.1f MiB, opset %d%s): %s -> map 1x1x%dx%d, recon 1x3x%dx%d, score (top-%s mean); "
          "noise %s; %s" % (PROG, a.out, size / 1048576.0, a.opset, ", onnx checker passed" if checked else "",
                            ins, h, w, h, w, props["topk"], "fixed (seed %d)" % seed if a.fixed_noise else "as inputs",
                            "thresholds image %s, pixel %s" % (props["image_threshold"], props["pixel_threshold"])
                            if props["calibrated"] == "1" else "uncalibrated"))
    if cfg["tile_scale"] > 0:
        sys.stderr.write("%s: note: the model tiles images (tile_scale %g): the graph scores one %dx%d tile; cutting "
                         "the tiles, blending their maps and scoring the stitched map are not in it (metadata 'tiling')\n"
                         % (PROG, cfg["tile_scale"], h, w))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
