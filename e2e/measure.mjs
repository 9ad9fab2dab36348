// `make bench-spa` (part of `make bench`): the browser app's size and how fast it shows the room list,
// measured in headless Chromium against the release server on loopback. Rewrites the `spa` section of
// bench/results.md.
//
// Time to the room list: from the start of navigation (performance.timeOrigin) to the moment the first
// room of a user with 20 rooms is in the DOM, read with performance.now() in the page. Cold: a fresh
// browser context each time (nothing cached); warm: the same context, reloaded (hashed assets cached).

import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { Server, launchBrowser, logIn } from './harness.mjs';

const RUNS = 15;
const RESULTS = 'bench/results.md';
const STATIC_DIR = process.env.STATIC_DIR ?? 'frontend/dist';

function sizes() {
  const files = readdirSync(STATIC_DIR);
  const of = (pattern) => {
    const name = files.find((f) => pattern.test(f));
    const bytes = readFileSync(join(STATIC_DIR, name));
    return { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  };
  return { wasm: of(/_bg\.wasm$/), js: of(/^frontend-.*\.js$/), css: of(/\.css$/) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p90 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)];
const kib = (n) => (n / 1024).toFixed(1);

/** Milliseconds from navigation start until the room list shows a room. */
async function timeToRoomList(page, url) {
  await page.goto(url);
  await page.locator('.room-item').first().waitFor();
  return page.evaluate(() => performance.now());
}

const loadBefore = loadavg()[0];
const server = await Server.create();
const browser = await launchBrowser();
try {
  const user = await server.user('measure');
  for (let i = 0; i < 20; i += 1) {
    const room = await server.api('POST', '/rooms', { token: user.token, body: { name: `room ${i}` } });
    await server.api('POST', `/rooms/${room.id}/messages`, { token: user.token, body: { body: `hello ${i}` } });
  }
  // Log in once and keep the session (localStorage) for every measured load.
  const seed = await browser.newContext();
  const seedPage = await seed.newPage();
  await seedPage.goto(server.url);
  await logIn(seedPage, user);
  const storageState = await seed.storageState();
  await seed.close();

  const cold = [];
  for (let i = 0; i < RUNS; i += 1) {
    const context = await browser.newContext({ storageState });
    cold.push(await timeToRoomList(await context.newPage(), server.url));
    await context.close();
  }
  const warm = [];
  const context = await browser.newContext({ storageState });
  const page = await context.newPage();
  await timeToRoomList(page, server.url);
  for (let i = 0; i < RUNS; i += 1) warm.push(await timeToRoomList(page, server.url));
  await context.close();

  const s = sizes();
  const section = [
    '<!-- spa:begin -->',
    '## Browser app',
    '',
    `Measured by \`make bench-spa\` (\`e2e/measure.mjs\`) on ${cpus().length} × ${cpus()[0].model.trim()}, headless`,
    'Debian Chromium and the server on loopback; the release build of `frontend/` (`make spa`: opt-level z,',
    'LTO, npm binaryen\'s wasm-opt -Oz). Sizes as served, and gzipped at level 9. Time to the room list: from',
    'navigation start to the first room of a user with 20 rooms in the DOM (session already in localStorage),',
    `median and p90 of ${RUNS} loads; cold = a fresh browser context (nothing cached), warm = a reload`,
    '(content-hashed assets from the cache). Target: wasm under 400 KiB gzipped.',
    `The machine's 1-minute load average was ${loadBefore.toFixed(1)} when the run started (2 cores: above 2, other`,
    'work was competing and the times are pessimistic).',
    '',
    '| asset | bytes | gzipped |',
    '|---|---:|---:|',
    `| wasm | ${kib(s.wasm.raw)} KiB | ${kib(s.wasm.gzip)} KiB |`,
    `| js (wasm-bindgen glue) | ${kib(s.js.raw)} KiB | ${kib(s.js.gzip)} KiB |`,
    `| css | ${kib(s.css.raw)} KiB | ${kib(s.css.gzip)} KiB |`,
    '',
    '| load | median ms | p90 ms |',
    '|---|---:|---:|',
    `| cold | ${median(cold).toFixed(0)} | ${p90(cold).toFixed(0)} |`,
    `| warm | ${median(warm).toFixed(0)} | ${p90(warm).toFixed(0)} |`,
    '<!-- spa:end -->',
  ].join('\n');
  const results = readFileSync(RESULTS, 'utf8');
  const pattern = /<!-- spa:begin -->[\s\S]*<!-- spa:end -->/;
  writeFileSync(RESULTS, pattern.test(results) ? results.replace(pattern, section) : `${results.trimEnd()}\n\n${section}\n`);
  console.log(section);
} finally {
  await browser.close();
  await server.stop();
}
