//! Replay provider: serves recorded model answers from a dataset, so pipelines run and
//! are evaluated offline with real model outputs.
//!
//! Dataset: JSON Lines of `{"id", "prompt", "candidates": [{"model", "text", "correct"}],
//! ...}` (see `data/README.md`). A request is matched by its last user message; typed
//! quotes, dashes and runs of white space count as their plain forms, so a prompt typed
//! by hand finds its recording. Asking model M for sample index i returns M's recorded
//! answers in a seeded, per-prompt permutation, so K samples are K distinct recordings
//! (cycling when fewer exist) and every run is reproducible. Latency is simulated per
//! model (log-normal, seeded per sample), and usage is estimated at ~4 characters per
//! token like the datasets' reference costs.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{
    estimate_prompt_tokens, estimate_tokens, ChatRequest, ChatResponse, Choice, Provider,
    ProviderError, Usage,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    /// The recorded dataset (JSON Lines).
    pub dataset: PathBuf,
    /// Seed of sample order and simulated latency.
    #[serde(default)]
    pub seed: u64,
    /// Simulated latency per model name.
    #[serde(default)]
    pub latency: BTreeMap<String, LatencyModel>,
    /// Simulated latency of models not listed in `latency` (default: none).
    #[serde(default)]
    pub default_latency: Option<LatencyModel>,
}

/// Log-normal latency given by its median and 95th percentile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyModel {
    pub median_ms: f64,
    pub p95_ms: f64,
}

impl LatencyModel {
    fn sample(&self, rng: &mut impl Rng) -> Duration {
        let mu = self.median_ms.max(0.001).ln();
        let sigma =
            ((self.p95_ms.max(self.median_ms) / self.median_ms.max(0.001)).ln() / 1.6449).max(0.0);
        // Box-Muller: a standard normal from two uniforms.
        let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        Duration::from_secs_f64((mu + sigma * z).exp() / 1e3)
    }
}

/// One recorded row of a replay dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    #[serde(default)]
    pub id: String,
    pub prompt: String,
    #[serde(default)]
    pub reference: Option<String>,
    pub candidates: Vec<RecordedAnswer>,
    /// Everything else in the row (e.g. `generated_tests`, `entry_point`).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedAnswer {
    pub model: String,
    pub text: String,
    #[serde(default)]
    pub correct: Option<bool>,
}

/// Reads a replay dataset, naming the line of any malformed row.
pub fn load_dataset(path: &Path) -> Result<Vec<Record>, ProviderError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ProviderError::Config(format!("replay dataset {}: {e}", path.display())))?;
    parse_dataset(&text, &path.display().to_string())
}

/// Parses a replay dataset's text (JSON lines); errors name `origin` and the line.
pub fn parse_dataset(text: &str, origin: &str) -> Result<Vec<Record>, ProviderError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| ProviderError::Config(format!("{origin}:{}: {e}", i + 1)))
        })
        .collect()
}

pub struct ReplayProvider {
    /// Matching key of a prompt -> its recordings.
    index: HashMap<String, Recorded>,
    /// A recorded prompt, quoted when a request misses (so the user sees what matches).
    example: Option<String>,
    config: ReplayConfig,
}

struct Recorded {
    /// The prompt as recorded (trimmed): what seeds derive from, however it was typed.
    prompt: String,
    /// Model -> recorded answers in dataset order.
    by_model: HashMap<String, Vec<(u32, RecordedAnswer)>>,
}

/// The form prompts are matched in: typographic quotes and dashes as ASCII, white space
/// runs as one space, no surrounding space.
fn match_key(prompt: &str) -> String {
    let mut key = String::with_capacity(prompt.len());
    for word in prompt.split_whitespace() {
        if !key.is_empty() {
            key.push(' ');
        }
        key.extend(word.chars().map(|c| match c {
            '\u{2018}' | '\u{2019}' | '\u{201B}' | '\u{2032}' => '\'',
            '\u{201C}' | '\u{201D}' | '\u{201F}' | '\u{2033}' => '"',
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            c => c,
        }));
    }
    key
}

