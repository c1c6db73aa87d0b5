// duet's dashboard (docs/dashboard.md).  No framework: the page is drawn
// from the API's JSON with DOM calls (text is always set as text, never as
// markup: names, messages and logs come from workloads), kept live by the
// daemon's event stream, and its figures by /metrics every few seconds.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';
const SPARK_POINTS = 60;       // samples kept per sparkline
const METRICS_EVERY_MS = 3000;

const S = {
  session: { csrf: '', write: false },
  workloads: [],                // GET /v1/workloads, by name
  details: new Map(),           // name -> GET /v1/workloads/NAME (placement, ...)
  series: new Map(),            // name -> {cpu: [...], mem: [...]}
  lastCpu: new Map(),           // name -> [seconds, at]
  lastEvent: 0,
  view: null,                   // what is drawn: {kind, name, ...}
  follow: null,                 // AbortController of the logs being followed
};

// ---- small helpers ---------------------------------------------------------------

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function bytes(n) {
  if (n === null || n === undefined || n < 0) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + ' ' + u[i];
}

function ago(ms) {
  if (!ms) return '–';
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return Math.floor(s) + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm';
  if (s < 86400) return Math.floor(s / 3600) + 'h';
  return Math.floor(s / 86400) + 'd';
}

function clock(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour12: false });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Unauthorized extends Error {}

async function request(path, opts) {
  const r = await fetch(path, Object.assign({ credentials: 'same-origin', cache: 'no-store' }, opts || {}));
  if (r.status === 401) {
    loggedOut();
    throw new Unauthorized();
  }
  return r;
}

async function getJSON(path) {
  const r = await request(path);
  const j = await r.json();
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}

async function post(path, body) {
  return request(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Duet-CSRF': S.session.csrf },
    body: JSON.stringify(body || {}),
  });
}

// Reads a streamed answer line by line until it ends or is aborted.
async function follow(path, onLine, signal) {
  const r = await request(path, { signal });
  if (!r.ok) throw new Error((await r.text()) || r.statusText);
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  }
  if (buf) onLine(buf);
}

function loggedOut() {
  const v = document.getElementById('view');
  v.replaceChildren(el('div', { class: 'panel' },
    el('h1', {}, 'Not logged in'),
    el('p', {}, 'Open the address that ', el('code', {}, 'duet dashboard'), ' prints on the host: it carries the login token.')));
}

function setLive(on) {
  const l = document.getElementById('live');
  l.className = 'live ' + (on ? 'on' : 'off');
  l.textContent = on ? 'live' : 'reconnecting';
}

// ---- live data ---------------------------------------------------------------------

let refreshTimer = null;
function refreshSoon(name) {
  if (name) S.details.delete(name);
  if (refreshTimer) return;
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    try { await loadWorkloads(); } catch (e) { if (!(e instanceof Unauthorized)) console.warn(e); }
    draw(false);
  }, 150);
}

async function loadWorkloads() {
  const j = await getJSON('/v1/workloads');
  S.workloads = j.workloads || [];
  const names = new Set(S.workloads.map((w) => w.name));
  for (const n of [...S.details.keys()]) if (!names.has(n)) S.details.delete(n);
  // The placement's reasons are in each workload's own answer.
  await Promise.all(S.workloads.filter((w) => !S.details.has(w.name)).slice(0, 200).map(async (w) => {
    try { S.details.set(w.name, await getJSON('/v1/workloads/' + encodeURIComponent(w.name))); } catch (e) { /* gone meanwhile */ }
  }));
}

function onEvent(line) {
  if (!line) return;
  let e;
  try { e = JSON.parse(line); } catch (x) { return; }
  S.lastEvent = Math.max(S.lastEvent, e.id || 0);
  if (e.workload) {
    refreshSoon(e.workload);
    if (S.view && S.view.kind === 'workload' && S.view.name === e.workload) {
      appendEvent(e);
      // A new instance: its log from its tail.
      if (e.type === 'started') startLogs(e.workload);
    }
  } else {
    refreshSoon(null);
  }
}

async function eventLoop() {
  for (;;) {
    try {
      setLive(true);
      await follow('/v1/events?follow=1&since=' + S.lastEvent, onEvent);
    } catch (e) {
      if (e instanceof Unauthorized) return;
    }
    setLive(false);
    await sleep(1000);
    refreshSoon(null);
  }
}

