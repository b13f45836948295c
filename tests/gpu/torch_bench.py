#!/usr/bin/env python3
"""torch_bench.py -- the shipped architectures re-stated in PyTorch, loading our
safetensors files, to time them against the CUDA backend (and to prove they are the
same networks).

    torch_bench.py bench  --models DIR --json OUT [--sizes 1280x720,...] [--iters N]
    torch_bench.py verify --models DIR --nf-run PATH [--work DIR] [--golden DIR]

The models are the files `gpu-bench --save-models DIR` writes (seeded weights, F32,
metadata "arch" and "scale"). The modules follow inference/nf-arch.c layer by layer,
with its tensor names:

  style-full / style-slim  TransformerNet layout: conv1 9x9 (reflect) in1 relu, conv2
      3x3/2 in2 relu, conv3 3x3/2 in3 relu, resN (conv1 in1 relu conv2 in2, + input),
      nearest x2, deconv1 3x3 in4 relu, nearest x2, deconv2 3x3 in5 relu, deconv3 9x9;
      input/output 0..255; instance norm affine, eps 1e-5.
  sr-johnson  conv1 9x9 (no bias) bn1 relu, resN (conv1 bn1 relu conv2 bn2, + input),
      upN: ConvTranspose2d 3x3/2 p1 op1 (no bias) upN.bn relu (log2 scale times),
      conv_out 9x9, 0.5 * tanh + 0.5; input/output 0..1; batch norm in eval mode.
  sr-subpixel conv1 3x3 (head), resN (conv1 relu conv2, + input), conv2, + head,
      conv_up to 3*s*s, pixel shuffle s, clamp 0..1; input/output 0..1.
Every convolution pads by k/2 with reflection (PyTorch's 'reflect' is ours).

bench: fp16, channels_last, torch.backends.cudnn.benchmark on, inference mode, on the
GPU: median ms per frame at the sizes gpu-bench uses (style networks take the frame
size as input; SR networks the input that makes the OUTPUT the frame size, 1080p and
up). Writes JSON for run.sh's table.
verify (CPU is enough): proves the PyTorch side runs the same architectures, twice:
  1. float: every golden model of tests/data (written by nf-init, with inputs and
     outputs from make_golden.py's independent graph interpreter in float64, which
     test-golden holds the C engine to) through these modules in float64: normalised
     error below 1e-6 (the stored outputs are float32);
  2. end to end: every model of --models, its last convolution scaled so the output
     spreads over the whole 8-bit range (seeded weights alone give near-constant
     images), on a deterministic test image through nf-run (the C engine) and through
     these modules; the 8-bit outputs must agree within 1 level (float32 vs float64).

Needs numpy and torch only (safetensors and PNG are read and written here).
"""

import argparse
import json
import os
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- safetensors -----------------------------------------------------------------

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def load_safetensors(path):
    """-> (tensors {name: np.ndarray float32}, metadata {str: str})"""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + hlen
    tensors = {}
    for name, info in header.items():
        dt = info["dtype"]
        a, b = info["data_offsets"]
        if dt == "BF16":
            u = np.frombuffer(raw[base + a:base + b], dtype=np.uint16).astype(np.uint32) << 16
            arr = u.view(np.float32)
        elif dt in DTYPES:
            arr = np.frombuffer(raw[base + a:base + b], dtype=DTYPES[dt])
        else:
            raise ValueError(f"{path}: {name}: dtype {dt} not handled")
        tensors[name] = arr.astype(np.float32).reshape(info["shape"])
    return tensors, meta


# ---- the architectures -----------------------------------------------------------


def conv(cin, cout, k, stride=1, bias=True):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, padding_mode="reflect",
                     bias=bias)


