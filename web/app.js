/* sluice console: one page, six views (#/overview, #/kafka, #/data, #/alerts, #/schemas, #/dags), each polling the
 * JSON API behind it; the Schemas and DAGs views are in schemas.js and dags.js. No framework and no build step: the
 * files are embedded in the binary as they are. */
'use strict';

const $ = (sel, el) => (el || document).querySelector(sel);
const h = (tag, attrs, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) e.append(k instanceof Node ? k : String(k));
  return e;
};
const fmt = (v, digits) => {
  if (v === null || v === undefined) return '—';
  if (typeof v !== 'number') return String(v);
  if (digits !== undefined) return v.toFixed(digits);
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
};
const secs = (v) => (v === null || v === undefined) ? '—' : v < 1 ? (v * 1000).toFixed(0) + ' ms' : v.toFixed(1) + ' s';
const ago = (ms) => ms < 0 ? 'never' : ms < 1000 ? 'just now' : ms < 60000 ? (ms / 1000).toFixed(0) + ' s ago' : (ms / 60000).toFixed(1) + ' min ago';
const badge = (s) => h('span', {class: 'badge b-' + s}, s);
/* DOM's replaceChildren turns null into the text "null": drop the empty parts first. */
const fill = (el, ...kids) => el.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false));
const tile = (k, v, field) => h('div', {class: 'tile'}, h('div', {class: 'k'}, k), h('div', {class: 'v', 'data-field': field}, v));

async function api(path) {
  const r = await fetch(path, {headers: {Accept: 'application/json'}, credentials: 'same-origin'});
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  const conn = $('#conn');
  if (r.status === 401) { conn.textContent = 'unauthorized'; conn.className = 'conn bad'; }
  else { conn.textContent = 'live'; conn.className = 'conn ok'; }
  return {status: r.status, ok: r.ok, body};
}

/* A request that changes something (POST, PUT, PATCH, DELETE) with a JSON body; same answer shape as api(). */
async function send(method, path, body) {
  const r = await fetch(path, {method, credentials: 'same-origin',
    headers: {Accept: 'application/json', 'Content-Type': 'application/json'}, body: body === undefined ? undefined : JSON.stringify(body)});
  let b = null;
  try { b = await r.json(); } catch (e) { b = null; }
  return {status: r.status, ok: r.ok, body: b};
}
/* The error text of a failed answer, whichever role wrote it (console, registry, scheduler). */
const errText = (r) => (r.body && (r.body.message || r.body.detail || r.body.error || r.body.title)) || ('HTTP ' + r.status);
const SVGNS = 'http://www.w3.org/2000/svg';
const svg = (tag, attrs, ...kids) => {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, v);
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
};

/* ---- a small canvas line chart ---- */
const COLORS = ['#1f6feb', '#1a7f37', '#cf222e', '#8250df', '#9a6700'];
function chart(title, series) {
  const canvas = h('canvas', {});
  const legend = h('div', {class: 'title'}, h('b', {}, title),
    series.map((s, i) => h('span', {}, h('span', {class: 'sw', 'data-color': COLORS[i]}), s)));
  legend.querySelectorAll('.sw').forEach((e) => { e.style.background = e.dataset.color; });
  const box = h('div', {class: 'chart'}, legend, canvas);
  box.draw = (points) => draw(canvas, points, series.length);
  return box;
}
function draw(canvas, points, nseries) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 400, hgt = canvas.clientHeight || 170;
  canvas.width = w * dpr; canvas.height = hgt * dpr;
  const g = canvas.getContext('2d');
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, hgt);
  const padL = 48, padB = 18, padT = 6, padR = 8;
  let max = 0;
  for (const p of points) for (let i = 1; i <= nseries; i++) if (p[i] > max) max = p[i];
  max = max <= 0 ? 1 : max * 1.1;
  const t0 = points.length ? points[0][0] : 0, t1 = points.length ? points[points.length - 1][0] : 1;
  const X = (t) => padL + (w - padL - padR) * (t1 > t0 ? (t - t0) / (t1 - t0) : 1);
  const Y = (v) => padT + (hgt - padT - padB) * (1 - v / max);
  g.strokeStyle = '#eaeef2'; g.fillStyle = '#656d76'; g.font = '10px system-ui'; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4, y = Y(v);
    g.beginPath(); g.moveTo(padL, y); g.lineTo(w - padR, y); g.stroke();
    g.fillText(fmt(v), 4, y + 3);
  }
  if (points.length) {
    const d = new Date(t0), e = new Date(t1);
    g.fillText(d.toLocaleTimeString(), padL, hgt - 4);
    const s = e.toLocaleTimeString();
    g.fillText(s, w - padR - g.measureText(s).width, hgt - 4);
  }
  for (let i = 1; i <= nseries; i++) {
    g.strokeStyle = COLORS[i - 1]; g.lineWidth = 1.6; g.beginPath();
    let started = false;
    for (const p of points) {
      if (p[i] === null || p[i] === undefined) continue;
      if (!started) { g.moveTo(X(p[0]), Y(p[i])); started = true; } else g.lineTo(X(p[0]), Y(p[i]));
    }
    g.stroke();
  }
}

