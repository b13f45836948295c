#!/usr/bin/env python3
"""make_golden.py -- golden whole-network outputs for tests/test-golden.c, computed by an
implementation independent of the C library (NumPy + PyTorch, float64).

Regenerate (from the repository root, after building):

    python3 tests/data/make_golden.py --nf-init build/inference/tools/nf-init

What it writes into tests/data/ (or --out):

  a) golden-<case>.safetensors     a model written by OUR nf-init (F16 weights, seeded),
     golden-<case>-io.safetensors  "input" (1, 3, H, W) and "output" tensors (F32):
        the output of this script's own interpreter of the model's "graph" metadata,
        run with torch.nn.functional in float64 on the F16 weights read from the file.
     Without --nf-init the existing model files are reused and only the *-io files are
     recomputed.
  b) golden-transformernet.safetensors      a state_dict of PyTorch's fast_neural_style
        TransformerNet (the module layout of pytorch/examples,
        fast_neural_style/neural_style/transformer_net.py, re-stated below), torch seed 0,
        instance-norm affine parameters perturbed, stored as F16; with the
        in*.running_mean/var entries that old checkpoints of that example carry (the
        loader must ignore them),
     golden-transformernet-io.safetensors   its forward (the nn.Module itself, not the
        graph interpreter) in float64 on the F16-rounded weights, input 0..255.

Nothing here imports the C library or the safetensors package: the container is parsed
and written with struct/json/numpy.
"""

import argparse
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))

# Case name -> (nf-init arguments, input (H, W), input range). Sizes are multiples of 4
# and not square; widths/blocks are reduced where the default would only add megabytes
# (the default-size style network is covered by the TransformerNet case), and two SR
# cases use channel counts that are not multiples of 8 (blocked-layout edge cases).
CASES = {
    "style-slim": (["--arch", "style-slim", "--seed", "11"], (36, 52), (0.0, 255.0)),
    "style-full": (["--arch", "style-full", "--blocks", "2", "--seed", "12"], (36, 52),
                   (0.0, 255.0)),
    "sr-johnson-x2": (["--arch", "sr-johnson", "--scale", "2", "--width", "32",
                       "--seed", "13"], (20, 28), (0.0, 1.0)),
    "sr-johnson-x4": (["--arch", "sr-johnson", "--scale", "4", "--width", "24",
                       "--blocks", "2", "--seed", "14"], (20, 28), (0.0, 1.0)),
    "sr-subpixel-x2": (["--arch", "sr-subpixel", "--scale", "2", "--width", "32",
                        "--seed", "15"], (20, 28), (0.0, 1.0)),
    "sr-subpixel-x3": (["--arch", "sr-subpixel", "--scale", "3", "--width", "20",
                        "--blocks", "3", "--seed", "16"], (20, 28), (0.0, 1.0)),
    "sr-light-x2": (["--arch", "sr-light", "--scale", "2", "--seed", "17"], (20, 28),
                    (0.0, 1.0)),
    "sr-light-x3": (["--arch", "sr-light", "--scale", "3", "--width", "20", "--blocks",
                     "1", "--seed", "18"], (20, 28), (0.0, 1.0)),
    "sr-light-x4": (["--arch", "sr-light", "--scale", "4", "--seed", "19"], (20, 28),
                    (0.0, 1.0)),
    # luma only: fixed RGB -> Y and dY -> R, G, B 1x1 convs around a one-channel body
    "sr-light-y-x3": (["--arch", "sr-light-y", "--scale", "3", "--blocks", "2", "--seed",
                       "20"], (20, 28), (0.0, 1.0)),
    # the fixed Gaussian input blur (5x5, sigma 1) in front of the real-time style network
    "style-rt-blur": (["--arch", "style-rt", "--input-blur", "1", "--seed", "21"],
                      (36, 52), (0.0, 255.0)),
}

# ---- safetensors, by hand ----------------------------------------------------------

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path):
    """Returns (tensors: name -> float64 numpy array, metadata: dict)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        dt = np.dtype(DTYPES[e["dtype"]]).newbyteorder("<")
        a = np.frombuffer(data[b:end], dtype=dt).reshape(e["shape"])
        tensors[name] = a.astype(np.float64)
    return tensors, meta


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """tensors: name -> numpy array (any float type), stored as dtype, in the given order."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks, off = [], 0
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a, dtype=np.dtype(DTYPES[dtype]).newbyteorder("<"))
        raw = raw.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)           # data section 8-byte aligned, as the format advises
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)


# ---- an interpreter of the graph JSON (format_version 1) -----------------------------
# Op semantics and defaults as documented at the top of inference/nf-graph.h.

