import { afterEach, describe, expect, it, vi } from "vitest";
import {
  formatEtDateTime,
  formatEtSession,
  formatEtTime,
  formatGrouped,
  formatLocalDateTime,
  formatLocalTime,
  formatMovePct,
  formatMult,
  formatRatioPct,
  formatSigned,
  formatUsd,
  localZone,
  readLocalZone,
  toNumber,
} from "./format";

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

describe("readLocalZone", () => {
  afterEach(() => vi.restoreAllMocks());
  const zone = (timeZone: string | undefined) =>
    vi.spyOn(Intl, "DateTimeFormat").mockImplementation(
      () => ({ resolvedOptions: () => ({ timeZone }) }) as unknown as Intl.DateTimeFormat,
    );

  it("names the machine's zone, UTC in short", () => {
    zone("Europe/London");
    expect(readLocalZone()).toBe("Europe/London");
    zone("Etc/UTC");
    expect(readLocalZone()).toBe("UTC");
  });

  it("says local time when the zone is unknown or Intl refuses", () => {
    zone(undefined);
    expect(readLocalZone()).toBe("local time");
    vi.spyOn(Intl, "DateTimeFormat").mockImplementation(() => {
      throw new RangeError("Incorrect locale information provided");
    });
    expect(readLocalZone()).toBe("local time");
  });

  it("is read once: localZone keeps the first answer", () => {
    const first = localZone();
    const spy = zone("Asia/Tokyo");
    expect(localZone()).toBe(first);
    expect(spy).not.toHaveBeenCalled();
  });
});

describe("kept formatters", () => {
  afterEach(() => vi.restoreAllMocks());

  it("format market times in New York and clock times in the machine's zone", () => {
    // 2025-03-04 15:01:17 UTC is 10:01:17 AM in New York (EST).
    const t = Date.UTC(2025, 2, 4, 15, 1, 17);
    expect(formatEtDateTime(t)).toBe("3/4/2025, 10:01:17 AM ET");
    expect(formatEtTime(new Date(t).toISOString())).toBe("10:01:17 AM ET");
    expect(formatEtSession(t)).toBe("Tue, Mar 4, 10:01 AM ET");
    expect(formatEtSession(t, false)).toBe("Tue 10:01 AM ET");
    expect(formatLocalTime(t)).toBe(new Date(t).toLocaleTimeString("en-US"));
    expect(formatLocalDateTime(t)).toBe(new Date(t).toLocaleString("en-US"));
  });

  it("give back what is not a date instead of Invalid Date", () => {
    expect(formatEtDateTime("soon")).toBe("soon ET");
    expect(formatLocalTime("soon")).toBe("soon");
  });

  it("groups numbers with fixed decimals", () => {
    expect(formatGrouped(1234.5, 2)).toBe("1,234.50");
    expect(formatGrouped(1234.5, 0)).toBe("1,235");
  });

  it("build each Intl formatter once, however often they are called", () => {
    const all = (i: number) => {
      formatGrouped(i, 2);
      formatSigned(i, 3);
      formatUsd(i);
      formatEtDateTime(i);
      formatEtTime(i);
      formatEtSession(i);
      formatLocalTime(i);
      formatLocalDateTime(i);
    };
    all(0);
    const made = [
      vi.spyOn(Intl, "NumberFormat"),
      vi.spyOn(Intl, "DateTimeFormat"),
      vi.spyOn(Number.prototype, "toLocaleString"),
      vi.spyOn(Date.prototype, "toLocaleString"),
      vi.spyOn(Date.prototype, "toLocaleTimeString"),
    ];
    for (let i = 1; i <= 50; i++) all(i * 1000.5);
    for (const spy of made) expect(spy).not.toHaveBeenCalled();
  });
});
