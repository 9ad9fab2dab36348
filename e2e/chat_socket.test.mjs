// The TypeScript package's ChatSocket in Node 20 (issue 14), with the `ws` package as its WebSocket, against
// the real server: through a SIGKILL and restart while someone else posts it ends with every message once, in
// order; a message sent while the server is down leaves from the outbox and is stored once; more missed than
// the server replays is paged over REST; an expired access token (close 4001) is refreshed and the socket
// goes on. And in Chromium, with the browser's own WebSocket and fetch.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import WebSocket from 'ws';

import { Server, eventually, launchBrowser, loadPackage } from './harness.mjs';

/** Where this file's copy of the package is compiled (`loadPackage`). */
const PACKAGE_DIR = 'e2e-chat-socket';
const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'target', PACKAGE_DIR);

/** A ChatSocket following `roomId` for `user`, recording what it hands on. */
function follow(ChatSocket, server, user, roomId, since, extra = {}) {
  const seen = { messages: [], subscribed: 0, states: [] };
  const socket = new ChatSocket({ baseUrl: server.url, token: () => user.token, WebSocket, ...extra });
  socket.on('message', ({ message }) => {
    if (message.room_id === roomId) seen.messages.push(`${message.seq}:${message.body}`);
  });
  socket.on('subscribed', (frame) => { if (frame.room_id === roomId) seen.subscribed += 1; });
  socket.onState((state) => seen.states.push(state));
  socket.subscribe(roomId, since);
  socket.start();
  return { socket, seen };
}

