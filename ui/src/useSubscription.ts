import { useEffect } from "react";
import type { Unlisten } from "./backend";

/** Subscribe on mount, unsubscribe on unmount, even when the subscription resolves late. */
export function useSubscription(subscribe: () => Promise<Unlisten>, onError: (e: unknown) => void) {
  useEffect(() => {
    let cancelled = false;
    let unlisten: Unlisten | undefined;
    subscribe()
      .then((u) => (cancelled ? u() : (unlisten = u)))
      .catch(onError);
    return () => {
      cancelled = true;
      unlisten?.();
    };
    // Callers pass stable callbacks (module-level or useCallback).
  }, [subscribe, onError]);
}
