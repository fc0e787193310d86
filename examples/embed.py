#!/usr/bin/env python3
"""embed.py — scoring images from Python through the diffad binding (python/diffad.py).

    embed.py MODEL                       score a synthetic gradient image
    embed.py MODEL IMAGE [IMAGE...]      score PNG / PGM / PPM / .npy files (any format PIL
                                         reads, when PIL is installed)

Options: --threads N (default 0: all cores), --seed S, --lib PATH (libdiffad.so).
Run from the source tree after `make` (DIFFAD_LIB=build/libdiffad.so if it is elsewhere), or
after `make install` with PYTHONPATH=PREFIX/share/diffad/python. Needs numpy.
Prints one line per image; exit status 0 all OK (or uncalibrated), 1 any NG, 2 an error.
"""
import argparse
import os
import struct
import sys
import zlib

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
if os.path.exists(os.path.join(here, "..", "python", "diffad.py")):  # the source tree, or share/diffad
    sys.path.insert(0, os.path.join(here, "..", "python"))
import diffad  # noqa: E402


def read_png(data):
    """A small PNG decoder (8/16-bit, non-interlaced, grey/RGB/palette, alpha dropped):
    uint8 (H,W) or (H,W,3), or float32 0..1 for 16-bit files."""
    pos, idat, plte = 8, [], None
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            plte = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    spp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    if interlace or depth not in (8, 16) or (ctype == 3 and depth != 8):
        raise ValueError("PNG: interlaced or %d-bit (install PIL for these)" % depth)
    bpp = spp * depth // 8
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(h, 1 + w * bpp)
    out = np.zeros((h, w * bpp), np.uint8)
    prev = np.zeros(w * bpp, np.uint8)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:]
        if f in (0, 2):
            cur = line + prev if f == 2 else line.copy()
        elif f == 1:  # Sub: a running sum per byte position, mod 256
            cur = np.cumsum(line.reshape(w, bpp), axis=0, dtype=np.uint8).reshape(-1)
        elif f in (3, 4):  # Average and Paeth depend on the byte to the left: byte by byte
            cur, b = bytearray(line.tobytes()), prev.tolist()
            for i in range(w * bpp):
                left = cur[i - bpp] if i >= bpp else 0
                if f == 3:
                    cur[i] = (cur[i] + ((left + b[i]) >> 1)) & 255
                else:
                    c = b[i - bpp] if i >= bpp else 0
                    p = left + b[i] - c
                    pa, pb, pc = abs(p - left), abs(p - b[i]), abs(p - c)
                    pred = left if pa <= pb and pa <= pc else (b[i] if pb <= pc else c)
                    cur[i] = (cur[i] + pred) & 255
            cur = np.frombuffer(bytes(cur), np.uint8)
        else:
            raise ValueError("PNG: bad filter type %d in row %d" % (f, y))
        out[y] = cur
        prev = out[y]
    if depth == 16:
        hi_lo = out.reshape(h, w, spp, 2).astype(np.uint16)
        px = (hi_lo[..., 0] << 8 | hi_lo[..., 1]).astype(np.float32) / np.float32(65535)
    else:
        px = out.reshape(h, w, spp)
    if ctype == 3:
        return plte[px[..., 0]]
    if spp in (2, 4):
        px = px[..., :spp - 1]  # drop alpha
    return px[..., 0] if px.shape[2] == 1 else px


def read_pnm(data):
    """Binary PGM (P5) / PPM (P6), 8-bit."""
    tok, pos = [], 2
    while len(tok) < 3:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        tok.append(int(data[pos:end]))
        pos = end
    w, h, maxv = tok
    if maxv > 255:
        raise ValueError("PNM: 16-bit (install PIL for these)")
    c = 3 if data[:2] == b"P6" else 1
    px = np.frombuffer(data[pos + 1:pos + 1 + w * h * c], np.uint8).reshape(h, w, c)
    return px[..., 0] if c == 1 else px


def read_image(path):
    if path.endswith(".npy"):
        return np.load(path)
    try:
        from PIL import Image
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except ImportError:
        pass
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return read_png(data)
    if data[:2] in (b"P5", b"P6"):
        return read_pnm(data)
    raise ValueError("not a PNG, PGM or PPM file (install PIL for other formats)")


def gradient():
    """A left-to-right grey ramp with a bright square, as examples/embed.c."""
    ramp = (np.arange(256) * 255 // 255).astype(np.uint8)
    img = np.repeat(np.tile(ramp, (192, 1))[..., None], 3, axis=2)
    img[61:90, 151:180] = 255
    return img


def main():
    ap = argparse.ArgumentParser(description="Score images with a diffad model.")
    ap.add_argument("model")
    ap.add_argument("images", nargs="*")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--lib", default=None, help="path of libdiffad.so")
    a = ap.parse_intermixed_args()
    status = 0
    try:
        with diffad.Model(a.model, threads=a.threads, seed=a.seed, lib=a.lib) as m:
            h, w = m.model_size
            t = m.thresholds
            print("model %dx%d, %s, context memory %.1f MiB" % (h, w, "calibrated" if t.calibrated else "uncalibrated",
                                                                m.memory / 1048576.0))
            for path in a.images or [None]:
                try:
                    img = gradient() if path is None else read_image(path)
                    r = m.predict(img)
                except (OSError, ValueError, KeyError, diffad.DiffadError) as e:
                    print("%s: error: %s" % (path, e), file=sys.stderr)
                    status = 2
                    continue
                print("%s: score %.9g normalized %.4f threshold %.6f -> %s (map %dx%d, peak %.4f, %d regions; %.1f ms)" % (
                    path or "gradient", r.score, r.normalized, r.threshold, r.decision, r.map.shape[1],
                    r.map.shape[0], float(r.map.max()), r.regions_found, sum(r.ms.values())))
                for g in r.regions[:3]:  # the largest peaks first
                    print("  region at %d,%d size %dx%d, %d px, peak %.4f" % (g.x, g.y, g.width, g.height, g.area, g.peak))
                if r.is_ng and status == 0:
                    status = 1
    except diffad.DiffadError as e:
        print("embed.py: %s" % e, file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
