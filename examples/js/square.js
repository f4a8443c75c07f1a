// pando --js examples/js/square.js: each input line is a number; the result is its square.
// Try: seq 1000 | pando --js examples/js/square.js
export default function square(x) {
  return Number(x) * Number(x);
}
