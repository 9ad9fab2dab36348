// The browser tests' harness: the real chat-server (SQLite in a temporary directory, the built SPA from
// STATIC_DIR) on a fixed loopback port, so that it can be killed and started again where the open pages
// expect it; Debian's Chromium through playwright-core; and a few REST helpers for setting the scene.
//
// Environment (the Makefile's `browser-test` sets them): CHAT_SERVER_BIN, STATIC_DIR, CHROMIUM.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const SERVER_BIN = process.env.CHAT_SERVER_BIN ?? 'target/debug/chat-server';
const STATIC_DIR = process.env.STATIC_DIR ?? 'frontend/dist';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** A free loopback port: the server keeps it across restarts, the pages keep their origin. */
async function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** One chat-server process at a time on one port and one data directory. */
export class Server {
  static async create(extraEnv = {}) {
    const server = new Server(await freePort(), mkdtempSync(join(tmpdir(), 'chat-e2e-')), extraEnv);
    await server.start();
    return server;
  }

  constructor(port, dataDir, extraEnv) {
    this.port = port;
    this.dataDir = dataDir;
    this.extraEnv = extraEnv;
    this.url = `http://127.0.0.1:${port}`;
    this.process = null;
    this.log = [];
  }

  async start() {
    const env = {
      ...process.env,
      BIND_ADDR: `127.0.0.1:${this.port}`,
      DATA_DIR: this.dataDir,
      STATIC_DIR,
      RUST_LOG: 'warn',
      DRAIN_SECONDS: '1',
      // These tests are about the app, not the limits (backend/tests/api/rate_limits.rs is): the 4008
      // test floods a room over REST, and every test registers and logs in from one address.
      RATE_LIMIT_USER: 'off',
      RATE_LIMIT_SENDS: 'off',
      RATE_LIMIT_ADDRESS: 'off',
      RATE_LIMIT_LOGIN: 'off',
      RATE_LIMIT_LOGIN_USERNAME: 'off',
      RATE_LIMIT_REGISTER: 'off',
      ...this.extraEnv,
    };
    delete env.DATABASE_URL;
    delete env.REDIS_URL;
    const child = spawn(SERVER_BIN, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk) => this.log.push(chunk.toString());
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    this.process = child;
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    await this.waitReady();
  }

  async waitReady(timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        const resp = await fetch(`${this.url}/readyz`);
        if (resp.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`chat-server did not become ready on ${this.url}:\n${this.log.join('')}`);
  }

  /** SIGKILL: no drain, no goodbye; sockets just die. */
  async kill() {
    this.process.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM: the server drains (closes sockets with 1012) and exits 0. */
  async terminate() {
    this.process.kill('SIGTERM');
    return this.exited;
  }

  async stop() {
    if (this.process && this.process.exitCode === null && this.process.signalCode === null) {
      await this.kill();
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** A REST call; throws on an unexpected status. */
  async api(method, path, { token, body, headers = {}, expect = [200, 201, 204] } = {}) {
    const resp = await fetch(`${this.url}/api/v1${path}`, {
      method,
      headers: {
        ...(body ? { 'content-type': 'application/json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await resp.text();
    if (!expect.includes(resp.status)) {
      throw new Error(`${method} ${path}: ${resp.status} ${text}`);
    }
    return text ? JSON.parse(text) : null;
  }

  /** The value of one series of `/metrics` (`name` or `name{label="value"}`, as the server writes it); 0 when
   * the server has not written it yet. */
  async metric(series) {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line ? Number(line.split(' ').at(-1)) : 0;
  }

  /** A registered user: `{ username, password, token, user }`. */
  async user(username, password = 'correct horse battery') {
    const resp = await this.api('POST', '/auth/register', { body: { username, password } });
    return { username, password, token: resp.access_token, user: resp.user };
  }
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in CI needs --no-sandbox; this machine's closed network needs the background fetches off.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A page in its own browser context (its own storage: a separate person), failing the test on any
 * dialog (an `alert` from injected HTML) or uncaught error in the page.
 */
export async function openPage(browser, server, { width = 1100, height = 750 } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  page.problems = [];
  // A test that expects a confirmation sets `page.confirmNext = true`; any other dialog is a problem.
  page.confirmNext = false;
  page.on('dialog', async (dialog) => {
    if (page.confirmNext && dialog.type() === 'confirm') {
      page.confirmNext = false;
      await dialog.accept();
      return;
    }
    page.problems.push(`${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss();
  });
  page.on('pageerror', (err) => page.problems.push(`page error: ${err.message}`));
  // A Rust panic in the app reaches the page as a bare `unreachable`; its message is logged just before.
  page.on('console', (msg) => {
    if (msg.type() === 'error' && msg.text().includes('panicked at')) page.problems.push(`panic: ${msg.text()}`);
  });
  await page.goto(server.url);
  return page;
}

/** Logs in through the form. */
export async function logIn(page, { username, password }) {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await page.locator('.banner[data-state="connected"]').waitFor();
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The TypeScript package compiled as `make ts-package` compiles it, into `target/<dir>` (a directory per test
 * file: the files run in parallel), and imported. */
export async function loadPackage(dir) {
  const out = join(ROOT, 'target', dir);
  execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'openapi/typescript'), '--outDir', out], { stdio: 'inherit' });
  return import(pathToFileURL(join(out, 'client.js')).href);
}

/** The message bodies on screen, in order. */
export async function bodies(page) {
  return page.locator('.message:not(.pending) .body').allTextContents();
}

/** Waits until `check()` returns a truthy value, polling; fails with `describe()` after `timeoutMs`. */
export async function eventually(check, describe, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last;
    await sleep(100);
  }
  throw new Error(`timed out: ${typeof describe === 'function' ? await describe() : describe}`);
}
