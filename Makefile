# Tradeguard: the single entry point. `make run` opens the app; `make test` checks everything.
# Both install what a fresh Debian 12 machine (Rust, Node, Python only) is missing: see scripts/install-deps.sh.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
ARTIFACTS := $(ROOT)/artifacts
# Same cargo flags everywhere, or dependencies rebuild with other feature sets.
CARGO_FLAGS := --workspace --all-targets
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(ROOT)/target)
APP_BIN := $(TARGET_DIR)/debug/tradeguard-app
export TRADEGUARD_BENCH_DIR ?= $(ARTIFACTS)/bench

.PHONY: help deps ui build run test check-fmt lint test-rust test-ui test-e2e package package-test soak soak-ib bench measure-app measure-ui measure-cpu bindings icons clean

help:
	@echo "make run    install what is missing, build, open Tradeguard (simulated venue by default)"
	@echo "make test   install what is missing, fmt/clippy/tsc, Rust tests, UI tests, real-app E2E"
	@echo "make bench  criterion benchmarks and the figures table"
	@echo "make package  the installable .deb (release) in artifacts/package"
	@echo "make soak SEEDS=N  deterministic simulation soak (seeded fault storms against the whole guard)"
	@echo "make soak-ib IB_SEEDS=N  IB simulation soak (the real IB adapter against the fake TWS, real time)"

deps:
	@scripts/install-deps.sh

ui: deps
	cd ui && npm run build

build: ui
	cargo build $(CARGO_FLAGS)

run: build
	$(APP_BIN)

test: deps ui check-fmt lint test-rust test-ui test-e2e package-test
	@echo "make test: all green"

check-fmt:
	cargo fmt --all -- --check

lint:
	cargo clippy $(CARGO_FLAGS) -- -D warnings
	cd ui && npx tsc --noEmit

test-rust:
	cargo build $(CARGO_FLAGS)
	@if command -v cargo-nextest >/dev/null; then \
		cargo nextest run $(CARGO_FLAGS) --no-fail-fast; \
	else \
		cargo test $(CARGO_FLAGS) --no-fail-fast; \
	fi

test-ui:
	cd ui && npx vitest run

test-e2e: build
	mkdir -p $(ARTIFACTS)/e2e
	TRADEGUARD_APP_BIN=$(APP_BIN) TRADEGUARD_ARTIFACTS=$(ARTIFACTS) \
		scripts/headless.sh node --test --test-concurrency=1 tests/e2e/

# The installable .deb (release build), from the root tauri.conf.json and the workspace version.
package: ui
	cargo build --release -p tradeguard-app -p tradeguard-cli
	python3 scripts/package_deb.py --bin-dir $(TARGET_DIR)/release --out $(ARTIFACTS)/package --strip

# Install-and-launch test of the package. It packages the debug build `make test` already has
# (same packaging code, no second 10-minute release build), installs it with dpkg, launches it
# under a private X server, checks it, and removes it.
package-test: build
	deb=$$(python3 scripts/package_deb.py --bin-dir $(TARGET_DIR)/debug --out $(ARTIFACTS)/package-test --strip --fast) && \
		HEADLESS_TIMEOUT=300 scripts/headless.sh scripts/package-test.sh "$$deb"

# Deterministic simulation soak: SEEDS seeds from FROM (release build), reports seeds/s and every
# failing seed with the command that replays it. FROM=random (the default) starts at a fresh
# random seed, printed first, so every soak explores seeds no earlier one ran; FROM=N pins a range.
SEEDS ?= 10000
FROM ?= random
soak:
	cargo run -p tradeguard-dst --release -- --seeds $(SEEDS) --from $(FROM)

# The IB simulation soak: the real IB adapter against the fake TWS on loopback, real time
# (about 5 s a seed).
IB_SEEDS ?= 100
soak-ib:
	cargo run -p tradeguard-dst --release -- --ib --seeds $(IB_SEEDS) --from $(FROM)

BENCH_VENV := $(ROOT)/.venv-bench

bench: deps ui
	rm -rf $(TRADEGUARD_BENCH_DIR) && mkdir -p $(TRADEGUARD_BENCH_DIR)
	@# Only the crates with benchmarks (a workspace-wide bench would build the desktop app in release).
	cargo bench -p tradeguard-pricing -p tradeguard-store -p tradeguard-engine -p tradeguard-sim --benches
	@# QuantLib-Python times the same pricing cases in the same run (ratio figures).
	[ -x $(BENCH_VENV)/bin/python ] || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -c "import QuantLib" 2>/dev/null || $(BENCH_VENV)/bin/pip install --quiet QuantLib
	$(BENCH_VENV)/bin/python crates/pricing/bench/quantlib_compare.py > /dev/null
	python3 scripts/bench_table.py $(TRADEGUARD_BENCH_DIR) | tee $(ARTIFACTS)/bench-table.md

# Launch-to-first-paint and idle memory of the whole app (debug build unless APP_BIN is given).
measure-app: build
	scripts/headless.sh scripts/measure-app.sh $(APP_BIN) 20

# The UI under load: 500 positions quoted at 10 Hz, event-to-paint and frame-time percentiles
# (artifacts/bench/ui.json). APP_BIN=target/release/tradeguard-app for release figures.
measure-ui: build
	TRADEGUARD_APP_BIN=$(APP_BIN) TRADEGUARD_ARTIFACTS=$(ARTIFACTS) HEADLESS_TIMEOUT=400 \
		scripts/headless.sh node scripts/measure-ui.mjs

# CPU of the app process on the load-test scenario (APP_BIN=target/release/tradeguard-app for release).
measure-cpu: build
	HEADLESS_TIMEOUT=120 scripts/headless.sh scripts/measure-cpu.sh $(APP_BIN)

# Regenerate ui/src/bindings.ts from the Rust command and event list.
bindings: deps
	UPDATE_BINDINGS=1 cargo test -p tradeguard-app --lib bindings::tests::committed_bindings_are_fresh

# Regenerate every icon from icons/source.svg.
icons:
	npx --yes @tauri-apps/cli@2.12.5 icon icons/source.svg -o icons
	rm -rf icons/android icons/ios icons/Square*Logo.png icons/StoreLogo.png

clean:
	cargo clean
	rm -rf ui/dist ui/node_modules $(ARTIFACTS)
