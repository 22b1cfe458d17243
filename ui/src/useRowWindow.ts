import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type RefObject } from "react";

/** Lists with more rows than this render only the rows in view (smaller ones render fully). */
export const WINDOW_ABOVE = 100;
/** Rows rendered beyond each edge of the viewport, so a fast scroll does not show blank space. */
export const OVERSCAN = 10;
/** The row height assumed until a rendered row is measured (matches `.windowed` rows in styles.css). */
export const DEFAULT_ROW_PX = 30;
/** The viewport assumed when the container has no layout yet (or none at all, as under jsdom). */
export const DEFAULT_VIEWPORT_PX = 30 * DEFAULT_ROW_PX;

export interface RowWindow {
  /** Whether the list is windowed at all (more than `WINDOW_ABOVE` rows). */
  windowed: boolean;
  /** First rendered row (inclusive) and last (exclusive). */
  start: number;
  end: number;
  /** Heights of the spacer rows standing in for the rows above and below the window. */
  padTop: number;
  padBottom: number;
  /** The scroll container. */
  ref: RefObject<HTMLDivElement | null>;
}

/** The tops of rows `0..total` (the last entry is the height of them all). */
export function rowTops(total: number, rowPx: number, extraPx?: (i: number) => number): number[] {
  const tops = new Array<number>(total + 1);
  tops[0] = 0;
  for (let i = 0; i < total; i++) tops[i + 1] = tops[i] + rowPx + (extraPx ? extraPx(i) : 0);
  return tops;
}

/** The rows `[start, end)` to render for a viewport at `scrollTop` of height `viewport`. */
export function rowRange(
  tops: number[],
  scrollTop: number,
  viewport: number,
  overscan = OVERSCAN,
): { start: number; end: number } {
  const total = tops.length - 1;
  // The last row whose top is at or above `y` (binary search; `tops` ascends).
  const rowAt = (y: number) => {
    let lo = 0;
    let hi = total - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (tops[mid] <= y) lo = mid;
      else hi = mid - 1;
    }
    return Math.max(0, lo);
  };
  const top = Math.max(0, scrollTop);
  const first = rowAt(top);
  const last = rowAt(top + viewport);
  const start = Math.max(0, first - overscan);
  const end = Math.min(total, last + 1 + overscan);
  return { start: Math.min(start, total), end: Math.max(start, end) };
}

/**
 * Windowing of a long table with rows of one fixed height: only the rows in view, plus
 * `OVERSCAN` above and below, are rendered; spacer rows keep the scrollbar honest. Scroll
 * positions are read at most once per animation frame. `rowSelector` finds a rendered row to
 * measure; `extraPx` (stable between renders) adds the known height of what a row expands to.
 */
export function useRowWindow(
  total: number,
  rowSelector: string,
  options: { rowPx?: number; extraPx?: (i: number) => number } = {},
): RowWindow {
  const ref = useRef<HTMLDivElement>(null);
  const windowed = total > WINDOW_ABOVE;
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(DEFAULT_VIEWPORT_PX);
  const [rowPx, setRowPx] = useState(options.rowPx ?? DEFAULT_ROW_PX);
  const measured = useRef(false);

  const read = useCallback(() => {
    const el = ref.current;
    if (!el) return;
    setScrollTop(el.scrollTop);
    setViewport(el.clientHeight > 0 ? el.clientHeight : DEFAULT_VIEWPORT_PX);
  }, []);

  useEffect(() => {
    const el = ref.current;
    if (!windowed || !el) return;
    let frame: number | null = null;
    const schedule = () => {
      if (frame !== null) return;
      frame = requestAnimationFrame(() => {
        frame = null;
        read();
      });
    };
    read();
    el.addEventListener("scroll", schedule, { passive: true });
    window.addEventListener("resize", schedule);
    return () => {
      el.removeEventListener("scroll", schedule);
      window.removeEventListener("resize", schedule);
      if (frame !== null) cancelAnimationFrame(frame);
    };
  }, [windowed, read]);

  // Measure a rendered row once it has layout (its height is fixed by CSS; this only corrects
  // the assumed one). Once only: a measurement forces a layout.
  useLayoutEffect(() => {
    if (!windowed || measured.current) return;
    const row = ref.current?.querySelector<HTMLElement>(rowSelector);
    const h = row?.getBoundingClientRect().height ?? 0;
    if (h <= 0) return;
    measured.current = true;
    if (Math.abs(h - rowPx) > 0.5) setRowPx(h);
  });

  const { extraPx } = options;
  const tops = useMemo(() => (windowed ? rowTops(total, rowPx, extraPx) : null), [windowed, total, rowPx, extraPx]);
  if (!tops) return { windowed, start: 0, end: total, padTop: 0, padBottom: 0, ref };
  const { start, end } = rowRange(tops, scrollTop, viewport);
  return { windowed, start, end, padTop: tops[start], padBottom: tops[total] - tops[end], ref };
}
