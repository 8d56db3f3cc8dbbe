//! A named pipeline as configured: its strategy tree and the pipeline-level keys (who may
//! use it, its budget). The configuration parses it and the engine runs it: one type.

use serde::{Deserialize, Serialize};

use super::budget::{BudgetLimits, OnBudget};
use super::spec::Node;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineDef {
    pub node: Node,
    pub tenants: Vec<String>,
    pub budget: BudgetLimits,
    pub on_budget: OnBudget,
    pub description: String,
    /// Models its judge plugins (the `model` capability) may ask for besides the
    /// pipeline's own.
    pub judge_models: Vec<String>,
}

impl PipelineDef {
    /// Whether `tenant` is among those this pipeline serves (`*`: every tenant whose
    /// policy allows it).
    pub fn admits(&self, tenant: &str) -> bool {
        self.tenants.iter().any(|t| t == "*" || t == tenant)
    }
}

/// Pipeline tables mix the strategy tree with a few pipeline-level keys; the tree part
/// keeps `deny_unknown_fields`, so typos are errors.
impl<'de> Deserialize<'de> for PipelineDef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let mut take = |k: &str| table.remove(k);
        let tenants = match take("tenants") {
            Some(v) => Vec::<String>::deserialize(v).map_err(D::Error::custom)?,
            None => vec!["default".into()],
        };
        let budget = match take("budget") {
            Some(v) => BudgetLimits::deserialize(v).map_err(D::Error::custom)?,
            None => BudgetLimits::default(),
        };
        let on_budget = match take("on_budget") {
            Some(v) => OnBudget::deserialize(v).map_err(D::Error::custom)?,
            None => OnBudget::default(),
        };
        let description = match take("description") {
            Some(v) => String::deserialize(v).map_err(D::Error::custom)?,
            None => String::new(),
        };
        let judge_models = match take("judge_models") {
            Some(v) => Vec::<String>::deserialize(v).map_err(D::Error::custom)?,
            None => Vec::new(),
        };
        let node = Node::deserialize(toml::Value::Table(table)).map_err(D::Error::custom)?;
        Ok(PipelineDef {
            node,
            tenants,
            budget,
            on_budget,
            description,
            judge_models,
        })
    }
}
