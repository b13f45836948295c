#!/usr/bin/env python3
"""make_multi_card.py — the card of a multi-style network (style-rt-multi: one network,
N styles by conditional instance norm; documentation only; Pillow).

  make_multi_card.py NAME RUN_DIR

Reads OUT/NAME.safetensors (OUT: $CARD_OUT, default weights) and writes
  OUT/NAME-grid.jpg  gst/samples/chelsea.jpg (not a training photo) and its output in each
                     of the N styles (nf-run --style), the style's name under each tile;
  OUT/NAME-mix.jpg   a mixing strip: 6 steps from the first style to the second
                     (nf-run --style-mix FIRST:1-t,SECOND:t, t = 0, 0.2, ..., 1);
  OUT/NAME.md        the card: status, the two pictures, how to pick and mix styles, the
                     recipe from RUN_DIR's log and command (make_card_images.py's
                     run_log_and_command: RUN_DIR/../BASENAME.out, RUN_DIR/command.txt or
                     RUN_DIR/../cmds/cmd-BASENAME.txt; the run must have finished), and a
                     fresh `nf-evaluate style` of every style against its own painting,
                     beside the single-style network of that painting where weights/ has
                     one (weights/style-rt-<style name with dashes>.safetensors, scored by
                     the same tool on the same photos): both networks' content and style
                     losses and the relative difference (the issue's bar: within 15 %).

Environment: CARD_OUT (the folder read and written; a temporary one while developing, so
that weights/ is never touched), CARD_BUILD (the build folder whose nf-run and
nf-evaluate run, default build), CARD_NOTE (the author's visual remark, printed under
the status), CARD_MAX_IMAGES (score only that many held-out photos: quick trials only),
CARD_THREADS and CARD_SHARING (as make_card_images.py: the run's cores and what shared
them). Run from anywhere: it works in the repository root, and the card names files
relative to it (no absolute path of this machine).

It does not train anything and does not edit make_card_images.py (it imports its
helpers); the build and the tests never need it.
"""
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_card_images as mci  # noqa: E402  (portable, side_by_side, the run's log)

SAMPLE = "gst/samples/chelsea.jpg"
TILE_W = 224
BAR = 0.15          # the bar: each style's losses within 15 % of a single-style net


