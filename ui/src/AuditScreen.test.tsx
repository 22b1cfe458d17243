import { act, fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AUDIT_TEXT_DEBOUNCE_MS, AuditScreen, auditFilter, formatAuditTime, prettyDetails } from "./AuditScreen";
import type { Result } from "./backend";
import type { AuditFilter, AuditPage, AuditRow } from "./bindings";
import { fail, fakeBackend, ok } from "./testing/fakeBackend";

const flush = () => act(async () => {});

const row = (id: number, over: Partial<AuditRow> = {}): AuditRow => ({
  id,
  at: "2025-03-04T15:00:07Z",
  kind: "rule_fired",
  subject: `SPY strangle #${id}`,
  reason: "max loss 2500 reached",
  details: `{"rule":"max-loss","loss":"2612.50","legs":[1,2]}`,
  ...over,
});

const page = (rows: AuditRow[], over: Partial<AuditPage> = {}): AuditPage => ({
  rows,
  kinds: ["order_sent", "rule_fired", "settings_saved"],
  total: 40,
  truncated: false,
  ...over,
});

afterEach(() => {
  vi.useRealTimers();
});

describe("audit helpers", () => {
  it("turns an empty kind or blank text into 'any'", () => {
    expect(auditFilter("", "  ")).toEqual({ kind: null, text: null });
    expect(auditFilter("rule_fired", " SPY ")).toEqual({ kind: "rule_fired", text: "SPY" });
  });

  it("pretty-prints JSON details and leaves other text as it is", () => {
    expect(prettyDetails(`{"a":1,"b":[2]}`)).toBe('{\n  "a": 1,\n  "b": [\n    2\n  ]\n}');
    expect(prettyDetails("not json {")).toBe("not json {");
  });

  it("formats the time locally and keeps text that is not a time", () => {
    expect(formatAuditTime("garbage")).toBe("garbage");
    expect(formatAuditTime("2025-03-04T15:00:07Z")).toMatch(/^2025-03-0[45] \d\d:\d\d:07$/);
  });
});

