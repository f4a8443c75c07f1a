// Pando's monitoring page. The master pushes one snapshot a few times a
// second over Server-Sent Events (monitor/events); each one updates, in
// place, the summary, the devices' table (one row per connection, created
// once, only changed cells rewritten) and the uPlot of throughput.
//
// Each update's script time (parse, table, plot drawn in uPlot's immediate
// mode) is kept in `window.pandoMonitor.times` for the browser tests, and
// shown in the footer.
(function () {
  'use strict';

  // Samples kept in the plot: two minutes at two updates a second.
  const WINDOW = 240;
  const TIMES_KEPT = 1000;

  const token = new URLSearchParams(location.search).get('token') || '';
  const byId = (id) => document.getElementById(id);

  const perf = { updates: 0, times: [], devices: 0, last: 0 };
  window.pandoMonitor = perf;

  // Writes text only when it changed (no DOM work for unchanged cells).
  function put(el, text) {
    if (el.pandoText !== text) {
      el.pandoText = text;
      el.textContent = text;
    }
  }

  const colour = (id) => `hsl(${(id * 137.508) % 360}, 65%, 42%)`;
  const rate = (r) => (r >= 100 ? r.toFixed(0) : r.toFixed(1));
  const clock = (ms) => new Date(ms).toLocaleTimeString();

  // ---- summary ----
  const summary = {};
  for (const el of document.querySelectorAll('#summary [data-field]')) {
    summary[el.dataset.field] = el;
  }
  const replicas = byId('replicas');

  function renderSummary(u) {
    const l = u.lender;
    put(summary.connected, String(u.connected));
    put(summary.rate, rate(u.rate));
    put(summary.read, String(l.read));
    put(summary.in_flight, String(l.in_flight));
    put(summary.relent, String(l.relent));
    put(summary.waiting, String(l.waiting_to_be_relent));
    put(summary.skipped, String(l.skipped));
    put(summary.output, String(l.output));
    put(summary.input, l.input_ended ? 'ended' : 'open');
    if (u.replicas) {
      replicas.hidden = false;
      put(replicas, `Replicas wait for workers: each value needs ${u.replicas.wanted} workers, ` +
        `${u.replicas.connected} connected.`);
    } else if (!replicas.hidden) {
      replicas.hidden = true;
    }
  }

  // ---- devices' table ----
  const tbody = byId('devices-body');
  const count = byId('devices-count');
  const rows = new Map(); // id -> { tr, cells, seen }

  function makeRow(w) {
    const tr = document.createElement('tr');
    const cells = [];
    const classes = ['', '', '', 'num', 'num', 'num', 'num', ''];
    for (const c of classes) {
      const td = document.createElement('td');
      if (c) td.className = c;
      tr.appendChild(td);
      cells.push(td);
    }
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = colour(w.id);
    const name = document.createElement('span');
    cells[0].appendChild(swatch);
    cells[0].appendChild(name);
    name.textContent = w.name; // text, never HTML: names come from the workers
    cells[1].textContent = '#' + w.id;
    cells[2].textContent = w.peer;
    cells[7].textContent = clock(w.since);
    cells[7].title = new Date(w.since).toString();
    tr.dataset.id = String(w.id);
    return { tr, cells, seen: 0, gone: false };
  }

  function renderTable(u, stamp) {
    let fragment = null;
    for (const w of u.workers) {
      let row = rows.get(w.id);
      if (!row) {
        row = makeRow(w);
        rows.set(w.id, row);
        // Ids grow with each connection and arrive in that order: new rows go last.
        (fragment ||= document.createDocumentFragment()).appendChild(row.tr);
      }
      row.seen = stamp;
      const c = row.cells;
      put(c[3], String(w.done));
      put(c[4], rate(w.rate));
      put(c[5], String(w.in_flight));
      put(c[6], String(w.failed));
      if (row.gone !== !w.connected) {
        row.gone = !w.connected;
        row.tr.classList.toggle('gone', row.gone);
      }
    }
    if (fragment) tbody.appendChild(fragment);
    for (const [id, row] of rows) {
      if (row.seen !== stamp) {
        row.tr.remove();
        rows.delete(id);
      }
    }
    put(count, `${u.connected} connected, ${u.workers.length - u.connected} left recently`);
  }

  // ---- throughput plot ----
  const plotEl = byId('plot');
  const xs = [];
  const total = [];
  let devices = []; // [{ id, name, values, missing }] in series order
  let plot = null;

  function plotOptions() {
    return {
      width: Math.max(300, plotEl.clientWidth || 800),
      height: 320,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [{}, { label: 'items/s', size: 60 }],
      series: [
        {},
        { label: 'total', stroke: '#1d232b', width: 2, points: { show: false } },
        ...devices.map((d) => ({ label: d.name, stroke: colour(d.id), width: 1, points: { show: false } })),
      ],
    };
  }

  const plotData = () => [xs, total, ...devices.map((d) => d.values)];

  function rebuildPlot() {
    if (plot) plot.destroy();
    plot = new uPlot(plotOptions(), plotData(), plotEl);
  }

  function renderPlot(u) {
    const present = new Map();
    for (const w of u.workers) if (w.connected) present.set(w.id, w);
    xs.push(u.t / 1000);
    total.push(u.rate);
    let changed = false;
    const known = new Set();
    for (const d of devices) {
      known.add(d.id);
      const w = present.get(d.id);
      d.values.push(w ? w.rate : null);
      d.missing = w ? 0 : d.missing + 1;
    }
    for (const w of present.values()) {
      if (!known.has(w.id)) {
        const values = new Array(xs.length - 1).fill(null);
        values.push(w.rate);
        devices.push({ id: w.id, name: w.name, values, missing: 0 });
        changed = true;
      }
    }
    if (xs.length > WINDOW) {
      xs.shift();
      total.shift();
      for (const d of devices) d.values.shift();
    }
    // A device gone for the whole window has nothing left to draw.
    if (devices.some((d) => d.missing >= WINDOW)) {
      devices = devices.filter((d) => d.missing < WINDOW);
      changed = true;
    }
    if (!plot || changed) {
      rebuildPlot();
    } else {
      // Immediate mode: drawn now, inside this update's measured time.
      plot.batch(() => plot.setData(plotData()));
    }
  }

  window.addEventListener('resize', () => {
    if (plot) plot.setSize({ width: Math.max(300, plotEl.clientWidth), height: 320 });
  });

  // ---- updates ----
  const status = byId('status');
  const updateTime = byId('update-time');
  let stamp = 0;

  function onUpdate(event) {
    const t0 = performance.now();
    const u = JSON.parse(event.data);
    stamp += 1;
    renderSummary(u);
    renderTable(u, stamp);
    renderPlot(u);
    const dt = performance.now() - t0;
    perf.times.push(dt);
    if (perf.times.length > TIMES_KEPT) perf.times.shift();
    perf.updates += 1;
    perf.devices = u.connected;
    perf.last = dt;
    put(updateTime, `last update ${dt.toFixed(1)} ms of script`);
    document.dispatchEvent(new CustomEvent('pando-update', { detail: perf }));
  }

  const events = new EventSource('monitor/events?token=' + encodeURIComponent(token));
  events.onopen = () => {
    status.className = 'status live';
    put(status, 'live');
  };
  events.onerror = () => {
    status.className = 'status lost';
    put(status, 'connection lost, retrying…');
  };
  events.onmessage = onUpdate;
})();