fn seed_of(parts: impl Hash) -> u64 {
    // SipHash with fixed keys: stable within a build, which is what reproducibility needs.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

impl ReplayProvider {
    pub fn new(config: ReplayConfig) -> Result<Self, ProviderError> {
        let records = load_dataset(&config.dataset)?;
        Ok(Self::from_records(records, config))
    }

    pub fn from_records(records: Vec<Record>, config: ReplayConfig) -> Self {
        let mut index: HashMap<String, Recorded> = HashMap::new();
        let example = records.first().map(|r| r.prompt.trim().to_string());
        for r in records {
            let prompt = r.prompt.trim();
            let recorded = index.entry(match_key(prompt)).or_insert_with(|| Recorded {
                prompt: prompt.to_string(),
                by_model: HashMap::new(),
            });
            for c in r.candidates {
                let list = recorded.by_model.entry(c.model.clone()).or_default();
                let i = list.len() as u32;
                list.push((i, c));
            }
        }
        ReplayProvider {
            index,
            example,
            config,
        }
    }

    pub fn prompts(&self) -> usize {
        self.index.len()
    }

    fn latency(&self, model: &str, prompt: &str, sample: u32) -> Duration {
        let Some(m) = self
            .config
            .latency
            .get(model)
            .or(self.config.default_latency.as_ref())
        else {
            return Duration::ZERO;
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed_of((
            self.config.seed,
            prompt,
            model,
            sample,
            "latency",
        )));
        m.sample(&mut rng)
    }
}

#[async_trait::async_trait]
impl Provider for ReplayProvider {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let asked = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map_or("", |m| m.content.as_str());
        let recorded = self.index.get(&match_key(asked)).ok_or_else(|| {
            let mut body = format!(
                "this prompt is not in the replay dataset {} (the replay provider only \
                 answers its {} recorded prompts",
                self.config.dataset.display(),
                self.index.len()
            );
            if let Some(e) = &self.example {
                let short: String = e.chars().take(80).collect();
                let more = if short.len() < e.len() { "..." } else { "" };
                body.push_str(&format!(", such as \"{short}{more}\""));
            }
            body.push(')');
            ProviderError::Http {
                status: 404,
                body,
                retry_after: None,
            }
        })?;
        let prompt = recorded.prompt.as_str();
        let answers = recorded
            .by_model
            .get(&request.model)
            .ok_or_else(|| ProviderError::UnknownModel(request.model.clone()))?;
        // A seeded permutation per (prompt, model): sample i is the i-th element.
        let mut order: Vec<usize> = (0..answers.len()).collect();
        let mut rng =
            rand::rngs::StdRng::seed_from_u64(seed_of((self.config.seed, prompt, &request.model)));
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let n = request.n.max(1);
        let mut choices = Vec::with_capacity(n as usize);
        let mut latency = Duration::ZERO;
        let mut output_tokens = 0;
        for k in 0..n {
            let sample = request.sample_index + k;
            let (i, answer) = &answers[order[sample as usize % order.len()]];
            latency = latency.max(self.latency(&request.model, prompt, sample));
            output_tokens += estimate_tokens(&answer.text);
            choices.push(Choice {
                correct: answer.correct,
                sample: Some(*i),
                ..Choice::text(answer.text.clone(), Some("stop".into()))
            });
        }
        if let Some(limit) = request.timeout {
            if latency > limit {
                tokio::time::sleep(limit).await;
                return Err(ProviderError::Timeout(limit));
            }
        }
        tokio::time::sleep(latency).await;
        Ok(ChatResponse {
            model: request.model.clone(),
            choices,
            usage: Usage {
                input_tokens: estimate_prompt_tokens(&request.messages),
                output_tokens,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::types::Message;

    fn provider(latency: Option<LatencyModel>) -> ReplayProvider {
        let record = |p: &str, texts: &[&str]| Record {
            id: p.into(),
            prompt: p.into(),
            reference: None,
            candidates: texts
                .iter()
                .enumerate()
                .map(|(i, t)| RecordedAnswer {
                    model: "m".into(),
                    text: t.to_string(),
                    correct: Some(i % 2 == 0),
                })
                .collect(),
            extra: BTreeMap::new(),
        };
        ReplayProvider::from_records(
            vec![
                record("q1", &["a", "b", "c", "d", "e"]),
                record("q2", &["x"]),
            ],
            ReplayConfig {
                dataset: PathBuf::new(),
                seed: 3,
                latency: BTreeMap::new(),
                default_latency: latency,
            },
        )
    }

    fn req(prompt: &str, n: u32, sample_index: u32) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![Message::user(prompt)],
            n,
            sample_index,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn distinct_deterministic_samples() {
        let p = provider(None);
        let r = p.chat(&req("q1", 5, 0)).await.unwrap();
        let mut texts: Vec<_> = r.choices.iter().map(|c| c.text.clone()).collect();
        texts.sort();
        assert_eq!(
            texts,
            ["a", "b", "c", "d", "e"],
            "five samples are five distinct recordings"
        );
        // Sample i is the same whether asked in one call or one at a time.
        for i in 0..5 {
            let one = p.chat(&req("q1", 1, i)).await.unwrap();
            assert_eq!(one.choices[0].text, r.choices[i as usize].text);
        }
        let again = provider(None).chat(&req("q1", 5, 0)).await.unwrap();
        assert_eq!(again.choices, r.choices, "same seed, same order");
        // Fewer recordings than samples: cycle.
        let r = p.chat(&req("q2", 3, 0)).await.unwrap();
        assert!(r.choices.iter().all(|c| c.text == "x"));
        assert_eq!(r.usage.input_tokens, 1);
        // Unknown prompt and model are typed errors.
        assert!(matches!(
            p.chat(&req("nope", 1, 0)).await,
            Err(ProviderError::Http { status: 404, .. })
        ));
        let mut r = req("q1", 1, 0);
        r.model = "other".into();
        assert!(matches!(
            p.chat(&r).await,
            Err(ProviderError::UnknownModel(_))
        ));
    }

    /// A prompt typed by hand (straight quotes, other spacing) finds its recording, and
    /// gets the very samples and latencies the recorded text gets.
    #[tokio::test(start_paused = true)]
    async fn typed_prompts_match_their_recording() {
        let recorded =
            "Janet\u{2019}s ducks lay 16 eggs \u{2014} \u{201C}fresh\u{201D}.\n  How much?";
        let typed = "  Janet's ducks lay 16 eggs - \"fresh\". How   much?\n";
        let record = |prompt: &str| Record {
            id: prompt.into(),
            prompt: prompt.into(),
            reference: None,
            candidates: ["a", "b", "c"]
                .iter()
                .map(|t| RecordedAnswer {
                    model: "m".into(),
                    text: t.to_string(),
                    correct: None,
                })
                .collect(),
            extra: BTreeMap::new(),
        };
        let p = ReplayProvider::from_records(
            vec![record(recorded), record("Other question?")],
            ReplayConfig {
                dataset: PathBuf::from("data/x.jsonl"),
                seed: 7,
                latency: BTreeMap::new(),
                default_latency: Some(LatencyModel {
                    median_ms: 100.0,
                    p95_ms: 300.0,
                }),
            },
        );
        assert_eq!(p.prompts(), 2);
        let timed = |prompt: &'static str| {
            let p = &p;
            async move {
                let t = tokio::time::Instant::now();
                let r = p.chat(&req(prompt, 3, 0)).await.unwrap();
                (r.choices, t.elapsed())
            }
        };
        let (exact, exact_latency) = timed(recorded).await;
        let (hand, hand_latency) = timed(typed).await;
        assert_eq!(hand, exact);
        assert_eq!(hand_latency, exact_latency);
        // Words still have to match.
        let err = p.chat(&req("Janet's ducks lay 17 eggs", 1, 0)).await;
        let Err(ProviderError::Http { status, body, .. }) = err else {
            panic!("{err:?}")
        };
        assert_eq!(status, 404);
        assert!(
            body.contains("data/x.jsonl") && body.contains("2 recorded prompts"),
            "{body}"
        );
        assert!(body.contains("such as \"Janet\u{2019}s ducks"), "{body}");
    }

    #[tokio::test(start_paused = true)]
    async fn simulated_latency_is_seeded_and_bounded_by_timeout() {
        let p = provider(Some(LatencyModel {
            median_ms: 100.0,
            p95_ms: 300.0,
        }));
        let t = tokio::time::Instant::now();
        p.chat(&req("q1", 1, 0)).await.unwrap();
        let first = t.elapsed();
        assert!(first > Duration::ZERO);
        let t = tokio::time::Instant::now();
        p.chat(&req("q1", 1, 0)).await.unwrap();
        assert_eq!(t.elapsed(), first, "same sample, same latency");
        let mut r = req("q1", 1, 0);
        r.timeout = Some(Duration::from_micros(1));
        assert!(matches!(p.chat(&r).await, Err(ProviderError::Timeout(_))));
        // The median of many samples is near the configured median.
        let mut all: Vec<Duration> = (0..400).map(|i| p.latency("m", "q1", i)).collect();
        all.sort();
        let median = all[200].as_secs_f64() * 1e3;
        assert!((70.0..140.0).contains(&median), "{median}");
    }
}
