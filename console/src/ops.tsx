// The operator's pages, on the operator's API (`/admin/v1`): tenants and their policies
// (`GET`/`POST /tenants`, `PATCH`/`DELETE /tenants/{name}`), a tenant's keys
// (`GET`/`POST /tenants/{name}/keys`, `DELETE /keys/{id}`) and reloading the
// configuration (`POST /reload`). Routes: `#/tenants`, `#/tenants/<name>/keys`,
// `#/reload`.
import { useEffect, useState } from "preact/hooks";
import { api, type KeyRecord, type Policy, type TenantView } from "./api";
import { ErrorBox, failed } from "./errors";
import { usd, when } from "./format";

export type OpsPage = { page: "tenants" } | { page: "keys"; tenant: string } | { page: "reload" };

/** The operator page a route names, if any. */
export function opsRoute(route: string): OpsPage | undefined {
  if (route === "/tenants") return { page: "tenants" };
  if (route === "/reload") return { page: "reload" };
  const m = route.match(/^\/tenants\/([^/]+)\/keys$/);
  return m ? { page: "keys", tenant: decodeURIComponent(m[1]) } : undefined;
}

/** The operator's links of the top bar. */
export function OpsLinks({ current }: { current?: OpsPage }) {
  return (
    <>
      <li>
        <a href="#/tenants" aria-current={current?.page === "tenants" ? "page" : undefined}>
          Tenants
        </a>
      </li>
      <li>
        <a href="#/reload" aria-current={current?.page === "reload" ? "page" : undefined}>
          Reload
        </a>
      </li>
    </>
  );
}

export function Ops({ page, onAuth }: { page: OpsPage; onAuth: () => void }) {
  if (page.page === "keys") return <Keys key={page.tenant} tenant={page.tenant} onAuth={onAuth} />;
  if (page.page === "reload") return <Reload onAuth={onAuth} />;
  return <Tenants onAuth={onAuth} />;
}

const tenantHref = (name: string, page: string) => `#/tenants/${encodeURIComponent(name)}/${page}`;

/** The limits of a policy in a few words. */
function limitsText(p: Policy): string {
  const parts: string[] = [];
  if (p.requests_per_second != null) parts.push(`${p.requests_per_second}/s${p.burst != null ? ` (burst ${p.burst})` : ""}`);
  if (p.max_concurrent != null) parts.push(`${p.max_concurrent} at once`);
  if (p.daily_spend_usd != null) parts.push(`${usd(p.daily_spend_usd)}/day`);
  if (p.monthly_spend_usd != null) parts.push(`${usd(p.monthly_spend_usd)}/month`);
  return parts.length ? parts.join(", ") : "none";
}

const list = (v: string[]) => (v.length ? v.join(", ") : "none");

