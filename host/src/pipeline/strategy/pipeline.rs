//! `pipeline`: another pipeline of the same tenant, by name, run under this request's
//! budget.

use serde::{Deserialize, Serialize};

use super::{Strategy, Visitor};
use crate::pipeline::context::Step;
use crate::pipeline::error::ExecError;
use crate::pipeline::request::Answer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineRef {
    pub name: String,
}

impl Strategy for PipelineRef {
    fn uses<'a>(&'a self, visitor: &mut dyn Visitor<'a>) {
        visitor.pipeline(&self.name);
    }

    async fn run<'a>(&'a self, at: Step<'a>) -> Result<Answer, ExecError> {
        let name = &self.name;
        let (node, _, _) =
            at.engine
                .resolve(&at.ctx.tenant, at.ctx.catalog.as_deref(), name, false)?;
        if at.path.matches(&format!("/{name}")).count() >= 4 {
            return Err(ExecError::Invalid(format!(
                "pipeline `{name}` refers to itself"
            )));
        }
        node.run(at.at(format!("{}/{name}", at.path))).await
    }
}
