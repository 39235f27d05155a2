#!/usr/bin/env python3
"""Builds the motion test set: labelled stills of ../shared/data filmed by a virtual camera
that shakes, whips, jerks and zooms, with every frame's face and plate boxes known exactly.

    scripts/make-motion-set.py [--data ../shared/data] [--out .cache/motion-set] [--frames 60]
                               [--draw N]
    veil eval --data .cache/motion-set

The virtual camera is a crop window over the still: its centre, roll and zoom follow a path
per motion, and each output frame averages 4 sub-frame positions along the path (motion blur
from the exposure). A labelled box is mapped through the same transform (the box around its
four turned corners, at the middle of the exposure), clipped to the frame, and kept when at
least 4x4 pixels of it are visible, so faces entering or leaving at an edge count from their
first partly visible frame. Where the object moved while the shutter was open, the label also
holds `exposure`: the box around its four sub-frame boxes (the smear, or the ghost copies a
whip leaves), which `veil eval` does not count as lost picture. Output: `<out>/motion/<still>_<motion>.mp4` (x264, 30 fps) and
`<out>/labels/motion/<same>.gt.json` in the format of ../shared/data/labels/README.md, so
`veil eval --data <out>` scores it like the shared set. Deterministic: the paths come from a
seeded generator. Needs numpy (.cache/pytools, installed by scripts/setup.sh) and ffmpeg.
"""
import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".cache" / "pytools"))
import numpy as np  # noqa: E402

W, H = 640, 360
FPS = 30
SUB = 4
STILLS = ["sas/Family.jpg", "egoblur/aria_faces.png", "egoblur/street.jpg", "sas/Cars.jpg"]


