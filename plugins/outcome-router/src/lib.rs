//! Outcome router: the feedback loop. Options run as a cascade, cheapest first, but an
//! option whose recorded success rate on this kind of task is below a target (over
//! enough attempts) is skipped: a cheap model that keeps failing on a tag stops costing
//! a call and its latency before every escalation. Figures come from the host's trace
//! store through the `stats` capability: per tag when the task's tags have enough
//! attempts, else the model's overall figures. The priciest option always stays as the
//! last resort, and a share of tasks still tries every option so the figures can
//! recover when a model improves.

use arbiter_sdk::prelude::*;

pub struct OutcomeRouter {
    target: f64,
    min_attempts: u64,
    explore_every: u64,
}

/// How an option has done on tasks like this one.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// `overall` or `tag <name>`.
    pub source: String,
    pub attempts: u64,
    pub success_rate: f64,
}

/// The figures that speak for `model` on a task with `tags`: the tag with the most
/// attempts if it has at least `min_attempts`, else the overall ones.
pub fn figures(
    model: &str,
    tags: &[String],
    overall: Option<ModelStats>,
    min_attempts: u64,
    query: &dyn Fn(&str, &str) -> Option<ModelStats>,
) -> Option<Figures> {
    let by_tag = tags
        .iter()
        .filter_map(|t| query(model, t).map(|s| (t, s)))
        .filter(|(_, s)| s.attempts >= min_attempts)
        .max_by_key(|(_, s)| s.attempts);
    match by_tag {
        Some((t, s)) => Some(Figures {
            source: format!("tag {t}"),
            attempts: s.attempts,
            success_rate: s.success_rate,
        }),
        None => overall.map(|s| Figures {
            source: "overall".into(),
            attempts: s.attempts,
            success_rate: s.success_rate,
        }),
    }
}

/// A stable choice of the tasks that explore: FNV-1a of the task id.
fn explores(task_id: &str, every: u64) -> bool {
    if every == 0 {
        return false;
    }
    let hash = task_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash % every == 0
}

impl OutcomeRouter {
    /// The cascade for options already sorted by price, given each one's figures.
    pub fn plan(
        &self,
        sorted: &[(&ModelOption, Option<Figures>)],
        explore: bool,
    ) -> (Vec<RouteStep>, String) {
        let mut steps = Vec::new();
        let mut notes = Vec::new();
        for (i, (option, figures)) in sorted.iter().enumerate() {
            let last = i + 1 == sorted.len();
            let failing = figures.as_ref().filter(|f| {
                f.attempts >= self.min_attempts && f.success_rate < self.target
            });
            match (failing, last, explore) {
                (Some(f), false, false) => notes.push(format!(
                    "{} skipped ({} {:.2} over {} < {:.2})",
                    option.name, f.source, f.success_rate, f.attempts, self.target
                )),
                _ => steps.push(RouteStep {
                    target: option.name.clone(),
                    samples: 1,
                    min_score: None,
                }),
            }
        }
        if explore {
            notes.push("exploring: every option".into());
        }
        let route = steps
            .iter()
            .map(|s| s.target.as_str())
            .collect::<Vec<_>>()
            .join(" -> ");
        notes.push(route);
        (steps, notes.join("; "))
    }
}

impl Router for OutcomeRouter {
    fn info() -> PluginInfo {
        PluginInfo::router(
            "outcome-router",
            env!("CARGO_PKG_VERSION"),
            "Cheapest first with escalation, skipping models whose recorded success on the task's tags is below a target",
        )
        .stateless()
        .config_key(
            "target",
            "Success rate in [0,1] below which a model is skipped",
            Some("0.5"),
        )
        .config_key(
            "min-attempts",
            "Recorded attempts needed before a model's figures count",
            Some("20"),
        )
        .config_key(
            "explore-every",
            "One task in this many tries every option anyway (0: never)",
            Some("20"),
        )
    }

