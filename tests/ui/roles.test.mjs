// UI tests of the console's Schemas and DAGs pages inside `sluice up`, which runs the console, the schema registry and
// the scheduler in one process on the embedded default (no Kafka, no Cassandra): a DAG whose ingest task drives a
// generate-source pipeline (small count) and whose process task drains it. Two schema versions are registered through
// the registry's API; in the browser the Schemas page shows both and their diff, the compatibility box reports an
// incompatible change with its reason; a DAG run triggered from the page with a conf turns green and its task log
// opens; pause and unpause work. No console errors on any page.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {until, sleep, run, stopAll, launch, open as openPage, consoleURL, triggerToSuccess, everyPageClean} from './lib.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-ui-roles-'));
// The screenshots in docs/img come from the run on the real Kafka and Cassandra (stack.test.mjs).
const IMG = process.env.SL_UI_EMBEDDED_SCREENSHOTS || tmp;
const cfg = path.join(tmp, 'sluice.yaml');
let base, browser;

async function call(method, p, body) {
  const r = await fetch(base + p, {method, headers: {'Content-Type': 'application/vnd.schemaregistry.v1+json'},
    body: body === undefined ? undefined : JSON.stringify(body)});
  return {status: r.status, body: await r.json()};
}
const avro = (fields) => JSON.stringify({type: 'record', name: 'User', namespace: 'sluice', fields});
const V1 = [{name: 'id', type: 'string'}, {name: 'email', type: 'string'}];
const V2 = [...V1, {name: 'city', type: ['null', 'string'], default: null}];

before(async () => {
  fs.writeFileSync(cfg, `
data_dir: ${tmp}/data
pipelines:
  users:
    source: { type: generate, seed: 7, count: 40, page_size: 10 }
    topic: users_created
    partitions: 1
    key: id
    mapping:
      id: { path: login.uuid, type: uuid }
      first_name: name.first
      email: email
    sink: { keyspace: spark_streams, table: created_users }
console:
  listen: 127.0.0.1:0
  poll_interval: 500ms
registry:
  listen: 127.0.0.1:0
  data_dir: ${tmp}/data/registry
dags:
  user_automation:
    description: the seed's DAG, small
    tasks:
      stream_data_from_api: { kind: ingest, pipeline: users, count: 40 }
      wait_for_processor: { kind: process, pipeline: users, depends_on: [stream_data_from_api] }
  flaky:
    tasks:
      check: { kind: shell, command: "sleep 1; test -f ${tmp}/fixed" }
      after: { kind: shell, command: "true", depends_on: [check] }
  daily:
    schedule: "@daily"
    start_date: 2024-01-01
    paused: true
    tasks:
      ok: { kind: shell, command: "true" }
`);
  base = await consoleURL(run('up', ['up', '-c', cfg]), 'console: ');
  // Two versions of a subject, through the registry's REST API (plugged into the console's port).
  assert.equal((await call('POST', '/api/schemas/subjects/users-value/versions', {schema: avro(V1)})).status, 200);
  assert.equal((await call('POST', '/api/schemas/subjects/users-value/versions', {schema: avro(V2)})).status, 200);
  browser = await launch();
  fs.mkdirSync(IMG, {recursive: true});
});

after(async () => {
  if (browser) await browser.close();
  await stopAll();
  if (!process.env.SL_KEEP) fs.rmSync(tmp, {recursive: true, force: true});
});

const open = (hash) => openPage(browser, base, hash);

