import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, session, type Budget, type Role, type Trace, type TraceFilters, type TracePage } from "./api";
import { fromLocal, ms, usd, when } from "./format";
import { chosenOf, rowLabel, Timeline } from "./timeline";
import { Usage } from "./usage";
import { Catalog } from "./catalog";
import { Plugins } from "./plugins";
import { Ops, OpsLinks, opsRoute } from "./ops";
import { Pipelines } from "./pipelines";
import { Models } from "./models";

// Routes live in the fragment (`#/traces`, `#/traces/<id>`, `#/plugins`; an operator's
// `#/tenants/<name>/traces[/<id>]`, and its own pages of ops.tsx): the server serves
// one page, and the key never appears in a URL.
function useRoute(): string {
  const [route, setRoute] = useState(location.hash.slice(1) || "/traces");
  useEffect(() => {
    const on = () => setRoute(location.hash.slice(1) || "/traces");
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}

/** Where a tenant's pages are: the operator's view names the tenant. */
const base = (tenant?: string) => (tenant ? `#/tenants/${encodeURIComponent(tenant)}` : "#");

function App() {
  const [key, setKey] = useState(session.key());
  const route = useRoute();
  if (!key) return <SignIn onIn={(k, role) => (session.signIn(k, role), setKey(k))} />;
  const operator = session.role() === "operator";
  const signOut = () => (session.signOut(), setKey(null));
  const m = route.match(/^(?:\/tenants\/([^/]+))?\/(traces|usage|catalog|plugins|keys|pipelines|models)(?:\/([^/]+))?$/);
  // The operator's own pages (ops.tsx): `#/tenants`, `#/tenants/<name>/keys`, `#/reload`.
  const ops = operator ? opsRoute(route) : undefined;
  const tenant = operator && m?.[1] ? decodeURIComponent(m[1]) : undefined;
  const page = m?.[2] ?? (ops ? "" : "traces");
  const id = m?.[3] ? decodeURIComponent(m[3]) : undefined;
  return (
    <>
      <nav class="top">
        <ul>
          <li>
            <strong>Arbiter</strong>
          </li>
          <li>
            <a href={`${base(tenant)}/traces`} aria-current={page === "traces" ? "page" : undefined}>
              Traces
            </a>
          </li>
          <li>
            <a href={`${base(tenant)}/usage`} aria-current={page === "usage" ? "page" : undefined}>
              Usage
            </a>
          </li>
          <li>
            <a href={`${base(tenant)}/pipelines`} aria-current={page === "pipelines" ? "page" : undefined}>
              Pipelines
            </a>
          </li>
          <li>
            <a href={`${base(tenant)}/models`} aria-current={page === "models" ? "page" : undefined}>
              Models
            </a>
          </li>
          {/* A tenant's catalog has no operator's view yet. */}
          {!operator && (
            <li>
              <a href="#/catalog" aria-current={page === "catalog" ? "page" : undefined}>
                Catalog
              </a>
            </li>
          )}
          {!operator && (
            <li>
              <a href="#/plugins" aria-current={page === "plugins" ? "page" : undefined}>
                Plugins
              </a>
            </li>
          )}
          {/* Not on a page of every tenant: the picker would choose one. */}
          {operator && (!ops || ops.page === "keys") && (
            <li>
              <TenantPicker tenant={tenant} page={page} />
            </li>
          )}
          {operator && <OpsLinks current={ops} />}
        </ul>
        <ul>
          <li>{operator ? "operator" : "tenant key"}</li>
          <li>
            <button class="secondary outline" onClick={signOut}>
              Sign out
            </button>
          </li>
        </ul>
      </nav>
      {ops ? (
        <Ops page={ops} onAuth={signOut} />
      ) : operator && !tenant ? (
        <p>Choose a tenant to see its traces.</p>
      ) : page === "catalog" && !operator ? (
        <Catalog onAuth={signOut} />
      ) : page === "plugins" && !operator ? (
        <Plugins onAuth={signOut} />
      ) : page === "pipelines" ? (
        <Pipelines key={tenant} tenant={tenant} onAuth={signOut} />
      ) : page === "models" ? (
        <Models key={tenant} tenant={tenant} onAuth={signOut} />
      ) : page === "usage" ? (
        <Usage key={tenant} tenant={tenant} onAuth={signOut} />
      ) : id ? (
        <TraceView key={`${tenant}/${id}`} tenant={tenant} id={id} onAuth={signOut} />
      ) : (
        <Traces key={tenant} tenant={tenant} onAuth={signOut} />
      )}
    </>
  );
}

/** The operator's choice of tenant (`GET /admin/v1/tenants`); the first one until chosen. */
function TenantPicker({ tenant, page }: { tenant?: string; page: string }) {
  const [names, setNames] = useState<string[]>([]);
  useEffect(() => {
    api.tenants().then((t) => {
      const list = t.data.map((x) => x.name);
      setNames(list);
      if (!tenant && list.length) location.hash = `${base(list[0])}/${page}`;
    });
  }, []);
  return (
    <select
      aria-label="Tenant"
      value={tenant ?? ""}
      onChange={(e) => (location.hash = `${base(e.currentTarget.value)}/${page}`)}
    >
      {names.map((n) => (
        <option value={n}>{n}</option>
      ))}
    </select>
  );
}

function SignIn({ onIn }: { onIn: (key: string, role: Role) => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const role = await api.probe(key.trim());
      onIn(key.trim(), role);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? "This key is unknown, revoked or expired."
          : String(err instanceof Error ? err.message : err),
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <article class="signin">
      <h1>Arbiter console</h1>
      <form onSubmit={submit}>
        <label>
          API key
          <input
            type="password"
            name="key"
            autocomplete="off"
            required
            value={key}
            onInput={(e) => setKey(e.currentTarget.value)}
            aria-invalid={error ? "true" : undefined}
          />
          <small>
            A tenant's key, or an operator key to see every tenant's traces. Kept in this tab's session only; sent
            to this gateway's API and nowhere else.
          </small>
        </label>
        {error && <p class="error-box" role="alert">{error}</p>}
        <button type="submit" aria-busy={busy} disabled={busy}>
          Sign in
        </button>
      </form>
    </article>
  );
}

const OUTCOMES = ["accepted", "unverified", "rejected", "budget_best", "failed", "cancelled"];

function Traces({ tenant, onAuth }: { tenant?: string; onAuth: () => void }) {
  const [filters, setFilters] = useState<TraceFilters>({});
  const [draft, setDraft] = useState<Record<string, string>>({});
  // Cursors of the pages before this one: "Previous" pops one.
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [page, setPage] = useState<TracePage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const cursor = cursors[cursors.length - 1];
  useEffect(() => {
    let live = true;
    setError(null);
    api
      .traces(tenant, filters, cursor)
      .then((p) => live && setPage(p))
      .catch((e) => {
        if (e instanceof ApiError && e.status === 401) onAuth();
        else if (live) setError(e.message);
      });
    return () => {
      live = false;
    };
  }, [filters, cursor]);
  const field = (name: string) => ({
    name,
    value: draft[name] ?? "",
    onInput: (e: Event) => setDraft({ ...draft, [name]: (e.currentTarget as HTMLInputElement).value }),
  });
  const apply = (e: Event) => {
    e.preventDefault();
    setFilters({
      pipeline: draft.pipeline,
      outcome: draft.outcome,
      model: draft.model,
      tag: draft.tag,
      since: fromLocal(draft.since ?? ""),
      until: fromLocal(draft.until ?? ""),
    });
    setCursors([undefined]);
  };
  return (
    <section>
      <h2>{tenant ? `Traces of ${tenant}` : "Traces"}</h2>
      <form class="filters" onSubmit={apply} aria-label="Filters">
        <label>
          Pipeline
          <input {...field("pipeline")} />
        </label>
        <label>
          Outcome
          <select {...field("outcome")}>
            <option value="">any</option>
            {OUTCOMES.map((o) => (
              <option value={o}>{o}</option>
            ))}
          </select>
        </label>
        <label>
          Model
          <input {...field("model")} />
        </label>
        <label>
          Tag
          <input {...field("tag")} />
        </label>
        <label>
          From
          <input type="datetime-local" {...field("since")} />
        </label>
        <label>
          Until
          <input type="datetime-local" {...field("until")} />
        </label>
        <button type="submit">Search</button>
      </form>
      {error && <p class="error-box" role="alert">{error}</p>}
      {page && (
        <>
          <table class="traces striped">
            <thead>
              <tr>
                <th>Time</th>
                <th>Pipeline</th>
                <th>Outcome</th>
                <th>Model</th>
                <th class="num">Cost</th>
                <th class="num">Latency</th>
                <th>Tags</th>
              </tr>
            </thead>
            <tbody>
              {page.data.map((t) => (
                <tr key={t.id} data-trace={t.id} onClick={() => (location.hash = `${base(tenant)}/traces/${encodeURIComponent(t.id)}`)}>
                  <td>
                    <a href={`${base(tenant)}/traces/${encodeURIComponent(t.id)}`}>{when(t.created_at)}</a>
                  </td>
                  <td>{t.pipeline}</td>
                  <td class={`outcome-${t.outcome}`}>{t.outcome}</td>
                  <td>{t.model ?? "—"}</td>
                  <td class="num">{usd(t.cost_usd)}</td>
                  <td class="num">{ms(t.latency_ms)}</td>
                  <td>
                    {t.tags.map((g) => (
                      <span class="tag">{g}</span>
                    ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {page.data.length === 0 && <p>No traces match.</p>}
          <div class="pager">
            <button class="secondary" disabled={cursors.length < 2} onClick={() => setCursors(cursors.slice(0, -1))}>
              Previous
            </button>
            <button
              class="secondary"
              disabled={!page.next_cursor}
              onClick={() => setCursors([...cursors, page.next_cursor])}
            >
              Next
            </button>
          </div>
        </>
      )}
    </section>
  );
}

function TraceView({ tenant, id, onAuth }: { tenant?: string; id: string; onAuth: () => void }) {
  const [trace, setTrace] = useState<Trace | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api
      .trace(tenant, id)
      .then(setTrace)
      .catch((e) => (e instanceof ApiError && e.status === 401 ? onAuth() : setError(e.message)));
  }, [id]);
  if (error)
    return (
      <p class="error-box" role="alert">
        {error}
      </p>
    );
  if (!trace) return <p aria-busy="true">Loading…</p>;
  const calls = trace.attempts.filter((a) => a.kind === "model" && a.outcome !== "over_budget").length;
  const cancelled = trace.attempts.filter((a) => a.outcome === "cancelled").length;
  return (
    <section>
      <h2>
        Trace <code>{trace.id}</code>
      </h2>
      <div class="summary">
        <div>
          <small>Time</small>
          {when(trace.created_at)}
        </div>
        <div>
          <small>Pipeline</small>
          {trace.pipeline}
        </div>
        <div>
          <small>Outcome</small>
          <span class={`outcome-${trace.outcome}`}>{trace.outcome}</span>
        </div>
        <div>
          <small>Model</small>
          {trace.model ?? "—"}
        </div>
        <div>
          <small>Spent</small>
          {usd(trace.cost_usd)} in {calls} model call{calls === 1 ? "" : "s"}
        </div>
        <div>
          <small>Latency</small>
          {ms(trace.latency_ms)}
        </div>
        <div>
          <small>Tags</small>
          {trace.tags.length ? trace.tags.map((g) => <span class="tag">{g}</span>) : "—"}
        </div>
      </div>
      {trace.budget && <BudgetView budget={trace.budget} cost={trace.cost_usd} calls={calls} latency={trace.latency_ms} />}
      <h3>Timeline</h3>
      {cancelled > 0 && (
        <p>
          {cancelled} attempt{cancelled > 1 ? "s were" : " was"} cancelled: another answer won first.
        </p>
      )}
      <Timeline attempts={trace.attempts} latency={trace.latency_ms} chosen={chosenOf(trace)} />
      <h3>Attempts</h3>
      <table class="attempts">
        <thead>
          <tr>
            <th>Attempt</th>
            <th>Outcome</th>
            <th class="num">Start</th>
            <th class="num">Latency</th>
            <th class="num">Tokens in/out</th>
            <th class="num">Cost</th>
            <th>Verdicts</th>
          </tr>
        </thead>
        <tbody>
          {trace.attempts.map((a) => (
            <tr key={a.seq} data-outcome={a.outcome} data-chosen={chosenOf(trace).includes(a.seq) || undefined}>
              <td>
                {rowLabel(a)}
                {chosenOf(trace).includes(a.seq) && <span class="tag chosen">★ answer returned</span>}
              </td>
              <td class={`outcome-${a.outcome}`}>{a.outcome}</td>
              <td class="num">{ms(a.started_ms)}</td>
              <td class="num">{ms(a.latency_ms)}</td>
              <td class="num">
                {a.input_tokens}/{a.output_tokens}
              </td>
              <td class="num">{usd(a.cost_usd)}</td>
              <td>
                {a.error && <div class="error-box">{a.error}</div>}
                {(a.verdicts ?? []).map((v) => (
                  <div>
                    <strong>{v.plugin}</strong>: {v.decision ?? "error"}
                    {v.score !== undefined && ` (score ${v.score.toFixed(2)})`}
                    {v.checks_failed > 0 && `, ${v.checks_failed} check${v.checks_failed > 1 ? "s" : ""} failed`}
                    {v.reason && ` — ${v.reason}`}
                    {v.error && <span class="error-box"> {v.error}</span>}
                    {v.checks && v.checks.length > 0 && (
                      <ul class="checks">
                        {v.checks.map((c) => (
                          <li class={c.passed ? "passed" : "failed"}>
                            {c.passed ? "✓" : "✗"} {c.name}
                            {c.message && `: ${c.message}`}
                          </li>
                        ))}
                      </ul>
                    )}
                  </div>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Answer</h3>
      {trace.answer !== undefined ? (
        <blockquote class="answer">{trace.answer}</blockquote>
      ) : (
        <p class="error-box">{trace.error ?? "No answer."}</p>
      )}
      {/* Feedback is the tenant's word on its own requests. */}
      {!tenant && <FeedbackForm id={trace.id} />}
    </section>
  );
}

/** What the request spent against each limit it ran under. */
function BudgetView({ budget, cost, calls, latency }: { budget: Budget; cost: number; calls: number; latency: number }) {
  const rows: [string, number, number | undefined, (v: number) => string][] = [
    ["Cost", cost, budget.max_cost_usd, usd],
    ["Model calls", calls, budget.max_calls, String],
    ["Time", latency, budget.deadline_ms, ms],
  ];
  return (
    <table class="budget" aria-label="Budget">
      <thead>
        <tr>
          <th>Budget</th>
          <th class="num">Spent</th>
          <th class="num">Limit</th>
          <th>Used</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(([name, spent, limit, show]) => (
          <tr>
            <td>{name}</td>
            <td class="num">{show(spent)}</td>
            <td class="num">{limit === undefined ? "none" : show(limit)}</td>
            <td>
              {limit !== undefined && limit > 0 && (
                <progress value={Math.min(spent, limit)} max={limit} aria-label={`${name} used`} />
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function FeedbackForm({ id }: { id: string }) {
  const [correct, setCorrect] = useState<string>("");
  const [note, setNote] = useState("");
  const [status, setStatus] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      await api.feedback({
        request_id: id,
        correct: correct === "" ? undefined : correct === "yes",
        note: note || undefined,
      });
      setStatus("Thank you: the feedback is recorded, and routers learn from it.");
    } catch (err) {
      setStatus(`Not recorded: ${err instanceof Error ? err.message : err}`);
    }
  };
  return (
    <article>
      <h3>Feedback</h3>
      <form onSubmit={submit} aria-label="Feedback">
        <fieldset>
          <legend>Was the answer correct?</legend>
          {[
            ["yes", "Correct"],
            ["no", "Wrong"],
          ].map(([v, label]) => (
            <label>
              <input type="radio" name="correct" value={v} checked={correct === v} onChange={() => setCorrect(v)} />
              {label}
            </label>
          ))}
        </fieldset>
        <label>
          Note
          <textarea name="note" value={note} onInput={(e) => setNote(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={correct === "" && !note}>
          Send feedback
        </button>
        {status && <p role="status">{status}</p>}
      </form>
    </article>
  );
}

render(<App />, document.getElementById("app")!);
