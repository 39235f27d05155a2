#!/usr/bin/env python3
"""End-to-end benchmark: veil against deface 1.5.0 and a plain ffmpeg transcode, in one run.

Runs are alternated and repeated; medians, fps ratios and peak RSS are printed, then face and
plate recall of veil and deface side by side on the labelled clips (when ../shared/data or
$VEIL_DATA is present). Every number printed is measured in this run.

    scripts/bench_e2e.py [--reps N] [--clips PATH...] [--quick] [--memory] [--process]
                         [--ablation] [--veil BIN] [--baseline BIN] [--no-thorough]

Without --clips it measures the three clips of the speed targets: fixtures/face_720p.mp4,
../shared/data/egoblur/selfie_walk_608x1080.mp4 (portrait phone) and a 2560x1920 landscape
clip made from the two egoblur aria clips (faces and plates).

deface is installed into .cache/bench-venv from PyPI, pinned (scripts/bench-requirements.txt).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VEIL = ROOT / "target" / "release" / "veil"
VENV = ROOT / ".cache" / "bench-venv"
WORK = ROOT / ".cache" / "bench"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def ensure_deface():
    """deface in its venv, (re)installed whenever the pinned requirements change."""
    deface = VENV / "bin" / "deface"
    reqs = ROOT / "scripts" / "bench-requirements.txt"
    stamp = VENV / ".requirements"
    if deface.exists() and stamp.exists() and stamp.read_bytes() == reqs.read_bytes():
        return deface
    log("bench: installing deface 1.5.0 and its pinned requirements into", VENV)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "--no-deps", "-r",
                    str(reqs)], check=True)
    stamp.write_bytes(reqs.read_bytes())
    return deface


def probe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
                          "-show_entries", "stream=width,height,nb_read_packets",
                          "-of", "json", str(path)], check=True, capture_output=True, text=True)
    s = json.loads(out.stdout)["streams"][0]
    return int(s["width"]), int(s["height"]), int(s["nb_read_packets"])


def timed(cmd, env=None):
    """Runs cmd (no shell); returns (wall seconds, peak RSS MiB of the process itself)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: command failed: {' '.join(map(str, cmd))}\n{err[-2000:]}")
    return wall, ru.ru_maxrss / 1024.0


def make_60s(src):
    """A 60 s 720p clip with audio: the 720p fixture looped ten times."""
    WORK.mkdir(parents=True, exist_ok=True)
    dst = WORK / "face_720p_60s.mp4"
    if not dst.exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "9", "-i", str(src),
                        "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-c:a", "aac",
                        str(dst)], check=True)
    return dst


def process_overhead(reps):
    """`veil process` against `veil redact` on the same 60 s 720p clip, alternated."""
    clip = make_60s(ROOT / "fixtures" / "face_720p.mp4")
    w, h, frames = probe(clip)
    out_root = Path(tempfile.mkdtemp(prefix="veil-bench-process-"))
    runners = {
        "veil redact": lambda: [str(VEIL), "redact", str(clip), "-o", str(out_root / "r.mp4")],
        "veil process": lambda: [str(VEIL), "process", str(clip), "-o", str(out_root / "p")],
    }
    times = {k: [] for k in runners}
    rss = {k: 0.0 for k in runners}
    for rep in range(reps):
        order = list(runners) if rep % 2 == 0 else list(reversed(runners))
        for name in order:
            wall, mem = timed(runners[name]())
            times[name].append(wall)
            rss[name] = max(rss[name], mem)
            log(f"bench: {clip.name} {name} rep {rep + 1}: {wall:.2f} s")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n== {clip.name} ({w}x{h}, {frames} frames, {reps} reps, median) ==")
    print(f"{'run':<16} {'time s':>8} {'fps':>8} {'peak RSS MiB':>13}")
    for k in runners:
        print(f"{k:<16} {med[k]:>8.2f} {frames / med[k]:>8.1f} {rss[k]:>13.0f}")
    print(f"ratio veil process time / veil redact time: {med['veil process'] / med['veil redact']:.3f}x")


