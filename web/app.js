/* sluice console: one page, eight views (#/overview, #/kafka, #/dlq, #/data, #/alerts, #/schemas, #/dags, #/audit), each polling the
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
/* Text for innerHTML (the pages that draw hundreds of rows write them as one string). */
const esc = (v) => String(v === null || v === undefined ? '' : v).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]);
/* A full local timestamp with the date and milliseconds: "2026-12-07 07:14:30.123". */
const stamp = (ms) => {
  if (ms === null || ms === undefined || ms < 0) return '—';
  const d = new Date(ms), p = (n, w) => String(n).padStart(w || 2, '0');
  return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' +
    p(d.getSeconds()) + '.' + p(d.getMilliseconds(), 3);
};
/* Downloads text as a file (what a table shows). */
const download = (name, type, text) => {
  const a = h('a', {href: URL.createObjectURL(new Blob([text], {type})), download: name});
  document.body.append(a); a.click(); a.remove();
};
/* Who is looking: viewers (the read-only credential) do not get the action buttons. */
let whoami = null;
async function role() {
  if (!whoami) { const r = await api('/api/whoami'); whoami = r.ok ? r.body : {role: 'viewer'}; }
  return whoami.role;
}
/* DOM's replaceChildren turns null into the text "null": drop the empty parts first. */
const fill = (el, ...kids) => el.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false));
const tile = (k, v, field) => h('div', {class: 'tile'}, h('div', {class: 'k'}, k), h('div', {class: 'v', 'data-field': field}, v));

async function api(path) {
  const r = await fetch(path, {headers: {Accept: 'application/json'}, credentials: 'same-origin'});
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  const conn = $('#conn');
  // Credentials gone (a logout, a changed token): to the login page.
  if (r.status === 401) { conn.textContent = 'unauthorized'; conn.className = 'conn bad'; location.href = '/login'; }
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
  /* w: the canvas's CSS width when the caller already read it (reading it here after another chart's drawing would
   * force a layout per chart). */
  box.draw = (points, w) => { draw(canvas, points, series.length, w); canvas.dataset.drawn = points.length; };
  box.canvas = canvas;
  return box;
}
function niceStep(raw) {
  if (!(raw > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}
function tickLabel(v, step) {
  const digits = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step)));
  if (v >= 1e6 && step >= 1e5) return +(v / 1e6).toFixed(step >= 1e6 ? 0 : 1) + 'M';
  if (v >= 1e3 && step >= 100) return +(v / 1e3).toFixed(step >= 1e3 ? 0 : 1) + 'k';
  return v.toFixed(digits);
}
window.niceStep = niceStep; window.tickLabel = tickLabel; /* for the UI tests */
/* toLocaleTimeString builds a formatter per call (slow with 100 charts); one is made once with the same fields. */
const TIMEFMT = new Intl.DateTimeFormat(undefined, {hour: 'numeric', minute: 'numeric', second: 'numeric'});
function draw(canvas, points, nseries, cssWidth) {
  const dpr = window.devicePixelRatio || 1;
  /* The height is the stylesheet's (170px): reading it would force a layout. */
  const w = cssWidth || canvas.clientWidth || 400, hgt = 170;
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
  /* Round ticks (1, 2 or 5 times a power of ten), so the axis reads 2k, 4k, 6k and not 3642.4, 7284.8. */
  const step = niceStep(max / 4);
  max = Math.max(step, Math.ceil(max / step) * step);
  for (let v = 0; v <= max + step / 2; v += step) {
    const y = Y(v);
    g.beginPath(); g.moveTo(padL, y); g.lineTo(w - padR, y); g.stroke();
    g.fillText(tickLabel(v, step), 4, y + 3);
  }
  if (points.length) {
    const d = new Date(t0), e = new Date(t1);
    g.fillText(TIMEFMT.format(d), padL, hgt - 4);
    const s = TIMEFMT.format(e);
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
    this.main = main; this.cards = {}; this.hist = {}; this.since = 0; this.range = 0; this.rangeAt = 0;
    /* Cards off screen keep their charts undrawn until they come within 300 px of the viewport. */
    this.byEl = new Map();
    if (this.io) this.io.disconnect();
    this.io = new IntersectionObserver((entries) => {
      const due = [];
      for (const e of entries) {
        const c = this.byEl.get(e.target);
        if (!c) continue;
        c.visible = e.isIntersecting;
        if (c.visible && c.dirty) due.push(c);
      }
      this.drawCharts(due);
    }, {rootMargin: '300px 0px'});
    /* The charts' time range: live is the in-memory history (every sample); longer ranges come from console.db,
     * averaged to 600 points, and are re-read every 10 s. */
    this.picker = h('select', {id: 'o-range', onchange: () => { this.range = Number(this.picker.value); this.rangeAt = 0; this.hist = {}; this.since = 0; this.tick(); }},
      h('option', {value: 0}, 'live'), h('option', {value: 3600000}, 'last 1 h'), h('option', {value: 21600000}, 'last 6 h'),
      h('option', {value: 86400000}, 'last 24 h'));
    main.append(h('h1', {}, 'Overview ', h('label', {class: 'muted small'}, 'charts: ', this.picker)), h('div', {id: 'pipelines'}));
  },
  async history() {
    if (!this.range) return api('/api/history?since=' + this.since);
    if (Date.now() - this.rangeAt < 10000) return {ok: false};
    this.rangeAt = Date.now();
    const r = await api('/api/history?points=600&from=' + (Date.now() - this.range));
    if (r.ok) this.hist = {};
    return r;
  },
  async tick() {
    const [ov, hi] = await Promise.all([api('/api/overview'), this.history()]);
    if (!ov.ok) return;
    const t0 = performance.now();
    const o = ov.body;
    $('#footer').textContent = 'log: ' + o.log + ' · sink: ' + o.sink + (o.in_process ? ' · in-process metrics' : ' · pipelines run in other processes') +
      (o.log_ok ? '' : ' · ' + o.log_error);
    if (hi.ok) {
      for (const [name, rows] of Object.entries(hi.body.pipelines)) {
        const a = (this.hist[name] = (this.hist[name] || []).concat(rows));
        if (!this.range && a.length > 900) a.splice(0, a.length - 900);
        if (rows.length) this.since = Math.max(this.since, rows[rows.length - 1][0]);
      }
    }
    /* Drawing 50 cards cheaply: new cards go in with one insert; a card's text is rebuilt only when its data changed,
     * its charts only when its points changed; charts are drawn only for cards on screen (the first screenful at
     * once, the others when they scroll into view: the IntersectionObserver below), and the canvases' widths are all
     * read before any is drawn, so that the page is laid out once and not once per chart. */
    const fresh = document.createDocumentFragment(), added = [];
    for (const p of o.pipelines) {
      let c = this.cards[p.name];
      if (!c) {
        c = this.cards[p.name] = {
          el: h('div', {class: 'card pipeline-card', 'data-pipeline': p.name}), top: h('div', {}), bottom: h('div', {}),
          rate: chart('records/s', ['in (topic)', 'out (committed)']),
          lag: chart('consumer lag (records)', ['lag']),
          key: '', sig: '', pts: [], dirty: false, visible: false,
        };
        c.el.append(c.top, h('div', {class: 'charts'}, c.rate, c.lag), c.bottom);
        this.byEl.set(c.el, c);
        fresh.append(c.el);
        added.push(c);
      }
      const key = JSON.stringify(p);
      if (key !== c.key) {
        c.key = key;
        const errs = p.log_error || p.sink_error;
        /* One status from everything the console knows (group, error rate, dead letters, alerts, reachability), with
         * its reasons; the consumer group's own status is one tile among the others. */
        fill(c.top,
          h('h2', {}, p.name, h('span', {class: 'badge b-' + p.health, 'data-field': 'health'}, p.health), h('span', {class: 'muted mono'}, p.topic + ' → ' + p.table)),
          p.health_reasons && p.health_reasons.length ? h('ul', {class: 'reasons', 'data-field': 'health_reasons'},
            p.health_reasons.map((x) => h('li', {class: 'r-' + x.level}, x.text))) : null,
          h('div', {class: 'tiles'},
            tile('in / s', fmt(p.in_rate), 'in_rate'), tile('out / s', fmt(p.out_rate), 'out_rate'),
            tile('in topic', fmt(p.in_total), 'in_total'), tile('committed', fmt(p.out_total), 'out_total'),
            tile('consumer group', badge(p.status), 'status'), tile('lag', fmt(p.lag), 'lag'), tile('lag (time)', secs(p.lag_seconds), 'lag_seconds'),
            tile('table rows', fmt(p.table_rows), 'table_rows'), tile('errors', fmt(p.errors), 'errors'),
            tile('retries', fmt(p.retries), 'retries'), tile('dead letters', fmt(p.dlq), 'dlq'),
            tile('e2e p95', secs(p.e2e_p95), 'e2e_p95'), tile('error rate', (p.error_rate * 100).toFixed(2) + '%', 'error_rate')));
        fill(c.bottom, errs ? h('div', {class: 'err'}, errs) : null);
      }
      const pts = this.hist[p.name] || [];
      const sig = pts.length + ':' + (pts.length ? pts[0][0] + '-' + pts[pts.length - 1][0] : '');
      if (sig !== c.sig) { c.sig = sig; c.pts = pts; c.dirty = true; c.el.dataset.points = pts.length; }
    }
    if (added.length) {
      $('#pipelines', this.main).append(fresh);
      /* Which new cards are on screen now (one layout for all of them); the observer reports later changes. */
      const vh = window.innerHeight;
      for (const c of added) { const r = c.el.getBoundingClientRect(); c.visible = r.bottom > 0 && r.top < vh; this.io.observe(c.el); }
    }
    this.drawCharts(Object.values(this.cards).filter((c) => c.dirty && c.visible));
    /* The script's part of drawing (the browser's layout and paint come after): tests/ui/scale.test.mjs prints it. */
    performance.measure('overview:draw', {start: t0, end: performance.now()});
  },
  /* Reads every width first, then draws: a canvas's new size between two reads would force a layout each time. */
  drawCharts(cards) {
    if (!cards.length) return;
    const widths = cards.map((c) => [c.rate.canvas.clientWidth, c.lag.canvas.clientWidth]);
    cards.forEach((c, i) => {
      c.dirty = false;
      c.rate.draw(c.pts.map((r) => [r[0], r[1], r[2]]), widths[i][0]);
      c.lag.draw(c.pts.map((r) => [r[0], r[3]]), widths[i][1]);
    });
  },
};

