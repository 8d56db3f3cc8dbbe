// A failed API call as the pages show it: the gateway's message, with its typed code
// and status, so an operator can look the code up in the OpenAPI document.
import { ApiError } from "./api";

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="error-box" role="alert">
      {error instanceof Error ? error.message : String(error)}
      {error instanceof ApiError && (
        <>
          {" "}
          <code class="code">
            {error.code}
            {error.status ? ` (${error.status})` : ""}
          </code>
        </>
      )}
    </p>
  );
}

/**
 * A page's handler of a failed call: a 401 (the key is unknown, revoked or expired)
 * signs out; anything else is kept to be shown.
 */
export const failed = (onAuth: () => void, setError: (e: unknown) => void) => (e: unknown) =>
  e instanceof ApiError && e.status === 401 ? onAuth() : setError(e);
