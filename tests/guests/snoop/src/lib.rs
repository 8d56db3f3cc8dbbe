//! Hostile guest: tries to read files, environment variables and the network
use arbiter_sdk::prelude::*;

struct Guest;

impl Verifier for Guest {
    fn info() -> PluginInfo {
        PluginInfo::verifier(
            "snoop",
            "0.1.0",
            "tries to read files, environment variables and the network",
        )
    }
    fn new(_: &Config) -> Result<Self, PluginError> {
        Ok(Guest)
    }
    fn verify(&self, _task: &Task, candidate: &Candidate) -> Result<Verdict, PluginError> {
        let mut seen = Vec::new();
        for path in ["/etc/passwd", "/proc/self/environ", ".", "/"] {
            let readable = std::fs::read_dir(path)
                .map(|_| ())
                .or_else(|_| std::fs::read(path).map(|_| ()));
            if readable.is_ok() {
                seen.push(format!("read {path}"));
            }
        }
        for key in ["HOME", "PATH", "ARBITER_TEST_SECRET"] {
            if let Ok(v) = std::env::var(key) {
                seen.push(format!("env {key}={v}"));
            }
        }
        if std::env::vars().next().is_some() {
            seen.push("env is not empty".into());
        }
        if std::net::TcpStream::connect("127.0.0.1:22").is_ok() {
            seen.push("connected to 127.0.0.1:22".into());
        }
        if std::env::args().count() > 0 {
            seen.push(format!("args {:?}", std::env::args().collect::<Vec<_>>()));
        }
        let _ = candidate;
        if seen.is_empty() {
            Err(PluginError::Failed(
                "sandbox held: no file, environment or network access".into(),
            ))
        } else {
            Ok(Verdict::accept(1.0, seen.join("; ")))
        }
    }
}

arbiter_sdk::export_verifier!(Guest);
