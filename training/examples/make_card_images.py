#!/usr/bin/env python3
"""make_card_images.py — the pictures of a weights/ card (documentation only; Pillow).

  style:  make_card_images.py style NAME RUN_DIR
      runs build/inference/tools/nf-run with weights/NAME.safetensors on
      gst/samples/chelsea.jpg (not a training photo) and writes weights/NAME-example.jpg
      (input | output), and weights/NAME-preview.jpg from the run's last preview image
      (held-out photos | outputs).
  sr:     make_card_images.py sr NAME SCALE
      takes a 320x240 crop of ../shared/data/photos/opencv_butterfly.jpg (a Debian photo,
      not in the SR training set), degrades it with the standard protocol (plain
      antialiased bicubic down by SCALE; CARD_DEGRADE=blur for Johnson's Gaussian sigma 1
      first), runs the model, and writes weights/NAME-example.jpg:
      input (nearest) | bicubic | the model | original.

  style-card NAME RUN_DIR "TITLE" STYLE_COPY "NOTE"
      writes weights/NAME.md from the run's log (RUN_DIR/../BASENAME.out as the training
      queue writes it, the command in RUN_DIR/command.txt or RUN_DIR/../cmds/cmd-BASENAME.txt: data line, final losses, time) and a fresh
      `nf-evaluate style` of weights/NAME.safetensors; NOTE is the author's visual remark.

  sr-card NAME RUN_DIR "TITLE" "NOTE"
      the same for an SR model: recipe from the run's log and command, a fresh
      `nf-evaluate sr` (PSNR-Y / SSIM-Y against bicubic and Lanczos) as the table.

It does not train or evaluate anything; the build and the tests never need it.
"""
import glob
import os
import subprocess
import sys
import tempfile

from PIL import Image

# How the run was given the CPU: CARD_THREADS (OMP_NUM_THREADS of the run, default 2) and
# CARD_SHARING (a remark on what shared the cores, default: builds).
THREADS = os.environ.get("CARD_THREADS", "2")
SHARING = os.environ.get("CARD_SHARING", ", sharing the cores with builds")


# The repository root: the cards' commands run there, and a card names files relative to
# it (no absolute path of the machine that made it).
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def portable(text):
    """text with this machine's paths relative to the repository root: ROOT/x -> x,
    ROOT -> ., PARENT/x -> ../x (the run logs and commands hold absolute paths)."""
    import re
    for root in sorted({REPO, os.path.realpath(REPO)}, key=len, reverse=True):
        left = r"(?<![\w.~-])"
        text = re.sub(left + re.escape(root) + "/", "", text)
        text = re.sub(left + re.escape(root) + r"(?![\w.~/-])", ".", text)
        parent = os.path.dirname(root)
        if parent != "/":
            text = re.sub(left + re.escape(parent) + "/", "../", text)
    return text


def side_by_side(images, gap=4):
    h = max(im.height for im in images)
    w = sum(im.width for im in images) + gap * (len(images) - 1)
    out = Image.new("RGB", (w, h), "white")
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width + gap
    return out


def run_log_and_command(run):
    """The lines of RUN.out (the queue's log of the run) and the command that started it
    (RUN/command.txt, else RUN/../cmds/cmd-BASENAME.txt)."""
    run = run.rstrip("/")
    log = open(run + ".out").read().splitlines()
    cmd_file = os.path.join(run, "command.txt")
    if not os.path.exists(cmd_file):
        cmd_file = os.path.join(os.path.dirname(run), "cmds",
                                "cmd-" + os.path.basename(run) + ".txt")
    return log, open(cmd_file).read().strip()


def run_seconds(run, steps):
    """Training seconds up to `steps` (the run's log.csv elapsed_s column, all sessions)."""
    import csv
    with open(os.path.join(run, "log.csv")) as f:
        for row in csv.DictReader(f):
            if int(row["step"]) == steps:
                return int(float(row["elapsed_s"]) + 0.5)
    raise SystemExit(f"{run}/log.csv has no row for step {steps}")


def style(name, run):
    src = "gst/samples/chelsea.jpg"
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.png")
        subprocess.run(["build/inference/tools/nf-run", "-m", f"weights/{name}.safetensors",
                        "-i", src, "-o", out], check=True)
        side_by_side([Image.open(src).convert("RGB"), Image.open(out).convert("RGB")]).save(
            f"weights/{name}-example.jpg", quality=88)
    last = sorted(glob.glob(os.path.join(run, "preview", "step-*.png")))[-1]
    Image.open(last).convert("RGB").save(f"weights/{name}-preview.jpg", quality=85)
    print(f"weights/{name}-example.jpg, weights/{name}-preview.jpg (from {last})")


