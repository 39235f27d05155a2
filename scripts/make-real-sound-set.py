#!/usr/bin/env python3
"""Builds a realistic highlight evaluation set: calm body-cam-like clips with real recorded
conversation and everyday distractors (sirens, laughter, phones, doors, crowds, dogs, horns,
radio chatter, music, typing, wind, a passer-by close to the lens, head turns), and event clips
in which the escalation happens over the same kind of background (shouting, screams, bangs,
struggle, running, rising tension). Sources, licences and ground truth: scripts/REAL-SOUND.md.

    scripts/make-real-sound-set.py [OUTDIR]     (default: .cache/realsound at the repo root)
    scripts/make-real-sound-set.py --validation [OUTDIR]
                        18 event clips on fresh seeds (default: .cache/realsound-validation)
    scripts/make-real-sound-set.py --draw K [OUTDIR]
                        the same on other fresh seeds, one set per K >= 2 (default:
                        .cache/realsound-draw<K>), for a check nothing was tuned on

Sources are Debian packages, fetched with `apt-get download` at pinned versions, checked
against pinned sha256 and unpacked with `dpkg-deb -x` into .cache/sound-sources (nothing is
installed). Needs ffmpeg and python3-numpy. Deterministic (one seeded generator per clip).
Idempotent: returns at once when OUTDIR/index.json has this VERSION and every clip exists.
"""
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

try:
    import numpy as np
except ImportError:  # pragma: no cover
    sys.exit("make-real-sound-set: needs numpy (Debian: apt-get install python3-numpy)")

VERSION = 3
SR = 48_000
FPS = 30
W, H = 320, 240
REPO = Path(__file__).resolve().parent.parent
SOURCES = REPO / ".cache" / "sound-sources"

# Debian bookworm packages: version, sha256 of the .deb.
DEBS = {
    "fillets-ng-data-cs": ("1.0.1-1.1", "3ecef99b9456f1c80c9625c6f2418642b52d58e7167a46bad7a412db17991b14"),
    "fillets-ng-data": ("1.0.1-1.1", "25de89afd8b1adf7bcace8290248a6a22c89cd42300317e69000e162c032cf84"),
    "scorched3d-data": ("44+dfsg-8", "b0be0a6d561966a62b1f135e0e6f5681c85f12e34ecad5777cb1af9fbcb7f1da"),
    "btanks-data": ("0.9.8083-9", "fbe1a476d95c68fe73d87715f4f0aecc1bc5428a979cd19451722665c9dbb5ae"),
    "orage-data": ("4.16.0-2", "b12d019a7392221f08c78845327d895b99cdb04d9685fcb63ba22008703f8cc4"),
    "linphone-common": ("5.1.65-4", "4d6fa3b4401a7f320387351241a917b9945f8afbe342ab8bbf5ac8cec4713bfa"),
    "triplea": ("1.9.0.0.7062-2", "f43196c458195a7a99afdc7966269039ce31837df7a8d9693e2b0bab9245720e"),
    "wesnoth-1.16-data": ("1:1.16.9-1", "1012b964bd412a6770685e3324ae3b61e176caff7846192d1ee63d55cd621e26"),
    "warzone2100-data": ("4.3.3-3", "53ad292569e0bf9d16de1642d13629f29ed5dfb68896787e4c65ac60edc07d3d"),
    "freedroidrpg-data": ("1.0-1", "16c3cfeb82b1ec20c98493bbe1de2e356bd1aec832845630a5a7f12e303baa2b"),
    "hedgewars-data": ("1.0.2-6", "722225903a72604403e6e0026e40e9a6953f47a74d94efc5f55504bc05bb4761"),
}

FIL = "fillets-ng-data/usr/share/games/fillets-ng/sound"
FCS = "fillets-ng-data-cs/usr/share/games/fillets-ng/sound"
SC = "scorched3d-data/usr/share/games/scorched3d/data/globalmods"
BT = "btanks-data/usr/share/games/btanks/data/sounds"
TR = "triplea/usr/share/games/triplea/assets/sounds"
WN = "wesnoth-1.16-data/usr/share/games/wesnoth/1.16/data"
FD = "freedroidrpg-data/usr/share/freedroidrpg/data/sound/effects"
HW = "hedgewars-data/usr/share/games/hedgewars/Data/Sounds"
WZ = "warzone2100-data/usr/share/games/warzone2100/base.wz"

