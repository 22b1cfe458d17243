import { act, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Result } from "./backend";
import type { RulesFile, RulesSave } from "./bindings";
import { lineRange, readDryRun, RULES_CHECK_DEBOUNCE_MS, RulesScreen, setDryRun } from "./RulesScreen";
import { fail, fakeBackend, ok, rulesFile } from "./testing/fakeBackend";

const PATH = "/home/t/.config/tradeguard/risk.toml";
const TEXT = `# Tradeguard risk rules
# (comment)

# Global dry-run: when true, NO rule sends orders.
dry_run = false   # keep me

account_stale_after_secs = 300

# Max contracts per position.
[[max_contracts]]
id = "max-contracts"
dry_run = false
max_contracts = 20
`;
const BROKEN = TEXT.replace("max_contracts = 20", "max_contracts = -1");

/** A checker like the backend's: `-1` anywhere is invalid at its line. */
function check(text: string): RulesFile {
  const line = text.split("\n").findIndex((l) => l.includes("-1"));
  if (line >= 0) {
    return rulesFile({
      path: PATH,
      text,
      valid: false,
      dryRun: null,
      rules: 0,
      problems: [{ line: line + 1, code: "config.invalid", message: `max_contracts must be > 0 (line ${line + 1})` }],
    });
  }
  // Like the backend: a file without a global dry_run is in dry-run.
  return rulesFile({ path: PATH, text, valid: true, dryRun: readDryRun(text) ?? true, rules: 1, problems: [] });
}

const saved = (text: string): RulesSave => ({ outcome: "saved", file: check(text) });

const textArea = () => screen.getByTestId("rules-text") as HTMLTextAreaElement;
const saveButton = () => screen.getByTestId("rules-save") as HTMLButtonElement;
const dryRunBox = () => screen.getByTestId("rules-dry-run") as HTMLInputElement;
const settle = () =>
  act(async () => {
    await vi.advanceTimersByTimeAsync(RULES_CHECK_DEBOUNCE_MS);
  });
const flush = () => act(async () => {});

describe("dry-run line helpers", () => {
  it("reads only the top-level dry_run, not a table's", () => {
    expect(readDryRun(TEXT)).toBe(false);
    expect(readDryRun(TEXT.replace("dry_run = false   #", "dry_run = true   #"))).toBe(true);
    expect(readDryRun("[[stop_loss]]\ndry_run = true\n")).toBeNull();
    expect(readDryRun("dry_run = maybe\n")).toBeNull();
  });

  it("rewrites the top-level line in place and keeps its comment and the table's own dry_run", () => {
    const on = setDryRun(TEXT, true);
    expect(on).toBe(TEXT.replace("dry_run = false   # keep me", "dry_run = true   # keep me"));
    expect(setDryRun(on, false)).toBe(TEXT);
  });

  it("inserts the line among the top-level keys when absent, before the first table's comment", () => {
    const without = TEXT.replace("dry_run = false   # keep me\n", "");
    const on = setDryRun(without, true);
    expect(readDryRun(on)).toBe(true);
    const lines = on.split("\n");
    const at = lines.indexOf("dry_run = true");
    expect(at).toBeGreaterThan(lines.indexOf("account_stale_after_secs = 300"));
    expect(at).toBeLessThan(lines.indexOf("# Max contracts per position."));
    expect(lines.filter((l) => l.startsWith("dry_run")).length).toBe(2);
    expect(setDryRun("", true)).toBe("dry_run = true\n");
    expect(setDryRun("a = 1\n", false)).toBe("a = 1\ndry_run = false\n");
    expect(setDryRun("[guard]\nx = 1\n", true)).toBe("dry_run = true\n\n[guard]\nx = 1\n");
    expect(setDryRun("a = 1\r\n[guard]\r\n", true)).toBe("a = 1\r\ndry_run = true\r\n\r\n[guard]\r\n");
  });

  it("finds a line's offsets", () => {
    expect(lineRange("ab\ncd\nef", 2)).toEqual([3, 5]);
    expect(lineRange("ab\r\ncd", 1)).toEqual([0, 2]);
    expect(lineRange("ab", 9)).toEqual([0, 2]);
  });
});

