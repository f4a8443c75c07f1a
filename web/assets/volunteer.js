// Pando: the volunteer page. It joins the master over a WebSocket (JSON
// frames, docs/PROTOCOL.md "The JSON codec"), runs the values it is lent in
// Web Workers, and sends the results back.
'use strict';
(() => {
  const VERSION = 3;
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.search).get('token') || '';
  const functionUrl = FUNCTION === null ? null : new URL(`t/${encodeURIComponent(token)}/fn/${encodeURIComponent(FUNCTION)}`, location.href).href;

  function tabName() {
    const ua = navigator.userAgent;
    const browser = (ua.match(/(Edg|OPR|Firefox|Chrome|Chromium|Version)\/(\d+)/) || [, 'browser', ''])
      .slice(1).join(' ').replace(/^Version/, 'Safari').trim();
    const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Mac OS X/.test(ua) ? 'macOS'
      : /Windows/.test(ua) ? 'Windows' : /Linux/.test(ua) ? 'Linux' : 'unknown OS';
    const id = Math.floor(Math.random() * 0x10000).toString(16).padStart(4, '0');
    return `${browser} on ${os} #${id}`;
  }

  const s = {
    name: tabName(),
    ws: null,
    welcome: null,
    queue: [],            // values received, not started: {id, value}
    slots: [],            // Web Workers: {worker, ready, job, timer, retire}
    wanted: Math.max(1, (navigator.hardwareConcurrency || 2) - 1),
    outgoing: [],         // answers to send: {type: 'result'|'failed', ...}
    flushing: false,
    held: 0,
    done: 0,
    failed: 0,
    computeMs: 0,
    since: performance.now(),
    lastSent: 0,
    lastHeard: 0,
    masterDone: false,
    stopping: false,
    over: false,
    status: 'starting',
    log: [],
    recent: [],           // [time, done] samples for items/s
  };
  window.pando = s;       // for the curious, and for the browser tests

  function log(line) {
    s.log.push(line);
    const el = $('log');
    el.textContent += `${new Date().toLocaleTimeString()} ${line}\n`;
    el.scrollTop = el.scrollHeight;
  }

  function setStatus(status, text) {
    s.status = status;
    $("status").textContent = text || status;
    $("status").dataset.status = status;
  }

  function send(frame) {
    if (!s.ws || s.ws.readyState !== WebSocket.OPEN) return;
    s.ws.send(JSON.stringify(frame));
    s.lastSent = performance.now();
  }

  // The Web Workers.
  function spawn() {
    // jobs: the ids given to this Web Worker and not answered yet, in order.
    const slot = { worker: new Worker(new URL('volunteer-worker.js', location.href), { type: 'module' }), ready: false, jobs: [], timer: null, retire: false };
    slot.worker.onmessage = (e) => fromWorker(slot, e.data);
    slot.worker.onerror = (e) => {
      e.preventDefault();
      log(`a Web Worker failed: ${e.message || 'unknown error'}`);
      giveUp(slot, `the Web Worker failed: ${e.message}`);
      replace(slot);
      dispatch();
    };
    slot.worker.postMessage({ type: 'load', url: functionUrl });
    s.slots.push(slot);
    return slot;
  }

  function replace(slot) {
    clearTimeout(slot.timer);
    slot.worker.terminate();
    const i = s.slots.indexOf(slot);
    if (i >= 0) s.slots.splice(i, 1);
    if (!s.over && !slot.retire) spawn();
  }

  function resize() {
    if (s.over || !s.welcome) return;
    let alive = s.slots.filter((x) => !x.retire);
    while (alive.length < s.wanted) alive.push(spawn());
    for (const slot of alive.slice(s.wanted)) {
      slot.retire = true;
      if (slot.jobs.length === 0) replace(slot);
    }
  }

  function fromWorker(slot, m) {
    if (m.type === 'ready') {
      slot.ready = true;
    } else if (m.type === 'load-error') {
      log(`cannot load the function: ${m.error}`);
      leave(`the function could not be loaded in this browser: ${m.error}`);
      return;
    } else if (m.type === 'answers') {
      for (const a of m.answers) {
        if (slot.jobs[0] !== a.id) continue; // answered already (timed out)
        slot.jobs.shift();
        s.computeMs += a.ms;
        answer(a.type === 'result' ? { type: 'result', id: a.id, value: a.value } : { type: 'failed', id: a.id, reason: a.reason });
      }
      clearTimeout(slot.timer);
      if (slot.jobs.length > 0) arm(slot);
    }
    if (slot.retire && slot.jobs.length === 0) replace(slot);
    dispatch();
  }

  // The value a Web Worker runs now (its first unanswered one) fails with
  // `reason`; the others it was given go back to the front of the queue.
  function giveUp(slot, reason) {
    clearTimeout(slot.timer);
    const [first, ...rest] = slot.jobs;
    slot.jobs = [];
    if (first === undefined) return;
    s.queue.unshift(...rest.map((id) => slot.given.get(id)));
    answer({ type: 'failed', id: first, reason });
  }

  // The value a Web Worker runs now has `value_timeout_ms` from now (from
  // the answer before it) to finish.
  function arm(slot) {
    const timeout = s.welcome.value_timeout_ms;
    const id = slot.jobs[0];
    if (timeout) slot.timer = setTimeout(() => timedOut(slot, id, timeout), timeout);
  }

  function answer(frame) {
    s.held -= 1;
    if (frame.type === 'result') s.done += 1; else { s.failed += 1; log(`value #${frame.id} failed: ${frame.reason}`); }
    s.outgoing.push(frame);
    if (!s.flushing) {
      s.flushing = true;
      setTimeout(flush, 0);
    }
  }

  // Each idle Web Worker gets its share of the queue (at most 32 values) in
  // one message: one round trip between the page and the Web Worker for
  // many values.
  function dispatch() {
    if (s.over) return;
    const idle = s.slots.filter((x) => x.ready && x.jobs.length === 0 && !x.retire);
    for (const [i, slot] of idle.entries()) {
      if (s.queue.length === 0) break;
      const share = Math.min(32, Math.ceil(s.queue.length / (idle.length - i)));
      const jobs = s.queue.splice(0, share);
      slot.jobs = jobs.map((j) => j.id);
      slot.given = new Map(jobs.map((j) => [j.id, j]));
      slot.worker.postMessage({ type: 'run', jobs });
      arm(slot);
    }
    if (s.stopping && s.queue.length === 0 && s.slots.every((x) => x.jobs.length === 0)) finishStop();
  }

  function timedOut(slot, id, timeout) {
    if (slot.jobs[0] !== id) return;
    s.computeMs += timeout;
    log(`value #${id} ran longer than ${timeout} ms (--timeout): its Web Worker is stopped and replaced`);
    giveUp(slot, `no result within ${timeout} ms (--timeout); the Web Worker was stopped`);
    replace(slot);
    dispatch();
  }

  // Answers leave together, in one `results` frame when they can, within the
  // master's frame limit; a result too large for it fails instead.
  function flush() {
    s.flushing = false;
    if (s.stopping && (s.queue.length > 0 || s.slots.some((x) => x.jobs.length > 0))) return; // sent with Done
    const limit = s.welcome ? s.welcome.max_frame - 64 : 1 << 20;
    let batch = [];
    let size = 0;
    const out = () => {
      if (batch.length === 1) send({ type: 'result', id: batch[0].id, value: batch[0].value });
      else if (batch.length > 1) send({ type: 'results', results: batch });
      batch = [];
      size = 0;
    };
    for (const frame of s.outgoing) {
      if (frame.type === 'failed') {
        out();
        send(frame);
        continue;
      }
      let bytes = frame.value.length * 3 + 32;
      if (bytes > limit) bytes = new TextEncoder().encode(JSON.stringify(frame.value)).length + 32;
      if (bytes > limit) {
        out();
        send({ type: 'failed', id: frame.id, reason: `a result of ${bytes} bytes, over the master's frame limit of ${limit}` });
        continue;
      }
      if (size + bytes > limit) out();
      batch.push({ id: frame.id, value: frame.value });
      size += bytes;
    }
    out();
    s.outgoing = [];
    if (s.masterDone && s.held === 0) finish();
  }

  function finish() {
    if (s.over) return;
    send({ type: 'done' });
    s.over = true;
    setStatus('finished', 'finished: every value has its result. Thank you!');
    stopWorkers();
    s.ws.close(1000, 'done');
  }

  // Stop: run what this tab holds without sending results (so that no more
  // values come), then send them all with Done: a clean leave.
  function stop() {
    if (s.over || s.stopping) return;
    s.stopping = true;
    $('stop').disabled = true;
    setStatus('stopping', 'stopping: finishing the values this tab holds…');
    dispatchAll();
  }

  function dispatchAll() {
    const wasStopping = s.stopping;
    s.stopping = false;
    dispatch();
    s.stopping = wasStopping;
    if (s.queue.length === 0 && s.slots.every((x) => x.jobs.length === 0)) finishStop();
  }

  function finishStop() {
    if (s.over) return;
    s.stopping = false;
    flush();
    if (s.over) return;
    send({ type: 'done' });
    s.over = true;
    setStatus('stopped', 'stopped: this tab left cleanly. Thank you!');
    stopWorkers();
    s.ws.close(1000, 'stopped');
  }

  function leave(reason) {
    if (s.over) return;
    send({ type: 'error', message: reason });
    s.over = true;
    setStatus('failed', `stopped: ${reason}`);
    stopWorkers();
    s.ws.close(1000, 'error');
  }

  function stopWorkers() {
    for (const slot of s.slots) {
      clearTimeout(slot.timer);
      slot.worker.terminate();
    }
    s.slots = [];
  }

  function fromMaster(m) {
    s.lastHeard = performance.now();
    switch (m.type) {
      case 'welcome':
        s.welcome = m;
        setStatus('working', 'connected: working for the master');
        log(`joined as "${s.name}"`);
        resize();
        setInterval(beat, Math.max(50, Math.min(m.heartbeat_ms, 1000)));
        break;
      case 'reject':
        s.over = true;
        setStatus('refused', `refused by the master: ${m.reason}`);
        break;
      case 'value':
        received(m.id, m.value);
        break;
      case 'values':
        for (const v of m.values) received(v.id, v.value);
        break;
      case 'heartbeat':
        if (performance.now() - s.lastSent > s.welcome.heartbeat_ms / 2) send({ type: 'heartbeat' });
        break;
      case 'done':
        s.masterDone = true;
        if (s.held === 0) flush(); // sends what is left, then Done
        break;
      case 'error':
        log(`the master stopped this tab: ${m.message}`);
        s.over = true;
        setStatus('failed', `disconnected by the master: ${m.message}`);
        stopWorkers();
        break;
      default:
        log(`unknown frame from the master: ${m.type}`);
    }
  }

  function received(id, value) {
    s.held += 1;
    s.queue.push({ id, value });
    if (s.stopping) dispatchAll(); else dispatch();
  }

  function beat() {
    if (s.over) return;
    const now = performance.now();
    if (now - s.lastHeard > s.welcome.heartbeat_timeout_ms) {
      leave(`the master sent nothing for ${s.welcome.heartbeat_timeout_ms} ms`);
      return;
    }
    if (now - s.lastSent >= s.welcome.heartbeat_ms) send({ type: 'heartbeat' });
  }

  function show() {
    const now = performance.now();
    s.recent.push([now, s.done]);
    while (s.recent.length > 1 && now - s.recent[0][0] > 5000) s.recent.shift();
    const [t0, d0] = s.recent[0];
    const rate = now > t0 ? ((s.done - d0) * 1000) / (now - t0) : 0;
    const cores = Math.max(1, s.slots.length);
    $('done').textContent = s.done;
    $('rate').textContent = rate >= 100 ? Math.round(rate) : rate.toFixed(1);
    $('busy').textContent = `${Math.min(100, Math.round((100 * s.computeMs) / ((now - s.since) * cores)))}%`;
    $('failed').textContent = s.failed;
    $('held').textContent = s.held;
  }

  function connect() {
    $('name').textContent = s.name;
    $('function').textContent = FUNCTION === null ? 'the function' : FUNCTION;
    const select = $('workers');
    const max = Math.max(s.wanted + 1, navigator.hardwareConcurrency || 1, 1);
    for (let n = 1; n <= max; n++) select.add(new Option(String(n), String(n), n === s.wanted, n === s.wanted));
    select.onchange = () => { s.wanted = Number(select.value); resize(); dispatch(); };
    $('stop').onclick = stop;
    setInterval(show, 500);
    if (functionUrl === null) {
      setStatus('no-function', 'this run has no JavaScript function: the master was started without --js, so only native workers (pando work) can help');
      $('stop').disabled = true;
      return;
    }
    const endpoint = new URL('browser', location.href);
    endpoint.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    endpoint.search = '';
    const ws = new WebSocket(endpoint.href);
    s.ws = ws;
    ws.onopen = () => {
      setStatus('joining');
      s.lastHeard = performance.now();
      send({ type: 'hello', version: VERSION, token, name: s.name });
    };
    ws.onmessage = (e) => {
      let m;
      try {
        m = JSON.parse(e.data);
      } catch (err) {
        leave(`the master sent a message that is not JSON: ${err.message}`);
        return;
      }
      fromMaster(m);
    };
    ws.onclose = (e) => {
      if (!s.over) {
        s.over = true;
        setStatus('disconnected', `disconnected from the master${e.reason ? `: ${e.reason}` : ''} (code ${e.code})`);
        stopWorkers();
      }
      $('stop').disabled = true;
    };
  }

  connect();
})();
