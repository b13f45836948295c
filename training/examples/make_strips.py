#!/usr/bin/env python3
"""Makes the README's progress strips from nf-optimize's --every images.

Documentation only (needs Pillow); the build and tests never run it. For each run named
on the command line (e.g. content-relu2_2), places OUT-iterNNNN.png thumbnails for the
listed iterations side by side in OUT-progress.jpg, then deletes the full-size
intermediate images (they are not committed).
usage: make_strips.py DIR RUN[,RUN...] ITER[,ITER...] [THUMB_WIDTH]
"""
import glob
import os
import sys

from PIL import Image, ImageDraw


def main():
    d, runs, iters = sys.argv[1], sys.argv[2].split(","), [int(i) for i in sys.argv[3].split(",")]
    tw = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    for run in runs:
        thumbs = []
        for it in iters:
            im = Image.open(os.path.join(d, f"{run}-iter{it:04d}.png")).convert("RGB")
            th = im.resize((tw, round(im.height * tw / im.width)), Image.LANCZOS)
            ImageDraw.Draw(th).text((4, 2), f"iter {it}", fill=(255, 255, 255))
            thumbs.append(th)
        strip = Image.new("RGB", (tw * len(thumbs) + 4 * (len(thumbs) - 1), thumbs[0].height),
                          (255, 255, 255))
        for i, th in enumerate(thumbs):
            strip.paste(th, (i * (tw + 4), 0))
        strip.save(os.path.join(d, f"{run}-progress.jpg"), quality=88)
        for f in glob.glob(os.path.join(d, f"{run}-iter*.png")):
            os.remove(f)


if __name__ == "__main__":
    main()
