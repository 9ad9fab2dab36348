// A bot made with the package alone and an API token (scopes messages:read and messages:write): it follows one
// room by long polling and answers `!ping` with `pong` and `!echo <text>` with the text, each as a reply.
//
//     npm install chat-api-client
//     CHAT_BASE_URL=http://127.0.0.1:8080 CHAT_TOKEN=chat_pat_... CHAT_ROOM=1 node bot.mjs
//
// Commands start with `!` and answers never do, so the bot does not answer itself. Each answer's `client_id`
// is derived from the message it answers: a bot restarted mid-answer does not answer twice.
import { createChatClient } from "chat-api-client";

const baseUrl = process.env.CHAT_BASE_URL ?? "http://127.0.0.1:8080";
const token = process.env.CHAT_TOKEN;
const roomId = Number(process.env.CHAT_ROOM);
if (!token || !Number.isInteger(roomId)) {
  console.error("set CHAT_TOKEN (an API token) and CHAT_ROOM (a room id)");
  process.exit(2);
}
const chat = createChatClient({ baseUrl, token: () => token });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const path = { room_id: roomId };

/** The answer to a message, or undefined when it is not a command. */
function answer(body) {
  if (body.trim() === "!ping") return "pong";
  const echo = body.match(/^!echo\s+(.+)$/s);
  return echo ? echo[1] : undefined;
}

// Start after what is in the room already.
const latest = await chat.GET("/api/v1/rooms/{room_id}/messages", { params: { path, query: { limit: 1 } } });
if (!latest.data) {
  console.error(`cannot read room ${roomId}: HTTP ${latest.response.status} ${JSON.stringify(latest.error)}`);
  process.exit(1);
}
let after = latest.data.items.at(-1)?.seq ?? 0;
console.log(`following room ${roomId} after seq ${after}`);

for (;;) {
  let page;
  try {
    page = await chat.GET("/api/v1/rooms/{room_id}/messages", { params: { path, query: { after, wait: 30 } } });
  } catch (err) {
    // The server is unreachable (restarting, say): try again shortly; nothing is lost, `after` says where.
    await sleep(1000);
    continue;
  }
  if (!page.data) {
    if (page.response.status === 429 || page.response.status >= 500) {
      await sleep(1000);
      continue;
    }
    console.error(`reading room ${roomId}: HTTP ${page.response.status} ${JSON.stringify(page.error)}`);
    process.exit(1);
  }
  for (const message of page.data.items) {
    after = message.seq;
    const text = message.deleted ? undefined : answer(message.body);
    if (text === undefined) continue;
    const sent = await chat.POST("/api/v1/rooms/{room_id}/messages", {
      params: { path },
      body: { body: text, reply_to: message.seq, client_id: `bot-answer-${message.seq}` },
    });
    if (!sent.data) {
      console.error(`answering ${message.seq}: HTTP ${sent.response.status} ${JSON.stringify(sent.error)}`);
      process.exit(1);
    }
    console.log(`answered ${message.seq} with seq ${sent.data.seq}`);
  }
}
