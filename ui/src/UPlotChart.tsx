import { useEffect, useRef } from "react";
import type uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

/** The chart options without a size: the chart takes its container's width and `height`. */
export type ChartOptions = Omit<uPlot.Options, "width" | "height">;

declare global {
  interface Window {
    /** uPlot's prebuilt script, loaded by index.html (see vite.config.ts). */
    uPlot?: typeof uPlot;
  }
}

/**
 * uPlot (a script index.html loads) needs a canvas and `matchMedia` (for the pixel ratio). Test
 * environments (jsdom) have none of them: there the chart stays an empty box and the tests check
 * the data handed to it.
 */
export function canDrawCharts(): boolean {
  return (
    typeof window !== "undefined" &&
    typeof window.uPlot === "function" &&
    typeof window.matchMedia === "function" &&
    typeof ResizeObserver === "function"
  );
}

/**
 * A uPlot chart: created once per `options` (pass a memoized object), fed with `setData` when
 * `data` changes (no flicker, no re-creation), resized with its container, destroyed on
 * unmount.
 */
export function UPlotChart({
  options,
  data,
  height = 240,
  testId,
  label,
}: {
  options: ChartOptions;
  data: uPlot.AlignedData;
  height?: number;
  testId?: string;
  /** What the chart shows, for assistive technology. */
  label: string;
}) {
  const boxRef = useRef<HTMLDivElement>(null);
  const plotRef = useRef<uPlot | null>(null);
  const dataRef = useRef(data);
  dataRef.current = data;
  /** The data the plot shows now (set at creation and by `setData`). */
  const shown = useRef<uPlot.AlignedData | null>(null);

  useEffect(() => {
    const box = boxRef.current;
    const UPlot = window.uPlot;
    if (!box) return;
    if (!UPlot || !canDrawCharts()) {
      // A real webview without uPlot: its script failed to load. Say so instead of a blank box.
      if (typeof window.matchMedia === "function" && !UPlot) box.textContent = "Chart unavailable: the chart library did not load.";
      return;
    }
    let observer: ResizeObserver | undefined;
    const width = () => Math.max(200, Math.floor(box.clientWidth));
    try {
      const plot = new UPlot({ ...options, width: width(), height }, dataRef.current, box);
      plotRef.current = plot;
      shown.current = dataRef.current;
      observer = new ResizeObserver(() => plot.setSize({ width: width(), height }));
      observer.observe(box);
    } catch (e) {
      // Never a silent blank: say the chart failed (the numbers are in the tables).
      box.textContent = `Chart unavailable: ${String(e)}`;
      console.error("chart", e);
    }
    return () => {
      observer?.disconnect();
      plotRef.current?.destroy();
      plotRef.current = null;
    };
  }, [options, height]);

  useEffect(() => {
    if (!plotRef.current || shown.current === data) return;
    plotRef.current.setData(data);
    shown.current = data;
  }, [data]);

  return <div ref={boxRef} className="chart" style={{ minHeight: height }} role="img" aria-label={label} data-testid={testId} />;
}
