//! A tenant's own plugins and pipelines on a running gateway, from the command line:
//! `arbiter plugin push` (`POST /v1/plugins`) and `arbiter pipeline apply|list|delete`
//! (`/v1/pipelines`). The tenant key comes from `ARBITER_API_KEY` (or `--key`), the
//! gateway from `ARBITER_URL` (or `--url`).
//!
//! Also the HTTP plumbing `arbiter admin` shares: a call whose non-2xx answer becomes a
//! [`Refused`] with the server's error code, and the report of a failure (with `--json`,
//! `{"error": {"code", "message", "status"}}` on stderr).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::output::print_json;

// ------------------------------------------------------------------ shared plumbing

/// An answer the server refused: its error code and message.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {message} ({code})")]
pub(super) struct Refused {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// A single-threaded runtime: a CLI call is one request at a time.
pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub(super) fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .context("building the HTTP client")
}

/// Sends `request` (to `url`, named in errors) and returns the status and the JSON
/// document; a non-2xx answer is a [`Refused`]. A 2xx without a body (204) is `null`.
pub(super) async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let reply = request
        .send()
        .await
        .with_context(|| format!("calling {url}"))?;
    let status = reply.status();
    let body = reply
        .bytes()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    let doc: Value = if body.is_empty() && status.is_success() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .with_context(|| format!("{url} answered {status} without JSON"))?
    };
    if !status.is_success() {
        return Err(Refused {
            status: status.as_u16(),
            code: doc["error"]["code"].as_str().unwrap_or("error").into(),
            message: doc["error"]["message"].as_str().unwrap_or("").into(),
        }
        .into());
    }
    Ok((status, doc))
}

/// Reports a failure on stderr (the server's code when it refused) and returns the
/// failing exit code.
pub(super) fn report(e: &anyhow::Error, json: bool) -> ExitCode {
    match (e.downcast_ref::<Refused>(), json) {
        (Some(r), true) => eprintln!(
            "{}",
            json!({"error": {"code": r.code, "message": r.message, "status": r.status}})
        ),
        (None, true) => eprintln!(
            "{}",
            json!({"error": {"code": "error", "message": format!("{e:#}")}})
        ),
        (_, false) => eprintln!("error: {e:#}"),
    }
    ExitCode::FAILURE
}

// ------------------------------------------------------------------ arguments

/// The gateway and the tenant key every command here needs.
#[derive(Debug, Clone, Args)]
pub struct Gateway {
    /// The gateway.
    #[arg(long, env = "ARBITER_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A tenant API key.
    #[arg(long, env = "ARBITER_API_KEY", hide_env_values = true)]
    pub key: String,
    /// Print the server's JSON document.
    #[arg(long)]
    pub json: bool,
}

impl Gateway {
    /// `{url}/v1/<segments>`, each segment escaped (a name is not trusted to be a path).
    fn endpoint(&self, segments: &[&str]) -> anyhow::Result<reqwest::Url> {
        let mut url = reqwest::Url::parse(&self.url)
            .with_context(|| format!("--url `{}` is not a URL", self.url))?;
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("--url `{}` cannot take a path", self.url))?
            .pop_if_empty()
            .push("v1")
            .extend(segments);
        Ok(url)
    }
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// A component, or a plugin project folder: built first, and it must build exactly
    /// one component (for a workspace, push the component file you mean).
    pub path: PathBuf,
    /// The plugin's name in your namespace (default: the component's file stem, e.g.
    /// `gsm8k_verifier` for `gsm8k_verifier.wasm`).
    #[arg(long)]
    pub name: Option<String>,
    /// Grant a capability (`model`, `stats`), within your policy; repeatable.
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    /// Per-call deadline in milliseconds (default: the gateway's, capped by your policy).
    #[arg(long)]
    pub deadline_ms: Option<u64>,
    /// Memory of one instance in MiB (default: the gateway's, capped by your policy).
    #[arg(long)]
    pub memory_mb: Option<u64>,
    /// Instructions per call (default: the gateway's, capped by your policy).
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Reuse warm instances between your calls if the plugin is stateless.
    #[arg(long)]
    pub warm: bool,
    #[command(flatten)]
    pub gateway: Gateway,
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Create or replace one of your pipelines from a file: `.json`, or `.toml` with the
    /// keys of a `[pipelines.<name>]` table (or that one table itself).
    Apply {
        /// The pipeline file (`.json` or `.toml`).
        file: PathBuf,
        /// The pipeline's name (default: the `[pipelines.<name>]` key, else the file stem).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        gateway: Gateway,
    },
    /// List your pipelines.
    List {
        #[command(flatten)]
        gateway: Gateway,
    },
    /// Delete one of your pipelines (refused while another of yours runs it). The server
    /// answers without a body: `--json` prints `{"name": NAME, "deleted": true}`.
    Delete {
        name: String,
        #[command(flatten)]
        gateway: Gateway,
    },
}

