import { useEffect, useRef } from "react";
import type uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

/** The chart options without a size: the chart takes its container's width and `height`. */
export type ChartOptions = Omit<uPlot.Options, "width" | "height">;

/**
 * uPlot needs a canvas and `matchMedia` (for the pixel ratio). Test environments (jsdom) have
 * neither: there the chart stays an empty box and the tests check the data handed to it.
 */
export function canDrawCharts(): boolean {
  return typeof window !== "undefined" && typeof window.matchMedia === "function" && typeof ResizeObserver === "function";
}

/**
 * A uPlot chart: created once per `options` (pass a memoized object), fed with `setData` when
 * `data` changes (no flicker, no re-creation), resized with its container, destroyed on
 * unmount. uPlot itself loads on first use, so screens without charts do not pay for it.
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

  useEffect(() => {
    const box = boxRef.current;
    if (!box || !canDrawCharts()) return;
    let cancelled = false;
    let observer: ResizeObserver | undefined;
    void import("uplot").then(({ default: UPlot }) => {
      if (cancelled) return;
      const width = () => Math.max(200, Math.floor(box.clientWidth));
      const plot = new UPlot({ ...options, width: width(), height }, dataRef.current, box);
      plotRef.current = plot;
      observer = new ResizeObserver(() => plot.setSize({ width: width(), height }));
      observer.observe(box);
    });
    return () => {
      cancelled = true;
      observer?.disconnect();
      plotRef.current?.destroy();
      plotRef.current = null;
    };
  }, [options, height]);

  useEffect(() => {
    plotRef.current?.setData(data);
  }, [data]);

  return <div ref={boxRef} className="chart" style={{ minHeight: height }} role="img" aria-label={label} data-testid={testId} />;
}