def load_rgb(path):
    """Decodes a still to an HxWx3 uint8 array with ffmpeg (no imaging library needed)."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", str(path)],
                           check=True, capture_output=True, text=True).stdout.strip()
    w, h = (int(v) for v in probe.split(",")[:2])
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f",
                          "rawvideo", "-pix_fmt", "rgb24", "-"], check=True,
                         capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(h, w, 3)


def paths(kind, n, sw, sh, rng, centre, fresh=False):
    """Per sub-frame camera states (cx, cy, roll radians, source pixels per output pixel),
    around `centre` (where the labelled boxes are). `fresh`: whips, jerks and zooms drawn at
    random too (speeds, times, directions), not only the shake."""
    m = n * SUB
    t = np.arange(m) / (FPS * SUB)
    base_s = min(sw / W, sh / H) * 0.75
    half_w, half_h = W * base_s / 2, H * base_s / 2
    cx = np.full(m, min(max(centre[0], half_w), sw - half_w))
    cy = np.full(m, min(max(centre[1], half_h), sh - half_h))
    roll = np.zeros(m)
    s = np.full(m, base_s)
    if kind == "shake":
        # A struggle: jerky translation (a random walk plus a fast tremor), roll of +-6 degrees.
        walk = np.cumsum(rng.normal(0, 1, (m, 2)), axis=0)
        walk -= walk.mean(axis=0)
        walk /= np.abs(walk).max(axis=0) + 1e-9
        tremor = rng.normal(0, 1, (n, 2)).repeat(SUB, axis=0)
        cx += (0.10 * walk[:, 0] + 0.04 * tremor[:, 0]) * W * base_s
        cy += (0.10 * walk[:, 1] + 0.04 * tremor[:, 1]) * H * base_s
        roll = np.radians(6.0) * np.sin(2 * math.pi * 3.1 * t + rng.uniform(0, 6))
    elif kind == "whip":
        # Whip pans across the still, about 200 output pixels a frame, with pauses between:
        # faces enter at one edge and leave at the other.
        span = max(sw - W * base_s, 1.0)
        x = np.empty(m)
        speed = 200.0 * base_s / SUB
        pos, d, pause, rest = sw / 2 - span / 2, 1, 0, 8
        if fresh:
            speed = rng.uniform(150.0, 260.0) * base_s / SUB
            pos = sw / 2 + rng.uniform(-0.5, 0.5) * span
            d, rest = int(rng.choice([-1, 1])), int(rng.integers(4, 13))
        for i in range(m):
            if pause > 0:
                pause -= 1
            else:
                pos += d * speed
                if pos > sw / 2 + span / 2 or pos < sw / 2 - span / 2:
                    pos = min(max(pos, sw / 2 - span / 2), sw / 2 + span / 2)
                    d, pause = -d, rest * SUB
            x[i] = pos
        cx = x
        s = np.full(m, base_s * 0.8)
    elif kind == "jerks":
        # A calm sway with two 200 ms jerks.
        cx += 0.05 * W * base_s * np.sin(2 * math.pi * 0.4 * t)
        cy += 0.03 * H * base_s * np.sin(2 * math.pi * 0.3 * t)
        jerks = [(0.5, 0.2, 0.35, -0.15, 8.0), (1.4, 0.2, 0.35, -0.15, 8.0)]
        if fresh:
            first = rng.uniform(0.2, n / FPS / 2 - 0.4)
            second = rng.uniform(first + 0.5, n / FPS - 0.3)
            jerks = [(at, rng.uniform(0.15, 0.25),
                      rng.choice([-1, 1]) * rng.uniform(0.25, 0.45),
                      rng.choice([-1, 1]) * rng.uniform(0.08, 0.2),
                      rng.choice([-1, 1]) * rng.uniform(4.0, 10.0)) for at in (first, second)]
        for start, dur, ax, ay, deg in jerks:
            k = (t >= start) & (t < start + dur)
            phase = (t[k] - start) / dur
            cx[k] += ax * W * base_s * np.sin(math.pi * phase)
            cy[k] += ay * H * base_s * np.sin(math.pi * phase)
            roll[k] += np.radians(deg) * np.sin(math.pi * phase)
    elif kind == "zoom":
        # A slow zoom drift out and in (faces change size by 2.5x).
        phase = rng.uniform(0, 2 * math.pi) if fresh else 0.0
        s = base_s * (0.6 + 0.9 * (0.5 - 0.5 * np.cos(2 * math.pi * t / (n / FPS) + phase)))
        cx += 0.05 * W * base_s * np.sin(2 * math.pi * 0.5 * t)
    return cx, cy, roll, s


def render(img, cx, cy, roll, s):
    """The output frame for one camera state: bilinear sampling of the still."""
    sh, sw = img.shape[:2]
    u, v = np.meshgrid(np.arange(W) - W / 2 + 0.5, np.arange(H) - H / 2 + 0.5)
    c, si = math.cos(roll), math.sin(roll)
    x = cx + s * (c * u - si * v) - 0.5
    y = cy + s * (si * u + c * v) - 0.5
    x0 = np.clip(np.floor(x).astype(np.int64), 0, sw - 2)
    y0 = np.clip(np.floor(y).astype(np.int64), 0, sh - 2)
    fx = np.clip(x - x0, 0, 1)[..., None]
    fy = np.clip(y - y0, 0, 1)[..., None]
    f = img.astype(np.float32)
    top = f[y0, x0] * (1 - fx) + f[y0, x0 + 1] * fx
    bot = f[y0 + 1, x0] * (1 - fx) + f[y0 + 1, x0 + 1] * fx
    out = top * (1 - fy) + bot * fy
    outside = (x < 0) | (y < 0) | (x > sw - 1) | (y > sh - 1)
    out[outside] = 0
    return out


def map_box(b, cx, cy, roll, s):
    """A still's box [x, y, w, h] in output pixels (the box around its turned corners)."""
    x, y, w, h = b
    c, si = math.cos(roll), math.sin(roll)
    us, vs = [], []
    for px, py in ((x, y), (x + w, y), (x, y + h), (x + w, y + h)):
        dx, dy = px - cx, py - cy
        us.append((c * dx + si * dy) / s + W / 2)
        vs.append((-si * dx + c * dy) / s + H / 2)
    x1, x2 = max(min(us), 0), min(max(us), W)
    y1, y2 = max(min(vs), 0), min(max(vs), H)
    if x2 - x1 < 4 or y2 - y1 < 4:
        return None
    return [int(math.floor(x1)), int(math.floor(y1)), int(math.ceil(x2 - math.floor(x1))),
            int(math.ceil(y2 - math.floor(y1)))]