def memory_4k():
    """Peak RSS of `veil redact` (defaults) on the 720p fixture scaled to 3840x2160, 2 s and 4 s
    (the look-ahead window and x264 fill up in the first second, so both are past it)."""
    WORK.mkdir(parents=True, exist_ok=True)
    src = ROOT / "fixtures" / "face_720p.mp4"
    print("== peak RSS, veil redact (defaults), 3840x2160 from fixtures/face_720p.mp4 ==")
    print(f"{'clip':<12} {'frames':>7} {'time s':>8} {'fps':>6} {'peak RSS MiB':>13}")
    peaks = []
    for secs in (2, 4):
        clip = WORK / f"uhd_{secs}s.mp4"
        if not clip.exists():
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-t", str(secs), "-vf",
                            "scale=3840:2160", "-c:v", "libx264", "-preset", "veryfast", "-c:a",
                            "copy", str(clip)], check=True)
        frames = probe(clip)[2]
        with tempfile.TemporaryDirectory(prefix="veil-bench-") as d:
            wall, mem = timed([str(VEIL), "redact", str(clip), "-o", str(Path(d) / clip.name)])
        peaks.append(mem)
        print(f"{clip.name:<12} {frames:>7} {wall:>8.2f} {frames / wall:>6.2f} {mem:>13.0f}")
    print(f"ratio peak RSS 4 s / 2 s: {peaks[1] / peaks[0]:.3f}x; "
          f"under 1 GiB: {'yes' if max(peaks) < 1024 else 'NO'}")


def make_landscape(data):
    """The issue's landscape clip: both 2560x1920 egoblur clips (faces, then plates) three times
    over, 114 frames at 10 fps (a head-mounted camera's sampled frames)."""
    WORK.mkdir(parents=True, exist_ok=True)
    dst = WORK / "aria_mix_2560x1920.mp4"
    if not dst.exists():
        lst = WORK / "aria_mix.txt"
        lst.write_text("".join(f"file '{(data / 'egoblur' / n).resolve()}'\n"
                               for n in ("aria_faces_2560x1920.mp4", "aria_plates_2560x1920.mp4") * 3))
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(lst),
                        "-vf", "fps=10", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
                        str(dst)], check=True)
    return dst


