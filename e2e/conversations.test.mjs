// Replies and reactions in the real app (issue 13): two people in separate browser contexts against the
// real server.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Server, eventually, launchBrowser, logIn, openPage } from './harness.mjs';

describe('replies and reactions', () => {
  let server;
  let browser;
  let ann;
  let ben;
  let pageA;
  let pageB;
  let room;

  before(async () => {
    server = await Server.create();
    browser = await launchBrowser();
    [ann, ben] = [await server.user('ann'), await server.user('ben')];
    room = await server.api('POST', '/rooms', { token: ann.token, body: { name: 'design' } });
    await server.api('POST', `/rooms/${room.id}/join`, { token: ben.token });
    const post = (who, body) => server.api('POST', `/rooms/${room.id}/messages`, { token: who.token, body });
    await post(ann, { body: 'Which colour for the logo?' });
    for (let i = 1; i <= 60; i += 1) await post(ann, { body: `filler ${i}` });
    await post(ben, { body: 'Blue, as asked way up there', reply_to: 1 });
    pageA = await openPage(browser, server);
    await logIn(pageA, ann);
    pageB = await openPage(browser, server);
    await logIn(pageB, ben);
    for (const page of [pageA, pageB]) {
      await page.locator('.room-item', { hasText: 'design' }).getByRole('link').click();
      await page.locator('.message .body', { hasText: 'Blue, as asked' }).waitFor();
    }
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('clicking a quote loads history up to the original and highlights it', async () => {
    assert.equal(await pageB.locator('.message[data-seq="1"]').count(), 0, 'the original is not loaded yet');
    await pageB.locator('.reply-quote', { hasText: 'Which colour for the logo?' }).click();
    await pageB.locator('.message.highlight[data-seq="1"]').waitFor();
    assert.ok(await pageB.locator('.message[data-seq="1"]').isVisible());
  });

  test('one replies to the other from the message menu; both see the quote', async () => {
    const original = pageA.locator('.message', { hasText: 'Blue, as asked' });
    await original.hover();
    await original.getByRole('button', { name: 'Reply', exact: true }).click();
    await pageA.locator('.replying', { hasText: 'Replying to ben: Blue, as asked' }).waitFor();
    // Escape cancels, Reply again restores.
    await pageA.locator('#composer-input').press('Escape');
    assert.equal(await pageA.locator('.replying').count(), 0);
    await original.hover();
    await original.getByRole('button', { name: 'Reply', exact: true }).click();
    await pageA.locator('#composer-input').fill('Agreed, blue it is');
    await pageA.locator('#composer-input').press('Enter');
    for (const page of [pageA, pageB]) {
      const reply = page.locator('.message', { hasText: 'Agreed, blue it is' });
      await reply.locator('.reply-quote', { hasText: 'Blue, as asked' }).waitFor();
    }
    assert.equal(await pageA.locator('.replying').count(), 0, 'the reply bar goes once sent');
  });

  test('reactions toggle on both screens', async () => {
    const onA = pageA.locator('.message', { hasText: 'Agreed, blue it is' });
    await onA.hover();
    await onA.getByRole('button', { name: 'React', exact: true }).click();
    await pageA.getByLabel('Search emoji by name').fill('party');
    await pageA.getByRole('button', { name: 'tada' }).click();
    const chipOn = (page) => page.locator('.message', { hasText: 'Agreed, blue it is' }).locator('.chip');
    for (const page of [pageA, pageB]) {
      await eventually(async () => (await chipOn(page).textContent())?.trim() === '🎉 1', async () => `chip: ${await chipOn(page).allTextContents()}`);
    }
    assert.equal(await chipOn(pageA).getAttribute('aria-pressed'), 'true');
    assert.equal(await chipOn(pageB).getAttribute('aria-pressed'), 'false');
    assert.match(await chipOn(pageB).getAttribute('title'), /ann/, 'hovering names who');

    await chipOn(pageB).click();
    for (const page of [pageA, pageB]) {
      await eventually(async () => (await chipOn(page).textContent())?.trim() === '🎉 2', 'both count two');
    }
    await chipOn(pageB).click();
    await chipOn(pageA).click();
    for (const page of [pageA, pageB]) {
      await eventually(async () => (await chipOn(page).count()) === 0, 'no reaction left');
    }
    for (const page of [pageA, pageB]) assert.deepEqual(page.problems, []);
  });

  test('a mention while elsewhere shows a distinct badge and a notification that leads to the message', async () => {
    const other = await server.api('POST', '/rooms', { token: ann.token, body: { name: 'elsewhere' } });
    await pageA.goto(`${server.url}/rooms/${other.id}`);
    await pageA.locator('#room-title', { hasText: 'elsewhere' }).waitFor();
    await pageB.locator('#composer-input').fill('@ann can you check the contrast?');
    await pageB.locator('#composer-input').press('Enter');

    const design = pageA.locator('.room-item', { hasText: 'design' });
    await design.locator('.badge.mention', { hasText: '@1' }).waitFor();
    await pageA.locator('.notifications-link .badge', { hasText: '1' }).waitFor();
    assert.match(await pageA.title(), /^\(\d+\) Chat$/, 'the tab title counts unread messages');

    await pageA.getByRole('link', { name: /Notifications/ }).click();
    const row = pageA.locator('.notification', { hasText: 'ben mentioned you in design' });
    await row.waitFor();
    assert.match(await row.textContent(), /can you check the contrast/);
    await row.getByRole('button').click();
    await pageA.locator('#room-title', { hasText: 'design' }).waitFor();
    await pageA.locator('.message.mentions-me', { hasText: 'can you check the contrast' }).waitFor();
    // Read with the room: the badges go.
    await eventually(async () => (await design.locator('.badge.mention').count()) === 0, 'the mention badge clears');
    assert.deepEqual(pageA.problems, []);
  });

  test('Ctrl+K searches, marks the words found as text, and leads to the message', async () => {
    await pageB.locator('.room-item', { hasText: 'design' }).getByRole('link').click();
    await pageB.locator('#composer-input').fill('<b>bold</b> contrast ratio 4.5');
    await pageB.locator('#composer-input').press('Enter');
    // Stored (not the row shown while it is on its way), so that the search can find it.
    await pageB.locator('.message:not(.pending) .body', { hasText: 'contrast ratio' }).waitFor();
    await pageB.locator('.messages').click();
    await pageB.keyboard.press('Control+K');
    await pageB.locator('#search-title').waitFor();
    assert.equal(await pageB.getByLabel('Only in design').isChecked(), true, 'narrowed to the open room');
    await pageB.getByLabel('Search messages').fill('CONTRAST rat');
    await pageB.getByLabel('Search messages').press('Enter');
    const hits = pageB.locator('.search-hit');
    await eventually(async () => (await hits.count()) === 1, async () => `hits: ${await hits.allTextContents()}`);
    const newest = hits.first();
    assert.deepEqual(await newest.locator('mark').allTextContents(), ['contrast', 'ratio']);
    assert.equal(await newest.locator('b').count(), 0, 'message text stays text');
    await newest.getByRole('button').click();
    await pageB.locator('.message.highlight', { hasText: 'contrast ratio' }).waitFor();
    assert.deepEqual(pageB.problems, []);
  });

  test('web links open in a new tab; a javascript: link is text; messages sit under a day heading', async () => {
    await pageA.locator('.room-item', { hasText: 'design' }).getByRole('link').click();
    const body = 'spec at https://example.org/logo?v=2, not javascript:alert(1) nor <a href="javascript:alert(2)">x</a>';
    await server.api('POST', `/rooms/${room.id}/messages`, { token: ben.token, body: { body } });
    const message = pageA.locator('.message', { hasText: 'spec at' });
    await message.waitFor();
    assert.equal(await message.locator('.body').textContent().then((t) => t.includes(body)), true, 'the text is kept whole');
    const links = message.locator('.body a');
    assert.equal(await links.count(), 1, 'only the web link is a link');
    assert.equal(await links.getAttribute('href'), 'https://example.org/logo?v=2', 'trailing punctuation stays text');
    assert.equal(await links.getAttribute('rel'), 'noopener noreferrer');
    assert.equal(await links.getAttribute('target'), '_blank');
    assert.equal(await pageA.locator('.messages a[href^="javascript"]').count(), 0);
    // Everything here was written today: one heading, above the first message shown.
    assert.deepEqual(await pageA.locator('.message-rows .day').allTextContents(), ['Today']);
    assert.deepEqual(pageA.problems, []);
  });

  test('scrolled up, Jump to latest counts what arrived and goes back down', async () => {
    const list = pageA.locator('.messages');
    // A reader's scroll: the wheel, over the list.
    await list.hover();
    await pageA.mouse.wheel(0, -600);
    const jump = pageA.locator('.jump-latest');
    await jump.waitFor();
    for (const n of [1, 2]) {
      await server.api('POST', `/rooms/${room.id}/messages`, { token: ben.token, body: { body: `while away ${n}` } });
    }
    const where = () => list.evaluate((el) => ({
      button: el.querySelector('.jump-latest')?.textContent ?? 'none',
      fromBottom: el.scrollHeight - el.scrollTop - el.clientHeight,
      last: [...el.querySelectorAll('.message .body')].slice(-2).map((b) => b.textContent),
    }));
    await eventually(async () => (await where()).button.includes('(2 new)'), async () => `the list: ${JSON.stringify(await where())}`);
    await pageA.locator('.jump-latest').click();
    await pageA.locator('.message .body', { hasText: 'while away 2' }).waitFor({ state: 'visible' });
    await eventually(async () => (await pageA.locator('.jump-latest').count()) === 0, 'the button goes at the bottom');
    assert.deepEqual(pageA.problems, []);
  });

  test('search finds a message 500 messages back in another room and opens the room at it', async () => {
    const archive = await server.api('POST', '/rooms', { token: ann.token, body: { name: 'archive' } });
    await server.api('POST', `/rooms/${archive.id}/join`, { token: ben.token });
    const post = (body) => server.api('POST', `/rooms/${archive.id}/messages`, { token: ann.token, body: { body } });
    await post('the quarterly budget spreadsheet is final');
    for (let i = 1; i <= 500; i += 1) await post(`archive filler ${i}`);
    await pageB.locator('.room-item', { hasText: 'design' }).getByRole('link').click();
    await pageB.locator('.messages').click();
    await pageB.keyboard.press('Control+K');
    await pageB.locator('#search-title').waitFor();
    await pageB.getByLabel('Only in design').uncheck();
    await pageB.getByLabel('Search messages').fill('budget quarterly');
    await pageB.getByLabel('Search messages').press('Enter');
    const hit = pageB.locator('.search-hit', { hasText: 'in archive' });
    await hit.waitFor();
    await hit.getByRole('button').click();
    await pageB.locator('#room-title', { hasText: 'archive' }).waitFor();
    const original = pageB.locator('.message.highlight[data-seq="1"]', { hasText: 'quarterly budget' });
    await original.waitFor({ timeout: 30_000 });
    assert.ok(await original.isVisible());
    assert.deepEqual(pageB.problems, []);
  });

  test('@ offers the room\'s members: arrows and Enter take one, Escape closes, a click takes @room', async () => {
    await pageA.locator('.room-item', { hasText: 'design' }).getByRole('link').click();
    await pageA.locator('#room-title', { hasText: 'design' }).waitFor();
    const input = pageA.locator('#composer-input');
    const list = pageA.getByRole('listbox', { name: 'Mention someone' });
    const options = list.getByRole('option');
    await input.click();
    await input.pressSequentially('Thanks @');
    await list.waitFor();
    // Ann owns the room, so @room is offered first; she is not offered to herself.
    assert.deepEqual(await options.allTextContents(), ['room: everyone in this room', 'ben (@ben)']);
    assert.equal(await input.getAttribute('aria-activedescendant'), 'mention-option-0');
    await input.press('ArrowDown');
    assert.equal(await input.getAttribute('aria-activedescendant'), 'mention-option-1');
    assert.equal(await options.nth(1).getAttribute('aria-selected'), 'true');
    await input.press('Escape');
    assert.equal(await list.count(), 0, 'Escape closes the list');
    assert.equal(await input.inputValue(), 'Thanks @', 'and keeps the text');

    await input.pressSequentially('b');
    await eventually(async () => (await options.allTextContents()).join() === 'ben (@ben)', async () => `options: ${await options.allTextContents()}`);
    await input.press('Enter');
    assert.equal(await input.inputValue(), 'Thanks @ben ', 'Enter takes the option, not the send');
    assert.equal(await list.count(), 0);
    await input.pressSequentially('for the logo, and @r');
    await list.waitFor();
    await options.filter({ hasText: 'room: everyone' }).click();
    await eventually(async () => (await input.inputValue()) === 'Thanks @ben for the logo, and @room ', async () => `text: ${await input.inputValue()}`);
    await input.pressSequentially('thanks all');
    await input.press('Enter');
    const sent = 'Thanks @ben for the logo, and @room thanks all';
    await pageB.locator('.room-item', { hasText: 'design' }).getByRole('link').click();
    await pageB.locator('.message.mentions-me .body', { hasText: sent }).waitFor();
    // A member's @ list in ben's composer has no @room: he is not a moderator.
    await pageB.locator('#composer-input').pressSequentially('@');
    const bensOptions = pageB.getByRole('listbox', { name: 'Mention someone' }).getByRole('option');
    await eventually(async () => (await bensOptions.allTextContents()).join() === 'ann (@ann)', async () => `options: ${await bensOptions.allTextContents()}`);
    await pageB.locator('#composer-input').fill('');
    for (const page of [pageA, pageB]) assert.deepEqual(page.problems, []);
  });

  test('desktop notifications: asked for by a button, shown for a mention while the tab is hidden, a click opens the room', async () => {
    await pageA.getByRole('link', { name: /Notifications/ }).click();
    const turnOn = pageA.getByRole('button', { name: 'Turn on desktop notifications' });
    await turnOn.waitFor();
    await pageA.context().grantPermissions(['notifications'], { origin: server.url });
    await turnOn.click();
    await pageA.locator('.desktop-notifications', { hasText: 'Desktop notifications are on' }).waitFor();

    // Record what the app shows, and hide the tab (headless Chromium is always visible).
    await pageA.evaluate(() => {
      window.shown = [];
      const Real = window.Notification;
      window.Notification = class extends Real {
        constructor(title, options) {
          super(title, options);
          window.shown.push({ title, body: options?.body, notification: this });
        }
      };
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    });
    await server.api('POST', `/rooms/${room.id}/messages`, { token: ben.token, body: { body: 'plain chatter, no mention' } });
    await server.api('POST', `/rooms/${room.id}/messages`, { token: ben.token, body: { body: '@ann the proofs are in' } });
    const shown = () => pageA.evaluate(() => window.shown.map(({ title, body }) => ({ title, body })));
    await eventually(async () => (await shown()).length > 0, 'a desktop notification');
    assert.deepEqual(await shown(), [{ title: 'ben mentioned you in design', body: '@ann the proofs are in' }]);

    await pageA.evaluate(() => {
      delete document.visibilityState;
      window.shown[0].notification.onclick();
    });
    await pageA.locator('#room-title', { hasText: 'design' }).waitFor();
    await pageA.locator('.message .body', { hasText: 'the proofs are in' }).waitFor();
    assert.deepEqual(pageA.problems, []);
  });

  test('a notification that comes while the notifications page is open shows on top, and is read', async () => {
    const page = await openPage(browser, server);
    try {
      await logIn(page, ann);
      await page.getByRole('link', { name: /Notifications/ }).click();
      await page.locator('#notifications-title').waitFor();
      await page.locator('.banner[data-state="connected"]').waitFor();
      await server.api('POST', `/rooms/${room.id}/messages`, { token: ben.token, body: { body: '@ann a fresh one' } });
      const rows = page.locator('.notification');
      const fresh = rows.first();
      await fresh.locator('.excerpt', { hasText: 'a fresh one' }).waitFor({ timeout: 10_000 });
      assert.equal(await fresh.getAttribute('class').then((c) => c.includes('unread')), true, 'marked as new here');
      assert.equal(await page.locator('.notification', { hasText: 'a fresh one' }).count(), 1);
      // Seen on the page: read on the server too.
      const readOnServer = async () => {
        const list = await server.api('GET', '/notifications', { token: ann.token });
        return list.items.find((n) => n.message?.body === '@ann a fresh one')?.read === true;
      };
      await eventually(readOnServer, 'the notification is read on the server');
      assert.deepEqual(page.problems, []);
    } finally {
      await page.context().close();
    }
  });

  test('a mention made while the socket was away shows on its room as soon as the socket is back', async () => {
    const away = await server.api('POST', '/rooms', { token: ann.token, body: { name: 'while away' } });
    await server.api('POST', `/rooms/${away.id}/join`, { token: ben.token });
    const page = await openPage(browser, server);
    // Ann's socket goes through a relay the test can cut: while cut, every attempt is closed at once.
    let cut = false;
    const relayed = [];
    await page.routeWebSocket(/\/api\/v1\/ws/, (ws) => {
      if (cut) {
        ws.close({ code: 1011, reason: 'cut' });
        return;
      }
      relayed.push([ws, ws.connectToServer()]);
    });
    try {
      await logIn(page, ann);
      await page.locator('.banner[data-state="connected"]').waitFor();
      cut = true;
      for (const [client, upstream] of relayed.splice(0)) {
        await upstream.close();
        await client.close({ code: 1011, reason: 'cut' });
      }
      await page.locator('.banner[data-state="reconnecting"]').waitFor();
      // Made while Ann has no socket open: its `notification` frame reaches nobody.
      await server.api('POST', `/rooms/${away.id}/messages`, { token: ben.token, body: { body: '@ann are you there?' } });
      cut = false;
      await eventually(async () => {
        const retry = page.getByRole('button', { name: 'Retry now' });
        if (await retry.isVisible()) await retry.click().catch(() => {});
        return (await page.locator('.banner').getAttribute('data-state')) === 'connected';
      }, 'the socket is back');
      // Well before the room list's own refresh (every 30 s).
      const item = page.locator('.room-item', { hasText: 'while away' });
      await item.locator('.badge.mention', { hasText: '@1' }).waitFor({ timeout: 10_000 });
      assert.deepEqual(page.problems, []);
    } finally {
      await page.context().close();
    }
  });
});
