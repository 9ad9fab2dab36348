// Server-sent events with a real EventSource client (the `eventsource` package, as a Node service would use
// it) through a server killed and restarted while someone else keeps posting (issue 14): the client
// reconnects by itself with Last-Event-ID and ends with every message once, in order.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { EventSource } from 'eventsource';

import { Server, eventually } from './harness.mjs';

describe('server-sent events', () => {
  let server;
  let ann;
  let ben;
  let room;

  before(async () => {
    server = await Server.create();
    [ann, ben] = [await server.user('ann'), await server.user('ben')];
    room = await server.api('POST', '/rooms', { token: ann.token, body: { name: 'status' } });
    await server.api('POST', `/rooms/${room.id}/join`, { token: ben.token });
  });

  after(async () => {
    await server?.stop();
  });

  /** Ben's EventSource on the room: a bearer token in a header, as a server-side client sends it. */
  function follow(token) {
    const seen = { messages: [], ids: [], subscribed: 0, errors: 0 };
    const source = new EventSource(`${server.url}/api/v1/rooms/${room.id}/events`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } }),
    });
    source.addEventListener('message', (event) => {
      const frame = JSON.parse(event.data);
      seen.messages.push(`${frame.message.seq}:${frame.message.body}`);
      seen.ids.push(event.lastEventId);
    });
    source.addEventListener('subscribed', () => { seen.subscribed += 1; });
    source.addEventListener('error', () => { seen.errors += 1; });
    return { source, seen };
  }

  const post = (i) => server.api('POST', `/rooms/${room.id}/messages`, { token: ann.token, body: { body: `update ${i}` } });

  test('an EventSource keeps every message once, in order, through a server restart', async () => {
    const { source, seen } = follow(ben.token);
    try {
      await eventually(async () => seen.subscribed === 1, 'subscribed');
      for (let i = 1; i <= 5; i += 1) await post(i);
      await eventually(async () => seen.messages.length === 5, async () => `before the restart: ${seen.messages}`);

      await server.kill();
      await eventually(async () => seen.errors > 0, 'the client notices the server is gone');
      await server.start();
      // Posted while the client waits to reconnect: it must get them on resuming.
      for (let i = 6; i <= 10; i += 1) await post(i);
      await eventually(async () => seen.subscribed === 2, 'the client reconnected by itself');
      for (let i = 11; i <= 12; i += 1) await post(i);

      const expected = Array.from({ length: 12 }, (_, k) => `${k + 1}:update ${k + 1}`);
      await eventually(async () => seen.messages.length >= 12, async () => `after the restart: ${seen.messages}`);
      assert.deepEqual(seen.messages, expected, 'every message once, in order');
      assert.deepEqual(seen.ids, expected.map((m) => m.split(':')[0]), 'each event id is its seq (what Last-Event-ID resumes from)');
    } finally {
      source.close();
    }
  });

  test('an EventSource refused for good (outside a private room) stops retrying', async () => {
    const secret = await server.api('POST', '/rooms', { token: ann.token, body: { name: 'secret', visibility: 'private' } });
    const source = new EventSource(`${server.url}/api/v1/rooms/${secret.id}/events`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, authorization: `Bearer ${ben.token}` } }),
    });
    try {
      await eventually(async () => source.readyState === EventSource.CLOSED, 'a 404 closes the EventSource');
    } finally {
      source.close();
    }
  });
});
