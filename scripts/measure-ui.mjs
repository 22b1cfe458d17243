// UI benchmark: the real app (WebKitGTK under Xvfb, driven through tauri-driver) on the
// simulator's load-test scenario — 500 option positions, each quoted at 10 Hz. After a warm-up it
// records, for MEASURE_SECONDS, the UI's own probe (ui/src/perfProbe.ts): the time from a
// portfolio event's arrival to the frame that paints it, and the interval between frames. Reports
// p50/p95/p99/max and writes artifacts/bench/ui.json. Run with `make measure-ui`.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { APP_BIN, ARTIFACTS, Session, startDriver, stopDriver } from "../tests/e2e/webdriver.mjs";

const POSITIONS = Number(process.env.MEASURE_POSITIONS ?? 500);
const WARMUP_SECONDS = Number(process.env.MEASURE_WARMUP ?? 10);
const MEASURE_SECONDS = Number(process.env.MEASURE_SECONDS ?? 30);

process.env.TRADEGUARD_DATA_DIR = mkdtempSync(join(tmpdir(), "tradeguard-ui-bench-"));
process.env.HOME = mkdtempSync(join(tmpdir(), "tradeguard-ui-bench-home-"));
process.env.TRADEGUARD_SIM_SCENARIO = `load:${POSITIONS}`;

function quantiles(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN);
  return { n: s.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: s.length ? s[s.length - 1] : NaN };
}

const fmt = (x) => (Number.isFinite(x) ? x.toFixed(1) : "—");

if (!APP_BIN) throw new Error("TRADEGUARD_APP_BIN must point at the built app (run through `make measure-ui`)");
const driver = await startDriver();
let session;
try {
  session = await Session.create(driver.base, APP_BIN);
  const js = (script) => session.cmd("POST", "/execute/sync", { script, args: [] });
  // The table renders only the rows in view; it counts them all in `data-total-rows`.
  const rows = () =>
    js(`const t = document.querySelector('[data-testid="positions"]'); return t ? Number(t.getAttribute('data-total-rows')) || 0 : 0;`);
  const deadline = Date.now() + 120_000;
  let n = 0;
  while ((n = await rows()) < POSITIONS) {
    if (Date.now() > deadline) throw new Error(`only ${n} of ${POSITIONS} position rows after 120 s`);
    await sleep(250);
  }
  console.log(`${n} position rows in the table; warming up ${WARMUP_SECONDS} s`);
  await sleep(WARMUP_SECONDS * 1000);
  const probe = await js(`return !!window.__tradeguardPerf;`);
  if (!probe) throw new Error("the UI has no window.__tradeguardPerf probe");
  await js(`const p = window.__tradeguardPerf; p.eventToPaintMs.length = 0; p.frames.length = 0; p.startFrames(); return 0;`);
  await sleep(MEASURE_SECONDS * 1000);
  const perf = await js(`const p = window.__tradeguardPerf; p.stopFrames(); return { e: p.eventToPaintMs.slice(), f: p.frames.slice() };`);
  const eventToPaint = quantiles(perf.e);
  const frames = quantiles(perf.f);
  const result = {
    positions: POSITIONS,
    quoteRateHz: 10,
    seconds: MEASURE_SECONDS,
    eventsPainted: eventToPaint.n,
    eventToPaintMs: eventToPaint,
    frameMs: frames,
  };
  const dir = join(ARTIFACTS, "bench");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "ui.json"), JSON.stringify(result, null, 2));
  await session.screenshot("load-500");
  console.log(
    `UI with ${POSITIONS} positions at 10 Hz, ${MEASURE_SECONDS} s: ` +
      `${eventToPaint.n} updates painted; event→paint p50 ${fmt(eventToPaint.p50)} ms, p95 ${fmt(eventToPaint.p95)} ms, ` +
      `p99 ${fmt(eventToPaint.p99)} ms, max ${fmt(eventToPaint.max)} ms; ` +
      `frame interval p50 ${fmt(frames.p50)} ms, p95 ${fmt(frames.p95)} ms, max ${fmt(frames.max)} ms (${frames.n} frames)`,
  );
} finally {
  try {
    await session?.close();
  } finally {
    await stopDriver(driver.child);
  }
}