/* ---- pages ---- */
let timer = null;
const pages = {};

pages.overview = {
  init(main) {
    this.main = main; this.cards = {}; this.hist = {}; this.since = 0;
    main.append(h('h1', {}, 'Overview'), h('div', {id: 'pipelines'}));
  },
  async tick() {
    const [ov, hi] = await Promise.all([api('/api/overview'), api('/api/history?since=' + this.since)]);
    if (!ov.ok) return;
    const o = ov.body;
    $('#footer').textContent = 'log: ' + o.log + ' · sink: ' + o.sink + (o.in_process ? ' · in-process metrics' : ' · pipelines run in other processes') +
      (o.log_ok ? '' : ' · ' + o.log_error);
    if (hi.ok) {
      for (const [name, rows] of Object.entries(hi.body.pipelines)) {
        const a = (this.hist[name] = (this.hist[name] || []).concat(rows));
        if (a.length > 900) a.splice(0, a.length - 900);
        if (rows.length) this.since = Math.max(this.since, rows[rows.length - 1][0]);
      }
    }
    for (const p of o.pipelines) {
      let c = this.cards[p.name];
      if (!c) {
        c = this.cards[p.name] = {
          el: h('div', {class: 'card pipeline-card', 'data-pipeline': p.name}),
          rate: chart('records/s', ['in (topic)', 'out (committed)']),
          lag: chart('consumer lag (records)', ['lag']),
        };
        $('#pipelines', this.main).append(c.el);
      }
      const errs = p.log_error || p.sink_error;
      fill(c.el, 
        h('h2', {}, p.name, badge(p.status), h('span', {class: 'muted mono'}, p.topic + ' → ' + p.table)),
        h('div', {class: 'tiles'},
          tile('in / s', fmt(p.in_rate), 'in_rate'), tile('out / s', fmt(p.out_rate), 'out_rate'),
          tile('in topic', fmt(p.in_total), 'in_total'), tile('committed', fmt(p.out_total), 'out_total'),
          tile('lag', fmt(p.lag), 'lag'), tile('lag (time)', secs(p.lag_seconds), 'lag_seconds'),
          tile('table rows', fmt(p.table_rows), 'table_rows'), tile('errors', fmt(p.errors), 'errors'),
          tile('retries', fmt(p.retries), 'retries'), tile('dead letters', fmt(p.dlq), 'dlq'),
          tile('e2e p95', secs(p.e2e_p95), 'e2e_p95'), tile('error rate', (p.error_rate * 100).toFixed(2) + '%', 'error_rate')),
        h('div', {class: 'charts'}, c.rate, c.lag),
        errs ? h('div', {class: 'err'}, errs) : null);
      const pts = this.hist[p.name] || [];
      c.rate.draw(pts.map((r) => [r[0], r[1], r[2]]));
      c.lag.draw(pts.map((r) => [r[0], r[3]]));
    }
  },
};

