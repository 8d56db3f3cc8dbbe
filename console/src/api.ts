// The console's only way to the gateway: the same JSON API every client uses, with the
// key from this browser tab's session (never put in a URL, gone when the tab closes).

const KEY = "arbiter.key";
const ROLE = "arbiter.role";

export type Role = "tenant" | "operator";

export const session = {
  key: (): string | null => sessionStorage.getItem(KEY),
  role: (): Role => (sessionStorage.getItem(ROLE) === "operator" ? "operator" : "tenant"),
  signIn: (key: string, role: Role) => {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(ROLE, role);
  },
  signOut: () => sessionStorage.clear(),
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown, key = session.key()): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${key ?? ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: reported below with the status.
  }
  if (!response.ok) {
    const e = json?.error;
    throw new ApiError(response.status, e?.code ?? "http_error", e?.message ?? `${response.status} ${response.statusText}`);
  }
  return json as T;
}

export interface TraceSummary {
  id: string;
  created_at: number;
  pipeline: string;
  outcome: string;
  model?: string;
  cost_usd: number;
  latency_ms: number;
  tags: string[];
}

export interface TracePage {
  data: TraceSummary[];
  next_cursor?: string;
}

export interface VerdictRecord {
  plugin: string;
  score?: number;
  decision?: string;
  reason: string;
  checks_failed: number;
  checks?: { name: string; passed: boolean; message?: string }[];
  error?: string;
  wall_us: number;
}

export interface Attempt {
  seq: number;
  node: string;
  kind: string;
  model: string;
  sample?: number;
  started_ms: number;
  latency_ms: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  outcome: string;
  verdicts?: VerdictRecord[];
  score?: number;
  error?: string;
  text?: string;
}

/** The limits a request ran under; absent ones were not limited. */
export interface Budget {
  deadline_ms?: number;
  max_cost_usd?: number;
  max_calls?: number;
  max_depth?: number;
}

export interface Trace extends Omit<TraceSummary, "model"> {
  budget?: Budget;
  model?: string;
  /** `seq` of the attempt whose answer was returned; with `n` > 1, every choice's. */
  answer_attempt?: number;
  answer_attempts?: number[];
  score?: number;
  answer?: string;
  error?: string;
  attempts: Attempt[];
}

export interface TraceFilters {
  pipeline?: string;
  outcome?: string;
  model?: string;
  tag?: string;
  since?: number;
  until?: number;
}

/** Where a tenant's traces are read: its own API, or the operator's view of it. */
const traces = (tenant?: string) => (tenant ? `/admin/v1/tenants/${encodeURIComponent(tenant)}/traces` : "/v1/traces");

export interface UsageRow {
  tenant: string;
  day: string;
  pipeline: string;
  model: string;
  requests: number;
  calls: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  errors: number;
}

export interface UsageList {
  from: string;
  to: string;
  data: UsageRow[];
}

export interface Target {
  id: string;
  owned_by: string;
  /** A pipeline's `definition` is its strategy tree. */
  arbiter: { kind: string; description: string; definition?: Record<string, unknown> };
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

/** The requests a statistic was read from (`complete`: all of the window's). */
export interface StatsWindow {
  since: number;
  until: number;
  requests: number;
  complete: boolean;
}

export interface PipelineStats {
  pipeline: string;
  requests: number;
  outcomes: Record<string, number>;
  cost_usd: number;
  cost_usd_percentiles: Percentiles;
  latency_ms: Percentiles;
}

export interface ModelStats {
  model: string;
  judged: number;
  success_rate?: number;
  latency_p50_ms: number;
  latency_p95_ms: number;
  latency_samples: number;
  calls: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

export interface PluginStats {
  plugin: string;
  kind: string;
  calls: number;
  errors: number;
  error_rate: number;
  errors_by_code: Record<string, number>;
  call_ms: Percentiles;
}

/** Where a tenant's statistics are read: its own API, or the operator's view of it. */
const stats = (tenant: string | undefined, what: string, since: number) =>
  `${tenant ? `/admin/v1/tenants/${encodeURIComponent(tenant)}` : "/v1"}/stats/${what}?since=${since}`;

export interface OwnPipeline {
  name: string;
  updated_at: number;
  definition: Record<string, unknown>;
}

export interface Plugin {
  name: string;
  latest: string;
  versions: { version: string; world: string; size_bytes: number }[];
  used_by: string[];
}

export const api = {
  /** Which kind of key this is: a tenant key lists traces; an operator key lists tenants. */
  async probe(key: string): Promise<Role> {
    try {
      await call<TracePage>("GET", "/v1/traces?limit=1", undefined, key);
      return "tenant";
    } catch (e) {
      if (!(e instanceof ApiError && e.code === "tenant_key_required")) throw e;
      await call("GET", "/admin/v1/tenants", undefined, key);
      return "operator";
    }
  },
  tenants: () => call<{ data: { name: string }[] }>("GET", "/admin/v1/tenants"),
  traces(tenant: string | undefined, filters: TraceFilters, cursor?: string, limit = 50): Promise<TracePage> {
    const q = new URLSearchParams({ limit: String(limit) });
    for (const [k, v] of Object.entries(filters)) {
      if (v !== undefined && v !== "") q.set(k, String(v));
    }
    if (cursor) q.set("cursor", cursor);
    return call("GET", `${traces(tenant)}?${q}`);
  },
  trace: (tenant: string | undefined, id: string) => call<Trace>("GET", `${traces(tenant)}/${encodeURIComponent(id)}`),
  /** Usage by UTC day, pipeline and model (`from`/`to` default to this month so far). */
  usage(tenant: string | undefined, from?: string, to?: string): Promise<UsageList> {
    const q = new URLSearchParams();
    if (tenant) q.set("tenant", tenant);
    if (from) q.set("from", from);
    if (to) q.set("to", to);
    return call("GET", `${tenant ? "/admin/v1/usage" : "/v1/usage"}?${q}`);
  },
  /** What the key may call (an operator: what `tenant` may call). */
  models: (tenant?: string) =>
    call<{ data: Target[] }>("GET", tenant ? `/admin/v1/tenants/${encodeURIComponent(tenant)}/models` : "/v1/models"),
  pipelines: () => call<{ data: OwnPipeline[] }>("GET", "/v1/pipelines"),
  plugins: () => call<{ data: Plugin[] }>("GET", "/v1/plugins"),
  pipelineStats: (tenant: string | undefined, since: number) =>
    call<{ window: StatsWindow; data: PipelineStats[] }>("GET", stats(tenant, "pipelines", since)),
  modelStats: (tenant: string | undefined, since: number) =>
    call<{ from: string; to: string; data: ModelStats[] }>("GET", stats(tenant, "models", since)),
  pluginStats: (tenant: string | undefined, since: number) =>
    call<{ window: StatsWindow; data: PluginStats[] }>("GET", stats(tenant, "plugins", since)),
  feedback: (body: { request_id: string; correct?: boolean; score?: number; note?: string }) =>
    call<{ ok: boolean }>("POST", "/v1/feedback", body),
};
