//! Progress of an `arbiter eval` run, on stderr: a bar with throughput and ETA on a
//! terminal; otherwise a plain line every few seconds, since a log file or CI output has
//! no use for redraws and must not fill up with them.

use std::time::{Duration, Instant};

/// Plain lines no more often than this.
const LINE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Off,
    /// A redrawn bar (stderr is a terminal).
    Bar,
    /// Occasional plain lines (stderr is a file or pipe).
    Lines,
}

impl ProgressMode {
    pub fn start(self, pipeline: &str, total: usize) -> Progress {
        let kind = match self {
            ProgressMode::Off => Kind::Off,
            ProgressMode::Lines => Kind::Lines,
            ProgressMode::Bar => Kind::Bar(bar(pipeline, total)),
        };
        let now = Instant::now();
        Progress {
            kind,
            pipeline: pipeline.into(),
            total,
            done: 0,
            started: now,
            last_line: now,
        }
    }
}

enum Kind {
    Off,
    Bar(indicatif::ProgressBar),
    Lines,
}

/// One pipeline's run over the dataset.
pub struct Progress {
    kind: Kind,
    pipeline: String,
    total: usize,
    done: usize,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// One more query answered.
    pub fn inc(&mut self) {
        if let Some(line) = self.inc_at(Instant::now()) {
            eprintln!("{line}");
        }
    }

    /// Counts one query answered at `now`; the plain line to print, if one is due.
    fn inc_at(&mut self, now: Instant) -> Option<String> {
        self.done += 1;
        match &self.kind {
            Kind::Off => None,
            Kind::Bar(bar) => {
                bar.inc(1);
                None
            }
            // The last query's line is `finish`'s.
            Kind::Lines if now - self.last_line >= LINE_EVERY && self.done < self.total => {
                self.last_line = now;
                Some(line(
                    &self.pipeline,
                    self.done,
                    self.total,
                    now - self.started,
                ))
            }
            Kind::Lines => None,
        }
    }

    pub fn finish(self) {
        match self.kind {
            Kind::Off => {}
            Kind::Bar(bar) => bar.finish_and_clear(),
            Kind::Lines => eprintln!(
                "{}",
                line(
                    &self.pipeline,
                    self.done,
                    self.total,
                    self.started.elapsed()
                )
            ),
        }
    }
}

fn bar(pipeline: &str, total: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>20} [{bar:30}] {pos}/{len} {per_sec:>12} {elapsed} (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(pipeline.to_string());
    bar
}

/// `eval math-cascade: 330/660 (50%), 152.3 queries/s, eta 2 s`; `done` when finished.
fn line(pipeline: &str, done: usize, total: usize, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let pct = 100 * done / total.max(1);
    let tail = if done >= total {
        format!("done in {secs:.1} s")
    } else if rate > 0.0 {
        format!("eta {:.0} s", (total - done) as f64 / rate)
    } else {
        "eta unknown".into()
    };
    format!("eval {pipeline}: {done}/{total} ({pct}%), {rate:.1} queries/s, {tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_give_throughput_and_eta() {
        assert_eq!(
            line("math-cascade", 330, 660, Duration::from_secs(2)),
            "eval math-cascade: 330/660 (50%), 165.0 queries/s, eta 2 s"
        );
        assert_eq!(
            line("cheap", 660, 660, Duration::from_millis(500)),
            "eval cheap: 660/660 (100%), 1320.0 queries/s, done in 0.5 s"
        );
        assert!(line("x", 0, 10, Duration::ZERO).ends_with("eta unknown"));
    }

    #[test]
    fn plain_lines_are_time_gated() {
        let mut p = ProgressMode::Lines.start("p", 100);
        let t0 = p.started;
        assert_eq!(p.inc_at(t0 + Duration::from_secs(1)), None);
        let due = p
            .inc_at(t0 + Duration::from_secs(6))
            .expect("a line after 5 s");
        assert!(due.starts_with("eval p: 2/100 (2%)"), "{due}");
        assert_eq!(p.inc_at(t0 + Duration::from_secs(7)), None);
        assert!(p.inc_at(t0 + Duration::from_secs(12)).is_some());
        let mut off = ProgressMode::Off.start("p", 100);
        assert_eq!(off.inc_at(t0 + Duration::from_secs(60)), None);
    }
}