describe("AuditScreen", () => {
  it("shows the newest entries with their kind, the kinds to filter by and the count", async () => {
    const auditLog = vi.fn(async () => ok(page([row(2), row(1, { kind: "order_sent", subject: "SELL 1 SPY 590 P" })])));
    render(<AuditScreen backend={fakeBackend({ auditLog })} />);
    await flush();
    expect(auditLog).toHaveBeenCalledWith({ kind: null, text: null });
    const rows = within(screen.getByTestId("audit-rows")).getAllByTestId("audit-row");
    expect(rows.map((r) => r.getAttribute("data-kind"))).toEqual(["rule_fired", "order_sent"]);
    expect(rows[1].textContent).toContain("SELL 1 SPY 590 P");
    expect(rows[0].textContent).toContain("max loss 2500 reached");
    expect(screen.getByTestId("audit-count").textContent).toBe("2 shown of 40");
    expect(screen.queryByTestId("audit-truncated")).toBeNull();
    const options = Array.from((screen.getByTestId("audit-kind") as HTMLSelectElement).options).map((o) => o.value);
    expect(options).toEqual(["", "order_sent", "rule_fired", "settings_saved"]);
  });

  it("filters by kind at once and by text once typing pauses", async () => {
    vi.useFakeTimers();
    const auditLog = vi.fn(async (f: AuditFilter) => ok(page(f.kind === "order_sent" ? [row(9, { kind: "order_sent" })] : [row(1), row(2)])));
    render(<AuditScreen backend={fakeBackend({ auditLog })} />);
    await flush();
    expect(auditLog).toHaveBeenCalledTimes(1);

    await act(async () => fireEvent.change(screen.getByTestId("audit-kind"), { target: { value: "order_sent" } }));
    expect(auditLog).toHaveBeenCalledTimes(2);
    expect(auditLog).toHaveBeenLastCalledWith({ kind: "order_sent", text: null });
    expect(screen.getAllByTestId("audit-row").map((r) => r.getAttribute("data-kind"))).toEqual(["order_sent"]);

    const box = screen.getByTestId("audit-text");
    for (const typed of ["S", "SP", "SPY "]) {
      fireEvent.change(box, { target: { value: typed } });
      await act(async () => {
        await vi.advanceTimersByTimeAsync(100);
      });
    }
    expect(auditLog).toHaveBeenCalledTimes(2);
    await act(async () => {
      await vi.advanceTimersByTimeAsync(AUDIT_TEXT_DEBOUNCE_MS);
    });
    expect(auditLog).toHaveBeenCalledTimes(3);
    expect(auditLog).toHaveBeenLastCalledWith({ kind: "order_sent", text: "SPY" });
  });

  it("a slow answer to an older filter does not replace the newer one", async () => {
    const answers: Array<(r: Result<AuditPage>) => void> = [];
    const auditLog = vi.fn(() => new Promise<Result<AuditPage>>((r) => answers.push(r)));
    render(<AuditScreen backend={fakeBackend({ auditLog })} />);
    await flush();
    await act(async () => answers[0](ok(page([row(1)]))));
    await act(async () => fireEvent.change(screen.getByTestId("audit-kind"), { target: { value: "rule_fired" } }));
    await act(async () => fireEvent.change(screen.getByTestId("audit-kind"), { target: { value: "order_sent" } }));
    expect(answers).toHaveLength(3);
    await act(async () => answers[2](ok(page([row(5, { subject: "newer" })]))));
    await act(async () => answers[1](ok(page([row(4, { subject: "older" })]))));
    expect(screen.getByTestId("audit-rows").textContent).toContain("newer");
    expect(screen.getByTestId("audit-rows").textContent).not.toContain("older");
  });

  it("expands a row to show its details, pretty-printed, and collapses it again", async () => {
    render(<AuditScreen backend={fakeBackend({ auditLog: async () => ok(page([row(1), row(2)])) })} />);
    await flush();
    expect(screen.queryByTestId("audit-details")).toBeNull();
    fireEvent.click(screen.getAllByTestId("audit-row")[1]);
    const details = screen.getByTestId("audit-details");
    expect(details.textContent).toBe(prettyDetails(row(2).details));
    expect(details.textContent).toContain('\n  "loss": "2612.50"');
    expect(screen.getAllByTestId("audit-row-toggle")[1].getAttribute("aria-expanded")).toBe("true");
    fireEvent.click(screen.getAllByTestId("audit-row-toggle")[1]);
    expect(screen.queryByTestId("audit-details")).toBeNull();
  });

  it("says when more entries match than are shown", async () => {
    render(<AuditScreen backend={fakeBackend({ auditLog: async () => ok(page([row(1)], { truncated: true, total: 12000 })) })} />);
    await flush();
    expect(screen.getByTestId("audit-count").textContent).toBe("1 shown of 12000");
    expect(screen.getByTestId("audit-truncated").textContent).toContain("export to see all");
  });

  it("refreshes on request", async () => {
    const auditLog = vi.fn(async () => ok(page([row(1)])));
    render(<AuditScreen backend={fakeBackend({ auditLog })} />);
    await flush();
    await act(async () => fireEvent.click(screen.getByTestId("audit-refresh")));
    expect(auditLog).toHaveBeenCalledTimes(2);
  });

  it("exports the current filter to CSV and shows the written file", async () => {
    let answer: (r: Result<string>) => void = () => {};
    const exportAuditCsv = vi.fn((_f: AuditFilter) => new Promise<Result<string>>((r) => (answer = r)));
    render(<AuditScreen backend={fakeBackend({ auditLog: async () => ok(page([row(1)])), exportAuditCsv })} />);
    await flush();
    await act(async () => fireEvent.change(screen.getByTestId("audit-kind"), { target: { value: "rule_fired" } }));
    fireEvent.change(screen.getByTestId("audit-text"), { target: { value: " SPY" } });
    fireEvent.click(screen.getByTestId("audit-export"));
    expect(exportAuditCsv).toHaveBeenCalledWith({ kind: "rule_fired", text: "SPY" });
    const button = screen.getByTestId("audit-export") as HTMLButtonElement;
    expect(button.textContent).toBe("Exporting…");
    expect(button.disabled).toBe(true);
    await act(async () => answer(ok("/home/t/.local/share/tradeguard/audit-20250304-150000.csv")));
    expect(screen.getByTestId("audit-export-path").textContent).toBe("/home/t/.local/share/tradeguard/audit-20250304-150000.csv");
    expect(button.disabled).toBe(false);
  });

  it("shows a refused export beside the button with its code", async () => {
    render(<AuditScreen backend={fakeBackend({ exportAuditCsv: async () => fail("storage", "audit.export", "disk full") })} />);
    await flush();
    await act(async () => fireEvent.click(screen.getByTestId("audit-export")));
    const error = screen.getByTestId("audit-export-error");
    expect(error.textContent).toContain("disk full");
    expect(error.textContent).toContain("storage · audit.export");
    expect(screen.queryByTestId("audit-export-path")).toBeNull();
  });

  it("shows a refused filter at the filter bar with its code and keeps the rows shown", async () => {
    const auditLog = vi.fn(async (f: AuditFilter) =>
      f.kind === "bogus" ? fail<AuditPage>("invalid_input", "audit.bad_kind", "unknown audit kind: bogus") : ok(page([row(1)], { kinds: ["bogus", "rule_fired"] })),
    );
    render(<AuditScreen backend={fakeBackend({ auditLog })} />);
    await flush();
    await act(async () => fireEvent.change(screen.getByTestId("audit-kind"), { target: { value: "bogus" } }));
    const error = screen.getByTestId("audit-error");
    expect(error.textContent).toContain("unknown audit kind: bogus");
    expect(error.textContent).toContain("invalid_input · audit.bad_kind");
    expect(screen.getAllByTestId("audit-row")).toHaveLength(1);
    await act(async () => fireEvent.change(screen.getByTestId("audit-kind"), { target: { value: "" } }));
    expect(screen.queryByTestId("audit-error")).toBeNull();
  });

  it("shows a backend that cannot be reached as an error with its code", async () => {
    render(<AuditScreen backend={fakeBackend({ auditLog: () => Promise.reject(new Error("ipc down")) })} />);
    await flush();
    expect(screen.getByTestId("audit-error").textContent).toContain("internal · ui.invoke");
  });
});
