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
  return { alice, general };
}

const server = await Server.create();
const browser = await launchBrowser();
try {
  const { alice } = await scene(server);
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
  console.log(`screenshots written to ${OUT}/`);
} finally {
  await browser.close();
  await server.stop();
}