def sr(name, scale):
    from PIL import ImageFilter
    photo = Image.open("../shared/data/photos/opencv_butterfly.jpg").convert("RGB")
    w, h = 320, 240
    x0, y0 = (photo.width - w) // 2, (photo.height - h) // 2
    hr = photo.crop((x0, y0, x0 + w, y0 + h))
    src = hr.filter(ImageFilter.GaussianBlur(1)) if os.environ.get("CARD_DEGRADE") == "blur" else hr
    lr = src.resize((w // scale, h // scale), Image.BICUBIC)
    with tempfile.TemporaryDirectory() as d:
        jpeg = os.environ.get("CARD_JPEG")
        if jpeg:        # streamed video: the LR frame through a JPEG round trip
            lr.save(os.path.join(d, "lr.jpg"), quality=int(jpeg))
            lr = Image.open(os.path.join(d, "lr.jpg")).convert("RGB")
        lr_path = os.path.join(d, "lr.png")
        lr.save(lr_path)
        outs = []
        for model in os.environ.get("CARD_COMPARE", "").split() + [f"weights/{name}.safetensors"]:
            out = os.path.join(d, f"out{len(outs)}.png")
            subprocess.run(["build/inference/tools/nf-run", "-m", model, "-i", lr_path,
                            "-o", out], check=True)
            outs.append(Image.open(out).convert("RGB"))
        panels = [lr.resize((w, h), Image.NEAREST), lr.resize((w, h), Image.BICUBIC)] + outs + [hr]
        side_by_side(panels).save(f"weights/{name}-example.jpg", quality=90)
    print(f"weights/{name}-example.jpg")


def style_card(name, run, title, style_copy, note):
    import re
    log, cmd = run_log_and_command(run)
    data = next(l for l in log if l.startswith("data:"))
    last = [l for l in log if re.match(r"step (\d+)/\1 ", l)][-1]
    done = [l for l in log if l.startswith("done:")][-1]    # the last, after resumes
    steps = int(re.search(r"(\d+) steps", done).group(1))
    secs = run_seconds(run, steps)
    arch = re.search(r"--arch (\S+)", cmd).group(1)
    batch = int(re.search(r"--batch (\d+)", cmd).group(1)) if "--batch" in cmd else 4
    crop = int(re.search(r"--crop (\d+)", cmd).group(1))
    m = re.match(r"data: (\d+) train files \((\d+) in the other split", data)
    dline = f"{m.group(1)} photos; the {m.group(2)} whose FNV-1a name hash mod 100 < 10 are held out"
    compare = os.environ.get("CARD_COMPARE", "").split()
    ev_models = [f"weights/{name}.safetensors"] + compare
    ev = subprocess.run(["build/training/nf-evaluate", "style"] + ev_models,
                        check=True, capture_output=True, text=True).stdout.strip()
    fl = subprocess.run(["build/training/nf-evaluate", "flicker"] + ev_models,
                        check=True, capture_output=True, text=True).stdout.strip()
    own = [l for l in ev.splitlines() if ": content loss" in l]
    summary = own[0]
    met = summary.count(": met") == 2
    losses = re.search(r"\((content .*)\)\s+lr ", last).group(1).strip()
    params = {"style-slim": "16/32/64 channels, 3 residual blocks, instance norm, reflection "
              "padding, nearest upsampling",
              "style-full": "32/64/128 channels, 5 residual blocks (Johnson et al.), instance "
              "norm, reflection padding, nearest upsampling",
              "style-rt": "the real-time network: 5×5 stride-2 conv 16, stride-2 3×3 conv 48, "
              "3 residual blocks of 48 channels at 1/4 resolution, nearest upsampling + 3×3 "
              "conv 16, 3×3 conv to 12 channels + pixel shuffle; instance norm, reflection "
              "padding; 142,284 parameters"}[arch]
    backend = re.search(r"--backend (\S+)", cmd)
    backend = backend.group(1) if backend else "cpu"
    backdesc = {"cpu": "fast `cpu` backend (fp32)", "cpu-bf16":
                "`cpu-bf16` backend (bf16 convolutions with fp32 accumulation and fp32 "
                "master weights)"}.get(backend, f"`{backend}` backend")
    stab = re.search(r"--stability-weight (\S+)", cmd)
    still = re.search(r"--stability-still-weight (\S+)", cmd)
    stab_w = float(stab.group(1)) if stab else 0.0
    still_w = float(still.group(1)) if still else 0.0
    shift = re.search(r"--stability-shift (\d+)", cmd)
    noise = re.search(r"--stability-noise (\S+)", cmd)
    shift = shift.group(1) if shift else "4"
    noise = noise.group(1) if noise else "4"
    stabdesc = ""
    if stab_w > 0:
        stabdesc = (f" + the stability term (weight {stab.group(1)}): "
                    f"{'every other' if still_w > 0 else 'each'} crop is also run "
                    f"shifted by up to {shift} px with Gaussian noise "
                    f"of sigma up to {noise} levels, and the mean "
                    "squared difference between f(T x + n) and T f(x) (0..255 units) is added "
                    "(`training/nf-stability.h`)")
    if still_w > 0:
        stabdesc += (f" + its still part (weight {still.group(1)}): "
                     f"{'the other crops are' if stab_w > 0 else 'each crop is'} also run with "
                     f"noise of sigma up to {noise} levels and no shift, and the mean squared "
                     "difference between f(x + n) and f(x) is added (a static camera's noise)")
    lr_m = re.search(r"--lr (\S+)", cmd)
    lr_s = lr_m.group(1) if lr_m else "1e-3"
    warm_m = re.search(r"--warmup (\d+)", cmd)
    warm_s = f" with {warm_m.group(1)} warm-up steps" if warm_m else ""
    init_m = re.search(r"--init (\S+)", cmd)
    init_s = (f" Started from `{init_m.group(1)}` as it was then (fine-tuning; see the note) "
              "instead of random weights." if init_m else "")
    text = f"""# {name} — fast style transfer, {title} ({arch})

**Status: {"meets both of the project's style bars" if met else "DOES NOT meet the project's style bars"} on held-out photos** (below), after a short CPU run. {note}

![input | output]({name}-example.jpg)

*Left `gst/samples/chelsea.jpg` (not a training photo), right its stylised version.*
Style image (small copy): ![](styles/{style_copy})

Validation previews after {steps} steps (held-out photos | output):
![]({name}-preview.jpg)

## Recipe

```sh
{"" if cmd.startswith("OMP_NUM_THREADS=") else f"OMP_NUM_THREADS={THREADS} "}{cmd}
```

- Architecture `{arch}`: {params}.
- Data: `../shared/data/photos`, training split ({dline}), random crops
  scaled so the short side is {crop}–{2 * crop} px, cropped to {crop}×{crop}, random flips.
- Loss (VGG16 conv1_1–conv3_3, Caffe preprocessing, max pooling): content MSE at relu2_2
  (weight 1) + style Gram MSE at relu1_2, relu2_2, relu3_3 (weight 0.5; painting's Gram
  targets at 256 px on the long side) + total variation (Johnson's tv_strength 1e-6){stabdesc}.
- Adam lr {lr_s}{warm_s}, cosine to 1e-5, batch {batch}, {steps} steps = **{steps * batch:,} crops seen**.{init_s}
- Hardware and time: {THREADS} core(s) of an AMD EPYC (AVX-512, AVX512_BF16) machine, {backdesc}, {secs} s
  of training (about {steps * batch / secs:.1f} crops/s{SHARING}).
- Final training losses (step {steps}): {losses} (on {crop} px crops; the evaluation below
  is at 256 px).
- The full recipe is in the file's `training` metadata (`nf-run -v`).

## Evaluation

`build/training/nf-evaluate style weights/{name}.safetensors` — the 7 held-out photos at
256 px on the long side, VGG16 relu2_2 content loss (Caffe preprocessing) between output
and input, and the style loss against the painting, beside the unstyled photos' style loss
(bars: content at most 1.5e5, style at most a third of the unstyled photos'):

```
{ev}
```

## Flicker

`build/training/nf-evaluate flicker {" ".join(ev_models)}` — the network alone (no
element-side `stabilize`) on synthetic static-camera clips of the held-out photos (40
frames of each photo with fresh sensor noise and a JPEG round trip per frame): the static
flicker ratio (output change over input change where the input is still; 1 is an
identity, lower is steadier) and the warping error under small shifts and a 3 % zoom
(levels; lower is steadier):

```
{fl}
```
"""
    open(f"weights/{name}.md", "w").write(portable(text))
    print(f"weights/{name}.md: {summary}")
    print([l for l in fl.splitlines() if "static flicker ratio" in l])


def sr_card(name, run, title, note):
    import re
    log, cmd = run_log_and_command(run)
    data = next(l for l in log if l.startswith("data:"))
    done = [l for l in log if l.startswith("done:")][-1]    # the last, after resumes
    steps = int(re.search(r"(\d+) steps", done).group(1))
    secs = run_seconds(run, steps)
    last = [l for l in log if re.match(r"step (\d+)/\1 ", l)][-1]
    arch = re.search(r"--arch (\S+)", cmd).group(1)
    scale = int(re.search(r"--scale (\d+)", cmd).group(1))
    crop = int(re.search(r"--crop (\d+)", cmd).group(1))
    loss = re.search(r"--loss (\S+)", cmd).group(1)
    ev = subprocess.run(["build/training/nf-evaluate", "sr", f"weights/{name}.safetensors"],
                        check=True, capture_output=True, text=True).stdout.strip()
    mean = [l for l in ev.splitlines() if l.strip().startswith("mean")][-1].split()
    psnr, ssim, bic, bics, lan, lans = mean[1], mean[2], mean[4], mean[5], mean[7], mean[8]
    gain = float(psnr) - float(bic)
    lossdesc = {"pixel": "pixel MSE (0..255 units)",
                "perceptual": "perceptual: MSE of VGG16 relu2_2 activations (Caffe preprocessing)",
                "mix": "pixel MSE + 0.001 x perceptual (relu2_2)"}[loss]
    width = int(re.search(r"--width (\d+)", cmd).group(1)) if "--width" in cmd else 64
    blocks = int(re.search(r"--res-blocks (\d+)", cmd).group(1)) if "--res-blocks" in cmd else (2 if arch == "sr-light" else 4)
    if "--width" not in cmd and arch == "sr-light-y":
        width = 16
    archdesc = {"sr-subpixel": f"{width} channels, {blocks} residual blocks, pixel shuffle, clamp (skipped in training)",
                "sr-light": f"the real-time light network (all at the input resolution): 5x5 conv {width}, {blocks} 3x3 convs of {width} with ReLU, 3x3 conv to {3 * scale * scale} channels + pixel shuffle, plus the nearest-upsampled input, clamp (skipped in training)",
                "sr-light-y": f"the real-time light network on luma only (all at the input resolution): a fixed 1x1 conv to BT.601 luma, 5x5 conv 1 -> {width}, {blocks} 3x3 convs of {width} with ReLU, 3x3 conv to {scale * scale} sub-pixel channels, a fixed 1x1 conv copying each to R, G and B, pixel shuffle, plus the nearest-upsampled input (so the chroma is the input's), clamp (skipped in training); the pixel loss on luma only (`--chroma-weight 0`, the arch's default)",
                "sr-johnson": f"Johnson et al.'s SR network: 9x9 conv, {blocks} residual blocks of {width} channels with batch norm (frozen statistics from the first batch, trained as an affine map), nearest upsampling x2 stages, 9x9 conv, tanh"}[arch]
    lr_m = re.search(r"--lr (\S+)", cmd)
    warm = re.search(r"--warmup (\d+)", cmd)
    init = re.search(r"--init (\S+)", cmd)
    datas = list(dict.fromkeys(re.findall(r"--data (\S+)", cmd))) or ["../shared/data/sr-train"]
    batch_m = re.search(r"--batch (\d+)", cmd)
    batch = int(batch_m.group(1)) if batch_m else 4          # nf-train's default
    threads_m = re.search(r"OMP_NUM_THREADS=(\d+)", cmd)
    cores = f"{threads_m.group(1)} core{'s' if threads_m.group(1) != '1' else ''}" if threads_m else f"{THREADS} cores"
    degrade = re.search(r"--degrade (\S+)", cmd)
    degrade = degrade.group(1) if degrade else "bicubic"     # nf-train's default
    lrdesc = {"bicubic": f"plain antialiased bicubic ×1/{scale} (MATLAB imresize semantics, the standard SR benchmark degradation)",
              "blur-bicubic": f"Gaussian blur σ=1 then bicubic ×1/{scale} (Johnson et al.)",
              "video": f"bicubic ×1/{scale}, then Gaussian noise and a JPEG round trip (quality drawn per crop)"}[degrade]
    backend = re.search(r"--backend (\S+)", cmd)
    backend = backend.group(1) if backend else "cpu"
    backdesc = {"cpu": "fast `cpu` backend (fp32)", "cpu-bf16":
                "`cpu-bf16` backend (bf16 convolutions with fp32 accumulation and fp32 "
                "master weights)"}.get(backend, f"`{backend}` backend")
    video_ev = ""
    if degrade == "video":
        models = [f"weights/{name}.safetensors"] + os.environ.get("CARD_COMPARE", "").split()
        parts = []
        for q in (40, 60, 80):
            out = subprocess.run(["build/training/nf-evaluate", "sr", "--degrade", "video",
                                  "--noise", "1", "--jpeg", str(q)] + models, check=True,
                                 capture_output=True, text=True).stdout.strip()
            keep = [l for l in out.splitlines() if "protocol" in l.lower() or
                    l.strip().startswith("mean") or "bar" in l or l.startswith("weights/")]
            parts.append(f"JPEG quality {q}:\n" + "\n".join(keep))
        video_ev = f"""
## On streamed video

`build/training/nf-evaluate sr --degrade video --noise 1 --jpeg Q {" ".join(models)}`
for Q = 40, 60, 80: the same held-out images, LR by plain bicubic, then Gaussian noise of
a sigma drawn up to 1 level and a JPEG round trip (libjpeg, 4:2:0) at quality Q, as a
frame of a stream is; PSNR-Y against the original HR (mean lines; the full tables print
per image):

```
{chr(10).join(parts)}
```
"""
    initdesc = (f" Started from `{init.group(1)}` (fine-tuning; see the note) instead of random weights."
                if init else "")
    text = f"""# {name} — super-resolution ×{scale}, {title}

{note}

![input (nearest) | bicubic | this model | original]({name}-example.jpg)

*A 320×240 crop of `opencv_butterfly.jpg` (../shared/data/photos, a Debian photo, not in
the SR training set), downscaled ×{scale} with plain antialiased bicubic (the standard
protocol), then upscaled back: input (nearest), bicubic, this model, the original.*

## Recipe

```sh
{cmd if cmd.startswith("OMP_NUM_THREADS") or cmd.startswith("#") else "OMP_NUM_THREADS=" + THREADS + " " + cmd}
```

- Architecture `{arch}` ×{scale}: {archdesc}.{initdesc}
- Data: {", ".join("`" + d + "`" for d in datas)}, training split (files whose FNV-1a name
  hash mod 100 ≥ 10; {data[len("data: "):]}). Random {crop}×{crop} HR crops with flips; LR
  made by {lrdesc}, rounded to 8 bit.
- Loss: {lossdesc}. Adam lr {lr_m.group(1) if lr_m else "1e-3"} with {warm.group(1) if warm else 500} warm-up steps, cosine to 1e-5, batch {batch},
  {steps} steps = **{steps * batch:,} crops seen**.
- Hardware and time: {cores} of an AMD EPYC (AVX-512, AVX512_BF16) machine, {backdesc}, {secs} s
  of training{SHARING}.
- Last progress line: `{last.strip()}`.
- The full recipe is in the file's `training` metadata (`nf-run -v`).

## Evaluation

`build/training/nf-evaluate sr weights/{name}.safetensors` — the held-out images of the
training folders (never trained on), the standard protocol (HR cropped to a multiple of
{scale}, LR by antialiased bicubic, PSNR/SSIM on Y, {scale} px border shaved); the bar is
FSRCNN's margin over bicubic on BSD100 at ×{scale}:

| method | PSNR-Y (dB) | SSIM-Y |
|---|---|---|
| bicubic | {bic} | {bics} |
| Lanczos | {lan} | {lans} |
| **{name}** | **{psnr}** ({gain:+.2f} dB over bicubic) | **{ssim}** |

Per-image scores (mean line last):

```
{ev}
```
{video_ev}"""
    open(f"weights/{name}.md", "w").write(portable(text))
    print(f"weights/{name}.md: PSNR-Y {psnr} vs bicubic {bic} ({gain:+.2f} dB), SSIM {ssim} vs {bics}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "sr-card":
        sr_card(*sys.argv[2:])
        sys.exit(0)
    if len(sys.argv) == 7 and sys.argv[1] == "style-card":
        style_card(*sys.argv[2:])
        sys.exit(0)
    if len(sys.argv) == 4 and sys.argv[1] == "style":
        style(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "sr":
        sr(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)
