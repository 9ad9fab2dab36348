# syntax=docker/dockerfile:1
# The chat service in one image: `chat-server` (release) and the browser app (trunk) it serves from
# STATIC_DIR. Built by `docker compose build` (docker-compose.yml); checked without Docker by
# `make deploy-check` (hadolint, and its versions against the Makefile's).
#
# Stage 1 (`tools`) holds the build tools, which change rarely, so their layers stay cached while the
# sources change. The versions are the ones proven together in this repository (see the Makefile).

FROM rust:1.95-bookworm AS tools
# Node.js and npm run npm's binaryen, whose wasm-opt shrinks the SPA's release build (Trunk.toml pins
# version_132; Debian's binaryen 108 emits a wasm that crashes in the browser). Not version-pinned
# (DL3008): the pinned base image decides the Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-unknown-unknown
# trunk 0.22 needs a newer rustc; --locked builds it with the dependency versions it was released with.
RUN cargo install --locked trunk --version 0.21.14
# Must equal the wasm-bindgen crate in Cargo.lock. Without --locked: the CLI's own lock file wants a
# webpki-roots the registry no longer has.
RUN cargo install wasm-bindgen-cli --version 0.2.130

FROM tools AS build
WORKDIR /src
# The npm tools first (exactly package-lock.json), so this layer survives source changes.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# --locked: exactly Cargo.lock's versions, or fail.
RUN cargo build --release --locked -p backend --bin chat-server
# Trunk.toml builds offline with the wasm-bindgen above and the wasm-opt of npm's binaryen, first on
# PATH (as `make spa` does); the output goes to frontend/dist.
ENV PATH="/src/node_modules/.bin:${PATH}"
WORKDIR /src/frontend
RUN trunk build --release

FROM debian:bookworm-slim AS runtime
# curl: the health check (GET /readyz). PostgreSQL's client library and SQLite are compiled into
# chat-server (bundled), so it needs nothing else. Not version-pinned (DL3008): the security updates of
# the pinned base image are the versions wanted, and Debian drops superseded ones from its archive.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
# An unprivileged user owns only the data directory.
RUN groupadd --system --gid 10001 chat \
    && useradd --system --uid 10001 --gid chat --home-dir /var/lib/chat --create-home --shell /usr/sbin/nologin chat
COPY --from=build /src/target/release/chat-server /usr/local/bin/chat-server
COPY --from=build /src/frontend/dist /usr/share/chat/spa
# Numeric, so that a runtime that checks runAsNonRoot can tell without reading /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/chat
# Listen on every interface inside the container; DATA_DIR holds the SQLite file and the generated
# JWT secret when DATABASE_URL and JWT_SECRET are not set (a single node).
ENV BIND_ADDR=0.0.0.0:8080 \
    DATA_DIR=/var/lib/chat \
    STATIC_DIR=/usr/share/chat/spa \
    RUST_LOG=info
EXPOSE 8080
# SIGTERM (Docker's default stop signal) drains the sockets, then exits.
ENTRYPOINT ["/usr/local/bin/chat-server"]