// Prometheus text: the figures the sparklines draw.
function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = line.match(/^(duet_workload_(?:cpu_seconds_total|memory_bytes|memory_host_bytes))\{([^}]*)\} (\S+)/);
    if (!m) continue;
    const w = m[2].match(/(?:^|,)workload="((?:[^"\\]|\\.)*)"/);
    if (!w) continue;
    const name = w[1].replace(/\\(.)/g, (x, c) => (c === 'n' ? '\n' : c));
    const o = out.get(name) || {};
    o[m[1]] = Number(m[3]);
    out.set(name, o);
  }
  return out;
}

async function metricsLoop() {
  for (;;) {
    try {
      const r = await request('/metrics');
      const figures = parseMetrics(await r.text());
      const now = Date.now();
      for (const [name, f] of figures) {
        const s = S.series.get(name) || { cpu: [], mem: [] };
        const mem = f.duet_workload_memory_bytes ?? f.duet_workload_memory_host_bytes;
        if (mem !== undefined) s.mem.push(mem);
        const cpu = f.duet_workload_cpu_seconds_total;
        const last = S.lastCpu.get(name);
        if (cpu !== undefined) {
          if (last && now > last[1] && cpu >= last[0]) s.cpu.push((100 * (cpu - last[0])) / ((now - last[1]) / 1000));
          S.lastCpu.set(name, [cpu, now]);
        }
        for (const k of ['cpu', 'mem']) if (s[k].length > SPARK_POINTS) s[k].splice(0, s[k].length - SPARK_POINTS);
        S.series.set(name, s);
      }
      for (const name of [...S.series.keys()]) if (!figures.has(name)) S.series.delete(name);
      drawSparks();
    } catch (e) {
      if (e instanceof Unauthorized) return;
    }
    await sleep(METRICS_EVERY_MS);
  }
}

function spark(kind, values) {
  const w = 64, hgt = 22;
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', 'spark ' + kind);
  svg.setAttribute('width', w);
  svg.setAttribute('height', hgt);
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  if (values.length > 1) {
    // CPU against at least 5% of a CPU (idle jitter stays flat); memory
    // from 0 with headroom, so a steady figure reads as a level line.
    const max = kind === 'cpu' ? Math.max(...values, 5) : Math.max(...values) * 1.25 || 1;
    const step = w / (SPARK_POINTS - 1);
    const x0 = w - step * (values.length - 1);
    const pts = values.map((v, i) => `${(x0 + i * step).toFixed(1)},${(hgt - 2 - (v / max) * (hgt - 4)).toFixed(1)}`);
    const pl = document.createElementNS(SVG_NS, 'polyline');
    pl.setAttribute('points', pts.join(' '));
    svg.append(pl);
  }
  return svg;
}

function drawSparks() {
  for (const cell of document.querySelectorAll('[data-spark]')) {
    const [kind, name] = [cell.dataset.spark, cell.dataset.name];
    const s = S.series.get(name);
    const values = s ? s[kind] : [];
    const last = values.length ? values[values.length - 1] : null;
    cell.replaceChildren(spark(kind, values),
      el('span', { class: 'spark-val' }, last === null ? '–' : kind === 'cpu' ? last.toFixed(1) + '%' : bytes(last)));
  }
}

// ---- the fleet ---------------------------------------------------------------------

function stateCell(w) {
  return el('span', { class: 'state ' + w.state, 'data-state': w.state }, w.state);
}

function reasonOf(name) {
  const d = S.details.get(name);
  const r = d && d.placement && d.placement.reasons;
  return r && r.length ? r : null;
}

function portsOf(w) {
  return el('span', { class: 'ports' }, (w.ports || []).map((p) =>
    el('span', { title: p.published ? 'published' : 'not yet published' }, `${p.host}→${p.port}/${p.protocol}`)));
}

