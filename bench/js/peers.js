// The JavaScript originals, timed the same way as pando-bench's Rust rows:
//   node peers.js pipeline N RUNS        pull(count(N), map(work), drain())
//   node peers.js limit N RUNS           pull(count(N), limit(map(work), 8), drain())
//   node peers.js lend K N RUNS          pull(count(N), lender, drain()), K sub-streams
//                                        doing an async map (process.nextTick): synchronous
//                                        sub-streams overflow pull-lend-stream's stack
// One warm-up run, then RUNS runs; each prints its nanoseconds per item on a line of its own.
// The modules come from NODE_PATH (pando-bench installs them with npm under target/).
'use strict'
var pull = require('pull-stream')

function work (x) { return (x * 3) % 4294967296 }

function pipeline (n, done) {
  pull(pull.count(n), pull.map(work), pull.drain(null, done))
}

function limited (n, done) {
  var limit = require('pull-limit')
  pull(pull.count(n), limit(pull.map(work), 8), pull.drain(null, done))
}

function lender (k) {
  var lendStream = require('pull-lend-stream')
  return function (n, done) {
    var lender = lendStream()
    pull(pull.count(n), lender, pull.drain(null, done))
    for (var i = 0; i < k; i++) {
      lender.lendStream(function (err, sub) {
        if (err) throw err
        pull(sub, pull.asyncMap(function (x, cb) {
          process.nextTick(cb, null, work(x))
        }), sub)
      })
    }
  }
}

var args = process.argv.slice(2)
var mode = args.shift()
var job
if (mode === 'pipeline') job = pipeline
else if (mode === 'limit') job = limited
else if (mode === 'lend') job = lender(Number(args.shift()))
else throw new Error('unknown mode ' + mode)
var n = Number(args[0])
var runs = Number(args[1])
if (!(n > 0) || !(runs > 0)) throw new Error('usage: node peers.js MODE [K] N RUNS')

// pull.count(n) gives 0..n, n + 1 items.
function once (i) {
  var start = process.hrtime.bigint()
  job(n - 1, function (err) {
    if (err && err !== true) throw err
    var ns = Number(process.hrtime.bigint() - start)
    if (i > 0) process.stdout.write((ns / n).toFixed(3) + '\n')
    if (i < runs) setImmediate(once, i + 1)
  })
}
once(0)