pages.kafka = {
  init(main) {
    this.main = main;
    this.browser = h('div', {class: 'card', id: 'browser'});
    main.append(h('h1', {}, 'Kafka'), h('div', {id: 'kafka-body'}), this.browser);
    this.buildBrowser();
  },
  buildBrowser() {
    const topic = h('select', {id: 'b-topic'}), part = h('input', {id: 'b-part', type: 'number', min: -1, value: -1}),
      off = h('input', {id: 'b-offset', type: 'number', min: 0, value: 0}),
      q = h('input', {id: 'b-q', type: 'search', placeholder: 'text in key or value (Avro: in the decoded JSON)'}),
      limit = h('input', {id: 'b-limit', type: 'number', min: 1, max: 500, value: 50}),
      out = h('div', {id: 'b-out'});
    const go = async () => {
      const u = '/api/kafka/messages?topic=' + encodeURIComponent(topic.value) + '&partition=' + part.value +
        '&offset=' + off.value + '&limit=' + limit.value + '&q=' + encodeURIComponent(q.value);
      out.replaceChildren(h('div', {class: 'muted'}, 'reading…'));
      const r = await api(u);
      if (!r.ok) { out.replaceChildren(h('div', {class: 'err'}, (r.body && r.body.error) || ('HTTP ' + r.status))); return; }
      const m = r.body.messages;
      out.replaceChildren(h('div', {class: 'muted'}, m.length + ' messages (scanned ' + r.body.scanned + ', next offset ' + r.body.next_offset + ')'),
        h('table', {id: 'b-table'}, h('tr', {}, h('th', {class: 'num'}, 'partition'), h('th', {class: 'num'}, 'offset'), h('th', {}, 'time'), h('th', {}, 'key'), h('th', {}, 'value')),
          m.map((x) => h('tr', {}, h('td', {class: 'num'}, x.partition), h('td', {class: 'num'}, x.offset),
            h('td', {class: 'mono'}, new Date(x.timestamp).toLocaleTimeString()), h('td', {class: 'mono'}, x.key || ''),
            h('td', {class: 'mono val', 'data-schema-id': x.value_schema_id, onclick: (e) => e.currentTarget.classList.toggle('open')},
              x.value_schema_id !== undefined ? h('span', {class: 'chip avro', title: 'Avro, decoded with the registry\'s schema ' + x.value_schema_id}, 'avro #' + x.value_schema_id) : null,
              x.value_error ? h('span', {class: 'chip bad', title: x.value_error}, 'not decoded') : null,
              pretty(x.value))))));
    };
    this.topicSelect = topic;
    this.browser.append(h('h2', {}, 'Message browser'),
      h('div', {class: 'row'}, h('label', {}, 'topic', topic), h('label', {}, 'partition (-1 all)', part),
        h('label', {}, 'from offset', off), h('label', {}, 'limit', limit), h('label', {}, 'search', q),
        h('button', {id: 'b-go', onclick: go}, 'Browse')), out);
    q.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
  },
  async tick() {
    const r = await api('/api/kafka');
    if (!r.ok) return;
    const k = r.body, body = $('#kafka-body', this.main);
    if (this.topicSelect.options.length !== k.topics.length) {
      const cur = this.topicSelect.value;
      this.topicSelect.replaceChildren(...k.topics.map((t) => h('option', {value: t.name, selected: t.name === cur}, t.name)));
    }
    const kafka = k.backend === 'kafka';
    fill(body,
      k.ok ? null : h('div', {class: 'card err'}, k.error),
      h('div', {class: 'card'}, h('h2', {}, 'Consumer groups'),
        k.groups.map((g) => h('div', {class: 'group', 'data-group': g.group},
          h('h3', {}, g.group + ' on ' + g.topic + ' ', badge(g.status), h('span', {class: 'muted'}, ' lag ', h('b', {'data-field': 'group-lag'}, g.lag), ' · status over the last ' + g.window + ' commits per partition (Burrow rules)')),
          h('table', {}, h('tr', {}, h('th', {class: 'num'}, 'partition'), h('th', {class: 'num'}, 'committed'), h('th', {class: 'num'}, 'high watermark'),
            h('th', {class: 'num'}, 'lag'), h('th', {}, 'status'), h('th', {}, 'last commit'), h('th', {}, 'commits in window')),
          g.partitions.map((p) => h('tr', {}, h('td', {class: 'num'}, p.partition), h('td', {class: 'num'}, p.committed < 0 ? '—' : p.committed),
            h('td', {class: 'num'}, p.high), h('td', {class: 'num', 'data-field': 'lag'}, p.lag), h('td', {}, badge(p.status)),
            h('td', {}, ago(p.last_commit_ago_ms)), h('td', {class: 'muted'}, p.commits.length))))))),
      h('div', {class: 'card'}, h('h2', {}, kafka ? 'Brokers' : 'Log'),
        kafka ? h('table', {}, h('tr', {}, h('th', {}, 'id'), h('th', {}, 'host'), h('th', {}, 'port')),
          k.brokers.map((b) => h('tr', {}, h('td', {}, b.id), h('td', {}, b.host), h('td', {}, b.port))))
          : h('div', {class: 'muted'}, 'The embedded log (SQLite in data_dir) — one node, every partition local.')),
      h('div', {class: 'card'}, h('h2', {}, 'Topics'),
        h('table', {id: 'topics'}, h('tr', {}, h('th', {}, 'topic'), h('th', {class: 'num'}, 'partitions'), h('th', {class: 'num'}, 'messages'),
          h('th', {}, 'partition: low … high' + (kafka ? ' (leader, ISR)' : ''))),
        k.topics.map((t) => h('tr', {'data-topic': t.name}, h('td', {class: 'mono'}, t.name), h('td', {class: 'num'}, t.partitions.length),
          h('td', {class: 'num'}, t.messages),
          h('td', {class: 'mono'}, t.partitions.map((p) => p.partition + ': ' + p.low + '…' + p.high + (p.leader !== undefined ? ' (' + p.leader + ', [' + p.isr + '])' : '')).join('   ')))))));
  },
};
function pretty(v) {
  if (v === null || v === undefined) return '';
  try { return JSON.stringify(JSON.parse(v), null, 1).replace(/\n\s*/g, ' '); } catch (e) { return v; }
}