// Drawn again only when something it shows changed (or the ages are due,
// force): a redraw under a pointer that is clicking a link loses the click.
let fleetKey = '';
function drawFleet(force) {
  const ws = S.workloads;
  const v = document.getElementById('view');
  const key = JSON.stringify(ws) + JSON.stringify(ws.map((w) => reasonOf(w.name)));
  if (!force && key === fleetKey && v.querySelector('.summary')) return;
  fleetKey = key;
  const count = (f) => ws.filter(f).length;
  const rows = ws.map((w) => {
    const reasons = reasonOf(w.name);
    return el('tr', { 'data-name': w.name, 'data-backend': w.backend },
      el('td', {}, el('a', { href: '#/w/' + encodeURIComponent(w.name) }, w.name)),
      el('td', {}, el('span', { class: 'backend ' + w.backend }, w.backend === 'vm' ? 'VM' : 'container')),
      el('td', {}, w.role),
      el('td', {}, stateCell(w)),
      el('td', {}, w.health),
      el('td', { class: 'why', title: reasons ? reasons.join('\n') : '' }, reasons ? reasons[0] : ''),
      el('td', {}, w.address || '–'),
      el('td', {}, portsOf(w)),
      el('td', { 'data-spark': 'mem', 'data-name': w.name }),
      el('td', { 'data-spark': 'cpu', 'data-name': w.name }),
      el('td', { class: 'num' }, String(w.restarts)),
      el('td', { class: 'num' }, ago(w.started_at)));
  });
  v.replaceChildren(
    el('div', { class: 'summary' },
      el('div', { class: 'panel' }, el('div', { class: 'big' }, String(ws.length)), 'workloads'),
      el('div', { class: 'panel' }, el('div', { class: 'big' }, String(count((w) => w.backend === 'vm'))), 'VMs'),
      el('div', { class: 'panel' }, el('div', { class: 'big' }, String(count((w) => w.backend === 'container'))), 'containers'),
      el('div', { class: 'panel' }, el('div', { class: 'big' }, String(count((w) => w.state === 'running'))), 'running'),
      el('div', { class: 'panel' }, el('div', { class: 'big' }, String(count((w) => !['running', 'completed', 'stopped'].includes(w.state)))), 'not running')),
    ws.length === 0
      ? el('p', { class: 'note' }, 'No workloads yet: ', el('code', {}, 'duet apply -f FILE'), ' on the host, or try a manifest on the ', el('a', { href: '#/plan' }, 'plan page'), '.')
      : el('table', { id: 'fleet' },
        el('thead', {}, el('tr', {}, ['Name', 'Backend', 'Role', 'State', 'Health', 'Why there', 'Address', 'Ports', 'Memory', 'CPU', 'Restarts', 'Up'].map((t) =>
          el('th', { class: t === 'Restarts' || t === 'Up' ? 'num' : null }, t)))),
        el('tbody', {}, rows)));
  drawSparks();
}

// ---- a workload --------------------------------------------------------------------

function appendEvent(e) {
  const ul = document.getElementById('events');
  if (!ul) return;
  ul.append(el('li', {}, el('time', {}, clock(e.time)), el('span', { class: 'type' }, e.type), e.message));
  ul.scrollTop = ul.scrollHeight;
}

async function startLogs(name) {
  if (S.follow) S.follow.abort();
  const ctl = new AbortController();
  S.follow = ctl;
  const pre = document.getElementById('logs');
  if (!pre) return;
  pre.textContent = '';
  let pending = '';
  let timer = null;
  const flush = () => {
    timer = null;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(pending);
    pending = '';
    // A long log keeps its last 200,000 characters on the page.
    if (pre.textContent.length > 400000) pre.textContent = pre.textContent.slice(-200000);
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  };
  try {
    await follow('/v1/workloads/' + encodeURIComponent(name) + '/logs?follow=1&tail=500', (line) => {
      pending += line + '\n';
      if (!timer) timer = setTimeout(flush, 50);
    }, ctl.signal);
  } catch (e) {
    if (e.name !== 'AbortError' && !(e instanceof Unauthorized)) pending += '[' + e.message.trim() + ']\n';
  }
  if (pending) flush();
}

async function act(name, action) {
  if (action === 'delete' && !confirm(`Delete ${name}? Its instance goes, and its disk; named volumes stay.`)) return;
  const r = await post('/v1/workloads/' + encodeURIComponent(name) + '/' + action);
  const j = await r.json().catch(() => ({}));
  const msg = document.getElementById('actmsg');
  if (msg) msg.textContent = r.ok ? `${action}: asked` : (j.error || r.statusText);
  if (msg) msg.className = r.ok ? 'note' : 'error';
  refreshSoon(name);
}

