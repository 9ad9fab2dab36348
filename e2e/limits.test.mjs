// The app, and the TypeScript package's ChatSocket, against a server whose send budget is small
// (RATE_LIMIT_SENDS, CONTRACT-2 "Socket limits"): a burst of messages over the budget is refused in part;
// the client holds the refused ones, and the ones sent after them, and sends them again when the budget
// allows, so that every message is stored once, in the order it was sent, and none is reported failed.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import WebSocket from 'ws';

import { Server, bodies, eventually, launchBrowser, loadPackage, logIn, openPage } from './harness.mjs';

/** The server's count of refusals by the send budget. */
const sendsRefused = (server) => server.metric('http_rate_limited_total{limit="sends_user"}');

describe('the send budget', () => {
  let server;
  let browser;
  let page;
  let ann;

  before(async () => {
    // Five sends a second per user (one more every 200 ms): a burst of twelve goes over it.
    server = await Server.create({ RATE_LIMIT_SENDS: '5/s' });
    browser = await launchBrowser();
    ann = await server.user('ann');
    page = await openPage(browser, server);
    await logIn(page, ann);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('in the app, a burst over the budget is held and resent: every message once, in the order typed', async () => {
    const room = await server.api('POST', '/rooms', { token: ann.token, body: { name: 'burst' } });
    await page.goto(`${server.url}/rooms/${room.id}`);
    await page.locator('#composer-input').waitFor();
    const typed = Array.from({ length: 12 }, (_, i) => `burst ${i + 1}`);
    for (const body of typed) {
      await page.locator('#composer-input').fill(body);
      await page.locator('#composer-input').press('Enter');
    }
    // The server refused part of the burst (the budget, not the socket's own frame limit: 20/s)...
    await eventually(async () => (await sendsRefused(server)) > 0, 'the server refuses the sends over the budget');
    // ...and the app sent those again when the budget allowed, without a click and without a failure shown.
    await eventually(
      async () => (await page.locator('.message.pending').count()) === 0,
      async () => `${await page.locator('.message.pending').count()} still pending`,
    );
    assert.equal(await page.locator('.message.failed').count(), 0, 'no message is marked as not sent');
    assert.deepEqual(await bodies(page), typed);
    const history = await server.api('GET', `/rooms/${room.id}/messages?limit=50`, { token: ann.token });
    assert.deepEqual(history.items.map((m) => m.body), typed, 'stored once each, in the order typed');
  });

  test('the ChatSocket package holds a burst over the budget and resends it: every send resolves, in order', async () => {
    const { ChatSocket } = await loadPackage('e2e-limits');
    const ben = await server.user('ben');
    const room = await server.api('POST', '/rooms', { token: ben.token, body: { name: 'burst over a socket' } });
    const before = await sendsRefused(server);
    const socket = new ChatSocket({ baseUrl: server.url, token: () => ben.token, WebSocket });
    try {
      socket.start();
      await eventually(async () => socket.state === 'open', 'the socket opens');
      const sent = Array.from({ length: 12 }, (_, i) => `socket burst ${i + 1}`);
      // One every 50 ms, as someone typing fast: the budget refills (one send every 200 ms) between a
      // refusal and the sends after it, which must still wait for the refused one.
      const sends = [];
      for (const body of sent) {
        sends.push(socket.send(room.id, body));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const stored = await Promise.all(sends);
      assert.ok((await sendsRefused(server)) > before, 'the server refused part of the burst');
      assert.deepEqual(stored.map((m) => m.body), sent);
      const seqs = stored.map((m) => m.seq);
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'each send stored after the one before it');
      const history = await server.api('GET', `/rooms/${room.id}/messages?limit=50`, { token: ben.token });
      assert.deepEqual(history.items.map((m) => m.body), sent, 'stored once each, in the order sent');
    } finally {
      socket.close();
    }
  });
});
