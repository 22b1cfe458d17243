import type { IpcError } from "./bindings";

/** A backend refusal where the user acted: what happened, then the codes support needs. */
export function ErrorNote({ error, testId }: { error: IpcError | null; testId?: string }) {
  if (!error) return null;
  return (
    <p role="alert" className="error" data-testid={testId}>
      {error.message}{" "}
      <code title="error code · reason">
        {error.code} · {error.reason}
      </code>
    </p>
  );
}