describe('ChatSocket (the TypeScript package) in Node', () => {
  let server;
  let pkg;
  let ann;
  let ben;

  before(async () => {
    pkg = await loadPackage(PACKAGE_DIR);
    server = await Server.create();
    [ann, ben] = [await server.user('ann'), await server.user('ben')];
  });

  after(async () => {
    await server?.stop();
  });

  async function room(name) {
    const made = await server.api('POST', '/rooms', { token: ann.token, body: { name } });
    await server.api('POST', `/rooms/${made.id}/join`, { token: ben.token });
    return made.id;
  }

  const post = (roomId, body) => server.api('POST', `/rooms/${roomId}/messages`, { token: ann.token, body: { body } });

  test('every message once, in order, through a server killed and restarted while another client posts', async () => {
    const roomId = await room('status');
    const { socket, seen } = follow(pkg.ChatSocket, server, ben, roomId, 0);
    try {
      await eventually(async () => seen.subscribed === 1, 'subscribed');
      for (let i = 1; i <= 5; i += 1) await post(roomId, `update ${i}`);
      await eventually(async () => seen.messages.length === 5, async () => `before the restart: ${seen.messages}`);

      await server.kill();
      await eventually(async () => socket.state === 'waiting', 'the socket notices');
      await server.start();
      for (let i = 6; i <= 10; i += 1) await post(roomId, `update ${i}`);
      await eventually(async () => seen.subscribed === 2, 'it reconnected and resubscribed by itself');
      for (let i = 11; i <= 12; i += 1) await post(roomId, `update ${i}`);

      const expected = Array.from({ length: 12 }, (_, k) => `${k + 1}:update ${k + 1}`);
      await eventually(async () => seen.messages.length >= 12, async () => `after the restart: ${seen.messages}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(seen.messages, expected, 'every message once, in order');
      assert.equal(socket.lastSeq(roomId), 12);
    } finally {
      socket.close();
    }
  });

  test('a message sent while the server is down leaves from the outbox and is stored once', async () => {
    const roomId = await room('outbox');
    const { socket, seen } = follow(pkg.ChatSocket, server, ben, roomId, 0);
    try {
      await eventually(async () => socket.state === 'open' && seen.subscribed === 1, 'open');
      await server.kill();
      await eventually(async () => socket.state !== 'open', 'the socket notices');
      const sent = socket.send(roomId, 'written offline');
      await server.start();
      const stored = await sent;
      assert.equal(stored.body, 'written offline');
      assert.equal(stored.author.id, ben.user.id);
      await eventually(async () => seen.messages.length === 1, 'its own message comes back once');
      const history = await server.api('GET', `/rooms/${roomId}/messages`, { token: ann.token });
      assert.deepEqual(history.items.map((m) => m.body), ['written offline'], 'stored once');

      // A send the server refuses for good rejects with its problem code.
      const secret = await server.api('POST', '/rooms', { token: ann.token, body: { name: 'secret', visibility: 'private' } });
      await assert.rejects(socket.send(secret.id, 'let me in'), (e) => e instanceof pkg.SendError && e.code !== 'timeout');
    } finally {
      socket.close();
    }
  });

  test('more missed than the server replays is paged over REST, each once and in order', async () => {
    const roomId = await room('busy');
    for (let i = 1; i <= 3; i += 1) await post(roomId, `m ${i}`);
    // 1,005 more while nobody follows: beyond the 1,000 a subscribe replays.
    for (let i = 4; i <= 1008; i += 1) await post(roomId, `m ${i}`);
    const { socket, seen } = follow(pkg.ChatSocket, server, ben, roomId, 3);
    try {
      await eventually(async () => seen.messages.length >= 1005, async () => `${seen.messages.length} of 1005`, 60_000);
      await post(roomId, 'm 1009');
      await eventually(async () => seen.messages.length === 1006, 'the live one after the pages');
      const expected = Array.from({ length: 1006 }, (_, k) => `${k + 4}:m ${k + 4}`);
      assert.deepEqual(seen.messages, expected);
    } finally {
      socket.close();
    }
  });
});

describe('ChatSocket with short-lived access tokens', () => {
  let server;
  let pkg;

  before(async () => {
    pkg = await loadPackage(PACKAGE_DIR);
    server = await Server.create({ ACCESS_TOKEN_TTL: '3' });
  });

  after(async () => {
    await server?.stop();
  });

  test('close 4001 calls refresh() and the socket goes on with the new token', async () => {
    const ann = await server.user('ann');
    const roomId = (await server.api('POST', '/rooms', { token: ann.token, body: { name: 'short' } })).id;
    let token = ann.token;
    let refreshToken = (await server.api('POST', '/auth/login', { body: { username: 'ann', password: ann.password } })).refresh_token;
    let refreshes = 0;
    const refresh = async () => {
      const fresh = await server.api('POST', '/auth/refresh', { body: { refresh_token: refreshToken } });
      [token, refreshToken] = [fresh.access_token, fresh.refresh_token];
      refreshes += 1;
    };
    const socket = new pkg.ChatSocket({ baseUrl: server.url, token: () => token, refresh, WebSocket });
    const seen = [];
    socket.on('message', ({ message }) => seen.push(message.body));
    socket.subscribe(roomId, 0);
    socket.start();
    try {
      await eventually(async () => refreshes >= 1 && socket.state === 'open', 'refreshed after 4001 and open again', 15_000);
      await server.api('POST', `/rooms/${roomId}/messages`, { token, body: { body: 'after the refresh' } });
      await eventually(async () => seen.includes('after the refresh'), 'live messages flow on');
    } finally {
      socket.close();
    }
  });
});

describe('ChatSocket in a browser', () => {
  let server;
  let browser;

  before(async () => {
    await loadPackage(PACKAGE_DIR);
    server = await Server.create();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("with the browser's WebSocket: live messages in order, and a send acked with the stored message", async () => {
    const [ann, ben] = [await server.user('ann'), await server.user('ben')];
    const room = await server.api('POST', '/rooms', { token: ann.token, body: { name: 'browser' } });
    await server.api('POST', `/rooms/${room.id}/join`, { token: ben.token });
    await server.api('POST', `/rooms/${room.id}/messages`, { token: ann.token, body: { body: 'before' } });
    // The app's page, its CSP bypassed only so that the test can inject the package (an app would bundle it).
    const context = await browser.newContext({ bypassCSP: true });
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (err) => problems.push(err.message));
    await page.goto(server.url);
    // socket.js imports only types: it runs in a page as it is, as a module.
    const code = readFileSync(join(out, 'socket.js'), 'utf8');
    await page.addScriptTag({ type: 'module', content: `${code}\nwindow.ChatSocket = ChatSocket;` });
    await page.waitForFunction(() => typeof window.ChatSocket === 'function');
    await page.evaluate(({ url, token, roomId }) => {
      window.seen = [];
      const socket = new window.ChatSocket({ baseUrl: url, token: () => token });
      socket.on('message', ({ message }) => window.seen.push(`${message.seq}:${message.body}`));
      socket.on('subscribed', () => { window.subscribed = true; });
      socket.subscribe(roomId, 0);
      socket.start();
      window.socket = socket;
    }, { url: server.url, token: ben.token, roomId: room.id });
    await page.waitForFunction(() => window.subscribed === true);
    await server.api('POST', `/rooms/${room.id}/messages`, { token: ann.token, body: { body: 'live' } });
    const stored = await page.evaluate((roomId) => window.socket.send(roomId, 'from the page').then((m) => m.seq), room.id);
    assert.equal(stored, 3);
    await page.waitForFunction(() => window.seen.length === 3);
    assert.deepEqual(await page.evaluate(() => window.seen), ['1:before', '2:live', '3:from the page']);
    await page.evaluate(() => window.socket.close());
    assert.deepEqual(problems, []);
    await context.close();
  });
});
