//! A PostgreSQL server for tests, without any setup: for tests; not part of the gateway.
//!
//! [`url`] is `ARBITER_TEST_POSTGRES_URL` when set. Otherwise the first call starts a
//! private cluster for the test process: `initdb` into a temporary folder, then `pg_ctl
//! start` on a free loopback port (fsync off: test data need not survive a crash). As
//! root, which PostgreSQL refuses to run as, the folder belongs to the `postgres` user
//! and the server runs as that user. A watchdog process, waiting on a pipe only this
//! process holds open, stops the server and removes the folder when the test process
//! ends, however it ends. [`fresh_database`] gives each test an empty database of its
//! own on that server.
//!
//! Without PostgreSQL's programs (`initdb`, `pg_ctl` on `PATH` or in
//! `/usr/lib/postgresql/*/bin`) both return `None` after saying why on stderr: callers
//! skip their PostgreSQL tests, loudly.
#![doc(hidden)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The variable naming a server to use instead of a private cluster; tests create
/// databases on it (`arbiter_test_...`) and leave them there.
pub const URL_VAR: &str = "ARBITER_TEST_POSTGRES_URL";

/// The URL of a server for tests (its `postgres` database): `ARBITER_TEST_POSTGRES_URL`,
/// or the process's private cluster, started at the first call. `None` if there is
/// neither.
pub fn url() -> Option<String> {
    if let Some(url) = std::env::var(URL_VAR).ok().filter(|u| !u.trim().is_empty()) {
        return Some(url);
    }
    static CLUSTER: OnceLock<Option<String>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| match start() {
            Ok(url) => Some(url),
            Err(why) => {
                eprintln!(
                    "test_cluster: no PostgreSQL server for tests: {why}. Install PostgreSQL \
                     (initdb and pg_ctl) or set {URL_VAR}; PostgreSQL tests are SKIPPED."
                );
                None
            }
        })
        .clone()
}

/// The URL of a new, empty database on the [`url`] server, for one test. Panics if the
/// server is there but refuses to create it.
pub fn fresh_database() -> Option<String> {
    let base = url()?;
    let name = format!("arbiter_test_{}", uuid::Uuid::new_v4().simple());
    let mut client = ::postgres::Client::connect(&base, ::postgres::NoTls)
        .unwrap_or_else(|e| panic!("test_cluster: cannot connect to the test server: {e}"));
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("test_cluster: CREATE DATABASE {name}: {e}"));
    Some(with_database(&base, &name))
}

/// `url` naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // Key-value form: a later setting overrides an earlier one.
        return format!("{url} dbname={name}");
    };
    let rest = &url[scheme_end + 3..];
    let query = rest.find(['?', '#']).map_or("", |i| &rest[i..]);
    let before_query = &rest[..rest.len() - query.len()];
    let authority = before_query.split('/').next().unwrap_or("");
    format!("{}{authority}/{name}{query}", &url[..scheme_end + 3])
}

/// Starts the private cluster; its URL, or why not.
fn start() -> Result<String, String> {
    Cluster::start_new().map(|c| c.url)
}

/// A private PostgreSQL server of one's own, for tests that stop and start it (the
/// shared one of [`url`] must stay up for the other tests).
pub struct Cluster {
    pub url: String,
    bin: PathBuf,
    owner: Option<(u32, u32)>,
    dir: PathBuf,
    data: PathBuf,
    log: PathBuf,
    options: String,
}

/// A server of its own for one test, or `None` (said on stderr) without PostgreSQL.
pub fn own_cluster() -> Option<Cluster> {
    match Cluster::start_new() {
        Ok(c) => Some(c),
        Err(why) => {
            eprintln!("test_cluster: no PostgreSQL server for tests: {why}; SKIPPED");
            None
        }
    }
}

impl Cluster {
    fn start_new() -> Result<Cluster, String> {
        let bin = find_bin()?;
        let owner = if rustix::process::geteuid().is_root() {
            Some(user_ids("postgres").map_err(|e| {
                format!("running as root, which PostgreSQL refuses, and no `postgres` user to run it as ({e})")
            })?)
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("arbiter-pg-")
            .tempdir()
            .map_err(|e| format!("cannot make a temporary folder: {e}"))?
            .keep();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("cannot give {} to postgres: {e}", dir.display()))?;
        }
        let data = dir.join("data");
        let log = dir.join("log");
        // Before anything runs in the folder, so that it goes whatever happens next.
        watchdog(owner, &bin, &dir, &data)?;

