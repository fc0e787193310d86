#!/usr/bin/python3
"""Reference metrics for tests/test_metrics.c, computed independently of the C code.

Usage: metrics_ref.py CASE_DIR...   Each CASE_DIR holds (written by the C test):
  images.txt  one line per image: score label type H W [nomask]   (H = W = 0: no map; nomask 1:
              a defective image without pixel truth, left out of the pixel metrics)
  maps.f32    the maps, float32 little-endian, concatenated in image order (if any)
  masks.u8    the masks, one byte per pixel (0/1), same order
and receives ref.txt: one line "set metric value" per set (overall, then each defect type =
good images + that type) and metric; value "nan" when the metric is undefined.

Image / pixel AUROC, AP: scikit-learn roc_auc_score, average_precision_score.
F1-max: max over precision_recall_curve of 2PR/(P+R).
AUPRO: MVTec AD definition, computed per region rather than with the C code's weighted running
sum: regions are scipy.ndimage.label components with an 8-connectivity structure; for every
distinct score t (descending), PRO(t) = mean over regions of the fraction of the region with
score >= t (np.searchsorted on each region's sorted scores) and FPR(t) = fraction of normal pixels
with score >= t; the curve (0,0),...,(1,1) is integrated up to FPR 0.3 as MVTec's trapezoid()
does (linear interpolation at 0.3) and divided by 0.3.
"""
import bisect
import os
import sys

import numpy as np
from scipy.ndimage import label as cc_label
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

LIMIT = 0.3


def f1_max(y, s):
    p, r, _ = precision_recall_curve(y, s)
    den = p + r
    f = np.where(den > 0, 2 * p * r / np.where(den > 0, den, 1), 0.0)
    return float(f.max())


def trapezoid_to(x, y, x_max):
    # As in the MVTec AD evaluation code (generic_util.trapezoid).
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    correction = 0.0
    if x_max not in x:
        ins = bisect.bisect(list(x), x_max)
        assert 0 < ins < len(x)
        y_interp = y[ins - 1] + (y[ins] - y[ins - 1]) * (x_max - x[ins - 1]) / (x[ins] - x[ins - 1])
        correction = 0.5 * (y_interp + y[ins - 1]) * (x_max - x[ins - 1])
    mask = x <= x_max
    x = x[mask]
    y = y[mask]
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])) + correction)


def aupro(maps, masks):
    structure = np.ones((3, 3), dtype=int)
    regions, normals = [], []
    for m, g in zip(maps, masks):
        lab, n = cc_label(g, structure=structure)
        normals.append(m[lab == 0])
        for k in range(1, n + 1):
            regions.append(np.sort(m[lab == k]))
    normals = np.sort(np.concatenate(normals))
    if not regions or len(normals) == 0:
        return float("nan")
    thr = np.unique(np.concatenate([normals] + regions))[::-1]
    fpr = (len(normals) - np.searchsorted(normals, thr, side="left")) / len(normals)
    pro = np.zeros(len(thr))
    for r in regions:
        pro += (len(r) - np.searchsorted(r, thr, side="left")) / len(r)
    pro /= len(regions)
    x = np.concatenate([[0.0], np.clip(fpr, 0, 1), [1.0]])
    y = np.concatenate([[0.0], np.clip(pro, 0, 1), [1.0]])
    return trapezoid_to(x, y, LIMIT) / LIMIT


def metrics(imgs, maps, masks):
    """Image metrics over every image; pixel metrics over the images with pixel truth (not
    nomask): the good images and the defective images that have a mask."""
    out = {}
    y = np.array([i[1] for i in imgs])
    s = np.array([i[0] for i in imgs])
    both = 0 < y.sum() < len(y)
    out["image_auroc"] = roc_auc_score(y, s) if both else float("nan")
    out["image_ap"] = average_precision_score(y, s) if y.sum() > 0 else float("nan")
    out["image_f1max"] = f1_max(y, s) if y.sum() > 0 else float("nan")
    truth = [k for k, i in enumerate(imgs) if not i[5]]
    maps = [maps[k] for k in truth]
    masks = [masks[k] for k in truth]
    if maps and all(m is not None for m in maps):
        ps = np.concatenate([m.ravel() for m in maps]).astype(np.float64)
        py = np.concatenate([(g > 0).ravel() for g in masks]).astype(int)
        pboth = 0 < py.sum() < len(py)
        out["pixel_auroc"] = roc_auc_score(py, ps) if pboth else float("nan")
        out["pixel_ap"] = average_precision_score(py, ps) if py.sum() > 0 else float("nan")
        out["pixel_f1max"] = f1_max(py, ps) if py.sum() > 0 else float("nan")
        out["aupro"] = aupro(maps, masks)
    else:
        for k in ("pixel_auroc", "pixel_ap", "pixel_f1max", "aupro"):
            out[k] = float("nan")
    return out


def run_case(d):
    imgs = []
    with open(os.path.join(d, "images.txt")) as f:
        for line in f:
            sc, lb, ty, h, w, *nomask = line.split()
            imgs.append((float(sc), int(lb), ty, int(h), int(w), bool(nomask and int(nomask[0]))))
    maps, masks = [], []
    mp = os.path.join(d, "maps.f32")
    if os.path.exists(mp):
        allm = np.fromfile(mp, dtype="<f4")
        allg = np.fromfile(os.path.join(d, "masks.u8"), dtype=np.uint8)
        off = 0
        for _, _, _, h, w, _ in imgs:
            maps.append(allm[off:off + h * w].reshape(h, w))
            masks.append(allg[off:off + h * w].reshape(h, w))
            off += h * w
    else:
        maps = masks = [None] * len(imgs)
    types = sorted({i[2] for i in imgs if i[1] == 1})
    sets = [("overall", list(range(len(imgs))))]
    for t in types:
        sets.append((t, [k for k, i in enumerate(imgs) if i[1] == 0 or i[2] == t]))
    with open(os.path.join(d, "ref.txt"), "w") as f:
        for name, idx in sets:
            res = metrics([imgs[k] for k in idx], [maps[k] for k in idx], [masks[k] for k in idx])
            for k, v in res.items():
                f.write("%s %s %.17g\n" % (name, k, v))


if __name__ == "__main__":
    for d in sys.argv[1:]:
        run_case(d)