/* The data page pages with the API's tokens: next_token continues after the page shown; the tokens of the pages
 * before are kept here so "newer" can go back. */
pages.data = {
  init(main) {
    this.main = main; this.tokens = [null]; this.size = 20; this.pipeline = null;
    this.sel = h('select', {id: 'd-pipeline', onchange: () => { this.pick(); this.tokens = [null]; this.load(); }});
    this.prev = h('button', {class: 'secondary', id: 'd-prev', onclick: () => { if (this.tokens.length > 1) { this.tokens.pop(); this.load(); } }}, '← back');
    this.next = h('button', {class: 'secondary', id: 'd-next', onclick: () => { if (this.nextToken) { this.tokens.push(this.nextToken); this.load(); } }}, 'next →');
    this.info = h('span', {class: 'muted', id: 'd-info'});
    this.out = h('div', {id: 'd-out'});
    main.append(h('h1', {}, 'Data'), h('div', {class: 'card'}, h('div', {class: 'row'}, h('label', {}, 'table', this.sel), this.prev, this.next, this.info), this.out));
  },
  async tick() {
    const r = await api('/api/data');
    if (!r.ok) return;
    this.tables = r.body.tables;
    if (this.sel.options.length !== r.body.tables.length) {
      // One entry per output: the pipeline's own table (main) and each of its outputs: (docs/processing.md).
      this.sel.replaceChildren(...r.body.tables.map((t) => h('option', {value: this.key(t)}, t.keyspace + '.' + t.table + '  (' + t.pipeline +
        (t.output && t.output !== 'main' ? ' → ' + t.output : '') + ', ' + t.sink + ')')));
      this.pick();
    }
    this.table = r.body.tables.find((x) => x.pipeline === this.pipeline && (x.output || 'main') === this.output);
    if (this.tokens.length === 1) await this.load();
  },
  // An option's value: the pipeline's name for its own table, pipeline/output for one of its outputs.
  key(t) { return t.output && t.output !== 'main' ? t.pipeline + '/' + t.output : t.pipeline; },
  pick() {
    const t = this.tables && this.tables.find((x) => this.key(x) === this.sel.value);
    if (t) { this.pipeline = t.pipeline; this.output = t.output || 'main'; }
  },
  async load() {
    if (!this.pipeline) return;
    // Only the latest request may draw: a slower answer for the table or page shown before must not overwrite it.
    const seq = this.seq = (this.seq || 0) + 1;
    const tok = this.tokens[this.tokens.length - 1];
    const r = await api('/api/data/rows?pipeline=' + encodeURIComponent(this.pipeline) + '&output=' + encodeURIComponent(this.output || 'main') +
      '&size=' + this.size + (tok ? '&token=' + tok : ''));
    if (seq !== this.seq) return;
    if (!r.ok) { this.out.replaceChildren(h('div', {class: 'notice'}, (r.body && r.body.error) || ('HTTP ' + r.status))); return; }
    const d = r.body, t = this.table;
    this.nextToken = d.next_token;
    const ag = t && t.aggregate;
    this.info.textContent = (t && t.rows !== null ? t.rows + ' rows · ' : '') + 'page ' + this.tokens.length +
      (d.order === 'token' ? ' (Cassandra token order)' : ' (newest first)') +
      (ag ? ' · aggregate (' + (ag.final ? 'final rows' : 'updated rows') + ')' +
        (ag.watermark_seconds !== null ? ': watermark ' + (ag.watermark_seconds ? new Date(ag.watermark_seconds * 1000).toISOString() : 'none') +
          ', ' + ag.open_windows + ' open windows, ' + ag.late_records + ' late records' : '') : '');
    this.info.dataset.page = this.tokens.length;
    this.info.dataset.pipeline = this.pipeline; // which table is drawn (tests wait on it, not on the row count)
    this.prev.disabled = this.tokens.length === 1; this.next.disabled = !d.next_token;
    this.out.replaceChildren(h('table', {id: 'rows'}, h('tr', {}, d.columns.map((c) => h('th', {}, c))),
      d.rows.map((row) => h('tr', {}, row.map((v) => h('td', {class: 'mono'}, v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : v))))));
  },
};