# Calm distractors: kind -> list of source files (relative to SOURCES) or "synth:*".
DISTRACTOR_FILES = {
    "siren": [f"{SC}/apoc/data/wav/misc/policecar.wav",
              f"{TR}/generic/game_start/game_start_01_air_raid_alarm.mp3",
              "synth:wail", "synth:yelp", "synth:two_tone", "synth:hi_lo"],
    "laughter": [f"{BT}/laugh01.ogg", f"{BT}/laugh02.ogg", f"{WN}/core/sounds/dwarf-laugh.wav",
                 f"{WN}/campaigns/World_Conquest/sounds/witches-laugh.wav",
                 f"{FIL}/aztec/en/bot-x-smich.ogg"],
    "phone": ["orage-data/usr/share/orage/sounds/Phone.wav",
              "linphone-common/usr/share/sounds/linphone/rings/oldphone-mono.wav",
              "linphone-common/usr/share/sounds/linphone/ringback.wav",
              f"{FIL}/bathyscaph/en/bat-t-phone0.ogg", f"{FIL}/bathyscaph/en/bat-t-phone1.ogg",
              f"{FIL}/bathyscaph/en/bat-t-budik.ogg", "synth:ringtone", "synth:ringtone"],
    "door": ["synth:door_slam", "synth:door_slam", "synth:door_slam",
             "orage-data/usr/share/orage/sounds/Knock.wav",
             f"{TR}/future/others/door_open.mp3", f"{FIL}/cabin1/en/k1-x-vrz.ogg"],
    "crowd": [f"{SC}/apoc/data/wav/misc/cheeringloop.wav",
              f"{TR}/generic/game_won/game_won_01_people_cheering_with_bells.mp3"],
    "dog": [f"{SC}/apoc/data/wav/misc/dog.wav", f"{SC}/apoc/data/wav/misc/dog2.wav",
            f"{SC}/apoc/data/wav/misc/dog3.wav"],
    "car_horn": [f"{SC}/apoc/data/wav/misc/carhorn{i}.wav" for i in range(1, 7)],
    "radio_chatter": ["wz:audio/tutorial", "wz:audio/memressp"],
    "close_voice": ["speech"],
    "music": [f"{FIL}/creatures/en/kor-room-music.ogg", f"{FIL}/cancan/en/kan-klavir-music.ogg"],
    "typing": ["synth:typing"],
    "wind": ["synth:wind"],
    "passing_vehicle": [f"{BT}/engine-car.ogg", f"{BT}/train.ogg", f"{BT}/engine-vehicle.ogg"],
    "passer_by": ["video"],
    "camera_turn": ["video"],
}
# Level of each distractor over the clip's speech RMS, dB (RMS of the sound while it sounds;
# for doors the 10 ms peak). Chosen as heard on body-cam footage: a siren passing close, a
# phone ringing in a pocket, a door closing in the same room.
DISTRACTOR_DB = {
    "siren": (2, 14), "laughter": (0, 9), "phone": (0, 10), "door": (6, 18), "crowd": (-2, 6),
    "dog": (0, 10), "car_horn": (0, 10), "radio_chatter": (-6, 2), "close_voice": (5, 8),
    "music": (-12, -4), "typing": (-10, 0), "wind": (0, 6), "passing_vehicle": (-4, 6),
}
SHOUT_LINES = ["Leavemealone", "Cutitout", "Illgetyou", "Youllregretthat", "Watchit", "Comeonthen",
               "Traitor", "Coward", "Stupid", "Gonnagetyou", "Justyouwait"]
SHOUT_VOICES = ["British", "Classic", "Default", "HillBilly", "Mobster", "Pirate", "Surfer", "Russian"]
SCREAMS = [f"{SC}/apoc/data/wav/misc/scream{i}.wav" for i in range(1, 5)] + [
    f"{WN}/core/sounds/human-female-die-{i}.ogg" for i in range(1, 4)] + [
    f"{FD}/Influencer_Scream_Sound_{i}.ogg" for i in range(0, 3)]
BANGS = [f"{HW}/shotgunfire.ogg", f"{HW}/gun.ogg", f"{HW}/explosion.ogg", f"{FD}/Glass_Break.ogg",
         "synth:gunshot", "synth:gunshot"]
GRUNTS = [f"{WN}/core/sounds/human-hit-{i}.ogg" for i in range(1, 6)] + [
    f"{WN}/core/sounds/human-old-hit-{i}.ogg" for i in range(1, 4)]


# ------------------------------------------------------------------------------- sources
def fetch_sources():
    SOURCES.mkdir(parents=True, exist_ok=True)
    for name, (version, sha) in DEBS.items():
        stamp = SOURCES / f"{name}.ok"
        if stamp.exists() and stamp.read_text().strip() == sha:
            continue
        debdir = SOURCES / "debs"
        debdir.mkdir(exist_ok=True)
        deb = next((p for p in debdir.glob(f"{name}_*.deb")
                    if hashlib.sha256(p.read_bytes()).hexdigest() == sha), None)
        if deb is None:
            print(f"make-real-sound-set: downloading {name} {version}", flush=True)
            r = subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=debdir,
                               capture_output=True, text=True)
            if r.returncode != 0 and "Unable to locate" in r.stderr + r.stdout:
                subprocess.run(["apt-get", "update", "-qq"], check=True)
                r = subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=debdir,
                                   capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"make-real-sound-set: apt-get download {name}={version} failed:\n{r.stderr}")
            deb = next(p for p in debdir.glob(f"{name}_*.deb"))
            got = hashlib.sha256(deb.read_bytes()).hexdigest()
            if got != sha:
                deb.unlink()
                sys.exit(f"make-real-sound-set: {name} sha256 {got} is not the pinned {sha}")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(SOURCES / name)], check=True)
        stamp.write_text(sha)
        deb.unlink()  # the unpacked tree is what is used; keep the cache small
    wz = SOURCES / "wz"
    if not (wz / ".ok").exists():
        with zipfile.ZipFile(SOURCES / WZ) as z:
            for m in z.namelist():
                if m.startswith(("audio/tutorial/", "audio/memressp/")) and m.endswith(".ogg"):
                    z.extract(m, wz)
        (wz / ".ok").write_text("ok")


