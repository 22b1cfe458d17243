// Event-to-paint probe for benchmarks: cheap, always on, silent. Read it from the webview with
// `window.__tradeguardPerf` (latencies and frame intervals in milliseconds, oldest first). Frame
// intervals are sampled only between `startFrames()` and `stopFrames()` (the benchmark calls them):
// a frame loop running all the time would keep an idle app rendering 60 times a second.

export interface PerfProbe {
  /** From a `portfolio-changed` event to the first animation frame after React committed it. */
  eventToPaintMs: number[];
  /** Intervals between animation frames while sampling (see `startFrames`). */
  frames: number[];
  /** Starts sampling frame intervals (idempotent). */
  startFrames: () => void;
  /** Stops sampling frame intervals. */
  stopFrames: () => void;
}

let stopSampler: (() => void) | null = null;

function newProbe(): PerfProbe {
  return {
    eventToPaintMs: [],
    frames: [],
    startFrames: () => {
      stopSampler ??= startFrameSampler();
    },
    stopFrames: () => {
      stopSampler?.();
      stopSampler = null;
    },
  };
}

declare global {
  interface Window {
    __tradeguardPerf?: PerfProbe;
  }
}

/** How many samples each series keeps (the newest). */
export const PERF_CAPACITY = 5000;

/** Appends `value`, dropping the oldest samples beyond `capacity`. */
export function pushBounded(series: number[], value: number, capacity = PERF_CAPACITY): void {
  series.push(value);
  if (series.length > capacity) series.splice(0, series.length - capacity);
}

/** The probe on `window` (created on first use). */
export function perfProbe(): PerfProbe {
  if (!window.__tradeguardPerf) window.__tradeguardPerf = newProbe();
  return window.__tradeguardPerf;
}

const raf = (cb: FrameRequestCallback): number | null =>
  typeof requestAnimationFrame === "function" ? requestAnimationFrame(cb) : null;

// The oldest event not yet painted: events that arrive before a paint all wait for that paint,
// and the first of them waited longest.
let pendingSince: number | null = null;

/** An `onPortfolio` event arrived (call before setting state). */
export function noteEvent(now = performance.now()): void {
  if (pendingSince === null) pendingSince = now;
}

/** React committed the rows of the noted event(s): record the latency at the next frame. */
export function noteCommitted(): void {
  const since = pendingSince;
  if (since === null) return;
  pendingSince = null;
  raf((t) => pushBounded(perfProbe().eventToPaintMs, Math.max(0, t - since)));
}

/** Records frame intervals until the returned function is called. */
export function startFrameSampler(): () => void {
  let last: number | null = null;
  let id: number | null = null;
  let running = true;
  const tick = (t: number) => {
    if (!running) return;
    if (last !== null) pushBounded(perfProbe().frames, t - last);
    last = t;
    id = raf(tick);
  };
  id = raf(tick);
  return () => {
    running = false;
    if (id !== null && typeof cancelAnimationFrame === "function") cancelAnimationFrame(id);
  };
}

/** Tests only: forget a pending event and empty the series. */
export function resetPerfProbe(): void {
  pendingSince = null;
  window.__tradeguardPerf?.stopFrames();
  window.__tradeguardPerf = newProbe();
}
