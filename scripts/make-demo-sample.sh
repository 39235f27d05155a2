#!/usr/bin/env bash
# Builds the demo's escalation sample from the committed fixture, so that the first highlights
# page a newcomer opens has something on it: fixtures/face_720p.mp4 looped to 30 s, with a
# gunshot-like bang at 10 s and 5 s of camera shake from 18 s. Only ffmpeg (aevalsrc, anoisesrc,
# crop expressions); deterministic (bitexact); idempotent (skips when the output is newer than
# this script and the fixture).
#
#   scripts/make-demo-sample.sh [OUT]     (default: .cache/demo/escalation_demo.mp4)
set -euo pipefail
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$repo/.cache/demo/escalation_demo.mp4}
src=$repo/fixtures/face_720p.mp4
if [[ -s $out && $out -nt $src && $out -nt ${BASH_SOURCE[0]} ]]; then
  echo "make-demo-sample: $out is up to date"
  exit 0
fi
mkdir -p "$(dirname -- "$out")"
tmp=$out.tmp.mp4
trap 'rm -f "$tmp"' EXIT
# Shake: three incommensurate sines plus 5.3 Hz steps, 30 px, from 18 s to 23 s.
on='between(t,18,23)'
sx="40+$on*30*(sin(2*PI*3.1*t)/2+sin(2*PI*5.3*t+1)/3+sin(2*PI*7.9*t+2)/4)"
sy="22+$on*20*(sin(2*PI*2.7*t+0.5)/2+sin(2*PI*4.9*t+1.5)/3+sin(2*PI*6.7*t+2.5)/4)"
# Bang: a noise burst with a 0.5 ms attack and a 30 ms decay plus a 95 Hz boom, at 10 s.
bang="if(between(t,10,10.8),(random(0)*2-1)*min(1,(t-10)/0.0005)*exp(-(t-10)/0.03)*0.9+0.5*sin(2*PI*95*(t-10))*exp(-(t-10)/0.08),0)"
ffmpeg -nostdin -hide_banner -loglevel error -y \
  -stream_loop 4 -i "$src" \
  -f lavfi -i "aevalsrc=exprs='$bang':sample_rate=48000:duration=30" \
  -f lavfi -i "anoisesrc=color=pink:amplitude=0.01:sample_rate=48000:duration=30:seed=7" \
  -filter_complex "[0:v]crop=1200:676:'$sx':'$sy',scale=1280:720,setsar=1[v];[0:a]aresample=48000,aformat=channel_layouts=mono,volume=0.1[a0];[a0][1:a][2:a]amix=inputs=3:normalize=0,alimiter=limit=0.97[a]" \
  -map "[v]" -map "[a]" -t 30 -c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p \
  -c:a aac -b:a 96k -fflags +bitexact -flags:v +bitexact -flags:a +bitexact "$tmp"
mv "$tmp" "$out"
echo "make-demo-sample: wrote $out"
