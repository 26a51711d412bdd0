// A browser logs into a console that has credentials: opening it leads to /login; a wrong token is refused on the
// page; the operator's token opens the console (kept in an HttpOnly, SameSite=Strict cookie); an unknown page is a
// page, not JSON; log out leads back to the login page; the viewer's token logs in as a viewer, whose writes are
// refused. Embedded default, `sluice console` with SLUICE_CONSOLE_TOKEN and a read-only token.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {until, run, stopAll, launch, consoleURL} from './lib.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-ui-login-'));
const cfg = path.join(tmp, 'sluice.yaml');
let base, browser;

before(async () => {
  fs.writeFileSync(cfg, `
data_dir: ${tmp}/data
pipelines:
  users:
    source: { type: generate, seed: 3, count: 20, page_size: 10 }
    topic: users_created
    key: id
    mapping:
      id: { path: login.uuid, type: uuid }
    sink: { keyspace: lg, table: users }
console:
  read_token_env: SL_UI_READ_TOKEN
`);
  const env = {SLUICE_CONSOLE_TOKEN: 'op-token-1', SL_UI_READ_TOKEN: 'view-token-1'};
  base = await consoleURL(run('console', ['console', '-c', cfg, '--listen', '127.0.0.1:0'], env));
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  await stopAll();
  if (!process.env.SL_KEEP) fs.rmSync(tmp, {recursive: true, force: true});
});

test('login with a token, an HTML 404, log out, a viewer', async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(base + '/');
  await page.locator('#token').waitFor();
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.fill('#token', 'wrong');
  await page.click('#login-go');
  await until('the refusal', async () => /not this console's/.test(await page.locator('#login-msg').textContent()));
  await page.fill('#token', 'op-token-1');
  await page.click('#login-go');
  await page.locator('#main[data-page="overview"] .pipeline-card').waitFor();
  const ck = (await browser.cookies(base)).find((c) => c.name === 'sluice_auth');
  assert.ok(ck && ck.httpOnly && ck.sameSite === 'Strict', JSON.stringify(ck));
  assert.equal(await page.evaluate(() => document.cookie), ''); // not readable by scripts
  // An unknown page: a page with a way back, and an unknown view in the app.
  await page.goto(base + '/nope');
  assert.equal(await page.locator('h1').textContent(), 'No such page');
  await page.click('#not-found a');
  await page.locator('#main[data-page="overview"]').waitFor();
  await page.goto(base + '/#/nope');
  await page.locator('#main[data-page="notfound"] #not-found').waitFor();
  // Log out: the console leads back to the login page.
  await page.goto(base + '/login');
  await page.click('#logout');
  await until('logged out', async () => /Logged out/.test(await page.locator('#login-msg').textContent()));
  await page.goto(base + '/');
  await page.locator('#token').waitFor();
  // The viewer's token: a viewer, whose writes get 403.
  await page.fill('#token', 'view-token-1');
  await page.click('#login-go');
  await page.locator('#main[data-page="overview"]').waitFor();
  const who = await page.evaluate(async () => (await (await fetch('/api/whoami')).json()).role);
  assert.equal(who, 'viewer');
  const st = await page.evaluate(async () => (await fetch('/api/alerts/silence', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({alert: 'x', pipeline: 'users', duration_ms: 1000})})).status);
  assert.equal(st, 403);
  assert.deepEqual(errors, []);
  await page.close();
});
