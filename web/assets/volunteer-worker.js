// Pando: one Web Worker of a volunteer tab. It loads the user's function
// file, then applies the function to each value the page gives it.
//
// The file exports the function in either way:
//   module.exports['/pando/1.0.0'] = function (x, cb) { cb(null, result) }   (the original Pando's)
//   export default function (x) { return result }                             (a value or a Promise)
// A file with an `import` or `export` statement is loaded as an ES module
// (it may import the files beside it); any other as CommonJS (`require` of
// the files beside it works, synchronously).
'use strict';

const KEY = '/pando/1.0.0';
let fn = null;

function describe(err) {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

function pick(exports, url) {
  if (typeof exports === 'function') return exports;
  if (exports && typeof exports[KEY] === 'function') return exports[KEY];
  if (exports && typeof exports.default === 'function') return exports.default;
  throw new Error(`${url} exports no function: use module.exports['${KEY}'] = function (x, cb) {…} or export default function (x) {…}`);
}

const modules = new Map();

function fetchSync(url) {
  const xhr = new XMLHttpRequest();
  xhr.open('GET', url, false);
  xhr.send();
  if (xhr.status !== 200) throw new Error(`cannot load ${url}: HTTP ${xhr.status} ${xhr.responseText}`);
  return xhr.responseText;
}

function commonjs(source, url) {
  const module = { exports: {} };
  modules.set(url, module);
  const require = (spec) => {
    let target = new URL(spec, url).href;
    if (!/\.[a-z]+$/i.test(new URL(target).pathname)) target += '.js';
    const known = modules.get(target);
    if (known) return known.exports;
    return commonjs(fetchSync(target), target);
  };
  new Function('module', 'exports', 'require', `${source}\n//# sourceURL=${url}`)(module, module.exports, require);
  return module.exports;
}

async function load(url) {
  const response = await fetch(url);
  const source = await response.text();
  if (!response.ok) throw new Error(`cannot load ${url}: HTTP ${response.status} ${source}`);
  if (/(^|[\n;])\s*(import|export)[\s{*]/.test(source)) {
    const mod = await import(url);
    return pick(mod.default !== undefined ? mod.default : mod, url);
  }
  return pick(commonjs(source, url), url);
}

function call(x) {
  if (fn.length >= 2) {
    return new Promise((resolve, reject) => {
      fn(x, (err, result) => (err ? reject(err) : resolve(result)));
    });
  }
  return Promise.resolve().then(() => fn(x));
}

self.onmessage = async (event) => {
  const m = event.data;
  if (m.type === 'load') {
    try {
      fn = await load(new URL(m.url, self.location.href).href);
      self.postMessage({ type: 'ready' });
    } catch (err) {
      self.postMessage({ type: 'load-error', error: describe(err) });
    }
  } else if (m.type === 'run') {
    // The values run one after the other, each answer sent as soon as it is
    // ready: the page times each value from the answer before it, and a
    // Web Worker stuck in a value has sent every answer before it.
    for (const job of m.jobs) {
      const t0 = performance.now();
      let answer;
      try {
        const result = await call(job.value);
        answer = { type: 'result', id: job.id, value: String(result), ms: performance.now() - t0 };
      } catch (err) {
        answer = { type: 'failed', id: job.id, reason: describe(err), ms: performance.now() - t0 };
      }
      self.postMessage({ type: 'answers', answers: [answer] });
    }
  }
};
