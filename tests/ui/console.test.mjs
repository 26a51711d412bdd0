// UI tests of `sluice console` with Playwright (playwright-core) driving Debian's chromium headless, while a pipeline
// runs on the embedded default in separate processes (sluice ingest, sluice process); stack.test.mjs does the same
// on the real Kafka and Cassandra. Each page must load without
// console errors; the overview's counters rise; the group's lag appears when the processor stops and falls to zero
// when it resumes; an alert fires then and clears, on the page and at a webhook receiver. Run through tests/ui/run (needs SLUICE=path/to/sluice or build/sluice).
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {until, sleep, run, open as openPage, num, webhookReceiver, lagAndAlert, startConsole, closeAll} from './lib.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-ui-'));
// The screenshots in docs/img come from the run on the real Kafka and Cassandra (stack.test.mjs).
const IMG = process.env.SL_UI_EMBEDDED_SCREENSHOTS || tmp;
const cfg = path.join(tmp, 'sluice.yaml');
let base, browser, hook;

async function getJSON(p) {
  const r = await fetch(base + p);
  return r.json();
}

before(async () => {
  hook = await webhookReceiver();
  fs.writeFileSync(cfg, `
data_dir: ${tmp}/data
pipelines:
  users:
    source: { type: generate, seed: 7, count: 0, page_size: 50, rate: 300 }
    topic: users_created
    partitions: 3
    key: id
    mapping:
      id: { path: login.uuid, type: uuid }
      first_name: name.first
      last_name: name.last
      email: email
      city: location.city
    sink: { keyspace: spark_streams, table: created_users }
console:
  poll_interval: 500ms
  webhook: ${hook.url}
  rules:
    - { name: ProcessorBehind, metric: lag, above: 200, for: 2s, severity: critical }
    - { name: GroupStalled, metric: group_status, above: 1, for: 3s }
`);
  run('ingest', ['ingest', '-c', cfg, '-q']);
  run('process', ['process', '-c', cfg, '-q']);
  ({base, browser} = await startConsole(cfg, IMG));
});

after(async () => {
  await closeAll(browser, hook);
  if (!process.env.SL_KEEP) fs.rmSync(tmp, {recursive: true, force: true});
});

const open = (hash) => openPage(browser, base, hash);

test('overview: counters rise, charts draw, no console errors', async () => {
  const {page, errors} = await open('overview');
  await page.locator('.pipeline-card[data-pipeline="users"]').waitFor();
  const first = await until('records in the topic', async () => (await num(page, '[data-field="in_total"]')) || 0);
  await until('the in-topic counter to rise', async () => (await num(page, '[data-field="in_total"]')) > first);
  await until('rows in the table', async () => (await num(page, '[data-field="table_rows"]')) > 0);
  await sleep(2500); // a few more samples for the charts
  await page.screenshot({path: path.join(IMG, 'console-overview.png'), fullPage: true});
  assert.deepEqual(errors, []);
  await page.close();
});

test('data: the newest rows, paged', async () => {
  const {page, errors} = await open('data');
  await page.locator('#rows tr td').first().waitFor();
  const cols = await page.locator('#rows th').evaluateAll((ths) => ths.map((t) => t.dataset.column));
  assert.ok(cols.includes('email') && cols.includes('id'), 'columns ' + cols);
  assert.equal(await page.locator('#rows tr').count(), 21); // header + 20
  await page.click('#d-next');
  await until('page 2', async () => (await page.locator('#d-info').textContent()).includes('page 2'));
  await page.click('#d-prev');
  await until('page 1', async () => (await page.locator('#d-info').textContent()).includes('page 1'));
  await page.screenshot({path: path.join(IMG, 'console-data.png'), fullPage: true});
  assert.deepEqual(errors, []);
  await page.close();
});

