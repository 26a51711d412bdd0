// UI tests of the console while pipelines run on the real Kafka (127.0.0.1:9092) and Cassandra (127.0.0.1:9042) of
// tests/services, every role in its own process as a team would run them at scale: `sluice registry`, `sluice
// scheduler --api`, `sluice ingest` and `sluice process` of an Avro pipeline (a generator at 300 records/s), and a
// standalone `sluice console` that names the registry and the scheduler (console.registry.url, .scheduler.url).
// In chromium: the overview's counters rise; the message browser decodes the Avro records through the registry and
// its search matches the decoded text; a DAG triggered from the page (ingest then process of a 40-record pipeline)
// runs to success; the data page pages those 40 rows out of Cassandra with the CQL paging state; the Schemas page
// shows the subject the ingest registered and a second version's diff; when the processor stops the group's lag
// appears and an alert fires (page and webhook), and both clear when it resumes; every page loads without console
// errors. Topic, group and keyspace names are new each run. The screenshots in docs/img come from this run under `make screenshots`.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {root, SLUICE, until, sleep, run, open as openPage, num, webhookReceiver, lagAndAlert, triggerToSuccess,
  everyPageClean, startConsole, closeAll, reachable} from './lib.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-ui-stack-'));
// Screenshots go to a temp dir so a test run leaves the tracked docs/img alone; `make screenshots` sets
// SL_UI_SCREENSHOTS=docs/img to refresh them.
const IMG = process.env.SL_UI_SCREENSHOTS || path.join(tmp, 'img');
const cfg = path.join(tmp, 'sluice.yaml');
const tag = crypto.randomBytes(4).toString('hex');
const topic = 'ui_users_' + tag, group = 'ui-users-' + tag, ks = 'ui_' + tag, subject = topic + '-value';
let base, browser, hook;

const services = (await reachable(9092)) && (await reachable(9042));
const skip = services ? false : 'Kafka and Cassandra are not running on 127.0.0.1 (tests/services/run up kafka cassandra)';
const freePort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
});
const open = (hash) => openPage(browser, base, hash);
const getJSON = async (p) => (await fetch(base + p)).json();

before(async () => {
  if (skip) return;
  hook = await webhookReceiver();
  const [regPort, schedPort] = [await freePort(), await freePort()];
  const mapping = `
    key: id
    mapping:
      id: { path: login.uuid, type: uuid }
      first_name: name.first
      last_name: name.last
      email: email
      city: location.city`;
  fs.writeFileSync(cfg, `
data_dir: ${tmp}/data
kafka: { brokers: 127.0.0.1:9092 }
cassandra: { contact_points: [127.0.0.1] }
pipelines:
  users:
    source: { type: generate, seed: 7, count: 0, page_size: 50, rate: 300 }
    topic: ${topic}
    partitions: 3
    group: ${group}
    format: avro
    registry_url: http://127.0.0.1:${regPort}${mapping}
    sink: { keyspace: ${ks}, table: created_users }
  batch:
    source: { type: generate, seed: 9, count: 40, page_size: 10 }
    topic: ui_batch_${tag}
    partitions: 1
    group: ui-batch-${tag}${mapping}
    sink: { keyspace: ${ks}, table: batch_users }
dags:
  user_automation:
    description: the seed's DAG on a 40-record pipeline
    tasks:
      stream_data_from_api: { kind: ingest, pipeline: batch, count: 40 }
      wait_for_processor: { kind: process, pipeline: batch, depends_on: [stream_data_from_api] }
console:
  poll_interval: 500ms
  webhook: ${hook.url}
  registry: { url: http://127.0.0.1:${regPort} }
  scheduler: { url: http://127.0.0.1:${schedPort}/api/v1 }
  rules:
    - { name: ProcessorBehind, metric: lag, above: 200, for: 2s, severity: critical }
    - { name: GroupStalled, metric: group_status, above: 1, for: 3s }
`);
  run('registry', ['registry', '--listen', '127.0.0.1:' + regPort, '--data-dir', tmp + '/registry']);
  run('scheduler', ['scheduler', '-c', cfg, '--api', '127.0.0.1:' + schedPort]);
  await until('the registry', () => fetch(`http://127.0.0.1:${regPort}/subjects`).then((r) => r.ok));
  run('ingest', ['ingest', 'users', '-c', cfg, '-q']);
  run('process', ['process', 'users', '-c', cfg, '-q']);
  ({base, browser} = await startConsole(cfg, IMG));
});

