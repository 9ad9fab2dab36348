#!/usr/bin/env python3
"""`make contract-test`: schemathesis against the live server and the committed spec, as two users.

    python contract-test/contract.py --server-bin target/debug/chat-server --st target/contract-test-venv/bin/st

1. Starts `chat-server` on a free port with SQLite in a temporary directory.
2. Seeds, through the API: users A, B and C; a public and a private room of A's and of B's with
   messages in each, a direct room of B's with C, and an API token each for A and B. The ids go to a
   JSON file that `contract_hooks.py` reads.
3. Runs schemathesis on `openapi/openapi.json` with A's token on every request. Path parameters are
   often one of the seeded ids (see the hooks), so A keeps asking for B's rooms, messages and token.
   Phases: the spec's examples, its boundaries (coverage), random cases (fuzzing), and sequences
   that follow what a response returned (stateful: create a room, post to it, edit the message...).
   Checks: no 5xx, status codes, content types, headers and bodies as the spec says, what the spec
   calls invalid is rejected (`negative_data_rejection`), a method a path does not list gets 405 with
   `Allow`, a deleted token or message stays gone (`use_after_free`), credentials are enforced
   (`ignored_auth`), and the hooks' own: A never gets a 2xx on B's private rooms, never sees them
   listed, never edits or deletes B's messages, never revokes B's token. Not run: `POST /auth/logout-all`
   and `DELETE /me/sessions/{id}` (either would end A's own session and turn the rest of the run into 401s),
   and `GET /rooms/{id}/events` (a stream that stays open: `backend/tests/api/sse.rs` tests it).
   Not checked: `positive_data_acceptance` (it takes business rules, e.g. a direct room with oneself,
   for spec mismatches) and `ensure_resource_availability` (it reads any 404 after a create as the
   created object missing, e.g. a `user_not_found` for a random username).
4. Afterwards, as B: B's rooms, messages, token and session are as seeded; A's session still works.
   The server log holds no panic.

Bounded: `--max-examples` cases per operation (FUZZ_EXAMPLES, default 80: about 60-90 s on two busy
cores) and a wall-clock guard on schemathesis (FUZZ_TIMEOUT seconds; running into it fails the run); the
seed is fixed (FUZZ_SEED) so a CI failure reproduces, and can be varied by hand to explore further.
Exit status 0 when everything held.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi" / "openapi.json"
MESSAGES_PER_ROOM = 3
# An id no seeded object has: a 404 every time.
MISSING_ID = 987654
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "unsupported_method",
    "missing_required_header",
    "use_after_free",
    "ignored_auth",
    "b_private_rooms_stay_hidden",
    "b_private_rooms_stay_unlisted",
    "b_messages_stay_b_s",
    "b_tokens_stay_b_s",
]


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


class Server:
    """The chat-server binary on a free port, SQLite in a temporary directory, its output kept."""

    def __init__(self, binary: str, data_dir: str):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "BIND_ADDR": "127.0.0.1:0",
            "DATA_DIR": data_dir,
            "JWT_SECRET": secrets.token_hex(32),
            "RUST_LOG": "info",
            "NO_COLOR": "1",
            # Thousands of requests as A in a minute would mostly meet the per-user and per-address
            # limits (429, documented) and test nothing else; login and register keep theirs.
            "RATE_LIMIT_USER": "off",
            "RATE_LIMIT_ADDRESS": "off",
        }
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [binary], cwd=data_dir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace",
        )
        self.address: str | None = None
        ready = threading.Event()

        def drain() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                match = re.search(r"listening on (http://[0-9.:]+)", line)
                if match and not ready.is_set():
                    self.address = match.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(30) or self.address is None:
            self.stop()
            sys.exit("chat-server did not start:\n" + "\n".join(self.lines))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Api:
    def __init__(self, address: str):
        self.base = address + "/api/v1"
        self.http = requests.Session()

    def call(self, method: str, path: str, token: str | None = None, body=None, expect: int | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = self.http.request(method, self.base + path, json=body, headers=headers, timeout=10)
        if expect is not None and resp.status_code != expect:
            sys.exit(f"seeding: {method} {path} -> {resp.status_code}, expected {expect}: {resp.text}")
        return resp.json() if resp.content and resp.headers.get("content-type", "").find("json") >= 0 else None

    def user(self, name: str) -> dict:
        body = {"username": f"{name}_{secrets.token_hex(4)}", "password": secrets.token_hex(12)}
        return self.call("POST", "/auth/register", body=body, expect=201)

    def room(self, token: str, visibility: str, messages: int = MESSAGES_PER_ROOM) -> int:
        room = self.call("POST", "/rooms", token, {"name": f"{visibility} room", "visibility": visibility}, 201)
        for i in range(1, messages + 1):
            self.call("POST", f"/rooms/{room['id']}/messages", token, {"body": f"seeded {i}"}, 201)
        return room["id"]


def seed(api: Api) -> tuple[dict, dict]:
    a, b, c = api.user("alice"), api.user("bob"), api.user("carol")
    ta, tb = a["access_token"], b["access_token"]
    direct = api.call("POST", "/direct", tb, {"username": c["user"]["username"]}, 200)["id"]
    for i in range(1, MESSAGES_PER_ROOM + 1):
        api.call("POST", f"/rooms/{direct}/messages", tb, {"body": f"seeded {i}"}, 201)
    scopes = ["rooms:read", "messages:read", "messages:write"]
    seeded = {
        "a_rooms": [api.room(ta, "public"), api.room(ta, "private")],
        "b_private_rooms": [api.room(tb, "private"), direct],
        "b_public_rooms": [api.room(tb, "public")],
        "a_token": api.call("POST", "/tokens", ta, {"name": "a bot", "scopes": scopes}, 201)["id"],
        "b_token_secret": api.call("POST", "/tokens", tb, {"name": "b bot", "scopes": scopes}, 201),
        "messages_per_room": MESSAGES_PER_ROOM,
        "missing_id": MISSING_ID,
    }
    b_token = seeded.pop("b_token_secret")
    seeded["b_token"] = b_token["id"]
    return seeded, {"a": a, "b": b, "b_api_token": b_token["token"]}


def b_state(api: Api, token: str, seeded: dict) -> dict:
    """What B sees of B's rooms: the members of the private ones (anyone may join a public one), and
    the messages B wrote."""
    state = {}
    for room in seeded["b_private_rooms"] + seeded["b_public_rooms"]:
        members = api.call("GET", f"/rooms/{room}/members", token, expect=200)["items"]
        history = api.call("GET", f"/rooms/{room}/messages?limit=100", token, expect=200)["items"]
        state[room] = {
            "members": sorted(m["user"]["username"] for m in members) if room in seeded["b_private_rooms"] else [],
            "b_messages": [(m["seq"], m["body"], m["deleted"], m["edited_at"]) for m in history
                           if m["seq"] <= MESSAGES_PER_ROOM],
        }
    return state


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-bin", required=True, help="the chat-server binary")
    parser.add_argument("--st", required=True, help="schemathesis's `st` command (in the contract-test venv)")
    args = parser.parse_args()
    examples = os.environ.get("FUZZ_EXAMPLES", "80")
    timeout = int(os.environ.get("FUZZ_TIMEOUT", "240"))
    seed_value = os.environ.get("FUZZ_SEED", "20251126")

    with tempfile.TemporaryDirectory(prefix="chat-contract-test-") as tmp:
        server = Server(str(Path(args.server_bin).resolve()), tmp)
        try:
            api = Api(server.address)
            seeded, users = seed(api)
            before = b_state(api, users["b"]["access_token"], seeded)
            seed_file = Path(tmp) / "seed.json"
            seed_file.write_text(json.dumps(seeded))
            log(f"server at {server.address}; seeded {seeded}")

            env = dict(os.environ)
            env["SCHEMATHESIS_HOOKS"] = "contract_hooks"
            env["PYTHONPATH"] = str(Path(__file__).resolve().parent)
            env["FUZZ_SEED_FILE"] = str(seed_file)
            cmd = [
                str(Path(args.st).absolute()), "run", str(SPEC), "--url", server.address,
                "--header", f"Authorization: Bearer {users['a']['access_token']}",
                "--checks", ",".join(CHECKS),
                "--phases", "examples,coverage,fuzzing,stateful",
                # Signing out everywhere, or ending A's own session (its id is in `GET /me/sessions`, and
                # the stateful phase follows the links it infers from there), would leave the rest of the
                # run 401s; the API tests cover both.
                "--exclude-operation-id", "logout_all",
                "--exclude-operation-id", "end_session",
                "--exclude-operation-id", "room_events",
                "--max-examples", examples, "--seed", seed_value,
                "--generation-database", "none", "--workers", "1", "--request-timeout", "10",
                "--no-color", "--report", "junit", "--report-dir", str(Path(tmp) / "report"),
            ]
            log(f"schemathesis: {examples} examples per operation, seed {seed_value}, at most {timeout} s")
            started = time.monotonic()
            try:
                st = subprocess.run(cmd, env=env, cwd=tmp, timeout=timeout)
                st_ok = st.returncode == 0
            except subprocess.TimeoutExpired:
                print(f"schemathesis did not finish within {timeout} s", flush=True)
                st_ok = False
            log(f"schemathesis took {time.monotonic() - started:.0f} s")

            problems = []
            after = b_state(api, users["b"]["access_token"], seeded)
            if after != before:
                problems.append(f"B's rooms changed under A's requests:\n before {before}\n after  {after}")
            me = api.http.get(api.base + "/me", headers={"Authorization": f"Bearer {users['b_api_token']}"},
                              timeout=10)
            if me.status_code != 200:
                problems.append(f"B's API token stopped working: GET /me -> {me.status_code}")
            me = api.http.get(api.base + "/me", headers={"Authorization": f"Bearer {users['a']['access_token']}"},
                              timeout=10)
            if me.status_code != 200:
                problems.append(f"A's session ended during the run (the rest of it was 401s): GET /me -> {me.status_code}")
            if server.proc.poll() is not None:
                problems.append(f"the server exited with {server.proc.returncode} during the run")
        finally:
            server.stop()
        panics = [line for line in server.lines if "panicked" in line]
        if panics:
            problems.append("the server panicked:\n" + "\n".join(panics[:20]))
        for p in problems:
            print(f"FAILED: {p}", flush=True)
        if not st_ok:
            print("FAILED: schemathesis reported failures (above)", flush=True)
        return 0 if st_ok and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