test('schemas: both versions, their diff, compatibility levels, an incompatible change with its reason', async () => {
  const {page, errors} = await open('schemas');
  const row = page.locator('#subjects tr[data-subject="users-value"]');
  await row.waitFor();
  assert.deepEqual(await row.locator('.chip').allTextContents(), ['v1', 'v2']);
  assert.match(await row.locator('[data-field="compatibility"]').textContent(), /BACKWARD \(global\)/);
  // The diff: v1 against v2, the added field on the right only.
  await page.locator('#s-diff-table').waitFor();
  assert.equal(await page.inputValue('#s-left'), '1');
  assert.equal(await page.inputValue('#s-right'), '2');
  const added = await page.locator('#s-diff-table tr.d-add').allTextContents();
  assert.ok(added.some((t) => t.includes('"city"')), 'the added field is marked: ' + added);
  assert.equal(await page.locator('#s-diff-table tr.d-del').count(), 0);
  // Per-subject level: set, shown, removed (PUT and DELETE /config/{subject}).
  await page.selectOption('#s-level', 'FULL');
  await until('FULL on the subject', async () => (await row.locator('[data-field="compatibility"]').textContent()) === 'FULL');
  assert.equal((await call('GET', '/api/schemas/config/users-value')).body.compatibilityLevel, 'FULL');
  await page.selectOption('#s-level', '');
  await until('back to the global level', async () => /\(global\)/.test(await row.locator('[data-field="compatibility"]').textContent()));
  // A compatible change, then an incompatible one (a field without a default breaks BACKWARD).
  await page.fill('#c-schema', JSON.stringify(JSON.parse(avro([...V2, {name: 'zip', type: ['null', 'string'], default: null}])), null, 2));
  await page.click('#c-test');
  await page.locator('#c-verdict[data-compatible="true"]').waitFor();
  await page.fill('#c-schema', JSON.stringify(JSON.parse(avro([...V2, {name: 'age', type: 'int'}])), null, 2));
  await page.click('#c-test');
  await page.locator('#c-verdict[data-compatible="false"]').waitFor();
  const reasons = await page.locator('#c-reasons li').allTextContents();
  assert.ok(reasons.some((r) => r.includes('READER_FIELD_MISSING_DEFAULT_VALUE') && r.includes('age')), 'reasons: ' + reasons);
  // Not JSON: told in the page, nothing sent.
  await page.fill('#c-schema', '{"type": "record",');
  await page.click('#c-test');
  await page.locator('#c-invalid').waitFor();
  await page.fill('#c-schema', JSON.stringify(JSON.parse(avro([...V2, {name: 'age', type: 'int'}])), null, 2));
  await page.click('#c-test');
  await page.locator('#c-verdict[data-compatible="false"]').waitFor();
  await page.screenshot({path: path.join(IMG, 'console-schemas.png'), fullPage: true});
  assert.deepEqual(errors, []);
  await page.close();
});

test('dags: trigger with a conf from the page, the grid turns green, the graph, the task log; pause and unpause', async () => {
  const {page, errors} = await open('dags');
  await page.locator('#dags tr[data-dag="user_automation"]').waitFor();
  await page.locator('#no-runs').waitFor();
  const {runId: run, cell} = await triggerToSuccess(page, '{"source": "ui-test", "n": 3}',
    ['stream_data_from_api', 'wait_for_processor'], 60000);
  assert.ok((await cell().getAttribute('class')).includes('s-success'));
  const runs = (await call('GET', '/api/dags/user_automation/dagRuns')).body.dag_runs;
  assert.deepEqual(runs.find((r) => r.dag_run_id === run).conf, {source: 'ui-test', n: 3});
  // The graph: both tasks, the dependency, coloured by state.
  await until('the graph in success', async () => (await page.locator('#dag-svg g.node[data-state="success"]').count()) === 2);
  assert.equal(await page.locator('#dag-svg path.edge[data-from="stream_data_from_api"][data-to="wait_for_processor"]').count(), 1);
  // A task try's log.
  await cell('stream_data_from_api').click();
  await until('the ingest log', async () => /kind=ingest[\s\S]*try 1 ended: success/.test(await page.locator('#dag-log').textContent()));
  await page.locator('#dag-svg g.node[data-task="wait_for_processor"]').click();
  await until('the process log', async () => /kind=process[\s\S]*try 1 ended: success/.test(await page.locator('#dag-log').textContent()));
  assert.equal(await page.locator('#ti-task').textContent(), 'wait_for_processor');
  await page.screenshot({path: path.join(IMG, 'console-dags.png'), fullPage: true});
  // Pause and unpause, on the page and in the scheduler.
  await page.click('#dag-pause');
  await until('paused on the page', async () => (await page.locator('#dag-state').textContent()) === 'paused');
  assert.equal((await call('GET', '/api/dags/user_automation')).body.is_paused, true);
  assert.equal(await page.locator('#dags tr[data-dag="user_automation"] button.pause').textContent(), 'Unpause');
  await page.click('#dag-pause');
  await until('active again', async () => (await page.locator('#dag-state').textContent()) === 'active');
  assert.equal((await call('GET', '/api/dags/user_automation')).body.is_paused, false);
  // A conf that is not a JSON object is refused on the page.
  await page.fill('#dag-conf', '[1, 2]');
  await page.click('#dag-trigger');
  await until('the conf error', async () => /JSON object/.test(await page.locator('#dag-msg.err').textContent()));
  assert.deepEqual(errors, []);
  await page.close();
});

