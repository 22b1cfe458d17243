import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { noteCommitted, noteEvent, perfProbe, pushBounded, resetPerfProbe, startFrameSampler } from "./perfProbe";

// A hand-driven requestAnimationFrame: `frame(t)` runs the callbacks queued so far at time t.
let queued: Array<{ id: number; cb: FrameRequestCallback }> = [];
let nextId = 1;
function frame(t: number) {
  const run = queued;
  queued = [];
  run.forEach((q) => q.cb(t));
}

beforeEach(() => {
  queued = [];
  vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => {
    const id = nextId++;
    queued.push({ id, cb });
    return id;
  });
  vi.stubGlobal("cancelAnimationFrame", (id: number) => {
    queued = queued.filter((q) => q.id !== id);
  });
  resetPerfProbe();
});

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("perfProbe", () => {
  it("keeps only the newest samples", () => {
    const s: number[] = [];
    for (let i = 0; i < 7; i++) pushBounded(s, i, 5);
    expect(s).toEqual([2, 3, 4, 5, 6]);
  });

  it("measures from the first unpainted event to the frame after the commit", () => {
    noteEvent(100);
    noteEvent(110); // arrives before the paint: the first one waited longest
    noteCommitted();
    expect(window.__tradeguardPerf?.eventToPaintMs).toEqual([]);
    frame(135);
    expect(perfProbe().eventToPaintMs).toEqual([35]);

    noteCommitted(); // a commit without a new event records nothing
    frame(150);
    expect(perfProbe().eventToPaintMs).toEqual([35]);

    noteEvent(200);
    noteCommitted();
    frame(216.5);
    expect(perfProbe().eventToPaintMs).toEqual([35, 16.5]);
  });

  it("samples frame intervals until stopped", () => {
    const stop = startFrameSampler();
    frame(0);
    frame(16);
    frame(40);
    expect(perfProbe().frames).toEqual([16, 24]);
    stop();
    frame(60);
    expect(perfProbe().frames).toEqual([16, 24]);
    expect(queued).toHaveLength(0);
  });
  it("samples frames only between startFrames and stopFrames, with one loop however often started", () => {
    resetPerfProbe();
    const probe = perfProbe();
    frame(0);
    expect(queued).toHaveLength(0);
    probe.startFrames();
    probe.startFrames();
    expect(queued).toHaveLength(1);
    frame(10);
    frame(26);
    frame(43);
    expect(probe.frames).toEqual([16, 17]);
    probe.stopFrames();
    frame(60);
    expect(queued).toHaveLength(0);
    expect(probe.frames).toEqual([16, 17]);
  });
});