pages.kafka = {
  init(main) {
    this.main = main; this.drawn = '';
    this.browser = h('div', {class: 'card', id: 'browser'});
    this.cfgCard = h('div', {class: 'card', id: 'topic-config'});
    main.append(h('h1', {}, 'Kafka'), h('div', {id: 'kafka-body'}), this.browser, this.cfgCard);
    this.buildBrowser();
    this.operator = false;
    this.buildConfig();
    role().then((r) => { this.operator = r === 'operator'; if (this.operator) main.append(this.buildActions()); });
  },
  /* A topic's configuration (every entry, defaults marked) and, for operators, changing an entry, returning it to
   * its default, and adding partitions; each change audited. The embedded log applies retention.ms alone. */
  buildConfig() {
    const t = h('input', {id: 'k-c-topic', placeholder: 'topic'}), out = h('div', {id: 'k-c-out', class: 'scroll'}), msg = h('div', {id: 'k-c-msg', class: 'muted'});
    const parts = h('input', {id: 'k-c-parts', type: 'number', min: 1}), add = h('button', {class: 'secondary', id: 'k-c-add'}, 'Add partitions');
    const addRow = h('div', {class: 'row hidden'}, h('label', {}, 'partitions (the new total)', parts), add);
    const say = (text, bad) => { msg.textContent = text; msg.className = bad ? 'err' : 'muted'; };
    const load = async () => {
      const topic = t.value.trim();
      if (!topic) return;
      const r = await api('/api/kafka/topics/config?topic=' + encodeURIComponent(topic));
      if (!r.ok) { out.replaceChildren(); say(errText(r), true); return; }
      const k = await api('/api/kafka'), info = k.ok ? k.body.topics.find((x) => x.name === topic) : null;
      const n = info ? info.partitions.length : null;
      this.cfgTopic = topic; this.cfgParts = n;
      addRow.classList.toggle('hidden', !this.operator);
      parts.value = n ? n + 1 : 1;
      out.dataset.topic = topic;
      out.replaceChildren(h('div', {class: 'muted'}, topic + ': ' + (n === null ? '?' : n) + ' partitions · ' + r.body.backend + (r.body.backend === 'embedded' ? ' (applies retention.ms alone)' : '')),
        h('table', {id: 'k-configs'}, h('tr', {}, h('th', {}, 'name'), h('th', {}, 'value'), h('th', {}, ''), h('th', {})),
          r.body.configs.map((c) => {
            const v = h('input', {value: c.value === null ? '' : c.value, size: 24, 'data-config': c.name, disabled: !this.operator || c.read_only || c.sensitive});
            const set = async (value) => {
              const x = await send('POST', '/api/kafka/topics/config', {topic, name: c.name, value});
              say(x.ok ? c.name + (value === null ? ' back to its default' : ' = ' + value) : errText(x), !x.ok);
              if (x.ok) await load();
            };
            return h('tr', {'data-config': c.name}, h('td', {class: 'mono'}, c.name), h('td', {}, v),
              h('td', {class: 'muted small', 'data-field': 'default'}, c.sensitive ? 'sensitive' : c.read_only ? 'read-only' : c.default ? 'default' : 'set'),
              h('td', {class: 'nowrap'}, this.operator && !c.read_only && !c.sensitive ? [
                h('button', {class: 'secondary small', 'data-action': 'set', onclick: () => set(v.value)}, 'Set'), ' ',
                c.default ? null : h('button', {class: 'secondary small', 'data-action': 'default', onclick: () => set(null)}, 'Default')] : null));
          })));
    };
    add.addEventListener('click', async () => {
      const total = Number(parts.value);
      if (!confirm('Raise ' + this.cfgTopic + ' from ' + this.cfgParts + ' to ' + total + ' partitions? Keys hash over the new count from then on; partitions cannot be removed.')) return;
      const r = await send('POST', '/api/kafka/topics/partitions', {topic: this.cfgTopic, partitions: total});
      say(r.ok ? this.cfgTopic + ': ' + r.body.partitions_before + ' → ' + r.body.partitions + ' partitions' : errText(r), !r.ok);
      if (r.ok) await load();
    });
    t.addEventListener('keydown', (e) => { if (e.key === 'Enter') load(); });
    this.cfgCard.append(h('h2', {}, 'Topic configuration'),
      h('div', {class: 'row'}, h('label', {}, 'topic', t), h('button', {class: 'secondary', id: 'k-c-show', onclick: load}, 'Show')), addRow, msg, out);
  },
  /* The operator's actions (audited): create a topic, produce a test message. Viewers do not get the card. */
  buildActions() {
    const msg = h('div', {id: 'k-msg', class: 'muted'});
    const say = (r, ok) => { msg.className = r.ok ? 'muted' : 'err'; msg.textContent = r.ok ? ok(r.body) : errText(r); };
    const ct = h('input', {id: 'k-new-topic', placeholder: 'topic name'}), cp = h('input', {id: 'k-new-parts', type: 'number', min: 1, value: 1}),
      pt = h('input', {id: 'k-p-topic', placeholder: 'topic'}), pp = h('input', {id: 'k-p-part', type: 'number', min: -1, value: -1}),
      pk = h('input', {id: 'k-p-key', placeholder: 'key (optional)'}), pv = h('textarea', {id: 'k-p-value', rows: 3, placeholder: 'value'}),
      ph = h('input', {id: 'k-p-headers', placeholder: 'headers as JSON, e.g. {"trace":"abc"}'});
    return h('div', {class: 'card', id: 'kafka-actions'}, h('h2', {}, 'Actions'),
      h('div', {class: 'row'}, h('label', {}, 'new topic', ct), h('label', {}, 'partitions', cp),
        h('button', {id: 'k-create', onclick: async () => {
          const r = await send('POST', '/api/kafka/topics', {topic: ct.value, partitions: Number(cp.value)});
          say(r, (b) => 'Created ' + b.topic + ' with ' + b.partitions + ' partition' + (b.partitions === 1 ? '' : 's') + '.');
        }}, 'Create topic')),
      h('div', {class: 'row'}, h('label', {}, 'topic', pt), h('label', {}, 'partition (-1: by key)', pp), h('label', {}, 'key', pk)),
      h('div', {class: 'row'}, h('label', {class: 'grow'}, 'value', pv), h('label', {class: 'grow'}, 'headers', ph),
        h('button', {id: 'k-produce', onclick: async () => {
          let headers = null;
          try { headers = ph.value.trim() ? JSON.parse(ph.value) : null; } catch (e) { msg.className = 'err'; msg.textContent = 'headers: not JSON'; return; }
          const r = await send('POST', '/api/kafka/produce', {topic: pt.value, partition: Number(pp.value) >= 0 ? Number(pp.value) : null,
            key: pk.value === '' ? null : pk.value, value: pv.value, headers});
          say(r, (b) => 'Produced to ' + b.topic + ' [' + b.partition + '] at offset ' + b.offset + '.');
        }}, 'Produce')),
      this.buildReset(msg),
      msg);
  },
  /* Reset a consumer group's offsets: a dry run first shows the effect per partition, then Reset asks to confirm. */
  buildReset(msg) {
    const g = h('input', {id: 'k-r-group', placeholder: 'consumer group'}), t = h('input', {id: 'k-r-topic', placeholder: 'topic'}),
      to = h('select', {id: 'k-r-to'}, ['earliest', 'latest', 'time', 'offset'].map((x) => h('option', {value: x}, x))),
      when = h('input', {id: 'k-r-time', type: 'datetime-local', step: 1}), off = h('input', {id: 'k-r-offset', type: 'number', min: 0, value: 0}),
      out = h('div', {id: 'k-r-out'});
    const body = (dry) => ({group: g.value, topic: t.value, to: to.value, dry_run: dry,
      timestamp: to.value === 'time' && when.value ? new Date(when.value).getTime() : null, offset: to.value === 'offset' ? Number(off.value) : null});
    const show = (d) => out.replaceChildren(h('table', {id: 'k-r-effect'}, h('tr', {}, ['partition', 'current', 'new', 'change', 'lag after'].map((x) => h('th', {class: 'num'}, x))),
      d.partitions.map((p) => h('tr', {'data-partition': p.partition}, h('td', {class: 'num'}, p.partition), h('td', {class: 'num'}, p.current === null ? '—' : p.current),
        h('td', {class: 'num', 'data-field': 'new'}, p.new), h('td', {class: 'num'}, (p.change > 0 ? '+' : '') + p.change), h('td', {class: 'num'}, p.lag_after)))),
      d.note ? h('div', {class: 'muted'}, d.note) : null);
    return h('div', {}, h('div', {class: 'row'}, h('label', {}, 'group', g), h('label', {}, 'topic', t), h('label', {}, 'reset to', to),
      h('label', {}, 'time', when), h('label', {}, 'offset', off),
      h('button', {id: 'k-r-dry', class: 'secondary', onclick: async () => {
        const r = await send('POST', '/api/kafka/groups/reset', body(true));
        msg.className = r.ok ? 'muted' : 'err'; msg.textContent = r.ok ? 'Dry run: nothing changed yet.' : errText(r);
        if (r.ok) show(r.body);
      }}, 'Dry run'),
      h('button', {id: 'k-r-apply', onclick: async () => {
        const dry = await send('POST', '/api/kafka/groups/reset', body(true));
        if (!dry.ok) { msg.className = 'err'; msg.textContent = errText(dry); return; }
        show(dry.body);
        const moved = dry.body.partitions.reduce((a, p) => a + p.change, 0);
        if (!window.confirm('Reset ' + g.value + ' on ' + t.value + ' to ' + to.value + ' (' + dry.body.partitions.length + ' partitions, ' + (moved > 0 ? '+' : '') + moved + ' offsets)?')) return;
        const r = await send('POST', '/api/kafka/groups/reset', body(false));
        msg.className = r.ok ? 'muted' : 'err'; msg.textContent = r.ok ? 'Reset ' + g.value + ' on ' + t.value + ' to ' + to.value + '.' : errText(r);
      }}, 'Reset offsets')), out);
  },
  buildBrowser() {
    const topic = h('select', {id: 'b-topic'}), part = h('input', {id: 'b-part', type: 'number', min: -1, value: -1}),
      order = h('select', {id: 'b-order'}, h('option', {value: 'newest'}, 'newest first'), h('option', {value: 'offset'}, 'from offset'),
        h('option', {value: 'time'}, 'from time')),
      off = h('input', {id: 'b-offset', type: 'number', min: 0, value: 0}),
      when = h('input', {id: 'b-time', type: 'datetime-local', step: 1}),
      q = h('input', {id: 'b-q', type: 'search', placeholder: 'text in key or value (Avro: in the decoded JSON)'}),
      limit = h('input', {id: 'b-limit', type: 'number', min: 1, max: 500, value: 50}),
      tail = h('input', {id: 'b-tail', type: 'checkbox'}),
      out = h('div', {id: 'b-out'});
    let shown = [];
    const url = () => {
      let u = '/api/kafka/messages?topic=' + encodeURIComponent(topic.value) + '&partition=' + part.value +
        '&limit=' + limit.value + '&q=' + encodeURIComponent(q.value);
      if (order.value === 'newest' || tail.checked) u += '&offset=latest';
      else if (order.value === 'time' && when.value) u += '&timestamp=' + new Date(when.value).getTime();
      else u += '&offset=' + off.value;
      return u;
    };
    const render = (r) => {
      const m = r.body.messages;
      shown = m;
      lastBody = r.body;
      out.replaceChildren(h('div', {class: 'muted', id: 'b-info'}, m.length + ' messages (' + (r.body.order === 'newest' ? 'newest first' : 'oldest first') +
          ', scanned ' + r.body.scanned + (r.body.next_offset !== null ? ', next offset ' + r.body.next_offset : '') + ')' + (tail.checked ? ' · ' + tailNote : ''),
          ' ', h('button', {class: 'secondary', id: 'b-download', onclick: () => download(topic.value + '.json', 'application/json', JSON.stringify(shown, null, 1))}, 'Download shown')),
        h('div', {class: 'scroll'}, h('table', {id: 'b-table'}, h('tr', {}, h('th', {class: 'num'}, 'partition'), h('th', {class: 'num'}, 'offset'), h('th', {}, 'time'), h('th', {}, 'key'), h('th', {}, 'value'), h('th', {}, 'headers')),
          m.map((x) => h('tr', {'data-offset': x.offset}, h('td', {class: 'num'}, x.partition), h('td', {class: 'num'}, x.offset),
            h('td', {class: 'mono nowrap', 'data-field': 'time'}, stamp(x.timestamp)), h('td', {class: 'mono'}, x.key || ''),
            h('td', {class: 'mono val', 'data-schema-id': x.value_schema_id, onclick: (e) => e.currentTarget.classList.toggle('open')},
              x.value_schema_id !== undefined ? h('span', {class: 'chip avro', 'data-format': x.value_format || 'avro', title: (x.value_format || 'avro') + ', decoded with the registry\'s schema ' + x.value_schema_id}, (x.value_format || 'avro') + ' #' + x.value_schema_id) : null,
              x.value_error ? h('span', {class: 'chip bad', title: x.value_error}, 'not decoded') : null,
              x.value_error ? h('div', {class: 'err', 'data-field': 'value-error'}, 'raw bytes below: ' + x.value_error) : null,
              pretty(x.value)),
            h('td', {class: 'mono hdrs', 'data-field': 'headers'}, (x.headers || []).map(([k, v]) => h('div', {}, h('b', {}, k), ' ', v))))))));
    };
    const go = async () => {
      out.replaceChildren(h('div', {class: 'muted'}, 'reading…'));
      const r = await api(url());
      if (!r.ok) { out.replaceChildren(h('div', {class: 'err', id: 'b-error'}, (r.body && r.body.error) || ('HTTP ' + r.status))); return; }
      render(r);
    };
    // The live tail: the newest `limit` messages once, then the server pushes each new one (server-sent events,
    // GET /api/kafka/tail); the newest `limit` rows are kept (at most 500). The server ends a tail after its
    // tail_max_time ("end"), and refuses one past max_tails (503: EventSource gives up).
    let es = null, tailNote = '', lastBody = null;
    const stopTail = (note) => { if (es) { es.close(); es = null; } tailNote = note; };
    const startTail = async () => {
      stopTail('live tail: connecting');
      await go();
      if (!tail.checked) return;
      const t = topic.value, p = Number(part.value);
      es = new EventSource('/api/kafka/tail?topic=' + encodeURIComponent(t) + (p >= 0 ? '&partition=' + p : ''));
      es.addEventListener('open', () => { tailNote = 'live tail (pushed by the server)'; if (lastBody) render({body: lastBody}); });
      es.addEventListener('message', (e) => {
        if (!document.body.contains(tail) || !tail.checked) { stopTail(''); return; }
        const x = JSON.parse(e.data), text = q.value;
        if (text && !((x.key || '').includes(text) || (x.value || '').includes(text))) return;
        const keep = Math.min(500, Math.max(1, Number(limit.value) || 50));
        const rows = [x, ...shown].slice(0, keep);
        render({body: Object.assign({}, lastBody || {}, {messages: rows, order: 'newest', scanned: rows.length, next_offset: null})});
      });
      es.addEventListener('end', (e) => { stopTail('live tail ended (' + JSON.parse(e.data).reason + '): untick and tick to resume'); if (lastBody) render({body: lastBody}); });
      es.onerror = () => {
        if (es && es.readyState === EventSource.CLOSED) {
          stopTail('live tail refused (too many open, or the topic is gone)');
          if (lastBody) render({body: lastBody});
        }
      };
    };
    tail.addEventListener('change', () => { if (tail.checked) startTail(); else { stopTail(''); go(); } });
    this.topicSelect = topic;
    this.browser.append(h('h2', {}, 'Message browser'),
      h('div', {class: 'row'}, h('label', {}, 'topic', topic), h('label', {}, 'partition (-1 all)', part),
        h('label', {}, 'read', order), h('label', {}, 'from offset', off), h('label', {}, 'from time', when),
        h('label', {}, 'limit', limit), h('label', {}, 'search', q), h('label', {}, 'live tail', tail),
        h('button', {id: 'b-go', onclick: go}, 'Browse')), out);
    q.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
  },
  async tick() {
    const r = await api('/api/kafka');
    if (!r.ok) return;
    const k = r.body, body = $('#kafka-body', this.main), t0 = performance.now();
    /* Hundreds of topics: the selector and the tables are written as one HTML string each (one parse, no node-by-node
     * inserts), and not at all when the answer draws the same as the last one (every poll otherwise). */
    if (this.topicSelect.options.length !== k.topics.length) {
      const cur = this.topicSelect.value;
      this.topicSelect.innerHTML = k.topics.map((t) => '<option value="' + esc(t.name) + '"' + (t.name === cur ? ' selected' : '') + '>' + esc(t.name) + '</option>').join('');
    }
    const kafka = k.backend === 'kafka';
    const td = (cls, v, field) => '<td' + (cls ? ' class="' + cls + '"' : '') + (field ? ' data-field="' + field + '"' : '') + '>' + esc(v) + '</td>';
    const badgeHTML = (st) => '<span class="badge b-' + esc(st) + '">' + esc(st) + '</span>';
    const html = (k.ok ? '' : '<div class="card err">' + esc(k.error) + '</div>') +
      '<div class="card lazy"><h2>Consumer groups</h2>' + k.groups.map((g) => '<div class="group" data-group="' + esc(g.group) + '"><h3>' +
        esc(g.group + ' on ' + g.topic + ' ') + badgeHTML(g.status) + '<span class="muted"> lag <b data-field="group-lag">' + esc(g.lag) +
        '</b>' + esc(' · status over the last ' + g.window + ' commits per partition (Burrow rules)') + '</span></h3>' +
        '<table><tr><th class="num">partition</th><th class="num">committed</th><th class="num">high watermark</th><th class="num">lag</th>' +
        '<th>status</th><th>last commit</th><th>commits in window</th></tr>' +
        g.partitions.map((p) => '<tr>' + td('num', p.partition) + td('num', p.committed < 0 ? '—' : p.committed) + td('num', p.high) +
          td('num', p.lag, 'lag') + '<td>' + badgeHTML(p.status) + '</td>' + td('', ago(p.last_commit_ago_ms)) + td('muted', p.commits.length) + '</tr>').join('') +
        '</table></div>').join('') + '</div>' +
      '<div class="card"><h2>' + (kafka ? 'Brokers' : 'Log') + '</h2>' + (kafka
        ? '<table><tr><th>id</th><th>host</th><th>port</th></tr>' + k.brokers.map((b) => '<tr>' + td('', b.id) + td('', b.host) + td('', b.port) + '</tr>').join('') + '</table>'
        : '<div class="muted">The embedded log (SQLite in data_dir) — one node, every partition local.</div>') + '</div>' +
      '<div class="card lazy"><h2>Topics</h2><table id="topics"><tr><th>topic</th><th class="num">partitions</th><th class="num">messages</th><th>' +
        esc('partition: low … high' + (kafka ? ' (leader, ISR)' : '')) + '</th></tr>' +
        k.topics.map((t) => '<tr data-topic="' + esc(t.name) + '">' + td('mono', t.name) + td('num', t.partitions.length) + td('num', t.messages) +
          td('mono', t.partitions.map((p) => p.partition + ': ' + p.low + '…' + p.high + (p.leader !== undefined ? ' (' + p.leader + ', [' + p.isr + '])' : '')).join('   ')) +
          '</tr>').join('') + '</table></div>';
    if (html !== this.drawn) { this.drawn = html; body.innerHTML = html; }
    performance.measure('kafka:draw', {start: t0, end: performance.now()});
  },
};
function pretty(v) {
  if (v === null || v === undefined) return '';
  try { return JSON.stringify(JSON.parse(v), null, 1).replace(/\n\s*/g, ' '); } catch (e) { return v; }
}

