"""Schemathesis hooks and checks for `make contract-test` (loaded through SCHEMATHESIS_HOOKS by contract.py).

The fuzzer calls the API as user A. `contract.py` seeded objects of A's and of B's first and wrote their
ids to the file named by FUZZ_SEED_FILE; the hooks below make those ids a likely value of every path
parameter, so that the fuzzer hits B's rooms, messages and tokens, not only random integers that name
nothing. The checks fail a run where A gets a 2xx on something of B's that A may not see or change.
"""

from __future__ import annotations

import json
import os

import schemathesis
from hypothesis import strategies as st

with open(os.environ["FUZZ_SEED_FILE"], encoding="utf-8") as f:
    SEED = json.load(f)

# Path parameter -> the seeded values worth hitting (A's own, B's, and one that names nothing).
POOL: dict[str, list] = {
    "room_id": SEED["a_rooms"] + SEED["b_private_rooms"] + SEED["b_public_rooms"] + [SEED["missing_id"]],
    "seq": list(range(1, SEED["messages_per_room"] + 2)),
    "token_id": [SEED["a_token"], SEED["b_token"], SEED["missing_id"]],
}
B_PRIVATE = set(SEED["b_private_rooms"])
B_ROOMS = B_PRIVATE | set(SEED["b_public_rooms"])


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    """Half the time, the generated path parameters; otherwise seeded ids for those the pool knows."""
    if not path_parameters or not any(name in POOL for name in path_parameters):
        return st.just(path_parameters)
    seeded = st.fixed_dictionaries(
        {
            name: st.sampled_from(POOL[name]) if name in POOL else st.just(value)
            for name, value in path_parameters.items()
        }
    )
    return st.one_of(st.just(path_parameters), seeded)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _path(case) -> str:
    return case.operation.path


@schemathesis.check
def b_private_rooms_stay_hidden(ctx, response, case):
    """A, not a member, never gets a 2xx on anything under one of B's private rooms."""
    room = _int((case.path_parameters or {}).get("room_id"))
    if room in B_PRIVATE and 200 <= response.status_code < 300:
        raise AssertionError(
            f"A got {response.status_code} on B's private room {room}: {case.method} {case.formatted_path}"
        )


@schemathesis.check
def b_private_rooms_stay_unlisted(ctx, response, case):
    """No room list A gets names one of B's private rooms."""
    if case.method != "GET" or _path(case) != "/api/v1/rooms" or response.status_code != 200:
        return None
    try:
        ids = {room.get("id") for room in response.json().get("items", [])}
    except (ValueError, AttributeError):
        return None  # the schema checks report a malformed body
    leaked = ids & B_PRIVATE
    if leaked:
        raise AssertionError(f"GET /rooms listed B's private rooms {sorted(leaked)} to A")


@schemathesis.check
def b_messages_stay_b_s(ctx, response, case):
    """A never edits or deletes a message B wrote (seqs 1..messages_per_room of B's rooms)."""
    params = case.path_parameters or {}
    room, seq = _int(params.get("room_id")), _int(params.get("seq"))
    if (
        case.method in ("PATCH", "DELETE")
        and room in B_ROOMS
        and seq is not None
        and 1 <= seq <= SEED["messages_per_room"]
        and 200 <= response.status_code < 300
    ):
        raise AssertionError(f"A got {response.status_code} on B's message: {case.method} {case.formatted_path}")


@schemathesis.check
def b_tokens_stay_b_s(ctx, response, case):
    """A never revokes B's API token."""
    token = _int((case.path_parameters or {}).get("token_id"))
    if case.method == "DELETE" and token == SEED["b_token"] and 200 <= response.status_code < 300:
        raise AssertionError(f"A revoked B's API token {token}: {response.status_code}")

