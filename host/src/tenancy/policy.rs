//! What one tenant may do: which shared pipelines and raw models it may call, how fast,
//! how many at once, and how much it may spend. Set per tenant by the operator (admin
//! API) or in the configuration (`[tenants.<name>] policy = {...}`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Shared pipelines it may call, by name, or `*` for all (of those that admit it in
    /// their `tenants`). Default: all.
    pub pipelines: Vec<String>,
    /// Raw models it may call by name, or `*`. Default: none (a raw model call has no
    /// verifier and only the default budget).
    pub models: Vec<String>,
    /// Sustained requests per second (unset: unlimited).
    pub requests_per_second: Option<f64>,
    /// Requests allowed at once above the sustained rate (default: one second's worth,
    /// at least 1).
    pub burst: Option<u32>,
    /// Requests in flight at once (unset: unlimited).
    pub max_concurrent: Option<u32>,
    /// USD per UTC day, enforced before each model call (unset: unlimited).
    pub daily_spend_usd: Option<f64>,
    /// USD per UTC calendar month, enforced the same way.
    pub monthly_spend_usd: Option<f64>,
    /// What the tenant's own uploaded plugins may take.
    pub plugins: PluginPolicy,
}

/// The tenant's plugin quota, and the ceiling on what its plugins may ask for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PluginPolicy {
    /// Plugin versions stored at once, all names together (default 32).
    pub max_versions: u32,
    /// Bytes of stored plugin versions, all together (default 256 MiB).
    pub max_total_bytes: u64,
    /// Ceiling on a plugin's per-call deadline (default 1000 ms, the runtime's default).
    pub max_deadline_ms: u64,
    /// Ceiling on a plugin instance's memory (default 256 MiB).
    pub max_memory_mb: u64,
    /// Ceiling on the instructions of one call (default 10 billion).
    pub max_fuel: u64,
    /// Capabilities its plugins may be granted (`model`, `stats`; default none).
    pub grants: Vec<String>,
}

impl Default for PluginPolicy {
    fn default() -> Self {
        PluginPolicy {
            max_versions: 32,
            max_total_bytes: 256 << 20,
            max_deadline_ms: 1000,
            max_memory_mb: 256,
            max_fuel: 10_000_000_000,
            grants: Vec::new(),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            pipelines: vec!["*".into()],
            models: Vec::new(),
            requests_per_second: None,
            burst: None,
            max_concurrent: None,
            daily_spend_usd: None,
            monthly_spend_usd: None,
            plugins: PluginPolicy::default(),
        }
    }
}

fn admits(list: &[String], name: &str) -> bool {
    list.iter().any(|n| n == "*" || n == name)
}

impl Policy {
    /// Everything, no limits: the implicit `default` tenant of a single-team gateway.
    pub fn open() -> Policy {
        Policy {
            models: vec!["*".into()],
            plugins: PluginPolicy {
                grants: vec!["model".into(), "stats".into()],
                ..PluginPolicy::default()
            },
            ..Policy::default()
        }
    }

    pub fn admits_pipeline(&self, name: &str) -> bool {
        admits(&self.pipelines, name)
    }

    pub fn admits_model(&self, name: &str) -> bool {
        admits(&self.models, name)
    }

    /// Every number must mean something: a NaN or negative limit would lift or block
    /// everything without a word.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(r) = self.requests_per_second {
            if !(r.is_finite() && r > 0.0 && r <= 1e6) {
                return Err(format!(
                    "requests_per_second must be in (0, 1000000], not {r}"
                ));
            }
        }
        if self.burst == Some(0) || self.max_concurrent == Some(0) {
            return Err("burst and max_concurrent must be at least 1 when set".into());
        }
        for (key, v) in [
            ("daily_spend_usd", self.daily_spend_usd),
            ("monthly_spend_usd", self.monthly_spend_usd),
        ] {
            if v.is_some_and(|usd| !crate::pipeline::budget::valid_cost(usd)) {
                return Err(format!("{key} must be a finite amount >= 0"));
            }
        }
        if self
            .pipelines
            .iter()
            .chain(&self.models)
            .any(|n| n.is_empty() || n.len() > 256)
        {
            return Err("pipeline and model names must be 1 to 256 bytes".into());
        }
        crate::runtime::Grants::from_names(&self.plugins.grants)
            .map_err(|e| format!("plugins.grants: {e}"))?;
        if self.plugins.max_deadline_ms == 0 || self.plugins.max_memory_mb == 0 {
            return Err("plugins.max_deadline_ms and plugins.max_memory_mb must be above 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_shared_pipelines_only() {
        let p = Policy::default();
        assert!(p.admits_pipeline("anything") && !p.admits_model("gpt-4"));
        let p: Policy = serde_json::from_str(r#"{"models": ["m"], "pipelines": []}"#).unwrap();
        assert!(p.admits_model("m") && !p.admits_model("n") && !p.admits_pipeline("x"));
        assert!(Policy::open().admits_model("any"));
        for bad in [
            r#"{"requests_per_second": 0}"#,
            r#"{"requests_per_second": -1}"#,
            r#"{"burst": 0}"#,
            r#"{"daily_spend_usd": -2}"#,
            r#"{"models": [""]}"#,
        ] {
            let p: Policy = serde_json::from_str(bad).unwrap();
            assert!(p.validate().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Policy>(r#"{"modles": []}"#).is_err());
    }
}