after(async () => {
  await closeAll(browser, hook);
  if (!skip) {
    try { execFileSync(SLUICE, ['cql', '-e', `DROP KEYSPACE IF EXISTS ${ks}`], {stdio: 'ignore', timeout: 60000}); } catch (e) { /* best effort */ }
  }
  if (!process.env.SL_KEEP) fs.rmSync(tmp, {recursive: true, force: true});
});

test('overview: counters rise on Kafka', {skip}, async () => {
  const {page, errors} = await open('overview');
  await page.locator('.pipeline-card[data-pipeline="users"]').waitFor();
  const first = await until('records in the topic', async () => (await num(page, '.pipeline-card[data-pipeline="users"] [data-field="in_total"]')) || 0);
  await until('the in-topic counter to rise', async () => (await num(page, '.pipeline-card[data-pipeline="users"] [data-field="in_total"]')) > first);
  const committed = await until('commits by the processor', async () => (await num(page, '.pipeline-card[data-pipeline="users"] [data-field="out_total"]')) || 0);
  await until('the committed counter to rise', async () => (await num(page, '.pipeline-card[data-pipeline="users"] [data-field="out_total"]')) > committed);
  assert.match(await page.locator('#footer').textContent(), /kafka 127\.0\.0\.1:9092.*sink: cassandra/);
  await sleep(2500); // a few more samples for the charts
  await page.screenshot({path: path.join(IMG, 'console-overview.png'), fullPage: true});
  assert.deepEqual(errors, []);
  await page.close();
});

test('kafka: the message browser decodes Avro through the registry and searches the decoded text', {skip}, async () => {
  const {page, errors} = await open('kafka');
  await page.locator(`#topics tr[data-topic="${topic}"]`).waitFor();
  await page.locator(`.group[data-group="${group}"]`).waitFor();
  const msgs = await until('Avro records', async () => {
    const m = (await getJSON(`/api/kafka/messages?topic=${topic}&partition=0&offset=0&limit=5`)).messages;
    return m.length === 5 && m;
  });
  assert.ok(msgs.every((m) => m.value_schema_id >= 1), 'every value came with its schema id');
  const id = JSON.parse(msgs[3].value).id;
  await until('the topic in the selector', async () => (await page.locator(`#b-topic option[value="${topic}"]`).count()) === 1);
  await page.selectOption('#b-topic', topic);
  await page.fill('#b-q', `"id":"${id}"`); // JSON punctuation: only in the decoded form
  await page.fill('#b-limit', '10');
  await page.click('#b-go');
  await page.locator('#b-table tr td').first().waitFor();
  const vals = await page.locator('#b-table td.val').allTextContents();
  assert.equal(vals.length, 1);
  assert.ok(vals[0].includes('avro #') && vals[0].includes(id), vals[0]);
  await page.screenshot({path: path.join(IMG, 'console-kafka.png'), fullPage: true});
  assert.deepEqual(errors, []);
  await page.close();
});

test('dags: a run triggered from the page runs to success on Kafka and Cassandra', {skip}, async () => {
  const {page, errors} = await open('dags');
  await page.locator('#dags tr[data-dag="user_automation"]').waitFor();
  await page.locator('#no-runs').waitFor();
  await triggerToSuccess(page, '{"source": "ui-test"}', ['stream_data_from_api', 'wait_for_processor']);
  await until('the graph in success', async () => (await page.locator('#dag-svg g.node[data-state="success"]').count()) === 2);
  await page.locator('#dag-svg g.node[data-task="wait_for_processor"]').click();
  await until('the process log', async () => /kind=process[\s\S]*try 1 ended: success/.test(await page.locator('#dag-log').textContent()));
  await page.screenshot({path: path.join(IMG, 'console-dags.png'), fullPage: true});
  assert.deepEqual(errors, []);
  await page.close();
});

