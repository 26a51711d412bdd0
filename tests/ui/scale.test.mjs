// Page loads at scale on the real Kafka: 500 topics on the broker and a console over 50 pipelines. Each page is
// loaded seven times in chromium and timed inside the page (Navigation Timing: from navigationStart to the first
// frame with the data drawn — the 50 pipeline cards on the Overview with the charts of those in the viewport (the page
// draws the others' as they scroll into view), 500 topic rows on Kafka, the rows of Alerts),
// against a page that asks the server nothing; each API call the page makes is timed by Resource Timing with the
// console's own part from its Server-Timing header. The figures are printed; the console's part is asserted. The
// topics are created and deleted through confluent-kafka (tests/requirements.txt) from the project's venv; skipped
// when Kafka or the venv is missing. Not in tests/run (a timing on a shared, loaded machine measures the machine):
// run it alone, `cd tests/ui && node --test scale.test.mjs` (SL_SCALE_SERVER_BUDGET_MS, SL_SCALE_BUDGET_MS: below).
import {test, after} from 'node:test';
import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {root, until, run, stop, launch, consoleURL, reachable} from './lib.mjs';

const PY = process.env.SL_PYTHON || path.join(root, '.cache/venv/bin/python');
const skip = !(await reachable(9092)) ? 'Kafka is not running on 127.0.0.1:9092'
  : !fs.existsSync(PY) ? 'no Python venv with confluent-kafka at ' + PY : false;
const tag = crypto.randomBytes(4).toString('hex');
const prefix = 'scale_' + tag + '_';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-ui-scale-'));
let browser;

function admin(op) {
  const code = `
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": "127.0.0.1:9092"})
names = ["${prefix}%03d" % i for i in range(500)]
if sys.argv[1] == "create":
    fs = a.create_topics([NewTopic(n, 1, 1) for n in names], operation_timeout=60)
else:
    fs = a.delete_topics(names, operation_timeout=60)
bad = 0
for n, f in fs.items():
    try:
        f.result(90)
    except Exception as e:
        bad += 1
print(bad)
`;
  const r = spawnSync(PY, ['-c', code, op], {encoding: 'utf8', timeout: 180000});
  return r.status === 0 ? Number(r.stdout.trim()) : -1;
}

after(async () => {
  if (browser) await browser.close();
  await stop('console');
  if (!skip) admin('delete');
  if (!process.env.SL_KEEP) fs.rmSync(tmp, {recursive: true, force: true});
});

