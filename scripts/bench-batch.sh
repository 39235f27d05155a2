#!/usr/bin/env bash
# Batch throughput: 20 fixture clips with --jobs 1, the default and --jobs 2, alternated and
# repeated; prints median wall time, files/s and frames/s, the ratio to --jobs 1, and peak RSS.
#
#   scripts/bench-batch.sh [REPS]      (default 2)
set -euo pipefail
reps=${1:-2}
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
veil="$repo/target/release/veil"
T=$(mktemp -d /tmp/veil-bench-batch.XXXXXX)
trap 'rm -rf "$T"' EXIT
clips=(face_carphone_352x288.mp4 people_vtest_768x576.mp4 synth_noaudio_320x240.mp4
       synth_vfr_320x240.mp4 synth_odd_321x241.mp4 synth_rotated_320x240.mp4 synth_audio_320x240.mkv)
mkdir -p "$T/in"
for i in $(seq 0 19); do
  c=${clips[$((i % ${#clips[@]}))]}
  cp "$repo/fixtures/$c" "$T/in/$(printf '%02d' "$i")_$c"
done
declare -A times rss
for r in $(seq "$reps"); do
  for mode in jobs1 default jobs2; do
    case $mode in jobs1) args=(--jobs 1) ;; jobs2) args=(--jobs 2) ;; *) args=() ;; esac
    rm -rf "$T/out"
    /usr/bin/time -f '%e %M' -o "$T/time" "$veil" batch "$T/in" -o "$T/out" "${args[@]}" >/dev/null 2>"$T/err" ||
      { cat "$T/err" >&2; exit 1; }
    read -r secs kb <"$T/time"
    times[$mode]+="$secs "
    (( kb > ${rss[$mode]:-0} )) && rss[$mode]=$kb
    echo "bench-batch: rep $r $mode ${secs}s" >&2
  done
done
frames=$(python3 -c "import json;print(sum(f['frames'] for f in json.load(open('$T/out/batch-report.json'))['files']))")
python3 - "$frames" "${times[jobs1]}" "${times[default]}" "${times[jobs2]}" "${rss[jobs1]}" "${rss[default]}" "${rss[jobs2]}" "$(nproc)" <<'PY'
import statistics, sys
frames = int(sys.argv[1]); t = [statistics.median(map(float, s.split())) for s in sys.argv[2:5]]
rss = [int(x) / 1024 for x in sys.argv[5:8]]; cores = sys.argv[8]
print(f"batch of 20 fixture clips ({frames} frames) on {cores} cores, median of the runs:")
for name, secs, mem in zip(["--jobs 1", "default", "--jobs 2"], t, rss):
    print(f"  {name:<9} {secs:7.1f} s  {20 / secs:5.2f} files/s  {frames / secs:6.1f} frames/s  peak RSS {mem:5.0f} MiB  ratio vs --jobs 1: {t[0] / secs:.2f}x")
PY
