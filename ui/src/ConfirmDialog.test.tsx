import { act, fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { ConfirmDialog, type ConfirmOutcome } from "./ConfirmDialog";

/** A confirm action the test settles by hand, to look at the dialog while it runs. */
function deferred() {
  let settle: (o: ConfirmOutcome) => void = () => {};
  const promise = new Promise<ConfirmOutcome>((r) => (settle = r));
  return { promise, settle };
}

function renderDialog(onConfirm: () => Promise<ConfirmOutcome>) {
  const onCancel = vi.fn();
  const onConfirmed = vi.fn();
  render(
    <div>
      <button type="button">outside</button>
      <ConfirmDialog title="Flatten SPY condor?" confirmLabel="Flatten" busyLabel="Flattening…" onConfirm={onConfirm} onCancel={onCancel} onConfirmed={onConfirmed}>
        <p>4 orders</p>
      </ConfirmDialog>
    </div>,
  );
  return { onCancel, onConfirmed };
}

describe("ConfirmDialog", () => {
  it("is a labelled modal with the body, and the safe button has the focus", () => {
    renderDialog(async () => ({ status: "ok" }));
    const dialog = screen.getByRole("dialog", { name: "Flatten SPY condor?" });
    expect(dialog.getAttribute("aria-modal")).toBe("true");
    expect(dialog.textContent).toContain("4 orders");
    expect(document.activeElement).toBe(screen.getByTestId("confirm-dialog-cancel"));
    expect(screen.getByTestId("confirm-dialog-confirm").textContent).toBe("Flatten");
  });

  it("does not close on a click outside; Escape cancels", () => {
    const { onCancel } = renderDialog(async () => ({ status: "ok" }));
    fireEvent.mouseDown(document.querySelector(".modal-backdrop")!);
    fireEvent.click(document.querySelector(".modal-backdrop")!);
    fireEvent.click(screen.getByText("outside"));
    expect(onCancel).not.toHaveBeenCalled();
    fireEvent.keyDown(document, { key: "Escape" });
    expect(onCancel).toHaveBeenCalledTimes(1);
  });

  it("shows progress and disables both buttons while the action runs, then reports success", async () => {
    const d = deferred();
    const onConfirm = vi.fn(() => d.promise);
    const { onCancel, onConfirmed } = renderDialog(onConfirm);
    fireEvent.click(screen.getByTestId("confirm-dialog-confirm"));
    const confirm = screen.getByTestId("confirm-dialog-confirm") as HTMLButtonElement;
    expect(confirm.textContent).toBe("Flattening…");
    expect(confirm.disabled).toBe(true);
    expect((screen.getByTestId("confirm-dialog-cancel") as HTMLButtonElement).disabled).toBe(true);
    // The request is on its way: Escape no longer cancels, a second click sends nothing more.
    fireEvent.keyDown(document, { key: "Escape" });
    fireEvent.click(confirm);
    expect(onCancel).not.toHaveBeenCalled();
    expect(onConfirm).toHaveBeenCalledTimes(1);
    await act(async () => d.settle({ status: "ok" }));
    expect(onConfirmed).toHaveBeenCalledTimes(1);
  });

  it("shows an error with its code inside the dialog and lets the person retry or cancel", async () => {
    const onConfirm = vi
      .fn<() => Promise<ConfirmOutcome>>()
      .mockResolvedValueOnce({ status: "error", error: { code: "not_found", reason: "preview.expired", message: "the preview expired" } })
      .mockResolvedValueOnce({ status: "ok" });
    const { onCancel, onConfirmed } = renderDialog(onConfirm);
    await act(async () => fireEvent.click(screen.getByTestId("confirm-dialog-confirm")));
    const error = screen.getByTestId("confirm-dialog-error");
    expect(error.textContent).toContain("the preview expired");
    expect(error.textContent).toContain("not_found · preview.expired");
    expect(screen.getByRole("dialog")).toBeTruthy();
    expect(onConfirmed).not.toHaveBeenCalled();
    expect((screen.getByTestId("confirm-dialog-confirm") as HTMLButtonElement).disabled).toBe(false);
    await act(async () => fireEvent.click(screen.getByTestId("confirm-dialog-confirm")));
    expect(screen.queryByTestId("confirm-dialog-error")).toBeNull();
    expect(onConfirmed).toHaveBeenCalledTimes(1);
    expect(onCancel).not.toHaveBeenCalled();
  });

  it("turns a thrown failure into a shown error", async () => {
    renderDialog(async () => {
      throw new Error("bridge gone");
    });
    await act(async () => fireEvent.click(screen.getByTestId("confirm-dialog-confirm")));
    expect(screen.getByTestId("confirm-dialog-error").textContent).toContain("bridge gone");
  });

  it("keeps Tab inside the dialog", () => {
    renderDialog(async () => ({ status: "ok" }));
    const cancel = screen.getByTestId("confirm-dialog-cancel");
    const confirm = screen.getByTestId("confirm-dialog-confirm");
    confirm.focus();
    fireEvent.keyDown(document, { key: "Tab" });
    expect(document.activeElement).toBe(cancel);
    fireEvent.keyDown(document, { key: "Tab", shiftKey: true });
    expect(document.activeElement).toBe(confirm);
  });
});
