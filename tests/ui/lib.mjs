// What the console's UI tests share: polling with a deadline, sluice processes, Debian's chromium through
// playwright-core, a page opened with its console errors collected, a webhook receiver, and the scenarios the
// embedded and the real-stack runs both play (lag and alerts, a DAG run triggered from the page).
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SLUICE = process.env.SLUICE || path.join(root, 'build/sluice');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Whether something listens on 127.0.0.1:port (a shared service the real-stack tests need; they skip without it).
export const reachable = (port) => new Promise((resolve) => {
  const s = net.connect(port, '127.0.0.1');
  s.setTimeout(2000);
  s.on('connect', () => { s.destroy(); resolve(true); });
  s.on('error', () => resolve(false));
  s.on('timeout', () => { s.destroy(); resolve(false); });
});

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

// A webhook receiver on 127.0.0.1: .hooks collects the JSON bodies POSTed to it, .url is where.
export async function webhookReceiver() {
  const hooks = [];
  const server = http.createServer((req, res) => {
    let b = '';
    req.on('data', (d) => { b += d; });
    req.on('end', () => { try { hooks.push(JSON.parse(b)); } catch (e) { hooks.push({bad: b}); } res.end('ok'); });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {hooks, server, url: `http://127.0.0.1:${server.address().port}/hook`};
}

const alertSent = (hooks, status) => hooks.some((h) => (h.alerts || []).some(
  (a) => a.labels.alertname === 'ProcessorBehind' && a.status === status));

// The processor stops: the group's lag builds up, its status turns to one of stopped (Burrow), ProcessorBehind
// (lag above 200 for 2s) fires on the Alerts page and at the webhook; the ingest stops and the processor resumes
// (restart()): the lag falls to zero, the group is OK, the alert resolves on the page and at the webhook.
// Screenshots of the Alerts and Kafka pages go to img while it fires.
export async function lagAndAlert({browser, base, group, stopped, hooks, restart, img}) {
  const {page, errors} = await open(browser, base, 'kafka');
  const g = `.group[data-group="${group}"]`;
  await page.locator(g).waitFor();
  await stop('process');
  const lag = await until('lag to build up', async () => {
    const v = await num(page, `${g} [data-field="group-lag"]`);
    return v > 300 ? v : 0;
  });
  assert.ok(lag > 300);
  await until('the group to show ' + stopped.join(' or ') + ' (Burrow: no commit while lag grows)',
    () => page.locator(stopped.map((s) => `${g} h3 .badge.b-${s}`).join(', ')).count());
  const alerts = await open(browser, base, 'alerts');
  await until('ProcessorBehind to fire on the page',
    () => alerts.page.locator('tr[data-alert="ProcessorBehind"][data-state="firing"]').count());
  await until('the webhook to get the firing alert', () => alertSent(hooks, 'firing'));
  await until('the alert badge in the nav', async () => (await alerts.page.locator('#alert-count').textContent()) !== '');
  await sleep(1500);
  await alerts.page.screenshot({path: path.join(img, 'console-alerts.png'), fullPage: true});
  await page.screenshot({path: path.join(img, 'console-kafka-lagging.png'), fullPage: true});

  await stop('ingest'); // a fixed amount left, so the processor can get to zero
  restart();
  await until('lag to fall to zero', async () => (await num(page, `${g} [data-field="group-lag"]`)) === 0, 90000);
  await until('the group to be OK', () => page.locator(`${g} h3 .badge.b-OK`).count());
  await until('ProcessorBehind to resolve on the page',
    () => alerts.page.locator('tr[data-alert="ProcessorBehind"][data-state="resolved"]').count());
  await until('the webhook to get the resolution', () => alertSent(hooks, 'resolved'));
  assert.deepEqual(errors, []);
  assert.deepEqual(alerts.errors, []);
  await alerts.page.close();
  await page.close();
}

// Triggers the selected DAG from the DAGs page with conf and waits for the run to succeed in the grid, every one of
// tasks green; returns the run id and the grid cell locator.
export async function triggerToSuccess(page, conf, tasks, ms = 90000) {
  await page.fill('#dag-conf', conf);
  await page.click('#dag-trigger');
  const runId = await until('the run id', async () => page.locator('#dag-msg').getAttribute('data-run'));
  assert.match(runId, /^manual__/);
  const cell = (task) => page.locator(`#dag-grid td[data-run="${runId}"]` + (task ? `[data-task="${task}"]` : '.run'));
  await until('the run to succeed in the grid', async () => (await cell().getAttribute('data-state')) === 'success', ms);
  for (const t of tasks)
    assert.equal(await cell(t).getAttribute('data-state'), 'success', t);
  return {runId, cell};
}

// Opens each page in turn: its heading shows and, a poll later, the browser logged no error.
export async function everyPageClean(browser, base) {
  for (const p of ['overview', 'kafka', 'data', 'alerts', 'schemas', 'dags']) {
    const {page, errors} = await open(browser, base, p);
    await page.locator('h1').waitFor();
    await sleep(1500);
    assert.deepEqual(errors, [], p);
    await page.close();
  }
}

// The console, a browser on it, and the screenshot folder, once the pipeline's processes run.
export async function startConsole(cfg, img) {
  const base = await consoleURL(run('console', ['console', '-c', cfg, '--listen', '127.0.0.1:0']));
  const browser = await launch();
  fs.mkdirSync(img, {recursive: true});
  return {base, browser};
}

export async function closeAll(browser, hook) {
  if (browser) await browser.close();
  await stopAll();
  if (hook) hook.server.close();
}
