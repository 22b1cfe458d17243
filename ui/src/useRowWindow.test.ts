import { describe, expect, it } from "vitest";
import { rowRange, rowTops } from "./useRowWindow";

describe("rowTops / rowRange", () => {
  it("adds the height of expanded rows to every row below them", () => {
    const tops = rowTops(5, 10, (i) => (i === 1 ? 50 : 0));
    expect(tops).toEqual([0, 10, 70, 80, 90, 100]);
  });

  it("covers the viewport plus the overscan, clamped to the list", () => {
    const tops = rowTops(1000, 30);
    expect(rowRange(tops, 0, 300, 10)).toEqual({ start: 0, end: 21 }); // rows 0..10 in view
    expect(rowRange(tops, 3000, 300, 10)).toEqual({ start: 90, end: 121 });
    expect(rowRange(tops, 30 * 995, 300, 10)).toEqual({ start: 985, end: 1000 });
    expect(rowRange(tops, 1e9, 300, 10)).toEqual({ start: 989, end: 1000 }); // scrolled past the end
  });

  it("finds the rows in view across an expanded row", () => {
    const tops = rowTops(300, 30, (i) => (i === 0 ? 600 : 0)); // row 0 is 630 px tall
    expect(rowRange(tops, 630, 60, 0)).toEqual({ start: 1, end: 4 });
    expect(rowRange(tops, 100, 60, 0)).toEqual({ start: 0, end: 1 });
  });
});
