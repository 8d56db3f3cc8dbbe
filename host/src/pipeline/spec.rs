//! Pipelines as configured: a tree of strategies.
//!
//! ```toml
//! [pipelines.math]
//! type = "cascade"
//! steps = [
//!   { type = "single", model = "mixtral-8x7b-instruct", verify = [{ plugin = "math" }] },
//!   { type = "single", model = "gpt-4-1106-preview" },
//! ]
//! ```
//!
//! The strategies themselves, each with its settings, are in `strategy/`; here are the
//! parts they share.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::strategy::Node;
use crate::runtime::types::PluginConfig;

/// A plugin setting as written in TOML: strings, numbers and booleans are accepted and
/// handed to the plugin as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SettingValue {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl SettingValue {
    pub fn as_text(&self) -> String {
        match self {
            SettingValue::Text(s) => s.clone(),
            SettingValue::Int(i) => i.to_string(),
            SettingValue::Float(f) => f.to_string(),
            SettingValue::Bool(b) => b.to_string(),
        }
    }
}

pub fn settings(map: &BTreeMap<String, SettingValue>) -> PluginConfig {
    map.iter().map(|(k, v)| (k.clone(), v.as_text())).collect()
}

/// Samples one `best_of` or `race` may draw. Parallel sampling holds every call at once,
/// so a mistyped k of millions would exhaust memory before any budget refused a call.
pub const MAX_K: u32 = 1000;

/// A verifier in a verification chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierRef {
    /// A plugin declared under `[plugins]`.
    pub plugin: String,
    /// Settings for this use (merged over the plugin's own `config`).
    #[serde(default)]
    pub config: BTreeMap<String, SettingValue>,
    /// Weight of this verifier's score in the chain's combined score.
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// A router or decomposer plugin with its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    pub plugin: String,
    #[serde(default)]
    pub config: BTreeMap<String, SettingValue>,
}

/// How `best_of` draws its samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleMode {
    /// Sequential with early stop (cheapest) unless the deadline cannot afford it.
    #[default]
    Auto,
    Sequential,
    Parallel,
}

/// Problems with a verification chain's weights.
pub(crate) fn check_verifiers(v: &[VerifierRef]) -> Result<(), String> {
    if let Some(r) = v
        .iter()
        .find(|r| !(r.weight.is_finite() && r.weight >= 0.0))
    {
        return Err(format!(
            "verifier `{}` has weight {}; weights are finite and >= 0",
            r.plugin, r.weight
        ));
    }
    Ok(())
}

/// An acceptance threshold must be a score.
pub(crate) fn check_threshold(t: Option<f64>) -> Result<(), String> {
    match t {
        Some(t) if !(0.0..=1.0).contains(&t) => {
            Err(format!("threshold {t} is not a score in [0, 1]"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_tree() {
        let node: Node = toml::from_str(
            r#"
            type = "cascade"
            steps = [
              { type = "single", model = "cheap", verify = [{ plugin = "math", config = { tolerance = 0.01 } }] },
              { type = "best_of", models = ["big"], k = 3, select = true, verify = [{ plugin = "math" }] },
            ]
            "#,
        )
        .unwrap();
        assert_eq!(node.inventory().plugins.len(), 2);
        let Node::Cascade(cascade) = &node else {
            panic!()
        };
        let Node::Single(single) = &cascade.steps[0] else {
            panic!()
        };
        assert_eq!(settings(&single.verify[0].config)["tolerance"], "0.01");
        let err =
            toml::from_str::<Node>("type = \"single\"\nmodel = \"m\"\nmodle = 1").unwrap_err();
        assert!(err.to_string().contains("modle"), "{err}");
    }
}
