export const usd = (v: number) => (v === 0 ? "$0" : v < 0.01 ? `$${v.toFixed(5)}` : `$${v.toFixed(4)}`);
export const ms = (v: number) =>
  v >= 1000 ? `${(v / 1000).toFixed(2)} s` : v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`;
export const when = (unixMs: number) => new Date(unixMs).toLocaleString();

/** `datetime-local` input value (local time) to Unix ms, or undefined when empty. */
export const fromLocal = (v: string): number | undefined => {
  const t = v ? new Date(v).getTime() : NaN;
  return Number.isNaN(t) ? undefined : t;
};

/** Colours per attempt outcome, shared by the timeline and its legend. */
export const outcomeColor: Record<string, string> = {
  accepted: "#2e7d32",
  unverified: "#1565c0",
  rejected: "#ef6c00",
  cancelled: "#9e9e9e",
  failed: "#c62828",
  over_budget: "#6d4c41",
};