function facts(d) {
  const dl = el('dl', { class: 'facts' });
  const add = (k, v) => { if (v !== null && v !== undefined && v !== '') dl.append(el('dt', {}, k), el('dd', {}, v)); };
  const st = d.instance && d.instance.stats;
  add('Role', d.role);
  add('Backend', el('span', { class: 'backend ' + d.backend }, d.backend));
  add('State', stateCell(d));
  add('Health', d.health + (d.health_message ? ' — ' + d.health_message : ''));
  add('Placement', d.placement ? el('div', {}, (d.placement.reasons || []).map((r) => el('div', {}, r))) : null);
  if (d.placement && d.placement.ruled_out)
    for (const [b, why] of Object.entries(d.placement.ruled_out)) add('Not ' + b, why);
  add('Message', d.message);
  add('Address', d.address);
  add('Ports', (d.ports || []).length ? portsOf(d) : null);
  add('Restarts', `${d.restarts} (policy ${d.restart_policy})`);
  add('Last exit', d.last_exit ? (d.last_exit.signal ? 'signal ' + d.last_exit.signal : 'status ' + d.last_exit.code) : null);
  add('Started', d.started_at ? new Date(d.started_at).toLocaleString() : null);
  if (d.image) add('Image', d.image.ref || null);
  if (d.instance) add('Instance', `${d.instance.backend}, generation ${d.instance.generation}, ${d.instance.running ? 'running' : 'not running'}`);
  if (st) {
    add('Memory', `${bytes(st.memory_resident_bytes)} resident, ${bytes(st.memory_cache_bytes)} cache` +
      (st.memory_limit ? ` (limit ${bytes(st.memory_limit)})` : '') + ` — host ${bytes(st.memory_bytes)}`);
    add('Disk', st.disk_bytes !== undefined ? bytes(st.disk_bytes) + (st.disk_limit ? ' of ' + bytes(st.disk_limit) : '') : null);
  }
  add('Volumes', (d.volumes || []).length ? el('div', {}, d.volumes.map((x) => el('div', {}, `${x.name || x.source} → ${x.target}${x.read_only ? ' (ro)' : ''}`))) : null);
  if (d.disk) add('VM disk', d.disk.source);
  return dl;
}

async function drawWorkload(name, fresh) {
  const v = document.getElementById('view');
  let d;
  try {
    d = await getJSON('/v1/workloads/' + encodeURIComponent(name));
  } catch (e) {
    if (e instanceof Unauthorized) return;
    v.replaceChildren(el('p', { class: 'error' }, `${name}: ${e.message}`), el('a', { href: '#/' }, '← the fleet'));
    return;
  }
  if (!S.view || S.view.kind !== 'workload' || S.view.name !== name) return;
  const w = S.session.write;
  const head = el('h1', {}, el('a', { href: '#/' }, 'Fleet'), ' / ', name, ' ',
    el('span', { class: 'backend ' + d.backend }, d.backend), stateCell(d),
    w ? el('div', { class: 'actions' },
      el('span', { id: 'actmsg', class: 'note' }),
      d.stopped
        ? el('button', { onclick: () => act(name, 'start'), 'data-action': 'start' }, 'Start')
        : el('button', { onclick: () => act(name, 'stop'), 'data-action': 'stop' }, 'Stop'),
      el('button', { onclick: () => act(name, 'restart'), 'data-action': 'restart' }, 'Restart'),
      el('button', { class: 'danger', onclick: () => act(name, 'delete'), 'data-action': 'delete' }, 'Delete'))
      : null);
  // The head is drawn again only when what it shows changed: its
  // buttons must not be replaced under a pointer that is clicking them.
  head.id = 'whead';
  head.dataset.name = name;
  head.dataset.key = [d.state, d.backend, d.stopped].join(' ');
  if (!fresh && document.getElementById('logs')) {
    // Live: the head and the facts change; logs and events go on.
    const old = document.getElementById('whead');
    if (old.dataset.key !== head.dataset.key) {
      const msg = document.getElementById('actmsg');
      old.replaceWith(head);
      if (msg && document.getElementById('actmsg')) document.getElementById('actmsg').replaceWith(msg);
    }
    document.getElementById('facts').replaceChildren(facts(d));
    return;
  }
  const events = el('ul', { class: 'events', id: 'events' });
  v.replaceChildren(head,
    el('div', { class: 'cols' },
      el('div', {}, el('h2', {}, 'Describe'), el('div', { class: 'panel', id: 'facts' }, facts(d))),
      el('div', {}, el('h2', {}, 'Events'), el('div', { class: 'panel' }, events))),
    el('h2', {}, 'Logs'), el('pre', { class: 'logs', id: 'logs' }),
    el('h2', {}, 'Spec'), el('div', { class: 'panel' }, el('pre', {}, JSON.stringify(d.spec, null, 2))));
  for (const e of d.events || []) appendEvent(e);
  if (d.instance) startLogs(name);
  else document.getElementById('logs').textContent = '[no instance on the host: nothing to show]';
}