def run_graph(graph, tensors, x):
    """graph: parsed JSON; tensors: name -> float64 numpy; x: (N, 3, H, W) float64 torch."""
    def t(name, suffix):
        return torch.from_numpy(tensors[name + "." + suffix])

    vals = {graph["input"]: x}
    for op in graph["ops"]:
        kind = op["op"]
        ins = op["in"] if isinstance(op["in"], list) else [op["in"]]
        a = [vals[i] for i in ins]
        name = op.get("name")
        if kind == "conv2d":
            k = op["k"]
            stride = op.get("stride", 1)
            pad = op.get("pad", "zero")
            p = 0 if pad == "none" else op.get("padding", k // 2)
            w = t(name, "weight")
            b = t(name, "bias") if op.get("bias", True) else None
            assert w.shape == (op["cout"], op["cin"], k, k), (name, w.shape)
            if pad == "reflect" and p > 0:
                y = F.conv2d(F.pad(a[0], (p, p, p, p), mode="reflect"), w, b, stride)
            else:
                y = F.conv2d(a[0], w, b, stride, padding=p)
        elif kind == "conv_transpose2d":
            w = t(name, "weight")
            b = t(name, "bias") if op.get("bias", True) else None
            assert w.shape == (op["cin"], op["cout"], op["k"], op["k"]), (name, w.shape)
            y = F.conv_transpose2d(a[0], w, b, op.get("stride", 1), op.get("padding", 0),
                                   op.get("output_padding", 0))
        elif kind == "instance_norm":
            aff = op.get("affine", True)
            y = F.instance_norm(a[0], weight=t(name, "weight") if aff else None,
                                bias=t(name, "bias") if aff else None,
                                eps=op.get("eps", 1e-5))
        elif kind == "batch_norm":
            y = F.batch_norm(a[0], t(name, "running_mean"), t(name, "running_var"),
                             t(name, "weight"), t(name, "bias"), training=False,
                             eps=op.get("eps", 1e-5))
        elif kind == "relu":
            y = F.relu(a[0])
        elif kind == "add":
            y = a[0]
            for z in a[1:]:
                y = y + z
        elif kind == "concat":
            y = torch.cat(a, dim=1)
        elif kind == "upsample_nearest":
            y = F.interpolate(a[0], scale_factor=op.get("factor", 1), mode="nearest")
        elif kind == "pixel_shuffle":
            y = F.pixel_shuffle(a[0], op.get("factor", 1))
        elif kind == "tanh_scale":
            y = op.get("scale", 1.0) * torch.tanh(a[0]) + op.get("offset", 0.0)
        elif kind == "clamp":
            y = torch.clamp(a[0], op.get("min", 0.0), op.get("max", 255.0))
        elif kind == "avg_pool2d":
            y = F.avg_pool2d(a[0], op["k"], op.get("stride", op["k"]))
        elif kind == "max_pool2d":
            y = F.max_pool2d(a[0], op["k"], op.get("stride", op["k"]))
        else:
            raise ValueError("unknown op " + kind)
        assert op["out"] not in vals, "value produced twice: " + op["out"]
        vals[op["out"]] = y
    return vals[graph["output"]]


def make_graph_case(case, nf_init, out_dir):
    args, (h, w), (lo, hi) = CASES[case]
    model_path = os.path.join(out_dir, "golden-%s.safetensors" % case)
    if nf_init:
        cmd = [nf_init] + args + ["--dtype", "f16", "--name", "golden-" + case,
                                  "-o", model_path]
        subprocess.run(cmd, check=True)
    elif not os.path.exists(model_path):
        sys.exit("%s is missing: give --nf-init PATH to write it" % model_path)
    tensors, meta = read_safetensors(model_path)
    graph = json.loads(meta["graph"])
    scale = int(meta.get("scale", "1"))
    rng = np.random.RandomState(1000 + sorted(CASES).index(case))
    x = rng.uniform(lo, hi, size=(1, 3, h, w))
    x = x.astype(np.float32).astype(np.float64)      # the test feeds F32
    with torch.no_grad():
        y = run_graph(graph, tensors, torch.from_numpy(x)).numpy()
    assert y.shape == (1, 3, h * scale, w * scale), (case, y.shape)
    io_path = os.path.join(out_dir, "golden-%s-io.safetensors" % case)
    write_safetensors(io_path, {"input": x, "output": y}, "F32",
                      {"model": os.path.basename(model_path),
                       "generator": "tests/data/make_golden.py (graph interpreter, float64)"})
    print("%-16s input %s -> output %s, output range %.4g..%.4g" %
          (case, tuple(x.shape), tuple(y.shape), y.min(), y.max()))


# ---- PyTorch fast_neural_style's TransformerNet ---------------------------------------
# The same module tree (so the same state_dict keys) and forward as the pytorch/examples
# fast_neural_style example: reflection-padded convs, affine instance norm, five residual
# blocks, nearest-upsample + conv decoder.

class ConvLayer(torch.nn.Module):
    def __init__(self, cin, cout, kernel_size, stride):
        super().__init__()
        self.reflection_pad = torch.nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = torch.nn.Conv2d(cin, cout, kernel_size, stride)

    def forward(self, x):
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = ConvLayer(c, c, kernel_size=3, stride=1)
        self.in1 = torch.nn.InstanceNorm2d(c, affine=True)
        self.conv2 = ConvLayer(c, c, kernel_size=3, stride=1)
        self.in2 = torch.nn.InstanceNorm2d(c, affine=True)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        y = self.relu(self.in1(self.conv1(x)))
        return self.in2(self.conv2(y)) + x


class UpsampleConvLayer(torch.nn.Module):
    def __init__(self, cin, cout, kernel_size, stride, upsample=None):
        super().__init__()
        self.upsample = upsample
        if upsample:
            self.upsample_layer = torch.nn.Upsample(mode="nearest", scale_factor=upsample)
        self.reflection_pad = torch.nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = torch.nn.Conv2d(cin, cout, kernel_size, stride)

    def forward(self, x):
        if self.upsample:
            x = self.upsample_layer(x)
        return self.conv2d(self.reflection_pad(x))


class TransformerNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = ConvLayer(3, 32, kernel_size=9, stride=1)
        self.in1 = torch.nn.InstanceNorm2d(32, affine=True)
        self.conv2 = ConvLayer(32, 64, kernel_size=3, stride=2)
        self.in2 = torch.nn.InstanceNorm2d(64, affine=True)
        self.conv3 = ConvLayer(64, 128, kernel_size=3, stride=2)
        self.in3 = torch.nn.InstanceNorm2d(128, affine=True)
        self.res1 = ResidualBlock(128)
        self.res2 = ResidualBlock(128)
        self.res3 = ResidualBlock(128)
        self.res4 = ResidualBlock(128)
        self.res5 = ResidualBlock(128)
        self.deconv1 = UpsampleConvLayer(128, 64, kernel_size=3, stride=1, upsample=2)
        self.in4 = torch.nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = UpsampleConvLayer(64, 32, kernel_size=3, stride=1, upsample=2)
        self.in5 = torch.nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, kernel_size=9, stride=1)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


