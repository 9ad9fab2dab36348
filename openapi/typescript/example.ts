/**
 * The TypeScript client end to end: register a user, create a room, send a message with an
 * `Idempotency-Key` (and retry it, getting the same message back), read the history and print it.
 *
 *     npx tsc -p openapi/typescript                      # compiles to target/typescript/
 *     CHAT_BASE_URL=http://127.0.0.1:8080 node target/typescript/example.js
 *
 * Environment: `CHAT_BASE_URL` (default `http://127.0.0.1:8080`), `CHAT_MESSAGE` (the text to send).
 * Any unexpected status ends the program with a message on stderr and exit status 1.
 */
import { randomUUID } from "node:crypto";

import { createChatClient, type Message, type Problem } from "./client.js";

const baseUrl = process.env.CHAT_BASE_URL ?? "http://127.0.0.1:8080";
const text = process.env.CHAT_MESSAGE ?? "Hello from TypeScript";

/** What every openapi-fetch call returns; `error` holds the problem+json body of a failure. */
interface Outcome<T> {
  data?: T;
  error?: Problem | unknown;
  response: Response;
}

/** The body of a response with the `expected` status; throws (with the problem's `code`) otherwise. */
function expectStatus<T>(what: string, outcome: Outcome<T>, expected: number): T {
  const { data, error, response } = outcome;
  if (response.status !== expected || data === undefined) {
    throw new Error(
      `${what}: expected HTTP ${expected}, got ${response.status} ${response.statusText}: ${JSON.stringify(error ?? data)}`,
    );
  }
  return data;
}

async function main(): Promise<void> {
  let accessToken: string | undefined;
  const chat = createChatClient({ baseUrl, token: () => accessToken });

  // 1. Register (usernames are 3-32 chars of [a-z0-9_.-]); the answer carries an access token.
  const username = `ts_${randomUUID().slice(0, 8)}`;
  const session = expectStatus(
    "register",
    await chat.POST("/api/v1/auth/register", {
      body: { username, password: "correct horse battery staple", display_name: "TypeScript example" },
    }),
    201,
  );
  accessToken = session.access_token;
  console.log(`registered ${session.user.username} (user ${session.user.id})`);

  // 2. Create a room; its creator is its owner and first member.
  const room = expectStatus(
    "create room",
    await chat.POST("/api/v1/rooms", { body: { name: "typescript example", topic: "openapi-fetch" } }),
    201,
  );
  console.log(`created room ${room.id} "${room.name}"`);

  // 3. Send a message. The Idempotency-Key makes a retry safe: the same key again returns the
  //    first message with 200 instead of storing a second one.
  const idempotencyKey = randomUUID();
  const send = () =>
    chat.POST("/api/v1/rooms/{room_id}/messages", {
      params: { path: { room_id: room.id }, header: { "Idempotency-Key": idempotencyKey } },
      body: { body: text },
    });
  const sent: Message = expectStatus("send message", await send(), 201);
  const retried: Message = expectStatus("retry the send", await send(), 200);
  if (retried.id !== sent.id || retried.seq !== sent.seq) {
    throw new Error(`the retry stored a second message: ${JSON.stringify({ sent, retried })}`);
  }
  console.log(`sent message seq ${sent.seq} (a retry with the same Idempotency-Key returned it again)`);

  // 4. Read the history: the latest page, oldest first.
  const page = expectStatus(
    "read history",
    await chat.GET("/api/v1/rooms/{room_id}/messages", {
      params: { path: { room_id: room.id }, query: { limit: 50 } },
    }),
    200,
  );
  if (page.items.length !== 1 || page.items[0]?.body !== text) {
    throw new Error(`the history is not the one message sent: ${JSON.stringify(page)}`);
  }
  console.log(`history of room ${room.id} (${page.items.length} message${page.items.length === 1 ? "" : "s"}):`);
  for (const m of page.items) {
    console.log(`  #${m.seq} ${m.created_at} ${m.author.username}: ${m.body}`);
  }
}

main().catch((err: unknown) => {
  console.error(`example failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