// ---- plan --------------------------------------------------------------------------

const PLAN_EXAMPLE = `apiVersion: duet/v1
kind: Workload
metadata:
  name: web
spec:
  role: app
  image:
    oci: docker.io/library/nginx:alpine
  ports:
    - host: 8080
      port: 80
`;

function drawPlan() {
  const v = document.getElementById('view');
  const ta = el('textarea', { id: 'manifest', spellcheck: 'false', 'aria-label': 'manifest' });
  ta.value = sessionStorage.getItem('duet-plan') || PLAN_EXAMPLE;
  const gutter = el('div', { class: 'gutter', id: 'gutter' });
  const out = el('div', { id: 'planout' });
  const lines = () => ta.value.split('\n').length;
  const drawGutter = (bad) => {
    gutter.replaceChildren(...Array.from({ length: lines() }, (_, i) =>
      el('div', { class: bad && bad.has(i + 1) ? 'err' : null, 'data-line': i + 1 }, String(i + 1))));
  };
  ta.addEventListener('input', () => { sessionStorage.setItem('duet-plan', ta.value); drawGutter(null); });
  ta.addEventListener('scroll', () => { gutter.scrollTop = ta.scrollTop; });
  const goto = (line, col) => {
    const parts = ta.value.split('\n');
    let pos = 0;
    for (let i = 0; i < line - 1 && i < parts.length; i++) pos += parts[i].length + 1;
    pos += Math.max(0, (col || 1) - 1);
    ta.focus();
    ta.setSelectionRange(pos, pos);
  };
  const run = async () => {
    out.replaceChildren(el('p', { class: 'note' }, 'planning…'));
    const r = await post('/v1/apply', { files: [{ name: '/dashboard/manifest.yaml', content: ta.value }], dryRun: true });
    const j = await r.json().catch(() => ({ error: r.statusText }));
    if (r.ok) {
      drawGutter(null);
      out.replaceChildren(el('p', { class: 'ok', id: 'planok' }, 'Valid. What an apply would do (nothing has changed):'),
        el('table', { id: 'plantable' },
          el('thead', {}, el('tr', {}, ['Name', 'Action', 'Backend', 'Why', 'Ruled out'].map((t) => el('th', {}, t)))),
          el('tbody', {}, (j.changes || []).map((c) => el('tr', {},
            el('td', {}, c.name), el('td', {}, c.action),
            el('td', {}, c.backend ? el('span', { class: 'backend ' + c.backend }, c.backend) : '–'),
            el('td', { class: 'why' }, (c.reasons || []).join('; ')),
            el('td', { class: 'why' }, Object.entries(c.ruled_out || {}).map(([b, why]) => `${b}: ${why}`).join('; ')))))));
      return;
    }
    // Diagnostics read FILE:LINE:COL: error: MESSAGE; the line is marked.
    const bad = new Set();
    const diags = (j.diagnostics || []).map((d) => {
      const m = d.match(/^[^:]*:(\d+):(\d+): (.*)$/);
      if (m) bad.add(Number(m[1]));
      return m ? el('div', { class: 'diag', 'data-line': m[1], 'data-col': m[2], onclick: () => goto(Number(m[1]), Number(m[2])) },
        `line ${m[1]}, column ${m[2]}: ${m[3]}`) : el('div', { class: 'diag' }, d);
    });
    (j.unplaceable || []).forEach((u) => diags.push(el('div', { class: 'diag' }, `${u.name}: ${u.reason}`)));
    drawGutter(bad);
    out.replaceChildren(el('p', { class: 'error', id: 'planerror' }, j.error || 'refused'), ...diags);
  };
  drawGutter(null);
  v.replaceChildren(el('h1', {}, 'Plan a manifest'),
    el('p', { class: 'note' }, 'Paste manifests: they are checked and placed as ', el('code', {}, 'duet apply --dry-run'), ' would, against the running fleet. Nothing is applied.'),
    el('div', { class: 'editor' }, gutter, ta),
    el('p', {}, el('button', { class: 'primary', id: 'planbtn', onclick: () => run().catch(() => {}) }, 'Validate and plan')),
    out);
}

// ---- compare -----------------------------------------------------------------------

