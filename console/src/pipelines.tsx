// Every pipeline a tenant may call, its own and the shared ones, each drawn as its
// strategy tree (`GET /v1/models`, `arbiter.definition`) with its recent outcome mix and
// cost and latency percentiles (`GET /v1/stats/pipelines`); an operator reads a
// tenant's through `/admin/v1/tenants/{name}/...`.
import { useEffect, useState } from "preact/hooks";
import { api, type PipelineStats, type StatsWindow, type Target } from "./api";
import { Tree } from "./catalog";
import { ms, usd } from "./format";
import { OutcomeMix, pct, WindowNote, WindowPicker, WINDOWS } from "./stats";
import { ErrorBox, failed } from "./errors";

/** The window a page shows: its span, and its start fixed when chosen. */
export function useWindow(): [number, number, (span: number) => void] {
  const [w, setW] = useState(() => ({ span: WINDOWS[0][1], since: Date.now() - WINDOWS[0][1] }));
  return [w.span, w.since, (span: number) => setW({ span, since: Date.now() - span })];
}

function Figures({ s }: { s?: PipelineStats }) {
  if (!s) return <p class="quiet">No requests in this window.</p>;
  return (
    <>
      <OutcomeMix outcomes={s.outcomes} />
      <table class="pipeline-figures">
        <tbody>
          <tr>
            <th>Requests</th>
            <td class="num">{s.requests}</td>
            <th>Spent</th>
            <td class="num">{usd(s.cost_usd)}</td>
          </tr>
          <tr>
            <th>Latency p50 / p95 / p99</th>
            <td class="num" colSpan={3}>
              {pct(s.latency_ms, ms)}
            </td>
          </tr>
          <tr>
            <th>Cost per request p50 / p95 / p99</th>
            <td class="num" colSpan={3}>
              {pct(s.cost_usd_percentiles, usd)}
            </td>
          </tr>
        </tbody>
      </table>
    </>
  );
}

export function Pipelines({ tenant, onAuth }: { tenant?: string; onAuth: () => void }) {
  const [span, since, setSpan] = useWindow();
  const [targets, setTargets] = useState<Target[] | null>(null);
  const [stats, setStats] = useState<{ window: StatsWindow; data: PipelineStats[] } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const fail = failed(onAuth, setError);
  useEffect(() => {
    api
      .models(tenant)
      .then((m) => setTargets(m.data.filter((t) => t.arbiter.kind === "pipeline")))
      .catch(fail);
  }, [tenant]);
  useEffect(() => {
    setStats(null);
    api.pipelineStats(tenant, since).then(setStats).catch(fail);
  }, [tenant, since]);
  if (error) return <ErrorBox error={error} />;
  if (!targets || !stats) return <p aria-busy="true">Loading…</p>;
  const byName = new Map(stats.data.map((s) => [s.pipeline, s]));
  // Every pipeline the tenant may call, then whatever else had requests (raw models).
  const names = [...targets.map((t) => t.id), ...stats.data.map((s) => s.pipeline).filter((n) => !targets.some((t) => t.id === n))];
  return (
    <section>
      <h2>Pipelines{tenant ? ` of ${tenant}` : ""}</h2>
      <div class="filters">
        <WindowPicker span={span} onSpan={setSpan} />
      </div>
      <WindowNote window={stats.window} />
      {names.length === 0 && <p>No pipelines, and no requests in this window.</p>}
      {names.map((name) => {
        const t = targets.find((x) => x.id === name);
        return (
          <article class="pipeline" data-pipeline={name}>
            <header>
              <strong>{name}</strong>{" "}
              <small>
                {t ? (t.owned_by === "arbiter" ? "shared" : "own") : "called directly"}
                {t?.arbiter.description && ` · ${t.arbiter.description}`}
              </small>
            </header>
            <div class="pipeline-body">
              {t?.arbiter.definition && (
                <ul class="tree">
                  <Tree node={t.arbiter.definition} />
                </ul>
              )}
              <div>
                <Figures s={byName.get(name)} />
              </div>
            </div>
          </article>
        );
      })}
    </section>
  );
}
