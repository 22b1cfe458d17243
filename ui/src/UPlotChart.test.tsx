import { act, render } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type uPlot from "uplot";
import { canDrawCharts, UPlotChart, type ChartOptions } from "./UPlotChart";

// uPlot cannot draw in jsdom: a stand-in records what the component asks of it.
const made = vi.hoisted(() => [] as Array<{ opts: { width: number; height: number }; data: unknown; target: HTMLElement; calls: string[] }>);
const FakeUPlot = class {
  calls: string[] = [];
  constructor(opts: { width: number; height: number }, data: unknown, target: HTMLElement) {
    made.push({ opts, data, target, calls: this.calls });
  }
  setData(data: unknown) {
    this.calls.push(`setData ${JSON.stringify(data)}`);
  }
  setSize(s: { width: number; height: number }) {
    this.calls.push(`setSize ${s.width}x${s.height}`);
  }
  destroy() {
    this.calls.push("destroy");
  }
};

let resize: (() => void) | null = null;
beforeEach(() => {
  made.length = 0;
  vi.stubGlobal("uPlot", FakeUPlot);
  vi.stubGlobal("matchMedia", () => ({ matches: false, addEventListener() {}, removeEventListener() {} }));
  vi.stubGlobal(
    "ResizeObserver",
    class {
      constructor(cb: () => void) {
        resize = cb;
      }
      observe() {}
      disconnect() {
        resize = null;
      }
    },
  );
});
afterEach(() => vi.unstubAllGlobals());

const options: ChartOptions = { series: [{}, { label: "P&L" }] };

describe("UPlotChart", () => {
  it("creates the plot once, feeds new data with setData, resizes with its box and is destroyed on unmount", async () => {
    const first: uPlot.AlignedData = [[1, 2], [10, 20]];
    const { rerender, unmount, getByTestId } = render(<UPlotChart options={options} data={first} height={180} testId="c" label="test chart" />);
    await act(async () => {});
    expect(made).toHaveLength(1);
    expect(made[0].data).toBe(first);
    expect(made[0].opts.height).toBe(180);
    expect(made[0].target).toBe(getByTestId("c"));

    rerender(<UPlotChart options={options} data={[[1, 2, 3], [10, 20, 5]]} height={180} testId="c" label="test chart" />);
    expect(made).toHaveLength(1);
    expect(made[0].calls).toEqual(["setData [[1,2,3],[10,20,5]]"]);

    act(() => resize?.());
    expect(made[0].calls.at(-1)).toMatch(/^setSize \d+x180$/);

    unmount();
    expect(made[0].calls.at(-1)).toBe("destroy");
    expect(resize).toBeNull();
  });

  it("draws nothing where there is no canvas (jsdom without matchMedia)", async () => {
    vi.unstubAllGlobals();
    expect(canDrawCharts()).toBe(false);
    const { getByRole } = render(<UPlotChart options={options} data={[[1], [1]]} label="payoff" />);
    await act(async () => {});
    expect(made).toHaveLength(0);
    expect(getByRole("img").getAttribute("aria-label")).toBe("payoff");
  });
});