def metadata(path):
    """The __metadata__ of a safetensors file (standard library only)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


def font(size):
    for f in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
              "/usr/share/fonts/dejavu/DejaVuSans.ttf"):
        if os.path.exists(f):
            return ImageFont.truetype(f, size)
    return ImageFont.load_default()


def labelled(img, lines, width=TILE_W):
    """img scaled to `width`, with the text lines centred under it on white."""
    img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    f = font(13)
    band = 6 + 17 * len(lines)
    out = Image.new("RGB", (width, img.height + band), "white")
    out.paste(img, (0, 0))
    d = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        w = d.textlength(line, font=f)
        d.text(((width - w) / 2, img.height + 3 + 17 * i), line, fill="black", font=f)
    return out


def grid(tiles, cols, gap=4):
    rows = [tiles[i:i + cols] for i in range(0, len(tiles), cols)]
    h = sum(max(t.height for t in r) for r in rows) + gap * (len(rows) - 1)
    w = cols * tiles[0].width + gap * (cols - 1)
    out = Image.new("RGB", (w, h), "white")
    y = 0
    for r in rows:
        for i, t in enumerate(r):
            out.paste(t, (i * (t.width + gap), y))
        y += max(t.height for t in r) + gap
    return out


def nf_run(build, model, src, out, *opts):
    subprocess.run([f"{build}/inference/tools/nf-run", "-m", model, "-i", src, "-o", out,
                    *opts], check=True, stdout=subprocess.DEVNULL)
    return Image.open(out).convert("RGB")


def pictures(name, model, styles, out_dir, build):
    """OUT/NAME-grid.jpg and OUT/NAME-mix.jpg."""
    src = Image.open(SAMPLE).convert("RGB")
    with tempfile.TemporaryDirectory() as d:
        tiles = [labelled(src, ["input"])]
        for i, s in enumerate(styles):
            tiles.append(labelled(nf_run(build, model, SAMPLE, os.path.join(d, f"s{i}.png"),
                                         "--style", s), [f"{i}: {s}"]))
        cols = 3 if len(tiles) <= 9 else 4
        grid(tiles, cols).save(os.path.join(out_dir, f"{name}-grid.jpg"), quality=88)
        a, b = styles[0], styles[1]
        strip = []
        for k in range(6):
            t = k / 5
            mix = f"{a}:{1 - t:.1f},{b}:{t:.1f}"
            img = nf_run(build, model, SAMPLE, os.path.join(d, f"m{k}.png"), "--style-mix", mix)
            strip.append(labelled(img, [f"{1 - t:.1f} {a}", f"{t:.1f} {b}"], width=200))
        mci.side_by_side(strip).save(os.path.join(out_dir, f"{name}-mix.jpg"), quality=88)
    return a, b


SUMMARY = re.compile(r"^  (\S+): content loss (\S+) \(bar <= \S+: (met|NOT met)\); style loss "
                     r"(\S+), unstyled (\S+), ratio (\S+) \(bar <= 1/3: (met|NOT met)\)$")


def evaluate(build, models, max_images):
    """`nf-evaluate style MODELS`: its output and {label: (content, style, unstyled, ratio,
    content met, style met)} from the summary lines."""
    cmd = [f"{build}/training/nf-evaluate", "style"] + models
    if max_images:
        cmd += ["--max-images", str(max_images)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()
    scores = {}
    for line in out.splitlines():
        m = SUMMARY.match(line)
        if m:
            scores[m.group(1)] = (float(m.group(2)), float(m.group(4)), float(m.group(5)),
                                  float(m.group(6)), m.group(3) == "met", m.group(7) == "met")
    return out, scores


def rel(a, b):
    return (a - b) / b


def recipe(run, n_styles):
    """What the card says of the run: its command, parameters, steps, time, last line."""
    log, cmd = mci.run_log_and_command(run)
    done = [l for l in log if l.startswith("done:")]
    if not done:
        sys.exit(f"make_multi_card.py: {run}.out has no 'done:' line: the run has not "
                 "finished (or was not started by the training queue)")
    steps = int(re.search(r"(\d+) steps", done[-1]).group(1))
    last = [l for l in log if re.match(rf"step {steps}/\d+ ", l)][-1]
    head = next(l for l in log if l.startswith("training "))
    params = int(re.search(r"(\d+) parameters", head).group(1))
    data = next(l for l in log if l.startswith("data:"))
    m = re.match(r"data: (\d+) train files \((\d+) in the other split", data)
    return {"cmd": cmd, "steps": steps, "secs": mci.run_seconds(run, steps), "params": params,
            "last": last, "photos": m.group(1), "held": m.group(2),
            "crop": int(re.search(r"--crop (\d+)", cmd).group(1)),
            "batch": int(re.search(r"--batch (\d+)", cmd).group(1)) if "--batch" in cmd else 4,
            "backend": (re.search(r"--backend (\S+)", cmd) or [None, "cpu"])[1],
            "stab": (re.search(r"--stability-weight (\S+)", cmd) or [None, "0"])[1],
            "init": (re.search(r"--init (\S+)", cmd) or [None, None])[1],
            "per_style": steps // n_styles}


def single_steps(path):
    """The steps a weight file was trained for (its training metadata), else None."""
    try:
        return json.loads(metadata(path)["training"])["steps"]
    except (KeyError, ValueError, TypeError):
        return None


def comparison(styles, multi, singles):
    """The per-style table (markdown) and the count of styles within the bar."""
    rows = ["| style | content (this) | content (single) | Δ | style loss (this) | "
            "style loss (single) | Δ | ratio to unstyled (this) | bars (this) |",
            "|---|---|---|---|---|---|---|---|---|"]
    within = compared = 0
    for s in styles:
        c, st, _, ratio, cmet, smet = multi[s]
        bars = "both met" if cmet and smet else ("content only" if cmet else
                                                 "style only" if smet else "neither")
        if s in singles:
            single_name, (sc, sst, *_), steps = singles[s]
            dc, ds = rel(c, sc), rel(st, sst)
            ok = dc <= BAR and ds <= BAR
            compared += 1
            within += ok
            mark = lambda d: f"{d:+.1%}" + (" ✗" if d > BAR else "")  # noqa: E731
            rows.append(f"| `{s}` | {c:.4g} | {sc:.4g} ([{single_name}]({single_name}.md), "
                        f"{steps} steps) | {mark(dc)} | {st:.4g} | {sst:.4g} | {mark(ds)} | "
                        f"{ratio:.3f} | {bars} |")
        else:
            rows.append(f"| `{s}` | {c:.4g} | – | – | {st:.4g} | – | – | {ratio:.3f} | {bars} |")
    return "\n".join(rows), within, compared


def card(name, run, out_dir, build):
    model = os.path.join(out_dir, f"{name}.safetensors")
    if not os.path.exists(model):
        sys.exit(f"make_multi_card.py: no {model} (CARD_OUT: the folder of the model)")
    md = metadata(model)
    styles = json.loads(md.get("styles", "[]"))
    if md.get("arch") != "style-rt-multi" or len(styles) < 2:
        sys.exit(f"make_multi_card.py: {model} is not a multi-style (style-rt-multi) network "
                 "with named styles")
    r = recipe(run, len(styles))
    a, b = pictures(name, model, styles, out_dir, build)
    max_images = int(os.environ.get("CARD_MAX_IMAGES", "0"))
    ev, scores = evaluate(build, [model], max_images)
    multi = {label.rsplit("/", 1)[1]: v for label, v in scores.items() if "/" in label}
    missing = [s for s in styles if s not in multi]
    if missing:
        sys.exit(f"make_multi_card.py: nf-evaluate scored no {', '.join(missing)}:\n{ev}")
    single_paths = {s: f"weights/style-rt-{s.replace('_', '-')}.safetensors" for s in styles}
    single_paths = {s: p for s, p in single_paths.items() if os.path.exists(p)}
    singles, sev = {}, ""
    if single_paths:
        sev, sscores = evaluate(build, list(single_paths.values()), max_images)
        for s, p in single_paths.items():
            label = metadata(p).get("name", "model")
            if label in sscores:
                singles[s] = (label, sscores[label], single_steps(p))
    table, within, compared = comparison(styles, multi, singles)
    n_met = sum(1 for s in styles if multi[s][4] and multi[s][5])
    n_photos = re.search(r"(\d+) photos at", ev).group(1)
    status = (f"{n_met} of {len(styles)} styles meet both of the project's style bars on "
              f"held-out photos; ")
    if compared:
        status += (f"{within} of the {compared} styles with a single-style network have both "
                   f"losses within {BAR:.0%} of it (the issue's bar)"
                   + (" — bar met" if within == compared else " — bar NOT met"))
    else:
        status += "no single-style network to compare with"
    note = os.environ.get("CARD_NOTE", "")
    cmd = r["cmd"]
    omp = re.search(r"OMP_NUM_THREADS=(\d+)", cmd)
    threads = omp.group(1) if omp else mci.THREADS
    backdesc = {"cpu": "fast `cpu` backend (fp32)", "cpu-bf16":
                "`cpu-bf16` backend (bf16 convolutions with fp32 accumulation and fp32 "
                "master weights)"}.get(r["backend"], f"`{r['backend']}` backend")
    stabdesc = (f" + the stability term (weight {r['stab']}, `training/nf-stability.h`)"
                if float(r["stab"]) > 0 else "")
    initdesc = (f" Started from `{r['init']}` (the command's comment says how it was made; "
                "`training/examples/make_multi_init.py` copies a trained style-rt network's "
                "convolutions and its norm rows to every style)." if r["init"] else "")
    style_list = ", ".join(f"`{s}`" for s in styles)
    ev_cmd = f"build/training/nf-evaluate style weights/{name}.safetensors"
    sev_cmd = ("build/training/nf-evaluate style " + " ".join(single_paths.values())
               if single_paths else "")
    text = f"""# {name} — one network, {len(styles)} styles (style-rt-multi)