// Register and evolve from the page: a new subject's first version, an incompatible change that cannot be registered
// (the button waits for a passing check), a compatible one registered as v2, then v2 soft-deleted; each audited.
test('schemas: register a checked schema, evolve it, soft-delete a version, audited', async () => {
  const {page, errors} = await open('schemas');
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
  await page.locator('#subjects tr[data-subject="users-value"]').waitFor();
  await page.locator('#c-register:not(.hidden)').waitFor();
  const pretty = (f) => JSON.stringify(JSON.parse(avro(f)), null, 2);
  await page.fill('#c-subject', 'orders-value');
  await page.fill('#c-schema', pretty(V1));
  assert.equal(await page.locator('#c-register').isDisabled(), true);
  await page.click('#c-test');
  await page.locator('#c-verdict[data-compatible="new"]').waitFor();
  await page.click('#c-register');
  const row = page.locator('#subjects tr[data-subject="orders-value"]');
  await until('orders-value v1', async () => (await row.count()) === 1 && (await row.locator('.chip').allTextContents()).join() === 'v1');
  assert.equal(dialogs[0], 'Register this schema under orders-value?');
  // An incompatible change: shown with its reason, and it cannot be registered.
  await page.fill('#c-subject', 'orders-value');
  await page.fill('#c-schema', pretty([...V1, {name: 'age', type: 'int'}]));
  await page.click('#c-test');
  await page.locator('#c-verdict[data-compatible="false"]').waitFor();
  assert.equal(await page.locator('#c-register').isDisabled(), true);
  // A compatible one: registered as v2. Editing the text after the check asks for a new check.
  await page.fill('#c-schema', pretty(V2));
  await page.click('#c-test');
  await page.locator('#c-verdict[data-compatible="true"]').waitFor();
  assert.equal(await page.locator('#c-register').isDisabled(), false);
  await page.fill('#c-schema', pretty(V2) + ' ');
  assert.equal(await page.locator('#c-register').isDisabled(), true);
  await page.fill('#c-schema', pretty(V2));
  await page.click('#c-test');
  await page.locator('#c-verdict[data-compatible="true"]').waitFor();
  await page.click('#c-register');
  await until('orders-value v2', async () => (await row.locator('.chip').allTextContents()).join() === 'v1,v2');
  assert.match(await page.locator('#c-reg-msg').textContent(), /^registered: orders-value v2, schema id \d+$/);
  // Soft delete of v2: gone from the list, still there with ?deleted=true.
  await row.click();
  await until('v2 picked', async () => (await page.locator('#s-delete').textContent()) === 'Delete v2');
  await page.click('#s-delete');
  await until('v2 deleted', async () => (await row.locator('.chip').allTextContents()).join() === 'v1');
  assert.match(dialogs[2], /^Delete version 2 of orders-value\? \(soft/);
  assert.deepEqual((await call('GET', '/api/schemas/subjects/orders-value/versions')).body, [1]);
  assert.deepEqual((await call('GET', '/api/schemas/subjects/orders-value/versions?deleted=true')).body, [1, 2]);
  const acts = (await call('GET', '/api/audit?limit=100')).body.entries.map((e) => e.action + ' ' + e.target + ' ' + e.status);
  assert.equal(acts.filter((a) => /^POST .*subjects\/orders-value\/versions 200$/.test(a)).length, 2, acts.join('; '));
  assert.ok(acts.some((a) => /^DELETE .*subjects\/orders-value\/versions\/2 200$/.test(a)), acts.join('; '));
  assert.deepEqual(errors, []);
  await page.close();
});

// Airflow's grid, closer: last and next run beside each DAG, dates over the grid's columns and durations in its
// cells, the Gantt chart of a run with every try; the operator clears a failed run's tasks (they run again), marks a
// run success, clears two runs at once, backfills a date range; every confirmation says how many; each action is
// on the Audit page.
test('dags: last and next run, dates and durations, Gantt, clear, mark success, backfill, audited', async () => {
  const {page, errors} = await open('dags');
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
  await page.locator('#dags tr[data-dag="flaky"]').click();
  await until('flaky selected', async () => (await page.locator('#dag-title').textContent()).includes('flaky'));
  await page.locator('#run-actions:not(.hidden)').waitFor(); // an operator (no credentials: the listener's own)
  await page.click('#dag-trigger');
  await until('the trigger', async () => !!(await page.locator('#dag-msg').getAttribute('data-run')));
  const run = await page.locator('#dag-msg').getAttribute('data-run');
  const runCell = page.locator('#dag-grid td.cell.run[data-run="' + run + '"]');
  await until('the run to fail', async () => (await runCell.getAttribute('data-state')) === 'failed', 60000);
  // The list: the last run and its state; the next run of a scheduled DAG; none for a manual one.
  await until('the last run in the list', async () => /failed/.test(await page.locator('#dags tr[data-dag="flaky"] [data-field="last-run"]').textContent()));
  assert.match(await page.locator('#dags tr[data-dag="daily"] [data-field="next-run"]').textContent(), /^\d{4}-\d\d-\d\d 00:00$|^\d{4}-\d\d-\d\d \d\d:\d\d$/);
  assert.equal(await page.locator('#dags tr[data-dag="flaky"] [data-field="next-run"]').textContent(), 'manual only');
  // Dates over the columns, durations in the cells (the check task sleeps a second).
  assert.match(await page.locator('#dag-grid td.date[data-run="' + run + '"]').textContent(), /^\d\d-\d\d \d\d:\d\d$/);
  assert.match(await page.locator('#dag-grid td.cell[data-run="' + run + '"][data-task="check"]').textContent(), /^[1-9]\d*s$/);
  assert.match(await runCell.textContent(), /^\d+s$/);
  // The Gantt chart of the run: a bar for the task that ran, none for the one that never did.
  await until('the Gantt bars', async () => (await page.locator('#gantt-svg g.g-row[data-task="check"] rect.g-bar.s-failed').count()) === 1);
  assert.equal(await page.locator('#gantt-svg g.g-row[data-task="after"] rect').count(), 0);
  assert.match(await page.locator('#gantt-svg g.g-row[data-task="check"]').textContent(), /try 1 · \d+s/);
  await page.screenshot({path: path.join(IMG, 'console-dags-gantt.png'), fullPage: true});

  // Clear the failed tasks once the cause is fixed: both run again, the run turns green, try 2 of check.
  fs.writeFileSync(path.join(tmp, 'fixed'), '');
  await page.click('#run-clear-failed');
  await until('the run to succeed after the clear', async () => (await runCell.getAttribute('data-state')) === 'success', 60000);
  assert.match(dialogs[0], /^Clear 2 task instances of run .* \(after, check\)\? They run again\.$/);
  let tis = (await call('GET', '/api/dags/flaky/dagRuns/' + encodeURIComponent(run) + '/taskInstances')).body.task_instances;
  assert.deepEqual(tis.map((t) => [t.task_id, t.state, t.try_number]).sort(), [['after', 'success', 1], ['check', 'success', 2]]);
  // The Gantt chart draws every try: check's failed try 1 and its successful try 2, each with its number.
  await until('both tries in the Gantt', async () => (await page.locator('#gantt-svg g.g-row[data-task="check"] rect.g-bar').count()) === 2);
  assert.equal(await page.locator('#gantt-svg g.g-row[data-task="check"] rect.g-bar[data-try="1"]').getAttribute('data-state'), 'failed');
  assert.equal(await page.locator('#gantt-svg g.g-row[data-task="check"] rect.g-bar[data-try="2"]').getAttribute('data-state'), 'success');
  assert.match(await page.locator('#gantt-svg g.g-row[data-task="check"]').textContent(), /2 tries · try 2 · \d+s/);

  // Mark a failed run success.
  fs.rmSync(path.join(tmp, 'fixed'));
  await sleep(1100); // run ids are to the second
  await page.click('#dag-trigger');
  await until('a second run', async () => (await page.locator('#dag-msg').getAttribute('data-run')) !== run);
  const run2 = await page.locator('#dag-msg').getAttribute('data-run');
  const cell2 = page.locator('#dag-grid td.cell.run[data-run="' + run2 + '"]');
  await until('the second run to fail', async () => (await cell2.getAttribute('data-state')) === 'failed', 60000);
  await cell2.click();
  await page.click('#run-mark-success');
  await until('marked success', async () => (await cell2.getAttribute('data-state')) === 'success');
  assert.equal(dialogs[1], 'Mark run ' + run2 + ' success?');
  tis = (await call('GET', '/api/dags/flaky/dagRuns/' + encodeURIComponent(run2) + '/taskInstances')).body.task_instances;
  assert.deepEqual(tis.map((t) => t.state), ['success', 'success']);

  // Clear several runs at once: both ticked in the grid's header; the confirmation counts task instances and runs.
  await page.locator('#dag-grid input.run-pick[data-run="' + run + '"]').check();
  await page.locator('#dag-grid input.run-pick[data-run="' + run2 + '"]').check();
  assert.equal(await page.locator('#runs-clear').textContent(), 'Clear selected runs (2)');
  await page.click('#runs-clear');
  await until('the cleared runs to end', async () => {
    const a = (await call('GET', '/api/dags/flaky/dagRuns/' + encodeURIComponent(run) + '/taskInstances')).body.task_instances;
    const b = (await call('GET', '/api/dags/flaky/dagRuns/' + encodeURIComponent(run2) + '/taskInstances')).body.task_instances;
    const check = (l) => l.find((t) => t.task_id === 'check');
    return check(a).try_number === 3 && check(b).try_number === 2 && ['failed', 'success'].includes(await cell2.getAttribute('data-state')) &&
      ['failed', 'success'].includes(await runCell.getAttribute('data-state'));
  }, 60000);
  assert.equal(dialogs[2], 'Clear 4 task instances of 2 runs (' + run + ', ' + run2 + ')? They run again.');

  // Backfill three days of the daily DAG.
  await page.locator('#dags tr[data-dag="daily"]').click();
  await page.locator('#backfill:not(.hidden)').waitFor();
  await page.fill('#bf-from', '2024-01-01');
  await page.fill('#bf-to', '2024-01-03');
  await page.click('#bf-go');
  await until('three backfill runs', async () => (await page.locator('#dag-grid td.cell.run').count()) === 3);
  assert.equal(dialogs[3], 'Create 3 backfill runs of daily, one per interval from 2024-01-01 to 2024-01-03?');
  assert.deepEqual(await page.locator('#dag-grid td.date').allTextContents(), ['01-01 00:00', '01-02 00:00', '01-03 00:00'].map((d) => {
    const t = new Date(Date.UTC(2024, 0, Number(d.slice(3, 5)))); // shown in local time
    return String(t.getMonth() + 1).padStart(2, '0') + '-' + String(t.getDate()).padStart(2, '0') + ' ' + String(t.getHours()).padStart(2, '0') + ':' + String(t.getMinutes()).padStart(2, '0');
  }));

  // Each action is audited.
  const audit = (await call('GET', '/api/audit?limit=100')).body.entries;
  const acts = audit.map((e) => e.action + ' ' + e.target);
  for (const want of [/POST .*\/dags\/flaky\/clearTaskInstances/, /PATCH .*\/dags\/flaky\/dagRuns\//, /POST .*\/dags\/daily\/backfills/])
    assert.ok(acts.some((a) => want.test(a)), want + ' not in the audit: ' + acts.join('; '));
  assert.deepEqual(errors, []);
  await page.close();
});

test('a write from another origin (a page elsewhere posting to the console) is refused', async () => {
  const r = await fetch(base + '/api/dags/user_automation', {method: 'PATCH', body: '{"is_paused": true}',
    headers: {Origin: 'http://evil.example', 'Content-Type': 'text/plain'}});
  assert.equal(r.status, 403);
  assert.equal((await call('GET', '/api/dags/user_automation')).body.is_paused, false);
  const same = await fetch(base + '/api/schemas/config', {headers: {Origin: 'http://evil.example'}});
  assert.equal(same.status, 200); // reads are the browser's CORS business
});

test('every page loads without console errors beside the registry and the scheduler', () => everyPageClean(browser, base));
