import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { EmergencyCloseView } from "./bindings";
import { EmergencyCloses, formatCountdown } from "./EmergencyCloses";

const close = (over: Partial<EmergencyCloseView>): EmergencyCloseView => ({
  strategy: "SPY iron condor",
  account: "DU1",
  phase: "armed",
  releaseAt: "2025-03-05T14:30:00Z",
  releasesInSecs: 2 * 3600 + 13 * 60 + 40,
  orders: ["BUY 1 SPY 21MAR25 600 C — waiting", "SELL 1 SPY 21MAR25 610 C — waiting"],
  how: "market orders 2 min after the open (opening spreads are widest at the open itself)",
  ...over,
});

describe("formatCountdown", () => {
  it("shows whole units, rounded down", () => {
    expect(formatCountdown(2 * 3600 + 13 * 60 + 59.9)).toBe("2 h 13 min");
    expect(formatCountdown(3 * 3600)).toBe("3 h");
    expect(formatCountdown(13 * 60 + 5)).toBe("13 min 5 s");
    expect(formatCountdown(120)).toBe("2 min");
    expect(formatCountdown(45.7)).toBe("45 s");
    expect(formatCountdown(0.4)).toBe("now");
    expect(formatCountdown(-3)).toBe("now");
    expect(formatCountdown(62 * 3600 + 600)).toBe("2 d 14 h");
    expect(formatCountdown(null)).toBe("—");
    expect(formatCountdown(Number.NaN)).toBe("—");
  });
});

describe("EmergencyCloses", () => {
  it("renders nothing when there is no emergency close", () => {
    render(<EmergencyCloses closes={[]} />);
    expect(screen.queryByTestId("emergency-closes")).toBeNull();
  });

  it("shows an armed close's countdown, how its orders go out, and the orders", () => {
    render(<EmergencyCloses closes={[close({})]} />);
    expect(screen.getByTestId("emergency-countdown").textContent).toBe("Emergency close armed — goes out in 2 h 13 min");
    expect(screen.getByTestId("emergency-how").textContent).toBe(
      "market orders 2 min after the open (opening spreads are widest at the open itself)",
    );
    const item = screen.getByTestId("emergency-close");
    expect(item.textContent).toContain("SPY iron condor · DU1");
    expect(within(item).getAllByRole("listitem").map((li) => li.textContent)).toEqual([
      "BUY 1 SPY 21MAR25 600 C — waiting",
      "SELL 1 SPY 21MAR25 610 C — waiting",
    ]);
  });

  it("marks a failed close red and says a person is needed", () => {
    render(
      <EmergencyCloses
        closes={[
          close({ strategy: "SPY strangle", phase: "working", releasesInSecs: null, orders: ["BUY 1 SPY 21MAR25 620 C — sent"] }),
          close({
            phase: "failed",
            releasesInSecs: null,
            orders: ["BUY 1 SPY 21MAR25 600 C — filled", "SELL 1 SPY 21MAR25 610 C — failed: rejected by the broker"],
          }),
        ]}
      />,
    );
    const [working, failed] = screen.getAllByTestId("emergency-close");
    expect(working.textContent).toContain("orders are at the broker");
    expect(working.className).not.toContain("failed");
    expect(failed.className).toContain("failed");
    expect(failed.getAttribute("role")).toBe("alert");
    expect(failed.textContent).toContain("a person is needed");
    expect(within(failed).getByText(/rejected by the broker/).className).toBe("neg");
    expect(screen.queryByTestId("emergency-countdown")).toBeNull();
  });
});