def make_transformernet(out_dir):
    torch.manual_seed(0)
    net = TransformerNet()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, mod in net.named_modules():
            if isinstance(mod, torch.nn.InstanceNorm2d):     # not the 1/0 of a fresh net
                mod.weight.copy_(torch.empty(mod.num_features).uniform_(0.5, 1.5,
                                                                        generator=g))
                mod.bias.copy_(torch.empty(mod.num_features).uniform_(-0.5, 0.5,
                                                                      generator=g))
    sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    # Round the weights through F16 (what the file stores), then run on those.
    sd16 = {k: v.astype(np.float16) for k, v in sd.items()}
    net = net.double()
    net.load_state_dict({k: torch.from_numpy(v.astype(np.float64)) for k, v in sd16.items()})
    net.eval()

    # Old checkpoints of the example also carry instance-norm running statistics, which
    # its stylize() deletes before loading; keep them in the file for the loader to skip.
    stored = dict(sd16)
    rs = np.random.RandomState(3)
    for name, mod in net.named_modules():
        if isinstance(mod, torch.nn.InstanceNorm2d):
            stored[name + ".running_mean"] = rs.uniform(-1, 1, mod.num_features)
            stored[name + ".running_var"] = rs.uniform(0.5, 2, mod.num_features)
    model_path = os.path.join(out_dir, "golden-transformernet.safetensors")
    write_safetensors(model_path, stored, "F16")

    rng = np.random.RandomState(7)
    x = rng.uniform(0, 255, size=(1, 3, 36, 52)).astype(np.float32).astype(np.float64)
    with torch.no_grad():
        y = net(torch.from_numpy(x)).numpy()
    write_safetensors(os.path.join(out_dir, "golden-transformernet-io.safetensors"),
                      {"input": x, "output": y}, "F32",
                      {"model": os.path.basename(model_path),
                       "generator": "tests/data/make_golden.py (TransformerNet module, "
                                    "float64)"})
    n = sum(v.size for v in sd.values())
    print("%-16s %d parameters, input %s -> output %s, output range %.4g..%.4g" %
          ("transformernet", n, tuple(x.shape), tuple(y.shape), y.min(), y.max()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nf-init", help="path of the built nf-init (writes the model files)")
    ap.add_argument("--out", default=HERE, help="output directory (default: tests/data)")
    ap.add_argument("--only", nargs="*", help="cases to make (default: all, and "
                    "transformernet)")
    a = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    cases = a.only if a.only else list(CASES) + ["transformernet"]
    for c in cases:
        if c == "transformernet":
            make_transformernet(a.out)
        elif c in CASES:
            make_graph_case(c, a.nf_init, a.out)
        else:
            sys.exit("unknown case %s (known: %s, transformernet)" % (c, ", ".join(CASES)))


if __name__ == "__main__":
    main()