test('page loads with 50 pipelines and 500 topics on the broker: the console within its budget, each page drawn under 300 ms', {skip}, async () => {
  assert.equal(admin('create'), 0, 'creating 500 topics');
  let cfg = `data_dir: ${tmp}/data\nkafka: { brokers: 127.0.0.1:9092 }\npipelines:\n`;
  for (let i = 0; i < 50; i++) {
    const t = prefix + String(i).padStart(3, '0');
    cfg += `  p${i}:\n    source: { type: generate, seed: ${i}, count: 10 }\n    topic: ${t}\n    group: ${t}-g\n` +
      `    key: id\n    mapping:\n      id: { path: login.uuid, type: uuid }\n    sink: { keyspace: scale_${tag}, table: t${i} }\n`;
  }
  cfg += 'console:\n  poll_interval: 2s\n';
  fs.writeFileSync(path.join(tmp, 'sluice.yaml'), cfg);
  const base = await consoleURL(run('console', ['console', '-c', path.join(tmp, 'sluice.yaml'), '--listen', '127.0.0.1:0']));
  await until('the 500 topics in the console', async () => {
    const k = await (await fetch(base + '/api/kafka')).json();
    // The shared broker may hold other tests' topics too: the console shows the pipelines' first, then others up to
    // its limit, so at least these 500 are there, the pipelines' 50 among them.
    return k.topics.length >= 500 && k.topics.filter((t) => t.name.startsWith(prefix)).length >= 50;
  }, 60000);
  browser = await launch();
  const pages = [
    ['nope', '#not-found', 1], // the baseline: a page that asks the server nothing (what chromium itself takes here)
    ['overview', '.pipeline-card', 50, true], // and the charts of the cards in view
    ['kafka', 'tr[data-topic]', 500],
    ['alerts', '#alerts tr[data-alert]', 50],
  ];
  // Measured inside the page (Navigation Timing): from navigationStart to the first animation frame at which the
  // data is drawn; and, from Resource Timing, each API call the page made with the console's own time for it (its
  // Server-Timing header). Opening a tab and chromium's own work before navigationStart are not the console's.
  const figures = {}, calls = {};
  for (const [hash, sel, n, charts] of pages) {
    const times = [];
    for (let i = 0; i < 7; i++) {
      const page = await browser.newPage();
      await page.goto(base + '/#/' + hash);
      // Drawn means what the person sees: the rows or cards, and on the Overview the charts of every card within the
      // viewport too (the page draws those of cards further down as they scroll into view).
      const drawn = await page.waitForFunction(([s, k, withCharts]) => {
        const els = document.querySelectorAll(s);
        if (els.length < k) return false;
        if (withCharts) for (const e of els) {
          if (e.getBoundingClientRect().top >= innerHeight) break;
          for (const c of e.querySelectorAll('canvas')) if (!c.dataset.drawn) return false;
        }
        return performance.now();
      }, [sel, n, !!charts], {polling: 'raf', timeout: 20000});
      const t = await drawn.jsonValue();
      const res = await page.evaluate(() => performance.getEntriesByType('resource').filter((e) => /\/(api|metrics)/.test(e.name)).map((e) => ({
        path: new URL(e.name).pathname, start: Math.round(e.startTime), total: Math.round(e.duration),
        server: e.serverTiming && e.serverTiming.length ? Math.round(e.serverTiming[0].duration * 10) / 10 : null})));
      const nav = await page.evaluate(() => { const e = performance.getEntriesByType('navigation')[0]; return {html: Math.round(e.responseEnd), dom: Math.round(e.domContentLoadedEventEnd)}; });
      // The page's own measures (web/app.js): the script's time per draw of the data, start and duration.
      nav.script = await page.evaluate(() => performance.getEntriesByType('measure').map((m) => m.name + '@' + Math.round(m.startTime) + '+' + Math.round(m.duration)));
      times.push(Math.round(t));
      if (i === 6) calls[hash] = {nav, api: res};
      await page.close();
    }
    times.sort((a, b) => a - b);
    figures[hash] = {median_ms: times[3], all_ms: times};
  }
  const api = {};
  for (const p of ['/api/overview', '/api/kafka', '/api/alerts', '/metrics']) {
    const server = [];
    for (let i = 0; i < 7; i++) {
      const r = await fetch(base + p, {headers: {'Accept-Encoding': 'gzip'}});
      await r.arrayBuffer();
      server.push(Number(/dur=([0-9.]+)/.exec(r.headers.get('server-timing'))[1]));
    }
    server.sort((a, b) => a - b);
    api[p] = server[3];
  }
  console.log('# page loads with 50 pipelines and 500 topics (ms from navigationStart to the data drawn): ' + JSON.stringify(figures));
  console.log('# the last load of each page, its API calls (start, total, server ms): ' + JSON.stringify(calls));
  console.log('# the console\'s median time per API answer (ms): ' + JSON.stringify(api) + ' load ' + os.loadavg()[0].toFixed(1));
  // Asserted (docs/console.md, page loads): the console's part, each API answer the pages need within
  // SL_SCALE_SERVER_BUDGET_MS (50 ms, over ten times what it takes); and the target, each page's median
  // under SL_SCALE_BUDGET_MS (300 ms). On a busy machine the baseline page alone can exceed that: the message gives
  // the baseline's median and the load, to tell the machine from the page.
  const serverBudget = Number(process.env.SL_SCALE_SERVER_BUDGET_MS || 50);
  for (const [p, ms] of Object.entries(api)) if (p !== '/metrics') assert.ok(ms < serverBudget, `${p}: the console took ${ms} ms`);
  const budget = Number(process.env.SL_SCALE_BUDGET_MS || 300);
  for (const [hash, f] of Object.entries(figures))
    assert.ok(f.median_ms < budget, `${hash}: median ${f.median_ms} ms, over ${budget} ms (baseline page ` +
      `${figures.nope.median_ms} ms, load ${os.loadavg()[0].toFixed(1)})`);
});