/* The data page pages with the API's tokens: next_token continues after the page shown; the tokens of the pages
 * before are kept here so "newer" can go back. What is shown is a snapshot: nothing reloads it until the user
 * refreshes, pages, filters or picks another table (rows do not move while they are read). A filter on the partition
 * key shows that partition's rows; CSV exports what is shown. */
pages.data = {
  init(main) {
    this.main = main; this.tokens = [null]; this.size = 20; this.pipeline = null; this.key = ''; this.shown = false; this.shownRows = null;
    this.sel = h('select', {id: 'd-pipeline', onchange: () => { this.pick(); this.reset(); }});
    this.prev = h('button', {class: 'secondary', id: 'd-prev', onclick: () => { if (this.tokens.length > 1) { this.tokens.pop(); this.load(); } }}, '← back');
    this.next = h('button', {class: 'secondary', id: 'd-next', onclick: () => { if (this.nextToken) { this.tokens.push(this.nextToken); this.load(); } }}, 'next →');
    this.refresh = h('button', {class: 'secondary', id: 'd-refresh', onclick: () => this.reset()}, '↻ refresh');
    this.keyIn = h('input', {id: 'd-key', size: 38, placeholder: 'partition key value'});
    this.keyIn.addEventListener('keydown', (e) => { if (e.key === 'Enter') this.filter(); });
    this.keyLabel = h('span', {}, 'filter on the partition key');
    const apply = h('button', {class: 'secondary', id: 'd-filter', onclick: () => this.filter()}, 'filter');
    const clear = h('button', {class: 'secondary', id: 'd-clear', onclick: () => { this.keyIn.value = ''; this.filter(); }}, 'clear');
    this.csv = h('button', {class: 'secondary', id: 'd-csv', onclick: () => this.exportCSV()}, 'export CSV');
    this.info = h('span', {class: 'muted', id: 'd-info'});
    this.snap = h('span', {class: 'muted small', id: 'd-snap'});
    this.out = h('div', {id: 'd-out', class: 'scroll'});
    main.append(h('h1', {}, 'Data'), h('div', {class: 'card', id: 'd-card'},
      h('div', {class: 'row'}, h('label', {}, 'table', this.sel), h('label', {}, this.keyLabel, this.keyIn), apply, clear),
      h('div', {class: 'row'}, this.prev, this.next, this.refresh, this.csv, this.info, this.snap), this.out));
  },
  async tick() {
    const r = await api('/api/data');
    if (!r.ok) return;
    this.tables = r.body.tables;
    if (this.sel.options.length !== r.body.tables.length) {
      // One entry per output: the pipeline's own table (main) and each of its outputs: (docs/processing.md).
      this.sel.replaceChildren(...r.body.tables.map((t) => h('option', {value: this.optKey(t)}, t.keyspace + '.' + t.table + '  (' + t.pipeline +
        (t.output && t.output !== 'main' ? ' → ' + t.output : '') + ', ' + t.sink + ')')));
      this.pick();
    }
    this.table = r.body.tables.find((x) => x.pipeline === this.pipeline && (x.output || 'main') === this.output);
    // The first answer draws the first page; after that only the user reloads it (the snapshot stays put).
    if (!this.shown) await this.load();
  },
  // An option's value: the pipeline's name for its own table, pipeline/output for one of its outputs.
  optKey(t) { return t.output && t.output !== 'main' ? t.pipeline + '/' + t.output : t.pipeline; },
  pick() {
    const t = this.tables && this.tables.find((x) => this.optKey(x) === this.sel.value);
    if (t) { this.pipeline = t.pipeline; this.output = t.output || 'main'; }
  },
  reset() { this.tokens = [null]; this.load(); },
  filter() { this.key = this.keyIn.value.trim(); this.reset(); },
  async load() {
    if (!this.pipeline) return;
    // Only the latest request may draw: a slower answer for the table or page shown before must not overwrite it.
    const seq = this.seq = (this.seq || 0) + 1;
    const tok = this.tokens[this.tokens.length - 1];
    const r = await api('/api/data/rows?pipeline=' + encodeURIComponent(this.pipeline) + '&output=' + encodeURIComponent(this.output || 'main') +
      '&size=' + this.size + (tok ? '&token=' + tok : '') + (this.key ? '&key=' + encodeURIComponent(this.key) : ''));
    if (seq !== this.seq) return;
    this.shown = true;
    if (!r.ok) { this.shownRows = null; this.out.replaceChildren(h('div', {class: 'notice', id: 'd-error'}, (r.body && r.body.error) || ('HTTP ' + r.status))); return; }
    const d = r.body, t = this.table;
    this.nextToken = d.next_token;
    this.shownRows = d;
    const ag = t && t.aggregate;
    this.keyLabel.textContent = d.partition_key ? 'filter on ' + d.partition_key + ' (partition key)' : 'filter on the partition key';
    this.info.textContent = (d.key !== null ? 'partition ' + d.partition_key + ' = ' + d.key + ': ' + d.rows.length + ' rows' :
      (t && t.rows !== null ? t.rows + ' rows · ' : '') + 'page ' + this.tokens.length +
      (d.order === 'token' ? ' (Cassandra token order)' : ' (newest first)')) +
      (ag ? ' · aggregate (' + (ag.final ? 'final rows' : 'updated rows') + ')' +
        (ag.watermark_seconds !== null ? ': watermark ' + (ag.watermark_seconds ? new Date(ag.watermark_seconds * 1000).toISOString() : 'none') +
          ', ' + ag.open_windows + ' open windows, ' + ag.late_records + ' late records' : '') : '');
    this.snap.textContent = 'snapshot of ' + stamp(d.snapshot_ms) + ' — ↻ refresh for newer rows';
    this.info.dataset.page = this.tokens.length;
    this.info.dataset.pipeline = this.pipeline; // which table is drawn (tests wait on it, not on the row count)
    this.info.dataset.key = d.key || '';
    this.snap.dataset.snapshot = d.snapshot_ms;
    this.prev.disabled = this.tokens.length === 1; this.next.disabled = !d.next_token;
    const types = Object.fromEntries((d.schema || []).map((c) => [c.name, c]));
    this.out.replaceChildren(h('table', {id: 'rows'}, h('tr', {}, d.columns.map((c) => {
      const ty = types[c];
      return h('th', {'data-column': c, class: 'nowrap'}, c, ty ? h('span', {class: 'ctype', 'data-type': ty.type}, ty.type.toLowerCase() + (ty.partition ? ' · partition key' : ty.key ? ' · key' : '')) : null);
    })),
    d.rows.map((row) => h('tr', {}, row.map((v) => h('td', {class: 'mono nowrap'}, cellText(v)))))));
  },
  // What is shown, as CSV (RFC 4180: fields with a comma, quote or newline quoted, quotes doubled).
  exportCSV() {
    const d = this.shownRows;
    if (!d) return;
    const q = (v) => { const s = cellText(v); return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s; };
    const lines = [d.columns.map(q).join(',')].concat(d.rows.map((r) => r.map(q).join(',')));
    download(d.table + (d.key !== null ? '-' + d.partition_key + '-' + d.key : '-page' + this.tokens.length) + '.csv', 'text/csv', lines.join('\r\n') + '\r\n');
  },
};
function cellText(v) { return v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v); }

