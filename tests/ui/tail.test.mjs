// The message browser's live tail in chromium (issue 22), on the embedded default and on the real Kafka (skipped
// when 127.0.0.1:9092 is down): ticking "live tail" shows the newest messages once and then opens a server-sent
// events stream (GET /api/kafka/tail) — the page stops asking /api/kafka/messages — and messages produced
// afterwards appear at the top in the order they were written, the table keeping at most `limit` rows; unticking
// closes the stream (the console's sluice_console_live_tails gauge returns to 0). Topic names are new each run.
import {test, after} from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {until, sleep, run, stop, open as openPage, launch, consoleURL, stopAll, reachable} from './lib.mjs';

const kafka = await reachable(9092);
const tmps = [];
let browser;

after(async () => {
  if (browser) await browser.close();
  await stopAll();
  if (!process.env.SL_KEEP) for (const t of tmps) fs.rmSync(t, {recursive: true, force: true});
});

async function tail(onKafka) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-ui-tail-'));
  tmps.push(tmp);
  const tag = crypto.randomBytes(4).toString('hex'), topic = 'h22e_uitail_' + tag;
  const cfg = path.join(tmp, 'sluice.yaml');
  fs.writeFileSync(cfg, `
data_dir: ${tmp}/data
${onKafka ? 'kafka: { brokers: 127.0.0.1:9092 }' : ''}
pipelines:
  users:
    source: { type: generate, seed: 1, count: 10, page_size: 10 }
    topic: uitail_users_${tag}
    key: id
    mapping:
      id:    { path: login.uuid, type: uuid }
      email: email
    sink: { keyspace: ks, table: users }
console:
  poll_interval: 300ms
  max_tails: 2
`);
  const name = 'console-' + (onKafka ? 'kafka' : 'embedded');
  const base = await consoleURL(run(name, ['console', '-c', cfg, '--listen', '127.0.0.1:0']));
  const post = async (p, body) => {
    const r = await fetch(base + p, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
    return {status: r.status, body: await r.json()};
  };
  assert.equal((await post('/api/kafka/topics', {topic, partitions: 2})).status, 201);
  for (let i = 0; i < 3; i++) assert.equal((await post('/api/kafka/produce', {topic, partition: 0, value: 'before-' + i})).status, 200);

  browser = browser || await launch();
  const {page, errors} = await openPage(browser, base, 'kafka');
  const polls = [];
  page.on('request', (r) => { if (r.url().includes('/api/kafka/messages')) polls.push(Date.now()); });
  await until('the topic in the browser', async () => (await page.locator('#b-topic option').allTextContents()).includes(topic));
  await page.selectOption('#b-topic', topic);
  await page.fill('#b-part', '0');
  await page.fill('#b-limit', '5');
  await page.check('#b-tail');
  await until('the stream to open', async () => (await page.locator('#b-info').textContent()).includes('pushed by the server'));
  const values = async () => (await page.locator('#b-table tr[data-offset] td.val').allTextContents());
  assert.deepEqual((await values()).map((v) => v.replace(/^.*(before-\d).*$/s, '$1')), ['before-2', 'before-1', 'before-0']);
  const asked = polls.length;

  // Produced one by one: each appears at the top, newest first, in the order written.
  const offsets = [];
  for (let i = 0; i < 8; i++) {
    const r = await post('/api/kafka/produce', {topic, partition: 0, key: 'k' + i, value: 'live-' + i});
    assert.equal(r.status, 200);
    offsets.push(r.body.offset);
    await until('live-' + i + ' on top', async () => (await values())[0].includes('live-' + i), 15000);
  }
  // At most `limit` rows kept: the newest five, newest first.
  const shownOffsets = await page.locator('#b-table tr[data-offset]').evaluateAll((rows) => rows.map((r) => Number(r.dataset.offset)));
  assert.deepEqual(shownOffsets, offsets.slice(-5).reverse());
  assert.deepEqual((await values()).map((v) => v.replace(/^.*(live-\d).*$/s, '$1')), ['live-7', 'live-6', 'live-5', 'live-4', 'live-3']);
  // Pushed, not polled: no request for messages since the stream opened.
  assert.equal(polls.length, asked, 'the page asked /api/kafka/messages while tailing');
  const gauge = async () => Number(/^sluice_console_live_tails (\d+)$/m.exec(await (await fetch(base + '/metrics')).text())[1]);
  assert.equal(await gauge(), 1);
  // A message on the other partition does not show on a tail of partition 0.
  assert.equal((await post('/api/kafka/produce', {topic, partition: 1, value: 'other-partition'})).status, 200);
  await sleep(1500);
  assert.ok(!(await values()).some((v) => v.includes('other-partition')));

  await page.uncheck('#b-tail');
  await until('the stream to close', async () => (await gauge()) === 0, 10000);
  assert.deepEqual(errors, []);
  await page.close();
  await stop(name);
}

test('live tail on the embedded default', {timeout: 120000}, () => tail(false));
test('live tail on the real Kafka', {timeout: 120000, skip: !kafka && 'Kafka is not running on 127.0.0.1:9092'}, () => tail(true));