**Status: {status}.** {note}

![chelsea.jpg in every style]({name}-grid.jpg)

*`{SAMPLE}` (not a training photo) and its output in each style, by index and name
(`nf-run --style NAME`).*

![mixing strip]({name}-mix.jpg)

*From `{a}` to `{b}` in 6 steps (`nf-run --style-mix {a}:0.6,{b}:0.4`, …): the two
styles' norm rows blended, one network run per picture.*

## Using the styles

The styles, by index: {style_list} (the `styles` metadata; the paintings' file stems in
`../shared/data/styles`). The first runs by default.

```sh
build/inference/tools/nf-run -m weights/{name}.safetensors -i photo.jpg -o out.jpg --style {b}
build/inference/tools/nf-run -m weights/{name}.safetensors -i photo.jpg -o out.jpg \\
  --style-mix {a}:0.5,{b}:0.5
```

In a pipeline, `neuralstyle model={name}` takes the same `style` and `style-mix`
values, and `style-position`, changeable while playing (README: live style switching).

## Recipe

```sh
{cmd if cmd.startswith("OMP_NUM_THREADS") or cmd.startswith("#") else f"OMP_NUM_THREADS={threads} " + cmd}
```

- Architecture `style-rt-multi`: style-rt's convolutions (5×5 stride-2 conv 16, stride-2
  3×3 conv 48, 3 residual blocks of 48 channels at 1/4 resolution, nearest upsampling +
  3×3 conv 16, 3×3 conv to 12 channels + pixel shuffle; reflection padding), shared by
  every style, and each instance norm a conditional one holding a scale and shift row
  per style (Dumoulin et al. 2017); {r['params']:,} parameters.{initdesc}