/* Dead letters: why each record failed (stage, reason), where it came from, filtered by reason; replay one, a
 * selection, or all that match, after a confirmation that says how many (a dry run counts them first). */
pages.dlq = {
  init(main) {
    this.main = main; this.reason = ''; this.pipeline = null;
    this.sel = h('select', {id: 'q-pipeline', onchange: () => { this.pipeline = this.sel.value; this.reason = ''; this.load(); }});
    this.reasons = h('select', {id: 'q-reason', onchange: () => { this.reason = this.reasons.value; this.load(); }});
    this.status = h('div', {id: 'q-status', class: 'muted'});
    this.out = h('div', {id: 'q-out'});
    this.btnSel = h('button', {id: 'q-replay-selected', onclick: () => this.replay(false)}, 'Replay selected');
    this.btnAll = h('button', {id: 'q-replay-all', class: 'secondary', onclick: () => this.replay(true)}, 'Replay all matching');
    main.append(h('h1', {}, 'Dead letters'), h('div', {class: 'card'},
      h('div', {class: 'row'}, h('label', {}, 'pipeline', this.sel), h('label', {}, 'reason', this.reasons),
        h('button', {class: 'secondary', id: 'q-refresh', onclick: () => this.load()}, 'Refresh'), this.btnSel, this.btnAll),
      this.status, this.out));
    role().then((r) => { if (r !== 'operator') { this.btnSel.remove(); this.btnAll.remove(); } });
  },
  async tick() {
    if (this.pipeline) return; // loaded once; Refresh re-reads (rows do not move while being read)
    const r = await api('/api/overview');
    if (!r.ok) return;
    this.sel.replaceChildren(...r.body.pipelines.map((p) => h('option', {value: p.name}, p.name + ' (' + p.dlq_topic + ')')));
    const want = new URLSearchParams(location.hash.split('?')[1] || '').get('pipeline');
    if (want) this.sel.value = want;
    this.pipeline = this.sel.value;
    await this.load();
  },
  async load() {
    if (!this.pipeline) return;
    const r = await api('/api/dlq?pipeline=' + encodeURIComponent(this.pipeline) + '&limit=200&reason=' + encodeURIComponent(this.reason));
    if (!r.ok) { this.out.replaceChildren(h('div', {class: 'err'}, errText(r))); return; }
    const d = r.body;
    if (!this.reason) {
      this.reasons.replaceChildren(h('option', {value: ''}, 'every reason'),
        ...d.reasons.map((x) => h('option', {value: x.match}, x.count + ' × ' + x.reason)));
    }
    this.reasons.value = this.reason;
    this.out.dataset.count = d.messages.length;
    this.out.replaceChildren(d.messages.length ? h('div', {class: 'scroll'}, h('table', {id: 'dlq'},
      h('tr', {}, h('th', {}, h('input', {type: 'checkbox', id: 'q-all', onchange: (e) => this.out.querySelectorAll('input.pick').forEach((c) => { c.checked = e.target.checked; })})),
        h('th', {class: 'num'}, 'offset'), h('th', {}, 'time'), h('th', {}, 'stage'), h('th', {}, 'reason'), h('th', {}, 'came from'), h('th', {}, 'record')),
      d.messages.map((x) => {
        const q = x.dlq || {};
        const from = q.topic ? q.topic + ' [' + q.partition + '] @' + q.offset : (q.offset !== null && q.offset !== undefined ? 'source record ' + q.offset : '—');
        return h('tr', {'data-offset': x.offset, 'data-stage': q.stage},
          h('td', {}, h('input', {type: 'checkbox', class: 'pick', value: x.offset})), h('td', {class: 'num'}, x.offset),
          h('td', {class: 'mono nowrap'}, stamp(x.timestamp)), h('td', {}, h('span', {class: 'chip'}, q.stage || '?')),
          h('td', {class: 'reason', 'data-field': 'reason'}, q.reason || '(no reason header)'), h('td', {class: 'mono nowrap', 'data-field': 'from'}, from),
          h('td', {class: 'mono val', onclick: (e) => e.currentTarget.classList.toggle('open')}, pretty(x.value)));
      }))) : h('div', {class: 'muted', id: 'q-empty'}, 'No dead letters' + (this.reason ? ' with this reason.' : '.')));
  },
  async replay(all) {
    const offsets = [...this.out.querySelectorAll('input.pick:checked')].map((c) => Number(c.value));
    if (!all && !offsets.length) { this.status.textContent = 'Select dead letters first.'; return; }
    const body = all ? {pipeline: this.pipeline, all: true, reason: this.reason} : {pipeline: this.pipeline, offsets};
    const dry = await send('POST', '/api/dlq/replay', Object.assign({dry_run: true}, body));
    if (!dry.ok) { this.status.textContent = 'Replay refused: ' + errText(dry); this.status.className = 'err'; return; }
    if (!window.confirm('Replay ' + dry.body.matched + ' dead letter' + (dry.body.matched === 1 ? '' : 's') + ' of ' + this.pipeline +
        ' into its topic' + (this.reason && all ? ' (reason: ' + this.reason + ')' : '') + '?')) { this.status.textContent = 'Not replayed.'; return; }
    const r = await send('POST', '/api/dlq/replay', body);
    this.status.className = r.ok ? 'muted' : 'err';
    this.status.textContent = r.ok ? 'Replayed ' + r.body.replayed + ' of ' + r.body.matched + (r.body.still_failing ? '; ' + r.body.still_failing + ' still fail with the current mapping' : '') + '.'
      : 'Replay failed: ' + errText(r);
    this.status.dataset.replayed = r.ok ? r.body.replayed : -1;
  },
};