// ------------------------------------------------------------------ plugin push

/// Compiling a large plugin (a Python one takes a while) happens inside the request.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

pub fn push(args: PushArgs) -> anyhow::Result<ExitCode> {
    let json = args.gateway.json;
    // Built before the runtime starts: the build blocks on the toolchain for a while.
    let result = super::plugin::component_of(&args.path, json)
        .and_then(|file| runtime()?.block_on(upload(&args, &file)));
    match result {
        Ok((status, doc)) => {
            if json {
                print_json(&doc)?;
            } else {
                println!(
                    "{} {} {} {} bytes, compiled in {:.0} ms ({})",
                    doc["name"].as_str().unwrap_or(""),
                    doc["version"].as_str().unwrap_or(""),
                    doc["world"].as_str().unwrap_or(""),
                    doc["size_bytes"],
                    doc["compile_ms"].as_f64().unwrap_or(0.0),
                    // 200: these bytes were stored already, with the same grants and limits.
                    if status == StatusCode::CREATED {
                        "new"
                    } else {
                        "unchanged"
                    },
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(report(&e, json)),
    }
}

async fn upload(args: &PushArgs, file: &Path) -> anyhow::Result<(StatusCode, Value)> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .with_context(|| format!("{} has no file name; pass --name", file.display()))?,
    };
    // Only what was asked for: the server's defaults (and the policy's ceilings) decide
    // the rest.
    let mut query = vec![("name", name)];
    if !args.grants.is_empty() {
        query.push(("grants", args.grants.join(",")));
    }
    for (key, value) in [
        ("deadline_ms", args.deadline_ms),
        ("memory_mb", args.memory_mb),
        ("fuel", args.fuel),
    ] {
        if let Some(v) = value {
            query.push((key, v.to_string()));
        }
    }
    if args.warm {
        query.push(("warm", "true".into()));
    }
    let url = args.gateway.endpoint(&["plugins"])?;
    let request = client(UPLOAD_TIMEOUT)?
        .post(url.clone())
        .query(&query)
        .bearer_auth(&args.gateway.key)
        .header(reqwest::header::CONTENT_TYPE, "application/wasm")
        .body(bytes);
    send(request, url.as_str()).await
}

// ------------------------------------------------------------------ pipelines

pub fn pipeline(cmd: PipelineCommand) -> anyhow::Result<ExitCode> {
    let (PipelineCommand::Apply { gateway, .. }
    | PipelineCommand::List { gateway }
    | PipelineCommand::Delete { gateway, .. }) = &cmd;
    let json = gateway.json;
    let result = runtime().and_then(|rt| rt.block_on(pipeline_call(&cmd)));
    match result {
        Ok(doc) => {
            if json {
                print_json(&doc)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(report(&e, json)),
    }
}

/// Runs `cmd`, prints its human output, and returns the document `--json` prints.
async fn pipeline_call(cmd: &PipelineCommand) -> anyhow::Result<Value> {
    let http = client(CALL_TIMEOUT)?;
    match cmd {
        PipelineCommand::Apply {
            file,
            name,
            gateway,
        } => {
            let (table_name, definition) = read_definition(file)?;
            let name = match name.clone().or(table_name) {
                Some(n) => n,
                None => file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .with_context(|| format!("{} has no file name; pass --name", file.display()))?,
            };
            let url = gateway.endpoint(&["pipelines", &name])?;
            let request = http
                .put(url.clone())
                .bearer_auth(&gateway.key)
                .json(&definition);
            let (status, doc) = send(request, url.as_str()).await?;
            if !gateway.json {
                let what = if status == StatusCode::CREATED {
                    "created"
                } else {
                    "replaced"
                };
                println!("pipeline {name} {what}");
            }
            Ok(doc)
        }
        PipelineCommand::List { gateway } => {
            let url = gateway.endpoint(&["pipelines"])?;
            let request = http.get(url.clone()).bearer_auth(&gateway.key);
            let (_, doc) = send(request, url.as_str()).await?;
            if !gateway.json {
                for p in doc["data"].as_array().into_iter().flatten() {
                    println!(
                        "{:<24} {:<12} updated {}",
                        p["name"].as_str().unwrap_or(""),
                        p["definition"]["type"].as_str().unwrap_or(""),
                        p["updated_at"]
                    );
                }
            }
            Ok(doc)
        }
        PipelineCommand::Delete { name, gateway } => {
            let url = gateway.endpoint(&["pipelines", name])?;
            let request = http.delete(url.clone()).bearer_auth(&gateway.key);
            send(request, url.as_str()).await?;
            if !gateway.json {
                println!("pipeline {name} deleted");
            }
            // The server answers 204 without a body; `--json` still prints one document.
            Ok(json!({ "name": name, "deleted": true }))
        }
    }
}

/// The pipeline definition in `file` as JSON, and the name its `[pipelines.<name>]`
/// table gives it, if it is written as one.
fn read_definition(file: &Path) -> anyhow::Result<(Option<String>, Value)> {
    use std::io::Read;
    // A pipeline is a few KiB; the server takes bodies up to `max_body_bytes` (4 MiB by
    // default). Anything past this cap is not a pipeline, and is not read into memory.
    const MAX_DEFINITION: u64 = 16 << 20;
    let mut text = String::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_DEFINITION + 1).read_to_string(&mut text))
        .with_context(|| format!("reading {}", file.display()))?;
    if text.len() as u64 > MAX_DEFINITION {
        bail!(
            "{}: over {} MiB, too large for a pipeline definition",
            file.display(),
            MAX_DEFINITION >> 20
        );
    }
    match file.extension().and_then(|e| e.to_str()) {
        Some("json") => {
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", file.display()))?;
            Ok((None, v))
        }
        Some("toml") => {
            let table: toml::Table =
                toml::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
            let (name, definition) = unwrap_pipelines_table(table)
                .with_context(|| format!("reading {}", file.display()))?;
            let v = serde_json::to_value(definition)
                .with_context(|| format!("converting {} to JSON", file.display()))?;
            Ok((name, v))
        }
        _ => bail!("{}: a pipeline file is `.json` or `.toml`", file.display()),
    }
}

/// A file that is a configuration excerpt (`[pipelines.<name>]` and nothing else) holds
/// one pipeline under its name; any other table is the definition itself.
fn unwrap_pipelines_table(mut table: toml::Table) -> anyhow::Result<(Option<String>, toml::Table)> {
    if table.len() != 1 || !table.contains_key("pipelines") {
        return Ok((None, table));
    }
    let Some(toml::Value::Table(pipelines)) = table.remove("pipelines") else {
        bail!("`pipelines` must be a table: [pipelines.<name>]");
    };
    let mut entries = pipelines.into_iter();
    match (entries.next(), entries.next()) {
        (Some((name, toml::Value::Table(def))), None) => Ok((Some(name), def)),
        (Some((name, _)), None) => bail!("[pipelines.{name}] must be a table"),
        (None, _) => bail!("[pipelines] holds no pipeline"),
        (Some(_), Some(_)) => bail!("the file holds several pipelines; apply one at a time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_too_large_for_a_pipeline_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len((16 << 20) + 1).unwrap();
        let err = read_definition(&big).unwrap_err().to_string();
        assert!(err.contains("too large for a pipeline definition"), "{err}");
        let small = dir.path().join("p.json");
        std::fs::write(&small, r#"{"type": "single", "model": "m"}"#).unwrap();
        assert_eq!(read_definition(&small).unwrap().1["model"], "m");
    }

    fn toml_of(text: &str) -> (Option<String>, Value) {
        let (name, def) = unwrap_pipelines_table(toml::from_str(text).unwrap()).unwrap();
        (name, serde_json::to_value(def).unwrap())
    }

    #[test]
    fn a_pipeline_file_is_the_definition_or_one_pipelines_table() {
        let bare = toml_of("type = \"single\"\nmodel = \"m\"\nverify = [{ plugin = \"c\" }]\n");
        assert_eq!(
            bare,
            (
                None,
                json!({"type": "single", "model": "m", "verify": [{"plugin": "c"}]})
            )
        );
        let wrapped = toml_of("[pipelines.p]\ntype = \"single\"\nmodel = \"m\"\n");
        assert_eq!(
            wrapped,
            (Some("p".into()), json!({"type": "single", "model": "m"}))
        );
        let two = "[pipelines.a]\ntype = \"single\"\n[pipelines.b]\ntype = \"single\"\n";
        assert!(unwrap_pipelines_table(toml::from_str(two).unwrap()).is_err());
    }

    #[test]
    fn endpoints_escape_names_and_keep_a_path_prefix() {
        let g = |url: &str| Gateway {
            url: url.into(),
            key: String::new(),
            json: false,
        };
        assert_eq!(
            g("http://h:1/")
                .endpoint(&["pipelines", "a b"])
                .unwrap()
                .as_str(),
            "http://h:1/v1/pipelines/a%20b"
        );
        assert_eq!(
            g("http://h/gw").endpoint(&["plugins"]).unwrap().as_str(),
            "http://h/gw/v1/plugins"
        );
    }
}
