#!/usr/bin/env bash
# Builds the bad-input corpus used by tests/bad_inputs.rs: damaged, hostile and odd media made
# from the committed fixtures with ffmpeg and a little byte surgery. Deterministic.
#
#   scripts/make-bad-inputs.sh OUTDIR
set -euo pipefail
out=${1:?usage: make-bad-inputs.sh OUTDIR}
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
src="$repo/fixtures/face_carphone_352x288.mp4"
mkdir -p "$out"
ff() { ffmpeg -v error -y -nostdin "$@"; }

: > "$out/zero-bytes.mp4"
python3 - "$out" "$src" <<'PY'
import random, struct, sys
out, src = sys.argv[1], sys.argv[2]
rnd = random.Random(1234)
open(f"{out}/random-bytes.mp4", "wb").write(bytes(rnd.getrandbits(8) for _ in range(200_000)))
open(f"{out}/text-renamed.mp4", "w").write("This is a text file, not a video.\n" * 500)
data = open(src, "rb").read()

def atoms(buf):
    i = 0
    while i + 8 <= len(buf):
        size, kind = struct.unpack(">I4s", buf[i:i + 8])
        if size < 8:
            break
        yield i, size, kind
        i += size

top = {k: (o, s) for o, s, k in atoms(data)}
mo, ms = top[b"moov"]
do, ds = top[b"mdat"]
assert mo > do, "fixture should have its moov atom after mdat"
# moov atom missing: everything before it.
open(f"{out}/moov-missing.mp4", "wb").write(data[:mo])
# bit flips inside the media data (not in headers), deterministic positions.
flipped = bytearray(data)
for k in range(60):
    p = do + 16 + (ds - 32) * (k + 1) // 61
    flipped[p] ^= 0x5A
open(f"{out}/bit-flipped.mp4", "wb").write(bytes(flipped))
PY
# A fast-start copy (index first), cut in the middle of its media data.
ff -i "$src" -c copy -movflags +faststart "$out/.faststart.mp4"
python3 - "$out" <<'PY'
import sys
out = sys.argv[1]
d = open(f"{out}/.faststart.mp4", "rb").read()
open(f"{out}/truncated-middle.mp4", "wb").write(d[: len(d) // 2])
PY
rm -f "$out/.faststart.mp4"
ff -f lavfi -i "sine=frequency=440:duration=2" -c:a aac "$out/audio-only.mp4"
ff -f lavfi -i "color=c=gray:s=2x2:d=1:r=10" -vf scale=1:1 -c:v mpeg4 "$out/one-by-one.mp4"
# An AVI whose headers (and JPEG frames) claim 16384x16384, made from a 64x64 clip.
ff -f lavfi -i "color=c=black:s=64x64:d=0.2:r=25" -c:v mjpeg -f avi "$out/.small.avi"
python3 - "$out" <<'PY'
import struct, sys
out = sys.argv[1]
d = bytearray(open(f"{out}/.small.avi", "rb").read())
for tag, off in ((b"avih", 8 + 32), (b"strf", 8 + 4)):   # dwWidth/dwHeight, biWidth/biHeight
    struct.pack_into("<ii", d, d.find(tag) + off, 16384, 16384)
i = d.find(b"\xff\xc0")                                   # JPEG SOF0: height, width
while i >= 0:
    struct.pack_into(">HH", d, i + 5, 16384, 16384)
    i = d.find(b"\xff\xc0", i + 2)
open(f"{out}/huge-header.avi", "wb").write(bytes(d))
PY
rm -f "$out/.small.avi"
# Resolution change mid-stream: two H.264 elementary streams back to back.
ff -f lavfi -i "testsrc2=s=320x240:d=1:r=25" -c:v libx264 -bsf:v h264_mp4toannexb -f h264 "$out/.a.h264"
ff -f lavfi -i "testsrc2=s=640x480:d=1:r=25" -c:v libx264 -bsf:v h264_mp4toannexb -f h264 "$out/.b.h264"
cat "$out/.a.h264" "$out/.b.h264" > "$out/resolution-change.h264"
rm -f "$out/.a.h264" "$out/.b.h264"
# Duplicate and backwards timestamps (Matroska keeps what it is given).
ff -f lavfi -i "testsrc2=s=320x240:d=2:r=25" -c:v libx264 -bf 0 \
   -bsf:v "setts=pts=if(eq(N\,10)\,PREV_OUTPTS\,if(eq(N\,20)\,PTS-400\,PTS)):dts=if(eq(N\,10)\,PREV_OUTDTS\,if(eq(N\,20)\,DTS-400\,DTS))" \
   "$out/backwards-timestamps.mkv" || cp "$repo/fixtures/synth_audio_320x240.mkv" "$out/backwards-timestamps.mkv"
# A one-hour gap between two frames of a variable-frame-rate clip.
ff -f lavfi -i "testsrc2=s=320x240:d=1:r=10" -c:v libx264 -bf 0 -enc_time_base:v 1/1000 \
   -bsf:v "setts=ts=if(gte(N\,5)\,TS+3600000\,TS)" "$out/vfr-hour-gap.mkv"
echo "bad-input corpus in $out:"
ls -la "$out"
