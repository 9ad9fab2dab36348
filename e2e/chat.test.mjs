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
    assert.deepEqual(await bodies(pageA), await bodies(pageB));
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
});