        let mut initdb = command(owner, &bin.join("initdb"), &dir);
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "arbiter", "--auth=trust", "--no-sync", "-E", "UTF8"])
            // The C locale: present on every machine, and byte order as SQLite compares.
            .arg("--no-locale");
        run(&mut initdb, "initdb")?;

        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port()?;
            let mut cluster = Cluster {
                url: format!("postgres://arbiter@127.0.0.1:{port}/postgres"),
                options: format!(
                    "-p {port} -k '{}' -c listen_addresses=127.0.0.1 -c fsync=off \
                     -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
                    dir.display()
                ),
                bin: bin.clone(),
                owner,
                dir: dir.clone(),
                data: data.clone(),
                log: log.clone(),
            };
            // Most likely the port was taken meanwhile: try another.
            match cluster.start() {
                Ok(()) => return Ok(cluster),
                Err(e) => last = e,
            }
            cluster.url.clear();
        }
        Err(last)
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn start(&self) -> Result<(), String> {
        let mut pg_ctl = command(self.owner, &self.bin.join("pg_ctl"), &self.dir);
        pg_ctl
            .arg("-D")
            .arg(&self.data)
            .arg("-o")
            .arg(&self.options)
            .args(["-w", "-t", "120", "-l"])
            .arg(&self.log)
            .arg("start");
        run(&mut pg_ctl, "pg_ctl start").map_err(|e| {
            let server_log = log_tail(&self.log, 64 << 10);
            let tail: Vec<&str> = server_log.lines().rev().take(10).collect();
            format!(
                "{e}\nserver log ({}):\n{}",
                self.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
    }

    /// Stops the server at once (`immediate`: as a crash or a lost host would).
    pub fn stop(&self) -> Result<(), String> {
        let mut pg_ctl = command(self.owner, &self.bin.join("pg_ctl"), &self.dir);
        pg_ctl
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"]);
        run(&mut pg_ctl, "pg_ctl stop")
    }
}

/// The folder with `initdb` and `pg_ctl`: the first on `PATH`, then Debian's (newest
/// version first) and the PGDG packages' folders.
fn find_bin() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for parent in ["/usr/lib/postgresql", "/usr"] {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(parent)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let version = if parent == "/usr" {
                    name.strip_prefix("pgsql-")?.to_string()
                } else {
                    name
                };
                let major = version.split('.').next()?.parse().ok()?;
                Some((major, entry.path().join("bin")))
            })
            .collect();
        versions.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
        candidates.extend(versions.into_iter().map(|(_, bin)| bin));
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
        .ok_or_else(|| {
            "no `initdb` and `pg_ctl` on PATH or in /usr/lib/postgresql/*/bin".to_string()
        })
}

/// A user's uid and gid.
fn user_ids(user: &str) -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, user])
            .output()
            .map_err(|e| format!("id: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|e| format!("id {flag} {user}: {e}"))
    };
    Ok((id("-u")?, id("-g")?))
}

/// `program`, run as `owner` when there is one, in `dir`, without the caller's libpq
/// settings.
fn command(owner: Option<(u32, u32)>, program: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir).stdin(Stdio::null());
    for var in [
        "PGDATA",
        "PGPORT",
        "PGHOST",
        "PGUSER",
        "PGDATABASE",
        "PGOPTIONS",
    ] {
        cmd.env_remove(var);
    }
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// A loopback port nobody listened on a moment ago.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Starts the process that stops the cluster and removes its folder once this process
/// has ended: it reads a pipe whose only writer is this process (kept open until exit)
/// and cleans up at end of file. It runs in a process group of its own, so a Ctrl-C
/// that ends the tests does not end it first.
#[allow(clippy::zombie_processes)] // It outlives this process: nothing here can wait.
fn watchdog(owner: Option<(u32, u32)>, bin: &Path, dir: &Path, data: &Path) -> Result<(), String> {
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let script = format!(
        "cat >/dev/null; {} -D {} stop -m immediate >/dev/null 2>&1; rm -rf {}",
        quote(&bin.join("pg_ctl")),
        quote(data),
        quote(dir)
    );
    let mut cmd = command(owner, Path::new("/bin/sh"), dir);
    let mut child = cmd
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the cluster's watchdog: {e}"))?;
    // The pipe stays open for the rest of the process; the watchdog is never waited on.
    std::mem::forget(child.stdin.take());
    Ok(())
}

/// The last `bytes` of the log at `path` (a server's log can be long; its end says why
/// it stopped).
fn log_tail(path: &Path, bytes: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(bytes)));
    let mut tail = Vec::new();
    let _ = f.take(bytes).read_to_end(&mut tail);
    String::from_utf8_lossy(&tail).into_owned()
}

#[cfg(test)]
mod tests {
    use super::{log_tail, with_database};

    #[test]
    fn only_the_end_of_a_log_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        std::fs::write(&log, format!("{}\nthe reason", "x".repeat(100_000))).unwrap();
        let tail = log_tail(&log, 64);
        assert_eq!(tail.len(), 64);
        assert!(tail.ends_with("the reason"));
        assert_eq!(log_tail(&dir.path().join("none"), 64), "");
    }

    #[test]
    fn a_url_names_another_database() {
        assert_eq!(
            with_database("postgres://u:p@h:5/postgres", "x"),
            "postgres://u:p@h:5/x"
        );
        assert_eq!(
            with_database("postgresql://h?sslmode=disable", "x"),
            "postgresql://h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("host=h user=u", "x"),
            "host=h user=u dbname=x"
        );
    }
}
