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

  // `parts`: the last update's time per part (parse, summary, table, plot).
  const perf = { updates: 0, times: [], parts: [], devices: 0, rows: 0, bytes: 0, last: 0 };
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
  const two = (n) => (n < 10 ? '0' : '') + n;
  // Local time, HH:MM:SS (toLocaleTimeString is slow for hundreds of rows).
  const clock = (ms) => {
    const d = new Date(ms);
    return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  };

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
  // Rows are created once, while the update is within its time budget (the
  // rest on the next updates: hundreds of devices joining at once never make
  // one slow update), and only the rows on screen are rewritten: the others
  // keep their latest values until they scroll into view.
  const UPDATE_BUDGET_MS = 10;
  const tbody = byId('devices-body');
  const count = byId('devices-count');
  const rows = new Map(); // id -> { tr, cells, seen, gone, visible, latest }
  const rowOf = new WeakMap(); // tr -> row

  function fill(row) {
    const w = row.latest;
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

  const onScreen = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const row = rowOf.get(entry.target);
      if (!row) continue;
      row.visible = entry.isIntersecting;
      if (row.visible) fill(row);
    }
  });

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
    tr.dataset.id = String(w.id);
    const row = { tr, cells, seen: 0, gone: false, visible: false, latest: w };
    rowOf.set(tr, row);
    fill(row);
    onScreen.observe(tr);
    return row;
  }

  function renderTable(u, stamp, started) {
    let fragment = null;
    const deadline = started + UPDATE_BUDGET_MS;
    let late = false;
    for (const w of u.workers) {
      let row = rows.get(w.id);
      if (!row) {
        if (late || performance.now() > deadline) {
          late = true;
          continue;
        }
        row = makeRow(w);
        rows.set(w.id, row);
        // Ids grow with each connection and arrive in that order: new rows go last.
        (fragment ||= document.createDocumentFragment()).appendChild(row.tr);
      }
      row.seen = stamp;
      row.latest = w;
      if (row.visible) fill(row);
    }
    if (fragment) tbody.appendChild(fragment);
    for (const [id, row] of rows) {
      if (row.seen !== stamp) {
        onScreen.unobserve(row.tr);
        row.tr.remove();
        rows.delete(id);
      }
    }
    put(count, `${u.connected} connected, ${u.workers.length - u.connected} left recently` +
      (selectable() ? ' · click a row to draw its line' : ''));
  }

  // ---- throughput plot ----
  // The total, and one line per device while there are at most MAX_LINES of
  // them. With more, a line per device would be a blur (and slow): the plot
  // draws the slowest, median and fastest device instead, plus the devices
  // picked in the table (a click on a row), at most MAX_LINES.
  const MAX_LINES = 16;
  const plotEl = byId('plot');
  const plotKey = byId('plot-key');
  const xs = [];
  const total = [];
  const spread = { min: [], median: [], max: [] };
  let devices = []; // [{ id, name, values, missing }]: every device's recent rates
  const picked = new Set();
  const drawn = []; // the devices drawn, in series order (from FIXED on)
  let many = false;

  const selectable = () => many;

  tbody.addEventListener('click', (event) => {
    const tr = event.target.closest('tr');
    if (!tr || !many) return;
    const id = Number(tr.dataset.id);
    if (picked.has(id)) {
      picked.delete(id);
      tr.classList.remove('picked');
    } else if (picked.size < MAX_LINES) {
      picked.add(id);
      tr.classList.add('picked');
    }
    chooseLines();
  });

  // The total on the left axis, the devices on the right one (their own scale:
  // one device is a small part of the total).
  const line = (label, stroke, width, dash, scale) =>
    ({ label, stroke, width, dash, scale: scale || 'dev', points: { show: false } });
  const fromZero = (_u, _min, max) => [0, Math.max(1, max * 1.1)];

  // Series: x, total, the slowest, median and fastest device (shown with
  // many devices), then one per device drawn. Lines come and go with
  // addSeries and delSeries: the plot is built once.
  const FIXED = 5;
  const deviceLine = (d) => line(d.name, colour(d.id), 1);

  function plotOptions() {
    return {
      width: Math.max(300, plotEl.clientWidth || 800),
      height: 320,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: { x: { time: true }, total: { range: fromZero }, dev: { range: fromZero } },
      axes: [
        // Whole seconds at least, as a local clock.
        { incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600], values: (_u, ticks) => ticks.map((t) => clock(t * 1000)) },
        { scale: 'total', label: 'items/s in total', size: 60 },
        { scale: 'dev', label: 'items/s per device', size: 60, side: 1, grid: { show: false } },
      ],
      series: [
        {},
        line('total', '#1d232b', 2, undefined, 'total'),
        { ...line('slowest device', '#8a94a0', 1, [4, 4]), show: false },
        { ...line('median device', '#4a6fa5', 1.5), show: false },
        { ...line('fastest device', '#8a94a0', 1, [4, 4]), show: false },
      ],
    };
  }

  const plotData = () => [xs, total, spread.min, spread.median, spread.max, ...drawn.map((d) => d.values)];

  function setKey() {
    put(plotKey, many
      ? 'total in black (left axis); the slowest and fastest device in grey, the median one in blue ' +
        '(right axis); click rows of the table to draw those devices'
      : 'total in black (left axis), one line per device in its colour in the table (right axis)');
  }

  // Picks the lines to draw, changes the plot's series to match, and draws.
  function chooseLines() {
    const wasMany = many;
    const live = devices.filter((d) => d.missing === 0).length;
    many = live > MAX_LINES;
    const wanted = new Set(many ? devices.filter((d) => picked.has(d.id)) : devices);
    plot.batch(() => {
      for (let i = drawn.length - 1; i >= 0; i -= 1) {
        if (!wanted.has(drawn[i])) {
          plot.delSeries(FIXED + i);
          drawn.splice(i, 1);
        }
      }
      const kept = new Set(drawn);
      for (const d of wanted) {
        if (!kept.has(d)) {
          plot.addSeries(deviceLine(d));
          drawn.push(d);
        }
      }
      if (wasMany !== many) {
        for (let i = 2; i < FIXED; i += 1) plot.setSeries(i, { show: many });
        setKey();
      }
      // Immediate mode: drawn now, inside this update's measured time.
      plot.setData(plotData());
    });
  }

  function renderPlot(u) {
    const rates = [];
    const present = new Map();
    for (const w of u.workers) {
      if (w.connected) {
        present.set(w.id, w);
        rates.push(w.rate);
      }
    }
    rates.sort((a, b) => a - b);
    xs.push(u.t / 1000);
    total.push(u.rate);
    spread.min.push(rates.length ? rates[0] : null);
    spread.median.push(rates.length ? rates[rates.length >> 1] : null);
    spread.max.push(rates.length ? rates[rates.length - 1] : null);
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
      }
    }
    if (xs.length > WINDOW) {
      xs.shift();
      total.shift();
      spread.min.shift();
      spread.median.shift();
      spread.max.shift();
      for (const d of devices) d.values.shift();
    }
    // A device gone for the whole window has nothing left to draw.
    if (devices.some((d) => d.missing >= WINDOW)) {
      devices = devices.filter((d) => d.missing < WINDOW);
    }
    chooseLines();
  }

  // An empty plot until the first update.
  const plot = new uPlot(plotOptions(), plotData(), plotEl);
  setKey();

  window.addEventListener('resize', () => {
    plot.setSize({ width: Math.max(300, plotEl.clientWidth), height: 320 });
  });

  // ---- updates ----
  const status = byId('status');
  const updateTime = byId('update-time');
  let stamp = 0;

  function onUpdate(event) {
    const t0 = performance.now();
    const u = JSON.parse(event.data);
    const t1 = performance.now();
    stamp += 1;
    // The plot first: it reads the layout, which is still clean before the
    // summary and the table change the page (no forced layout).
    renderPlot(u);
    const t2 = performance.now();
    renderSummary(u);
    const t3 = performance.now();
    renderTable(u, stamp, t0);
    const t4 = performance.now();
    const dt = t4 - t0;
    perf.times.push(dt);
    perf.parts.push([t1 - t0, t3 - t2, t4 - t3, t2 - t1]);
    perf.rows = rows.size;
    if (perf.times.length > TIMES_KEPT) {
      perf.times.shift();
      perf.parts.shift();
    }
    perf.updates += 1;
    perf.devices = u.connected;
    perf.bytes = event.data.length;
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
    // The browser retries a lost connection, not a refused one.
    put(status, events.readyState === EventSource.CLOSED
      ? 'refused: reload the page from the URL pando printed'
      : 'connection lost, retrying…');
  };
  events.onmessage = onUpdate;
})();
