// A tenant's models as its routers see them (`GET /v1/stats/models`: success rate over
// judged attempts, latency of recent answers) with their calls and cost in the window's
// days, then its plugins' calls (`GET /v1/stats/plugins`).
import { useEffect, useState } from "preact/hooks";
import { api, type ModelStats } from "./api";
import { ms, usd } from "./format";
import { useWindow } from "./pipelines";
import { PluginStats, WindowPicker } from "./stats";
import { ErrorBox, failed } from "./errors";

export function Models({ tenant, onAuth }: { tenant?: string; onAuth: () => void }) {
  const [span, since, setSpan] = useWindow();
  const [data, setData] = useState<{ from: string; to: string; data: ModelStats[] } | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setData(null);
    api
      .modelStats(tenant, since)
      .then(setData)
      .catch(failed(onAuth, setError));
  }, [tenant, since]);
  if (error) return <ErrorBox error={error} />;
  return (
    <section>
      <h2>Models{tenant ? ` of ${tenant}` : ""}</h2>
      <div class="filters">
        <WindowPicker span={span} onSpan={setSpan} />
      </div>
      {!data ? (
        <p aria-busy="true">Loading…</p>
      ) : data.data.length === 0 ? (
        <p>No model has been called yet.</p>
      ) : (
        <>
          <table class="model-stats">
            <thead>
              <tr>
                <th>Model</th>
                <th class="num">Success rate</th>
                <th class="num">Judged</th>
                <th class="num">Latency p50</th>
                <th class="num">p95</th>
                <th class="num">Calls</th>
                <th class="num">Errors</th>
                <th class="num">Tokens in/out</th>
                <th class="num">Cost</th>
              </tr>
            </thead>
            <tbody>
              {data.data.map((m) => (
                <tr data-model={m.model}>
                  <td>{m.model}</td>
                  <td class="num">{m.success_rate === undefined ? "—" : `${(100 * m.success_rate).toFixed(1)}%`}</td>
                  <td class="num">{m.judged}</td>
                  <td class="num">{m.latency_samples ? ms(m.latency_p50_ms) : "—"}</td>
                  <td class="num">{m.latency_samples ? ms(m.latency_p95_ms) : "—"}</td>
                  <td class="num">{m.calls}</td>
                  <td class="num">{m.errors}</td>
                  <td class="num">
                    {m.input_tokens}/{m.output_tokens}
                  </td>
                  <td class="num">{usd(m.cost_usd)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p>
            <small>
              Success rate, judged attempts and latency are what this tenant's routers read (kept since the gateway
              started, latency over each model's last 512 answers); calls, errors, tokens and cost are the usage of{" "}
              {data.from === data.to ? data.from : `${data.from} to ${data.to}`} (UTC days).
            </small>
          </p>
        </>
      )}
      <h3>Plugin calls</h3>
      <PluginStats tenant={tenant} since={since} onAuth={onAuth} />
    </section>
  );
}
