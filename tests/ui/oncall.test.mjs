// The on-call story, end to end in chromium, on the embedded default and on the real Kafka and Cassandra of
// tests/services (skipped when they are down): a mapping that cannot take some records (post_code as a bigint)
// starts dead-lettering; the pipeline's status turns ERROR with the reason in words while its consumer group alone
// says OK, and an alert fires; the operator finds the failing records on the Dead letters page with their stage and
// reason, narrows them by reason, fixes the mapping, replays every one of them from the page after a confirmation
// that says how many, the processor drains them, the status returns to OK and the table holds every record; the
// replay is on the Audit page. Topic, group and keyspace names are new each run; screenshots go to a temp dir
// (SL_UI_SCREENSHOTS for `make screenshots`).
import {test, after} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync, spawnSync} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {SLUICE, until, sleep, run, stop, open as openPage, num, launch, consoleURL, stopAll, reachable} from './lib.mjs';

const COUNT = 600;
const services = (await reachable(9092)) && (await reachable(9042));
const tmps = [];
let browser;

after(async () => {
  if (browser) await browser.close();
  await stopAll();
  if (!process.env.SL_KEEP) for (const t of tmps) fs.rmSync(t, {recursive: true, force: true});
});

function configs(tmp, stack) {
  const tag = crypto.randomBytes(4).toString('hex');
  const ks = stack ? 'oncall_' + tag : 'spark_streams';
  const head = `
data_dir: ${tmp}/data
${stack ? 'kafka: { brokers: 127.0.0.1:9092 }\ncassandra: { contact_points: [127.0.0.1] }' : ''}
pipelines:
  users:
    source: { type: generate, seed: 42, count: ${COUNT}, page_size: 100 }
    topic: oncall_users_${tag}
    partitions: 3
    group: oncall-${tag}
    key: id
    mapping:
      id:        { path: login.uuid, type: uuid }
      first_name: name.first
      email:     email
      post_code: { path: location.postcode, type: POSTCODE }
    sink: { keyspace: ${ks}, table: created_users, primary_key: [id] }
console:
  poll_interval: 300ms
  health_window: 15s
  rules:
    - { name: DeadLetters, metric: dlq_growth, above: 0, window: 15s, severity: critical }
`;
  const strict = path.join(tmp, 'strict.yaml'), fixed = path.join(tmp, 'fixed.yaml');
  // post_code as a bigint: the generator gives some postcodes as text ("EC1A 1BB"), which cannot be one.
  fs.writeFileSync(strict, head.replace('POSTCODE', 'bigint'));
  fs.writeFileSync(fixed, head.replace('POSTCODE', 'text'));
  return {strict, fixed, ks, topic: 'oncall_users_' + tag, group: 'oncall-' + tag};
}

