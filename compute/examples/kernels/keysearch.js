// Key search kernel: find k in [start, stop) with sha256(utf8(prefix + decimal(k))) == target.
//
// The reference is compute/examples/keysearch.py. decimal(k) has no sign and no leading
// zeros; keys stay below 10^15, so they are exact as numbers. The output is
// {found: k or null, checked: keys hashed}, stopping at the first match.
//
// SHA-256 (FIPS 180-4) is written out here: crypto.subtle is asynchronous, per call, and
// not part of the language. The prefix's whole 64-byte blocks are hashed once; each key
// then costs one or two compressions of the last block(s).

const MAX_KEY = 1e15;
// progress() is awaited this many times a task: the worker may pause there for the CPU share.
const PROGRESS_STEPS = 64;

// First 32 bits of the fractional parts of the cube roots of the first 64 primes.
const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

// First 32 bits of the fractional parts of the square roots of the first 8 primes.
const H0 = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

const W = new Int32Array(64);

// One 64-byte block of `bytes` at `at` into `state` (eight words, updated in place).
function compress(state, bytes, at) {
  for (let t = 0; t < 16; t++, at += 4) {
    W[t] = (bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3];
  }
  for (let t = 16; t < 64; t++) {
    const w15 = W[t - 15];
    const w2 = W[t - 2];
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    W[t] = (W[t - 16] + s0 + W[t - 7] + s1) | 0;
  }
  let a = state[0], b = state[1], c = state[2], d = state[3];
  let e = state[4], f = state[5], g = state[6], h = state[7];
  for (let t = 0; t < 64; t++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + S1 + ch + K[t] + W[t]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (S0 + maj) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0] + a) | 0;
  state[1] = (state[1] + b) | 0;
  state[2] = (state[2] + c) | 0;
  state[3] = (state[3] + d) | 0;
  state[4] = (state[4] + e) | 0;
  state[5] = (state[5] + f) | 0;
  state[6] = (state[6] + g) | 0;
  state[7] = (state[7] + h) | 0;
}

// Append the padding to `tail` (holding `used` bytes of a message `total` bytes long) and
// return how many blocks it now fills: 0x80, zeros, the length in bits as 64-bit big-endian.
function pad(tail, used, total) {
  const blocks = used + 9 <= 64 ? 1 : 2;
  tail.fill(0, used, 64 * blocks);
  tail[used] = 0x80;
  const bits = total * 8; // below 2^53: the high word is bits / 2^32
  const end = 64 * blocks;
  const high = Math.floor(bits / 0x100000000);
  const low = bits >>> 0;
  for (let i = 0; i < 4; i++) {
    tail[end - 5 - i] = (high >>> (8 * i)) & 0xff;
    tail[end - 1 - i] = (low >>> (8 * i)) & 0xff;
  }
  return blocks;
}

export function utf8(text) {
  const out = [];
  for (let i = 0; i < text.length; i++) {
    const cp = text.codePointAt(i);
    if (cp >= 0xd800 && cp <= 0xdfff) throw new Error("the text has a lone surrogate");
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    else {
      out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63),
        0x80 | (cp & 63));
      i++; // the low surrogate
    }
  }
  return new Uint8Array(out);
}

export function sha256(bytes) {
  const state = H0.slice();
  const whole = bytes.length - (bytes.length % 64);
  for (let at = 0; at < whole; at += 64) compress(state, bytes, at);
  const tail = new Uint8Array(128);
  tail.set(bytes.subarray(whole));
  const blocks = pad(tail, bytes.length - whole, bytes.length);
  for (let i = 0; i < blocks; i++) compress(state, tail, 64 * i);
  return state;
}

export function sha256Hex(text) {
  return Array.from(sha256(utf8(text)), (w) => (w >>> 0).toString(16).padStart(8, "0")).join("");
}

export async function run(input, progress, env) {
  const { prefix, target, start, stop } = checkInput(input);
  const goal = new Int32Array(8);
  for (let i = 0; i < 8; i++) goal[i] = parseInt(target.slice(8 * i, 8 * i + 8), 16) | 0;

  const head = utf8(prefix);
  const whole = head.length - (head.length % 64);
  const midstate = H0.slice();
  for (let at = 0; at < whole; at += 64) compress(midstate, head, at);
  const rest = head.length - whole;
  const tail = new Uint8Array(128);
  tail.set(head.subarray(whole));

  const state = new Int32Array(8);
  const every = Math.max(1, Math.ceil((stop - start) / PROGRESS_STEPS));
  for (let k = start; k < stop; k++) {
    if ((k - start) % every === 0) await progress((k - start) / (stop - start));
    const digits = String(k);
    for (let i = 0; i < digits.length; i++) tail[rest + i] = digits.charCodeAt(i);
    const used = rest + digits.length;
    const blocks = pad(tail, used, head.length + digits.length);
    state.set(midstate);
    for (let i = 0; i < blocks; i++) compress(state, tail, 64 * i);
    if (state[0] === goal[0] && sameWords(state, goal)) {
      await progress(1);
      return { found: k, checked: k - start + 1 };
    }
  }
  await progress(1);
  return { found: null, checked: stop - start };
}

function sameWords(x, y) {
  for (let i = 0; i < 8; i++) if (x[i] !== y[i]) return false;
  return true;
}

function checkInput(input) {
  const { prefix, target, start, stop } = input;
  if (typeof prefix !== "string") throw new Error("prefix must be a string");
  if (typeof target !== "string" || !/^[0-9a-f]{64}$/.test(target)) {
    throw new Error("target must be 64 lowercase hex digits");
  }
  if (!Number.isInteger(start) || !Number.isInteger(stop)) {
    throw new Error("start and stop must be integers");
  }
  if (!(start >= 0 && start < stop && stop <= MAX_KEY)) {
    throw new Error(`need 0 <= start < stop <= ${MAX_KEY}`);
  }
  return { prefix, target, start, stop };
}