function drawCompare(results) {
  const v = document.getElementById('view');
  if (!results.length) {
    v.replaceChildren(el('h1', {}, 'Compare'), el('p', { class: 'note' }, 'No compare has run yet: ',
      el('code', {}, 'duet compare NAME'), ' runs a workload both ways and measures them; its results show here.'));
    return;
  }
  const figures = [
    ['start to ready', (s) => s.start_ms && s.start_ms.median, (x) => (x / 1000).toFixed(2) + ' s'],
    ['memory at idle', (s) => s.memory_idle_bytes, bytes],
    ['CPU while idle', (s) => s.cpu_idle_percent, (x) => x.toFixed(1) + '%'],
    ['disk', (s) => s.disk_bytes, bytes],
    ['requests/s', (s) => s.probe && s.probe.per_second, (x) => x.toFixed(0) + '/s'],
    ['latency p50', (s) => s.probe && s.probe.p50_ms, (x) => x.toFixed(2) + ' ms'],
    ['command time', (s) => s.probe && s.probe.median_ms, (x) => x.toFixed(1) + ' ms'],
  ];
  const blocks = results.slice().reverse().map((r) => {
    const sides = r.sides || {};
    const grid = el('div', { class: 'bars' });
    for (const [label, get, fmt] of figures) {
      const vals = ['container', 'vm'].map((b) => { const s = sides[b]; const x = s && get(s); return typeof x === 'number' ? x : null; });
      if (vals.every((x) => x === null)) continue;
      const max = Math.max(...vals.filter((x) => x !== null), 1e-9);
      const bars = el('div', {}, ['container', 'vm'].map((b, i) => {
        const bar = el('div', { class: 'bar ' + b });
        bar.style.width = vals[i] === null ? '0' : Math.max(0.5, (100 * vals[i]) / max) * 0.8 + '%';
        return el('div', { class: 'barrow' }, bar, `${b}: ${vals[i] === null ? '–' : fmt(vals[i])}`);
      }));
      grid.append(el('div', {}, label), bars);
    }
    return el('div', { class: 'panel', 'data-compare': r.workload },
      el('h1', {}, r.workload, ' ', el('span', { class: 'note' }, new Date(r.finished_at).toLocaleString())),
      el('p', {}, (r.verdict && r.verdict.text) || ''), grid);
  });
  v.replaceChildren(el('h1', {}, 'Compare'), ...blocks);
}

// ---- routing -----------------------------------------------------------------------

function route() {
  const h = location.hash.replace(/^#/, '') || '/';
  if (h.startsWith('/w/')) return { kind: 'workload', name: decodeURIComponent(h.slice(3)) };
  if (h === '/plan') return { kind: 'plan' };
  if (h === '/compare') return { kind: 'compare' };
  return { kind: 'fleet' };
}

// Draws the view; fresh when the route changed, else a live update.
async function draw(fresh) {
  const r = fresh ? route() : S.view;
  if (!r) return;
  if (fresh) {
    S.view = r;
    if (S.follow) { S.follow.abort(); S.follow = null; }
    for (const a of document.querySelectorAll('[data-nav]'))
      a.classList.toggle('on', a.dataset.nav === (r.kind === 'workload' ? 'fleet' : r.kind));
  }
  try {
    if (r.kind === 'fleet') drawFleet(fresh);
    else if (r.kind === 'workload') await drawWorkload(r.name, fresh);
    else if (r.kind === 'plan' && fresh) drawPlan();
    else if (r.kind === 'compare' && fresh) drawCompare((await getJSON('/v1/compare')).results || []);
  } catch (e) {
    if (!(e instanceof Unauthorized)) console.warn(e);
  }
}

async function main() {
  try {
    S.session = await getJSON('/web/session');
    S.lastEvent = S.session.last_event || 0;
  } catch (e) {
    return;
  }
  const mode = document.getElementById('mode');
  mode.textContent = S.session.write ? 'read-write' : 'read-only';
  mode.title = S.session.write ? 'duetd --web-write: stop, start, restart and delete are offered' : 'duetd --web-write would offer stop, start, restart and delete';
  try { await loadWorkloads(); } catch (e) { return; }
  window.addEventListener('hashchange', () => draw(true));
  await draw(true);
  eventLoop();
  metricsLoop();
  // Ages tick by themselves.
  setInterval(() => { if (S.view && S.view.kind === 'fleet') drawFleet(true); }, 30000);
}

main();
