#!/usr/bin/env python3
"""Builds a 1080p variant of the labelled egoblur clips: each 2560x1920 clip of ../shared/data
scaled by 0.75 (to 1920x1440) and cut to its middle 1920x1080, with its labels moved the same
way, so `veil eval --data <out>` measures recall at the most common bodycam resolution, where
the plate tiles see the picture at two thirds of its size instead of the 2560x1920 frame's
half. Also writes <out>/aria_mix_1920x1080.mp4 (faces, plates, three times over, 10 fps), the
1080p counterpart of the benchmark's landscape clip, and <out>/face_1080p.mp4, the 720p
fixture scaled up to 1920x1080 (30 fps, a steady camera: the cost of the pixels, not new
content).

    scripts/make-1080p-set.py [--data ../shared/data] [--out .cache/set1080]

A label box cut by the new frame's edge is clipped to it; one that keeps under half of its area
is marked ambiguous (neither a miss nor a false positive, as labels/README.md defines). Frames
are kept one for one (`-fps_mode passthrough`), so frame i of the output is frame i of the
labels. Nothing is copied from ../shared/data into the repository: the output lives in .cache.
Idempotent: existing outputs are kept.
"""

import argparse
import json
import os
import subprocess
from pathlib import Path

CLIPS = ["aria_faces_2560x1920.mp4", "aria_plates_2560x1920.mp4"]
SCALE = 0.75
W, H = 1920, 1080
Y0 = (round(1920 * SCALE) - H) // 2


def move_labels(gt, name):
    gt = dict(gt)
    gt["media"] = f"egoblur/{name}"
    gt["width"], gt["height"] = W, H
    gt["extraction"] = (f"scale {SCALE} (1920x1440), crop {W}x{H} at y={Y0}, of the clip labelled "
                        f"as: {gt['extraction']}")
    frames = {}
    for k, boxes in gt["frames"].items():
        out = []
        for b in boxes:
            x, y, w, h = b["box"]
            x, y, w, h = x * SCALE, y * SCALE - Y0, w * SCALE, h * SCALE
            x1, y1, x2, y2 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
            if x2 <= x1 or y2 <= y1:
                continue
            b = dict(b)
            b["box"] = [round(x1), round(y1), round(x2 - x1), round(y2 - y1)]
            if (x2 - x1) * (y2 - y1) < 0.5 * w * h:
                b["ambiguous"] = True
            b["small"] = b["box"][3] < 12
            out.append(b)
        frames[k] = out
    gt["frames"] = frames
    return gt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("VEIL_DATA", "../shared/data"))
    ap.add_argument("--out", default=".cache/set1080")
    a = ap.parse_args()
    data, out = Path(a.data), Path(a.out)
    if not (data / "labels" / "egoblur").is_dir():
        raise SystemExit(f"make-1080p-set: {data}/labels/egoblur not found (set --data or VEIL_DATA)")
    (out / "egoblur").mkdir(parents=True, exist_ok=True)
    (out / "labels" / "egoblur").mkdir(parents=True, exist_ok=True)
    made = []
    for src in CLIPS:
        name = src.replace("2560x1920", f"{W}x{H}")
        dst = out / "egoblur" / name
        if not dst.exists():
            tmp = dst.with_suffix(".part.mp4")
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(data / "egoblur" / src),
                            "-fps_mode", "passthrough", "-vf",
                            f"scale={W}:{round(1920 * SCALE)}:flags=lanczos,crop={W}:{H}:0:{Y0}",
                            "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-an",
                            str(tmp)], check=True)
            tmp.rename(dst)
        gt = json.loads((data / "labels" / "egoblur" / f"{src}.gt.json").read_text())
        (out / "labels" / "egoblur" / f"{name}.gt.json").write_text(
            json.dumps(move_labels(gt, name), indent=1))
        made.append(dst)
    mix = out / f"aria_mix_{W}x{H}.mp4"
    if not mix.exists():
        lst = out / "aria_mix.txt"
        lst.write_text("".join(f"file '{p.resolve()}'\n" for p in made * 3))
        tmp = mix.with_suffix(".part.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(lst),
                        "-vf", "fps=10", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
                        str(tmp)], check=True)
        tmp.rename(mix)
    face = out / "face_1080p.mp4"
    if not face.exists():
        fixture = Path(__file__).resolve().parent.parent / "fixtures" / "face_720p.mp4"
        tmp = face.with_suffix(".part.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(fixture), "-vf",
                        f"scale={W}:{H}:flags=lanczos", "-c:v", "libx264", "-preset", "veryfast",
                        "-crf", "18", "-c:a", "copy", str(tmp)], check=True)
        tmp.rename(face)
    print(f"make-1080p-set: {out} (veil eval --data {out}; bench: --clips {mix} {face})")


if __name__ == "__main__":
    main()