class ResStyle(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.in1 = conv(c, c, 3), nn.InstanceNorm2d(c, affine=True)
        self.conv2, self.in2 = conv(c, c, 3), nn.InstanceNorm2d(c, affine=True)

    def forward(self, x):
        r = F.relu(self.in1(self.conv1(x)))
        return x + self.in2(self.conv2(r))


class StyleNet(nn.Module):
    def __init__(self, w, n_res):
        super().__init__()
        self.conv1, self.in1 = conv(3, w, 9), nn.InstanceNorm2d(w, affine=True)
        self.conv2, self.in2 = conv(w, 2 * w, 3, 2), nn.InstanceNorm2d(2 * w, affine=True)
        self.conv3, self.in3 = conv(2 * w, 4 * w, 3, 2), nn.InstanceNorm2d(4 * w, affine=True)
        for i in range(1, n_res + 1):
            setattr(self, f"res{i}", ResStyle(4 * w))
        self.n_res = n_res
        self.deconv1, self.in4 = conv(4 * w, 2 * w, 3), nn.InstanceNorm2d(2 * w, affine=True)
        self.deconv2, self.in5 = conv(2 * w, w, 3), nn.InstanceNorm2d(w, affine=True)
        self.deconv3 = conv(w, 3, 9)

    def forward(self, x):
        x = F.relu(self.in1(self.conv1(x)))
        x = F.relu(self.in2(self.conv2(x)))
        x = F.relu(self.in3(self.conv3(x)))
        for i in range(1, self.n_res + 1):
            x = getattr(self, f"res{i}")(x)
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.relu(self.in4(self.deconv1(x)))
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.relu(self.in5(self.deconv2(x)))
        return self.deconv3(x)


class ResJohnson(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = conv(c, c, 3, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = conv(c, c, 3, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        r = F.relu(self.bn1(self.conv1(x)))
        return x + self.bn2(self.conv2(r))


class UpJohnson(nn.Module):
    """Registered as upN (the transposed conv's weight is 'upN.weight') with its
    batch norm as upN.bn."""

    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(c, c, 3, 3))
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.conv_transpose2d(x, self.weight, stride=2, padding=1, output_padding=1)
        return F.relu(self.bn(y))


class SRJohnson(nn.Module):
    def __init__(self, scale, w, n_res):
        super().__init__()
        self.conv1, self.bn1 = conv(3, w, 9, bias=False), nn.BatchNorm2d(w)
        for i in range(1, n_res + 1):
            setattr(self, f"res{i}", ResJohnson(w))
        self.n_res = n_res
        self.n_up = int(round(np.log2(scale)))
        for i in range(1, self.n_up + 1):
            setattr(self, f"up{i}", UpJohnson(w))
        self.conv_out = conv(w, 3, 9)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for i in range(1, self.n_res + 1):
            x = getattr(self, f"res{i}")(x)
        for i in range(1, self.n_up + 1):
            x = getattr(self, f"up{i}")(x)
        return 0.5 * torch.tanh(self.conv_out(x)) + 0.5


class ResSub(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.conv2 = conv(c, c, 3), conv(c, c, 3)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


class SRSubpixel(nn.Module):
    def __init__(self, scale, w, n_res):
        super().__init__()
        self.conv1 = conv(3, w, 3)
        for i in range(1, n_res + 1):
            setattr(self, f"res{i}", ResSub(w))
        self.n_res = n_res
        self.conv2 = conv(w, w, 3)
        self.conv_up = conv(w, 3 * scale * scale, 3)
        self.scale = scale

    def forward(self, x):
        head = self.conv1(x)
        v = head
        for i in range(1, self.n_res + 1):
            v = getattr(self, f"res{i}")(v)
        v = head + self.conv2(v)
        return torch.clamp(F.pixel_shuffle(self.conv_up(v), self.scale), 0.0, 1.0)


def build(path):
    """-> (module with our weights loaded, metadata, input range (lo, hi))"""
    t, meta = load_safetensors(path)
    arch = meta.get("arch", "")
    n_res = sum(1 for k in t if k.startswith("res") and k.endswith(".conv1.weight"))
    if arch in ("style-full", "style-slim"):
        net, rng = StyleNet(t["conv1.weight"].shape[0], n_res), (0.0, 255.0)
    elif arch == "sr-johnson":
        net, rng = SRJohnson(int(meta["scale"]), t["conv1.weight"].shape[0], n_res), (0.0, 1.0)
    elif arch == "sr-subpixel":
        net, rng = SRSubpixel(int(meta["scale"]), t["conv1.weight"].shape[0], n_res), (0.0, 1.0)
    else:
        raise ValueError(f"{path}: unknown arch {arch!r}")
    state = net.state_dict()
    missing = [k for k in state if k not in t and not k.endswith("num_batches_tracked")]
    extra = [k for k in t if k not in state]
    if missing or extra:
        raise ValueError(f"{path}: tensors missing {missing[:5]}, unexpected {extra[:5]}")
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in t.items()}, strict=False)
    return net.eval(), meta, rng


def save_safetensors(path, tensors, meta):
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# Output spreading for the 8-bit check: (last conv, weight gain, bias offset).
SPREAD = {"style-full": ("deconv3", 100.0, 128.0), "style-slim": ("deconv3", 100.0, 128.0),
          "sr-subpixel": ("conv_up", 4.0, 0.5), "sr-johnson": ("conv_out", 8.0, 0.0)}


# ---- PNG (8-bit RGB), enough for nf-run's inputs and outputs ---------------------------


def write_png(path, rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xffffffff))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def read_png(path):
    data = open(path, "rb").read()
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if tag == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            if depth != 8 or ctype not in (2, 6):
                raise ValueError(f"{path}: only 8-bit RGB/RGBA PNG is read here")
            ch = 3 if ctype == 2 else 4
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8)
    stride = w * ch
    out = np.zeros((h, stride), dtype=np.int32)
    for y in range(h):
        ft, line = raw[y * (stride + 1)], raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)].astype(np.int32)
        prev = out[y - 1] if y else np.zeros(stride, dtype=np.int32)
        cur = np.zeros(stride, dtype=np.int32)
        for x in range(stride):
            a = cur[x - ch] if x >= ch else 0
            b = prev[x]
            c = prev[x - ch] if x >= ch else 0
            if ft == 0:
                p = 0
            elif ft == 1:
                p = a
            elif ft == 2:
                p = b
            elif ft == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + p) & 0xff
        out[y] = cur
    return out.reshape(h, w, ch)[:, :, :3].astype(np.uint8)


