# The chat service: build, run, test, benchmark.   `make help` lists the targets.
#
# Install steps are `ensure-*` targets. Each one checks what is already there and does nothing when it is,
# so a warm machine pays nothing; a target lists the ensure-* steps it needs as prerequisites.
# To add a tool: write `ensure-TOOL` in the same style (check, then install), and add it to the targets
# that need it.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory
# The steps share cargo's build lock and the 2 cores; running them side by side gains nothing.
.NOTPARALLEL:

CARGO ?= cargo
# Where cargo puts its output; follows CARGO_TARGET_DIR like cargo does.
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
WASM_TARGET := wasm32-unknown-unknown
# The PostgreSQL the tests use (they read TEST_DATABASE_URL themselves; make only checks it answers).
PG_CHECK_URL := $(or $(TEST_DATABASE_URL),postgres://postgres@127.0.0.1:5432/postgres)
# Extra flags for chat-bench: a part and its flags, e.g. `make bench BENCH_ARGS="rest --duration 3 --backends sqlite"`,
# `make bench BENCH_ARGS="fanout --rates 200,500"`; nothing runs every part. `chat-bench --help` lists them.
BENCH_ARGS ?=

.PHONY: help run test openapi bench fmt clean \
	lint fmt-check clippy clippy-frontend build-frontend cargo-test check-postgres \
	ensure-cargo ensure-rustfmt ensure-clippy ensure-wasm32

help: ## List the targets
	@echo "Targets:"
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

# ---------------------------------------------------------------------------------------------------------
# Main targets

run: ensure-cargo ## Build (release) and run chat-server on http://127.0.0.1:8080 (SQLite in ./data)
	$(CARGO) run --release -p backend --bin chat-server

test: lint build-frontend check-postgres cargo-test ## fmt check, clippy (native + wasm32), frontend wasm build, all tests

openapi: ensure-cargo ## Regenerate openapi/openapi.json from the code
	$(CARGO) run -q -p backend --bin openapi -- openapi/openapi.json

bench: ensure-cargo ## Benchmark REST sends, WebSocket fan-out, idle sockets, replay (4-10 min); writes bench/results.md
	$(CARGO) build --release -p backend -p chat-bench
	$(TARGET_DIR)/release/chat-bench --server-bin $(TARGET_DIR)/release/chat-server $(BENCH_ARGS)

fmt: ensure-rustfmt ## Format all the code (cargo fmt)
	$(CARGO) fmt --all

clean: ## Remove build output (target/, frontend/dist/); keeps ./data
	$(CARGO) clean
	rm -rf frontend/dist

# ---------------------------------------------------------------------------------------------------------
# The steps of `make test`, usable alone

lint: fmt-check clippy clippy-frontend

fmt-check: ensure-rustfmt
	$(CARGO) fmt --all --check

clippy: ensure-clippy
	$(CARGO) clippy --workspace --exclude frontend --all-targets -- -D warnings

clippy-frontend: ensure-clippy ensure-wasm32
	$(CARGO) clippy --target $(WASM_TARGET) -p frontend -- -D warnings

build-frontend: ensure-wasm32
	$(CARGO) build -p frontend --target $(WASM_TARGET)

# The tests check that openapi/openapi.json is in sync themselves. TEST_DATABASE_URL passes through.
# Ends with one line totalling every test binary's result (cargo's own last line is often a doc-test
# run of 0 tests). pipefail keeps cargo's exit status through the tee.
cargo-test: ensure-cargo
	@mkdir -p $(TARGET_DIR)
	$(CARGO) test --workspace --exclude frontend 2>&1 | tee $(TARGET_DIR)/test-output.txt
	@awk '/^test result:/ { passed += $$4; failed += $$6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' \
		$(TARGET_DIR)/test-output.txt

# Only warns: without PostgreSQL the postgres half of the tests skips itself, unless CI is set, in which
# case the tests fail (the tests decide that, not make).
check-postgres:
	@if command -v pg_isready >/dev/null 2>&1; then \
		pg_isready -q -t 3 -d '$(PG_CHECK_URL)' && ok=1 || ok=0; \
	elif command -v psql >/dev/null 2>&1; then \
		PGCONNECT_TIMEOUT=3 psql '$(PG_CHECK_URL)' -XqAtc 'select 1' >/dev/null 2>&1 && ok=1 || ok=0; \
	else ok=0; fi; \
	if [ "$$ok" = 1 ]; then \
		echo "PostgreSQL answers at $(PG_CHECK_URL)"; \
	else \
		echo ""; \
		echo "################################################################################"; \
		echo "##"; \
		echo "##  WARNING: PostgreSQL DOES NOT ANSWER at $(PG_CHECK_URL)"; \
		echo "##"; \
		echo "##  The PostgreSQL half of the tests will be SKIPPED, or FAIL when CI is set."; \
		echo "##  Start it:  pg_ctlcluster --skip-systemctl-redirect 15 main start  (.ci/run does)"; \
		echo "##  or point TEST_DATABASE_URL at a running server."; \
		echo "##"; \
		echo "################################################################################"; \
		echo ""; \
	fi

# ---------------------------------------------------------------------------------------------------------
# Install steps: check first, install only what is missing.

ensure-cargo:
	@command -v $(CARGO) >/dev/null 2>&1 || { \
		echo "cargo not found: install Rust 1.95 with rustup (https://rustup.rs), then re-run." >&2; exit 1; }

ensure-rustfmt: ensure-cargo
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt

ensure-clippy: ensure-cargo
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy

ensure-wasm32: ensure-cargo
	@rustup target list --installed 2>/dev/null | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
