// What this browser tells the server about itself in hello.capabilities.
//
// `platform` is the homogeneous-redundancy class: replicas of a work unit that must agree
// bit for bit can be sent to hosts of the same class. It is "<engine>-<architecture>",
// e.g. "blink-x86_64", from navigator.userAgentData when the browser has it (the user-agent
// string of Chromium is frozen, and every Mac claims "Intel") and the string otherwise.

const MAX_CORES = 256;

// Smallest modules that need the feature: a function returning a v128 (SIMD) and a shared
// memory (threads). A browser without the feature refuses to validate them.
const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const WASM_SIMD = [
  ...WASM_MAGIC,
  ...[0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b], // type: () -> v128
  ...[0x03, 0x02, 0x01, 0x00], // one function of that type
  ...[0x0a, 0x08, 0x01, 0x06, 0x00, 0x41, 0x00, 0xfd, 0x0f, 0x0b], // i32.const 0; i8x16.splat
];
const WASM_THREADS = [...WASM_MAGIC, ...[0x05, 0x04, 0x01, 0x03, 0x01, 0x01]]; // shared memory 1..1

export async function describeHost({ navigator, wasm, crossOriginIsolated, benchmarkFpops }) {
  const userAgent = String(navigator.userAgent || "");
  const capabilities = {
    cores: Math.min(MAX_CORES, Math.max(1, Math.floor(navigator.hardwareConcurrency) || 1)),
    user_agent: userAgent.slice(0, 300),
    platform: platformClass(userAgent, await userAgentHints(navigator)),
    ...wasmFeatures(wasm, crossOriginIsolated),
  };
  if (navigator.deviceMemory > 0) {
    capabilities.memory_mb = Math.round(navigator.deviceMemory * 1024);
  }
  if (benchmarkFpops) capabilities.benchmark_fpops = benchmarkFpops;
  return capabilities;
}

export function wasmFeatures(wasm, crossOriginIsolated) {
  const valid = (bytes) => {
    try {
      return Boolean(wasm) && wasm.validate(new Uint8Array(bytes));
    } catch {
      return false;
    }
  };
  return {
    wasm: valid(WASM_MAGIC),
    simd: valid(WASM_SIMD),
    // Shared memory is only usable when the page is cross-origin isolated.
    threads: crossOriginIsolated === true && valid(WASM_THREADS),
  };
}

async function userAgentHints(navigator) {
  const data = navigator.userAgentData;
  if (!data) return null;
  try {
    return await data.getHighEntropyValues(["architecture", "bitness"]);
  } catch {
    return { brands: data.brands };
  }
}

export function platformClass(userAgent, hints = null) {
  const name = `${engineOf(userAgent, hints)}-${architectureOf(userAgent, hints)}`;
  return name.toLowerCase().replace(/[^a-z0-9_.-]/g, "").slice(0, 40);
}

const IOS = /\b(iPhone|iPad|iPod)\b/;

function engineOf(ua, hints) {
  const brands = (hints && hints.brands) || [];
  if (brands.some((b) => b.brand === "Chromium")) return "blink";
  if (IOS.test(ua)) return "webkit"; // every iOS browser is Safari's engine underneath
  if (/\bFirefox\//.test(ua) || /\brv:[\d.]+\) Gecko\//.test(ua)) return "gecko";
  if (/(Chrome|Chromium|Edg|OPR)\//.test(ua)) return "blink"; // also HeadlessChrome/
  if (/AppleWebKit\//.test(ua)) return "webkit";
  return "other";
}

function architectureOf(ua, hints) {
  if (hints && hints.architecture) {
    const bits = hints.bitness === "32" ? 32 : 64;
    if (hints.architecture === "x86") return bits === 64 ? "x86_64" : "x86";
    if (hints.architecture === "arm") return bits === 64 ? "aarch64" : "arm";
    return `${hints.architecture}${bits}`;
  }
  if (IOS.test(ua)) return "aarch64";
  if (/\b(aarch64|arm64)\b/i.test(ua)) return "aarch64";
  if (/\bWOW64\b/.test(ua)) return "x86"; // a 32-bit browser on 64-bit Windows
  if (/\b(x86_64|x64|amd64|Win64)\b/i.test(ua)) return "x86_64";
  if (/\b(i[3-6]86|x86)\b/i.test(ua)) return "x86";
  if (/\barm/i.test(ua)) return "arm";
  return "unknown"; // "Intel Mac OS X" is said by Apple silicon too; Android often says nothing
}
