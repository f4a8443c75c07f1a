// The original Pando's form: a CommonJS module with a callback.
// Try: seq 1000 | pando --js examples/js/square-callback.js
const { times } = require('./times.js');

module.exports['/pando/1.0.0'] = function (x, cb) {
  setTimeout(() => cb(null, times(Number(x), Number(x))), 0);
};