test('data: the rows the run wrote, paged out of Cassandra', {skip}, async () => {
  await until('rows in both tables', async () => (await fetch(base + '/api/data/rows?pipeline=batch&size=1')).ok &&
    (await fetch(base + '/api/data/rows?pipeline=users&size=1')).ok);
  const {page, errors} = await open('data');
  await page.locator('#rows tr td').first().waitFor();
  await page.selectOption('#d-pipeline', 'batch');
  // the users table drawn before has 21 rows in token order too: wait for the batch table's own answer
  await until('the batch table', async () => (await page.locator('#d-info').getAttribute('data-pipeline')) === 'batch' &&
    /Cassandra token order/.test(await page.locator('#d-info').textContent()) &&
    (await page.locator('#rows tr').count()) === 21);
  const cols = await page.locator('#rows th').evaluateAll((ths) => ths.map((t) => t.dataset.column));
  const idCol = cols.indexOf('id');
  assert.ok(idCol >= 0 && cols.includes('email'), 'columns ' + cols);
  // CQL's types under the headings, the partition key marked.
  assert.equal(await page.locator('#rows th[data-column="id"] .ctype').textContent(), 'uuid · partition key');
  const ids = async () => (await page.locator(`#rows tr td:nth-child(${idCol + 1})`).allTextContents());
  const first = await ids();
  await page.click('#d-next');
  await until('page 2', async () => (await page.locator('#d-info').getAttribute('data-page')) === '2');
  const second = await until('the second page', async () => { const v = await ids(); return v.length === 20 && v[0] !== first[0] && v; });
  assert.equal(new Set([...first, ...second]).size, 40); // the run's 40 rows, each once
  assert.ok(await page.locator('#d-next').isDisabled(), 'the last page');
  await page.click('#d-prev');
  await until('page 1 again', async () => (await page.locator('#d-info').getAttribute('data-page')) === '1');
  assert.deepEqual(await ids(), first);
  // The partition-key filter reads one partition of the Cassandra table.
  await page.fill('#d-key', first[5]);
  await page.click('#d-filter');
  await until('the partition', async () => (await page.locator('#d-info').getAttribute('data-key')) === first[5]);
  assert.deepEqual(await ids(), [first[5]]);
  await page.click('#d-clear');
  await until('unfiltered', async () => (await page.locator('#d-info').getAttribute('data-key')) === '');
  await page.selectOption('#d-pipeline', 'users');
  await until('the streaming table', async () => (await page.locator('#d-info').getAttribute('data-pipeline')) === 'users' &&
    (await page.locator('#rows tr').count()) === 21 && !(await page.locator('#d-next').isDisabled()));
  await page.screenshot({path: path.join(IMG, 'console-data.png'), fullPage: true});
  assert.deepEqual(errors, []);
  await page.close();
});

test('schemas: the subject the ingest registered, and a second version side by side', {skip}, async () => {
  const latest = await getJSON(`/api/schemas/subjects/${subject}/versions/latest`);
  const v2 = JSON.parse(latest.schema);
  v2.fields.push({name: 'zip', type: ['null', 'string'], default: null});
  const r = await fetch(`${base}/api/schemas/subjects/${subject}/versions`, {method: 'POST',
    headers: {'Content-Type': 'application/vnd.schemaregistry.v1+json'}, body: JSON.stringify({schema: JSON.stringify(v2)})});
  assert.equal(r.status, 200);
  const {page, errors} = await open('schemas');
  const row = page.locator(`#subjects tr[data-subject="${subject}"]`);
  await row.waitFor();
  await row.click();
  await until('both versions', async () => (await row.locator('.chip').allTextContents()).join() === 'v1,v2');
  await page.locator('#s-diff-table').waitFor();
  await until('the added field in the diff', async () => (await page.locator('#s-diff-table tr.d-add').allTextContents()).some((t) => t.includes('"zip"')));
  await page.screenshot({path: path.join(IMG, 'console-schemas.png'), fullPage: true});
  assert.deepEqual(errors, []);
  await page.close();
});

// On Kafka a commit is seen only when the committed offset moves, so a stopped group can read STALL before STOP.
test('lag appears when the processor stops, an alert fires; both clear when it resumes', {skip}, () => lagAndAlert({
  browser, base, group, stopped: ['STOP', 'STALL'], hooks: hook.hooks, img: IMG,
  restart: () => run('process', ['process', 'users', '-c', cfg, '-q'])}));

test('every page loads without console errors', {skip}, () => everyPageClean(browser, base));