function Tenants({ onAuth }: { onAuth: () => void }) {
  const [tenants, setTenants] = useState<TenantView[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<string | null>(null);
  const load = () =>
    api
      .tenantList()
      .then((t) => setTenants(t.data))
      .catch(failed(onAuth, setError));
  useEffect(() => {
    load();
  }, []);
  const remove = async (name: string) => {
    setError(null);
    try {
      await api.deleteTenant(name);
      setConfirm(null);
      if (editing === name) setEditing(null);
      await load();
    } catch (e) {
      failed(onAuth, setError)(e);
    }
  };
  const edited = tenants?.find((t) => t.name === editing);
  return (
    <section>
      <h2>Tenants</h2>
      <ErrorBox error={error} />
      {tenants && (
        <table class="tenants striped">
          <thead>
            <tr>
              <th>Name</th>
              <th>Source</th>
              <th>Pipelines</th>
              <th>Raw models</th>
              <th>Limits</th>
              <th>Plugins may take</th>
              <th class="num">Spent today / month</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {tenants.map((t) => (
              <tr key={t.name} data-tenant={t.name}>
                <td>
                  <strong>{t.name}</strong>
                  {t.disabled && <span class="tag">disabled</span>}
                  {t.created_at > 0 && <small class="muted"> since {when(t.created_at * 1000)}</small>}
                </td>
                <td>{t.source === "config" ? "configuration file" : "API"}</td>
                <td>{list(t.policy.pipelines)}</td>
                <td>{list(t.policy.models)}</td>
                <td class="limits">{limitsText(t.policy)}</td>
                <td>
                  {t.policy.plugins.max_versions} versions, {t.policy.plugins.max_deadline_ms} ms,{" "}
                  {t.policy.plugins.max_memory_mb} MiB; grants {list(t.policy.plugins.grants)}
                </td>
                <td class="num">
                  {usd(t.spend.today_usd)} / {usd(t.spend.this_month_usd)}
                </td>
                <td class="actions">
                  <a href={tenantHref(t.name, "keys")} role="button" class="secondary outline">
                    Keys
                  </a>
                  <a href={tenantHref(t.name, "usage")}>usage</a> <a href={tenantHref(t.name, "traces")}>traces</a>
                  {t.source === "config" ? (
                    <small class="muted"> edited in the configuration file</small>
                  ) : confirm === t.name ? (
                    <div class="confirm" role="group" aria-label={`Delete ${t.name}?`}>
                      <small>Delete {t.name} and its keys? Its traces and usage stay.</small>
                      <button class="danger" onClick={() => remove(t.name)}>
                        Yes, delete {t.name}
                      </button>
                      <button class="secondary outline" onClick={() => setConfirm(null)}>
                        Cancel
                      </button>
                    </div>
                  ) : (
                    <>
                      <button class="secondary outline" onClick={() => setEditing(t.name)}>
                        Edit policy
                      </button>
                      <button class="secondary outline" onClick={() => setConfirm(t.name)}>
                        Delete
                      </button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {edited && (
        <article>
          <h3>Policy of {edited.name}</h3>
          <PolicyForm
            key={edited.name}
            label={`Policy of ${edited.name}`}
            policy={edited.policy}
            disabled={edited.disabled}
            submit="Save policy"
            onSubmit={async (policy, disabled) => {
              await api.updateTenant(edited.name, { policy, disabled });
              setEditing(null);
              await load();
            }}
            onCancel={() => setEditing(null)}
            onAuth={onAuth}
          />
        </article>
      )}
      <article>
        <h3>New tenant</h3>
        <PolicyForm
          label="New tenant"
          withName
          policy={DEFAULT_POLICY}
          disabled={false}
          submit="Create tenant"
          onSubmit={async (policy, disabled, name) => {
            await api.createTenant({ name: name ?? "", policy, disabled });
            await load();
          }}
          onAuth={onAuth}
        />
      </article>
    </section>
  );
}

/** The gateway's default policy (`Policy::default`): every admitting pipeline, no limits. */
const DEFAULT_POLICY: Policy = {
  pipelines: ["*"],
  models: [],
  plugins: {
    max_versions: 32,
    max_total_bytes: 256 << 20,
    max_deadline_ms: 1000,
    max_memory_mb: 256,
    max_fuel: 10_000_000_000,
    grants: [],
  },
};

const LIMITS = [
  ["requests_per_second", "Requests per second", "unlimited"],
  ["burst", "Burst", "one second's worth"],
  ["max_concurrent", "Requests at once", "unlimited"],
  ["daily_spend_usd", "Spend per UTC day (USD)", "unlimited"],
  ["monthly_spend_usd", "Spend per UTC month (USD)", "unlimited"],
] as const;

const PLUGIN_LIMITS = [
  ["max_versions", "Plugin versions stored"],
  ["max_total_bytes", "Plugin bytes stored"],
  ["max_deadline_ms", "Max plugin deadline (ms)"],
  ["max_memory_mb", "Max plugin memory (MiB)"],
  ["max_fuel", "Max plugin fuel"],
] as const;

const text = (v: number | null | undefined) => (v == null ? "" : String(v));
const names = (v: string) =>
  v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * Every field `PATCH /admin/v1/tenants/{name}` accepts (the policy is replaced whole);
 * empty limits are none. The gateway validates: its typed error is shown here.
 */
function PolicyForm(props: {
  label: string;
  policy: Policy;
  disabled: boolean;
  submit: string;
  withName?: boolean;
  onSubmit: (policy: Policy, disabled: boolean, name?: string) => Promise<void>;
  onCancel?: () => void;
  onAuth: () => void;
}) {
  const p = props.policy;
  const [name, setName] = useState("");
  const [draft, setDraft] = useState<Record<string, string>>(() => {
    const d: Record<string, string> = { pipelines: p.pipelines.join(", "), models: p.models.join(", ") };
    for (const [k] of LIMITS) d[k] = text(p[k]);
    for (const [k] of PLUGIN_LIMITS) d[k] = text(p.plugins[k]);
    return d;
  });
  const [grants, setGrants] = useState<string[]>(p.plugins.grants);
  const [disabled, setDisabled] = useState(props.disabled);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState<string | null>(null);
  const field = (k: string) => ({
    name: k,
    value: draft[k] ?? "",
    onInput: (e: Event) => setDraft({ ...draft, [k]: (e.currentTarget as HTMLInputElement).value }),
  });
  const submit = async (e: Event) => {
    e.preventDefault();
    const n = (k: string) => (draft[k]?.trim() ? Number(draft[k]) : null);
    const policy: Policy = {
      pipelines: names(draft.pipelines ?? ""),
      models: names(draft.models ?? ""),
      requests_per_second: n("requests_per_second"),
      burst: n("burst"),
      max_concurrent: n("max_concurrent"),
      daily_spend_usd: n("daily_spend_usd"),
      monthly_spend_usd: n("monthly_spend_usd"),
      plugins: { ...DEFAULT_POLICY.plugins, grants },
    };
    for (const [k] of PLUGIN_LIMITS) {
      const v = n(k);
      if (v !== null) policy.plugins[k] = v;
    }
    setBusy(true);
    setError(null);
    setSaved(null);
    try {
      await props.onSubmit(policy, disabled, name.trim());
      if (props.withName) setName("");
      setSaved(props.withName ? `Created ${name.trim()}.` : "Saved.");
    } catch (err) {
      failed(props.onAuth, setError)(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} aria-label={props.label}>
      {props.withName && (
        <label>
          Name
          <input name="name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
          <small>1-64 of a-z, 0-9, `-`, `_`, starting with a letter or digit.</small>
        </label>
      )}
      <div class="grid">
        <label>
          Shared pipelines (comma-separated, `*` for all)
          <input {...field("pipelines")} />
        </label>
        <label>
          Raw models (comma-separated, `*` for all)
          <input {...field("models")} />
        </label>
      </div>
      <div class="filters">
        {LIMITS.map(([k, label, none]) => (
          <label>
            {label}
            <input type="number" step="any" min="0" placeholder={none} {...field(k)} />
          </label>
        ))}
      </div>
      <details>
        <summary>Plugins' quota and ceilings</summary>
        <div class="filters">
          {PLUGIN_LIMITS.map(([k, label]) => (
            <label>
              {label}
              <input type="number" min="1" {...field(k)} />
            </label>
          ))}
        </div>
        <fieldset>
          <legend>Capabilities its plugins may be granted</legend>
          {["model", "stats"].map((g) => (
            <label>
              <input
                type="checkbox"
                name="plugin-grants"
                checked={grants.includes(g)}
                onChange={(e) => setGrants(e.currentTarget.checked ? [...grants, g] : grants.filter((x) => x !== g))}
              />
              {g}
            </label>
          ))}
        </fieldset>
      </details>
      <label>
        <input type="checkbox" name="disabled" checked={disabled} onChange={(e) => setDisabled(e.currentTarget.checked)} />
        Disabled (its keys are refused; its data stays)
      </label>
      <ErrorBox error={error} />
      {saved && <p role="status">{saved}</p>}
      <div class="pager">
        <button type="submit" aria-busy={busy} disabled={busy}>
          {props.submit}
        </button>
        {props.onCancel && (
          <button type="button" class="secondary outline" onClick={props.onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

const seconds = (s: number | null | undefined) => (s ? when(s * 1000) : "—");

function Keys({ tenant, onAuth }: { tenant: string; onAuth: () => void }) {
  const [keys, setKeys] = useState<KeyRecord[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [name, setName] = useState("");
  const [expires, setExpires] = useState("");
  const [secret, setSecret] = useState<{ id: string; key: string } | null>(null);
  const [copied, setCopied] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<string | null>(null);
  const load = () =>
    api
      .keys(tenant)
      .then((k) => setKeys(k.data))
      .catch(failed(onAuth, setError));
  useEffect(() => {
    load();
  }, []);
  const create = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setSecret(null);
    setCopied(null);
    try {
      const at = expires ? Math.floor(new Date(expires).getTime() / 1000) : undefined;
      const k = await api.createKey(tenant, { name: name.trim(), expires_at: at });
      setSecret({ id: k.id, key: k.key });
      setName("");
      setExpires("");
      await load();
    } catch (err) {
      failed(onAuth, setError)(err);
    }
  };
  const revoke = async (id: string) => {
    setError(null);
    try {
      await api.revokeKey(id);
      setConfirm(null);
      await load();
    } catch (err) {
      failed(onAuth, setError)(err);
    }
  };
  const copy = async () => {
    if (!secret) return;
    try {
      await navigator.clipboard.writeText(secret.key);
      setCopied("Copied.");
    } catch {
      setCopied("This browser refused to copy: select the key and copy it by hand.");
    }
  };
  return (
    <section>
      <h2>Keys of {tenant}</h2>
      <p>
        <a href="#/tenants">All tenants</a>
      </p>
      <ErrorBox error={error} />
      {secret && (
        <article class="secret" aria-label="New key">
          <h3>New key {secret.id}</h3>
          <p>
            <strong>This is the only time the key is shown:</strong> the gateway keeps only its hash. Copy it now; it will
            not be shown again.
          </p>
          <div class="pager">
            <input readOnly aria-label="The new key" value={secret.key} onFocus={(e) => e.currentTarget.select()} />
            <button type="button" onClick={copy}>
              Copy
            </button>
            <button type="button" class="secondary outline" onClick={() => setSecret(null)}>
              Done
            </button>
          </div>
          {copied && <small role="status">{copied}</small>}
        </article>
      )}
      {keys && (
        <table class="keys striped">
          <thead>
            <tr>
              <th>Id</th>
              <th>Name</th>
              <th>Starts with</th>
              <th>Created</th>
              <th>Expires</th>
              <th>Last used</th>
              <th>Revoked</th>
            </tr>
          </thead>
          <tbody>
            {keys.map((k) => (
              <tr key={k.id} data-key={k.id}>
                <td>
                  <code>{k.id}</code>
                </td>
                <td>{k.name || "—"}</td>
                <td>{k.prefix ? <code>{k.prefix}…</code> : "—"}</td>
                <td>{k.created_at ? when(k.created_at * 1000) : "configuration file"}</td>
                <td>{seconds(k.expires_at)}</td>
                <td>{seconds(k.last_used_at)}</td>
                <td>
                  {k.revoked_at ? (
                    <span class="revoked">{when(k.revoked_at * 1000)}</span>
                  ) : k.created_at === 0 ? (
                    <small class="muted">removed in the configuration file</small>
                  ) : confirm === k.id ? (
                    <div class="confirm" role="group" aria-label={`Revoke ${k.id}?`}>
                      <small>Revoke? Requests with it are refused from the next one on.</small>
                      <button class="danger" onClick={() => revoke(k.id)}>
                        Yes, revoke
                      </button>
                      <button class="secondary outline" onClick={() => setConfirm(null)}>
                        Cancel
                      </button>
                    </div>
                  ) : (
                    <button class="secondary outline" onClick={() => setConfirm(k.id)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {keys && keys.length === 0 && <p>No keys yet.</p>}
      <article>
        <h3>New key</h3>
        <form class="filters" onSubmit={create} aria-label="New key">
          <label>
            Key name
            <input name="key-name" value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="optional" />
          </label>
          <label>
            Expires
            <input type="datetime-local" name="expires" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} />
          </label>
          <button type="submit">Create key</button>
        </form>
      </article>
    </section>
  );
}

function Reload({ onAuth }: { onAuth: () => void }) {
  const [result, setResult] = useState<string[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const reload = async () => {
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      setResult((await api.reload()).pipelines.sort());
    } catch (e) {
      failed(onAuth, setError)(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section>
      <h2>Reload the configuration</h2>
      <p>
        Reads the configuration file again, as SIGHUP does: providers, models, shared plugins and pipelines. A file that fails to load is refused with its error, and the running configuration stays;
        requests in flight finish on the one they started with.
      </p>
      <button onClick={reload} aria-busy={busy} disabled={busy}>
        Reload configuration
      </button>
      <ErrorBox error={error} />
      {result && (
        <div class="reloaded" role="status" aria-label="Reloaded">
          <p>Reloaded. The shared pipelines now served:</p>
          <ul class="served">
            {result.map((p) => (
              <li>
                <code>{p}</code>
              </li>
            ))}
          </ul>
          {result.length === 0 && <p>none</p>}
        </div>
      )}
    </section>
  );
}
