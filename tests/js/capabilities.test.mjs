import assert from "node:assert/strict";
import { test } from "node:test";

import {
  describeHost,
  platformClass,
  wasmFeatures,
} from "../../static/socialgrid/worker/capabilities.js";

const UA = {
  chromeLinux:
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
  headless:
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
  chromeWindows:
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
  edge:
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
  chromeAndroid:
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
  chromeMac:
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
  firefoxLinux: "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
  firefoxArm: "Mozilla/5.0 (X11; Linux aarch64; rv:121.0) Gecko/20100101 Firefox/121.0",
  firefox32: "Mozilla/5.0 (X11; Linux i686; rv:109.0) Gecko/20100101 Firefox/115.0",
  firefoxWow64: "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:52.0) Gecko/20100101 Firefox/52.0",
  firefoxAndroid: "Mozilla/5.0 (Android 13; Mobile; rv:120.0) Gecko/120.0 Firefox/120.0",
  safariMac:
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
  chromeIphone:
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
};

const CHROMIUM = [{ brand: "Chromium", version: "120" }, { brand: "Google Chrome", version: "120" }];

test("the engine and architecture come from the user-agent string", () => {
  const expected = {
    chromeLinux: "blink-x86_64",
    headless: "blink-x86_64",
    chromeWindows: "blink-x86_64",
    edge: "blink-x86_64",
    chromeAndroid: "blink-unknown",
    firefoxLinux: "gecko-x86_64",
    firefoxArm: "gecko-aarch64",
    firefox32: "gecko-x86",
    firefoxWow64: "gecko-x86",
    firefoxAndroid: "gecko-unknown",
    safariMac: "webkit-unknown", // Apple silicon says "Intel" too
    chromeIphone: "webkit-aarch64", // every iOS browser is WebKit
  };
  for (const [name, platform] of Object.entries(expected)) {
    assert.equal(platformClass(UA[name]), platform, name);
  }
});

test("userAgentData's hints win over the string", () => {
  const arm64 = { brands: CHROMIUM, architecture: "arm", bitness: "64" };
  assert.equal(platformClass(UA.chromeMac, arm64), "blink-aarch64");
  assert.equal(platformClass(UA.chromeAndroid, arm64), "blink-aarch64");
  const x86 = { brands: CHROMIUM, architecture: "x86", bitness: "64" };
  assert.equal(platformClass(UA.chromeMac, x86), "blink-x86_64");
  assert.equal(platformClass(UA.chromeWindows, { ...x86, bitness: "32" }), "blink-x86");
  // Low-entropy brands only (getHighEntropyValues refused): the string gives the architecture.
  assert.equal(platformClass(UA.chromeLinux, { brands: CHROMIUM }), "blink-x86_64");
});

test("the class always fits the protocol's pattern", () => {
  const odd = platformClass("Some Browser/1.0 (weird OS)", { architecture: "RISC V!", bitness: "64" });
  assert.match(odd, /^[a-z0-9_.-]{1,40}$/);
  assert.match(platformClass(""), /^[a-z0-9_.-]{1,40}$/);
});

test("wasm features are found by validating tiny modules", () => {
  assert.deepEqual(wasmFeatures(WebAssembly, false), { wasm: true, simd: true, threads: false });
  assert.deepEqual(wasmFeatures(WebAssembly, true), { wasm: true, simd: true, threads: true });
  assert.deepEqual(wasmFeatures(undefined, true), { wasm: false, simd: false, threads: false });
  const noSimd = { validate: (bytes) => bytes.length === 8 };
  assert.deepEqual(wasmFeatures(noSimd, true), { wasm: true, simd: false, threads: false });
});

test("describeHost fills in hello.capabilities", async () => {
  const navigator = {
    hardwareConcurrency: 8,
    deviceMemory: 4,
    userAgent: UA.chromeMac,
    userAgentData: {
      brands: CHROMIUM,
      getHighEntropyValues: async () => ({ brands: CHROMIUM, architecture: "arm", bitness: "64" }),
    },
  };
  const capabilities = await describeHost({
    navigator,
    wasm: WebAssembly,
    crossOriginIsolated: false,
    benchmarkFpops: 2.5e9,
  });
  assert.deepEqual(capabilities, {
    cores: 8,
    memory_mb: 4096,
    user_agent: UA.chromeMac,
    platform: "blink-aarch64",
    wasm: true,
    simd: true,
    threads: false,
    benchmark_fpops: 2.5e9,
  });
});

test("describeHost leaves out what the browser does not tell", async () => {
  const capabilities = await describeHost({
    navigator: { userAgent: "x".repeat(400) },
    wasm: WebAssembly,
    benchmarkFpops: null,
  });
  assert.equal(capabilities.cores, 1);
  assert.equal(capabilities.user_agent.length, 300);
  assert.ok(!("memory_mb" in capabilities));
  assert.ok(!("benchmark_fpops" in capabilities));
});
