#!/usr/bin/env bash
# Time-boxed fuzzing of veil's own parsers (cargo-fuzz / libFuzzer, AddressSanitizer):
# the model manifest, batch manifests, audit records and label files.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 15)
#
# cargo-fuzz needs nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain
# accept them. Seeds are in fuzz/seeds/<target>; the working corpus goes to a temp folder.
set -euo pipefail
secs=${1:-15}
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz 0.13.1 from crates.io"
  cargo install cargo-fuzz --version 0.13.1 --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
targets=(model_manifest batch_manifest audit_record labels)
cargo fuzz build -O
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  echo "fuzz: $t for ${secs}s"
  set +e
  cargo fuzz run -O "$t" "$work/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$secs" -seed=1 -print_final_stats=1 >"$work/$t.log" 2>&1
  rc=$?
  set -e
  grep -E '^stat::(number_of_executed_units|new_units_added)' "$work/$t.log" || true
  if [[ $rc -ne 0 ]]; then
    tail -n 40 "$work/$t.log" >&2
    echo "fuzz: $t failed (exit $rc); the crashing input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
echo "fuzz: all targets ran ${secs}s without a crash"
