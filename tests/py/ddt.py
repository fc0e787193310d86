"""Writes the named-tensor dump format read by tests/tensorfile.h."""
import struct

import numpy as np


def write(path, tensors):
    """tensors: list of (name, array-like); arrays are stored as float32."""
    with open(path, "wb") as f:
        f.write(b"DDT1")
        f.write(struct.pack("<I", len(tensors)))
        for name, t in tensors:
            a = np.ascontiguousarray(np.asarray(t, dtype=np.float32))
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<I", a.ndim))
            f.write(struct.pack("<%dq" % a.ndim, *a.shape))
            f.write(a.astype("<f4").tobytes())
