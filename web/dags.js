/* The DAGs view (#/dags): the scheduler's DAGs with their last and next run and Pause/Unpause; for the selected DAG a
 * grid of runs × tasks coloured by state (newest run on the right, as Airflow's grid, each column headed by the run's
 * date and each cell giving its duration), a Trigger button with a JSON conf box, the operator's actions on the
 * selected run (clear, mark success or failed) and a backfill of a date range, the graph and the Gantt chart of the
 * selected run, and the selected task's tries with their logs (followed while the try runs). All of it through the
 * scheduler's Airflow-shaped API under /api/dags/ (the console audits every write). */
'use strict';

const STATES = ['queued', 'running', 'success', 'failed', 'up_for_retry', 'skipped', 'upstream_failed', 'none'];
const FINAL = new Set(['success', 'failed']);
const RUNS_SHOWN = 25;
const enc = (s) => encodeURIComponent(s);
const stateOf = (ti) => (ti && ti.state) || 'none';
const hhmmss = (iso) => iso ? new Date(iso).toLocaleTimeString() : '—';
const took = (a, b) => a && b ? ((new Date(b) - new Date(a)) / 1000).toFixed(0) + ' s' : '';
/* A duration as a grid cell shows it: 7s, 3m, 2h (a running one up to now). */
const spanOf = (a, b) => {
  if (!a) return '';
  const s = Math.max(0, ((b ? new Date(b) : new Date()) - new Date(a)) / 1000);
  return s < 60 ? s.toFixed(0) + 's' : s < 3600 ? (s / 60).toFixed(0) + 'm' : (s / 3600).toFixed(1) + 'h';
};
/* A date as the grid's column heads show it: 12-07 13:05 (local time). */
const shortDate = (iso) => { if (!iso) return ''; const t = stamp(Date.parse(iso)); return t.slice(5, 16); };

