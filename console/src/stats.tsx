// Pieces the statistics pages share: the window picker, an outcome mix as a stacked
// bar, percentiles, and plugin call statistics (`GET /v1/stats/plugins`) as a table any
// page can embed (`<PluginStats tenant={...} since={...} />`).
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, type Percentiles, type PluginStats as PluginRow, type StatsWindow } from "./api";
import { ms, outcomeColor, when } from "./format";
import { ErrorBox } from "./errors";

const HOUR = 3600 * 1000;

/** The windows a page offers, the API's default (a day) first; at most 31 days. */
export const WINDOWS: [string, number][] = [
  ["Last 24 hours", 24 * HOUR],
  ["Last hour", HOUR],
  ["Last 7 days", 7 * 24 * HOUR],
  ["Last 31 days", 31 * 24 * HOUR],
];

export function WindowPicker({ span, onSpan }: { span: number; onSpan: (span: number) => void }) {
  return (
    <select aria-label="Window" value={String(span)} onChange={(e) => onSpan(Number(e.currentTarget.value))}>
      {WINDOWS.map(([label, v]) => (
        <option value={String(v)}>{label}</option>
      ))}
    </select>
  );
}

/** What a statistic was read from, and whether the window held more. */
export function WindowNote({ window }: { window: StatsWindow }) {
  return (
    <p>
      <small>
        {window.requests} request{window.requests === 1 ? "" : "s"} from {when(window.since)} to {when(window.until)}
        {!window.complete && " (the newest of a busier window: the figures are theirs)"}
      </small>
    </p>
  );
}

/** Requests per outcome as one stacked bar, with counts spelled out beside it. */
export function OutcomeMix({ outcomes }: { outcomes: Record<string, number> }) {
  const total = Object.values(outcomes).reduce((a, b) => a + b, 0);
  const entries = Object.entries(outcomes).sort((a, b) => b[1] - a[1]);
  const text = entries.map(([o, n]) => `${o} ${n}`).join(", ");
  return (
    <div class="mix" aria-label={`Outcomes: ${text}`} role="img">
      <div class="mix-bar">
        {entries.map(([o, n]) => (
          <span
            title={`${o}: ${n}`}
            style={{ width: `${(100 * n) / Math.max(total, 1)}%`, background: outcomeColor[o] ?? "#546e7a" }}
          />
        ))}
      </div>
      <small>{text}</small>
    </div>
  );
}

export const pct = (p: Percentiles, f: (v: number) => string) => `${f(p.p50)} / ${f(p.p95)} / ${f(p.p99)}`;

/** Plugin calls of a tenant (its own, or the operator's view of it) over a window. */
export function PluginStats({ tenant, since, onAuth }: { tenant?: string; since: number; onAuth?: () => void }) {
  const [data, setData] = useState<{ window: StatsWindow; data: PluginRow[] } | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setData(null);
    api
      .pluginStats(tenant, since)
      .then(setData)
      .catch((e) => (e instanceof ApiError && e.status === 401 && onAuth ? onAuth() : setError(e)));
  }, [tenant, since]);
  if (error) return <ErrorBox error={error} />;
  if (!data) return <p aria-busy="true">Loading…</p>;
  if (data.data.length === 0) return <p>No plugin calls in this window.</p>;
  return (
    <>
      <table class="plugin-stats">
        <thead>
          <tr>
            <th>Plugin</th>
            <th>Kind</th>
            <th class="num">Calls</th>
            <th class="num">Call time p50</th>
            <th class="num">p99</th>
            <th class="num">Error rate</th>
            <th>Errors by code</th>
          </tr>
        </thead>
        <tbody>
          {data.data.map((p) => (
            <tr data-plugin={p.plugin}>
              <td>{p.plugin}</td>
              <td>{p.kind}</td>
              <td class="num">{p.calls}</td>
              <td class="num">{ms(p.call_ms.p50)}</td>
              <td class="num">{ms(p.call_ms.p99)}</td>
              <td class="num">{(100 * p.error_rate).toFixed(1)}%</td>
              <td>
                {Object.entries(p.errors_by_code)
                  .map(([c, n]) => `${c} ×${n}`)
                  .join(", ") || "—"}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <WindowNote window={data.window} />
    </>
  );
}
