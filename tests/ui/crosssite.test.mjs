// Cross-site writes from a real browser: Chromium opens an attacker page served from another origin (another port on
// 127.0.0.1), which tries what a security review did to the scheduler API, the registry and the console: a no-cors
// text/plain POST that would create a DAG run, a Blob POST (no Content-Type) that would register a subject, a form
// POST, and a PATCH that would pause a DAG. Afterwards nothing was created and nothing paused; the browser's own
// requests reached the servers (the attacker page records that each fetch settled).
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {until, run, stopAll, launch} from './lib.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-ui-xsite-'));
const cfg = path.join(tmp, 'sluice.yaml');
let browser, attacker, R, S, C, A;

const freePort = () => new Promise((res) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
});
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLUICE_')));

before(async () => {
  [R, S, C, A] = [await freePort(), await freePort(), await freePort(), await freePort()];
  fs.writeFileSync(cfg, `
data_dir: ${tmp}/data
pipelines:
  users:
    source: { type: generate, seed: 1, count: 10, page_size: 10 }
    topic: users_created
    key: id
    mapping:
      id: { path: login.uuid, type: uuid }
    sink: { keyspace: xs, table: users, primary_key: [id] }
dags:
  hx:
    tasks:
      t: { kind: shell, command: "true" }
registry:
  listen: 127.0.0.1:${R}
  data_dir: ${tmp}/data/registry
console:
  registry: { url: "http://127.0.0.1:${R}" }
  scheduler: { url: "http://127.0.0.1:${S}/api/v1" }
`);
  run('registry', ['registry', '-c', cfg], env);
  run('scheduler', ['scheduler', '-c', cfg, '--api', `127.0.0.1:${S}`], env);
  run('console', ['console', '-c', cfg, '--listen', `127.0.0.1:${C}`], env);
  for (const p of [R, S, C])
    await until(`a server on ${p}`, async () => (await fetch(`http://127.0.0.1:${p}/health`)).status < 500);
  const page = `<!doctype html><title>attacker</title><body><script>
window.done = (async () => {
  const settled = [];
  const tryit = async (name, f) => { try { await f(); settled.push(name); } catch (e) { settled.push(name + ':' + e.name); } };
  await tryit('sched-no-cors', () => fetch('http://127.0.0.1:${S}/api/v1/dags/hx/dagRuns',
    {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: '{}'}));
  await tryit('console-no-cors', () => fetch('http://127.0.0.1:${C}/api/dags/hx/dagRuns',
    {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: '{}'}));
  await tryit('registry-blob', () => fetch('http://127.0.0.1:${R}/subjects/evil-value/versions',
    {method: 'POST', mode: 'no-cors', body: new Blob(['{"schema":"\\\\"int\\\\""}'])}));
  await tryit('registry-empty', () => fetch('http://127.0.0.1:${R}/subjects/evil2-value/versions',
    {method: 'POST', mode: 'no-cors'}));
  await tryit('sched-patch', () => fetch('http://127.0.0.1:${S}/api/v1/dags/hx',
    {method: 'PATCH', headers: {'Content-Type': 'application/json'}, body: '{"is_paused": true}'}));
  await tryit('console-patch', () => fetch('http://127.0.0.1:${C}/api/dags/hx',
    {method: 'PATCH', headers: {'Content-Type': 'application/json'}, body: '{"is_paused": true}'}));
  return settled;
})();
</script>
<form id=f method=POST action="http://127.0.0.1:${S}/api/v1/dags/hx/dagRuns" enctype="text/plain" target=sink>
<input name='{"a":"' value='"}'></form><iframe name=sink></iframe></body>`;
  attacker = http.createServer((req, res) => { res.writeHead(200, {'Content-Type': 'text/html'}); res.end(page); });
  await new Promise((r) => attacker.listen(A, '127.0.0.1', r));
  browser = await launch();
});

after(async () => {
  await browser?.close();
  attacker?.close();
  await stopAll();
});

test('an attacker page on another origin creates and pauses nothing', async () => {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${A}/`);
  const settled = await page.evaluate(() => window.done);
  // The no-cors requests are sent (and settle opaque); the PATCHes die in the browser's CORS preflight.
  for (const n of ['sched-no-cors', 'console-no-cors', 'registry-blob', 'registry-empty'])
    assert.ok(settled.includes(n), JSON.stringify(settled));
  await page.evaluate(() => document.getElementById('f').submit());
  await page.waitForTimeout(1500);
  const runs = await (await fetch(`http://127.0.0.1:${S}/api/v1/dags/hx/dagRuns`)).json();
  assert.equal(runs.total_entries, 0, JSON.stringify(runs));
  assert.deepEqual(await (await fetch(`http://127.0.0.1:${R}/subjects`)).json(), []);
  const dag = await (await fetch(`http://127.0.0.1:${S}/api/v1/dags/hx`)).json();
  assert.equal(dag.is_paused, false);
  // The same write from a client that is no browser (no Origin, JSON) still works: the servers were reachable.
  const r = await fetch(`http://127.0.0.1:${S}/api/v1/dags/hx/dagRuns`,
    {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'});
  assert.equal(r.status, 200);
  assert.equal((await (await fetch(`http://127.0.0.1:${S}/api/v1/dags/hx/dagRuns`)).json()).total_entries, 1);
});
