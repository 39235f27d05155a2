#!/usr/bin/env bash
# The GPU check in one go: veil on the CPU vs the CUDA execution provider vs the
# CUDA execution provider with NVDEC/NVENC, on a 1080p30 clip, with fps, peak
# memory and a recall check of each GPU run against the CPU run. See deploy/GPU.md.
#
#   scripts/gpu-check.sh bundle [DIR] [OPTIONS]    on the CPU (build) machine
#   scripts/gpu-check.sh run [DIR]                 on the GPU machine
#
# `bundle` builds `cargo build --release --features cuda` and lays out DIR
# (default target/gpu-bundle) with everything the GPU machine needs and nothing
# it might lack (it may have no Rust, no package registry, no network): the
# veil binary (debug info stripped), the shared libraries it needs except
# glibc's own (FFmpeg and everything below it; libstdc++ and libgcc_s go to
# lib/compat/ and are used only when the host's are too old), ffmpeg and
# ffprobe, the GPU build of ONNX Runtime (<cache>/ort-gpu/, installed by
# `VEIL_GPU=1 scripts/setup.sh`, which this runs when it is missing), the
# default face and plate models, a 1080p30 H.264 clip made from
# fixtures/face_720p.mp4, and two scripts, run.sh (the GPU side) and
# compare_audits.py (the recall check). Then it packs DIR.tar.xz (xz, because
# Python's standard library can unpack it where no xz is installed) and, when
# that is over 64 MiB, splits it into DIR.tar.xz.part-NN-of-MM files.
#
#   --no-build     use the existing target/release/veil as it is (no cargo);
#                  a CPU-only build still bundles and runs, its CUDA runs fail
#   --seconds N    length of the test clip (default 30, i.e. 900 frames)
#   --plates-clip PATH  a video with licence plates for the last third of the
#                  clip, cut to 1920x1080 at its own scale (default: $VEIL_DATA,
#                  else ../shared/data, then egoblur/aria_plates_2560x1920.mp4,
#                  when it exists; "" for faces only)
#   --sm ARCH      keep only the sm_ARCH GPU code in
#                  libonnxruntime_providers_cuda.so (90 for H100/H200): the other
#                  architectures' kernels are zeroed in place, which cuts the
#                  packed file from ~186 MB to ~52 MB; no longer the pinned file
#   --cuda-libs    also bundle the CUDA 13 / cuDNN 9 libraries from
#                  <cache>/ort-gpu/ (VEIL_CUDA_LIBS=1 scripts/setup.sh), for a
#                  host that has the NVIDIA driver but no CUDA; ~1.3 GB packed
#   --part-mib N   size of the parts when the archive is over 64 MiB (default
#                  56, leaving room for the repository that travels with a part)
#   --no-archive   lay out DIR only
#
# `run` runs DIR/run.sh. When DIR is not there but DIR.tar.xz or all of its
# DIR.tar.xz.part-NN-of-MM files are, it unpacks them first (xz, else python3).
# run.sh's exit status: 0 all runs passed, 1 a run failed, 2 the recall check
# failed. Its results are in DIR/out/ (and in $OUT when that is set).
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
prog=gpu-check
ORT_LIB=libonnxruntime.so.1.31.1
LIMIT_MIB=64
CLIP_VERSION=2