pages.alerts = {
  init(main) { this.main = main; main.append(h('h1', {}, 'Alerts'), h('div', {id: 'alerts-body'})); },
  async tick() {
    const r = await api('/api/alerts');
    if (!r.ok) return;
    const a = r.body;
    $('#alerts-body', this.main).replaceChildren(h('div', {class: 'card'},
      h('div', {class: 'muted'}, (a.default_rules ? 'Default rules (set console.rules to change them). ' : '') +
        (a.webhook ? 'Changes are POSTed to the configured webhook.' : 'No webhook configured (console.webhook).')),
      h('table', {id: 'alerts'}, h('tr', {}, h('th', {}, 'alert'), h('th', {}, 'pipeline'), h('th', {}, 'state'), h('th', {}, 'rule'),
        h('th', {class: 'num'}, 'value'), h('th', {}, 'since'), h('th', {}, 'severity')),
      a.alerts.map((x) => h('tr', {'data-alert': x.labels.alertname, 'data-state': x.state}, h('td', {}, h('b', {}, x.labels.alertname)), h('td', {}, x.labels.pipeline),
        h('td', {}, badge(x.state)), h('td', {class: 'mono'}, x.metric + ' > ' + x.threshold + (x.for_ms ? ' for ' + x.for_ms / 1000 + ' s' : '')),
        h('td', {class: 'num'}, fmt(x.value)), h('td', {}, x.state === 'inactive' ? '' : x.startsAt), h('td', {}, x.labels.severity))))));
  },
};

function notRunning(main, title, r, what) {
  main.replaceChildren(h('h1', {}, title), h('div', {class: 'notice', id: 'not-running'},
    (r.body && r.body.error) || ('HTTP ' + r.status), h('br'), what));
}

/* ---- routing ---- */
async function show() {
  const name = (location.hash.replace(/^#\/?/, '') || 'overview').split('?')[0];
  const page = pages[name] || pages.overview;
  document.querySelectorAll('#nav a').forEach((a) => a.classList.toggle('active', a.dataset.page === name));
  const main = $('#main');
  main.replaceChildren();
  main.dataset.page = name;
  if (timer) clearTimeout(timer);
  page.init(main);
  const loop = async () => {
    try { await page.tick(); await alertBadge(); } catch (e) { const c = $('#conn'); c.textContent = 'disconnected'; c.className = 'conn bad'; }
    if (main.dataset.page === name) timer = setTimeout(loop, 1000);
  };
  loop();
}
async function alertBadge() {
  const r = await api('/api/overview');
  if (!r.ok) return;
  const n = r.body.alerts_firing, el = $('#alert-count');
  el.textContent = n; el.classList.toggle('hidden', !n);
}
window.addEventListener('hashchange', show);
/* After every script (schemas.js and dags.js add their pages) has run. */
document.addEventListener('DOMContentLoaded', show);
