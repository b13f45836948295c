#!/usr/bin/env python3
"""make_multi_init.py — the start of a multi-style (style-rt-multi) run from a trained
single-style style-rt network.

  make_multi_init.py TRAINED.safetensors SEEDED.safetensors OUT.safetensors

Writes OUT with TRAINED's convolutions (same names and shapes in both architectures) and,
for every conditional instance norm of SEEDED (tensors of shape (styles, c)), TRAINED's
instance-norm row (c) copied to every style: all styles start from the trained
network, and training moves each style's scale and shift (and the shared convolutions)
towards its own painting. SEEDED's metadata (graph, style names) is kept. SEEDED comes
from a one-step nf-train run of the multi-style recipe (its model.safetensors).
How style-rt-multi8's run started (its card): TRAINED = weights/style-rt-starry-night.
Standard library only; documentation tool, the build and the tests never need it.
"""
import json
import struct
import sys

from make_sr_init_for_scale import read     # (header, data) of a safetensors file


def main(trained, seeded, out):
    ht, dt = read(trained)
    hs, ds = read(seeded)
    header, blobs, off = {}, [], 0
    for k in sorted(x for x in hs if x != "__metadata__"):
        shape = hs[k]["shape"]
        if k not in ht or ht[k]["dtype"] != "F32" or hs[k]["dtype"] != "F32":
            sys.exit(f"{k}: not an F32 tensor of both files")
        a, b = ht[k]["data_offsets"]
        blob = dt[a:b]
        if ht[k]["shape"] == shape:
            pass
        elif len(shape) == 2 and ht[k]["shape"] == shape[1:]:
            blob = blob * shape[0]      # the single style's row for every style
            print(f"{k}: {ht[k]['shape']} -> {shape}")
        else:
            sys.exit(f"{k}: {ht[k]['shape']} in {trained}, {shape} in {seeded}")
        header[k] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    header["__metadata__"] = hs["__metadata__"]
    hb = json.dumps(header).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
