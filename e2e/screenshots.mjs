// `make screenshots`: the README's pictures of the app, taken from a real server with a small, realistic
// scene, in headless Chromium. Writes docs/screenshots/*.png.

import { mkdirSync } from 'node:fs';

import { Server, launchBrowser, logIn } from './harness.mjs';

const OUT = process.env.SCREENSHOT_DIR ?? 'docs/screenshots';

async function scene(server) {
  const alice = await server.user('alice');
  const bob = await server.user('bob');
  const carol = await server.user('carol');
  const post = (who, room, body) => server.api('POST', `/rooms/${room.id}/messages`, { token: who.token, body: { body } });
  const general = await server.api('POST', '/rooms', { token: bob.token, body: { name: 'general', topic: 'Anything goes' } });
  const releases = await server.api('POST', '/rooms', { token: carol.token, body: { name: 'releases' } });
  for (const who of [alice, carol]) await server.api('POST', `/rooms/${general.id}/join`, { token: who.token });
  await server.api('POST', `/rooms/${releases.id}/join`, { token: alice.token });
  const direct = await server.api('POST', '/direct', { token: carol.token, body: { username: 'alice' } });

  await post(bob, general, 'Morning all! Is the staging deploy done?');
  await post(alice, general, 'Yes, finished ten minutes ago.');
  await post(alice, general, 'Migrations ran cleanly on both nodes.');
  await post(carol, general, 'Great. I will start the smoke tests.');
  await post(bob, general, 'Thanks! Ping me if anything looks off.');
  await post(carol, releases, 'v0.4 is tagged: the changelog is in the usual place.');
  await post(carol, direct, 'Do you have a minute for the release notes?');
  // A conversation: a mention, a reply with a link, reactions.
  await post(bob, general, '@alice could you share the dashboard for staging?');
  const answer = await server.api('POST', `/rooms/${general.id}/messages`, {
    token: alice.token,
    body: { body: 'Here: https://status.example.org/staging (all green since the deploy)', reply_to: 6 },
  });
  const react = (who, seq, emoji) =>
    server.api('PUT', `/rooms/${general.id}/messages/${seq}/reactions/${encodeURIComponent(emoji)}`, { token: who.token });
  await react(bob, 3, '🎉');
  await react(carol, 3, '🎉');
  await react(bob, answer.seq, '👍');
  await react(carol, answer.seq, '👀');

  // Bob runs general: Alice is an admin, Carol muted for an hour, an invite link, an incoming hook, a ban in the log.
  const dave = await server.user('dave');
  await server.api('POST', `/rooms/${general.id}/join`, { token: dave.token });
  const member = (who, body) =>
    server.api('PATCH', `/rooms/${general.id}/members/${who.user.id}`, { token: bob.token, body });
  await member(alice, { role: 'admin' });
  await member(carol, { muted_until: new Date(Date.now() + 3_600_000).toISOString() });
  await server.api('POST', `/rooms/${general.id}/invites`, { token: bob.token, body: { max_uses: 10, expires_in_hours: 168 } });
  await server.api('POST', `/rooms/${general.id}/hooks`, { token: bob.token, body: { name: 'CI' } });
  await server.api('POST', `/rooms/${general.id}/bans`, { token: bob.token, body: { user_id: dave.user.id, reason: 'spam links' } });
  await server.api('POST', '/tokens', { token: alice.token, body: { name: 'ci-notifier', scopes: ['messages:write'], expires_in_days: 90 } });
  return { alice, bob, general };
}

const server = await Server.create();
const browser = await launchBrowser();
try {
  const { alice, bob, general } = await scene(server);
  mkdirSync(OUT, { recursive: true });
  for (const colorScheme of ['light', 'dark']) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 640 }, colorScheme });
    const page = await context.newPage();
    await page.goto(server.url);
    await logIn(page, alice);
    await page.locator('.room-item', { hasText: 'general' }).getByRole('link').click();
    await page.locator('.message .body', { hasText: 'Ping me' }).waitFor();
    await page.locator('.online-count', { hasText: '1 online' }).waitFor();
    const suffix = colorScheme === 'dark' ? '-dark' : '';
    await page.screenshot({ path: `${OUT}/chat-view${suffix}.png` });
    await context.close();
  }
  // A phone: the room list alone.
  const context = await browser.newContext({ viewport: { width: 360, height: 640 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  await page.goto(server.url);
  await logIn(page, alice);
  await page.locator('.room-item', { hasText: 'releases' }).waitFor();
  await page.screenshot({ path: `${OUT}/room-list.png` });
  await page.locator('.room-item', { hasText: 'general' }).getByRole('link').click();
  await page.locator('.message .body', { hasText: 'Ping me' }).waitFor();
  await page.screenshot({ path: `${OUT}/chat-view-phone.png` });
  await context.close();

  // Replies, reactions, a mention and the @ list; then search.
  {
    const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
    const page = await context.newPage();
    await page.goto(server.url);
    await logIn(page, alice);
    await page.locator('.room-item', { hasText: 'general' }).getByRole('link').click();
    await page.locator('.message .chip', { hasText: '👀' }).waitFor();
    await page.locator('#composer-input').pressSequentially('Thanks @');
    await page.getByRole('listbox', { name: 'Mention someone' }).waitFor();
    await page.screenshot({ path: `${OUT}/conversation.png` });
    await page.locator('#composer-input').fill('');
    await page.locator('.messages').click();
    await page.keyboard.press('Control+K');
    await page.getByLabel('Only in general').uncheck();
    await page.getByLabel('Search messages').fill('staging');
    await page.getByLabel('Search messages').press('Enter');
    await page.locator('.search-hit mark').first().waitFor();
    await page.screenshot({ path: `${OUT}/search.png` });
    await context.close();
  }

  // Running a room and an account: the member panel, the room's settings, the user's settings.
  const wide = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const owner = await wide.newPage();
  await owner.goto(server.url);
  await logIn(owner, bob);
  await owner.goto(`${server.url}/rooms/${general.id}`);
  await owner.locator('.message .body', { hasText: 'Ping me' }).waitFor();
  await owner.locator('.members-toggle').click();
  await owner.locator('.ban', { hasText: 'spam links' }).waitFor();
  await owner.locator('.member', { hasText: 'carol' }).getByRole('button', { name: 'Manage carol' }).click();
  await owner.screenshot({ path: `${OUT}/member-panel.png` });
  await owner.getByRole('link', { name: 'Room settings' }).click();
  await owner.locator('.audit-list li', { hasText: 'banned' }).waitFor();
  await owner.locator('.invite-link').first().waitFor();
  await owner.locator('.hook', { hasText: 'CI' }).waitFor();
  await owner.screenshot({ path: `${OUT}/room-settings.png`, fullPage: true });
  const person = await (await browser.newContext({ viewport: { width: 1100, height: 760 } })).newPage();
  await person.goto(server.url);
  await logIn(person, alice);
  await person.getByRole('link', { name: 'Settings', exact: true }).click();
  await person.locator('.token', { hasText: 'ci-notifier' }).waitFor();
  await person.locator('.session').first().waitFor();
  await person.locator('#tokens-title').evaluate((el) => el.scrollIntoView());
  await person.screenshot({ path: `${OUT}/settings.png` });
  console.log(`screenshots written to ${OUT}/`);
} finally {
  await browser.close();
  await server.stop();
}
