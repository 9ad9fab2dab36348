#!/usr/bin/env python3
"""Incoming hooks with a real Slack client (part of `make contract-test`): `slack_sdk`'s `WebhookClient`,
the library tools use to post to Slack, pointed at our hook URL (CONTRACT-2 "Webhooks", incoming).

    python contract-test/slack_hook.py --server-bin target/debug/chat-server

Starts `chat-server` (SQLite, a temporary directory); through the API makes a user, a room and an incoming
hook; posts through the Slack client (text alone, text with a username, text with Slack's blocks and emoji
icon, which we ignore); checks each answer is Slack's (200, `ok`) and the room's history holds the messages
in order, by the hook's creator, `via` the hook or the given username. Then the errors a Slack client meets:
an empty text and a deleted hook, answered with a non-2xx status the client reports. Finally the server's
log never holds the hook's secret. Exit status 0 when everything held.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import requests
from slack_sdk.webhook import WebhookClient

from contract import Server, log


def check(condition: bool, what: str) -> None:
    if not condition:
        sys.exit(f"FAILED: {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-bin", required=True, help="the chat-server binary")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chat-slack-hook-") as data_dir:
        server = Server(os.path.abspath(args.server_bin), data_dir)
        try:
            run(server)
        finally:
            server.stop()


def run(server: Server) -> None:
    base = server.address
    api = requests.Session()
    registered = api.post(f"{base}/api/v1/auth/register", json={"username": "ops", "password": "a long password 1"})
    check(registered.status_code == 201, f"register: {registered.status_code} {registered.text}")
    user = registered.json()
    api.headers["Authorization"] = f"Bearer {user['access_token']}"
    room = api.post(f"{base}/api/v1/rooms", json={"name": "alerts"}).json()
    hook = api.post(f"{base}/api/v1/rooms/{room['id']}/hooks", json={"name": "CI"})
    check(hook.status_code == 201, f"create the hook: {hook.status_code} {hook.text}")
    url = base + hook.json()["url"]
    secret = url.rsplit("/", 1)[1]
    log("posting through slack_sdk's WebhookClient")

    slack = WebhookClient(url)
    answers = [
        slack.send(text="Build #42 passed"),
        # `send` has no `username`; tools that set one post the whole payload.
        slack.send_dict({"text": "Deploy started", "username": "deploy-bot"}),
        slack.send_dict({
            "text": "Disk at 91 % on db-1",
            "icon_emoji": ":warning:",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Disk* at 91 %"}}],
        }),
    ]
    for answer in answers:
        check(answer.status_code == 200, f"a post is accepted: {answer.status_code} {answer.body}")
        check('"ok":true' in answer.body.replace(" ", ""), f"Slack's answer: {answer.body}")

    history = api.get(f"{base}/api/v1/rooms/{room['id']}/messages").json()["items"]
    seen = [(m["body"], m["via"], m["author"]["id"]) for m in history]
    expected = [
        ("Build #42 passed", "CI", user["user"]["id"]),
        ("Deploy started", "deploy-bot", user["user"]["id"]),
        ("Disk at 91 % on db-1", "CI", user["user"]["id"]),
    ]
    check(seen == expected, f"the room holds the posts in order, via the hook: {seen}")

    empty = slack.send(text="")
    check(empty.status_code == 422, f"an empty text is refused: {empty.status_code} {empty.body}")
    hooks = api.get(f"{base}/api/v1/rooms/{room['id']}/hooks").json()["items"]
    deleted = api.delete(f"{base}/api/v1/rooms/{room['id']}/hooks/{hooks[0]['id']}")
    check(deleted.status_code == 204, f"delete the hook: {deleted.status_code}")
    gone = slack.send(text="after the delete")
    check(gone.status_code == 404, f"a deleted hook answers 404: {gone.status_code} {gone.body}")
    count = len(api.get(f"{base}/api/v1/rooms/{room['id']}/messages").json()["items"])
    check(count == 3, f"nothing was posted by the refused requests: {count} messages")

    leaked = [line for line in server.lines if secret in line or secret.removeprefix("chat_hook_") in line]
    check(not leaked, f"the hook's secret is in the server's log: {leaked[:3]}")
    log("slack_sdk: 3 posts delivered in order, 2 refusals reported, the secret never logged")


if __name__ == "__main__":
    main()
