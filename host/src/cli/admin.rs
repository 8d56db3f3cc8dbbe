//! `arbiter admin ...`: the admin API (`/admin/v1`) of a running gateway, from the
//! command line. The operator key comes from `ARBITER_OPERATOR_KEY` (or `--key`).
//! With `--json`, the server's JSON document is printed as it came; errors are the
//! server's `code` and message, as `{"error": {...}}` on stderr.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::output::print_json;
use super::remote;

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The gateway.
    #[arg(long, env = "ARBITER_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An operator key.
    #[arg(long, env = "ARBITER_OPERATOR_KEY", hide_env_values = true)]
    pub key: String,
    /// Print the server's JSON document.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Tenants: list, show, create, update, disable, enable, delete.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// A tenant's keys: list, create (the key is shown once), revoke.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Usage by tenant, day, pipeline and model.
    Usage {
        #[arg(long)]
        tenant: Option<String>,
        /// First UTC day (YYYY-MM-DD; default: the first of this month).
        #[arg(long)]
        from: Option<String>,
        /// Last UTC day (default: today).
        #[arg(long)]
        to: Option<String>,
    },
    /// Reload the gateway's configuration file.
    Reload,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    List,
    Show {
        name: String,
    },
    Create {
        name: String,
        /// The policy as JSON (`docs/tenancy.md`), e.g. '{"models": ["gpt-4o"]}'.
        #[arg(long)]
        policy: Option<String>,
    },
    /// Replace a tenant's policy.
    Update {
        name: String,
        #[arg(long)]
        policy: String,
    },
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    Delete {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    List {
        tenant: String,
    },
    Create {
        tenant: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Unix seconds.
        #[arg(long)]
        expires_at: Option<i64>,
    },
    Revoke {
        id: String,
    },
}

fn policy(text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).context("--policy must be a JSON object")
}

pub fn run(args: AdminArgs) -> anyhow::Result<ExitCode> {
    let json_out = args.json;
    let rt = remote::runtime()?;
    match rt.block_on(call(&args)) {
        Ok(doc) => {
            if json_out {
                print_json(&doc)?;
            } else {
                print_human(&args.command, &doc);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(remote::report(&e, json_out)),
    }
}

async fn call(args: &AdminArgs) -> anyhow::Result<Value> {
    use reqwest::Method;
    let (method, path, body) = match &args.command {
        AdminCommand::Tenant(t) => match t {
            TenantCommand::List => (Method::GET, "/tenants".to_string(), None),
            TenantCommand::Show { name } => (Method::GET, format!("/tenants/{name}"), None),
            TenantCommand::Create { name, policy: p } => {
                let mut body = json!({ "name": name });
                if let Some(p) = p {
                    body["policy"] = policy(p)?;
                }
                (Method::POST, "/tenants".into(), Some(body))
            }
            TenantCommand::Update { name, policy: p } => (
                Method::PATCH,
                format!("/tenants/{name}"),
                Some(json!({ "policy": policy(p)? })),
            ),
            TenantCommand::Disable { name } => (
                Method::PATCH,
                format!("/tenants/{name}"),
                Some(json!({ "disabled": true })),
            ),
            TenantCommand::Enable { name } => (
                Method::PATCH,
                format!("/tenants/{name}"),
                Some(json!({ "disabled": false })),
            ),
            TenantCommand::Delete { name } => (Method::DELETE, format!("/tenants/{name}"), None),
        },
        AdminCommand::Key(k) => match k {
            KeyCommand::List { tenant } => (Method::GET, format!("/tenants/{tenant}/keys"), None),
            KeyCommand::Create {
                tenant,
                name,
                expires_at,
            } => (
                Method::POST,
                format!("/tenants/{tenant}/keys"),
                Some(json!({ "name": name, "expires_at": expires_at })),
            ),
            KeyCommand::Revoke { id } => (Method::DELETE, format!("/keys/{id}"), None),
        },
        AdminCommand::Usage { tenant, from, to } => {
            let q: Vec<String> = [("tenant", tenant), ("from", from), ("to", to)]
                .into_iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
                .collect();
            (Method::GET, format!("/usage?{}", q.join("&")), None)
        }
        AdminCommand::Reload => (Method::POST, "/reload".into(), None),
    };
    let client = remote::client(std::time::Duration::from_secs(120))?;
    let url = format!("{}/admin/v1{path}", args.url.trim_end_matches('/'));
    let mut request = client.request(method, &url).bearer_auth(&args.key);
    if let Some(b) = body {
        request = request.json(&b);
    }
    Ok(remote::send(request, &url).await?.1)
}

fn print_human(command: &AdminCommand, doc: &Value) {
    let rows = doc["data"].as_array();
    match (command, rows) {
        (AdminCommand::Tenant(TenantCommand::List), Some(rows)) => {
            for t in rows {
                println!(
                    "{:<24} {:<6} {:<8} today ${:.4}  month ${:.4}",
                    t["name"].as_str().unwrap_or(""),
                    t["source"].as_str().unwrap_or(""),
                    if t["disabled"] == true {
                        "disabled"
                    } else {
                        "enabled"
                    },
                    t["spend"]["today_usd"].as_f64().unwrap_or(0.0),
                    t["spend"]["this_month_usd"].as_f64().unwrap_or(0.0),
                );
            }
        }
        (AdminCommand::Key(KeyCommand::List { .. }), Some(rows)) => {
            for k in rows {
                let state = if !k["revoked_at"].is_null() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<22} {:<16} {:<8} {}",
                    k["id"].as_str().unwrap_or(""),
                    k["prefix"].as_str().unwrap_or(""),
                    state,
                    k["name"].as_str().unwrap_or("")
                );
            }
        }
        (AdminCommand::Key(KeyCommand::Create { .. }), _) => {
            println!(
                "{}\n(id {}; shown once, only its hash is stored)",
                doc["key"].as_str().unwrap_or(""),
                doc["id"].as_str().unwrap_or("")
            );
        }
        (AdminCommand::Usage { .. }, Some(rows)) => {
            println!(
                "{:<16} {:<10} {:<20} {:<24} {:>8} {:>8} {:>12} {:>6}",
                "tenant", "day", "pipeline", "model", "requests", "calls", "cost_usd", "errors"
            );
            for r in rows {
                println!(
                    "{:<16} {:<10} {:<20} {:<24} {:>8} {:>8} {:>12.6} {:>6}",
                    r["tenant"].as_str().unwrap_or(""),
                    r["day"].as_str().unwrap_or(""),
                    r["pipeline"].as_str().unwrap_or(""),
                    r["model"].as_str().unwrap_or(""),
                    r["requests"],
                    r["calls"],
                    r["cost_usd"].as_f64().unwrap_or(0.0),
                    r["errors"]
                );
            }
        }
        _ => println!("{}", serde_json::to_string_pretty(doc).unwrap_or_default()),
    }
}
