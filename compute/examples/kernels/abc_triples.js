// ABC triples kernel: every abc-hit (a < b, a + b = c, gcd(a, b) = 1, rad(abc) < c) with
// c_lo <= c < c_hi, as [a, b, c, rad(abc)] ordered by c, then a.
//
// The reference is compute/examples/abc_triples.py, which explains the search. All values
// stay below 2^53 (c < 10^7, so every product here is below 10^14): plain numbers are exact.

const MAX_C = 10_000_000;
// progress() is awaited this many times a task: the worker may pause there for the CPU share.
const PROGRESS_STEPS = 64;

export async function run(input, progress, env) {
  const [cLo, cHi] = checkRange(input);
  const rad = radicals(cHi);
  const order = byRadical(rad, Math.floor(cHi / 2));
  const hits = [];
  const start = Math.max(cLo, 3);
  const every = Math.max(1, Math.ceil((cHi - start) / PROGRESS_STEPS));
  for (let c = start; c < cHi; c++) {
    if ((c - start) % every === 0) await progress((c - start) / (cHi - start));
    const rc = rad[c];
    const bound = Math.floor((c - 1) / rc); // rad(a) * rad(b) may be at most this
    if (bound < 2) continue;
    const found = [];
    for (let i = 0; i < order.length; i++) {
      const a = order[i];
      const ra = rad[a];
      if (2 * ra > bound) break;
      const b = c - a;
      if (a < b && ra * rad[b] <= bound && gcd(a, b) === 1) {
        found.push([a, b, c, ra * rad[b] * rc]);
      }
    }
    found.sort((x, y) => x[0] - y[0]);
    for (const hit of found) hits.push(hit);
  }
  await progress(1);
  return { hits };
}

function checkRange(input) {
  const { c_lo: cLo, c_hi: cHi } = input;
  if (!Number.isInteger(cLo) || !Number.isInteger(cHi)) {
    throw new Error("c_lo and c_hi must be integers");
  }
  if (!(cLo >= 1 && cLo < cHi && cHi <= MAX_C)) {
    throw new Error(`need 1 <= c_lo < c_hi <= ${MAX_C}`);
  }
  return [cLo, cHi];
}

// rad(k) for 0 <= k < n: each prime multiplies into all its multiples.
function radicals(n) {
  const rad = new Uint32Array(n).fill(1);
  for (let p = 2; p < n; p++) {
    if (rad[p] !== 1) continue; // a smaller prime divides p
    for (let m = p; m < n; m += p) rad[m] *= p;
  }
  return rad;
}

// 1..last ordered by radical, ties by value: a counting sort, since rad(a) <= a <= last.
function byRadical(rad, last) {
  const starts = new Uint32Array(last + 2);
  for (let a = 1; a <= last; a++) starts[rad[a] + 1]++;
  for (let r = 1; r <= last + 1; r++) starts[r] += starts[r - 1];
  const order = new Uint32Array(last);
  for (let a = 1; a <= last; a++) order[starts[rad[a]]++] = a;
  return order;
}

function gcd(a, b) {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}