- Data: `../shared/data/photos`, training split ({r['photos']} photos; the {r['held']} whose
  FNV-1a name hash mod 100 < 10 are held out), random crops scaled so the short side is
  {r['crop']}–{2 * r['crop']} px, cropped to {r['crop']}×{r['crop']}, random flips.
- Loss (VGG16 conv1_1–conv3_3, Caffe preprocessing, max pooling): content MSE at relu2_2
  (weight 1) + style Gram MSE at relu1_2, relu2_2, relu3_3 against the batch's painting
  (weight 0.5; Gram targets at 256 px on the long side) + total variation (1e-6){stabdesc}.
  Each batch trains one style, in turn.
- Adam lr 1e-3, cosine to 1e-5, batch {r['batch']}, {r['steps']} steps = **{r['steps'] * r['batch']:,}
  crops seen**, {r['per_style']} batches ({r['per_style'] * r['batch']:,} crops) per style.
- Hardware and time: {threads} core(s) of an AMD EPYC (AVX-512, AVX512_BF16) machine,
  {backdesc}, {r['secs']} s of training (about {r['steps'] * r['batch'] / max(r['secs'], 1):.1f} crops/s{mci.SHARING}).
- Last progress line (that batch's style only): `{r['last'].strip()}`.
- The full recipe is in the file's `training` metadata (`nf-run -v`).

## Evaluation per style

`{ev_cmd}` — each style run alone (a one-hot mix) on the {n_photos} held-out photo(s) at
256 px on the long side, against its own painting: VGG16 relu2_2 content loss between
output and input, and the style loss beside the unstyled photos' (bars: content at most
1.5e5, style at most a third of the unstyled photos'). Beside it, the single-style
`style-rt` network of the same painting scored by the same tool on the same photos
(`{sev_cmd or "none"}`); Δ = (this − single) / single, lower losses are better, the
issue's bar is Δ ≤ +{BAR:.0%} for both (✗: above it). The single-style networks'
training length is in their column: this network trained {r['per_style']} batches per
style.

{table}

```
{ev}
```
"""
    if sev:
        text += f"""
The single-style networks:

```
{sev}
```
"""
    path = os.path.join(out_dir, f"{name}.md")
    open(path, "w").write(mci.portable(text))
    print(f"{path}: {status}")
    for s in styles:
        print(f"  {s}: content {multi[s][0]:.4g} style {multi[s][1]:.4g}" +
              (f" (single: {singles[s][1][0]:.4g}, {singles[s][1][1]:.4g}; "
               f"{rel(multi[s][0], singles[s][1][0]):+.1%}, "
               f"{rel(multi[s][1], singles[s][1][1]):+.1%})" if s in singles else ""))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    name, run = sys.argv[1], os.path.abspath(sys.argv[2])
    out_dir = os.path.abspath(os.environ.get("CARD_OUT", os.path.join(mci.REPO, "weights")))
    build = os.path.abspath(os.environ.get("CARD_BUILD", os.path.join(mci.REPO, "build")))
    os.chdir(mci.REPO)
    card(name, run, out_dir, build)


if __name__ == "__main__":
    main()
