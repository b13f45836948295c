#!/usr/bin/env python3
"""update_style_card.py — ship a fine-tuned style network and refresh its card's figures
(documentation only; the build and the tests never need it).

  update_style_card.py NAME RUN_DIR PREV_TAG BEFORE_FILE "NOTE"
  update_style_card.py --element NAME...   only the "## In the element" figures

  NAME         the card, weights/NAME.md (and weights/NAME.safetensors)
  RUN_DIR      the run whose model.safetensors replaces the shipped file; its command(s)
               (RUN_DIR/command.txt, one line each, a chain of fine-tunes in order) go
               at the top of the card's recipe
  PREV_TAG     the shipped file is first copied to runs/PREV_TAG/NAME.safetensors (the
               card names it there; it stays in git history)
  BEFORE_FILE  the file before issue 14's fine-tunes (the card's reference for the style
               and content budget), e.g. runs/before-stability/NAME.safetensors
  NOTE         a paragraph appended to the card's status paragraph

What it does: copies the files, then reruns and rewrites the card's three measured
blocks with the new file, the replaced one and BEFORE_FILE: `nf-evaluate style`
(## Evaluation), `nf-evaluate flicker` (## Flicker) and the element's static flicker
ratios from `gst-stabilize-bench --stabilize 0,0.8` (## In the element); then the
example and preview pictures (make_card_images.py style). The recipe's narrative
(which fine-tune followed which) is left to the author.
What it does not: train, or judge whether the new file is better.
"""
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EVAL = "build/training/nf-evaluate"
BENCH = "build/tests/gst-stabilize-bench"


def run(cmd, env=None):
    e = dict(os.environ, OMP_NUM_THREADS=os.environ.get("CARD_THREADS", "2"))
    if env:
        e.update(env)
    out = subprocess.run(cmd, cwd=ROOT, env=e, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("%s failed:\n%s%s" % (" ".join(cmd), out.stdout, out.stderr))
    return out.stdout


def replace_block(text, heading, command, body):
    """The first ``` block after `heading`, and the backquoted command line before it."""
    start = text.index(heading)
    cmd_at = text.index("`" + EVAL, start)
    cmd_end = text.index("`", cmd_at + 1)
    text = text[:cmd_at] + "`" + command + "`" + text[cmd_end + 1:]
    b0 = text.index("```\n", text.index(heading)) + 4
    b1 = text.index("```", b0)
    return text[:b0] + body.rstrip("\n") + "\n" + text[b1:]


def element_line(model):
    out = run([BENCH, model, "--stabilize", "0,0.8"],
              env={"GST_PLUGIN_PATH_1_0": os.path.join(ROOT, "build", "gst")})
    ratios, warps, pans, patch, trail, clip = {}, {}, {}, [], [], None
    for line in out.splitlines():
        m = re.match(r"^(\S+\.(?:jpg|png)) \d+x\d+$", line)
        if m:
            clip = m.group(1)
        m = re.match(r"^\s+still\s+([\d.]+) \|.*\s([\d.]+) \| warp shift ([\d.]+)", line)
        if m and clip:
            ratios.setdefault(clip, []).append(m.group(2))
            warps.setdefault(clip, []).append(float(m.group(3)))
        m = re.match(r"^\s+pan\s+([\d.]+) \|.*\s([\d.]+) \| static after", line)
        if m and clip:
            pans.setdefault(clip, []).append(m.group(2))
        m = re.search(r"patch ([\d.]+) trail ([\d.]+)", line)
        if m:
            patch.append(float(m.group(1)))
            trail.append(float(m.group(2)))
    ratio_text = ", ".join("%s %s → %s" % (c, r[0], r[1]) for c, r in ratios.items())
    pan_text = ", ".join("%s %s → %s" % (c, r[0], r[1]) for c, r in pans.items())
    w0 = [w[0] for w in warps.values()]
    w1 = [w[1] for w in warps.values()]
    motion = ("A camera panning 1 px per frame over the same photos (noise and JPEG per frame): "
              "flicker ratio in the camera's frame of reference\n%s (stabilize 0 → 0.8, "
              "with the default stabilize-motion);\nwarping error under 1-5 px shifts "
              "%.2f–%.2f → %.2f–%.2f levels.\n"
              % (pan_text, min(w0), max(w0), min(w1), max(w1)))
    return ratio_text, min(patch), max(patch), min(trail), max(trail), motion


def update_element(text, model):
    """Rewrites the measured sentences of "## In the element" for model."""
    ratio_text, p0, p1, t0, t1, motion = element_line(model)
    text = re.sub(r"static flicker ratio\n.*\(stabilize 0 → 0\.8\)\.\n"
                  r"(?:A camera panning .*\n.*\n.*levels\.\n)?",
                  lambda m: "static flicker ratio\n%s (stabilize 0 → 0.8).\n%s"
                  % (ratio_text, motion), text)
    text = re.sub(r"differs from the unstabilised one by [\d.]+–[\d.]+ levels \(mean\) on the "
                  r"patch and\n[\d.]+–[\d.]+ levels",
                  "differs from the unstabilised one by %.1f–%.1f levels (mean) on the patch "
                  "and\n%.1f–%.1f levels" % (p0, p1, t0, t1), text)
    return text


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--element":
        for name in sys.argv[2:]:
            card = os.path.join(ROOT, "weights", name + ".md")
            text = update_element(open(card).read(), "weights/%s.safetensors" % name)
            open(card, "w").write(text)
            print("updated", card)
        return
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    name, run_dir, prev_tag, before, note = sys.argv[1:]
    card = os.path.join(ROOT, "weights", name + ".md")
    shipped = "weights/%s.safetensors" % name
    prev = "runs/%s/%s.safetensors" % (prev_tag, name)
    os.makedirs(os.path.join(ROOT, "runs", prev_tag), exist_ok=True)
    shutil.copyfile(os.path.join(ROOT, shipped), os.path.join(ROOT, prev))
    shutil.copyfile(os.path.join(ROOT, run_dir, "model.safetensors"),
                    os.path.join(ROOT, shipped))
    models = [shipped, prev, before]
    text = open(card).read()

    style = run([EVAL, "style"] + models)
    text = replace_block(text, "## Evaluation", " ".join([EVAL, "style"] + models), style)
    flicker = run([EVAL, "flicker"] + models)
    text = replace_block(text, "## Flicker", " ".join([EVAL, "flicker"] + models), flicker)

    text = update_element(text, shipped)

    cmd_file = os.path.join(ROOT, run_dir, "command.txt")
    if os.path.exists(cmd_file):
        cmd = open(cmd_file).read().strip()
        intro = ("The last fine-tunes, in order (the first starts from the file this one "
                 "replaces, each next from the one before):" if "\n" in cmd else
                 "The last fine-tune (its `--init` is the file this one replaces):")
        r = text.index("## Recipe\n") + len("## Recipe\n")
        text = text[:r] + "\n" + intro + "\n\n```sh\n" + cmd + "\n```\n" + text[r:]
    status_end = text.index("\n", text.index("**Status:"))
    text = text[:status_end] + " " + note + text[status_end:]
    open(card, "w").write(text)
    run([sys.executable, "training/examples/make_card_images.py", "style", name, run_dir])
    print("updated", card)


if __name__ == "__main__":
    main()
