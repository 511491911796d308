// Mandelbrot tile kernel: escape counts of one tile, as base64 of little-endian uint16.
//
// The reference is compute/examples/mandelbrot.py. Replicas are compared exactly, so the
// loop below does the same double operations in the same order as the Python and the C
// module (wasm/mandelbrot.c); a rearranged expression would round differently.
//
// run(input, progress, env): env.wasm, when given, is the compiled mandelbrot.wasm and does
// the work; otherwise the same loop runs in JavaScript. Progress is awaited after each chunk
// of rows: that is where the worker may pause to keep to the volunteer's CPU share. Uses
// nothing but the language and WebAssembly, so it runs in a Web Worker and in Node alike.

const MAX_TILE_PIXELS = 512 * 512;
const MAX_ITER = 65535;
const PROGRESS_STEPS = 32;

export async function run(input, progress, env) {
  const tile = checkTile(input);
  const wasm = env && env.wasm ? env.wasm : null;
  const bytes = wasm ? await tileWasm(tile, wasm, progress) : await tileJs(tile, progress);
  return { counts: base64(bytes) };
}

function checkTile(input) {
  const tile = {};
  for (const key of ["re_min", "re_max", "im_min", "im_max"]) {
    if (typeof input[key] !== "number" || !Number.isFinite(input[key])) {
      throw new Error(`${key} must be a number`);
    }
    tile[key] = input[key];
  }
  for (const key of ["width", "height", "max_iter", "x", "y", "w", "h"]) {
    if (!Number.isInteger(input[key])) throw new Error(`${key} must be an integer`);
    tile[key] = input[key];
  }
  if (!(tile.re_min < tile.re_max && tile.im_min < tile.im_max)) {
    throw new Error("the region is empty");
  }
  if (tile.max_iter < 1 || tile.max_iter > MAX_ITER) {
    throw new Error(`max_iter must be in 1..${MAX_ITER}`);
  }
  if (tile.w < 1 || tile.h < 1 || tile.w * tile.h > MAX_TILE_PIXELS) {
    throw new Error(`a tile has 1..${MAX_TILE_PIXELS} pixels`);
  }
  if (tile.x < 0 || tile.x + tile.w > tile.width || tile.y < 0 || tile.y + tile.h > tile.height) {
    throw new Error("the tile is outside the image");
  }
  tile.dx = (tile.re_max - tile.re_min) / tile.width;
  tile.dy = (tile.im_max - tile.im_min) / tile.height;
  return tile;
}

// Rows in chunks, so progress moves without a call per row.
function chunks(h) {
  const size = Math.max(1, Math.ceil(h / PROGRESS_STEPS));
  const out = [];
  for (let row0 = 0; row0 < h; row0 += size) out.push([row0, Math.min(h, row0 + size)]);
  return out;
}

async function tileWasm(tile, module, progress) {
  const instance = await WebAssembly.instantiate(module, {});
  const { memory, counts_ptr: countsPtr, tile_rows: tileRows } = instance.exports;
  for (const [row0, row1] of chunks(tile.h)) {
    tileRows(tile.re_min, tile.dx, tile.im_max, tile.dy, tile.x, tile.y, tile.w, row0, row1,
      tile.max_iter);
    await progress(row1 / tile.h);
  }
  // WebAssembly memory is little-endian by definition: the bytes are already the output.
  return new Uint8Array(memory.buffer, countsPtr(), 2 * tile.w * tile.h).slice();
}

async function tileJs(tile, progress) {
  const { re_min: reMin, im_max: imMax, dx, dy, x, y, w, max_iter: maxIter } = tile;
  const bytes = new Uint8Array(2 * w * tile.h);
  for (const [row0, row1] of chunks(tile.h)) {
    for (let row = row0; row < row1; row++) {
      const ci = imMax - (y + row) * dy;
      let at = 2 * row * w;
      for (let col = 0; col < w; col++) {
        const cr = reMin + (x + col) * dx;
        let zr = 0.0;
        let zi = 0.0;
        let n = 0;
        while (n < maxIter) {
          const zr2 = zr * zr;
          const zi2 = zi * zi;
          if (zr2 + zi2 > 4.0) break;
          zi = 2.0 * zr * zi + ci;
          zr = zr2 - zi2 + cr;
          n++;
        }
        bytes[at++] = n & 0xff;
        bytes[at++] = n >>> 8;
      }
    }
    await progress(row1 / tile.h);
  }
  return bytes;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Standard base64 with padding, as Python's base64.b64encode (btoa is not in the language).
function base64(bytes) {
  const parts = [];
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    parts.push(ALPHABET[v >>> 18] + ALPHABET[(v >>> 12) & 63] + ALPHABET[(v >>> 6) & 63] +
      ALPHABET[v & 63]);
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const v = bytes[i] << 16;
    parts.push(ALPHABET[v >>> 18] + ALPHABET[(v >>> 12) & 63] + "==");
  } else if (rest === 2) {
    const v = (bytes[i] << 16) | (bytes[i + 1] << 8);
    parts.push(ALPHABET[v >>> 18] + ALPHABET[(v >>> 12) & 63] + ALPHABET[(v >>> 6) & 63] + "=");
  }
  return parts.join("");
}