def build(data, out, still, kind, n, seed, fresh=False):
    label = json.loads((data / "labels" / (still + ".gt.json")).read_text())
    boxes = label["frames"].get("0", [])
    img = load_rgb(data / still)
    rng = np.random.default_rng(seed)
    centre = (np.mean([b["box"][0] + b["box"][2] / 2 for b in boxes]),
              np.mean([b["box"][1] + b["box"][3] / 2 for b in boxes]))
    cx, cy, roll, s = paths(kind, n, img.shape[1], img.shape[0], rng, centre, fresh)
    name = f"{Path(still).stem}_{kind}"
    media = out / "motion" / f"{name}.mp4"
    media.parent.mkdir(parents=True, exist_ok=True)
    enc = subprocess.Popen(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                            "-s", f"{W}x{H}", "-r", str(FPS), "-i", "-", "-c:v", "libx264",
                            "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p",
                            str(media)], stdin=subprocess.PIPE)
    frames = {}
    for i in range(n):
        acc = np.zeros((H, W, 3), np.float32)
        for k in range(SUB):
            j = i * SUB + k
            acc += render(img, cx[j], cy[j], roll[j], s[j])
        enc.stdin.write(np.clip(acc / SUB + 0.5, 0, 255).astype(np.uint8).tobytes())
        mid = i * SUB + SUB // 2
        fb = []
        for b in boxes:
            m = map_box(b["box"], cx[mid], cy[mid], roll[mid], s[mid])
            if m is not None:
                lb = {"class": b["class"], "box": m, "small": m[3] < 12,
                      "ambiguous": bool(b.get("ambiguous", False))}
                # Where the object's light fell during the exposure: the box around its
                # sub-frame boxes (a smear, or the separate copies a whip leaves).
                subs = [e for e in (map_box(b["box"], cx[j], cy[j], roll[j], s[j])
                                    for j in range(i * SUB, i * SUB + SUB)) if e is not None]
                x0 = min(e[0] for e in subs)
                y0 = min(e[1] for e in subs)
                x1 = max(e[0] + e[2] for e in subs)
                y1 = max(e[1] + e[3] for e in subs)
                if [x0, y0, x1 - x0, y1 - y0] != m:
                    lb["exposure"] = [x0, y0, x1 - x0, y1 - y0]
                fb.append(lb)
        frames[str(i)] = fb
    enc.stdin.close()
    if enc.wait() != 0:
        raise SystemExit(f"ffmpeg failed on {media}")
    lab = out / "labels" / "motion" / f"{name}.mp4.gt.json"
    lab.parent.mkdir(parents=True, exist_ok=True)
    lab.write_text(json.dumps({
        "media": f"motion/{name}.mp4", "width": W, "height": H, "frame_count": n,
        "fps": f"{FPS}/1", "labelled_frames": "all", "frames": frames,
        "notes": f"scripts/make-motion-set.py: {still}, {kind}, seed {seed}"}))
    faces = sum(1 for f in frames.values() for b in f if b["class"] == "face" and not b["ambiguous"])
    plates = sum(1 for f in frames.values() for b in f if b["class"] == "plate" and not b["ambiguous"])
    print(f"{media.relative_to(out)}: {n} frames, {faces} face-frames, {plates} plate-frames")


def main():
    global W, H
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(ROOT / ".cache" / "motion-set"))
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--only", help="only stills whose path contains this")
    ap.add_argument("--size", default=f"{W}x{H}",
                    help="output size WxH (the set is 640x360; 1920x1080 checks large frames)")
    ap.add_argument("--stills", nargs="+", default=STILLS,
                    help="labelled stills under --data to film")
    ap.add_argument("--draw", type=int, default=0,
                    help="which draw of the random paths (0: the set; others are fresh "
                         "clips that nothing was tuned on)")
    a = ap.parse_args()
    W, H = (int(v) for v in a.size.split("x"))
    data, out = Path(a.data), Path(a.out)
    if not (data / "labels").is_dir():
        raise SystemExit(f"make-motion-set: no labelled data at {data}")
    for si, still in enumerate(a.stills):
        if a.only and a.only not in still:
            continue
        for ki, kind in enumerate(("shake", "whip", "jerks", "zoom")):
            build(data, out, still, kind, a.frames, seed=1000 * si + ki + 100_000 * a.draw,
                  fresh=a.draw > 0)


if __name__ == "__main__":
    main()
