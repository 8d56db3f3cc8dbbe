// Usage: cost per UTC day, stacked by pipeline (Chart.js), and the totals per pipeline
// and model, from the same usage rows `GET /v1/usage` returns.
import { useEffect, useRef, useState } from "preact/hooks";
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from "chart.js";
import { api, type TenantView, type UsageList, type UsageRow } from "./api";
import { usd } from "./format";
import { ErrorBox, failed } from "./errors";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

const PALETTE = ["#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#c62828", "#5d4037", "#546e7a"];

function CostChart({ rows }: { rows: UsageRow[] }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const days = [...new Set(rows.map((r) => r.day))].sort();
  const pipelines = [...new Set(rows.map((r) => r.pipeline))].sort();
  useEffect(() => {
    if (!canvas.current) return;
    const datasets = pipelines.map((p, i) => ({
      label: p,
      data: days.map((d) => rows.filter((r) => r.day === d && r.pipeline === p).reduce((s, r) => s + r.cost_usd, 0)),
      backgroundColor: PALETTE[i % PALETTE.length],
    }));
    const chart = new Chart(canvas.current, {
      type: "bar",
      data: { labels: days, datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { stacked: true },
          y: { stacked: true, ticks: { callback: (v) => usd(Number(v)) } },
        },
        plugins: { legend: { position: "bottom" } },
      },
    });
    return () => chart.destroy();
  }, [rows]);
  return (
    <div class="chart">
      <canvas ref={canvas} role="img" aria-label={`Cost per day of ${pipelines.join(", ")}`} />
    </div>
  );
}

/** One limit: what is used of it, as a bar when it is a cap. */
function Limit({ label, used, cap, unit }: { label: string; used?: number; cap?: number | null; unit: string }) {
  const shown = (v: number) => (unit === "$" ? usd(v) : `${v} ${unit}`);
  return (
    <tr>
      <th scope="row">{label}</th>
      <td class="num">{used === undefined ? "—" : shown(used)}</td>
      <td class="num">{cap == null ? "none" : shown(cap)}</td>
      <td>
        {cap != null && used !== undefined && (
          <progress value={Math.min(used, cap)} max={cap} aria-label={`${label}: ${Math.round((100 * used) / cap)}% used`} />
        )}
      </td>
    </tr>
  );
}

/** The tenant's limits and how close it is to them (`GET /v1/tenant`). */
function Limits({ tenant, onAuth }: { tenant?: string; onAuth: () => void }) {
  const [t, setT] = useState<TenantView | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api
      .tenant(tenant)
      .then(setT)
      .catch(failed(onAuth, setError));
  }, [tenant]);
  if (error) return <ErrorBox error={error} />;
  if (!t) return null;
  const p = t.policy;
  return (
    <table class="limits" aria-label="Limits">
      <thead>
        <tr>
          <th>Limit</th>
          <th class="num">Used</th>
          <th class="num">Cap</th>
          <th />
        </tr>
      </thead>
      <tbody>
        <Limit label="Spend today (UTC)" used={t.spend.today_usd} cap={p.daily_spend_usd} unit="$" />
        <Limit label="Spend this month" used={t.spend.this_month_usd} cap={p.monthly_spend_usd} unit="$" />
        <Limit label="Requests per second (burst)" cap={p.requests_per_second} unit={p.burst ? `/s (${p.burst})` : "/s"} />
        <Limit label="Requests at once" cap={p.max_concurrent} unit="" />
      </tbody>
    </table>
  );
}

export function Usage({ tenant, onAuth }: { tenant?: string; onAuth: () => void }) {
  const [range, setRange] = useState<{ from?: string; to?: string }>({});
  const [draft, setDraft] = useState<{ from?: string; to?: string }>({});
  const [usage, setUsage] = useState<UsageList | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setError(null);
    api
      .usage(tenant, range.from, range.to)
      .then(setUsage)
      .catch(failed(onAuth, setError));
  }, [tenant, range]);
  // Totals per pipeline and model over the range.
  const totals = new Map<string, UsageRow>();
  for (const r of usage?.data ?? []) {
    const key = `${r.pipeline}\u0000${r.model}`;
    const t = totals.get(key);
    if (!t) totals.set(key, { ...r });
    else
      for (const f of ["requests", "calls", "input_tokens", "output_tokens", "cost_usd", "errors"] as const) t[f] += r[f];
  }
  const rows = [...totals.values()].sort((a, b) => b.cost_usd - a.cost_usd);
  return (
    <section>
      <h2>{tenant ? `Usage of ${tenant}` : "Usage"}</h2>
      <Limits tenant={tenant} onAuth={onAuth} />
      <form
        class="filters"
        aria-label="Days"
        onSubmit={(e) => {
          e.preventDefault();
          setRange(draft);
        }}
      >
        <label>
          From (UTC day)
          <input type="date" value={draft.from ?? ""} onInput={(e) => setDraft({ ...draft, from: e.currentTarget.value })} />
        </label>
        <label>
          To (UTC day)
          <input type="date" value={draft.to ?? ""} onInput={(e) => setDraft({ ...draft, to: e.currentTarget.value })} />
        </label>
        <button type="submit">Show</button>
      </form>
      <ErrorBox error={error} />
      {usage && (
        <>
          <p>
            {usage.from} to {usage.to}: {usd(rows.reduce((s, r) => s + r.cost_usd, 0))} in{" "}
            {rows.reduce((s, r) => s + r.requests, 0)} requests.
          </p>
          {usage.data.length > 0 && <CostChart rows={usage.data} />}
          <table class="usage">
            <thead>
              <tr>
                <th>Pipeline</th>
                <th>Model</th>
                <th class="num">Requests</th>
                <th class="num">Model calls</th>
                <th class="num">Tokens in/out</th>
                <th class="num">Errors</th>
                <th class="num">Cost</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr>
                  <td>{r.pipeline}</td>
                  <td>{r.model || "—"}</td>
                  <td class="num">{r.requests}</td>
                  <td class="num">{r.calls}</td>
                  <td class="num">
                    {r.input_tokens}/{r.output_tokens}
                  </td>
                  <td class="num">{r.errors}</td>
                  <td class="num">{usd(r.cost_usd)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {rows.length === 0 && <p>No usage in these days.</p>}
        </>
      )}
    </section>
  );
}
