// Two people chatting in the real app, in headless Chromium, against the real server.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Server, bodies, eventually, launchBrowser, logIn, openPage } from './harness.mjs';

describe('two people chat', () => {
  let server;
  let browser;
  let alice;
  let bob;
  let pageA;
  let pageB;

  before(async () => {
    server = await Server.create();
    browser = await launchBrowser();
    bob = await server.user('bob');
    pageA = await openPage(browser, server);
    pageB = await openPage(browser, server);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('a new user registers and a returning one logs in', async () => {
    await pageA.getByRole('button', { name: 'New here? Create an account' }).click();
    await pageA.getByLabel('Username').fill('alice');
    await pageA.getByLabel('Display name').fill('Alice');
    await pageA.getByLabel('Password').fill('correct horse battery');
    await pageA.getByRole('button', { name: 'Register' }).click();
    await pageA.locator('.banner[data-state="connected"]').waitFor();
    assert.equal(await pageA.locator('.me-name').textContent(), 'Alice');
    alice = { username: 'alice', password: 'correct horse battery' };

    // A wrong password is refused with the server's words, and the form stays.
    await pageB.getByLabel('Username').fill('bob');
    await pageB.getByLabel('Password').fill('not the password');
    await pageB.getByRole('button', { name: 'Log in', exact: true }).click();
    await pageB.locator('.login .error').waitFor();
    await logIn(pageB, bob);
  });

  test('messages, typing and presence travel live both ways', async () => {
    // Alice creates a public room; Bob finds it under "Browse" and joins.
    await pageA.getByRole('button', { name: 'New room' }).click();
    await pageA.getByLabel('Room name').fill('general');
    await pageA.getByRole('button', { name: 'Create' }).click();
    await pageA.locator('#room-title', { hasText: 'general' }).waitFor();

    await pageB.getByRole('button', { name: 'Browse' }).click();
    await pageB.locator('.browse li', { hasText: 'general' }).getByRole('button', { name: 'Join' }).click();
    await pageB.locator('#room-title', { hasText: 'general' }).waitFor();

    await eventually(
      async () => (await pageA.locator('.online-count').textContent()) === '2 online',
      'Alice sees both online',
    );

    await pageB.locator('#composer-input').pressSequentially('hel');
    await pageA.locator('.typing', { hasText: 'bob is typing' }).waitFor();

    await pageA.locator('#composer-input').fill('hello from Alice');
    await pageA.locator('#composer-input').press('Enter');
    await pageB.locator('.message .body', { hasText: 'hello from Alice' }).waitFor();

    // Shift+Enter is a new line inside one message, Enter sends it.
    await pageB.locator('#composer-input').fill('');
    await pageB.locator('#composer-input').pressSequentially('line one');
    await pageB.locator('#composer-input').press('Shift+Enter');
    await pageB.locator('#composer-input').pressSequentially('line two');
    await pageB.locator('#composer-input').press('Enter');
    await eventually(async () => (await bodies(pageA)).includes('line one\nline two'), async () => `Alice sees ${JSON.stringify(await bodies(pageA))}`);
    // Bob's own row stays pending until his ack comes back on his socket.
    await eventually(
      async () => JSON.stringify(await bodies(pageA)) === JSON.stringify(await bodies(pageB)),
      async () => `Alice ${JSON.stringify(await bodies(pageA))}, Bob ${JSON.stringify(await bodies(pageB))}`,
    );
    assert.equal(await pageA.locator('.message.mine .body', { hasText: 'hello from Alice' }).count(), 1);
  });

  test('HTML in a message is shown as text, never run', async () => {
    const evil = '<img src=x onerror=alert(1)>';
    await pageB.locator('#composer-input').fill(evil);
    await pageB.locator('#composer-input').press('Enter');
    await eventually(async () => (await bodies(pageA)).includes(evil), 'Alice sees the text');
    assert.equal(await pageA.locator('.messages img').count(), 0);
    assert.deepEqual(pageA.problems, []);
    assert.deepEqual(pageB.problems, []);
  });

  test('unread badges rise while away and clear when read', async () => {
    // Bob goes back to the list: no room open, so nothing is read.
    await pageB.goto(server.url);
    await pageB.locator('.room-item', { hasText: 'general' }).waitFor();
    for (const text of ['one', 'two', 'three']) {
      await pageA.locator('#composer-input').fill(`unread ${text}`);
      await pageA.locator('#composer-input').press('Enter');
    }
    const badge = pageB.locator('.room-item', { hasText: 'general' }).locator('.badge');
    await eventually(async () => (await badge.count()) === 1 && (await badge.textContent()) === '3', async () => `badge: ${await badge.allTextContents()}`);
    assert.match(await pageB.locator('.room-item', { hasText: 'general' }).locator('.preview').textContent(), /unread three/);

    await pageB.locator('.room-item', { hasText: 'general' }).getByRole('link').click();
    await pageB.locator('.divider', { hasText: 'New messages' }).waitFor();
    await eventually(async () => (await badge.count()) === 0, 'the badge clears once read');

    // The read marker reached the server: a reload shows no badge either.
    await pageB.goto(server.url);
    await pageB.locator('.room-item', { hasText: 'general' }).waitFor();
    await pageB.waitForTimeout(500);
    assert.equal(await badge.count(), 0);
  });

  test('the author edits and deletes a message; the other side sees both', async () => {
    await pageA.goto(`${server.url}/`);
    await pageA.locator('.room-item', { hasText: 'general' }).getByRole('link').click();
    await pageB.locator('.room-item', { hasText: 'general' }).getByRole('link').click();
    await pageA.locator('#composer-input').fill('typo hre');
    await pageA.locator('#composer-input').press('Enter');
    const mine = pageA.locator('.message.mine', { hasText: 'typo hre' });
    await mine.hover();
    await mine.getByRole('button', { name: 'Edit' }).click();
    await pageA.getByLabel('Edit message').fill('typo here');
    await pageA.getByLabel('Edit message').press('Enter');
    await pageB.locator('.message', { hasText: 'typo here' }).locator('.edited').waitFor();

    pageA.confirmNext = true;
    const fixed = pageA.locator('.message.mine', { hasText: 'typo here' });
    await fixed.hover();
    await fixed.getByRole('button', { name: 'Delete' }).click();
    await pageB.locator('.message.deleted', { hasText: 'message deleted' }).waitFor();
    assert.equal(await pageB.locator('.message .body', { hasText: 'typo here' }).count(), 0);
    // Bob cannot edit Alice's messages: no buttons on them.
    assert.equal(await pageB.locator('.message:not(.mine)').getByRole('button', { name: 'Edit' }).count(), 0);
  });

  test('scrolling up loads older history, in order, without repeats', async () => {
    const carol = await server.user('carol');
    const room = await server.api('POST', '/rooms', { token: carol.token, body: { name: 'long history' } });
    for (let i = 1; i <= 120; i += 1) {
      await server.api('POST', `/rooms/${room.id}/messages`, { token: carol.token, body: { body: `old ${i}` } });
    }
    await pageB.goto(`${server.url}/rooms/${room.id}`); // a deep link into a public room joins it
    await pageB.locator('.message .body', { hasText: 'old 120' }).waitFor();
    assert.equal((await bodies(pageB)).length, 50, 'the latest page first');
    // A reader scrolling to the top again and again: each scroll to the top loads the next older page
    // (one at a time: a scroll while a page is on its way does nothing).
    const expected = Array.from({ length: 120 }, (_, i) => `old ${i + 1}`);
    await eventually(async () => {
      await pageB.locator('.messages').evaluate((el) => {
        el.scrollTop = 0;
      });
      return (await bodies(pageB)).length === 120;
    }, async () => `${(await bodies(pageB)).length} shown`);
    assert.deepEqual(await bodies(pageB), expected);
  });

  test('a send the server refuses says why and offers retry', async () => {
    const room = await server.api('POST', '/rooms', { token: bob.token, body: { name: 'leaving' } });
    await pageB.goto(`${server.url}/rooms/${room.id}`);
    await pageB.locator('#composer-input').waitFor();
    // Bob leaves the room in another tab; this page does not know yet.
    await server.api('POST', `/rooms/${room.id}/leave`, { token: bob.token });
    await pageB.locator('#composer-input').fill('are you there?');
    await pageB.locator('#composer-input').press('Enter');
    const failed = pageB.locator('.message.pending.failed', { hasText: 'are you there?' });
    await failed.locator('.status', { hasText: 'Not sent' }).waitFor();

    // Back in the room, "Retry" sends it, once.
    await server.api('POST', `/rooms/${room.id}/join`, { token: bob.token });
    await failed.getByRole('button', { name: 'Retry' }).click();
    await pageB.locator('.message:not(.pending) .body', { hasText: 'are you there?' }).waitFor();
    const history = await server.api('GET', `/rooms/${room.id}/messages`, { token: bob.token });
    assert.deepEqual(history.items.map((m) => m.body), ['are you there?']);
  });

  test('a renamed room shows its new name; a member removed sees the room close and why', async () => {
    const a = await server.api('POST', '/auth/login', { body: { username: alice.username, password: alice.password } });
    const token = a.access_token;
    const room = await server.api('POST', '/rooms', { token, body: { name: 'moderated', visibility: 'private' } });
    await server.api('POST', `/rooms/${room.id}/members`, { token, body: { username: bob.username } });
    await pageB.goto(`${server.url}/rooms/${room.id}`);
    await pageB.locator('#room-title', { hasText: 'moderated' }).waitFor();
    // Subscribed (the presence it answers with is on screen): live changes reach this page from now on.
    await pageB.locator('.online-count', { hasText: '1 online' }).waitFor();

    await server.api('PATCH', `/rooms/${room.id}`, { token, body: { name: 'moderated, renamed' } });
    await pageB.locator('#room-title', { hasText: 'moderated, renamed' }).waitFor();

    await server.api('DELETE', `/rooms/${room.id}/members/${bob.user.id}`, { token });
    await pageB.locator('.notice', { hasText: 'You were removed from moderated, renamed.' }).waitFor();
    await eventually(async () => !pageB.url().includes(`/rooms/${room.id}`), 'the removed room closes');
    assert.equal(await pageB.locator('.room-item', { hasText: 'moderated' }).count(), 0);
    await pageB.locator('.notice').getByRole('button', { name: 'Dismiss' }).click();
    assert.equal(await pageB.locator('.notice').count(), 0);
  });

  test("a display name changed in settings shows on the other person's screen", async () => {
    await pageA.locator('.room-item', { hasText: 'general' }).getByRole('link').click();
    await pageA.locator('.message .author', { hasText: 'bob' }).first().waitFor();
    await pageB.goto(`${server.url}/settings`);
    await pageB.getByLabel('Display name').fill('Robert');
    await pageB.getByRole('button', { name: 'Save' }).click();
    await pageB.locator('.profile [role="status"]', { hasText: 'Saved.' }).waitFor();
    assert.equal(await pageB.locator('.me-name').textContent(), 'Robert');
    // Alice, in a room with Bob, sees his messages under the new name at once.
    await pageA.locator('.message .author', { hasText: 'Robert' }).first().waitFor({ timeout: 5_000 });
    assert.equal(await pageA.locator('.message .author', { hasText: /^bob$/ }).count(), 0);
  });

  test('settings list where one is signed in, and "sign out everywhere" signs out the other browser too', async () => {
    const elsewhere = await openPage(browser, server);
    await logIn(elsewhere, alice);
    await pageA.goto(`${server.url}/`);
    await pageA.getByRole('link', { name: 'Settings', exact: true }).click();
    await pageA.locator('#settings-title').waitFor();
    await eventually(async () => (await pageA.locator('.session').count()) >= 2, 'both browsers are listed');
    assert.equal(await pageA.locator('.session.current').count(), 1);
    assert.equal(await pageA.locator('.session.current .this-device').textContent(), 'This device');

    await pageA.getByRole('button', { name: 'Sign out everywhere' }).click();
    await pageA.getByRole('button', { name: 'Log in', exact: true }).waitFor();
    // The other browser's socket is closed (4001), its refresh refused: it is back at the login too.
    await elsewhere.getByRole('button', { name: 'Log in', exact: true }).waitFor({ timeout: 10_000 });
  });
});

describe('short-lived access tokens', () => {
  let server;
  let browser;

  before(async () => {
    // Access tokens of 4 s: the app refreshes them as it goes, and the server closes sockets whose token
    // expired (4001), which the app must survive without losing a message.
    server = await Server.create({ ACCESS_TOKEN_TTL: '4' });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the session refreshes itself and the socket survives 4001 closes', async () => {
    const dave = await server.user('dave');
    const erin = await server.user('erin');
    const room = await server.api('POST', '/rooms', { token: dave.token, body: { name: 'ttl' } });
    const fresh = await server.api('POST', '/auth/login', { body: { username: 'erin', password: erin.password } });
    await server.api('POST', `/rooms/${room.id}/join`, { token: fresh.access_token });
    const pageD = await openPage(browser, server);
    await logIn(pageD, dave);
    await pageD.locator('.room-item', { hasText: 'ttl' }).getByRole('link').click();
    const pageE = await openPage(browser, server);
    await logIn(pageE, erin);
    await pageE.locator('.room-item', { hasText: 'ttl' }).getByRole('link').click();

    const sent = [];
    for (let i = 1; i <= 24; i += 1) {
      sent.push(`t${String(i).padStart(2, '0')}`);
      await pageD.locator('#composer-input').fill(sent.at(-1));
      await pageD.locator('#composer-input').press('Enter');
      await pageD.waitForTimeout(500);
    }
    for (const page of [pageD, pageE]) {
      await eventually(async () => JSON.stringify(await bodies(page)) === JSON.stringify(sent), async () => JSON.stringify(await bodies(page)));
      assert.equal(await page.locator('.banner').getAttribute('data-last-close'), '4001');
      assert.ok(page.url().includes('/rooms/'), 'still logged in, still in the room');
    }
  });
});