describe("RulesScreen", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function setup(over: Parameters<typeof fakeBackend>[0] = {}, kept: { draft?: string | null; onDraftChange?: (d: string | null) => void } = {}) {
    const checkRules = vi.fn(async (text: string) => ok(check(text)));
    const saveRules = vi.fn(async (text: string, _confirm: string | null) => ok(saved(text)));
    const backend = fakeBackend({ rulesFile: async () => ok(check(TEXT)), checkRules, saveRules, ...over });
    render(<RulesScreen backend={backend} {...kept} />);
    return { checkRules, saveRules };
  }

  it("opens on a kept unsaved draft, checks it, and reports every change of what is unsaved", async () => {
    const onDraftChange = vi.fn();
    const { checkRules } = setup({}, { draft: BROKEN, onDraftChange });
    await flush();
    expect(textArea().value).toBe(BROKEN);
    expect(screen.getByTestId("rules-unsaved")).toBeTruthy();
    expect(screen.getByTestId("rules-restored").textContent).toContain("kept from before");
    expect(onDraftChange).toHaveBeenLastCalledWith(BROKEN);
    await settle();
    expect(checkRules).toHaveBeenCalledWith(BROKEN);
    expect(screen.getByTestId("rules-status").textContent).toContain("Invalid · 1 problem");
    expect(saveButton().disabled).toBe(true);

    const edited = `${TEXT}# mine\n`;
    fireEvent.change(textArea(), { target: { value: edited } });
    expect(onDraftChange).toHaveBeenLastCalledWith(edited);
    expect(screen.queryByTestId("rules-restored")).toBeNull();
    fireEvent.click(screen.getByTestId("rules-revert"));
    expect(onDraftChange).toHaveBeenLastCalledWith(null);
    expect(textArea().value).toBe(TEXT);
  });

  it("a kept draft survives a file that cannot be read, and shows after the retry", async () => {
    const onDraftChange = vi.fn();
    const rulesFileCall = vi
      .fn()
      .mockResolvedValueOnce(fail<RulesFile>("storage", "rules.read", "permission denied"))
      .mockResolvedValue(ok(check(TEXT)));
    const edited = `${TEXT}# mine\n`;
    setup({ rulesFile: rulesFileCall }, { draft: edited, onDraftChange });
    await flush();
    expect(screen.getByTestId("rules-load-error")).toBeTruthy();
    expect(onDraftChange).not.toHaveBeenCalled();
    await act(async () => fireEvent.click(screen.getByTestId("rules-reload")));
    expect(textArea().value).toBe(edited);
    expect(onDraftChange).toHaveBeenLastCalledWith(edited);
  });

  it("a kept draft equal to the file is nothing unsaved", async () => {
    const onDraftChange = vi.fn();
    setup({}, { draft: TEXT, onDraftChange });
    await flush();
    expect(screen.queryByTestId("rules-unsaved")).toBeNull();
    expect(screen.queryByTestId("rules-restored")).toBeNull();
    expect(onDraftChange).toHaveBeenLastCalledWith(null);
  });

  it("shows where the file lives, its text and its status; nothing to save yet", async () => {
    const { checkRules } = setup();
    await flush();
    expect(screen.getByTestId("rules-path").textContent).toBe(PATH);
    expect(textArea().value).toBe(TEXT);
    expect(screen.getByTestId("rules-status").textContent).toBe("Valid · 1 rule · dry-run off");
    expect(dryRunBox().checked).toBe(false);
    expect(saveButton().disabled).toBe(true);
    expect((screen.getByTestId("rules-revert") as HTMLButtonElement).disabled).toBe(true);
    expect(screen.queryByTestId("rules-problems")).toBeNull();
    await settle();
    expect(checkRules).not.toHaveBeenCalled();
  });

  it("validates as the person types: the problem shows with its line and Save stays disabled", async () => {
    const { checkRules } = setup();
    await flush();
    fireEvent.change(textArea(), { target: { value: BROKEN } });
    expect(screen.getByTestId("rules-status").textContent).toBe("Checking…");
    expect(saveButton().disabled).toBe(true);
    expect(checkRules).not.toHaveBeenCalled();
    await settle();
    expect(checkRules).toHaveBeenCalledTimes(1);
    expect(checkRules).toHaveBeenCalledWith(BROKEN);
    expect(screen.getByTestId("rules-status").textContent).toContain("Invalid · 1 problem");
    const problems = screen.getAllByTestId("rules-problem");
    expect(problems).toHaveLength(1);
    expect(problems[0].textContent).toContain("Line 13");
    expect(problems[0].textContent).toContain("config.invalid");
    expect(saveButton().disabled).toBe(true);

    // Clicking the problem puts the caret on that line.
    fireEvent.click(screen.getByRole("button", { name: "Line 13" }));
    const ta = textArea();
    expect(document.activeElement).toBe(ta);
    expect(ta.value.slice(ta.selectionStart, ta.selectionEnd)).toBe("max_contracts = -1");

    // Fixed: valid again, and a change to save.
    fireEvent.change(ta, { target: { value: TEXT.replace("max_contracts = 20", "max_contracts = 10") } });
    await settle();
    expect(screen.queryByTestId("rules-problems")).toBeNull();
    expect(screen.getByTestId("rules-status").textContent).toBe("Valid · 1 rule · dry-run off");
    expect(saveButton().disabled).toBe(false);
  });

  it("the dry-run switch edits the dry_run line of the text, and inserts it when absent", async () => {
    const without = TEXT.replace("dry_run = false   # keep me\n", "");
    setup({ rulesFile: async () => ok(check(without)) });
    await flush();
    // A file without the line is in dry-run (it fails safe).
    expect(dryRunBox().checked).toBe(true);
    expect(screen.getByText(/not set in the file: on/)).toBeTruthy();
    expect(screen.getByTestId("rules-status").textContent).toBe("Valid · 1 rule · dry-run on");
    expect(screen.getByText(/no order is\s+sent/)).toBeTruthy();
    fireEvent.click(dryRunBox());
    expect(dryRunBox().checked).toBe(false);
    expect(textArea().value).toBe(setDryRun(without, false));
    expect(readDryRun(textArea().value)).toBe(false);
    await settle();
    expect(screen.getByTestId("rules-status").textContent).toBe("Valid · 1 rule · dry-run off");
    expect(textArea().value.match(/^dry_run/gm)).toHaveLength(2);
    fireEvent.click(dryRunBox());
    expect(dryRunBox().checked).toBe(true);
    expect(textArea().value).toContain("\ndry_run = true\n");
  });

  it("the dry-run switch rewrites an existing line in place", async () => {
    setup();
    await flush();
    fireEvent.click(dryRunBox());
    expect(textArea().value).toBe(TEXT.replace("dry_run = false   # keep me", "dry_run = true   # keep me"));
    expect(screen.getByTestId("rules-unsaved")).toBeTruthy();
  });

  it("saves, says it applies without restart, and has nothing left to save", async () => {
    const { saveRules } = setup();
    await flush();
    fireEvent.click(dryRunBox());
    await settle();
    await act(async () => fireEvent.click(saveButton()));
    const expected = setDryRun(TEXT, true);
    expect(saveRules).toHaveBeenCalledWith(expected, null);
    expect(screen.getByTestId("rules-saved").textContent).toBe("Saved — applies without restart");
    expect(textArea().value).toBe(expected);
    expect(saveButton().disabled).toBe(true);
    expect(screen.queryByTestId("rules-error")).toBeNull();
    fireEvent.change(textArea(), { target: { value: `${expected}# more\n` } });
    expect(screen.queryByTestId("rules-saved")).toBeNull();
  });

  it("a refused save keeps the text and shows the error with its code", async () => {
    let answer: (r: Result<RulesSave>) => void = () => {};
    const saveRules = vi.fn(() => new Promise<Result<RulesSave>>((r) => (answer = r)));
    setup({ saveRules });
    await flush();
    const edited = `${TEXT}# my edit\n`;
    fireEvent.change(textArea(), { target: { value: edited } });
    await settle();
    fireEvent.click(saveButton());
    expect(saveButton().textContent).toBe("Saving…");
    expect(saveButton().disabled).toBe(true);
    await act(async () => answer(fail("storage", "rules.write", "cannot write risk.toml: read-only file system")));
    const error = screen.getByTestId("rules-error");
    expect(error.textContent).toContain("read-only file system");
    expect(error.textContent).toContain("storage · rules.write");
    expect(textArea().value).toBe(edited);
    expect(screen.queryByTestId("rules-saved")).toBeNull();
    expect(saveButton().disabled).toBe(false);
  });

  it("going live needs a second, explicit confirmation of the same text", async () => {
    const DRY = setDryRun(TEXT, true);
    // Like the backend: turning the global dry-run off answers a preview until confirmed with its id.
    const saveRules = vi.fn(
      async (text: string, confirm: string | null): Promise<Result<RulesSave>> =>
        confirm === "go-live-1"
          ? ok(saved(text))
          : ok({ outcome: "confirmGoLive", preview: { previewId: "go-live-1", rules: 1, willSend: ["max-contracts"] } }),
    );
    setup({ rulesFile: async () => ok(check(DRY)), saveRules });
    await flush();
    expect(dryRunBox().checked).toBe(true);
    fireEvent.click(dryRunBox());
    await settle();
    await act(async () => fireEvent.click(saveButton()));
    expect(saveRules).toHaveBeenLastCalledWith(TEXT, null);
    const panel = screen.getByTestId("rules-go-live");
    expect(panel.textContent).toContain("nothing was saved yet");
    expect(screen.getByTestId("rules-go-live-summary").textContent).toContain("send orders on their own: max-contracts");
    expect(screen.queryByTestId("rules-saved")).toBeNull();
    expect(saveButton().disabled).toBe(true);

    // Keeping dry-run closes it, nothing saved; an edit also drops a pending confirmation.
    fireEvent.click(screen.getByTestId("rules-go-live-cancel"));
    expect(screen.queryByTestId("rules-go-live")).toBeNull();
    await act(async () => fireEvent.click(saveButton()));
    expect(screen.getByTestId("rules-go-live")).toBeTruthy();
    fireEvent.change(textArea(), { target: { value: `${TEXT}# more\n` } });
    expect(screen.queryByTestId("rules-go-live")).toBeNull();
    fireEvent.change(textArea(), { target: { value: TEXT } });
    await settle();

    // The confirmation saves exactly that text with the preview's id.
    await act(async () => fireEvent.click(saveButton()));
    await act(async () => fireEvent.click(screen.getByTestId("rules-go-live-confirm")));
    expect(saveRules).toHaveBeenLastCalledWith(TEXT, "go-live-1");
    expect(screen.queryByTestId("rules-go-live")).toBeNull();
    expect(screen.getByTestId("rules-saved").textContent).toBe("Saved — applies without restart");
    expect(screen.getByTestId("rules-status").textContent).toBe("Valid · 1 rule · dry-run off");
  });

  it("reverts to the saved text", async () => {
    setup();
    await flush();
    fireEvent.change(textArea(), { target: { value: BROKEN } });
    await settle();
    expect(screen.getByTestId("rules-problems")).toBeTruthy();
    fireEvent.click(screen.getByTestId("rules-revert"));
    expect(textArea().value).toBe(TEXT);
    expect(screen.getByTestId("rules-status").textContent).toBe("Valid · 1 rule · dry-run off");
    expect(screen.queryByTestId("rules-problems")).toBeNull();
    expect(saveButton().disabled).toBe(true);
  });

  it("shows a file that cannot be read with its code and retries", async () => {
    const rulesFileCall = vi
      .fn()
      .mockResolvedValueOnce(fail<RulesFile>("storage", "rules.read", "cannot read risk.toml: permission denied"))
      .mockResolvedValue(ok(check(TEXT)));
    setup({ rulesFile: rulesFileCall });
    await flush();
    expect(screen.getByTestId("rules-load-error").textContent).toContain("storage · rules.read");
    expect(screen.queryByTestId("rules-text")).toBeNull();
    await act(async () => fireEvent.click(screen.getByTestId("rules-reload")));
    expect(textArea().value).toBe(TEXT);
  });
});