def to_u8(y, lo, hi):
    """nf-image.c's to_u8: (v - lo) * 255 / (hi - lo) + 0.5, truncated, clamped."""
    x = (y - lo) * (255.0 / (hi - lo)) + 0.5
    return np.clip(np.floor(x), 0, 255).astype(np.uint8)


# ---- modes --------------------------------------------------------------------------------


def models_in(d):
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".safetensors"))


def verify_golden(golden_dir):
    """Check 1: our modules vs the golden float64 outputs. -> number of failures"""
    failed = 0
    for f in sorted(os.listdir(golden_dir)):
        if not f.startswith("golden-") or f.endswith("-io.safetensors") \
                or "transformernet" in f or not f.endswith(".safetensors"):
            continue
        name = f[:-len(".safetensors")]
        net, meta, _ = build(os.path.join(golden_dir, f))
        io, _ = load_safetensors(os.path.join(golden_dir, name + "-io.safetensors"))
        y = net.double()(torch.from_numpy(io["input"].astype(np.float64))).numpy()
        ref = io["output"].astype(np.float64)
        err = np.abs(y - ref).max() / (np.abs(ref).max() + 1e-6) if y.shape == ref.shape else np.inf
        ok = err < 1e-6
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} golden {name[7:]:16s} {tuple(ref.shape)}: normalised "
              f"error vs make_golden.py {err:.2e}")
    return failed