/* Who did what through the console, newest first (kept in data_dir/console.db). */
pages.audit = {
  init(main) { this.main = main; main.append(h('h1', {}, 'Audit log'), h('div', {class: 'card', id: 'audit-body'})); },
  async tick() {
    const r = await api('/api/audit?limit=500');
    if (!r.ok) return;
    $('#audit-body', this.main).replaceChildren(r.body.ok ? null : h('div', {class: 'err'}, 'The audit log cannot be opened (see the console\'s log).'),
      h('table', {id: 'audit'}, h('tr', {}, h('th', {}, 'time'), h('th', {}, 'who'), h('th', {}, 'role'), h('th', {}, 'action'), h('th', {}, 'on'), h('th', {}, 'detail'), h('th', {class: 'num'}, 'status')),
        r.body.entries.map((e) => h('tr', {'data-action': e.action}, h('td', {class: 'mono nowrap'}, stamp(e.time)), h('td', {}, e.who), h('td', {}, e.role),
          h('td', {class: 'mono'}, e.action), h('td', {class: 'mono'}, e.target), h('td', {}, e.detail), h('td', {class: 'num'}, e.status)))));
  },
};

/* An alert's value and rule in the metric's own unit: 41 % and not 0.41, STOP and not 3, with the window. */
const GROUP_STATUS = ['OK', 'WARN', 'STALL', 'STOP'];
const dur = (ms) => ms % 3600000 === 0 ? ms / 3600000 + ' h' : ms % 60000 === 0 ? ms / 60000 + ' min' : ms / 1000 + ' s';
function alertValue(metric, v) {
  if (v === null || v === undefined) return '—';
  if (metric === 'error_rate') return (v * 100).toFixed(v < 0.1 ? 2 : 1) + ' %';
  if (metric === 'group_status') return GROUP_STATUS[Math.round(v)] || String(v);
  if (metric === 'lag') return fmt(v) + ' records';
  if (metric === 'dlq_growth') return fmt(v) + ' dead letters';
  return fmt(v);
}
function ruleText(x) {
  const win = (x.metric === 'error_rate' || x.metric === 'dlq_growth') && x.window_ms ? ' over ' + dur(x.window_ms) : '';
  return x.metric.replace('_', ' ') + win + ' above ' + alertValue(x.metric, x.threshold) + (x.for_ms ? ' for ' + dur(x.for_ms) : '');
}

