import { afterEach, describe, expect, it, vi } from "vitest";
import { formatMovePct, formatMult, formatRatioPct, formatSigned, formatUsd, localZone, toNumber } from "./format";

describe("format", () => {
  it("formats dollars with separators and signs", () => {
    expect(formatUsd("123456.785")).toBe("$123,456.79");
    expect(formatUsd(-1250)).toBe("−$1,250.00");
    expect(formatUsd("45", { signed: true })).toBe("+$45.00");
    expect(formatUsd(-0.001, { signed: true })).toBe("$0.00");
    expect(formatUsd(-98765.4, { whole: true })).toBe("−$98,765");
    expect(formatUsd(null)).toBe("—");
    expect(formatUsd("n/a")).toBe("—");
  });

  it("formats ratios, moves, multipliers and signed figures", () => {
    expect(formatRatioPct(0.2351)).toBe("23.5 %");
    expect(formatRatioPct(null)).toBe("—");
    expect(formatMovePct(-15)).toBe("−15 %");
    expect(formatMovePct(1.5)).toBe("+1.5 %");
    expect(formatMovePct(0)).toBe("0 %");
    expect(formatMult(1.5)).toBe("×1.5");
    expect(formatSigned(-12.345, 1)).toBe("−12.3");
    expect(formatSigned(1234.5)).toBe("+1,234.50");
    expect(toNumber("20000.00")).toBe(20000);
    expect(toNumber("")).toBeNull();
  });
});

describe("localZone", () => {
  afterEach(() => vi.restoreAllMocks());
  const zone = (timeZone: string | undefined) =>
    vi.spyOn(Intl, "DateTimeFormat").mockImplementation(
      () => ({ resolvedOptions: () => ({ timeZone }) }) as unknown as Intl.DateTimeFormat,
    );

  it("names the machine's zone, UTC in short", () => {
    zone("Europe/London");
    expect(localZone()).toBe("Europe/London");
    zone("Etc/UTC");
    expect(localZone()).toBe("UTC");
  });

  it("says local time when the zone is unknown or Intl refuses", () => {
    zone(undefined);
    expect(localZone()).toBe("local time");
    vi.spyOn(Intl, "DateTimeFormat").mockImplementation(() => {
      throw new RangeError("Incorrect locale information provided");
    });
    expect(localZone()).toBe("local time");
  });
});
