//! Prints the learned score's features for each answer in a replay dataset, one JSON
//! object per line, for fitting the weights offline:
//!
//!     cargo run --example features -- ../../data/gsm8k-dev.jsonl > features.jsonl
use gsm8k_verifier::learned::{features, FEATURES};
use std::io::BufRead;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: features DATASET.jsonl");
    let file = std::io::BufReader::new(std::fs::File::open(&path).expect("open the dataset"));
    for line in file.lines() {
        let row: serde_json::Value = serde_json::from_str(&line.expect("read")).expect("json");
        let question = row["prompt"].as_str().unwrap_or_default();
        for c in row["candidates"].as_array().into_iter().flatten() {
            let text = c["text"].as_str().unwrap_or_default();
            let x = features(question, text, 1e-4);
            println!(
                "{}",
                serde_json::json!({"id": row["id"], "model": c["model"], "correct": c["correct"],
                    "prompt_chars": question.chars().count(), "text_chars": text.chars().count(),
                    "names": FEATURES, "features": x.to_vec()})
            );
        }
    }
}
