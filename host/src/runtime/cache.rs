//! Compiled-artifact cache and bounded compilation.
//!
//! Compiling a 12-18 MB Python or JavaScript component takes seconds; loading its compiled
//! artifact takes milliseconds. Artifacts live on disk keyed by the component's SHA-256 and
//! the engine's configuration. `Component::deserialize` trusts its input (it is native
//! code), so each entry carries an HMAC-SHA256 over the engine key, the component digest
//! and the artifact, keyed with a secret kept outside the cache folder
//! (`<cache dir>.key`, 0600): a corrupt, stale, swapped or planted file, even one written
//! by someone who can write the cache folder but not read the key, is rebuilt, never
//! loaded. The folder is created 0700.

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use super::engine::{build_engine, EngineProfile};
use super::error::{Error, Result};

const MAGIC: &[u8; 14] = b"ARBITER-CWASM2";
const HEADER: usize = MAGIC.len() + 32;
const KEY_BYTES: usize = 32;

/// Where untrusted components are compiled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum CompileIsolation {
    /// In a child process (`<program> __compile-plugin`) with an address-space limit and
    /// a deadline: a component crafted to blow up the compiler costs one killed child.
    Subprocess { program: PathBuf },
    /// On a blocking thread of this process: for trusted, local plugins (tests, authoring).
    InProcess,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompileLimits {
    #[serde(with = "secs")]
    pub timeout: Duration,
    /// Address-space limit of the compile worker, in MiB.
    pub memory_mib: u64,
}

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits {
            timeout: Duration::from_secs(120),
            memory_mib: 4096,
        }
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

/// Hex SHA-256 of a component's bytes: its identity in the cache and in traces.
pub fn component_digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Feeds `Hash` output into SHA-256 so the engine fingerprint is stable across runs.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// How a component was obtained, for `inspect` and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadSource {
    /// Already loaded by this runtime.
    Memory,
    /// Deserialized from the on-disk cache.
    Disk,
    /// Compiled now (and cached, when a cache directory is set).
    Compiled,
}

pub(crate) struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: String,
    /// Authenticates entries (see the module's comment).
    mac_key: [u8; KEY_BYTES],
}

/// The cache's key: read from `path`, or made and written there (0600) the first time. A
/// key of the wrong size is replaced, which only makes the entries it signed misses.
fn cache_key(path: &Path) -> Result<[u8; KEY_BYTES]> {
    let err = |e: std::io::Error| Error::Cache(format!("cache key {}: {e}", path.display()));
    for _ in 0..3 {
        match std::fs::read(path) {
            Ok(bytes) if bytes.len() == KEY_BYTES => {
                let mut key = [0u8; KEY_BYTES];
                key.copy_from_slice(&bytes);
                return Ok(key);
            }
            Ok(_) => match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(err(e)),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        let mut key = [0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut key);
        match crate::private::create_file(path, &key) {
            Ok(()) => return Ok(key),
            // Another process made it first: read theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(err(e)),
        }
    }
    Err(Error::Cache(format!(
        "cache key {}: keeps changing under us",
        path.display()
    )))
}

impl ArtifactCache {
    pub(crate) fn new(
        dir: Option<PathBuf>,
        engine: &Engine,
        profile: &EngineProfile,
    ) -> Result<Self> {
        let mut mac_key = [0u8; KEY_BYTES];
        if let Some(dir) = &dir {
            crate::private::create_dir(dir)
                .map_err(|e| Error::Cache(format!("cannot create {}: {e}", dir.display())))?;
            mac_key = cache_key(&Self::key_path(dir))?;
        }
        let mut hasher = ShaHasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        hasher
            .0
            .update(serde_json::to_vec(profile).unwrap_or_default());
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        Ok(ArtifactCache {
            dir,
            engine_key,
            mac_key,
        })
    }

    /// Beside the cache folder, not in it: whoever can plant files in the cache must not
    /// find the key there.
    pub(crate) fn key_path(dir: &Path) -> PathBuf {
        let mut name = dir.file_name().unwrap_or_default().to_os_string();
        name.push(".key");
        dir.with_file_name(name)
    }

    fn mac(&self, digest: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.mac_key).expect("HMAC takes keys of any size");
        mac.update(self.engine_key.as_bytes());
        mac.update(b"\0");
        mac.update(digest.as_bytes());
        mac.update(b"\0");
        mac
    }

    pub(crate) fn path(&self, digest: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{digest}-{}.cwasm", self.engine_key)))
    }

    /// Loads a cached artifact. A file with a bad header or MAC, or one this engine
    /// refuses, is deleted and reported as a miss so the caller recompiles.
    pub(crate) fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest)?;
        let bytes = std::fs::read(&path).ok()?;
        let valid = bytes.len() > HEADER && &bytes[..MAGIC.len()] == MAGIC && {
            let mut mac = self.mac(digest);
            mac.update(&bytes[HEADER..]);
            mac.verify_slice(&bytes[MAGIC.len()..HEADER]).is_ok()
        };
        if !valid {
            if bytes.starts_with(b"ARBITER-CWASM") && !bytes.starts_with(MAGIC) {
                // Written by an older release in its format: expected after an upgrade.
                tracing::debug!(path = %path.display(), "older compiled-plugin cache format; recompiling");
            } else {
                tracing::warn!(path = %path.display(), "compiled-plugin cache entry not written by this host (corrupt, stale or planted); recompiling");
            }
            let _ = std::fs::remove_file(&path);
            return None;
        }
        // SAFETY: the payload is byte-for-byte what this host's `precompile_component`
        // produced for this component and engine configuration (its MAC, keyed with a
        // secret outside the cache, verified above), and wasmtime re-checks its own
        // version and settings header while deserializing.
        match unsafe { Component::deserialize(engine, &bytes[HEADER..]) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "stale compiled-plugin cache entry; recompiling");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Writes an artifact atomically (temp file + rename): readers never see half a file.
    pub(crate) fn store(&self, digest: &str, artifact: &[u8]) -> Result<()> {
        let Some(path) = self.path(digest) else {
            return Ok(());
        };
        let dir = path.parent().expect("cache path has a parent");
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| Error::Cache(format!("cannot write to {}: {e}", dir.display())))?;
        use std::io::Write;
        let mut mac = self.mac(digest);
        mac.update(artifact);
        let write = tmp
            .write_all(MAGIC)
            .and_then(|()| tmp.write_all(&mac.finalize().into_bytes()))
            .and_then(|()| tmp.write_all(artifact))
            .and_then(|()| tmp.as_file().sync_data());
        write.map_err(|e| Error::Cache(format!("cannot write {}: {e}", path.display())))?;
        tmp.persist(&path)
            .map_err(|e| Error::Cache(format!("cannot write {}: {e}", path.display())))?;
        Ok(())
    }
}

