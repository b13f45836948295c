#!/usr/bin/env python3
"""make_sr_init_for_scale.py — the start of a new-scale sr-subpixel run from a trained one.

  make_sr_init_for_scale.py TRAINED.safetensors SEEDED.safetensors OUT.safetensors

Writes OUT with every tensor of TRAINED whose name and shape SEEDED also has (the body),
and SEEDED's tensors elsewhere (the last convolution, whose output channels depend on the
scale), with SEEDED's metadata. SEEDED comes from `nf-init --arch sr-subpixel --scale S`.
How sr-subpixel-x3's run started (its card): TRAINED = the x2 file of commit e4af471,
SEEDED = `build/inference/tools/nf-init --arch sr-subpixel --scale 3 --seed 1 -o ...`.
Standard library only; documentation tool, the build and the tests never need it.
"""
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)), f.read()


def main(trained, seeded, out):
    ht, dt = read(trained)
    hs, ds = read(seeded)
    header, blobs, off = {}, [], 0
    for k in sorted(x for x in hs if x != "__metadata__"):
        use_trained = k in ht and ht[k]["shape"] == hs[k]["shape"]
        h, d = (ht, dt) if use_trained else (hs, ds)
        if not use_trained:
            print(f"seeded: {k} {hs[k]['shape']}")
        a, b = h[k]["data_offsets"]
        header[k] = {"dtype": h[k]["dtype"], "shape": h[k]["shape"],
                     "data_offsets": [off, off + (b - a)]}
        blobs.append(d[a:b])
        off += b - a
    header["__metadata__"] = hs["__metadata__"]
    hb = json.dumps(header).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
