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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Node {
    /// One model call, optionally verified.
    Single {
        model: String,
        #[serde(default)]
        verify: Vec<VerifierRef>,
        /// Combined verifier score an answer needs to be accepted (default 0.5).
        #[serde(default)]
        threshold: Option<f64>,
    },
    /// K samples (round-robin over `models`), each verified; the best is chosen, after
    /// the first verifier's cross-candidate `select` step when `select = true`.
    BestOf {
        models: Vec<String>,
        k: u32,
        #[serde(default)]
        verify: Vec<VerifierRef>,
        #[serde(default)]
        select: bool,
        #[serde(default)]
        threshold: Option<f64>,
        #[serde(default)]
        mode: SampleMode,
    },
    /// Steps in order; escalate while the step's answer is not accepted (FrugalGPT).
    Cascade { steps: Vec<Node> },
    /// A router plugin chooses which models (or named branches) to try, in what order,
    /// with how many samples.
    Route {
        router: PluginRef,
        /// Models the router may choose from.
        #[serde(default)]
        models: Vec<String>,
        /// Named sub-pipelines the router may choose from.
        #[serde(default)]
        branches: BTreeMap<String, Node>,
        #[serde(default)]
        verify: Vec<VerifierRef>,
        #[serde(default)]
        threshold: Option<f64>,
    },
    /// Branches in parallel (or `k` samples of `models`); the first accepted answer wins
    /// and the others are cancelled. With `hedge_after_ms`, branch i starts only after
    /// i x that delay, and only if no answer has been accepted yet.
    Race {
        #[serde(default)]
        branches: Vec<Node>,
        #[serde(default)]
        models: Vec<String>,
        #[serde(default)]
        k: u32,
        #[serde(default)]
        verify: Vec<VerifierRef>,
        #[serde(default)]
        threshold: Option<f64>,
        #[serde(default)]
        hedge_after_ms: Option<u64>,
    },
    /// A decomposer plugin splits the task into a DAG of sub-tasks; each runs through
    /// `sub` (independent ones in parallel, recursively up to the depth limit), then the
    /// decomposer composes the answers.
    Decompose {
        decomposer: PluginRef,
        sub: Box<Node>,
        #[serde(default)]
        max_depth: Option<u32>,
    },
    /// Another pipeline of the same tenant, by name.
    Pipeline { name: String },
}

impl Node {
    /// Every plugin this node uses, with the role it is used in.
    pub fn plugins(&self, out: &mut Vec<(String, crate::runtime::types::PluginKind)>) {
        use crate::runtime::types::PluginKind::*;
        let verifiers = |v: &[VerifierRef], out: &mut Vec<_>| {
            out.extend(v.iter().map(|r| (r.plugin.clone(), Verifier)));
        };
        match self {
            Node::Single { verify, .. } | Node::BestOf { verify, .. } => verifiers(verify, out),
            Node::Cascade { steps } => steps.iter().for_each(|s| s.plugins(out)),
            Node::Route {
                router,
                branches,
                verify,
                ..
            } => {
                out.push((router.plugin.clone(), Router));
                verifiers(verify, out);
                branches.values().for_each(|b| b.plugins(out));
            }
            Node::Race {
                branches, verify, ..
            } => {
                verifiers(verify, out);
                branches.iter().for_each(|b| b.plugins(out));
            }
            Node::Decompose {
                decomposer, sub, ..
            } => {
                out.push((decomposer.plugin.clone(), Decomposer));
                sub.plugins(out);
            }
            Node::Pipeline { .. } => {}
        }
    }

    /// Structural mistakes the engine would otherwise meet at the first request: empty
    /// strategies, no samples, thresholds and weights that are not scores.
    pub fn check(&self) -> Result<(), String> {
        fn threshold(t: &Option<f64>) -> Result<(), String> {
            match t {
                Some(t) if !(0.0..=1.0).contains(t) => {
                    Err(format!("threshold {t} is not a score in [0, 1]"))
                }
                _ => Ok(()),
            }
        }
        fn verifiers(v: &[VerifierRef]) -> Result<(), String> {
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
        match self {
            Node::Single {
                verify,
                threshold: t,
                ..
            } => {
                verifiers(verify)?;
                threshold(t)
            }
            Node::BestOf {
                models,
                k,
                verify,
                threshold: t,
                ..
            } => {
                if models.is_empty() || *k == 0 {
                    return Err("best_of needs at least one model and k >= 1".into());
                }
                if *k > MAX_K {
                    return Err(format!("best_of k = {k} is above the limit of {MAX_K}"));
                }
                verifiers(verify)?;
                threshold(t)
            }
            Node::Cascade { steps } => {
                if steps.is_empty() {
                    return Err("cascade has no steps".into());
                }
                steps.iter().try_for_each(Node::check)
            }
            Node::Route {
                models,
                branches,
                verify,
                threshold: t,
                ..
            } => {
                if models.is_empty() && branches.is_empty() {
                    return Err("route has neither models nor branches to choose from".into());
                }
                verifiers(verify)?;
                threshold(t)?;
                branches.values().try_for_each(Node::check)
            }
            Node::Race {
                branches,
                models,
                k,
                verify,
                threshold: t,
                ..
            } => {
                if branches.is_empty() && (models.is_empty() || *k == 0) {
                    return Err("race needs branches, or models and k >= 1".into());
                }
                if *k > MAX_K {
                    return Err(format!("race k = {k} is above the limit of {MAX_K}"));
                }
                verifiers(verify)?;
                threshold(t)?;
                branches.iter().try_for_each(Node::check)
            }
            Node::Decompose { sub, .. } => sub.check(),
            Node::Pipeline { .. } => Ok(()),
        }
    }

    /// Every pipeline this node refers to by name.
    pub fn pipelines<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Node::Pipeline { name } => out.push(name),
            Node::Cascade { steps } => steps.iter().for_each(|s| s.pipelines(out)),
            Node::Route { branches, .. } => branches.values().for_each(|b| b.pipelines(out)),
            Node::Race { branches, .. } => branches.iter().for_each(|b| b.pipelines(out)),
            Node::Decompose { sub, .. } => sub.pipelines(out),
            Node::Single { .. } | Node::BestOf { .. } => {}
        }
    }

    /// Every model this node names directly.
    pub fn models(&self, out: &mut Vec<String>) {
        match self {
            Node::Single { model, .. } => out.push(model.clone()),
            Node::BestOf { models, .. } => out.extend(models.iter().cloned()),
            Node::Cascade { steps } => steps.iter().for_each(|s| s.models(out)),
            Node::Route {
                models, branches, ..
            } => {
                out.extend(models.iter().cloned());
                branches.values().for_each(|b| b.models(out));
            }
            Node::Race {
                branches, models, ..
            } => {
                out.extend(models.iter().cloned());
                branches.iter().for_each(|b| b.models(out));
            }
            Node::Decompose { sub, .. } => sub.models(out),
            Node::Pipeline { .. } => {}
        }
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
        let mut plugins = Vec::new();
        node.plugins(&mut plugins);
        assert_eq!(plugins.len(), 2);
        let Node::Cascade { steps } = &node else {
            panic!()
        };
        let Node::Single { verify, .. } = &steps[0] else {
            panic!()
        };
        assert_eq!(settings(&verify[0].config)["tolerance"], "0.01");
        let err =
            toml::from_str::<Node>("type = \"single\"\nmodel = \"m\"\nmodle = 1").unwrap_err();
        assert!(err.to_string().contains("modle"), "{err}");
    }
}