pages.dags = {
  init(main) {
    this.main = main; this.dag = null; this.run = null; this.task = null; this.try = null;
    this.tis = new Map(); this.tasks = new Map(); this.sigs = {}; this.logKey = '';
    main.append(h('h1', {}, 'DAGs'), h('div', {class: 'muted'}, 'loading…'));
  },
  build() {
    this.built = true;
    this.list = h('div', {id: 'dag-list'});
    this.title = h('h2', {id: 'dag-title'});
    this.conf = h('textarea', {id: 'dag-conf', rows: 3, spellcheck: 'false'});
    this.conf.value = '{}';
    this.trigger = h('button', {id: 'dag-trigger', onclick: () => this.doTrigger()}, 'Trigger');
    this.msg = h('span', {id: 'dag-msg', class: 'muted'});
    this.grid = h('div', {id: 'dag-grid-box', class: 'scroll-x'});
    this.graph = h('div', {id: 'dag-graph'});
    this.graphTitle = h('h2', {}, 'Graph');
    this.ti = h('div', {id: 'dag-ti'});
    this.log = h('pre', {id: 'dag-log', class: 'log'});
    this.gantt = h('div', {id: 'dag-gantt', class: 'scroll-x'});
    this.ganttTitle = h('h2', {}, 'Gantt');
    // The operator's actions on the selected run and the backfill (viewers do not get them).
    this.runActs = h('div', {class: 'row hidden', id: 'run-actions'},
      h('span', {class: 'muted', id: 'run-sel'}),
      h('button', {class: 'secondary', id: 'run-clear-failed', onclick: () => this.clear(true)}, 'Clear failed'),
      h('button', {class: 'secondary', id: 'run-clear-all', onclick: () => this.clear(false)}, 'Clear all'),
      h('button', {class: 'secondary', id: 'run-mark-success', onclick: () => this.mark('success')}, 'Mark success'),
      h('button', {class: 'secondary', id: 'run-mark-failed', onclick: () => this.mark('failed')}, 'Mark failed'),
      h('button', {class: 'secondary', id: 'runs-clear', onclick: () => this.clearPicked()}, 'Clear selected runs'));
    this.picked = new Set(); // runs ticked in the grid's header, for clearing several at once
    this.bfFrom = h('input', {type: 'date', id: 'bf-from'});
    this.bfTo = h('input', {type: 'date', id: 'bf-to'});
    this.bf = h('div', {class: 'row hidden', id: 'backfill'}, h('label', {}, 'backfill from', this.bfFrom), h('label', {}, 'to', this.bfTo),
      h('button', {class: 'secondary', id: 'bf-go', onclick: () => this.backfill()}, 'Backfill'));
    role().then((r) => { this.operator = r === 'operator'; this.runActs.classList.toggle('hidden', !this.operator); this.sigs.title = ''; });
    this.main.replaceChildren(h('h1', {}, 'DAGs'),
      h('div', {class: 'card scroll'}, this.list),
      h('div', {class: 'card', id: 'dag-detail'}, this.title,
        h('div', {class: 'trigger'}, h('label', {}, 'run conf (JSON object, the tasks see it as $SLUICE_CONF)', this.conf),
          h('div', {class: 'row'}, this.trigger, this.msg)), this.bf,
        h('h3', {}, 'Runs × tasks'), this.grid, this.legend(), this.runActs),
      h('div', {class: 'card'}, this.ganttTitle, this.gantt),
      h('div', {class: 'grid2'}, h('div', {class: 'card'}, this.graphTitle, this.graph),
        h('div', {class: 'card'}, h('h2', {}, 'Task instance'), this.ti, this.log)));
  },
  legend() {
    return h('div', {class: 'legend'}, STATES.map((s) => h('span', {}, h('span', {class: 'cell s-' + s}), s)));
  },
  changed(part, value) {
    const sig = JSON.stringify(value);
    if (this.sigs[part] === sig) return false;
    this.sigs[part] = sig;
    return true;
  },
  async tick() {
    const r = await api('/api/dags');
    if (!r.ok) { notRunning(this.main, 'DAGs', r, 'Run `sluice up` with a dags: section, or name a `sluice scheduler --api` elsewhere in console.scheduler.url, to see DAG runs here.'); this.built = false; this.sigs = {}; return; }
    if (!this.built) this.build();
    const dags = r.body.dags || [];
    if (!dags.some((d) => d.dag_id === this.dag)) { this.dag = dags.length ? dags[0].dag_id : null; this.run = this.task = null; }
    this.dags = dags;
    if (this.changed('list', [dags, this.dag])) this.renderList();
    const d = dags.find((x) => x.dag_id === this.dag);
    if (!d) { fill(this.title, 'No DAGs: add a dags: section to the config.'); return; }
    if (this.changed('title', [d.dag_id, d.is_paused])) this.renderTitle(d);
    if (!this.tasks.has(d.dag_id)) {
      const t = await api('/api/dags/' + enc(d.dag_id) + '/tasks');
      if (t.ok) this.tasks.set(d.dag_id, t.body.tasks);
    }
    const rr = await api('/api/dags/' + enc(d.dag_id) + '/dagRuns?limit=' + RUNS_SHOWN);
    if (!rr.ok) return;
    const runs = (rr.body.dag_runs || []).slice().reverse(); // oldest first, newest on the right
    // Task instances: finished runs once, the others every tick.
    await Promise.all(runs.map(async (run) => {
      const k = d.dag_id + '\u0000' + run.dag_run_id;
      const have = this.tis.get(k);
      if (have && have.final) return;
      const t = await api('/api/dags/' + enc(d.dag_id) + '/dagRuns/' + enc(run.dag_run_id) + '/taskInstances');
      if (t.ok) this.tis.set(k, {final: FINAL.has(run.state), list: t.body.task_instances || []});
    }));
    this.runs = runs;
    if (!runs.some((x) => x.dag_run_id === this.run)) this.run = runs.length ? runs[runs.length - 1].dag_run_id : null;
    const tasks = this.tasks.get(d.dag_id) || (d.tasks || []).map((id) => ({task_id: id, upstream_task_ids: [], downstream_task_ids: []}));
    if (!tasks.some((t) => t.task_id === this.task)) this.task = tasks.length ? tasks[0].task_id : null;
    const tiOf = (runId) => (this.tis.get(d.dag_id + '\u0000' + runId) || {list: []}).list;
    const view = runs.map((x) => [x.dag_run_id, x.state, tiOf(x.dag_run_id).map((t) => [t.task_id, t.state, t.try_number])]);
    for (const id of [...this.picked]) if (!runs.some((x) => x.dag_run_id === id)) this.picked.delete(id);
    if (this.changed('grid', [view, this.run, this.task, tasks, [...this.picked], this.operator])) this.renderGrid(d, tasks, runs, tiOf);
    const run = runs.find((x) => x.dag_run_id === this.run);
    const tis = run ? tiOf(run.dag_run_id) : [];
    // Every try of the selected run's tasks for the Gantt chart (fetched again while the run is not finished).
    if (run) {
      const k = 'tries\u0000' + d.dag_id + '\u0000' + run.dag_run_id, have = this.tis.get(k);
      if (!have || !have.final || have.sig !== JSON.stringify(tis.map((t) => t.try_number))) {
        const t = await api('/api/dags/' + enc(d.dag_id) + '/dagRuns/' + enc(run.dag_run_id) + '/taskInstances/~/tries');
        if (t.ok) this.tis.set(k, {final: FINAL.has(run.state), sig: JSON.stringify(tis.map((x) => x.try_number)), list: t.body.task_instances || []});
      }
    }
    const tries = run ? (this.tis.get('tries\u0000' + d.dag_id + '\u0000' + run.dag_run_id) || {list: []}).list : [];
    if (this.changed('graph', [this.run, run && run.state, tis.map((t) => [t.task_id, t.state]), this.task, tasks])) this.renderGraph(tasks, run, tis);
    if (this.changed('gantt', [this.run, run && run.state, tis.map((t) => [t.task_id, t.state, t.try_number, t.start_date, t.end_date]), tries, this.task])) this.renderGantt(tasks, run, tis, tries);
    fill($('#run-sel'), run ? h('span', {}, 'run ', h('b', {class: 'mono'}, run.dag_run_id), ' ', badge(run.state)) : 'no run selected');
    const ti = tis.find((t) => t.task_id === this.task);
    if (this.changed('ti', [this.run, this.task, ti, this.try])) this.renderTi(d, run, ti);
    await this.loadLog(d, run, ti);
  },
  renderList() {
    fill(this.list, h('table', {id: 'dags'},
      h('tr', {}, h('th', {}, 'DAG'), h('th', {}, 'schedule'), h('th', {}, 'state'), h('th', {}, 'last run'), h('th', {}, 'next run'), h('th', {}, 'tasks'), h('th', {})),
      this.dags.map((d) => h('tr', {'data-dag': d.dag_id, class: 'click' + (d.dag_id === this.dag ? ' selected' : ''),
        onclick: () => this.select(d.dag_id)},
      h('td', {class: 'mono'}, h('b', {}, d.dag_id), d.description ? h('div', {class: 'muted'}, d.description) : null),
      h('td', {class: 'mono'}, d.schedule_interval ? d.schedule_interval.value : h('span', {class: 'muted'}, 'manual only')),
      h('td', {'data-field': 'paused'}, h('span', {class: 'badge ' + (d.is_paused ? 'b-paused' : 'b-active')}, d.is_paused ? 'paused' : 'active')),
      h('td', {'data-field': 'last-run', class: 'nowrap'}, d.last_dagrun ? [badge(d.last_dagrun.state), ' ', h('span', {class: 'mono small', title: d.last_dagrun.dag_run_id},
        stamp(Date.parse(d.last_dagrun.logical_date)).slice(0, 16))] : h('span', {class: 'muted'}, 'never')),
      h('td', {'data-field': 'next-run', class: 'nowrap mono small', title: d.next_dagrun ? 'covers the interval from ' + d.next_dagrun : ''},
        d.next_dagrun_create_after ? stamp(Date.parse(d.next_dagrun_create_after)).slice(0, 16) : h('span', {class: 'muted'}, 'manual only')),
      h('td', {class: 'muted'}, (d.tasks || []).length),
      h('td', {}, h('button', {class: 'secondary pause', 'data-dag': d.dag_id,
        onclick: (e) => { e.stopPropagation(); this.setPaused(d.dag_id, !d.is_paused); }}, d.is_paused ? 'Unpause' : 'Pause'))))));
  },
  renderTitle(d) {
    this.bf.classList.toggle('hidden', !this.operator || !d.schedule_interval);
    fill(this.title, h('span', {class: 'mono'}, d.dag_id),
      h('span', {class: 'badge ' + (d.is_paused ? 'b-paused' : 'b-active'), id: 'dag-state'}, d.is_paused ? 'paused' : 'active'),
      h('button', {class: 'secondary', id: 'dag-pause', onclick: () => this.setPaused(d.dag_id, !d.is_paused)}, d.is_paused ? 'Unpause' : 'Pause'),
      d.is_paused ? h('span', {class: 'muted small'}, 'paused: no scheduled runs, and triggered runs wait until it is unpaused') : null);
  },
  renderGrid(d, tasks, runs, tiOf) {
    if (!runs.length) { fill(this.grid, h('div', {class: 'notice', id: 'no-runs'}, 'No runs yet: press Trigger.')); return; }
    const pick = (run, task) => { this.run = run; if (task) this.task = task; this.try = null; this.tick(); };
    fill(this.grid, h('table', {class: 'dag-grid', id: 'dag-grid'},
      h('tr', {class: 'dates'}, h('th', {}, 'logical date'), runs.map((x) => h('td', {class: 'date mono', 'data-run': x.dag_run_id},
        this.operator ? h('input', {type: 'checkbox', class: 'run-pick', 'data-run': x.dag_run_id, title: 'select ' + x.dag_run_id + ' to clear several runs at once',
          checked: this.picked.has(x.dag_run_id), onclick: (e) => { e.stopPropagation(); if (e.target.checked) this.picked.add(x.dag_run_id); else this.picked.delete(x.dag_run_id); this.sayPicked(); }}) : null,
        shortDate(x.logical_date)))),
      h('tr', {}, h('th', {}, 'run'), runs.map((x) => h('td', {class: 'cell run s-' + x.state + (x.dag_run_id === this.run ? ' sel' : ''),
        'data-run': x.dag_run_id, 'data-state': x.state, title: x.dag_run_id + '\n' + x.state + '\nlogical date ' + stamp(Date.parse(x.logical_date)) +
          '\nstarted ' + (x.start_date ? stamp(Date.parse(x.start_date)) : '—') + '\nended ' + (x.end_date ? stamp(Date.parse(x.end_date)) : '—') +
          (x.conf && Object.keys(x.conf).length ? '\nconf ' + JSON.stringify(x.conf) : ''),
        onclick: () => pick(x.dag_run_id)}, spanOf(x.start_date, x.end_date)))),
      tasks.map((t) => h('tr', {'data-task': t.task_id}, h('th', {class: 'mono task'}, t.task_id),
        runs.map((x) => {
          const ti = tiOf(x.dag_run_id).find((y) => y.task_id === t.task_id), st = stateOf(ti);
          return h('td', {class: 'cell s-' + st + (x.dag_run_id === this.run && t.task_id === this.task ? ' sel' : ''),
            'data-run': x.dag_run_id, 'data-task': t.task_id, 'data-state': st,
            title: t.task_id + ' · ' + x.dag_run_id + '\n' + st + (ti && ti.try_number ? ' (try ' + ti.try_number + ')' : '') +
              (ti && ti.start_date ? '\nstarted ' + stamp(Date.parse(ti.start_date)) + (ti.end_date ? '\nended ' + stamp(Date.parse(ti.end_date)) : '') : ''),
            onclick: () => pick(x.dag_run_id, t.task_id)}, ti && ti.start_date ? spanOf(ti.start_date, ti.end_date) : '');
        })))));
  },
  renderGraph(tasks, run, tis) {
    fill(this.graphTitle, 'Graph', run ? h('span', {class: 'muted mono small'}, run.dag_run_id) : null, run ? badge(run.state) : null);
    if (!tasks.length) { fill(this.graph); return; }
    // Layers by the longest path from a root; order inside a layer as in the config.
    const idx = new Map(tasks.map((t, i) => [t.task_id, i])), depth = new Map();
    const dep = (t, seen) => {
      if (depth.has(t.task_id)) return depth.get(t.task_id);
      if (seen.has(t.task_id)) return 0;
      seen.add(t.task_id);
      const v = Math.max(-1, ...(t.upstream_task_ids || []).filter((u) => idx.has(u)).map((u) => dep(tasks[idx.get(u)], seen))) + 1;
      depth.set(t.task_id, v);
      return v;
    };
    tasks.forEach((t) => dep(t, new Set()));
    const layers = [];
    for (const t of tasks) (layers[depth.get(t.task_id)] = layers[depth.get(t.task_id)] || []).push(t);
    const W = 170, H = 40, GX = 60, GY = 18, P = 10, pos = new Map();
    layers.forEach((l, x) => l.forEach((t, y) => pos.set(t.task_id, [P + x * (W + GX), P + y * (H + GY)])));
    const width = P * 2 + layers.length * (W + GX) - GX, height = P * 2 + Math.max(...layers.map((l) => l.length)) * (H + GY) - GY;
    const edges = [];
    for (const t of tasks) for (const u of t.upstream_task_ids || []) {
      if (!pos.has(u)) continue;
      const [x1, y1] = pos.get(u), [x2, y2] = pos.get(t.task_id);
      const a = [x1 + W, y1 + H / 2], b = [x2 - 4, y2 + H / 2], mx = (a[0] + b[0]) / 2;
      edges.push(svg('path', {class: 'edge', 'data-from': u, 'data-to': t.task_id, 'marker-end': 'url(#arrow)',
        d: 'M' + a[0] + ',' + a[1] + ' C' + mx + ',' + a[1] + ' ' + mx + ',' + b[1] + ' ' + b[0] + ',' + b[1]}));
    }
    const nodes = tasks.map((t) => {
      const [x, y] = pos.get(t.task_id), ti = tis.find((z) => z.task_id === t.task_id), st = stateOf(ti);
      const label = t.task_id.length > 22 ? t.task_id.slice(0, 21) + '…' : t.task_id;
      return svg('g', {class: 'node' + (t.task_id === this.task ? ' sel' : ''), 'data-task': t.task_id, 'data-state': st, transform: 'translate(' + x + ',' + y + ')'},
        svg('title', {}, t.task_id + ' (' + (t.operator_name || 'task') + ')\n' + st + (t.trigger_rule && t.trigger_rule !== 'all_success' ? '\ntrigger rule ' + t.trigger_rule : '')),
        svg('rect', {class: 'n-box', width: W, height: H, rx: 6}),
        svg('rect', {class: 'n-state s-' + st, width: 8, height: H, rx: 3}),
        svg('text', {x: 16, y: 16, class: 'n-id'}, label),
        svg('text', {x: 16, y: 31, class: 'n-sub'}, (t.operator_name || '') + ' · ' + st));
    });
    const el = svg('svg', {width, height, viewBox: '0 0 ' + width + ' ' + height, id: 'dag-svg', role: 'img'},
      svg('defs', {}, svg('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'},
        svg('path', {d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead'}))),
      edges, nodes);
    el.addEventListener('click', (e) => {
      const g = e.target.closest('g.node');
      if (g) { this.task = g.dataset.task; this.try = null; this.tick(); }
    });
    fill(this.graph, el);
  },
  /* The selected run's tasks on a time axis, a row per task and a bar per try (…/taskInstances/~/tries): from the
   * try's start to its end (or now while it runs), coloured by how that try ended, the try number on it; the last
   * try's duration after the row. A task whose tries the scheduler did not keep (runs from before it kept them) is
   * drawn from its task instance, its latest try only. */
  renderGantt(tasks, run, tis, tries) {
    fill(this.ganttTitle, 'Gantt', run ? h('span', {class: 'muted mono small'}, run.dag_run_id) : null);
    const barsOf = (t) => {
      const kept = (tries || []).filter((z) => z.task_id === t.task_id && z.start_date);
      if (kept.length) return kept.map((z) => ({n: z.try_number, st: z.state || 'none', a: z.start_date, b: z.end_date}));
      const ti = tis.find((z) => z.task_id === t.task_id);
      return ti && ti.start_date ? [{n: ti.try_number, st: stateOf(ti), a: ti.start_date, b: ti.end_date}] : [];
    };
    const bars = new Map(tasks.map((t) => [t.task_id, barsOf(t)])), all = [...bars.values()].flat();
    if (!run || !all.length) { fill(this.gantt, h('div', {class: 'muted', id: 'gantt-empty'}, run ? 'No task of this run has started.' : 'No run selected.')); return; }
    const now = Date.now(), t0 = Math.min(...all.map((z) => Date.parse(z.a)));
    const t1 = Math.max(t0 + 1000, ...all.map((z) => (z.b ? Date.parse(z.b) : now)));
    const L = 190, W = 620, RH = 22, P = 6, x = (ms) => L + (ms - t0) / (t1 - t0) * W;
    const rows = tasks.map((t, i) => {
      const ti = tis.find((z) => z.task_id === t.task_id), y = P + i * RH, st = stateOf(ti), bs = bars.get(t.task_id);
      const kids = [svg('text', {x: 0, y: y + 15, class: 'n-id'}, t.task_id.length > 24 ? t.task_id.slice(0, 23) + '…' : t.task_id)];
      for (const z of bs) {
        const a = Date.parse(z.a), b = z.b ? Date.parse(z.b) : now, w = Math.max(2, x(b) - x(a));
        kids.push(svg('rect', {class: 'g-bar s-' + z.st, 'data-try': z.n, 'data-state': z.st, x: x(a), y: y + 3, width: w, height: RH - 6, rx: 3},
          svg('title', {}, t.task_id + ' try ' + z.n + ' · ' + z.st + '\n' + stamp(a) + ' → ' + (z.b ? stamp(b) : 'running') + ' (' + spanOf(z.a, z.b) + ')')));
        if (w >= 14) kids.push(svg('text', {x: x(a) + 3, y: y + 15, class: 'g-try'}, String(z.n)));
      }
      const last = bs[bs.length - 1];
      if (last) kids.push(svg('text', {x: Math.min(x(last.b ? Date.parse(last.b) : now) + 6, L + W + 4), y: y + 15, class: 'n-sub'},
        (bs.length > 1 ? bs.length + ' tries · ' : '') + 'try ' + last.n + ' · ' + spanOf(last.a, last.b)));
      return svg('g', {class: 'g-row', 'data-task': t.task_id, 'data-state': st, 'data-tries': bs.length}, kids);
    });
    const height = P * 2 + tasks.length * RH + 16;
    const axis = [0, 0.5, 1].map((f) => svg('text', {x: L + f * W, y: height - 2, class: 'n-sub', 'text-anchor': f === 0 ? 'start' : f === 1 ? 'end' : 'middle'},
      stamp(t0 + f * (t1 - t0)).slice(11, 19)));
    fill(this.gantt, svg('svg', {id: 'gantt-svg', width: L + W + 90, height, viewBox: '0 0 ' + (L + W + 90) + ' ' + height}, rows, axis));
  },
  async clear(onlyFailed) {
    const run = this.run, dag = this.dag;
    if (!run) return;
    const path = '/api/dags/' + enc(dag) + '/clearTaskInstances';
    const dry = await send('POST', path, {dag_run_id: run, dry_run: true, only_failed: onlyFailed});
    if (!dry.ok) { this.say(errText(dry), true); return; }
    const n = dry.body.total_entries;
    if (!n) { this.say('nothing to clear in ' + run + (onlyFailed ? ' (no failed task)' : ''), false); return; }
    if (!confirm('Clear ' + n + ' task instance' + (n === 1 ? '' : 's') + ' of run ' + run + ' (' + dry.body.task_instances.map((t) => t.task_id).join(', ') + ')? They run again.')) return;
    const r = await send('POST', path, {dag_run_id: run, dry_run: false, only_failed: onlyFailed});
    this.say(r.ok ? 'cleared ' + r.body.total_entries + ' task instances of ' + run : errText(r), !r.ok);
    this.forget(run);
    await this.tick();
  },
  sayPicked() {
    const b = $('#runs-clear');
    if (b) b.textContent = this.picked.size ? 'Clear selected runs (' + this.picked.size + ')' : 'Clear selected runs';
  },
  /* Clears every task of the runs ticked in the grid at once (clearTaskInstances with dag_run_ids): a dry run counts
   * them, the confirmation says how many task instances of how many runs. */
  async clearPicked() {
    const runs = [...this.picked], dag = this.dag;
    if (!runs.length) { this.say('tick runs in the grid\'s header to clear several at once', false); return; }
    const path = '/api/dags/' + enc(dag) + '/clearTaskInstances';
    const dry = await send('POST', path, {dag_run_ids: runs, dry_run: true, only_failed: false});
    if (!dry.ok) { this.say(errText(dry), true); return; }
    const n = dry.body.total_entries, m = dry.body.dag_runs;
    if (!confirm('Clear ' + n + ' task instance' + (n === 1 ? '' : 's') + ' of ' + m + ' run' + (m === 1 ? '' : 's') + ' (' + runs.join(', ') + ')? They run again.')) return;
    const r = await send('POST', path, {dag_run_ids: runs, dry_run: false, only_failed: false});
    this.say(r.ok ? 'cleared ' + r.body.total_entries + ' task instances of ' + r.body.dag_runs + ' runs' : errText(r), !r.ok);
    for (const id of runs) this.forget(id);
    this.picked.clear();
    this.sayPicked();
    await this.tick();
  },
  async mark(state) {
    const run = this.run;
    if (!run || !confirm('Mark run ' + run + ' ' + state + '?')) return;
    const r = await send('PATCH', '/api/dags/' + enc(this.dag) + '/dagRuns/' + enc(run), {state});
    this.say(r.ok ? run + ' marked ' + state : errText(r), !r.ok);
    this.forget(run);
    await this.tick();
  },
  async backfill() {
    if (!this.bfFrom.value || !this.bfTo.value) { this.say('backfill: pick both dates', true); return; }
    const body = {from_date: this.bfFrom.value + 'T00:00:00Z', to_date: this.bfTo.value + 'T00:00:00Z'};
    const path = '/api/dags/' + enc(this.dag) + '/backfills';
    const dry = await send('POST', path, Object.assign({dry_run: true}, body));
    if (!dry.ok) { this.say(errText(dry), true); return; }
    const n = dry.body.total_entries;
    if (!n) { this.say('backfill: every interval from ' + this.bfFrom.value + ' to ' + this.bfTo.value + ' has a run already', false); return; }
    if (!confirm('Create ' + n + ' backfill run' + (n === 1 ? '' : 's') + ' of ' + this.dag + ', one per interval from ' + this.bfFrom.value + ' to ' + this.bfTo.value + '?')) return;
    const r = await send('POST', path, body);
    this.say(r.ok ? 'backfill: ' + r.body.total_entries + ' runs created' : errText(r), !r.ok);
    await this.tick();
  },
  say(text, bad) { this.msg.textContent = text; this.msg.className = bad ? 'err' : 'muted'; },
  // A run changed by an action: its task instances are fetched again even if it had finished.
  forget(run) { this.tis.delete(this.dag + '\u0000' + run); this.tis.delete('tries\u0000' + this.dag + '\u0000' + run); this.sigs.grid = this.sigs.gantt = this.sigs.ti = ''; },
  renderTi(d, run, ti) {
    if (!run || !ti) { fill(this.ti, h('div', {class: 'muted'}, run ? 'Pick a task in the grid or the graph.' : 'No run selected.')); this.log.textContent = ''; return; }
    const tries = ti.try_number || 0;
    if (this.try === null || this.try > tries) this.try = tries || null;
    fill(this.ti, h('div', {class: 'kv'},
      h('div', {}, h('span', {class: 'muted'}, 'task '), h('b', {class: 'mono', id: 'ti-task'}, ti.task_id), ' ', h('span', {id: 'ti-state'}, badge(stateOf(ti)))),
      h('div', {class: 'mono small muted'}, run.dag_run_id),
      h('div', {class: 'small'}, 'started ' + hhmmss(ti.start_date) + ' · ended ' + hhmmss(ti.end_date) + (took(ti.start_date, ti.end_date) ? ' · ' + took(ti.start_date, ti.end_date) : '') +
        (ti.exit_code !== null && ti.exit_code !== undefined ? ' · exit code ' + ti.exit_code : '') + (ti.next_try_at ? ' · next try at ' + hhmmss(ti.next_try_at) : '')),
      run.conf && Object.keys(run.conf).length ? h('div', {class: 'small mono'}, 'conf ' + JSON.stringify(run.conf)) : null),
    h('div', {class: 'row tries'}, h('span', {class: 'muted'}, tries ? 'log of try' : 'not started: no log yet'),
      Array.from({length: tries}, (_, i) => i + 1).map((n) => h('button', {class: n === this.try ? '' : 'secondary', 'data-try': n,
        onclick: () => { this.try = n; this.sigs.ti = ''; this.tick(); }}, String(n)))));
  },
  async loadLog(d, run, ti) {
    if (!run || !ti || !this.try || stateOf(ti) === 'queued' || stateOf(ti) === 'none') { this.logKey = ''; if (!ti || !ti.try_number) this.log.textContent = ''; return; }
    const key = [d.dag_id, run.dag_run_id, ti.task_id, this.try].join('\u0000');
    // The current try's log is followed while it runs; earlier tries and finished ones are read once.
    const live = this.try === ti.try_number && (stateOf(ti) === 'running' || stateOf(ti) === 'up_for_retry');
    if (key === this.logKey && !live) return;
    const r = await api('/api/dags/' + enc(d.dag_id) + '/dagRuns/' + enc(run.dag_run_id) + '/taskInstances/' + enc(ti.task_id) + '/logs/' + this.try);
    const text = r.ok ? r.body.content : errText(r);
    this.logKey = live ? '' : key;
    if (this.log.textContent === text) return;
    const atEnd = this.log.scrollTop + this.log.clientHeight >= this.log.scrollHeight - 4;
    this.log.textContent = text;
    this.log.dataset.try = this.try;
    if (atEnd) this.log.scrollTop = this.log.scrollHeight;
  },
  select(id) {
    if (id === this.dag) return;
    this.dag = id; this.run = this.task = this.try = null; this.sigs = {};
    this.tick();
  },
  async setPaused(id, paused) {
    const r = await send('PATCH', '/api/dags/' + enc(id), {is_paused: paused});
    this.msg.textContent = r.ok ? id + (paused ? ' paused' : ' unpaused') : errText(r);
    this.msg.className = r.ok ? 'muted' : 'err';
    await this.tick();
  },
  async doTrigger() {
    let conf;
    try { conf = JSON.parse(this.conf.value.trim() || '{}'); } catch (e) { conf = e; }
    if (conf instanceof Error || !conf || typeof conf !== 'object' || Array.isArray(conf)) {
      this.msg.textContent = 'conf must be a JSON object' + (conf instanceof Error ? ': ' + conf.message : '');
      this.msg.className = 'err';
      return;
    }
    // Run ids are to the second: one trigger a second.
    this.trigger.disabled = true;
    setTimeout(() => { this.trigger.disabled = false; }, 1100);
    const r = await send('POST', '/api/dags/' + enc(this.dag) + '/dagRuns', {conf});
    if (!r.ok) { this.msg.textContent = errText(r); this.msg.className = 'err'; return; }
    this.msg.textContent = 'triggered ' + r.body.dag_run_id;
    this.msg.className = 'muted';
    this.msg.dataset.run = r.body.dag_run_id;
    this.run = r.body.dag_run_id; this.try = null;
    await this.tick();
  },
};
