// What the console's UI tests share: polling with a deadline, sluice processes, Debian's chromium through
// playwright-core, and a page opened with its console errors collected.
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SLUICE = process.env.SLUICE || path.join(root, 'build/sluice');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function until(what, fn, ms = 30000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await sleep(250);
  }
  throw new Error('timed out waiting for ' + what + ' (last: ' + last + ')');
}

// sluice processes by name; run() replaces a stopped one of the same name.
export const procs = {};
export function run(name, args, env) {
  const p = spawn(SLUICE, args, {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, ...env}});
  p.out = '';
  p.stdout.on('data', (d) => { p.out += d; });
  p.stderr.on('data', (d) => { p.out += d; });
  procs[name] = p;
  return p;
}
export async function stop(name) {
  const p = procs[name];
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGTERM');
  await until(name + ' to exit', () => p.exitCode !== null || p.signalCode !== null, 20000);
}
export async function stopAll() {
  for (const n of Object.keys(procs)) await stop(n).catch(() => {});
}

// A fresh profile each run (playwright passes it as --user-data-dir).
export async function launch() {
  return chromium.launchPersistentContext(fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-chromium-')), {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: {width: 1360, height: 900},
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });
}

export async function open(browser, base, hash) {
  const page = await browser.newPage();
  const errors = [];
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(base + '/#/' + hash);
  return {page, errors};
}

export const num = async (page, sel) => Number((await page.locator(sel).first().textContent()).replace(/[^0-9.]/g, ''));

// The console's address from the first line a `sluice console` or `sluice up` prints.
export async function consoleURL(p, prefix = '') {
  const m = await until('the console to listen', () => new RegExp(prefix + 'http://([0-9.:]+)/').exec(p.out));
  return 'http://' + m[1];
}