    fn new(config: &Config) -> Result<Self, PluginError> {
        config.deny_unknown(&["target", "min-attempts", "explore-every"])?;
        let router = OutcomeRouter {
            target: config.parse_or("target", 0.5)?,
            min_attempts: config.parse_or("min-attempts", 20)?,
            explore_every: config.parse_or("explore-every", 20)?,
        };
        if !(0.0..=1.0).contains(&router.target) {
            return Err(PluginError::InvalidConfig(format!(
                "target must be in [0, 1], not {}",
                router.target
            )));
        }
        if router.min_attempts == 0 {
            return Err(PluginError::InvalidConfig(
                "min-attempts must be at least 1".into(),
            ));
        }
        Ok(router)
    }

    fn route(&self, task: &Task, options: &[ModelOption]) -> Result<RouteDecision, PluginError> {
        if options.is_empty() {
            return Err(PluginError::InvalidInput("no models to route between".into()));
        }
        let mut sorted: Vec<&ModelOption> = options.iter().collect();
        sorted.sort_by(|a, b| {
            (a.input_price + a.output_price).total_cmp(&(b.input_price + b.output_price))
        });
        let query = |model: &str, tag: &str| arbiter_sdk::stats::query(model, Some(tag));
        let with_figures: Vec<_> = sorted
            .into_iter()
            .map(|o| {
                let f = figures(&o.name, &task.tags, o.stats, self.min_attempts, &query);
                (o, f)
            })
            .collect();
        let (steps, reason) = self.plan(&with_figures, explores(&task.id, self.explore_every));
        Ok(RouteDecision { steps, reason })
    }
}

arbiter_sdk::export_router!(OutcomeRouter);

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(attempts: u64, success_rate: f64) -> ModelStats {
        ModelStats {
            attempts,
            success_rate,
            latency_p50_ms: 0.0,
            latency_p95_ms: 0.0,
        }
    }

    fn option(name: &str) -> ModelOption {
        ModelOption {
            name: name.into(),
            input_price: 1.0,
            output_price: 1.0,
            stats: None,
        }
    }

    #[test]
    fn the_busiest_tag_with_enough_attempts_speaks_else_overall() {
        let query = |_: &str, tag: &str| match tag {
            "math" => Some(stats(50, 0.2)),
            "word" => Some(stats(80, 0.9)),
            "rare" => Some(stats(3, 0.0)),
            _ => None,
        };
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let f = figures("m", &tags(&["math", "word"]), None, 20, &query).unwrap();
        assert_eq!((f.source.as_str(), f.attempts), ("tag word", 80));
        let f = figures("m", &tags(&["rare"]), Some(stats(500, 0.7)), 20, &query).unwrap();
        assert_eq!((f.source.as_str(), f.attempts), ("overall", 500));
        assert!(figures("m", &tags(&["rare"]), None, 20, &query).is_none());
    }

    #[test]
    fn failing_options_are_skipped_but_the_last_resort_stays() {
        let router = OutcomeRouter {
            target: 0.5,
            min_attempts: 20,
            explore_every: 0,
        };
        let fig = |attempts, rate| {
            Some(Figures {
                source: "tag math".into(),
                attempts,
                success_rate: rate,
            })
        };
        let (a, b, c, d) = (option("a"), option("b"), option("c"), option("d"));
        let sorted = vec![
            (&a, fig(100, 0.1)), // failing: skipped
            (&b, fig(5, 0.0)),   // too few attempts: tried
            (&c, None),          // unknown: tried
            (&d, fig(100, 0.1)), // failing, but the last resort
        ];
        let (steps, reason) = router.plan(&sorted, false);
        let targets: Vec<_> = steps.iter().map(|s| s.target.as_str()).collect();
        assert_eq!(targets, ["b", "c", "d"]);
        assert!(reason.contains("a skipped (tag math 0.10 over 100 < 0.50)"), "{reason}");
        let (steps, reason) = router.plan(&sorted, true);
        assert_eq!(steps.len(), 4, "{reason}");
        assert!(reason.contains("exploring"));
    }

    #[test]
    fn exploration_is_a_stable_share_of_tasks() {
        assert!(!explores("anything", 0));
        let n = (0..2000).filter(|i| explores(&format!("task-{i}"), 20)).count();
        assert!((60..=140).contains(&n), "{n}");
        assert_eq!(explores("task-7", 20), explores("task-7", 20));
    }
}