// Rows keep arriving (the generator runs at 300/s), yet page 1 stays as it was drawn until ↻ refresh; headings carry
// the columns' types; the partition-key filter shows one partition; CSV is what is shown; a narrow window scrolls
// the table inside its card instead of the page.
test('data: a snapshot until refreshed, column types, key filter, CSV, no overflow', async () => {
  const {page, errors} = await open('data');
  await page.locator('#rows tr td').first().waitFor();
  assert.match(await page.locator('#rows th[data-column="id"] .ctype').textContent(), /^text · partition key$/);
  assert.match(await page.locator('#rows th[data-column="email"] .ctype').textContent(), /^text$/);
  assert.match(await page.locator('#d-key').evaluate((e) => e.labels[0].textContent), /filter on id \(partition key\)/);
  const firstRow = async () => page.locator('#rows tr:nth-child(2)').textContent();
  const before = await firstRow(), snap = await page.locator('#d-snap').getAttribute('data-snapshot');
  const newest = async () => (await getJSON('/api/data/rows?pipeline=users&size=1')).rows[0].join('');
  await until('newer rows in the table than those shown', async () => (await newest()) !== before);
  await sleep(2500); // a few of the page's ticks
  assert.equal(await firstRow(), before, 'page 1 moved without a refresh');
  assert.equal(await page.locator('#d-snap').getAttribute('data-snapshot'), snap);
  await page.click('#d-refresh');
  await until('the refresh to show the newer rows', async () =>
    (await page.locator('#d-snap').getAttribute('data-snapshot')) !== snap && (await firstRow()) !== before);

  // The filter: the partition of the third row shown, and nothing else.
  const id = await page.locator('#rows tr:nth-child(4) td').first().textContent();
  await page.fill('#d-key', id);
  await page.click('#d-filter');
  await until('the filtered partition', async () => (await page.locator('#d-info').getAttribute('data-key')) === id);
  assert.equal(await page.locator('#rows tr').count(), 2);
  assert.equal(await page.locator('#rows tr:nth-child(2) td').first().textContent(), id);
  const csv = async () => {
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#d-csv')]);
    return fs.readFileSync(await dl.path(), 'utf8');
  };
  const shownCols = await page.locator('#rows th').evaluateAll((ths) => ths.map((t) => t.dataset.column));
  let lines = (await csv()).split('\r\n');
  assert.equal(lines[0], shownCols.join(','));
  assert.equal(lines.length, 3); // header, the row, the final line break
  assert.ok(lines[1].startsWith(id + ',') || lines[1].includes(',' + id), lines[1]);

  await page.click('#d-clear');
  await until('the unfiltered page', async () => (await page.locator('#d-info').getAttribute('data-key')) === '');
  lines = (await csv()).split('\r\n');
  assert.equal(lines.length, 22);
  const shown = await page.locator('#rows tr:nth-child(2) td').allTextContents();
  assert.equal(lines[1], shown.map((v) => (/[",]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v)).join(','));

  // A narrow window: the card stays inside it; the table scrolls sideways in the card.
  await page.setViewportSize({width: 520, height: 800});
  const fit = await page.evaluate(() => {
    const card = document.querySelector('#d-card').getBoundingClientRect(), out = document.querySelector('#d-out');
    return {right: card.right, width: window.innerWidth, scrolls: out.scrollWidth > out.clientWidth};
  });
  assert.ok(fit.right <= fit.width, 'card runs off the page: ' + JSON.stringify(fit));
  assert.ok(fit.scrolls, 'the table does not scroll inside the card: ' + JSON.stringify(fit));
  assert.deepEqual(errors, []);
  await page.close();
});

// A topic's configuration on the Kafka page (the embedded log: retention.ms), set and returned to its default, and
// partitions added after a confirmation; the changes reach the log (read back through the API) and the audit.
test('kafka: topic configuration and partitions', async () => {
  const made = await fetch(base + '/api/kafka/topics', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({topic: 'ui_cfg', partitions: 1})});
  assert.equal(made.status, 201);
  const {page, errors} = await open('kafka');
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
  await page.fill('#k-c-topic', 'ui_cfg');
  await page.click('#k-c-show');
  const row = page.locator('#k-configs tr[data-config="retention.ms"]');
  await row.waitFor();
  assert.equal(await row.locator('[data-field="default"]').textContent(), 'default');
  await row.locator('input').fill('86400000');
  await row.locator('button[data-action="set"]').click();
  await until('retention set', async () => (await row.locator('[data-field="default"]').textContent()) === 'set');
  const cfg = async () => (await getJSON('/api/kafka/topics/config?topic=ui_cfg')).configs[0];
  assert.equal((await cfg()).value, '86400000');
  await row.locator('button[data-action="default"]').click();
  await until('back to the default', async () => (await row.locator('[data-field="default"]').textContent()) === 'default');
  assert.equal((await cfg()).default, true);
  await page.fill('#k-c-parts', '3');
  await page.click('#k-c-add');
  await until('3 partitions', async () => /1 → 3 partitions/.test(await page.locator('#k-c-msg').textContent()));
  assert.match(dialogs[0], /^Raise ui_cfg from 1 to 3 partitions\?/);
  await until('the topic table', async () => (await page.locator('#topics tr[data-topic="ui_cfg"] td.num').first().textContent()) === '3');
  const audit = (await getJSON('/api/audit?limit=50')).entries.map((e) => e.action + ' ' + e.target);
  assert.ok(audit.includes('topic.partitions ui_cfg') && audit.includes('topic.config ui_cfg'), audit.join('; '));
  assert.deepEqual(errors, []);
  await page.close();
});

test('kafka: topics, groups, message browser with a search filter', async () => {
  const {page, errors} = await open('kafka');
  await page.locator('#topics tr[data-topic="users_created"]').waitFor();
  await page.locator('.group[data-group="sluice-users"]').waitFor();
  // Find a name that is in the log and search for it.
  const msgs = await getJSON('/api/kafka/messages?topic=users_created&partition=0&offset=0&limit=5');
  const name = JSON.parse(msgs.messages[3].value).last_name;
  await page.selectOption('#b-topic', 'users_created');
  await page.fill('#b-q', name);
  await page.fill('#b-limit', '10');
  await page.click('#b-go');
  await page.locator('#b-table tr td').first().waitFor();
  const vals = await page.locator('#b-table td.val').allTextContents();
  assert.ok(vals.length > 0 && vals.every((v) => v.includes(name)), 'every result contains ' + name);
  await page.screenshot({path: path.join(IMG, 'console-kafka.png'), fullPage: true});
  assert.deepEqual(errors, []);
  await page.close();
});

test('lag appears when the processor stops, an alert fires; both clear when it resumes', () => lagAndAlert({
  browser, base, group: 'sluice-users', stopped: ['STOP'], hooks: hook.hooks, img: IMG,
  restart: () => run('process', ['process', '-c', cfg, '-q'])}));

test('schemas and dags pages load and say honestly what is not running', async () => {
  for (const p of ['schemas', 'dags']) {
    const {page, errors} = await open(p);
    await page.locator('h1').waitFor();
    await page.locator('#not-running').waitFor(); // this console runs alone: no registry, no scheduler
    await sleep(1200);
    // A 503 from the API is the page's own, expected answer; the browser logs failed fetches as errors.
    assert.deepEqual(errors.filter((e) => !/503/.test(e)), []);
    await page.close();
  }
});