say() { echo "$prog: $*"; }
die() {
  echo "$prog: $*" >&2
  exit 1
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
bytes_of() { du -sb -- "$1" | cut -f1; }
# A path as given: relative ones are relative to where we were started.
absolute() { if [[ $1 == /* ]]; then echo "$1"; else echo "$PWD/$1"; fi; }

ldconfig_p() { { command -v ldconfig >/dev/null 2>&1 && ldconfig -p; } || /sbin/ldconfig -p; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
  exit "${1:-2}"
}

# --- bundle ---------------------------------------------------------------

# glibc's own libraries: always the host's, never bundled.
GLIBC_CORE='^(linux-vdso\.so\.1|linux-gate\.so\.1|ld-linux-x86-64\.so\.2|libc\.so\.6|libm\.so\.6|libmvec\.so\.1|libdl\.so\.2|librt\.so\.1|libpthread\.so\.0|libresolv\.so\.2|libutil\.so\.1|libanl\.so\.1|libnss_[a-z]+\.so\.2|libBrokenLocale\.so\.1|libthread_db\.so\.1)$'
# The NVIDIA driver's libraries: always the host's (they must match its kernel module).
DRIVER_LIBS='^(libcuda\.so\.1|libnvcuvid\.so\.1|libnvidia-[a-z0-9-]+\.so(\.[0-9]+)*|libnvoptix\.so\.1)$'
COMPAT_LIBS='^(libstdc\+\+\.so\.6|libgcc_s\.so\.1)$'

# Prints "soname path" for each library the given programs need, glibc's excepted.
needed_libs() {
  local f line name path
  for f in "$@"; do
    while IFS= read -r line; do
      if [[ $line == *"not found"* ]]; then
        die "$f needs a library this machine lacks: ${line#"${line%%[![:space:]]*}"}"
      fi
      if [[ $line =~ ^[[:space:]]*([^[:space:]]+)[[:space:]]+=\>[[:space:]]+(/[^[:space:]]+) ]]; then
        name=${BASH_REMATCH[1]}
        path=${BASH_REMATCH[2]}
        [[ $name =~ $GLIBC_CORE || $name =~ $DRIVER_LIBS ]] && continue
        echo "$name $path"
      fi
    done < <(ldd "$f")
  done | sort -u
}

# Highest version of a symbol-version family (GLIBC_, GLIBCXX_, ...) that the
# given ELF files require, skipping the libraries that define them.
max_version_needed() {
  local family=$1
  shift
  local f
  for f in "$@"; do
    case ${f##*/} in libstdc++.so.6 | libgcc_s.so.1) continue ;; esac
    readelf -V -W "$f" 2>/dev/null | grep -oE "Name: ${family}_[0-9][0-9.]*" || true
  done | sed 's/^Name: //' | sort -Vu | tail -n 1
}

# Zeroes, in place, every cubin of libonnxruntime_providers_cuda.so that is not
# for sm_$2 (PTX is kept). The fatbin headers stay, so the driver still sees
# every entry and picks the sm_$2 one; zeroed payloads pack to nothing.
prune_fatbin() {
  python3 - "$1" "$2" <<'PY'
import struct, sys
path, keep = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    data = bytearray(f.read())
    if data[:4] != b"\x7fELF" or data[4] != 2:
        sys.exit("not a 64-bit ELF file: %s" % path)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    def section(i):
        name, _typ, _flags, _addr, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, off, size
    _, stroff, _ = section(shstrndx)
    fatbin = None
    for i in range(shnum):
        name, off, size = section(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] == b".nv_fatbin":
            fatbin = (off, size)
    if fatbin is None:
        sys.exit("%s has no .nv_fatbin section" % path)
    p, end = fatbin[0], fatbin[0] + fatbin[1]
    kept = zeroed = binaries = without = 0
    while p + 16 <= end:
        magic, _ver, hsize, fsize = struct.unpack_from("<IHHQ", data, p)
        if magic != 0xBA55ED50:
            p += 8  # fatbins are 8-byte aligned, with padding between them
            continue
        binaries += 1
        usable = False
        q, stop = p + hsize, p + hsize + fsize
        while q < stop:
            kind, _v, ehsize, psize = struct.unpack_from("<HHIQ", data, q)
            arch, = struct.unpack_from("<I", data, q + 28)
            if kind == 2 and arch != keep:      # a cubin for another GPU
                data[q + ehsize:q + ehsize + psize] = bytes(psize)
                zeroed += psize
            else:
                kept += psize
                usable = usable or (kind == 2 or arch <= keep)
            q += ehsize + psize
        without += not usable
        p = stop
    f.seek(0)
    f.write(data)
print("%d fatbins: kept %.1f MiB of sm_%d code (and PTX), zeroed %.1f MiB; %d fatbins hold no "
      "code for sm_%d (the same in the original)"
      % (binaries, kept / 2**20, keep, zeroed / 2**20, without, keep))
PY
}

# Default face and plate models from the manifest: "file sha256" lines.
default_models() {
  python3 - "$repo/models/models.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    doc = tomllib.load(f)
for m in doc.get("model", []):
    if m.get("default") and m.get("task") in ("face", "plate"):
        print(m["file"], m["sha256"])
PY
}

# make_clip OUT SECONDS [PLATES]: fixtures/face_720p.mp4 scaled to 1080p and
# looped; with PLATES (a video with licence plates), the last third of the clip
# is that video, looped and cut to 1920x1080 at its own scale (plates are small:
# scaling down would lose them), or fitted and padded when it is smaller.
make_clip() {
  local src=$repo/fixtures/face_720p.mp4 total=$2 plates=${3:-}
  [[ -f $src ]] || die "missing $src"
  command -v ffmpeg >/dev/null 2>&1 || die "ffmpeg is needed to make the clip (scripts/setup.sh installs it)"
  mkdir -p "$(dirname "$1")"
  local enc=(-c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p -c:a aac -b:a 64k -movflags +faststart)
  if [[ -z $plates ]]; then
    say "making a $total s 1080p30 H.264 clip from fixtures/face_720p.mp4 (takes about as long as it plays)"
    ffmpeg -nostdin -hide_banner -loglevel error -y -stream_loop -1 -i "$src" -t "$total" \
      -vf scale=1920:1080:flags=bicubic,fps=30 "${enc[@]}" "$1.tmp.mp4"
  else
    local p=$((total / 3)) f
    ((p >= 1)) || p=1
    f=$((total - p))
    ((f >= 1)) || die "--seconds must be at least 2 with a plates clip"
    say "making a $total s 1080p30 H.264 clip: $f s of fixtures/face_720p.mp4, then $p s of ${plates##*/} (takes about as long as it plays)"
    local fv="scale=1920:1080:flags=bicubic,fps=30,format=yuv420p,setsar=1"
    # EgoBlur's aria_plates clip (2560x1920): this window keeps 53 of its 82
    # labelled plates (labels/egoblur/*.gt.json); other clips: the centre.
    local crop="crop=w='min(iw,1920)':h='min(ih,1080)'"
    [[ ${plates##*/} == aria_plates_2560x1920.mp4 ]] && crop="crop=1920:1080:64:704"
    local pv="$crop,scale=1920:1080:force_original_aspect_ratio=decrease:flags=bicubic"
    pv+=",pad=1920:1080:(ow-iw)/2:(oh-ih)/2,fps=30,format=yuv420p,setsar=1"
    local af="aformat=sample_rates=48000:channel_layouts=mono"
    # A plates video without sound gets silence (concat needs audio on both sides).
    local silence=() pa=1:a
    if [[ -z $(ffprobe -v error -select_streams a -show_entries stream=index -of csv=p=0 "$plates") ]]; then
      silence=(-f lavfi -i anullsrc=r=48000:cl=mono)
      pa=2:a
    fi
    ffmpeg -nostdin -hide_banner -loglevel error -y \
      -stream_loop -1 -i "$src" -stream_loop -1 -i "$plates" "${silence[@]}" -filter_complex "\
[0:v]trim=duration=$f,setpts=PTS-STARTPTS,${fv}[v0];[0:a]atrim=duration=$f,asetpts=PTS-STARTPTS,${af}[a0];\
[1:v]trim=duration=$p,setpts=PTS-STARTPTS,${pv}[v1];[$pa]atrim=duration=$p,asetpts=PTS-STARTPTS,${af}[a1];\
[v0][a0][v1][a1]concat=n=2:v=1:a=1[v][a]" -map '[v]' -map '[a]' "${enc[@]}" "$1.tmp.mp4"
  fi
  mv -f "$1.tmp.mp4" "$1"
}

bundle() {
  local dir="" build=1 seconds=30 sm="" cuda_libs=0 part_mib=56 archive=1
  local plates=${VEIL_DATA:-$repo/../shared/data}/egoblur/aria_plates_2560x1920.mp4
  [[ -f $plates ]] || plates=""
  while (($#)); do
    case $1 in
      --no-build) build=0 ;;
      --seconds) seconds=${2:?--seconds needs a value}; shift ;;
      --plates-clip) plates=${2?--plates-clip needs a value}; shift ;;
      --sm) sm=${2:?--sm needs a value}; shift ;;
      --cuda-libs) cuda_libs=1 ;;
      --part-mib) part_mib=${2:?--part-mib needs a value}; shift ;;
      --no-archive) archive=0 ;;
      -h | --help) usage 0 ;;
      -*) die "bundle: unknown option $1 (see --help)" ;;
      *) [[ -z $dir ]] || die "bundle: one DIR only"; dir=$1 ;;
    esac
    shift
  done
  [[ $seconds =~ ^[1-9][0-9]*$ ]] || die "--seconds must be a whole number of seconds"
  if [[ -n $plates ]]; then
    plates=$(absolute "$plates")
    [[ -f $plates ]] || die "--plates-clip: no file $plates"
  fi
  [[ -z $sm || $sm =~ ^[1-9][0-9]+$ ]] || die "--sm takes a number such as 90 (sm_90)"
  [[ $part_mib =~ ^[1-9][0-9]*$ && $part_mib -lt $LIMIT_MIB ]] || die "--part-mib must be 1..$((LIMIT_MIB - 1))"
  for tool in ldd readelf python3 tar xz awk; do
    command -v "$tool" >/dev/null 2>&1 || die "needs $tool"
  done

  local target_dir=${CARGO_TARGET_DIR:-$repo/target}
  target_dir=$(absolute "$target_dir")
  dir=$(absolute "${dir:-$target_dir/gpu-bundle}")
  dir=${dir%/}
  case $dir in / | "$repo" | "$HOME" | "$target_dir") die "refusing to use $dir as the bundle folder" ;; esac
  if [[ -e $dir && ! -f $dir/.veil-gpu-bundle ]]; then
    die "$dir exists and is not a bundle made by this script; name another folder"
  fi
  local cache=${VEIL_CACHE:-$repo/.cache}
  cache=$(absolute "$cache")

  # 1. the binary
  local veil=$target_dir/release/veil features
  if ((build)); then
    command -v cargo >/dev/null 2>&1 || die "cargo is not installed (or use --no-build)"
    say "building: cargo build --release --features cuda"
    (cd "$repo" && cargo build --release --features cuda)
    features=cuda
  else
    [[ -x $veil ]] || die "--no-build: there is no $veil to bundle"
    # A CPU-only build carries the messages that refuse CUDA (src/accel.rs, src/runtime.rs).
    # shellcheck disable=SC2016  # the backquotes are part of the message
    if grep -qaE 'built without GPU support|built without the `cuda` feature' "$veil"; then
      features="none (CPU-only build)"
      say "warning: $veil looks like a CPU-only build: its CUDA runs will fail (fine for a size or dry run)"
    else
      features="unknown (--no-build)"
    fi
  fi
  [[ -x $veil ]] || die "no binary at $veil"

  # 2. the GPU runtime and the models, installed when missing (needs the registry)
  local fetch=(--gpu --quiet)
  ((cuda_libs)) && fetch+=(--cuda-libs)
  say "checking the GPU runtime and models in $cache"
  VEIL_CACHE=$cache python3 "$repo/scripts/fetch_assets.py" "${fetch[@]}" ||
    die "could not install the GPU runtime; run VEIL_GPU=1 scripts/setup.sh"

  # 3. lay out the folder
  rm -rf -- "$dir"
  mkdir -p "$dir"/{bin,lib/compat,ort-gpu,models}
  : >"$dir/.veil-gpu-bundle"
  if command -v objcopy >/dev/null 2>&1; then
    objcopy --strip-debug "$veil" "$dir/bin/veil"
  else
    cp "$veil" "$dir/bin/veil"
  fi
  local progs=("$veil") p
  for p in ffmpeg ffprobe; do
    if command -v "$p" >/dev/null 2>&1; then
      cp -L "$(command -v "$p")" "$dir/bin/$p"
      progs+=("$(command -v "$p")")
    fi
  done
  local name path nlibs=0 libs
  libs=$(needed_libs "${progs[@]}") || die "could not list the libraries veil needs"
  while read -r name path; do
    if [[ $name =~ $COMPAT_LIBS ]]; then
      cp -L "$path" "$dir/lib/compat/$name"
    else
      cp -L "$path" "$dir/lib/$name"
      nlibs=$((nlibs + 1))
    fi
  done <<<"$libs"
  # libstdc++ for the ONNX Runtime libraries too, whatever veil links.
  for name in libstdc++.so.6 libgcc_s.so.1; do
    if [[ ! -f $dir/lib/compat/$name ]]; then
      path=$(ldconfig_p | awk -v n="$name" '$1 == n && /x86-64/ { print $NF; exit }')
      [[ -z $path ]] || cp -L "$path" "$dir/lib/compat/$name"
    fi
  done

  local f
  for f in "$ORT_LIB" libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do
    [[ -f $cache/ort-gpu/$f ]] || die "missing $cache/ort-gpu/$f (VEIL_GPU=1 scripts/setup.sh)"
    cp "$cache/ort-gpu/$f" "$dir/ort-gpu/$f"
  done
  local prune_note="none (the pinned file)"
  if [[ -n $sm ]]; then
    say "keeping only sm_$sm code in libonnxruntime_providers_cuda.so"
    prune_note="sm_$sm only: $(prune_fatbin "$dir/ort-gpu/libonnxruntime_providers_cuda.so" "$sm")" ||
      die "could not prune libonnxruntime_providers_cuda.so"
    say "$prune_note"
  fi
  if ((cuda_libs)); then
    for f in "$cache"/ort-gpu/*.so*; do
      case ${f##*/} in "$ORT_LIB" | libonnxruntime_providers_*) continue ;; esac
      cp "$f" "$dir/ort-gpu/"
    done
  fi

  local file sha models
  models=$(default_models) || die "could not read models/models.toml"
  while read -r file sha; do
    [[ -f $cache/models/$file ]] || die "missing $cache/models/$file (scripts/setup.sh)"
    [[ $(sha256sum "$cache/models/$file" | cut -d' ' -f1) == "$sha" ]] ||
      die "$cache/models/$file does not match its pin; run scripts/setup.sh"
    cp "$cache/models/$file" "$dir/models/$file"
  done <<<"$models"

  # Cached by name: bump CLIP_VERSION whenever make_clip's output changes.
  local clip=$cache/gpu-check/face_1080p30_${seconds}s_v$CLIP_VERSION.mp4 clip_note
  clip_note="fixtures/face_720p.mp4 scaled to 1920x1080, looped to $seconds s"
  if [[ -n $plates ]]; then
    clip=$cache/gpu-check/face+$(basename "${plates%.*}")_1080p30_${seconds}s_v$CLIP_VERSION.mp4
    clip_note="$((seconds - seconds / 3)) s of fixtures/face_720p.mp4 scaled to 1920x1080, then $((seconds / 3)) s of $(basename "$plates") (looped, a 1920x1080 window at full scale)"
  fi
  if [[ ! -f $clip || $repo/fixtures/face_720p.mp4 -nt $clip || (-n $plates && $plates -nt $clip) ]]; then
    make_clip "$clip" "$seconds" "$plates"
  fi
  cp "$clip" "$dir/clip_1080p.mp4"

  write_run_sh "$dir/run.sh"
  write_compare "$dir/compare_audits.py"
  chmod +x "$dir/run.sh" "$dir/compare_audits.py"

  # 4. what the host must provide, and a record of what is here
  local elfs=()
  mapfile -t elfs < <(find "$dir/bin" "$dir/lib" "$dir/ort-gpu" -type f)
  local need_glibc need_glibcxx
  need_glibc=$(max_version_needed GLIBC "${elfs[@]}")
  need_glibcxx=$(max_version_needed GLIBCXX "${elfs[@]}")
  printf '%s\n' "$need_glibcxx" >"$dir/lib/compat/GLIBCXX_NEEDED"
  printf '%s\n' "$need_glibc" >"$dir/lib/GLIBC_NEEDED"
  {
    echo "veil GPU check bundle, made $(date -u +%Y-%m-%dT%H:%M:%SZ) by scripts/gpu-check.sh"
    echo "commit: $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "built on: $(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null), $(uname -m)"
    echo "veil: $veil (features: $features), sha256 $(sha256sum "$veil" | cut -d' ' -f1)"
    echo "cuda provider pruning: $prune_note"
    echo "needs on the host: glibc >= ${need_glibc#GLIBC_}, an NVIDIA driver >= 580 (CUDA 13.0)"
    echo "libstdc++ needed: $need_glibcxx (bundled in lib/compat/, used if the host's is older)"
    echo "clip: $clip_note; libx264 crf 23"
    echo
    echo "sha256 of every file:"
    (cd "$dir" && find . -type f ! -name MANIFEST.txt ! -name .veil-gpu-bundle -printf '%P\n' |
      sort | xargs -d '\n' sha256sum)
  } >"$dir/MANIFEST.txt"

  # 5. sizes and the archive
  say "bundle: $dir"
  local part
  for part in bin lib ort-gpu models clip_1080p.mp4; do
    printf '  %-16s %12s\n' "$part" "$(mib "$(bytes_of "$dir/$part")")"
  done
  local total
  total=$(bytes_of "$dir")
  printf '  %-16s %12s  (%d libraries in lib/, plus lib/compat/)\n' total "$(mib "$total")" "$nlibs"
  ((archive)) || return 0

  local tarball=$dir.tar.xz parent base
  parent=$(dirname "$dir")
  base=$(basename "$dir")
  rm -f -- "$tarball" "$tarball".part-* "$tarball.sha256"
  say "packing $tarball (xz; a minute or more for the GPU runtime)"
  tar -C "$parent" --owner=0 --group=0 -cf - "$base" | xz -T0 -6 >"$tarball.tmp"
  mv -f "$tarball.tmp" "$tarball"
  (cd "$parent" && sha256sum "$base.tar.xz") >"$tarball.sha256"
  local tsize
  tsize=$(bytes_of "$tarball")
  say "archive: $tarball $(mib "$tsize")"
  local repo_bytes
  repo_bytes=$(cd "$repo" && git ls-files -co --exclude-standard -z 2>/dev/null |
    xargs -0 -r stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
  if ((tsize > LIMIT_MIB * 1048576)); then
    (cd "$parent" && split -b "${part_mib}M" -d -a 2 "$base.tar.xz" "$base.tar.xz.part-")
    local parts=("$tarball".part-*)
    local n=${#parts[@]} i=0
    for part in "${parts[@]}"; do
      i=$((i + 1))
      mv -f -- "$part" "$(printf '%s-%02d-of-%02d' "${part%-*}" "$i" "$n")"
    done
    say "WARNING: the archive is over $LIMIT_MIB MiB, more than one device-tool call can carry"
    say "  (the repository itself, $(mib "$repo_bytes"), travels with every call); split into $n parts:"
    for part in "$tarball".part-*; do
      printf '    %s  %s\n' "${part#"$repo"/}" "$(mib "$(bytes_of "$part")")"
    done
    say "  carry one part a call, in calls close enough that the machine stays warm, the last one with"
    say "  the command: scripts/gpu-check.sh run ${dir#"$repo"/}   (see deploy/GPU.md)"
  elif ((tsize + repo_bytes > LIMIT_MIB * 1048576)); then
    say "WARNING: archive + repository ($(mib "$((tsize + repo_bytes))")) is over the $LIMIT_MIB MiB a device call carries"
  fi
}

# --- run ------------------------------------------------------------------

# Unpacks DIR.tar.xz, or the concatenation of DIR.tar.xz.part-*-of-NN, next to DIR.
unpack() {
  local dir=$1 tarball=$1.tar.xz parent
  parent=$(dirname "$dir")
  local src=()
  if [[ -f $tarball ]]; then
    src=("$tarball")
  else
    mapfile -t src < <(compgen -G "$tarball.part-*-of-*" | sort)
    ((${#src[@]})) || die "no bundle at $dir, nor $tarball or its parts; make one with: scripts/gpu-check.sh bundle"
    local want=${src[0]##*-of-}
    ((10#$want == ${#src[@]})) || die "have ${#src[@]} of the $((10#$want)) parts of $tarball: ${src[*]##*/}"
  fi
  say "unpacking ${src[*]##*/} into $parent"
  if command -v xz >/dev/null 2>&1; then
    cat -- "${src[@]}" | xz -dc | tar -x -C "$parent" || die "could not unpack $tarball"
  else
    cat -- "${src[@]}" | python3 -c '
import sys, tarfile
with tarfile.open(fileobj=sys.stdin.buffer, mode="r|xz") as t:
    kw = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
    t.extractall(sys.argv[1], **kw)
' "$parent" || die "could not unpack $tarball (no xz; python3 failed too)"
  fi
}

run_check() {
  local dir=${1:-$repo/target/gpu-bundle}
  dir=$(absolute "$dir")
  dir=${dir%/}
  dir=${dir%.tar.xz}
  if [[ ! -x $dir/run.sh ]]; then
    unpack "$dir"
  fi
  [[ -x $dir/run.sh ]] || die "$dir/run.sh is missing"
  exec "$dir/run.sh"
}

# --- the scripts that go into the bundle ----------------------------------

write_run_sh() {
  cat >"$1" <<'RUN_SH'
#!/usr/bin/env bash
# veil GPU check, the GPU side. Made by scripts/gpu-check.sh bundle; needs only
# this folder, bash, coreutils and python3 (no network, Rust or registry).
#
#   ./run.sh      results in out/ (console.txt, results.tar.gz; also in $OUT when set)
#
# Runs `veil redact clip_1080p.mp4 --json` in each configuration:
#   cpu          --device cpu  --hwaccel none   (the reference)
#   cuda         --device cuda --hwaccel none   (CUDA execution provider)
#   cuda-nv      --device cuda --hwaccel cuda   (and NVDEC decode + NVENC encode)
#   cuda-auto    --device cuda --hwaccel auto   (NVDEC/NVENC where they open, else
#                the CPU codec: data-centre GPUs such as H100/H200 have NVDEC but no NVENC)
# then prints a table (fps, x realtime at 30 fps, peak RSS) and checks each GPU
# run's audit record against the CPU run's (compare_audits.py).
#
# Environment:
#   VEIL_CHECK_CONFIGS   which configurations (default: "cpu cuda cuda-nv cuda-auto";
#                        cpu runs first whatever the order, as the others are compared to it)
#   VEIL_CHECK_TIMEOUT   seconds allowed per run (default 600)
#   VEIL_MIN_RECALL      pass mark of the recall check (default 0.99)
#   VEIL_CUDA_LIB_DIRS   extra folders (':'-separated) holding the CUDA 13 / cuDNN 9 libraries
#   VEIL_ARGS            extra arguments for every veil run (e.g. "--threads 8")
# Exit status: 0 all runs passed, 1 a run failed, 2 the recall check failed.
set -uo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
out=$here/out
ORT_LIB=libonnxruntime.so.1.31.1

section() { printf '\n== %s\n' "$*"; }
ldconfig_p() { { command -v ldconfig >/dev/null 2>&1 && ldconfig -p; } || /sbin/ldconfig -p 2>/dev/null; }

# The first folder, in order, that holds the file; "" if none.
find_in() {
  local name=$1 d
  shift
  for d in "$@"; do
    [[ -n $d && -e $d/$name ]] && { echo "$d"; return 0; }
  done
  return 1
}

# Folders where pip-installed NVIDIA wheels keep their libraries (PyTorch's
# CUDA 13 wheels bring exactly these), for every python3 on the machine.
python_nvidia_dirs() {
  local py
  for py in python3 /opt/*/.venv/bin/python3 /usr/bin/python3; do
    command -v "$py" >/dev/null 2>&1 || continue
    "$py" - <<'PY' 2>/dev/null
import glob, os, site, sys
roots = list(sys.path)
try:
    roots += site.getsitepackages()
except Exception:
    pass
for r in dict.fromkeys(roots):
    for d in sorted(glob.glob(os.path.join(r, "nvidia", "*", "lib"))):
        print(d)
PY
  done | awk '!seen[$0]++'
}

setup_env() {
  export VEIL_CACHE=$here
  export ORT_DYLIB_PATH=$here/ort-gpu/$ORT_LIB
  local ld=("$here/lib" "$here/ort-gpu")

  section "host"
  echo "kernel: $(uname -srm); cores: $(nproc 2>/dev/null || echo '?')"
  local glibc need
  glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ print $2 }')
  need=$(cat "$here/lib/GLIBC_NEEDED" 2>/dev/null)
  echo "glibc: ${glibc:-unknown}; the bundle needs ${need:-?}"
  if [[ -n $glibc && -n $need ]] &&
    [[ $(printf '%s\n%s\n' "$glibc" "${need#GLIBC_}" | sort -V | head -n 1) != "${need#GLIBC_}" ]]; then
    echo "WARNING: this glibc is older than the bundle needs; expect 'version GLIBC_... not found'"
  fi
  # libstdc++: the host's when it is new enough, else the bundled one.
  local cxx host_cxx
  cxx=$(cat "$here/lib/compat/GLIBCXX_NEEDED" 2>/dev/null)
  host_cxx=$(ldconfig_p | awk '$1 == "libstdc++.so.6" && /x86-64/ { print $NF; exit }')
  if [[ -n $cxx && -n $host_cxx ]] && grep -qaF "$cxx" "$host_cxx"; then
    echo "libstdc++: the host's ($host_cxx has $cxx)"
  else
    echo "libstdc++: the bundled one (host's ${host_cxx:-not found} lacks ${cxx:-?})"
    ld+=("$here/lib/compat")
  fi

  section "GPU"
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L || echo "nvidia-smi -L failed: no usable NVIDIA GPU?"
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>/dev/null ||
      nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
    if nvidia-smi -L 2>/dev/null | grep -qE 'H100|H200|H800|H20|A100|A30'; then
      echo "note: this GPU has NVDEC but no NVENC, so --hwaccel cuda cannot encode on it (cuda-nv fails; cuda-auto decodes on the GPU and encodes with libx264)"
    fi
  else
    echo "no nvidia-smi: no NVIDIA GPU or driver visible; the CUDA runs will fail"
  fi

  # The driver's libraries (never bundled) and the CUDA 13 / cuDNN 9 libraries.
  local sysdirs=(/usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /lib/x86_64-linux-gnu)
  local cudadirs=("$here/ort-gpu")
  local extra=() d
  IFS=: read -r -a extra <<<"${VEIL_CUDA_LIB_DIRS:-}"
  cudadirs+=("${extra[@]}")
  while IFS= read -r d; do cudadirs+=("$d"); done < <(python_nvidia_dirs)
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64 /usr/local/cudnn*/lib*; do
    [[ -d $d ]] && cudadirs+=("$d")
  done
  section "libraries"
  local lib where missing=0 cache_list
  cache_list=$(ldconfig_p)
  for lib in libcuda.so.1 libnvcuvid.so.1 libnvidia-encode.so.1; do
    if grep -qF "$lib " <<<"$cache_list"; then
      echo "  $lib: in the loader cache"
    elif where=$(find_in "$lib" "${sysdirs[@]}"); then
      echo "  $lib: $where"
      ld+=("$where")
    else
      case $lib in
        libcuda.so.1) echo "  $lib: MISSING (the NVIDIA driver): no CUDA at all"; missing=1 ;;
        *) echo "  $lib: missing (NVDEC/NVENC need it; the container may lack the 'video' driver capability)" ;;
      esac
    fi
  done
  for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcufft.so.12 libcudnn.so.9 libnvrtc.so.13; do
    if where=$(find_in "$lib" "${cudadirs[@]}"); then
      echo "  $lib: $where"
      ld+=("$where")
    elif grep -qF "$lib " <<<"$cache_list"; then
      echo "  $lib: in the loader cache"
    else
      echo "  $lib: MISSING (CUDA 13 / cuDNN 9; set VEIL_CUDA_LIB_DIRS, or bundle with --cuda-libs)"
      missing=1
    fi
  done
  ((missing)) && echo "some CUDA libraries are missing: the CUDA runs will fail or fall back"
  local path="" seen=":"
  for d in "${ld[@]}"; do
    [[ $seen == *":$d:"* ]] && continue
    seen+="$d:"
    path+=${path:+:}$d
  done
  # Only for the bundle's programs: the bundled Debian libraries must not
  # replace the host's under anything else (python3, nvidia-smi).
  bundle_ld=$path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  echo "LD_LIBRARY_PATH (for veil, ffmpeg, ffprobe)=$bundle_ld"
  echo "ORT_DYLIB_PATH=$ORT_DYLIB_PATH"
  if with_bundle ldd "$here/bin/veil" 2>/dev/null | grep -q 'not found'; then
    echo "WARNING: veil cannot find some libraries:"
    with_bundle ldd "$here/bin/veil" | grep 'not found'
  fi
  with_bundle "$here/bin/veil" --version 2>&1 | head -n 1
}

bundle_ld=""
with_bundle() { env LD_LIBRARY_PATH="$bundle_ld" "$@"; }

config_args() {
  case $1 in
    cpu) echo "--device cpu --hwaccel none" ;;
    cuda) echo "--device cuda --hwaccel none" ;;
    cuda-nv) echo "--device cuda --hwaccel cuda" ;;
    cuda-auto) echo "--device cuda --hwaccel auto" ;;
    *) return 1 ;;
  esac
}

# measure NAME CMD...: stdout to out/NAME.json, stderr to out/NAME.log, and
# "exit wall_s peak_rss_kib" to out/NAME.time.
measure() {
  local name=$1 rc
  shift
  local timeout_cmd=()
  command -v timeout >/dev/null 2>&1 && timeout_cmd=(timeout -k 10 "${VEIL_CHECK_TIMEOUT:-600}")
  if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -f '%e %M' -o "$out/$name.rusage" "${timeout_cmd[@]}" "$@" >"$out/$name.json" 2>"$out/$name.log"
    rc=$?
    echo "$rc $(tail -n 1 "$out/$name.rusage")" >"$out/$name.time"
  elif command -v python3 >/dev/null 2>&1; then
    python3 - "$out/$name" "${timeout_cmd[@]}" "$@" <<'PY'
import resource, subprocess, sys, time
base, cmd = sys.argv[1], sys.argv[2:]
t0 = time.monotonic()
with open(base + ".json", "wb") as o, open(base + ".log", "wb") as e:
    rc = subprocess.call(cmd, stdout=o, stderr=e)
wall = time.monotonic() - t0
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
with open(base + ".time", "w") as f:
    f.write("%d %.2f %d\n" % (rc, wall, rss))
PY
    rc=$(cut -d' ' -f1 "$out/$name.time")
  else
    local t0=$SECONDS
    "${timeout_cmd[@]}" "$@" >"$out/$name.json" 2>"$out/$name.log"
    rc=$?
    echo "$rc $((SECONDS - t0)) 0" >"$out/$name.time"
  fi
  return "$rc"
}

table() {
  python3 - "$out" "$@" <<'PY'
import json, os, sys
out, names = sys.argv[1], sys.argv[2:]
rows = []
for n in names:
    try:
        rc, wall, rss = open(os.path.join(out, n + ".time")).read().split()[:3]
    except (OSError, ValueError):
        rc, wall, rss = "?", "nan", "0"
    try:
        s = json.load(open(os.path.join(out, n + ".json")))
    except (OSError, ValueError):
        s = {}
    fps = s.get("fps")
    extra = [str(s[k]) for k in ("execution_provider", "decoder", "encoder") if k in s]
    rows.append((n, rc, s.get("frames_out", "-"),
                 "%.2f" % s["seconds"] if "seconds" in s else "-",
                 "%.1f" % fps if fps else "-",
                 "%.2fx" % (fps / 30) if fps else "-",
                 "%.1f" % float(wall),
                 "%.0f" % (int(rss) / 1024) if int(rss) else "-",
                 " ".join(extra)))
head = ("config", "exit", "frames", "seconds", "fps", "x realtime", "wall s", "peak RSS MiB", "")
w = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
for r in [head] + rows:
    print("  ".join(str(c).rjust(w[i]) if 0 < i < 8 else str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip())
frames = {r[2] for r in rows if r[1] == "0"}
if len(frames) > 1:
    print("WARNING: the runs wrote different frame counts: %s" % sorted(map(str, frames)))
PY
}

main() {
  echo "veil GPU check: $(sed -n 1p "$here/MANIFEST.txt" 2>/dev/null)"
  sed -n '2,8p' "$here/MANIFEST.txt" 2>/dev/null
  setup_env

  local configs=() c
  read -r -a configs <<<"${VEIL_CHECK_CONFIGS:-cpu cuda cuda-nv cuda-auto}"
  # The reference first.
  local ordered=() ran=() failed=()
  for c in "${configs[@]}"; do [[ $c == cpu ]] && ordered+=(cpu); done
  for c in "${configs[@]}"; do
    if [[ $c == cpu ]]; then
      continue
    elif config_args "$c" >/dev/null; then
      ordered+=("$c")
    else
      echo "unknown configuration '$c' (known: cpu, cuda, cuda-nv, cuda-auto)"
      failed+=("$c")
    fi
  done
  local extra=()
  read -r -a extra <<<"${VEIL_ARGS:-}"

  section "runs (clip: $(with_bundle "$here/bin/ffprobe" -v error -select_streams v:0 -show_entries stream=width,height,r_frame_rate,nb_frames -of csv=p=0 "$here/clip_1080p.mp4" 2>/dev/null || echo '?'))"
  local args
  for c in "${ordered[@]}"; do
    args=$(config_args "$c")
    echo "-- $c: veil redact clip_1080p.mp4 -o out/out_$c.mp4 $args --json ${extra[*]}"
    # shellcheck disable=SC2086  # $args is a list of options
    if measure "$c" env LD_LIBRARY_PATH="$bundle_ld" "$here/bin/veil" redact "$here/clip_1080p.mp4" -o "$out/out_$c.mp4" $args --json "${extra[@]}"; then
      ran+=("$c")
    else
      echo "   FAILED (exit $(cut -d' ' -f1 "$out/$c.time")); the end of out/$c.log:"
      tail -n 25 "$out/$c.log" | sed 's/^/   | /'
      failed+=("$c")
    fi
    # Fallbacks and GPU notes, whatever the outcome.
    grep -hiE 'unavailable|fall(ing)? ?back|using the CPU|cuda|nvdec|nvenc|cuvid' "$out/$c.log" 2>/dev/null |
      grep -v '^\s*$' | head -n 8 | sed 's/^/   log: /'
  done

  section "results (1080p30: the target is >= 300 fps with plates, recall equal to the CPU's)"
  if ((${#ordered[@]} == 0)); then
    echo "nothing ran"
  elif command -v python3 >/dev/null 2>&1; then
    table "${ordered[@]}"
  else
    for c in "${ordered[@]}"; do echo "$c: $(cat "$out/$c.time" 2>/dev/null) $(tr -d '\n ' <"$out/$c.json" 2>/dev/null)"; done
  fi

  local recall_failed=0
  section "recall of the GPU runs against the CPU run"
  if [[ ! -f $out/out_cpu.mp4.audit.json ]]; then
    echo "no CPU audit record (the cpu run failed or was not asked for): no recall check"
  elif [[ " ${ran[*]} " != *" cuda"* ]]; then
    echo "no GPU run succeeded: nothing to compare"
  else
    for c in "${ran[@]}"; do
      [[ $c == cpu ]] && continue
      echo "-- $c"
      python3 "$here/compare_audits.py" --min-recall "${VEIL_MIN_RECALL:-0.99}" \
        "$out/out_cpu.mp4.audit.json" "$out/out_$c.mp4.audit.json" || recall_failed=1
    done
  fi

  (cd "$out" && tar -czf results.tar.gz --exclude='*.mp4' --exclude=results.tar.gz --exclude=console.txt.tmp -- * 2>/dev/null)
  section "summary"
  echo "ran: ${ran[*]:-none}; failed: ${failed[*]:-none}"
  if ((${#failed[@]})); then
    echo "RESULT: FAIL (a run failed; its log is in out/)"
    return 1
  elif ((recall_failed)); then
    echo "RESULT: FAIL (recall below the pass mark)"
    return 2
  fi
  echo "RESULT: PASS"
}

rm -rf -- "$out"
mkdir -p "$out"
main "$@" 2>&1 | tee "$out/console.txt.tmp"
rc=${PIPESTATUS[0]}
mv -f "$out/console.txt.tmp" "$out/console.txt"
if [[ -n ${OUT:-} && -d ${OUT:-} ]]; then
  cp -f "$out/console.txt" "$out/results.tar.gz" "$OUT/" 2>/dev/null
fi
exit "$rc"
RUN_SH
}

write_compare() {
  cat >"$1" <<'COMPARE_PY'
#!/usr/bin/env python3
"""Recall of one veil run against another, from their audit records (no labels needed).

  compare_audits.py [--min-recall R] REFERENCE.audit.json CANDIDATE.audit.json

Every box the reference run redacted (tracks[].boxes, [frame, x, y, w, h]) must
be covered, on the same frame and for the same class, by a box of the candidate
run: IoU >= 0.5, or the reference box lies inside the candidate box (at least
90 % of its area). Prints "recall vs CPU: X/Y" overall and per class, and the
candidate's boxes that cover no reference box. Exit 0 when recall >= R
(default 1.0), 1 below it, 2 on bad input. Python 3 standard library only.
"""
import argparse
import collections
import json
import sys


def load(path):
    with open(path) as f:
        rec = json.load(f)
    boxes = collections.defaultdict(list)  # (frame, class) -> [(x, y, w, h)]
    for t in rec.get("tracks", []):
        for frame, x, y, w, h in t.get("boxes", []):
            boxes[(frame, t.get("class", "?"))].append((x, y, w, h))
    return rec, boxes


def covered(a, b):
    """True when box b covers box a: IoU >= 0.5, or a lies (90 %) inside b."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return False
    inter = iw * ih
    area_a, area_b = max(aw * ah, 1), max(bw * bh, 1)
    return inter / (area_a + area_b - inter) >= 0.5 or inter >= 0.9 * area_a


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("reference")
    ap.add_argument("candidate")
    ap.add_argument("--min-recall", type=float, default=1.0)
    ap.add_argument("--label", default="CPU", help="name of the reference in the output")
    args = ap.parse_args()
    try:
        ref_rec, ref = load(args.reference)
        cand_rec, cand = load(args.candidate)
    except (OSError, ValueError, TypeError) as e:
        print("compare_audits: %s" % e, file=sys.stderr)
        return 2

    per_class = collections.defaultdict(lambda: [0, 0])  # class -> [covered, total]
    missed_frames = collections.Counter()
    for key, boxes in ref.items():
        frame, cls = key
        for b in boxes:
            hit = any(covered(b, c) for c in cand.get(key, ()))
            per_class[cls][1] += 1
            per_class[cls][0] += hit
            if not hit:
                missed_frames[frame] += 1
    extra = sum(1 for key, boxes in cand.items() for c in boxes
                if not any(covered(r, c) or covered(c, r) for r in ref.get(key, ())))

    hit = sum(v[0] for v in per_class.values())
    total = sum(v[1] for v in per_class.values())
    recall = hit / total if total else 1.0
    print("recall vs %s: %d/%d (%.2f %%)" % (args.label, hit, total, 100 * recall))
    for cls in sorted(per_class):
        h, t = per_class[cls]
        print("  %-6s %d/%d" % (cls, h, t))
    ref_frames = ref_rec.get("output", {}).get("frames")
    cand_frames = cand_rec.get("output", {}).get("frames")
    print("  frames: %s vs %s; tracks: %d vs %d; boxes only in this run: %d"
          % (ref_frames, cand_frames, len(ref_rec.get("tracks", [])),
             len(cand_rec.get("tracks", [])), extra))
    if missed_frames:
        worst = ", ".join("%d (%d)" % fc for fc in sorted(missed_frames.items())[:10])
        print("  frames with missed boxes (first 10, frame (boxes)): %s" % worst)
    if total == 0:
        print("  note: the reference run redacted nothing, so this check proves little")
    ok = recall >= args.min_recall and ref_frames == cand_frames
    print("  %s (pass mark %.4f%s)" % ("PASS" if ok else "FAIL", args.min_recall,
                                      "" if ref_frames == cand_frames else "; frame counts differ"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
COMPARE_PY
}

# --- main -----------------------------------------------------------------

case ${1:-} in
  bundle) shift; bundle "$@" ;;
  run) shift; (($# <= 1)) || die "run takes one DIR"; run_check "$@" ;;
  -h | --help | help) usage 0 ;;
  *) usage 2 ;;
esac