/// Compiles `bytes` to a serialized artifact for `profile`, bounded by `limits`.
pub(crate) async fn compile(
    engine: &Engine,
    profile: &EngineProfile,
    isolation: &CompileIsolation,
    limits: &CompileLimits,
    bytes: std::sync::Arc<Vec<u8>>,
) -> Result<Vec<u8>> {
    match isolation {
        CompileIsolation::InProcess => {
            let engine = engine.clone();
            let job = tokio::task::spawn_blocking(move || engine.precompile_component(&bytes));
            match tokio::time::timeout(limits.timeout, job).await {
                Err(_) => Err(Error::CompileTimeout(limits.timeout)),
                Ok(Err(join)) => Err(Error::Internal(format!("compile task failed: {join}"))),
                Ok(Ok(result)) => result.map_err(|e| Error::Compile(format!("{e:#}"))),
            }
        }
        CompileIsolation::Subprocess { program } => {
            compile_in_child(program, profile, limits, &bytes).await
        }
    }
}

async fn compile_in_child(
    program: &Path,
    profile: &EngineProfile,
    limits: &CompileLimits,
    bytes: &[u8],
) -> Result<Vec<u8>> {
    let work = tempfile::tempdir()?;
    let input = work.path().join("plugin.wasm");
    let output = work.path().join("plugin.cwasm");
    tokio::fs::write(&input, bytes).await?;
    let profile_json = serde_json::to_string(profile).expect("profile serializes");
    let child = tokio::process::Command::new(program)
        .arg("__compile-plugin")
        .arg("--profile")
        .arg(&profile_json)
        .arg("--memory-mib")
        .arg(limits.memory_mib.to_string())
        .arg(&input)
        .arg(&output)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Error::Compile(format!(
                "cannot start compile worker {}: {e}",
                program.display()
            ))
        })?;
    let out = match tokio::time::timeout(limits.timeout, child.wait_with_output()).await {
        Err(_) => return Err(Error::CompileTimeout(limits.timeout)),
        Ok(out) => out?,
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("memory allocation") || stderr.contains("out of memory") {
            return Err(Error::CompileMemory(limits.memory_mib));
        }
        let detail = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(Error::Compile(format!(
            "compile worker failed ({}): {detail}",
            out.status
        )));
    }
    Ok(tokio::fs::read(&output).await?)
}

/// Body of the hidden `arbiter __compile-plugin` command: limit our own address space,
/// compile with an on-demand engine of the same profile, write the artifact.
pub fn compile_worker_main(
    profile_json: &str,
    memory_mib: u64,
    input: &Path,
    output: &Path,
) -> Result<()> {
    let profile: EngineProfile = serde_json::from_str(profile_json)
        .map_err(|e| Error::Internal(format!("bad --profile: {e}")))?;
    let limit = memory_mib.saturating_mul(1 << 20);
    rustix::process::setrlimit(
        rustix::process::Resource::As,
        rustix::process::Rlimit {
            current: Some(limit),
            maximum: Some(limit),
        },
    )
    .map_err(|e| Error::Internal(format!("setrlimit: {e}")))?;
    let engine = build_engine(&profile, None)?;
    let bytes = std::fs::read(input)?;
    let artifact = engine
        .precompile_component(&bytes)
        .map_err(|e| Error::Compile(format!("{e:#}")))?;
    std::fs::write(output, artifact)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_starting_together_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugins.key");
        let keys: Vec<[u8; KEY_BYTES]> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16).map(|_| s.spawn(|| cache_key(&path))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(std::fs::read(&path).unwrap(), keys[0]);
        // A damaged key is replaced (what it signed becomes misses, never an error).
        std::fs::write(&path, b"short").unwrap();
        let fresh = cache_key(&path).unwrap();
        assert_ne!(fresh, keys[0]);
        assert_eq!(std::fs::read(&path).unwrap(), fresh);
    }
}
