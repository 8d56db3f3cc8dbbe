//! "Rebuild only when sources changed" for builders whose tools have no incremental
//! mode of their own (componentize-py, componentize-js, clang): a fingerprint of the
//! inputs is stored next to the output; a build is skipped when it matches.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Fingerprint of `files` (path and content, in order) plus `extra` (tool versions,
/// flags, the world built for).
pub fn fingerprint(files: &[PathBuf], extra: &[&str]) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    for e in extra {
        hasher.update(e.as_bytes());
        hasher.update([0]);
    }
    for f in files {
        hasher.update(f.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(f)?);
        hasher.update([0]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn stamp_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".fingerprint");
    output.with_file_name(name)
}

/// The fingerprint of a build that embeds an SDK and the contract: the project's
/// `sources`, the builder's `own` inputs (tool versions, generated glue), the SDK's files,
/// the WIT of every contract version, and the warm-up marker (`snapshot`).
pub fn build_fingerprint(
    sources: &[PathBuf],
    own: &[&str],
    sdk_files: &[(&str, &str)],
    warm_up_marker: &str,
) -> std::io::Result<String> {
    let mut extra: Vec<&str> = own.to_vec();
    extra.push(super::wit::latest());
    extra.extend(sdk_files.iter().flat_map(|(n, t)| [*n, *t]));
    extra.extend(super::wit::texts());
    extra.push(warm_up_marker);
    fingerprint(sources, &extra)
}

/// True when `output` exists and was built from inputs with this fingerprint.
pub fn is_fresh(output: &Path, fingerprint: &str) -> bool {
    output.is_file()
        && std::fs::read_to_string(stamp_path(output)).ok().as_deref() == Some(fingerprint)
}

/// Records that `output` was built from inputs with this fingerprint.
pub fn record(output: &Path, fingerprint: &str) -> std::io::Result<()> {
    std::fs::write(stamp_path(output), fingerprint)
}

/// Writes `bytes` to `path` unless it already holds exactly them (keeps mtimes stable);
/// through a temporary file and a rename, so a concurrent build of the same project
/// never reads a half-written file.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Where a build writes `output` before renaming it into place, so a failed or
/// concurrent build never leaves a truncated component where a loader would pick it up.
pub fn partial_path(output: &Path) -> PathBuf {
    let name = output.file_name().unwrap_or_default().to_string_lossy();
    output.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Every file under `dir` (recursively) with one of `extensions`, sorted, skipping
/// build output and dependency folders.
pub fn sources(dir: &Path, extensions: &[&str]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !matches!(
                    name,
                    "target" | "node_modules" | "__pycache__" | ".git" | "build" | "dist"
                ) {
                    stack.push(path);
                }
            } else if extensions.iter().any(|e| name.ends_with(e)) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.py");
        std::fs::write(&src, "x = 1").unwrap();
        let out = dir.path().join("out.wasm");
        let f1 = fingerprint(&sources(dir.path(), &[".py"]).unwrap(), &["tool 1"]).unwrap();
        assert!(!is_fresh(&out, &f1));
        std::fs::write(&out, b"wasm").unwrap();
        record(&out, &f1).unwrap();
        assert!(is_fresh(&out, &f1));
        std::fs::write(&src, "x = 2").unwrap();
        let f2 = fingerprint(&sources(dir.path(), &[".py"]).unwrap(), &["tool 1"]).unwrap();
        assert_ne!(f1, f2);
        assert!(!is_fresh(&out, &f2));
        assert_ne!(
            f2,
            fingerprint(&sources(dir.path(), &[".py"]).unwrap(), &["tool 2"]).unwrap()
        );
    }
}
