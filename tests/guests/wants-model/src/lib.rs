//! Asks the host's model for a judgement: needs the `model` capability. The `model`
//! setting names the model to ask; without it the host chooses.
use arbiter_sdk::model;
use arbiter_sdk::prelude::*;

struct Judge {
    model: Option<String>,
}

impl Verifier for Judge {
    fn info() -> PluginInfo {
        PluginInfo::verifier("wants-model", "0.1.0", "LLM-as-judge probe")
    }
    fn new(config: &Config) -> Result<Self, PluginError> {
        Ok(Judge {
            model: config.get("model").map(String::from),
        })
    }
    fn verify(&self, task: &Task, candidate: &Candidate) -> Result<Verdict, PluginError> {
        let question = format!(
            "Is `{}` a good answer to `{}`? Say yes or no.",
            candidate.text,
            task.prompt()
        );
        let messages = vec![Message::user(question)];
        log::info(
            "asking the judge model",
            &[("candidate", &candidate.index.to_string())],
        );
        match model::complete(messages, self.model.as_deref(), Some(4)) {
            Ok(c) if c.text.to_lowercase().contains("yes") => Ok(Verdict::accept(
                0.9,
                format!("judge {} said: {}", c.model, c.text),
            )),
            Ok(c) => Ok(Verdict::reject(
                0.1,
                format!("judge {} said: {}", c.model, c.text),
            )),
            Err(e) => Err(PluginError::Failed(format!("judge unavailable: {e:?}"))),
        }
    }
}

arbiter_sdk::export_verifier!(Judge);
