//! The plugin contract's WIT, embedded in the binary so plugin projects anywhere can be
//! built against it without a checkout of this repository.

use std::path::{Path, PathBuf};

/// The released contract versions, newest last: (version, [(file name, contents)]).
pub const VERSIONS: &[(&str, &[(&str, &str)])] = &[
    (
        "0.1.0",
        &[
            ("types.wit", include_str!("../../../wit/v0.1.0/types.wit")),
            ("host.wit", include_str!("../../../wit/v0.1.0/host.wit")),
            (
                "plugins.wit",
                include_str!("../../../wit/v0.1.0/plugins.wit"),
            ),
            ("worlds.wit", include_str!("../../../wit/v0.1.0/worlds.wit")),
        ],
    ),
    (
        "0.2.0",
        &[
            ("types.wit", include_str!("../../../wit/v0.2.0/types.wit")),
            ("host.wit", include_str!("../../../wit/v0.2.0/host.wit")),
            (
                "plugins.wit",
                include_str!("../../../wit/v0.2.0/plugins.wit"),
            ),
            ("worlds.wit", include_str!("../../../wit/v0.2.0/worlds.wit")),
        ],
    ),
];

/// The newest contract version.
pub fn latest() -> &'static str {
    VERSIONS.last().expect("at least one contract version").0
}

/// The text of every embedded WIT file, for build fingerprints. (Any lifetime, so the
/// texts join a list of borrowed ones.)
pub fn texts<'a>() -> impl Iterator<Item = &'a str> {
    VERSIONS
        .iter()
        .flat_map(|(_, files)| files.iter().map(|(_, t)| *t))
}

/// Writes the WIT of `version` under `dir/v<version>/` (unchanged files are left alone)
/// and returns that folder.
pub fn materialize(dir: &Path, version: &str) -> std::io::Result<PathBuf> {
    let files = VERSIONS
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, f)| *f)
        .ok_or_else(|| std::io::Error::other(format!("unknown contract version {version}")))?;
    let out = dir.join(format!("v{version}"));
    std::fs::create_dir_all(&out)?;
    for (name, text) in files {
        let path = out.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(*text) {
            std::fs::write(&path, text)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_wit_matches_the_repository() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        for (version, files) in VERSIONS {
            for (name, text) in *files {
                let on_disk =
                    std::fs::read_to_string(repo.join(format!("v{version}")).join(name)).unwrap();
                assert_eq!(&on_disk, text, "{name}");
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let out = materialize(dir.path(), latest()).unwrap();
        assert!(out.join("worlds.wit").is_file());
    }
}
