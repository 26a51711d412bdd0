/* The Schemas view (#/schemas): the registry's subjects with their versions and compatibility levels (global and per
 * subject, which can be set here), a side-by-side diff of two versions of a subject, a compatibility test box (a
 * pasted schema against the subject's latest version, with the registry's verbose reasons) from which an operator
 * registers the schema once the check passed (a new subject, or a new version of one), and a soft delete of a
 * version for operators. Polls one page of
 * /api/console/schemas (?offset=&limit=, PAGE subjects at a time, with the total for the pager); everything else is
 * the registry's own REST API under /api/schemas/. */
'use strict';

const LEVELS = ['BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE', 'NONE'];
const subj = (s) => encodeURIComponent(s);
const PAGE = 100;

/* Pretty text of a registered schema: JSON schemas (Avro, JSON Schema) indented, anything else as it is. */
function schemaText(v) {
  try { return JSON.stringify(JSON.parse(v.schema), null, 2); } catch (e) { return v.schema || ''; }
}

/* A line diff (longest common subsequence) as side-by-side rows: [left line no, left, right line no, right, kind]
 * with kind same, del (left only), add (right only) or chg (a removed line facing an added one). */
function diffLines(a, b) {
  const n = a.length, m = b.length;
  if (n * m > 4e6) return [[null, 'too large to diff (' + n + ' × ' + m + ' lines)', null, '', 'chg']];
  const L = Array.from({length: n + 1}, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = a[i] === b[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const rows = [];
  let i = 0, j = 0, dels = [], adds = [];
  const flush = () => {
    for (let k = 0; k < Math.max(dels.length, adds.length); k++) {
      const d = dels[k], x = adds[k];
      rows.push([d ? d[0] : null, d ? d[1] : '', x ? x[0] : null, x ? x[1] : '', d && x ? 'chg' : d ? 'del' : 'add']);
    }
    dels = []; adds = [];
  };
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { flush(); rows.push([i + 1, a[i], j + 1, b[j], 'same']); i++; j++; }
    else if (j < m && (i === n || L[i][j + 1] >= L[i + 1][j])) { adds.push([j + 1, b[j]]); j++; }
    else { dels.push([i + 1, a[i]]); i++; }
  }
  flush();
  return rows;
}

pages.schemas = {
  init(main) {
    this.main = main; this.sig = ''; this.cache = new Map(); this.diffKey = ''; this.offset = 0;
    this.subject = null; this.left = null; this.right = null;
    main.append(h('h1', {}, 'Schemas'), h('div', {id: 'schemas-body'}, h('div', {class: 'muted'}, 'loading…')));
  },
  async version(s, v) {
    const k = s + '\u0000' + v;
    if (!this.cache.has(k)) {
      const r = await api('/api/schemas/subjects/' + subj(s) + '/versions/' + v);
      if (!r.ok) return null;
      this.cache.set(k, r.body);
    }
    return this.cache.get(k);
  },
  async tick() {
    const r = await api('/api/console/schemas?offset=' + this.offset + '&limit=' + PAGE);
    if (!r.ok) { notRunning(this.main, 'Schemas', r, 'Run `sluice up` with a registry: section, or name a `sluice registry` elsewhere in console.registry.url, to see subjects, versions and compatibility here.'); this.built = false; return; }
    const d = r.body;
    if (d.total > 0 && this.offset >= d.total) { this.offset = Math.floor((d.total - 1) / PAGE) * PAGE; this.sig = ''; return this.tick(); }
    if (!this.built) this.build();
    const sig = JSON.stringify(d);
    if (sig === this.sig) return;
    this.sig = sig; this.data = d;
    const subs = d.subjects;
    if (!subs.some((x) => x.subject === this.subject)) this.subject = subs.length ? subs[0].subject : null;
    this.renderSubjects();
    this.renderPickers();
    await this.renderDiff();
  },
  build() {
    this.built = true;
    this.list = h('div', {id: 's-list'});
    this.global = h('span', {id: 's-global'});
    this.pageInfo = h('span', {class: 'muted', id: 's-page'});
    this.prev = h('button', {class: 'secondary', id: 's-prev', onclick: () => this.page(-PAGE)}, '‹ previous');
    this.next = h('button', {class: 'secondary', id: 's-next', onclick: () => this.page(PAGE)}, 'next ›');
    this.pSubject = h('select', {id: 's-subject', onchange: () => { this.subject = this.pSubject.value; this.left = this.right = null; this.renderSubjects(); this.renderPickers(); this.renderDiff(); }});
    this.pLeft = h('select', {id: 's-left', onchange: () => { this.left = Number(this.pLeft.value); this.renderDiff(); }});
    this.pRight = h('select', {id: 's-right', onchange: () => { this.right = Number(this.pRight.value); this.delBtn.textContent = 'Delete v' + this.right; this.renderDiff(); }});
    this.level = h('select', {id: 's-level', onchange: () => this.setLevel(this.level.value)},
      h('option', {value: ''}, 'global (default)'), LEVELS.map((l) => h('option', {value: l}, l)));
    this.levelMsg = h('span', {class: 'muted', id: 's-level-msg'});
    this.diff = h('div', {id: 's-diff'});
    this.cSchema = h('textarea', {id: 'c-schema', rows: 10, spellcheck: 'false', placeholder: '{"type": "record", "name": "...", "fields": [...]}'});
    this.cResult = h('div', {id: 'c-result'});
    this.cLoad = h('button', {class: 'secondary', id: 'c-load', onclick: () => this.loadLatest()}, 'Start from the latest version');
    this.cSubject = h('input', {id: 'c-subject', size: 40, placeholder: 'subject (default: the one selected above)'});
    this.cRegister = h('button', {id: 'c-register', class: 'hidden', disabled: true, onclick: () => this.register()}, 'Register as a new version');
    this.cRegMsg = h('span', {id: 'c-reg-msg', class: 'muted'});
    this.delBtn = h('button', {class: 'secondary hidden', id: 's-delete', onclick: () => this.deleteVersion()}, 'Delete version');
    this.delMsg = h('span', {class: 'muted', id: 's-delete-msg'});
    // Registering and deleting are the operator's (a viewer's write would get 403 anyway).
    role().then((r) => { this.operator = r === 'operator'; this.cRegister.classList.toggle('hidden', !this.operator); this.delBtn.classList.toggle('hidden', !this.operator); });
    // A changed text or subject has not been checked: register waits for a new test.
    const untest = () => { this.tested = null; this.cRegister.disabled = true; };
    this.cSchema.addEventListener('input', untest);
    this.cSubject.addEventListener('input', untest);
    const body = $('#schemas-body', this.main) || h('div', {id: 'schemas-body'});
    if (!body.parentNode) this.main.replaceChildren(h('h1', {}, 'Schemas'), body);
    body.replaceChildren(
      h('div', {class: 'card'}, h('h2', {}, 'Subjects', h('span', {class: 'muted'}, 'global compatibility'), this.global), this.list,
        h('div', {class: 'row'}, this.prev, this.pageInfo, this.next)),
      h('div', {class: 'card'}, h('h2', {}, 'Versions side by side'),
        h('div', {class: 'row'}, h('label', {}, 'subject', this.pSubject), h('label', {}, 'version', this.pLeft),
          h('label', {}, 'against version', this.pRight), h('label', {}, 'subject compatibility', this.level), this.levelMsg,
          this.delBtn, this.delMsg),
        this.diff),
      h('div', {class: 'card'}, h('h2', {}, 'Register or evolve a schema'),
        h('div', {class: 'muted'}, 'Paste a schema: it is tested against the latest version of the subject under the subject\'s compatibility level (nothing is registered). Once the test passed, an operator can register it.'),
        h('div', {class: 'row'}, h('label', {}, 'subject', this.cSubject)),
        this.cSchema,
        h('div', {class: 'row'}, h('button', {id: 'c-test', onclick: () => this.test()}, 'Test compatibility'), this.cLoad, this.cRegister, this.cRegMsg),
        this.cResult));
  },
  async page(delta) {
    this.offset = Math.max(0, this.offset + delta);
    this.sig = '';
    await this.tick();
  },
  renderSubjects() {
    const d = this.data;
    const total = d.total === undefined ? d.subjects.length : d.total;
    this.pageInfo.textContent = total ? 'subjects ' + (d.offset + 1) + '–' + (d.offset + d.subjects.length) + ' of ' + total : '';
    this.prev.disabled = !d.offset;
    this.next.disabled = d.offset + d.subjects.length >= total;
    fill(this.global, h('span', {class: 'badge b-level'}, d.compatibility || '—'));
    if (!d.subjects.length) { fill(this.list, h('div', {class: 'notice'}, 'No subjects yet: register a schema (POST /api/schemas/subjects/{subject}/versions) or run a pipeline with format: avro.')); return; }
    fill(this.list, h('table', {id: 'subjects'},
      h('tr', {}, h('th', {}, 'subject'), h('th', {}, 'versions'), h('th', {}, 'compatibility')),
      d.subjects.map((x) => h('tr', {'data-subject': x.subject, class: 'click' + (x.subject === this.subject ? ' selected' : ''),
        onclick: () => { this.subject = x.subject; this.left = this.right = null; this.renderSubjects(); this.renderPickers(); this.renderDiff(); }},
      h('td', {class: 'mono'}, x.subject),
      h('td', {}, x.versions.map((v) => h('span', {class: 'chip', 'data-version': v}, 'v' + v))),
      h('td', {'data-field': 'compatibility'}, x.compatibility ? h('b', {}, x.compatibility) : h('span', {class: 'muted'}, (d.compatibility || '') + ' (global)'))))));
  },
  renderPickers() {
    const x = this.data.subjects.find((s) => s.subject === this.subject);
    this.pSubject.replaceChildren(...this.data.subjects.map((s) => h('option', {value: s.subject, selected: s.subject === this.subject}, s.subject)));
    const vs = x ? x.versions : [];
    if (!vs.includes(this.right)) this.right = vs.length ? vs[vs.length - 1] : null;
    if (!vs.includes(this.left)) this.left = vs.length > 1 ? vs[vs.length - 2] : this.right;
    this.pLeft.replaceChildren(...vs.map((v) => h('option', {value: v, selected: v === this.left}, 'v' + v)));
    this.pRight.replaceChildren(...vs.map((v) => h('option', {value: v, selected: v === this.right}, 'v' + v)));
    this.delBtn.textContent = this.right !== null ? 'Delete v' + this.right : 'Delete version';
    this.delBtn.disabled = this.right === null;
    this.level.value = x && x.compatibility ? x.compatibility : '';
    this.level.disabled = !x;
  },
  async renderDiff() {
    const s = this.subject, a = this.left, b = this.right;
    const key = s + '\u0000' + a + '\u0000' + b;
    if (s === null || a === null || b === null) { this.diffKey = ''; fill(this.diff); return; }
    if (key === this.diffKey) return;
    this.diffKey = key;
    const [va, vb] = await Promise.all([this.version(s, a), this.version(s, b)]);
    if (this.diffKey !== key) return; // the selection moved on meanwhile
    if (!va || !vb) { fill(this.diff, h('div', {class: 'err'}, 'cannot read the versions')); return; }
    const rows = diffLines(schemaText(va).split('\n'), schemaText(vb).split('\n'));
    const changed = rows.filter((r) => r[4] !== 'same').length;
    const side = (no, text, kind, which) => [h('td', {class: 'ln'}, no === null ? '' : no),
      h('td', {class: 'code ' + (kind === 'same' ? '' : no === null ? 'empty' : kind === 'chg' ? 'chg' : which)}, text)];
    fill(this.diff,
      h('div', {class: 'muted', id: 's-diff-summary'}, changed ? changed + ' line' + (changed === 1 ? '' : 's') + ' differ' : 'identical',
        ' · v' + a + ' is schema id ' + va.id + (va.schemaType ? ' (' + va.schemaType + ')' : '') + ', v' + b + ' is schema id ' + vb.id),
      h('table', {class: 'diff', id: 's-diff-table'}, h('colgroup', {}, h('col', {class: 'c-ln'}), h('col', {}), h('col', {class: 'c-ln'}), h('col', {})),
        h('tr', {}, h('th', {colspan: 2}, s + ' v' + a), h('th', {colspan: 2}, s + ' v' + b)),
        rows.map((r) => h('tr', {class: 'd-' + r[4]}, side(r[0], r[1], r[4], 'del'), side(r[2], r[3], r[4], 'add')))));
  },
  async setLevel(level) {
    const s = this.subject;
    if (!s) return;
    const r = level ? await send('PUT', '/api/schemas/config/' + subj(s), {compatibility: level})
      : await send('DELETE', '/api/schemas/config/' + subj(s));
    this.levelMsg.textContent = r.ok ? (level ? s + ' now ' + level : s + ' follows the global level') : errText(r);
    this.levelMsg.className = r.ok ? 'muted' : 'err';
    this.sig = ''; // redraw on the next tick
  },
  // Registers what the last test passed (the same text and subject), after a confirmation.
  async register() {
    const t = this.tested;
    if (!t || t.text !== this.cSchema.value.trim() || t.s !== (this.cSubject.value.trim() || this.subject)) { this.cRegister.disabled = true; return; }
    if (!confirm('Register this schema under ' + t.s + '?')) return;
    const body = {schema: t.text};
    if (t.schemaType) body.schemaType = t.schemaType;
    const r = await send('POST', '/api/schemas/subjects/' + subj(t.s) + '/versions', body);
    if (!r.ok) { this.cRegMsg.textContent = errText(r); this.cRegMsg.className = 'err'; return; }
    const v = await api('/api/schemas/subjects/' + subj(t.s) + '/versions/latest');
    this.cRegMsg.textContent = 'registered: ' + t.s + (v.ok ? ' v' + v.body.version : '') + ', schema id ' + r.body.id;
    this.cRegMsg.className = 'muted';
    this.cRegMsg.dataset.id = r.body.id;
    this.tested = null; this.cRegister.disabled = true;
    this.subject = t.s; this.left = this.right = null; this.sig = '';
    await this.tick();
  },
  // A soft delete (Confluent's DELETE /subjects/{s}/versions/{v}): the version leaves the list, its id still reads.
  async deleteVersion() {
    const s = this.subject, v = this.right;
    if (!s || v === null || !confirm('Delete version ' + v + ' of ' + s + '? (soft: readers of its schema id still get it)')) return;
    const r = await send('DELETE', '/api/schemas/subjects/' + subj(s) + '/versions/' + v);
    this.delMsg.textContent = r.ok ? 'deleted ' + s + ' v' + v : errText(r);
    this.delMsg.className = r.ok ? 'muted' : 'err';
    this.left = this.right = null; this.sig = '';
    await this.tick();
  },
  async loadLatest() {
    const x = this.data && this.data.subjects.find((s) => s.subject === this.subject);
    if (!x || !x.versions.length) return;
    const v = await this.version(x.subject, x.versions[x.versions.length - 1]);
    if (v) this.cSchema.value = schemaText(v);
  },
  async test() {
    const s = this.cSubject.value.trim() || this.subject, text = this.cSchema.value.trim();
    this.tested = null; this.cRegister.disabled = true;
    if (!s) { fill(this.cResult, h('div', {class: 'err'}, 'No subject to test against.')); return; }
    if (!text) { fill(this.cResult, h('div', {class: 'err'}, 'Paste a schema first.')); return; }
    const x = this.data.subjects.find((y) => y.subject === s);
    try { JSON.parse(text); } catch (e) { fill(this.cResult, h('div', {class: 'err', id: 'c-invalid'}, 'Not JSON: ' + e.message)); return; }
    // Whether the subject exists, without a 404 (the browser would log it as an error): the subjects with its prefix.
    const pre = await api('/api/schemas/subjects?subjectPrefix=' + subj(s));
    const exists = pre.ok && Array.isArray(pre.body) && pre.body.includes(s);
    const known = exists ? await api('/api/schemas/subjects/' + subj(s) + '/versions') : {ok: false, body: null};
    if (pre.ok && !exists) {
      // A new subject: nothing to be compatible with; its first version is registered as it is.
      this.tested = {s, text, schemaType: undefined};
      this.cRegister.disabled = false;
      this.cRegister.textContent = 'Register as ' + s + ' v1';
      fill(this.cResult, h('div', {id: 'c-verdict', 'data-compatible': 'new'}, h('span', {class: 'badge b-success'}, 'new subject'),
        ' ', h('b', {}, s), ' has no version yet: nothing to check against.'));
      return;
    }
    // The pasted schema is read as the same type as the subject's latest version (AVRO unless it says otherwise).
    const vs = known.ok && Array.isArray(known.body) ? known.body : x ? x.versions : [];
    const latest = vs.length ? await this.version(s, vs[vs.length - 1]) : null;
    const body = {schema: text};
    if (latest && latest.schemaType) body.schemaType = latest.schemaType;
    fill(this.cResult, h('div', {class: 'muted'}, 'testing…'));
    const r = await send('POST', '/api/schemas/compatibility/subjects/' + subj(s) + '/versions/latest?verbose=true', body);
    if (!r.ok) { fill(this.cResult, h('div', {class: 'err', id: 'c-error'}, errText(r))); return; }
    const level = (x && x.compatibility) || this.data.compatibility;
    if (r.body.is_compatible) {
      this.tested = {s, text, schemaType: body.schemaType};
      this.cRegister.disabled = false;
      this.cRegister.textContent = 'Register as a new version of ' + s;
    }
    const reasons = (r.body.messages || []).filter((m) => !m.startsWith('{oldSchemaVersion'));
    const against = (r.body.messages || []).find((m) => m.startsWith('{oldSchemaVersion'));
    fill(this.cResult, h('div', {id: 'c-verdict', 'data-compatible': String(r.body.is_compatible)},
      h('span', {class: 'badge ' + (r.body.is_compatible ? 'b-success' : 'b-failed')}, r.body.is_compatible ? 'compatible' : 'incompatible'),
      ' with the latest version of ', h('b', {}, s), ' under ', h('b', {}, level)),
    reasons.length ? h('ul', {id: 'c-reasons'}, reasons.map((m) => h('li', {class: 'mono'}, m))) : null,
    against ? h('div', {class: 'muted mono small'}, against) : null);
  },
};
