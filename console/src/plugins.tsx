// A tenant's own plugins: what `GET /v1/plugins` returns (world, version digest, limits,
// capabilities, the pipelines using each), an upload form (`POST /v1/plugins` with the
// component's bytes and the query of `UploadParams`) and deletion (`DELETE
// /v1/plugins/{name}`).
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, type Plugin, type PluginVersion } from "./api";
import { ErrorBox, failed } from "./errors";
import { when } from "./format";
import { PluginStats } from "./stats";

/**
 * A column added to the plugins table after the built-in ones (before the actions):
 * the slot for per-plugin figures read elsewhere (call statistics, say). `cell` gets
 * the plugin and its latest version, which is what a pipeline naming it calls.
 */
export interface PluginColumn {
  header: ComponentChildren;
  cell: (plugin: Plugin, latest: PluginVersion) => ComponentChildren;
  /** Right-aligned figures. */
  numeric?: boolean;
}

const GRANTS = ["model", "stats"];

const bytes = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
const shortDigest = (v: string) => v.replace(/^sha256:/, "").slice(0, 12);

export function Plugins({ onAuth, extraColumns = [] }: { onAuth: () => void; extraColumns?: PluginColumn[] }) {
  const [plugins, setPlugins] = useState<Plugin[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [confirm, setConfirm] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [since] = useState(() => Date.now() - 24 * 3600 * 1000);
  const load = () =>
    api
      .plugins()
      .then((p) => setPlugins(p.data))
      .catch(failed(onAuth, setError));
  useEffect(() => {
    load();
  }, []);
  const remove = async (name: string) => {
    setBusy(true);
    setError(null);
    try {
      await api.deletePlugin(name);
      setConfirm(null);
      await load();
    } catch (e) {
      failed(onAuth, setError)(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section>
      <h2>Plugins</h2>
      <p>
        Your own verifiers, routers and decomposers. A pipeline names one as <code>name</code> (its latest version)
        or <code>name@sha256:…</code> (that version).
      </p>
      <ErrorBox error={error} />
      {plugins && plugins.length === 0 && <p>No plugins uploaded yet.</p>}
      {plugins && plugins.length > 0 && (
        <table class="plugins-own striped">
          <thead>
            <tr>
              <th>Name</th>
              <th>World</th>
              <th>Latest version</th>
              <th>Its own name</th>
              <th>Limits per call</th>
              <th>Capabilities</th>
              <th class="num">Size</th>
              <th>Used by</th>
              {extraColumns.map((c) => (
                <th class={c.numeric ? "num" : undefined}>{c.header}</th>
              ))}
              <th></th>
            </tr>
          </thead>
          <tbody>
            {plugins.map((p) => {
              const latest = p.versions.find((v) => v.version === p.latest) ?? p.versions[p.versions.length - 1];
              return (
                <tr key={p.name} data-plugin={p.name}>
                  <td>
                    <strong>{p.name}</strong>
                    {p.versions.length > 1 && (
                      <details>
                        <summary>{p.versions.length} versions</summary>
                        <ul class="versions">
                          {p.versions.map((v) => (
                            <li>
                              <code title={v.version}>{shortDigest(v.version)}</code> {when(v.created_at * 1000)}
                            </li>
                          ))}
                        </ul>
                      </details>
                    )}
                  </td>
                  <td>{latest.world}</td>
                  <td>
                    <code class="digest" title={latest.version}>
                      {shortDigest(latest.version)}
                    </code>
                    <small class="muted">
                      {" "}
                      contract {latest.contract_version}, {when(latest.created_at * 1000)}
                    </small>
                  </td>
                  <td>
                    {latest.metadata.name} {latest.metadata.version}
                    {latest.metadata.description && <small class="muted"> — {latest.metadata.description}</small>}
                  </td>
                  <td>
                    {latest.limits.deadline_ms} ms, {latest.limits.memory_mb} MiB, {latest.limits.fuel.toLocaleString()}{" "}
                    fuel
                  </td>
                  <td>
                    {latest.grants.length ? latest.grants.map((g) => <span class="tag">{g}</span>) : "none"}
                    {latest.warm && <span class="tag">warm</span>}
                  </td>
                  <td class="num">{bytes(latest.size_bytes)}</td>
                  <td>{p.used_by.length ? p.used_by.join(", ") : "—"}</td>
                  {extraColumns.map((c) => (
                    <td class={c.numeric ? "num" : undefined}>{c.cell(p, latest)}</td>
                  ))}
                  <td>
                    {confirm === p.name ? (
                      <div class="confirm" role="group" aria-label={`Delete ${p.name}?`}>
                        <small>Delete every version{p.used_by.length ? " (a pipeline uses it: refused)" : ""}?</small>
                        <button class="danger" aria-busy={busy} disabled={busy} onClick={() => remove(p.name)}>
                          Yes, delete {p.name}
                        </button>
                        <button class="secondary outline" onClick={() => setConfirm(null)}>
                          Cancel
                        </button>
                      </div>
                    ) : (
                      <button class="secondary outline" onClick={() => setConfirm(p.name)}>
                        Delete
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <h3>Calls in the last 24 hours</h3>
      <p class="quiet">Call count, call time and errors by code, of every plugin this tenant's pipelines call.</p>
      <PluginStats since={since} onAuth={onAuth} />
      <UploadForm onAuth={onAuth} onUploaded={load} />
    </section>
  );
}

/** A number field's value: undefined when empty. */
const num = (v: string) => (v.trim() === "" ? undefined : Number(v));

function UploadForm({ onAuth, onUploaded }: { onAuth: () => void; onUploaded: () => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState("");
  const [grants, setGrants] = useState<string[]>([]);
  const [limits, setLimits] = useState({ deadline_ms: "", memory_mb: "", fuel: "" });
  const [warm, setWarm] = useState(false);
  const [progress, setProgress] = useState<{ sent: number; total: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!file) return;
    setError(null);
    setDone(null);
    setProgress({ sent: 0, total: file.size });
    try {
      const r = await api.uploadPlugin(
        {
          name: name.trim(),
          grants: grants.join(",") || undefined,
          deadline_ms: num(limits.deadline_ms),
          memory_mb: num(limits.memory_mb),
          fuel: num(limits.fuel),
          warm,
        },
        file,
        (sent, total) => setProgress({ sent, total }),
      );
      setDone(
        `${r.created ? "Uploaded" : "Already stored:"} ${r.version.name}@${r.version.version} (${r.version.world}, compiled in ${Math.round(r.version.compile_ms)} ms).`,
      );
      onUploaded();
    } catch (err) {
      failed(onAuth, setError)(err);
    } finally {
      setProgress(null);
    }
  };
  const limit = (key: keyof typeof limits, label: string, hint: string) => (
    <label>
      {label}
      <input
        type="number"
        name={key}
        min="1"
        placeholder={hint}
        value={limits[key]}
        onInput={(e) => setLimits({ ...limits, [key]: e.currentTarget.value })}
      />
    </label>
  );
  return (
    <article>
      <h3>Upload a plugin</h3>
      <form onSubmit={submit} aria-label="Upload a plugin">
        <div class="grid">
          <label>
            Component (.wasm)
            <input
              type="file"
              name="component"
              accept=".wasm,application/wasm"
              required
              onChange={(e) => {
                const f = e.currentTarget.files?.[0] ?? null;
                setFile(f);
                // The file's name, made a plugin name, until one is typed.
                if (f && !name) setName(f.name.replace(/\.wasm$/, "").replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 64));
              }}
            />
          </label>
          <label>
            Name
            <input
              name="name"
              required
              value={name}
              onInput={(e) => setName(e.currentTarget.value)}
            />
            <small>Letters, digits, `.`, `-`, `_`; a new version if the name exists.</small>
          </label>
        </div>
        <div class="grid">
          {limit("deadline_ms", "Deadline (ms)", "1000")}
          {limit("memory_mb", "Memory (MiB)", "256")}
          {limit("fuel", "Fuel (instructions)", "10000000000")}
        </div>
        <fieldset>
          <legend>Capabilities (within your policy)</legend>
          {GRANTS.map((g) => (
            <label>
              <input
                type="checkbox"
                name="grants"
                value={g}
                checked={grants.includes(g)}
                onChange={(e) => setGrants(e.currentTarget.checked ? [...grants, g] : grants.filter((x) => x !== g))}
              />
              {g}
            </label>
          ))}
          <label>
            <input type="checkbox" name="warm" checked={warm} onChange={(e) => setWarm(e.currentTarget.checked)} />
            warm (reuse instances between your calls; stateless plugins only)
          </label>
        </fieldset>
        <small>Empty limits take the defaults, capped by your policy.</small>
        {progress && (
          <p>
            <progress
              value={progress.sent}
              max={progress.total || 1}
              aria-label="Upload progress"
            />
            {progress.sent < progress.total ? "Uploading…" : "Checking and compiling…"}
          </p>
        )}
        <ErrorBox error={error} />
        {done && <p role="status">{done}</p>}
        <button type="submit" aria-busy={progress !== null} disabled={!file || progress !== null}>
          Upload
        </button>
      </form>
    </article>
  );
}