# Configurations of veil measured besides the default for --ablation: the default with one
# change of the speed work undone at a time (intervals in frames assume 30 fps footage).
ABLATION = {
    "default - sparse keys": ["--key-every", "1"],
    "default - hires 1 s": ["--hires-every", "4"],
    "default - plates 0.4 s": ["--plate-every", "6"],
    "default - turns at candidates": ["--plate-turns-every", "1"],
    "default - tiles in turn": ["--plate-tiles", "99"],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--clips", nargs="*")
    ap.add_argument("--quick", action="store_true", help="720p clip only, 1 repetition")
    ap.add_argument("--process", action="store_true",
                    help="only compare `veil process` with `veil redact` on a 60 s 720p clip")
    ap.add_argument("--memory", action="store_true",
                    help="only peak RSS of veil redact on 4K clips of 2 s and 4 s (made from the "
                         "720p fixture), to check it stays under 1 GiB and does not grow")
    ap.add_argument("--ablation", action="store_true",
                    help="also time each change of the detection schedule alone and undone")
    ap.add_argument("--veil", default=str(VEIL), help="the veil binary to measure")
    ap.add_argument("--baseline", help="another veil binary, run with the same arguments")
    ap.add_argument("--no-thorough", action="store_true",
                    help="skip the --thorough runs (minutes a repetition on the 2560x1920 clip)")
    args = ap.parse_args()
    veil = Path(args.veil)
    if not veil.exists():
        raise SystemExit("bench: build first (make build)")
    if args.process:
        process_overhead(args.reps)
        return
    if args.memory:
        memory_4k()
        return
    deface = ensure_deface()
    data = Path(os.environ.get("VEIL_DATA", ROOT.parent / "shared" / "data"))
    clips = [Path(c) for c in args.clips] if args.clips else None
    if clips is None:
        clips = [ROOT / "fixtures" / "face_720p.mp4"]
        if not args.quick:
            if (data / "labels").is_dir():
                clips += [data / "egoblur" / "selfie_walk_608x1080.mp4", make_landscape(data)]
            else:
                log(f"bench: {data} not found: the portrait and landscape clips are skipped")
    reps = 1 if args.quick else args.reps
    out_root = Path(tempfile.mkdtemp(prefix="veil-bench-"))
    results = {}
    for clip in clips:
        w, h, frames = probe(clip)
        red = lambda extra: (lambda o: [str(veil), "redact", str(clip), "-o", str(o)] + extra)
        runners = {
            "veil": red([]),
            "veil thorough": red(["--thorough"]),
            # The baseline: deface at 640x360 (it finds no plates), whatever the aspect.
            "deface 640x360": lambda o: [str(deface), str(clip), "-o", str(o), "--scale",
                                         "640x360", "--backend", "onnxrt", "--keep-audio"],
            "ffmpeg x264": lambda o: ["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-c:v",
                                      "libx264", "-preset", "veryfast", "-c:a", "copy", str(o)],
        }
        if args.no_thorough:
            del runners["veil thorough"]
        if args.baseline:
            runners["baseline veil"] = lambda o: [args.baseline, "redact", str(clip), "-o", str(o)]
        if args.ablation:
            for name, extra in ABLATION.items():
                runners[name] = red(extra)
        times = {k: [] for k in runners}
        rss = {k: 0.0 for k in runners}
        for rep in range(reps):
            order = list(runners)
            if rep % 2:
                order.reverse()
            for name in order:
                d = out_root / name.replace(" ", "_")
                d.mkdir(exist_ok=True)
                o = d / clip.name
                wall, mem = timed(runners[name](o))
                times[name].append(wall)
                rss[name] = max(rss[name], mem)
                log(f"bench: {clip.name} {name} rep {rep + 1}: {wall:.2f} s")
        med = {k: statistics.median(v) for k, v in times.items()}
        results[clip.name] = {"size": f"{w}x{h}", "frames": frames, "median_s": med, "rss_mib": rss}
        print(f"\n== {clip.name} ({w}x{h}, {frames} frames, {reps} reps, median) ==")
        print(f"{'run':<32} {'time s':>8} {'fps':>8} {'peak RSS MiB':>13}")
        for k in runners:
            print(f"{k:<32} {med[k]:>8.2f} {frames / med[k]:>8.1f} {rss[k]:>13.0f}")
        vs_deface = med["deface 640x360"] / med["veil"]
        vs_x264 = med["veil"] / med["ffmpeg x264"]
        print(f"ratio veil fps / deface 640x360 fps: {vs_deface:.2f}x (target >= 4: "
              f"{'met' if vs_deface >= 4 else 'MISSED'})")
        print(f"ratio veil time / ffmpeg x264 time:  {vs_x264:.2f}x (target <= 3: "
              f"{'met' if vs_x264 <= 3 else 'MISSED'})")
        if "veil thorough" in med:
            print(f"ratio veil thorough time / veil time: {med['veil thorough'] / med['veil']:.2f}x")
        if args.baseline:
            print(f"ratio baseline veil time / veil time: {med['baseline veil'] / med['veil']:.2f}x")
    labelled = [c for c in clips if (data / "labels").is_dir() and data.resolve() in c.resolve().parents]
    if labelled:
        print("\n== recall on the labelled clips benchmarked above (pixel-based, veil eval) ==")
        for name in ("veil", "veil_thorough", "deface_640x360"):
            d = out_root / name
            if not d.is_dir():
                continue
            r = subprocess.run([str(veil), "eval", "--data", str(data), "--redacted-dir", str(d)],
                               capture_output=True, text=True)
            print(f"-- {name} --")
            print(r.stdout if r.returncode == 0 else r.stderr)
    (WORK).mkdir(parents=True, exist_ok=True)
    (WORK / "last.json").write_text(json.dumps(results, indent=2))
    print(f"outputs in {out_root}; results in {WORK / 'last.json'}")


if __name__ == "__main__":
    main()
