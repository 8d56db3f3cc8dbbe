// What a tenant can call and what it owns: the pipelines and models its key may use
// (`GET /v1/models`), its own pipelines as strategy trees (`GET /v1/pipelines`) and its
// uploaded plugins (`GET /v1/plugins`).
import { useEffect, useState } from "preact/hooks";
import { api, type OwnPipeline, type Plugin, type Target } from "./api";
import { when } from "./format";
import { ErrorBox, failed } from "./errors";

type Node = Record<string, unknown>;

/** Child nodes of a strategy node, whatever the strategy calls them. */
const CHILDREN = ["steps", "branches", "sub"];

function describe(node: Node): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(node)) {
    // Shared trees come with every default spelled out: empty lists say nothing.
    if (k === "type" || CHILDREN.includes(k) || (Array.isArray(v) && v.length === 0)) continue;
    if (k === "verify" && Array.isArray(v)) {
      parts.push(`verify: ${v.map((x) => (x as Node).plugin).join(", ")}`);
    } else if (k === "router" || k === "decomposer") {
      parts.push(`${k}: ${(v as Node)?.plugin}`);
    } else if (typeof v !== "object" || Array.isArray(v)) {
      parts.push(`${k}: ${Array.isArray(v) ? v.join(", ") : String(v)}`);
    }
  }
  return parts.join(" · ");
}

/** A strategy tree as nested lists: each node's type, its settings, then its children
 * (a list, one node, or a route's named branches). */
export function Tree({ node }: { node: Node }) {
  const kids = CHILDREN.flatMap((k) => {
    const v = node[k];
    if (Array.isArray(v)) return v as Node[];
    if (!v || typeof v !== "object") return [];
    return "type" in v ? [v as Node] : (Object.values(v) as Node[]);
  });
  return (
    <li>
      <strong>{String(node.type ?? "?")}</strong> {describe(node)}
      {kids.length > 0 && (
        <ul>
          {kids.map((k) => (
            <Tree node={k} />
          ))}
        </ul>
      )}
    </li>
  );
}

export function Catalog({ onAuth }: { onAuth: () => void }) {
  const [data, setData] = useState<{ models: Target[]; pipelines: OwnPipeline[]; plugins: Plugin[] } | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    Promise.all([api.models(), api.pipelines(), api.plugins()])
      .then(([m, p, g]) => setData({ models: m.data, pipelines: p.data, plugins: g.data }))
      .catch(failed(onAuth, setError));
  }, []);
  if (error) return <ErrorBox error={error} />;
  if (!data) return <p aria-busy="true">Loading…</p>;
  return (
    <section>
      <h2>Catalog</h2>
      <h3>What this key may call</h3>
      <table class="models">
        <thead>
          <tr>
            <th>Name</th>
            <th>Kind</th>
            <th>Owner</th>
            <th>Description</th>
          </tr>
        </thead>
        <tbody>
          {data.models.map((t) => (
            <tr>
              <td>{t.id}</td>
              <td>{t.arbiter.kind}</td>
              <td>{t.owned_by}</td>
              <td>{t.arbiter.description}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Own pipelines</h3>
      {data.pipelines.length === 0 && (
        <p>
          None. A tenant adds its own with <code>PUT /v1/pipelines/{"{name}"}</code>.
        </p>
      )}
      {data.pipelines.map((p) => (
        <article class="pipeline" data-pipeline={p.name}>
          <header>
            <strong>{p.name}</strong> <small>updated {when(p.updated_at * 1000)}</small>
          </header>
          <ul class="tree">
            <Tree node={p.definition} />
          </ul>
        </article>
      ))}
      <h3>Plugins</h3>
      {data.plugins.length === 0 ? (
        <p>None uploaded.</p>
      ) : (
        <table class="plugins">
          <thead>
            <tr>
              <th>Name</th>
              <th>World</th>
              <th>Latest version</th>
              <th class="num">Versions</th>
              <th>Used by</th>
            </tr>
          </thead>
          <tbody>
            {data.plugins.map((g) => (
              <tr>
                <td>{g.name}</td>
                <td>{g.versions[g.versions.length - 1]?.world}</td>
                <td>
                  <code>{g.latest.slice(0, 19)}…</code>
                </td>
                <td class="num">{g.versions.length}</td>
                <td>{g.used_by.join(", ") || "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
