#!/usr/bin/env python3
"""Reference values for tests/test-train-metrics.c, computed independently of the C code.

SSIM/PSNR on Y: a direct 2-D implementation of Wang et al.'s ssim_index.m in numpy (the
11x11 window built as fspecial('gaussian', 11, 1.5) does it, slid over every valid
position), Y from MATLAB's rgb2ycbcr formula in float.
Resampling: Pillow's float ("F") resize with BICUBIC (Keys a = -0.5) and LANCZOS
(support 3), which use the same half-pixel centres and antialiasing as MATLAB's imresize;
Pillow renormalises the weights at the borders where MATLAB mirrors, so only pixels whose
taps stay inside the image are compared (the C test checks that mask itself).

The inputs are closed-form (the C test builds the same float32 values):
  img(c, y, x) = 127.5 + 100 sin(0.37 x + 0.23 y + c) cos(0.11 x - 0.19 y + 0.5 c)
  pert(c, y, x) = 12 sin(1.3 x + 0.7 y + 2 c) + 6 cos(0.9 y - 0.4 x)
Run:  python3 tests/data/train-metrics-ref.py > tests/data/train-metrics-ref.txt
"""
import numpy as np
from PIL import Image


def img(c, h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((c, h, w), np.float32)
    for k in range(c):
        out[k] = 127.5 + 100.0 * np.sin(0.37 * x + 0.23 * y + k) * np.cos(0.11 * x - 0.19 * y + 0.5 * k)
    return out


def pert(c, h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((c, h, w), np.float32)
    for k in range(c):
        out[k] = 12.0 * np.sin(1.3 * x + 0.7 * y + 2 * k) + 6.0 * np.cos(0.9 * y - 0.4 * x)
    return out


def luma(rgb):
    rgb = rgb.astype(np.float64)
    return 16.0 + (65.481 * rgb[0] + 128.553 * rgb[1] + 24.966 * rgb[2]) / 255.0


def ssim(a, b, L=255.0):
    r = np.arange(11) - 5.0
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5 ** 2))
    g /= g.sum()
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    h, w = a.shape
    vals = []
    for y in range(h - 10):
        for x in range(w - 10):
            pa, pb = a[y:y + 11, x:x + 11], b[y:y + 11, x:x + 11]
            mu1, mu2 = (g * pa).sum(), (g * pb).sum()
            s1 = (g * pa * pa).sum() - mu1 ** 2
            s2 = (g * pb * pb).sum() - mu2 ** 2
            s12 = (g * pa * pb).sum() - mu1 * mu2
            vals.append(((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s1 + s2 + c2)))
    return float(np.mean(vals))


def main():
    h, w, shave = 29, 23, 2
    a = img(3, h, w)
    b = np.clip(a + pert(3, h, w), 0, 255).astype(np.float32)
    ya, yb = luma(a)[shave:h - shave, shave:w - shave], luma(b)[shave:h - shave, shave:w - shave]
    mse = np.mean((ya - yb) ** 2)
    print("psnr_y %.10f" % (10 * np.log10(255.0 ** 2 / mse)))
    print("ssim_y %.10f" % ssim(ya, yb))
    # resampling of one 36x40 plane: down by 4 (10x9), 3 (13x12) and 2 (20x18) - the
    # shipped SR scales' degradations - and of a 9x10 plane up by 3
    big = img(1, 36, 40)[0]
    small = img(1, 9, 10)[0]
    for name, filt in (("bicubic", Image.BICUBIC), ("lanczos3", Image.LANCZOS)):
        for s in (4, 3, 2):
            d = np.asarray(Image.fromarray(big, mode="F").resize((40 // s, 36 // s), filt))
            print("down%d %s %s" % (s, name, " ".join("%.6f" % v for v in d.ravel())))
        u = np.asarray(Image.fromarray(small, mode="F").resize((30, 27), filt))
        print("up3 %s %s" % (name, " ".join("%.6f" % v for v in u.ravel())))


main()