_cache = {}


def load(rel, trim_db=-50.0):
    """Decodes a source to 48 kHz mono float32, trimmed where it drops below trim_db."""
    if rel in _cache:
        return _cache[rel]
    path = SOURCES / rel
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(SR),
                          "-f", "f32le", "-"], capture_output=True, check=True).stdout
    x = np.frombuffer(raw, np.float32).astype(np.float64)
    b = SR // 100
    n = len(x) // b
    if n > 0:
        lv = 10 * np.log10(np.mean(x[: n * b].reshape(n, b) ** 2, axis=1) + 1e-12)
        on = np.nonzero(lv > trim_db)[0]
        if len(on):
            x = x[on[0] * b: (on[-1] + 1) * b]
    _cache[rel] = x
    return x


def rms_db(x):
    return 10 * math.log10(float(np.mean(x ** 2)) + 1e-12)


def active_rms_db(x):
    """RMS over the 10 ms blocks within 30 dB of the loudest: the level while it sounds."""
    b = SR // 100
    n = max(1, len(x) // b)
    blocks = np.mean(x[: n * b].reshape(n, -1) ** 2, axis=1) + 1e-12
    lv = 10 * np.log10(blocks)
    keep = blocks[lv > lv.max() - 30]
    return 10 * math.log10(float(np.mean(keep)))


def peak10_db(x):
    b = SR // 100
    n = max(1, len(x) // b)
    return 10 * math.log10(float(np.max(np.mean(x[: n * b].reshape(n, -1) ** 2, axis=1))) + 1e-12)


def gain_to(x, db_now, db_want):
    return x * 10 ** ((db_want - db_now) / 20)


def fft_filter(x, lo=None, hi=None, tilt_db_per_oct=0.0):
    """Zero-phase band limit and spectral tilt in the frequency domain (fast on long signals)."""
    n = len(x)
    X = np.fft.rfft(x)
    f = np.fft.rfftfreq(n, 1 / SR)
    g = np.ones_like(f)
    if lo:
        g *= 1 / np.sqrt(1 + (lo / np.maximum(f, 1e-3)) ** 4)
    if hi:
        g *= 1 / np.sqrt(1 + (f / hi) ** 4)
    if tilt_db_per_oct:
        g *= 10 ** (tilt_db_per_oct * np.log2(np.maximum(f, 20) / 1000) / 20)
    return np.fft.irfft(X * g, n)


# ------------------------------------------------------------------------------- synthesis
def synth(name, rng, dur):
    t = np.arange(int(dur * SR)) / SR
    if name in ("wail", "yelp", "two_tone", "hi_lo"):
        if name == "wail":
            period = rng.uniform(3.5, 6.0)
            f = 650 + 650 * (0.5 - 0.5 * np.cos(2 * np.pi * t / period))
        elif name == "yelp":
            period = rng.uniform(0.25, 0.45)
            f = 700 + 700 * ((t / period) % 1.0)
        elif name == "two_tone":
            f = np.where((t / rng.uniform(0.5, 0.8)) % 2 < 1, 435.0, 580.0)
        else:
            f = np.where((t / rng.uniform(0.4, 0.6)) % 2 < 1, 670.0, 920.0)
        # A passing vehicle: Doppler from +4% to -4% around the moment it passes.
        tp = dur * rng.uniform(0.35, 0.65)
        dop = 1 + 0.04 * -np.tanh((t - tp) / rng.uniform(0.8, 2.0))
        ph = 2 * np.pi * np.cumsum(f * dop) / SR
        x = sum(np.sin(k * ph) / k ** 1.2 for k in range(1, 8))
        return x
    if name == "ringtone":
        notes = rng.choice([523.3, 587.3, 659.3, 784.0, 880.0, 1046.5, 1318.5], size=rng.integers(3, 7))
        nd = rng.uniform(0.09, 0.18)
        seq = np.zeros_like(t)
        cycle = len(notes) * nd + rng.uniform(0.6, 1.2)
        for c0 in np.arange(0, dur - cycle * 0.5, cycle):
            for i, fr in enumerate(notes):
                a, b = int((c0 + i * nd) * SR), int((c0 + (i + 1) * nd) * SR)
                if b > len(t):
                    break
                tt = t[a:b] - t[a]
                env = np.minimum(1, tt / 0.005) * np.exp(-tt / 0.12)
                seq[a:b] += env * (np.sin(2 * np.pi * fr * tt) + 0.3 * np.sin(4 * np.pi * fr * tt))
        return seq
    if name == "door_slam":
        x = np.zeros(int(0.9 * SR))
        tt = np.arange(len(x)) / SR
        f0 = rng.uniform(70, 130)
        x += np.sin(2 * np.pi * f0 * tt) * np.exp(-tt / rng.uniform(0.05, 0.12))
        click = rng.standard_normal(len(x)) * np.exp(-tt / 0.006)
        x += 0.6 * fft_filter(click, lo=800, hi=6000)
        rattle = rng.standard_normal(len(x)) * np.exp(-tt / 0.15) * (1 + np.sin(2 * np.pi * 31 * tt)) * 0.08
        x += fft_filter(rattle, lo=300, hi=3000)
        wood = np.sin(2 * np.pi * rng.uniform(180, 320) * tt) * np.exp(-tt / 0.04) * 0.5
        return x + wood
    if name == "typing":
        x = np.zeros(int(dur * SR))
        pos = 0.0
        while pos < dur - 0.1:
            a = int(pos * SR)
            k = rng.standard_normal(int(0.03 * SR)) * np.exp(-np.arange(int(0.03 * SR)) / (0.004 * SR))
            x[a:a + len(k)] += fft_filter(k, lo=1500, hi=8000) * rng.uniform(0.5, 1.0)
            pos += rng.uniform(0.08, 0.35) + (rng.uniform(0.5, 1.5) if rng.random() < 0.08 else 0)
        return x
    if name == "wind":
        n = rng.standard_normal(len(t))
        gust = 0.3 + np.abs(np.sin(np.pi * t / dur)) * (0.7 + 0.3 * np.sin(2 * np.pi * t * rng.uniform(0.3, 0.8)))
        return fft_filter(n, lo=20, hi=300) * gust
    if name == "gunshot":
        x = np.zeros(int(0.8 * SR))
        tt = np.arange(len(x)) / SR
        x += rng.standard_normal(len(x)) * np.minimum(1, tt / 0.0005) * np.exp(-tt / 0.03)
        x += 0.8 * np.sin(2 * np.pi * 95 * tt) * np.exp(-tt / 0.08)
        return x
    raise ValueError(name)


def fade(x, s=0.01):
    n = min(len(x) // 2, int(s * SR))
    if n > 0:
        r = np.linspace(0, 1, n)
        x = x.copy()
        x[:n] *= r
        x[-n:] *= r[::-1]
    return x


def loop_to(x, dur):
    n = int(dur * SR)
    if len(x) >= n:
        return x[:n]
    reps = int(math.ceil(n / len(x)))
    return np.tile(x, reps)[:n]


# ------------------------------------------------------------------------------- clips
class Clip:
    def __init__(self, dur, rng, speech_dbfs):
        self.dur = dur
        self.rng = rng
        self.n = int(dur * SR)
        self.audio = np.zeros(self.n)
        self.speech_db = speech_dbfs
        self.busy = []  # (start, end) s kept free of calm speech
        self.events = []
        self.distractors = []
        # Camera path (per frame): offsets added to the crop window; passer-by overlays.
        nf = int(dur * FPS)
        self.nf = nf
        self.cx = np.zeros(nf)
        self.cy = np.zeros(nf)
        self.people = []  # (f0, f1, side, width, height, shade)

    def add(self, x, at, gain_db=0.0):
        a = int(at * SR)
        x = x[: max(0, self.n - a)] * 10 ** (gain_db / 20)
        self.audio[a:a + len(x)] += x

    def free(self, a, b, margin=1.0):
        return all(b + margin < s or a > e + margin for s, e in self.busy)


def speech_lines(rng):
    """Fillets-ng Czech dialog lines of one level, in their file order (a conversation)."""
    levels = sorted(p for p in (SOURCES / FCS).iterdir() if (p / "cs").is_dir())
    lv = levels[rng.integers(len(levels))]
    return [str(p.relative_to(SOURCES)) for p in sorted((lv / "cs").glob("*.ogg"))]


def add_speech(c, t0, t1, level_db=None, ramp=None):
    """Conversation between t0 and t1 (s), skipping busy spans. ramp: (t_start, t_end, dB) adds
    a rising level and brightness (rising tension)."""
    rng = c.rng
    t = t0 + rng.uniform(0.2, 2.0)
    lines = []
    while t < t1:
        if not lines:
            lines = speech_lines(rng)
            lines = lines[rng.integers(len(lines)):]  # start somewhere in the scene
        x = load(lines.pop(0))
        d = len(x) / SR
        if t + d > t1 - 0.3:
            break
        if not c.free(t, t + d, 0.7):
            t += 1.0
            continue
        lvl = (c.speech_db if level_db is None else level_db) + rng.uniform(-3, 3)
        y = gain_to(x, active_rms_db(x), lvl)
        if ramp:
            r0, r1, up = ramp
            k = min(1.0, max(0.0, (t - r0) / (r1 - r0)))
            y = fft_filter(y, tilt_db_per_oct=1.2 * k) if k > 0 else y
            y = gain_to(y, active_rms_db(y), lvl + up * k)
        c.add(fade(y), t)
        gap = rng.uniform(0.25, 2.0) if rng.random() < 0.8 else rng.uniform(3, 9)
        if ramp:
            gap *= 1 - 0.7 * min(1.0, max(0.0, (t - ramp[0]) / (ramp[1] - ramp[0])))
        t += d + gap


def background(c):
    rng = c.rng
    white = rng.standard_normal(c.n)
    pink = fft_filter(white, lo=40, tilt_db_per_oct=-3.0)
    c.add(gain_to(pink, rms_db(pink), c.speech_db - rng.uniform(20, 30)), 0)
    # A street layer: a passing-traffic or rain bed, slowly swelling.
    bed = load(rng.choice([f"{BT}/train.ogg",
                           f"{SC}/none/data/wav/misc/rain.wav", f"{SC}/none/data/wav/misc/birds1.wav"]))
    bed = loop_to(fade(bed, 0.2), c.dur)
    tt = np.arange(len(bed)) / SR
    bed = bed * (0.6 + 0.4 * np.sin(2 * np.pi * tt / rng.uniform(20, 60) + rng.uniform(0, 6)))
    c.add(gain_to(bed, rms_db(bed), c.speech_db - rng.uniform(14, 24)), 0)


def walk(c):
    """A walking officer: a small vertical bob at step rate, sway at half of it, slow drift."""
    rng = c.rng
    f = np.arange(c.nf) / FPS
    step = rng.uniform(1.6, 2.0)
    c.cy += rng.uniform(1.5, 3.5) * np.sin(2 * np.pi * step * f + rng.uniform(0, 6))
    c.cx += rng.uniform(1.0, 3.0) * np.sin(np.pi * step * f + rng.uniform(0, 6))
    c.cx += 15 * np.sin(2 * np.pi * f / rng.uniform(60, 120) + rng.uniform(0, 6))
    c.cy += 8 * np.sin(2 * np.pi * f / rng.uniform(70, 130) + rng.uniform(0, 6))


def place_distractor(c, kind, t):
    """Places one calm distractor at t (s); returns its (onset, end, detail)."""
    rng = c.rng
    lo, hi = DISTRACTOR_DB.get(kind, (0, 0))
    lvl = c.speech_db + rng.uniform(lo, hi)
    src = str(rng.choice(DISTRACTOR_FILES[kind]))
    if kind == "camera_turn":
        a, d, hold = int(t * FPS), rng.uniform(0.8, 2.5), rng.uniform(3, 10)
        amp = rng.uniform(30, 70) * rng.choice([-1, 1])
        nf = c.nf
        f = np.arange(nf)
        turn = np.clip((f - a) / (d * FPS), 0, 1)
        back = np.clip((f - a - (d + hold) * FPS) / (d * FPS), 0, 1)
        c.cx += amp * (0.5 - 0.5 * np.cos(np.pi * turn)) - amp * (0.5 - 0.5 * np.cos(np.pi * back))
        return t, t + 2 * d + hold, f"{abs(amp):.0f} px pan over {d:.1f} s, back after {hold:.1f} s"
    if kind == "passer_by":
        # From a shoulder passing at arm's length to a head filling most of the frame.
        d = rng.uniform(0.4, 2.5)
        side = int(rng.choice([-1, 1]))
        c.people.append((int(t * FPS), int((t + d) * FPS), side, rng.uniform(140, 420),
                         rng.uniform(200, 480), rng.uniform(20, 90)))
        return t, t + d, f"a person crosses close to the lens in {d:.1f} s"
    if src == "speech":  # the officer's own close voice: louder, bass-boosted
        x = load(speech_lines(rng)[0])
        y = fft_filter(x, tilt_db_per_oct=-2.0)
        y = gain_to(y, active_rms_db(y), lvl)
        c.add(fade(y), t)
        return t, t + len(y) / SR, "close voice"
    if src.startswith("synth:"):
        name = src[6:]
        dur = {"wail": rng.uniform(8, 16), "yelp": rng.uniform(6, 12), "two_tone": rng.uniform(8, 14),
               "hi_lo": rng.uniform(8, 14), "ringtone": rng.uniform(4, 10), "typing": rng.uniform(5, 15),
               "wind": rng.uniform(3, 8)}.get(name, 1.0)
        x = synth(name, rng, dur)
        detail = name
    elif src.startswith("wz:"):
        d = SOURCES / "wz" / src[3:]
        files = sorted(d.rglob("*.ogg"))
        x = np.concatenate([load(str(p.relative_to(SOURCES))) for p in
                            [files[i] for i in rng.integers(len(files), size=2)]])
        # A radio: band-limited, a little saturated, with squelch noise around it.
        x = np.tanh(3 * fft_filter(x, lo=300, hi=3000) / (np.max(np.abs(x)) + 1e-9))
        sq = rng.standard_normal(int(0.15 * SR)) * 0.3
        x = np.concatenate([sq, x, sq])
        detail = "radio chatter"
    else:
        x = load(src)
        detail = Path(src).name
        if kind in ("siren", "phone", "crowd", "music", "passing_vehicle") and len(x) / SR < 6:
            x = loop_to(x, rng.uniform(6, 12) if kind != "phone" else rng.uniform(4, 9))
        if kind == "music":
            x = x[: int(rng.uniform(15, 40) * SR)]
    if kind == "siren":
        # Passing: swells in and fades out.
        tt = np.arange(len(x)) / SR
        env = np.clip(np.sin(np.pi * tt / tt[-1]), 0, 1) ** rng.uniform(0.8, 2.0)
        x = x * (0.08 + 0.92 * env)
    x = fade(x, 0.02)
    cur = peak10_db(x) if kind == "door" else active_rms_db(x)
    c.add(gain_to(x, cur, lvl), t)
    return t, t + len(x) / SR, detail


def plan_calm(c, count):
    rng = c.rng
    kinds = list(DISTRACTOR_FILES)
    slots = np.sort(rng.uniform(5, c.dur - 20, size=count))
    last = -100.0
    for t in slots:
        t = max(t, last + 6)
        if t > c.dur - 18:
            break
        kind = str(rng.choice(kinds))
        on, end, detail = place_distractor(c, kind, float(t))
        if kind in ("close_voice",):
            c.busy.append((on, end))
        c.distractors.append({"kind": kind, "onset": round(on, 3), "end": round(min(end, c.dur), 3),
                              "detail": detail})
        last = end


def shake(c, t0, t1, amp):
    rng = c.rng
    f = np.arange(c.nf) / FPS
    m = (f >= t0) & (f < t1)
    tt = f[m] - t0
    x = sum(np.sin(2 * np.pi * fr * tt + rng.uniform(0, 6)) for fr in (3.1, 5.3, 7.9))
    steps = np.repeat(rng.uniform(-1, 1, size=len(tt) // 6 + 1), 6)[: len(tt)]
    c.cx[m] += amp * (x / 3 + steps)
    y = sum(np.sin(2 * np.pi * fr * tt + rng.uniform(0, 6)) for fr in (2.7, 4.9, 6.7))
    c.cy[m] += 0.7 * amp * (y / 3 + np.repeat(rng.uniform(-1, 1, size=len(tt) // 5 + 1), 5)[: len(tt)])


def place_event(c, kind, t):
    """Places an escalation event at t; returns (onset, end, detail, source)."""
    rng = c.rng
    if kind == "shouting":
        if rng.random() < 0.5:
            voice = str(rng.choice(SHOUT_VOICES))
            pos, parts = t, []
            have = [ln for ln in SHOUT_LINES if (SOURCES / f"{HW}/voices/{voice}/{ln}.ogg").exists()]
            for line in rng.choice(have, size=rng.integers(2, 5), replace=False):
                x = load(f"{HW}/voices/{voice}/{line}.ogg")
                y = gain_to(x, active_rms_db(x), c.speech_db + rng.uniform(10, 18))
                c.add(fade(y), pos)
                parts.append(str(line))
                pos += len(x) / SR + rng.uniform(0.1, 0.6)
            return t, pos, "voice_lines", f"hedgewars {voice}: {', '.join(parts)}"
        src = str(rng.choice(SCREAMS))
        x = load(src)
        y = gain_to(x, active_rms_db(x), c.speech_db + rng.uniform(12, 20))
        c.add(fade(y), t)
        return t, t + len(y) / SR, "scream", Path(src).name
    if kind == "loud_impulse":
        src = str(rng.choice(BANGS))
        x = synth("gunshot", rng, 1) if src.startswith("synth:") else load(src)
        y = gain_to(x, peak10_db(x), c.speech_db + rng.uniform(22, 32))
        c.add(y, t)
        return t, t + len(y) / SR, "gunshot" if src.startswith("synth:") else Path(src).stem, src
    if kind == "struggle":
        d = rng.uniform(4, 10)
        shake(c, t, t + d, rng.uniform(12, 30))
        if rng.random() < 0.5:
            pos = t + 0.3
            while pos < t + d - 1:
                x = load(str(rng.choice(GRUNTS)))
                c.add(gain_to(x, active_rms_db(x), c.speech_db + rng.uniform(0, 8)), pos)
                pos += len(x) / SR + rng.uniform(0.5, 2.0)
            return t, t + d, "shake_grunts", "camera shake with grunts"
        return t, t + d, "shake", "camera shake"
    if kind == "running":
        d = rng.uniform(8, 15)
        f = np.arange(c.nf) / FPS
        m = (f >= t) & (f < t + d)
        hz = rng.uniform(2.5, 3.0)
        ramp = np.clip((f[m] - t) / 0.5, 0, 1) * np.clip((t + d - f[m]) / 0.5, 0, 1)
        c.cy[m] += ramp * rng.uniform(8, 15) * np.sin(2 * np.pi * hz * (f[m] - t))
        c.cx[m] += ramp * rng.uniform(5, 12) * np.sin(np.pi * hz * (f[m] - t)) + (f[m] - t) * rng.uniform(-2, 2)
        for k in range(int(d * hz)):
            c.add(synth("door_slam", rng, 1)[: int(0.12 * SR)] * 10 ** ((c.speech_db - 6) / 20), t + k / hz)
        return t, t + d, "run", f"{hz:.1f} Hz bob with footsteps"
    if kind == "rising_tension":
        d = rng.uniform(60, 90)
        up = rng.uniform(10, 14)
        add_speech(c, t, t + d, ramp=(t, t + d, up))
        c.busy.append((t, t + d))
        return t, t + d, "argument", f"conversation rising {up:.0f} dB over {d:.0f} s"
    raise ValueError(kind)


def frames(c, still, other):
    """Yields RGB frames: the crop window follows the camera path; passers-by (textured with a
    piece of another picture, as clothes are) are overlaid close to the lens."""
    sh, sw, _ = still.shape
    x0, y0 = (sw - W) / 2, (sh - H) / 2
    yy, xx = np.mgrid[0:H, 0:W]
    for k in range(c.nf):
        x = int(round(np.clip(x0 + c.cx[k], 0, sw - W)))
        y = int(round(np.clip(y0 + c.cy[k], 0, sh - H)))
        f = still[y:y + H, x:x + W].copy()
        for (f0, f1, side, pw, ph, shade) in c.people:
            if f0 <= k < f1:
                u = (k - f0) / max(1, f1 - f0)
                cxp = (-pw / 2 + u * (W + pw)) if side > 0 else (W + pw / 2 - u * (W + pw))
                head = ((xx - cxp) / (pw * 0.35)) ** 2 + ((yy - (H - ph * 0.75)) / (ph * 0.22)) ** 2 < 1
                body = ((xx - cxp) / (pw / 2)) ** 2 + ((yy - H) / (ph * 0.5)) ** 2 < 1
                m = head | body
                # The person's texture moves with the person.
                tex = np.roll(other[:H, :W], int(round(cxp)), axis=1).astype(np.float32) * (shade / 128 + 0.3)
                f[m] = np.clip(tex[m], 0, 255).astype(np.uint8)
        yield f


def load_still(idx):
    src = [("people_vtest_768x576.mp4", 1), ("people_vtest_768x576.mp4", 3), ("face_720p.mp4", 3),
           ("astronaut.png", 0)][idx % 4]
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-ss", str(src[1]), "-i", str(REPO / "fixtures" / src[0]),
                          "-frames:v", "1", "-vf", "scale=480:360:force_original_aspect_ratio=increase,crop=480:360",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    img = np.frombuffer(raw, np.uint8).reshape(360, 480, 3)
    return img[:, ::-1] if idx % 8 >= 4 else img


def limit(x):
    """A microphone limiter: soft knee above -2 dBFS."""
    k = 0.79
    a = np.abs(x)
    over = a > k
    y = x.copy()
    y[over] = np.sign(x[over]) * (k + (1 - k) * np.tanh((a[over] - k) / (1 - k)))
    return y


def build(spec):
    name, calm, seed, out = spec
    need = 0.0
    while True:
        rng = np.random.default_rng(seed)
        dur = max(need, float(rng.uniform(150, 170) if calm else rng.uniform(130, 170)))
        speech = float(rng.uniform(-31, -18))
        c = Clip(dur, rng, speech)
        background(c)
        walk(c)
        if calm:
            break
        kinds = spec_kinds(seed)
        t = float(rng.uniform(20, 30))
        for kind in kinds:
            on, end, detail, source = place_event(c, kind, t)
            c.events.append({"kind": kind, "onset": round(on, 3), "end": round(end, 3), "detail": detail,
                             "source": source})
            c.busy.append((on, end))
            t = end + float(rng.uniform(30, 40))
        # Every event ends at least 15 s before the clip does (a rising argument cut off by the
        # end of the clip would be labelled with a rise it never reaches): otherwise the clip
        # is drawn again, longer.
        last = max(e["end"] for e in c.events)
        if last + 15 <= dur:
            break
        need = last + 20
    add_speech(c, 0, dur)
    if calm:
        plan_calm(c, int(rng.integers(5, 8)))
    else:
        # One or two calm distractors far from the events, so events sit on the same background.
        for _ in range(2):
            for _try in range(20):
                t = float(rng.uniform(5, dur - 20))
                if all(t + 15 < e["onset"] - 5 or t > e["end"] + 10 for e in c.events):
                    kind = str(rng.choice([k for k in DISTRACTOR_FILES if k not in ("passer_by",)]))
                    on, end, detail = place_distractor(c, kind, t)
                    c.distractors.append({"kind": kind, "onset": round(on, 3), "end": round(min(end, dur), 3),
                                          "detail": detail})
                    break
    audio = limit(c.audio)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "a.f32"
        audio.astype(np.float32).tofile(wav)
        still = load_still(seed)
        other = load_still(seed + 5)
        p = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                              "-s", f"{W}x{H}", "-r", str(FPS), "-i", "-", "-f", "f32le", "-ar", str(SR), "-ac", "1",
                              "-i", str(wav), "-c:v", "libx264", "-preset", "veryfast", "-crf", "28",
                              "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-shortest",
                              "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
                              str(out / name)], stdin=subprocess.PIPE)
        for f in frames(c, still, other):
            p.stdin.write(f.tobytes())
        p.stdin.close()
        if p.wait() != 0:
            raise RuntimeError(f"ffmpeg failed on {name}")
    return {"file": name, "duration": round(dur, 3), "calm": calm, "speech_dbfs": round(speech, 1),
            "events": c.events, "distractors": c.distractors}


EVENT_PLAN = [["shouting", "running"], ["loud_impulse", "struggle"], ["rising_tension"], ["shouting", "loud_impulse"],
              ["struggle", "shouting"], ["running", "rising_tension"], ["loud_impulse"], ["shouting", "struggle"],
              ["rising_tension", "shouting"], ["running", "loud_impulse"], ["struggle", "running"],
              ["shouting", "rising_tension"], ["loud_impulse", "shouting"], ["struggle"]]


def spec_kinds(seed):
    return EVENT_PLAN[(seed - 1000) % len(EVENT_PLAN)]


def main():
    args = sys.argv[1:]
    draw = 0
    if "--draw" in args:
        k = args.index("--draw")
        try:
            draw = int(args[k + 1])
        except (IndexError, ValueError):
            sys.exit("make-real-sound-set: --draw takes a number, 2 or more")
        if draw < 2:
            sys.exit("make-real-sound-set: --draw takes a number, 2 or more (1 is --validation)")
        del args[k:k + 2]
    # --validation (draw 1): clips drawn with seeds the set never uses, to check that what was
    # tuned on the set holds on fresh draws: 18 event clips (every plan of EVENT_PLAN once, and
    # its four rising-tension plans once more) and 24 calm clips. --draw K: the same on seeds
    # no other draw uses.
    if "--validation" in args:
        args.remove("--validation")
        draw = draw or 1
    default = {0: "realsound", 1: "realsound-validation"}.get(draw, f"realsound-draw{draw}")
    out = Path(args[0]) if args else REPO / ".cache" / default
    idx = out / "index.json"
    if draw:
        n = len(EVENT_PLAN)
        tension = [i for i, p in enumerate(EVENT_PLAN) if "rising_tension" in p]
        # Draw 1 keeps the seeds it always had; draw K >= 2 moves two plan lengths on per draw
        # for events and 100 seeds for calm clips.
        ev, calm = 1000 + (18 + 2 * draw) * n, 3000 + 100 * (draw - 1)
        seeds = [ev + i for i in range(n)] + [ev + n + i for i in tension]
        tag = "fresh" if draw == 1 else f"fresh{draw}"
        specs = [(f"{tag}_{s}.mp4", False, s, out) for s in seeds]
        specs += [(f"{tag}_calm_{calm + i}.mp4", True, calm + i, out) for i in range(24)]
    else:
        specs = [(f"calm_{i + 1:02d}.mp4", True, 2000 + i, out) for i in range(24)]
        specs += [(f"event_{i + 1:02d}.mp4", False, 1000 + i, out) for i in range(len(EVENT_PLAN))]
    if idx.exists():
        try:
            j = json.loads(idx.read_text())
            listed = {c["file"] for c in j["clips"]}
            if (j.get("version") == VERSION and listed == {sp[0] for sp in specs}
                    and all((out / f).exists() for f in listed)):
                print(f"make-real-sound-set: {out} is up to date (version {VERSION})")
                return
        except (ValueError, KeyError):
            pass
    fetch_sources()
    listed = [f for fs in DISTRACTOR_FILES.values() for f in fs if "/" in f and ":" not in f]
    listed += SCREAMS + GRUNTS + [b for b in BANGS if ":" not in b]
    listed += [f"{HW}/voices/{v}/{line}.ogg" for v in SHOUT_VOICES for line in SHOUT_LINES[:9]]
    missing = [f for f in listed if not (SOURCES / f).exists()]
    if missing:
        sys.exit("make-real-sound-set: sources missing from the unpacked packages:\n  " + "\n  ".join(missing))
    out.mkdir(parents=True, exist_ok=True)
    for p in list(out.glob("calm_*.mp4")) + list(out.glob("event_*.mp4")) + list(out.glob("fresh*.mp4")) + [idx]:
        p.unlink(missing_ok=True)
    clips = []
    with ProcessPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as ex:
        for i, r in enumerate(ex.map(build, specs)):
            clips.append(r)
            print(f"make-real-sound-set: {i + 1}/{len(specs)} {r['file']}", flush=True)
    body = json.dumps({"version": VERSION, "clips": clips}, indent=1)
    tmp = idx.with_suffix(".tmp")
    tmp.write_text(body)
    tmp.rename(idx)
    calm_s = sum(c["duration"] for c in clips if c["calm"])
    print(f"make-real-sound-set: {len(clips)} clips, calm {calm_s / 60:.1f} min, "
          f"{sum(len(c['events']) for c in clips)} events, {sum(len(c['distractors']) for c in clips)} distractors")


if __name__ == "__main__":
    main()
