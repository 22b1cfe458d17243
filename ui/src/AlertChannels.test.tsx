import { act, fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { Result } from "./backend";
import type { AlertChannels, ChannelForm } from "./bindings";
import { AlertChannelsCard, emptyChannel } from "./AlertChannels";
import { fail, fakeBackend, ok } from "./testing/fakeBackend";

const flush = () => act(async () => {});

const mail: ChannelForm = { ...emptyChannel("email"), name: "mail", host: "smtp.example.com", from: "a@b.c", to: ["a@b.c"], username: "a@b.c" };

const withMail = (over: Partial<AlertChannels["channels"][number]> = {}): AlertChannels => ({
  file: "/c/alerts.toml",
  fileError: null,
  channels: [{ form: mail, hasSecret: true, needsSecret: true, pending: 0, sent: 3, failing: 0, lastError: null, ...over }],
  deliveries: [],
});

describe("AlertChannelsCard", () => {
  it("says when no channel is set up", async () => {
    render(<AlertChannelsCard backend={fakeBackend()} />);
    expect(await screen.findByTestId("no-channels")).toBeTruthy();
  });

  it("shows a failing channel with the server's reason", async () => {
    const backend = fakeBackend({ alertChannels: async () => ok(withMail({ failing: 4, pending: 1, lastError: "mail: refused by the server (535): bad login" })) });
    render(<AlertChannelsCard backend={backend} />);
    const state = await screen.findByTestId("channel-state-mail");
    expect(state.textContent).toContain("failing ×4");
    expect(state.textContent).toContain("535");
    expect(state.textContent).toContain("1 waiting");
  });

  it("adds a channel with its secret, and shows the backend's refusal", async () => {
    const saveAlertChannel = vi.fn(async (form: ChannelForm, _p: string | null, _secret: string | null): Promise<Result<AlertChannels>> =>
      form.to.length === 0
        ? fail("invalid_input", "alerts.config_invalid", 'alerts file: channel "m": to: at least one recipient')
        : ok(withMail()),
    );
    render(<AlertChannelsCard backend={fakeBackend({ saveAlertChannel })} />);
    fireEvent.click(await screen.findByTestId("add-channel"));
    fireEvent.change(screen.getByTestId("channel-name"), { target: { value: "m" } });
    fireEvent.change(screen.getByTestId("channel-host"), { target: { value: "smtp.example.com" } });
    fireEvent.change(screen.getByTestId("channel-secret"), { target: { value: "pw" } });
    fireEvent.click(screen.getByTestId("channel-save"));
    await flush();
    expect((await screen.findByTestId("alert-channels-error")).textContent).toContain("at least one recipient");
    fireEvent.change(screen.getByTestId("channel-to"), { target: { value: "a@b.c, c@d.e" } });
    fireEvent.click(screen.getByTestId("channel-save"));
    await flush();
    expect(saveAlertChannel).toHaveBeenLastCalledWith(expect.objectContaining({ name: "m", kind: "email", to: ["a@b.c", "c@d.e"] }), null, "pw");
    expect(await screen.findByTestId("channel-mail")).toBeTruthy();
    expect(screen.queryByTestId("channel-form")).toBeNull();
  });

  it("sends a test message and reports the server's answer", async () => {
    const testAlertChannel = vi.fn(async (_name: string): Promise<Result<AlertChannels>> => fail("unavailable", "alerts.unreachable", "mail: cannot reach the server: connection refused"));
    render(<AlertChannelsCard backend={fakeBackend({ alertChannels: async () => ok(withMail()), testAlertChannel })} />);
    fireEvent.click(await screen.findByText("Test"));
    await flush();
    expect(testAlertChannel).toHaveBeenCalledWith("mail");
    expect((await screen.findByTestId("alert-channels-error")).textContent).toContain("connection refused");
  });
});