pages.alerts = {
  init(main) {
    this.main = main; main.append(h('h1', {}, 'Alerts'), h('div', {id: 'alerts-body'}));
    role().then((r) => { this.operator = r === 'operator'; });
  },
  async tick() {
    const r = await api('/api/alerts');
    if (!r.ok) return;
    const a = r.body;
    $('#alerts-body', this.main).replaceChildren(h('div', {class: 'card'},
      h('div', {class: 'muted'}, (a.default_rules ? 'Default rules (set console.rules to change them). ' : '') +
        (a.webhook ? 'Changes are POSTed to the configured webhook.' : 'No webhook configured (console.webhook).')),
      h('table', {id: 'alerts'}, h('tr', {}, h('th', {}, 'alert'), h('th', {}, 'pipeline'), h('th', {}, 'state'), h('th', {}, 'rule'),
        h('th', {class: 'num'}, 'value'), h('th', {}, 'since'), h('th', {}, 'severity'), h('th', {}, 'silence')),
      a.alerts.map((x) => h('tr', {'data-alert': x.labels.alertname, 'data-pipeline': x.labels.pipeline, 'data-state': x.state}, h('td', {}, h('b', {}, x.labels.alertname)), h('td', {}, x.labels.pipeline),
        h('td', {}, badge(x.state)), h('td', {class: 'mono', 'data-field': 'rule'}, ruleText(x)),
        h('td', {class: 'num', 'data-field': 'value'}, alertValue(x.metric, x.value)), h('td', {}, x.state === 'inactive' ? '' : x.startsAt), h('td', {}, x.labels.severity),
        h('td', {'data-field': 'silence'}, x.silenced_until ? 'until ' + stamp(Date.parse(x.silenced_until)) + ' by ' + x.silenced_by + (x.silence_comment ? ' (' + x.silence_comment + ')' : '') + ' ' : '',
          this.operator ? h('button', {class: 'secondary small', 'data-action': x.silenced_until ? 'unsilence' : 'silence', onclick: () => this.silence(x, x.silenced_until ? 0 : 3600000)},
            x.silenced_until ? 'Lift' : 'Silence 1 h') : null))))));
  },
  async silence(x, ms) {
    const comment = ms ? window.prompt('Silence ' + x.labels.alertname + ' of ' + x.labels.pipeline + ' for 1 h. Why?', '') : '';
    if (comment === null) return;
    const r = await send('POST', '/api/alerts/silence', {alert: x.labels.alertname, pipeline: x.labels.pipeline, duration_ms: ms, comment});
    if (!r.ok) window.alert('Not silenced: ' + errText(r));
    await this.tick();
  },
};

function notRunning(main, title, r, what) {
  main.replaceChildren(h('h1', {}, title), h('div', {class: 'notice', id: 'not-running'},
    (r.body && r.body.error) || ('HTTP ' + r.status), h('br'), what));
}

/* ---- routing ---- */
pages.notfound = {
  init(main) {
    main.append(h('h1', {}, 'No such page'), h('div', {class: 'notice', id: 'not-found'},
      'There is no page ' + location.hash + '. ', h('a', {href: '#/overview'}, 'Go to the overview.')));
  },
  async tick() {},
};

async function show() {
  let name = (location.hash.replace(/^#\/?/, '') || 'overview').split('?')[0];
  if (!Object.prototype.hasOwnProperty.call(pages, name) || name === 'notfound') name = 'notfound';
  const page = pages[name];
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
