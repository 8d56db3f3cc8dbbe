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

/** One stored version of a plugin (`PluginMeta` in the OpenAPI document). */
export interface PluginVersion {
  version: string;
  world: string;
  contract_version: string;
  metadata: { name: string; version: string; description: string };
  size_bytes: number;
  compile_ms: number;
  created_at: number;
  grants: string[];
  limits: { deadline_ms: number; memory_mb: number; fuel: number };
  warm: boolean;
}

export interface Plugin {
  name: string;
  latest: string;
  versions: PluginVersion[];
  used_by: string[];
}

/** The query of `POST /v1/plugins` (`UploadParams`); unset ones take the defaults. */
export interface UploadParams {
  name: string;
  grants?: string;
  deadline_ms?: number;
  memory_mb?: number;
  fuel?: number;
  warm?: boolean;
}

/** What a tenant may do (`Policy`); `PATCH` replaces it whole, unset limits are none. */
export interface Policy {
  pipelines: string[];
  models: string[];
  requests_per_second?: number | null;
  burst?: number | null;
  max_concurrent?: number | null;
  daily_spend_usd?: number | null;
  monthly_spend_usd?: number | null;
  plugins: {
    max_versions: number;
    max_total_bytes: number;
    max_deadline_ms: number;
    max_memory_mb: number;
    max_fuel: number;
    grants: string[];
  };
}

export interface TenantView {
  name: string;
  created_at: number;
  disabled: boolean;
  source: "config" | "store";
  policy: Policy;
  spend: { today_usd: number; this_month_usd: number };
}

/** A key as listed: never the key itself. Times in Unix seconds. */
export interface KeyRecord {
  id: string;
  tenant?: string | null;
  role: string;
  name: string;
  prefix: string;
  created_at: number;
  expires_at?: number | null;
  revoked_at?: number | null;
  last_used_at?: number | null;
}

const tenantPath = (name: string) => `/admin/v1/tenants/${encodeURIComponent(name)}`;

/** `POST /v1/plugins` by XMLHttpRequest, which reports the upload's progress (fetch does not). */
function upload(
  params: UploadParams,
  file: Blob,
  onProgress?: (sent: number, total: number) => void,
): Promise<{ created: boolean; version: PluginVersion & { name: string } }> {
  const q = new URLSearchParams({ name: params.name });
  for (const k of ["grants", "deadline_ms", "memory_mb", "fuel"] as const) {
    if (params[k] !== undefined) q.set(k, String(params[k]));
  }
  if (params.warm) q.set("warm", "true");
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/v1/plugins?${q}`);
    xhr.setRequestHeader("Authorization", `Bearer ${session.key() ?? ""}`);
    xhr.setRequestHeader("Content-Type", "application/wasm");
    if (onProgress) xhr.upload.onprogress = (e) => onProgress(e.loaded, e.total);
    xhr.onerror = () => reject(new ApiError(0, "network_error", "the upload did not reach the gateway"));
    xhr.onload = () => {
      let json: any = null;
      try {
        json = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        // Not JSON: reported below with the status.
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve({ created: xhr.status === 201, version: json });
      else {
        const e = json?.error;
        reject(new ApiError(xhr.status, e?.code ?? "http_error", e?.message ?? `${xhr.status} ${xhr.statusText}`));
      }
    };
    xhr.send(file);
  });
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
  uploadPlugin: upload,
  deletePlugin: (name: string) => call<null>("DELETE", `/v1/plugins/${encodeURIComponent(name)}`),
  // The operator's API.
  tenantList: () => call<{ data: TenantView[] }>("GET", "/admin/v1/tenants"),
  /** The signed-in tenant (an operator: `tenant`): its policy and spend so far. */
  tenant: (tenant?: string) => call<TenantView>("GET", tenant ? tenantPath(tenant) : "/v1/tenant"),
  createTenant: (body: { name: string; policy: Policy; disabled?: boolean }) =>
    call<TenantView>("POST", "/admin/v1/tenants", body),
  updateTenant: (name: string, body: { policy?: Policy; disabled?: boolean }) =>
    call<TenantView>("PATCH", tenantPath(name), body),
  deleteTenant: (name: string) => call<{ deleted: string }>("DELETE", tenantPath(name)),
  keys: (tenant: string) => call<{ data: KeyRecord[] }>("GET", `${tenantPath(tenant)}/keys`),
  createKey: (tenant: string, body: { name?: string; expires_at?: number }) =>
    call<KeyRecord & { key: string }>("POST", `${tenantPath(tenant)}/keys`, body),
  revokeKey: (id: string) => call<KeyRecord>("DELETE", `/admin/v1/keys/${encodeURIComponent(id)}`),
  reload: () => call<{ reloaded: boolean; pipelines: string[] }>("POST", "/admin/v1/reload"),
  pipelineStats: (tenant: string | undefined, since: number) =>
    call<{ window: StatsWindow; data: PipelineStats[] }>("GET", stats(tenant, "pipelines", since)),
  modelStats: (tenant: string | undefined, since: number) =>
    call<{ from: string; to: string; data: ModelStats[] }>("GET", stats(tenant, "models", since)),
  pluginStats: (tenant: string | undefined, since: number) =>
    call<{ window: StatsWindow; data: PluginStats[] }>("GET", stats(tenant, "plugins", since)),
  feedback: (body: { request_id: string; correct?: boolean; score?: number; note?: string }) =>
    call<{ ok: boolean }>("POST", "/v1/feedback", body),
};
