//! {{name}}: an Arbiter router.
//!
//! It starts with the example policy every `arbiter plugin new` template implements, so
//! its decisions can be compared across languages: try the cheapest model first (with
//! `samples` candidates), then escalate to the priciest one.
//! Replace `route` with your own policy and `cases.jsonl` with your own cases.

use arbiter_sdk::prelude::*;

struct CheapestFirst {
    samples: u32,
}

impl Router for CheapestFirst {
    fn info() -> PluginInfo {
        PluginInfo::router(
            "{{name}}",
            env!("CARGO_PKG_VERSION"),
            "Tries the cheapest model first, then escalates to the priciest",
        )
        .stateless()
        .config_key(
            "samples",
            "Candidates to sample from the cheapest model",
            Some("1"),
        )
    }

    /// Parses the settings once; the SDK keeps the result while they stay the same.
    fn new(config: &Config) -> Result<Self, PluginError> {
        let samples = config.parse_or("samples", 1)?;
        if samples == 0 {
            return Err(PluginError::InvalidConfig(
                "setting `samples` must be at least 1".into(),
            ));
        }
        Ok(CheapestFirst { samples })
    }

    fn route(&self, _task: &Task, options: &[ModelOption]) -> Result<RouteDecision, PluginError> {
        let price = |o: &ModelOption| o.input_price + o.output_price;
        if options.is_empty() {
            return Err(PluginError::InvalidInput("no models to route between".into()));
        }
        // The first option wins ties, both ways.
        let (mut cheapest, mut priciest) = (0, 0);
        for (i, o) in options.iter().enumerate() {
            if price(o) < price(&options[cheapest]) {
                cheapest = i;
            }
            if price(o) > price(&options[priciest]) {
                priciest = i;
            }
        }
        let mut steps = vec![RouteStep {
            target: options[cheapest].name.clone(),
            samples: self.samples,
            // `None`: escalate only when no candidate is accepted.
            min_score: None,
        }];
        if priciest != cheapest {
            steps.push(RouteStep {
                target: options[priciest].name.clone(),
                samples: 1,
                min_score: None,
            });
        }
        let reason = steps
            .iter()
            .map(|s| s.target.as_str())
            .collect::<Vec<_>>()
            .join(" -> ");
        Ok(RouteDecision {
            steps,
            reason: format!("cheapest first: {reason}"),
        })
    }
}

arbiter_sdk::export_router!(CheapestFirst);