def verify(args):
    torch.set_grad_enabled(False)
    failed = verify_golden(args.golden)
    work = args.work or os.path.join(args.models, "verify")
    os.makedirs(work, exist_ok=True)
    h, w = 44, 60                # multiples of 4: nf-run pads nothing
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(7)
    img = np.stack([(xx * 4) % 256, (yy * 5) % 256, (xx * yy) % 256], -1)
    img = np.clip(img + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
    in_png = os.path.join(work, "input.png")
    write_png(in_png, img)
    assert np.array_equal(read_png(in_png), img), "PNG round trip"
    for path in models_in(args.models):
        name = os.path.basename(path)[:-len(".safetensors")]
        t, meta = load_safetensors(path)
        layer, gain, off = SPREAD[meta["arch"]]
        t[layer + ".weight"] = t[layer + ".weight"] * gain
        t[layer + ".bias"] = t[layer + ".bias"] + off
        spread = os.path.join(work, name + "-spread.safetensors")
        save_safetensors(spread, t, meta)
        net, meta, (lo, hi) = build(spread)
        out_png = os.path.join(work, name + "-nf.png")
        subprocess.run([args.nf_run, "-m", spread, "-i", in_png, "-o", out_png, "--backend",
                        args.backend], check=True, stdout=subprocess.DEVNULL)
        nf = read_png(out_png).astype(np.int32)
        x = torch.from_numpy(img.astype(np.float64).transpose(2, 0, 1)[None] * ((hi - lo) / 255.0) + lo)
        y = net.double()(x)[0].numpy().transpose(1, 2, 0)
        ours = to_u8(y, lo, hi).astype(np.int32)
        if ours.shape != nf.shape:
            print(f"FAIL {name}: torch {ours.shape} vs nf-run {nf.shape}")
            failed += 1
            continue
        d = np.abs(ours - nf)
        ok = d.max() <= 1
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} nf-run {name:16s} {w}x{h} -> {nf.shape[1]}x{nf.shape[0]}: "
              f"max |torch - nf-run| = {d.max()} level(s), {np.count_nonzero(d)} of {d.size} "
              f"bytes differ; output levels {ours.min()}..{ours.max()}, std {ours.std():.0f}")
    print(f"{failed} check(s) failed" if failed else "PyTorch and the C engine agree on every model")
    return 1 if failed else 0


def bench(args):
    if not torch.cuda.is_available():
        print("SKIP: torch sees no CUDA device")
        return 77
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    torch.set_grad_enabled(False)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    results = []
    print(f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, "
          f"{torch.cuda.get_device_name(0)}")
    for path in models_in(args.models):
        name = os.path.basename(path)[:-len(".safetensors")]
        net, meta, (lo, hi) = build(path)
        net = net.to(dev).half().to(memory_format=torch.channels_last)
        s = int(meta.get("scale", "1") or 1)
        for fw, fh in sizes:
            if s > 1 and (fw < 1920 or fh < 1080):
                continue
            x = (torch.rand(1, 3, fh // s, fw // s, device=dev) * (hi - lo) + lo).half()
            x = x.contiguous(memory_format=torch.channels_last)
            try:
                for _ in range(3):
                    y = net(x)
                torch.cuda.synchronize()
                ts = []
                for _ in range(args.iters):
                    t0 = time.perf_counter()
                    y = net(x)
                    torch.cuda.synchronize()
                    ts.append((time.perf_counter() - t0) * 1000.0)
            except torch.cuda.OutOfMemoryError:
                print(f"{name:15s} fp16 {fw // s}x{fh // s}: out of memory")
                torch.cuda.empty_cache()
                continue
            ts.sort()
            med = ts[len(ts) // 2]
            print(f"{name:15s} torch fp16 {fw // s:4d}x{fh // s:<4d} -> {y.shape[3]:4d}x{y.shape[2]:<4d} "
                  f"{med:8.2f} ms (min {ts[0]:7.2f})")
            sys.stdout.flush()
            results.append({"net": name, "precision": "fp16", "in": [fw // s, fh // s],
                            "out": [int(y.shape[3]), int(y.shape[2])], "ms": med, "min_ms": ts[0]})
        del net
        torch.cuda.empty_cache()
    with open(args.json, "w") as f:
        json.dump(results, f, indent=1)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--models", required=True)
    b.add_argument("--json", required=True)
    b.add_argument("--sizes", default="1280x720,1920x1080,3840x2160")
    b.add_argument("--iters", type=int, default=20)
    v = sub.add_parser("verify")
    v.add_argument("--models", required=True)
    v.add_argument("--nf-run", required=True)
    v.add_argument("--backend", default="cpu")
    v.add_argument("--golden", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    "..", "data"))
    v.add_argument("--work")
    args = p.parse_args()
    return bench(args) if args.mode == "bench" else verify(args)


if __name__ == "__main__":
    sys.exit(main())