async function story(stack) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-ui-oncall-'));
  tmps.push(tmp);
  const img = process.env.SL_UI_SCREENSHOTS || path.join(tmp, 'img');
  fs.mkdirSync(img, {recursive: true});
  // The viewport only: a full-page shot of 200 dead letters is slow and says no more.
  const shot = (page, name) => (stack ? page.screenshot({path: path.join(img, name), timeout: 60000}) : null);
  const {strict, fixed, ks} = configs(tmp, stack);
  browser = browser || await launch();
  try {
    let base = await consoleURL(run('console', ['console', '-c', strict, '--listen', '127.0.0.1:0']));
    const ov = await openPage(browser, base, 'overview');
    const card = ov.page.locator('.pipeline-card[data-pipeline="users"]');

    // The mapping rejects some records: they go to the dead-letter topic, the rest to the table.
    const up = spawnSync(SLUICE, ['up', '--until-done', '-q', '-c', strict], {encoding: 'utf8', timeout: 240000});
    assert.equal(up.status, 0, up.stderr);
    const dead = await until('dead letters on the overview', async () => {
      const v = await num(ov.page, '.pipeline-card[data-pipeline="users"] [data-field="dlq"]');
      return v > 0 ? v : 0;
    });
    assert.ok(dead < COUNT);

    // One status: ERROR, with the reason, while the consumer group alone would say OK.
    await until('the status to turn ERROR', async () => (await card.locator('[data-field="health"]').textContent()) === 'ERROR');
    const reasons = await until('the reasons', async () => {
      const t = await card.locator('[data-field="health_reasons"]').textContent();
      return /error rate \d+\.\d % over the last 15 s/.test(t) && /alert DeadLetters is firing/.test(t) ? t : '';
    });
    assert.match(reasons, new RegExp(`${dead} new dead letters in the last 15 s`));
    // The group catches up once the processor's last commit is seen (the page may still show a sample from
    // before it: STOP while nothing was committed yet), and then says OK while the pipeline stays ERROR.
    await until('the group OK while the pipeline is ERROR', async () =>
      (await card.locator('[data-field="status"] .badge').textContent()) === 'OK' &&
      (await card.locator('[data-field="health"]').textContent()) === 'ERROR');
    assert.equal(await num(ov.page, '.pipeline-card[data-pipeline="users"] [data-field="errors"]'), dead);
    await shot(ov.page, 'console-oncall-status.png');
    assert.deepEqual(ov.errors.filter((e) => !/503/.test(e)), []);
    await ov.page.close(); // before its console stops

    // The failing records and why.
    const q = await openPage(browser, base, 'dlq?pipeline=users');
    await until('every dead letter listed', async () => Number(await q.page.locator('#q-out').getAttribute('data-count')) === dead);
    const rows = q.page.locator('#dlq tr[data-offset]');
    assert.equal(await rows.count(), dead);
    for (const i of [0, dead - 1]) {
      assert.equal(await rows.nth(i).getAttribute('data-stage'), 'map');
      assert.match(await rows.nth(i).locator('[data-field="reason"]').textContent(),
        /column 'post_code' \(path location\.postcode\): ".*" is not a valid bigint/);
      assert.match(await rows.nth(i).locator('[data-field="from"]').textContent(), /^source record \d+$/);
    }
    // Grouped by reason: the biggest group selected narrows the list to its count.
    const opt = q.page.locator('#q-reason option').nth(1);
    const [n] = (await opt.textContent()).split(' × ');
    await q.page.selectOption('#q-reason', await opt.getAttribute('value'));
    await until('the list narrowed', async () => Number(await q.page.locator('#q-out').getAttribute('data-count')) === Number(n));
    await shot(q.page, 'console-dlq.png');
    await q.page.close();

    // The fix: the mapping takes text; the console (and with it the replay) runs on the fixed config.
    await stop('console');
    base = await consoleURL(run('console', ['console', '-c', fixed, '--listen', '127.0.0.1:0']));
    const r = await openPage(browser, base, 'dlq?pipeline=users');
    await until('the dead letters again', async () => Number(await r.page.locator('#q-out').getAttribute('data-count')) === dead);
    let asked = '';
    r.page.once('dialog', (d) => { asked = d.message(); d.accept(); });
    await r.page.click('#q-replay-all');
    await until('the replay', async () => (await r.page.locator('#q-status').getAttribute('data-replayed')) !== null);
    assert.match(asked, new RegExp(`^Replay ${dead} dead letters of users into its topic\\?$`));
    assert.equal(Number(await r.page.locator('#q-status').getAttribute('data-replayed')), dead);
    assert.match(await r.page.locator('#q-status').textContent(), new RegExp(`^Replayed ${dead} of ${dead}\\.$`));
    const drain = spawnSync(SLUICE, ['process', 'users', '--drain', '-q', '-c', fixed], {encoding: 'utf8', timeout: 240000});
    assert.equal(drain.status, 0, drain.stderr);

    // Back to OK once the window has no new failures, and the table holds every record.
    const ok = await openPage(browser, base, 'overview');
    const c2 = ok.page.locator('.pipeline-card[data-pipeline="users"]');
    // Cassandra's count(*) reads the whole table, so the overview does not show it there: the test counts itself.
    const rowsNow = async () => (stack
      ? Number(/^\s*(\d+)\s*$/m.exec(execFileSync(SLUICE, ['cql', '-e', `SELECT COUNT(*) FROM ${ks}.created_users`],
        {encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60000}))[1])
      : num(ok.page, '.pipeline-card[data-pipeline="users"] [data-field="table_rows"]'));
    let shown;
    await until('every record in the table', async () => (shown = await rowsNow()) === COUNT, 60000)
      .catch((e) => { throw new Error(e.message + ': ' + shown + ' rows; ' + drain.stdout + drain.stderr); });
    await until('the status back to OK', async () => (await c2.locator('[data-field="health"]').textContent()) === 'OK', 60000);
    await shot(ok.page, 'console-oncall-ok.png');

    const au = await openPage(browser, base, 'audit');
    await until('the replay in the audit log', () => au.page.locator('#audit tr[data-action="dlq.replay"]').count());
    assert.match(await au.page.locator('#audit tr[data-action="dlq.replay"]').first().textContent(), new RegExp(`replayed ${dead}`));

    for (const p of [r, ok, au]) assert.deepEqual(p.errors, []);
    for (const p of [r, ok, au]) await p.page.close();
  } finally {
    await stop('console');
    if (stack) {
      try { execFileSync(SLUICE, ['cql', '-e', `DROP KEYSPACE IF EXISTS ${ks}`], {stdio: 'ignore', timeout: 60000}); } catch (e) { /* best effort */ }
    }
  }
}

test('on call, embedded default: dead letters, the reason, the fix, the replay, OK again', () => story(false));
test('on call, real Kafka and Cassandra: the same story', {skip: services ? false : 'Kafka and Cassandra are not running'},
  () => story(true));

