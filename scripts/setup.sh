#!/usr/bin/env bash
# Prepare a Debian/Ubuntu machine to build, test and run veil. Idempotent; it
# takes well under a second when everything is already in place.
#
#   scripts/setup.sh [EXTRA_APT_PACKAGE...]
#
# Step 1: apt packages (the FFmpeg development files, clang for bindgen,
#         python3 for step 2), plus any named in $VEIL_APT_EXTRA (space
#         separated) or as arguments, e.g. `VEIL_APT_EXTRA=chromium`.
#         Only missing packages are installed, with sudo when not root.
# Step 2: the pinned ONNX Runtime library and models (models/models.toml),
#         into $VEIL_CACHE, else .cache/ at the repository root, by
#         scripts/fetch_assets.py. With VEIL_GPU=1 also the GPU build of ONNX
#         Runtime (into <cache>/ort-gpu/, a 255 MB download), and with
#         VEIL_CUDA_LIBS=1 as well the CUDA 13 and cuDNN 9 libraries from
#         NVIDIA's wheels (about 1.3 GB more); see deploy/GPU.md.
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
# A relative $VEIL_CACHE means relative to where we were started, as for veil.
if [[ -n ${VEIL_CACHE:-} && ${VEIL_CACHE} != /* ]]; then
  export VEIL_CACHE="$PWD/$VEIL_CACHE"
fi
cd "$repo"

apt_packages=(
  pkg-config clang libclang-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  libswresample-dev libavfilter-dev libavdevice-dev ffmpeg
  python3
)
# shellcheck disable=SC2206  # word splitting of the list is intended
apt_packages+=(${VEIL_APT_EXTRA:-} "$@")

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  sudo_cmd=(sudo)
fi

apt_install() {
  echo "setup: installing apt packages: $*"
  if ((${#sudo_cmd[@]})) && ! command -v sudo >/dev/null 2>&1; then
    echo "setup: not root and sudo is not installed; install as root: apt-get install $*" >&2
    return 1
  fi
  # `&&`, not two lines: callers use this in conditions, where set -e is off.
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "$@"
}

# Packages not installed, among those given (one dpkg-query for all of them).
missing_packages() {
  local installed p
  installed=$(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null || true)
  for p in "$@"; do
    if ! grep -qxF "${p%%:*} install ok installed" <<<"$installed"; then
      echo "$p"
    fi
  done
}

# --- step 1: apt ----------------------------------------------------------
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup: no dpkg-query (not Debian/Ubuntu?); make sure these are installed: ${apt_packages[*]}" >&2
else
  mapfile -t missing < <(missing_packages "${apt_packages[@]}")
  if ((${#missing[@]})); then
    if ! apt_install "${missing[@]}"; then
      echo "setup: apt-get failed to install: ${missing[*]}" >&2
      exit 1
    fi
    mapfile -t missing < <(missing_packages "${apt_packages[@]}")
    if ((${#missing[@]})); then
      echo "setup: apt packages still missing after install: ${missing[*]}" >&2
      exit 1
    fi
    echo "setup: apt packages installed"
  else
    echo "setup: apt packages present"
  fi
fi

# --- step 2: assets -------------------------------------------------------
cache=${VEIL_CACHE:-$repo/.cache}
shown=${cache#"$repo"/}
fetch_args=()
if [[ ${VEIL_GPU:-0} == 1 ]]; then
  fetch_args+=(--gpu)
fi
if [[ ${VEIL_CUDA_LIBS:-0} == 1 ]]; then
  fetch_args+=(--cuda-libs)
fi
if python3 scripts/fetch_assets.py --check --quiet "${fetch_args[@]}" 2>/dev/null; then
  echo "setup: assets verified in $shown"
  exit 0
fi

# Something must be fetched, which needs pip (`pip download`).
if ! python3 -m pip --version >/dev/null 2>&1; then
  if command -v dpkg-query >/dev/null 2>&1; then
    apt_install python3-pip || true
  fi
  if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "setup: python3 -m pip does not work; install pip for $(command -v python3)" >&2
    exit 1
  fi
fi
python3 scripts/fetch_assets.py "${fetch_args[@]}"
echo "setup: assets installed and verified in $shown"
