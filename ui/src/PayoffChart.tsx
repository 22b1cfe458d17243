import { useMemo, useRef } from "react";
import type uPlot from "uplot";
import { formatUsd } from "./format";
import { payoffMarkers, payoffSeries, type PayoffInput, type PayoffMarkers } from "./risk";
import { UPlotChart, type ChartOptions } from "./UPlotChart";

const GRID = { stroke: "#1f2a35", width: 1 };
const AXIS = { stroke: "#8b98a5", grid: GRID, ticks: GRID };

/** Draws the zero line, the strikes (dotted) and the spot (solid, labelled) over the plot. */
function drawMarkers(u: uPlot, m: PayoffMarkers) {
  const { ctx, bbox } = u;
  const top = bbox.top;
  const bottom = bbox.top + bbox.height;
  const inX = (x: number) => x >= bbox.left && x <= bbox.left + bbox.width;
  ctx.save();
  ctx.lineWidth = Math.max(1, devicePixelRatio);
  const zero = u.valToPos(0, "y", true);
  if (zero >= top && zero <= bottom) {
    ctx.strokeStyle = "#8b98a5";
    ctx.setLineDash([]);
    ctx.beginPath();
    ctx.moveTo(bbox.left, zero);
    ctx.lineTo(bbox.left + bbox.width, zero);
    ctx.stroke();
  }
  ctx.strokeStyle = "#6e7681";
  ctx.setLineDash([3 * devicePixelRatio, 3 * devicePixelRatio]);
  for (const k of m.strikes) {
    const x = u.valToPos(k, "x", true);
    if (!inX(x)) continue;
    ctx.beginPath();
    ctx.moveTo(x, top);
    ctx.lineTo(x, bottom);
    ctx.stroke();
  }
  if (m.spot !== null) {
    const x = u.valToPos(m.spot, "x", true);
    if (inX(x)) {
      ctx.setLineDash([]);
      ctx.strokeStyle = "#d29922";
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
      ctx.stroke();
      ctx.fillStyle = "#d29922";
      ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
      ctx.fillText(`spot ${m.spot.toFixed(2)}`, x + 4 * devicePixelRatio, top + 12 * devicePixelRatio);
    }
  }
  ctx.restore();
}

/** P&L at expiry and today across underlying prices, with the spot and strikes marked. */
export function PayoffChart({ risk }: { risk: PayoffInput }) {
  const series = useMemo(() => payoffSeries(risk), [risk]);
  const data = useMemo<uPlot.AlignedData>(() => [series.price, series.expiry, series.today], [series]);
  // Markers move with every refresh; the draw hook reads the newest, the plot is not re-created.
  const markers = useRef(payoffMarkers(risk));
  markers.current = payoffMarkers(risk);
  const options = useMemo<ChartOptions>(
    () => ({
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false } },
      series: [
        { label: "Price", value: (_u, v) => (v === null ? "—" : v.toFixed(2)) },
        { label: "P&L at expiry", stroke: "#79c0ff", width: 2, value: (_u, v) => formatUsd(v, { signed: true, whole: true }) },
        { label: "P&L today", stroke: "#d2a8ff", width: 2, dash: [6, 4], value: (_u, v) => formatUsd(v, { signed: true, whole: true }) },
      ],
      axes: [
        { ...AXIS, values: (_u, ticks) => ticks.map((t) => t.toFixed(0)) },
        { ...AXIS, size: 70, values: (_u, ticks) => ticks.map((t) => formatUsd(t, { whole: true })) },
      ],
      hooks: { draw: [(u) => drawMarkers(u, markers.current)] },
    }),
    [],
  );
  return (
    <UPlotChart
      options={options}
      data={data}
      height={260}
      testId="payoff-chart"
      label={`Payoff of the strategy in ${risk.underlying}: P&L at expiry and today by underlying price`}
    />
  );
}