test('operator actions: create a topic, produce a message, reset a group with a dry run (Kafka page), silence an alert (Alerts page), all audited', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-ui-ops-'));
  tmps.push(tmp);
  const {strict, topic: ptopic, group} = configs(tmp, false);
  const ing = spawnSync(SLUICE, ['ingest', '-q', '-c', strict], {encoding: 'utf8', timeout: 120000});
  assert.equal(ing.status, 0, ing.stderr);
  browser = browser || await launch();
  const base = await consoleURL(run('console', ['console', '-c', strict, '--listen', '127.0.0.1:0']));
  try {
    const {page, errors} = await openPage(browser, base, 'kafka');
    const topic = 'ui_ops_' + crypto.randomBytes(4).toString('hex');
    await page.fill('#k-new-topic', topic);
    await page.fill('#k-new-parts', '2');
    await page.click('#k-create');
    await until('the topic created', async () => (await page.locator('#k-msg').textContent()) === `Created ${topic} with 2 partitions.`);
    await page.click('#k-create');
    await until('the second create refused', async () => /exists already/.test(await page.locator('#k-msg.err').textContent()));
    await page.fill('#k-p-topic', topic);
    await page.fill('#k-p-part', '1');
    await page.fill('#k-p-key', 'k1');
    await page.fill('#k-p-value', '{"hello":"world"}');
    await page.fill('#k-p-headers', '{"trace":"abc"}');
    await page.click('#k-produce');
    await until('the message produced', async () => (await page.locator('#k-msg').textContent()) === `Produced to ${topic} [1] at offset 0.`);
    const got = await (await fetch(`${base}/api/kafka/messages?topic=${topic}&partition=1&offset=0`)).json();
    assert.equal(got.messages.length, 1);
    assert.equal(got.messages[0].key, 'k1');
    assert.deepEqual(got.messages[0].headers, [['trace', 'abc']]);
    // Reset the pipeline's group to the end: the dry run shows the effect per partition, Reset asks, then applies.
    await page.fill('#k-r-group', group);
    await page.fill('#k-r-topic', ptopic);
    await page.selectOption('#k-r-to', 'latest');
    await page.click('#k-r-dry');
    await until('the effect per partition', () => page.locator('#k-r-effect tr[data-partition]').count().then((n) => n === 3));
    const k = await (await fetch(`${base}/api/kafka`)).json();
    const highs = k.topics.find((x) => x.name === ptopic).partitions.map((p) => p.high);
    for (let i = 0; i < 3; i++)
      assert.equal(Number(await page.locator(`#k-r-effect tr[data-partition="${i}"] [data-field="new"]`).textContent()), highs[i]);
    let asked = '';
    page.once('dialog', (d) => { asked = d.message(); d.accept(); });
    await page.click('#k-r-apply');
    await until('the reset', async () => (await page.locator('#k-msg').textContent()) === `Reset ${group} on ${ptopic} to latest.`);
    assert.match(asked, new RegExp(`^Reset ${group} on ${ptopic} to latest \\(3 partitions, \\+${highs.reduce((a, b) => a + b, 0)} offsets\\)\\?$`));
    const after = await (await fetch(`${base}/api/kafka/groups/reset`, {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({group, topic: ptopic, to: 'latest', dry_run: true})})).json();
    assert.deepEqual(after.partitions.map((p) => p.current), highs);
    // The charts' time range from console.db: the last hour has the samples taken so far.
    const ov = await openPage(browser, base, 'overview');
    await ov.page.locator('.pipeline-card[data-pipeline="users"]').waitFor();
    await sleep(1500);
    await ov.page.selectOption('#o-range', '3600000');
    await until('the hour drawn from console.db', async () => Number(await ov.page.locator('.pipeline-card[data-pipeline="users"]').getAttribute('data-points')) >= 2);
    assert.deepEqual(ov.errors, []);
    await ov.page.close();
    // Silence an alert for an hour from the Alerts page (the prompt asks why), then lift it.
    const al = await openPage(browser, base, 'alerts');
    const row = al.page.locator('tr[data-alert="DeadLetters"][data-pipeline="users"]');
    al.page.once('dialog', (d) => d.accept('known, fixing'));
    await row.locator('button[data-action="silence"]').click();
    await until('the silence shown', async () => /^until \d{4}-\d\d-\d\d .* by anonymous \(auth off\) \(known, fixing\)/.test(
      await row.locator('[data-field="silence"]').textContent()));
    await row.locator('button[data-action="unsilence"]').click();
    await until('the silence lifted', () => row.locator('button[data-action="silence"]').count());
    assert.deepEqual(al.errors, []);
    await al.page.close();
    const au = await openPage(browser, base, 'audit');
    await until('both actions audited', async () => (await au.page.locator('#audit tr[data-action="topic.create"]').count()) === 2 &&
      (await au.page.locator('#audit tr[data-action="topic.produce"]').count()) === 1 &&
      (await au.page.locator('#audit tr[data-action="alert.silence"]').count()) === 2 &&
      (await au.page.locator('#audit tr[data-action="group.reset"]').count()) === 1);
    assert.deepEqual(errors.filter((e) => !/409/.test(e)), []);
    assert.deepEqual(au.errors, []);
    await page.close();
    await au.page.close();
  } finally {
    await stop('console');
  }
});
