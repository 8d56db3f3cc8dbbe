//! C plugins: a folder with an `arbiter.toml` manifest (`language = "c"`) naming the
//! `.c` files, built with clang for `wasm32-wasi` and wrapped into a component here.
//!
//! Plugin authors need only clang and wasi-libc. Everything else the C route usually
//! takes runs inside the `arbiter` binary: the WIT bindings are generated with
//! `wit-bindgen-c` from the embedded contract, the C SDK (`sdk/c`) is embedded and
//! written out at build time, and the core module becomes a component with
//! `wit-component` and WASI's preview1 reactor adapter (what `wasm-tools component new
//! --adapt` does). clang has no incremental mode of its own here, so the inputs are
//! fingerprinted (`freshness`) and an unchanged project is not rebuilt.
//!
//! ```toml
//! [plugin]
//! name = "c-numeric-verifier"     # the component is target/<name>.wasm
//! language = "c"
//! kind = "verifier"               # verifier | router | decomposer
//! sources = ["src/verifier.c"]    # the files to compile, relative to the manifest
//! capabilities = []               # ["model"] (verifier, decomposer) or ["stats"] (router)
//! cflags = []                     # extra clang flags (optional)
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use serde::Deserialize;
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_bindgen_core::wit_parser::Resolve;

use super::build::{BuildError, BuildOptions, Builder, Built};
use super::manifest::{self, invalid};
use super::new::Templates;
use super::{freshness, wit};
use crate::runtime::types::PluginKind::{Decomposer, Router, Verifier};

/// C templates: `sdk/c/templates/`.
pub(super) const TEMPLATES: Templates = Templates {
    kinds: &[
        (
            Verifier,
            embed!("c/templates/verifier": "arbiter.toml", "src/plugin.c", "README.md"),
        ),
        (
            Router,
            embed!("c/templates/router": "arbiter.toml", "src/plugin.c", "README.md"),
        ),
        (
            Decomposer,
            embed!("c/templates/decomposer": "arbiter.toml", "src/plugin.c", "README.md"),
        ),
    ],
    common: embed!("c/templates/common": "gitignore" => ".gitignore"),
    // Nothing vendored: `arbiter plugin build` carries the SDK and the WIT.
    vendored: None,
};

pub use super::manifest::MANIFEST;

/// The C SDK (`sdk/c`), embedded so projects build anywhere.
pub const SDK_FILES: &[(&str, &str)] = &[
    ("arbiter.h", include_str!("../../../sdk/c/arbiter.h")),
    ("arbiter.c", include_str!("../../../sdk/c/arbiter.c")),
];

/// The name the generated bindings use for every world (`arbiter_world.h`,
/// `arbiter_world_string_t`), so one SDK source serves all six worlds.
const BINDINGS_WORLD_NAME: &str = "arbiter_world";

/// Versions of the embedded tools; a change must rebuild every project.
const EMBEDDED_TOOLS: &str = concat!(
    "arbiter ",
    env!("CARGO_PKG_VERSION"),
    "; wit-bindgen-c 0.63.0; preview1 reactor adapter 48.0.8"
);

/// What to install when the C toolchain is missing or incomplete.
pub const INSTALL_HINT: &str = "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32 \
     (Debian/Ubuntu), or unpack the WASI SDK and set WASI_SDK_PATH";

/// clang's flags for every plugin: a WASI reactor (a library the host calls into, no
/// `main`), optimised, with the warnings that catch real C bugs.
const CFLAGS: &[&str] = &[
    "--target=wasm32-wasi",
    "-mexec-model=reactor",
    "-O2",
    "-Wall",
    "-Wextra",
];

/// The `[plugin]` table of a C project's `arbiter.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CManifest {
    /// Component file name (`<name>.wasm`): lowercase letters, digits, `-` and `_`.
    pub name: String,
    pub language: String,
    /// `verifier`, `router` or `decomposer`.
    pub kind: String,
    /// The `.c` files to compile, relative to the manifest.
    pub sources: Vec<String>,
    /// Capabilities the plugin uses; they choose the world it is built for.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Extra clang flags, after the builder's own.
    #[serde(default)]
    pub cflags: Vec<String>,
}

impl CManifest {
    /// The WIT world the manifest asks for (`manifest::world`).
    pub fn world(&self) -> Result<&'static str, String> {
        manifest::world(&self.kind, &self.capabilities)
    }

    /// The preprocessor definitions `arbiter.h` selects the kind and capabilities by.
    fn defines(&self) -> Vec<String> {
        let mut out = vec![format!("-DARBITER_KIND_{}", self.kind.to_ascii_uppercase())];
        out.extend(
            self.capabilities
                .iter()
                .map(|c| format!("-DARBITER_CAPABILITY_{}", c.to_ascii_uppercase())),
        );
        out
    }

    fn validate(&self, dir: &Path) -> Result<(), String> {
        manifest::check_name(&self.name)?;
        self.world()?;
        if self.sources.is_empty() {
            return Err("sources = []: name at least one .c file".into());
        }
        for source in &self.sources {
            let path = Path::new(source);
            if path.is_absolute() || path.components().any(|c| c.as_os_str() == "..") {
                return Err(format!(
                    "sources: `{source}` must be a path inside the project"
                ));
            }
            if !source.ends_with(".c") {
                return Err(format!("sources: `{source}` is not a .c file"));
            }
            if !dir.join(path).is_file() {
                return Err(format!("sources: `{source}` does not exist"));
            }
        }
        Ok(())
    }
}

/// Reads and validates a C project's manifest.
pub fn read_manifest(dir: &Path) -> Result<CManifest, BuildError> {
    let manifest: CManifest = manifest::read(dir)?;
    manifest.validate(dir).map_err(|m| invalid(dir, m))?;
    Ok(manifest)
}

/// The clang that builds plugins and the wasi-libc it builds against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Toolchain {
    pub clang: PathBuf,
    /// `None`: clang's built-in default (Debian's multiarch `/usr/{include,lib}/wasm32-wasi`).
    pub sysroot: Option<PathBuf>,
    /// First line of `clang --version`.
    pub version: String,
}

impl Toolchain {
    /// `$WASI_SDK_PATH` (clang and sysroot of the WASI SDK) when set, else `clang` from
    /// `PATH`; the sysroot is `$WASI_SYSROOT`, else `/usr/share/wasi-sysroot` when it
    /// exists, else clang's default.
    pub fn find() -> Result<Toolchain, BuildError> {
        let sdk = std::env::var_os("WASI_SDK_PATH").map(PathBuf::from);
        let clang = sdk
            .as_ref()
            .map(|s| s.join("bin").join("clang"))
            .unwrap_or_else(|| PathBuf::from("clang"));
        let sysroot = std::env::var_os("WASI_SYSROOT")
            .map(PathBuf::from)
            .or_else(|| sdk.as_ref().map(|s| s.join("share").join("wasi-sysroot")))
            .or_else(|| {
                let p = PathBuf::from("/usr/share/wasi-sysroot");
                p.is_dir().then_some(p)
            });
        Toolchain::with(clang, sysroot)
    }

    /// A toolchain from explicit parts: `clang` (a path or a name on `PATH`) and the
    /// wasi-libc sysroot (`None`: clang's default).
    pub fn with(clang: PathBuf, sysroot: Option<PathBuf>) -> Result<Toolchain, BuildError> {
        let out = Command::new(&clang)
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|_| BuildError::MissingToolchain {
                what: format!("clang (`{}`) was not found", clang.display()),
                install: INSTALL_HINT.into(),
            })?;
        let version = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if !out.status.success() || version.is_empty() {
            return Err(BuildError::MissingToolchain {
                what: format!("`{} --version` failed", clang.display()),
                install: INSTALL_HINT.into(),
            });
        }
        Ok(Toolchain {
            clang,
            sysroot,
            version,
        })
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.clang);
        cmd.args(CFLAGS);
        if let Some(s) = &self.sysroot {
            cmd.arg(format!("--sysroot={}", s.display()));
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Compiles and links a tiny reactor against libc, libm and the compiler builtins, so
    /// a missing piece is named before the plugin's own errors could hide it. Done once
    /// per toolchain and process.
    pub fn check(&self) -> Result<(), BuildError> {
        static CHECKED: OnceLock<Mutex<HashMap<Toolchain, ()>>> = OnceLock::new();
        let checked = CHECKED.get_or_init(|| Mutex::new(HashMap::new()));
        if checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(self)
        {
            return Ok(());
        }
        let dir = tempfile::tempdir()?;
        let src = dir.path().join("probe.c");
        std::fs::write(
            &src,
            "#include <math.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\
             __attribute__((export_name(\"probe\"))) int probe(int n) {\n\
             char buf[32]; snprintf(buf, sizeof buf, \"%g\", pow(2.0, n));\n\
             char *p = malloc(n + 1); memset(p, 0, n + 1); free(p);\n\
             return (int)strlen(buf) + (int)((long long)n * n / 3);\n}\n",
        )?;
        let out = self
            .command()
            .arg(&src)
            .arg("-o")
            .arg(dir.path().join("probe.wasm"))
            .output()?;
        if !out.status.success() {
            return Err(diagnose(&String::from_utf8_lossy(&out.stderr)));
        }
        checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(self.clone(), ());
        Ok(())
    }
}

/// Names the missing piece from clang's complaint about the probe program.
fn diagnose(stderr: &str) -> BuildError {
    let linker_missing = stderr.contains("invalid linker")
        || (stderr.contains("wasm-ld")
            && (stderr.contains("doesn't exist") || stderr.contains("unable to execute")));
    // Checked in this order: a missing libc or builtins archive is reported *by* wasm-ld.
    let what = if stderr.contains("libclang_rt.builtins") {
        "the compiler-rt builtins for wasm32 (libclang_rt.builtins-wasm32.a) were not found"
            .to_string()
    } else if stderr.contains(".h' file not found")
        || stderr.contains("crt1")
        || stderr.contains("-lc")
    {
        "wasi-libc (the C library for wasm32-wasi) was not found".to_string()
    } else if linker_missing {
        "lld's WebAssembly linker (wasm-ld) was not found".to_string()
    } else if stderr.contains("target") {
        "this clang cannot target WebAssembly (wasm32-wasi)".to_string()
    } else {
        format!(
            "clang cannot build for wasm32-wasi: {}",
            stderr
                .trim()
                .lines()
                .take(6)
                .collect::<Vec<_>>()
                .join(" | ")
        )
    };
    BuildError::MissingToolchain {
        what,
        install: INSTALL_HINT.into(),
    }
}

/// Generates the C bindings of `world` (`arbiter_world.h`, `arbiter_world.c` and the
/// component-type object that tells `wit-component` which world the module targets).
pub fn generate_bindings(wit_dir: &Path, world: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(wit_dir)
        .map_err(|e| format!("reading the contract's WIT: {e:#}"))?;
    let world_id = resolve
        .select_world(&[package], Some(world))
        .map_err(|e| format!("world `{world}`: {e:#}"))?;
    let opts = wit_bindgen_c::Opts {
        rename_world: Some(BINDINGS_WORLD_NAME.into()),
        ..Default::default()
    };
    let mut files = wit_bindgen_core::Files::default();
    opts.build()
        .generate(&mut resolve, world_id, &mut files)
        .map_err(|e| format!("generating C bindings for `{world}`: {e:#}"))?;
    Ok(files
        .iter()
        .map(|(name, bytes)| (name.to_string(), bytes.to_vec()))
        .collect())
}

/// Wraps a core module built for `wasm32-wasi` (preview1) into a component: the
/// module's embedded component-type section supplies the world, the reactor adapter
/// turns its preview1 imports into WASI 0.2 ones.
pub fn componentize(core: &[u8]) -> Result<Vec<u8>, String> {
    wit_component::ComponentEncoder::default()
        .module(core)
        .map_err(|e| format!("reading the core module: {e:#}"))?
        .validate(true)
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .map_err(|e| format!("loading the WASI adapter: {e:#}"))?
        .encode()
        .map_err(|e| format!("making the component: {e:#}"))
}

/// The C builder.
#[derive(Debug, Clone, Copy)]
pub struct C;

impl Builder for C {
    type Manifest = CManifest;
    type Toolchain = Toolchain;

    fn read_manifest(&self, dir: &Path) -> Result<CManifest, BuildError> {
        read_manifest(dir)
    }

    /// Finds clang; whether it can build for WASI is probed ([`Toolchain::check`]) only
    /// when there is something to build.
    fn toolchain_check(
        &self,
        _: &Path,
        _: &CManifest,
        _: &BuildOptions,
    ) -> Result<Toolchain, BuildError> {
        Toolchain::find()
    }

    fn build(
        &self,
        dir: &Path,
        manifest: &CManifest,
        toolchain: Toolchain,
        options: &BuildOptions,
    ) -> Result<Built, BuildError> {
        build_c(dir, manifest, toolchain, options)
    }
}

fn build_c(
    dir: &Path,
    manifest: &CManifest,
    toolchain: Toolchain,
    options: &BuildOptions,
) -> Result<Built, BuildError> {
    let world = manifest.world().map_err(|m| invalid(dir, m))?;
    let target = options.target(dir);
    let output = target.join(format!("{}.wasm", manifest.name));

    let sources = freshness::sources(dir, &[".c", ".h", ".toml"])?;
    let sysroot = toolchain
        .sysroot
        .as_ref()
        .map(|s| s.display().to_string())
        .unwrap_or_default();
    let defines = manifest.defines();
    let mut extra: Vec<&str> = vec![
        EMBEDDED_TOOLS,
        &toolchain.version,
        &sysroot,
        world,
        wit::latest(),
    ];
    extra.extend(CFLAGS);
    extra.extend(defines.iter().map(String::as_str));
    extra.extend(manifest.cflags.iter().map(String::as_str));
    extra.extend(SDK_FILES.iter().flat_map(|(n, t)| [*n, *t]));
    extra.extend(wit::texts());
    let fingerprint = freshness::fingerprint(&sources, &extra)?;
    if freshness::is_fresh(&output, &fingerprint) {
        return Ok(Built::one(output, false, None));
    }
    toolchain.check()?;

    // Per-project work folder: a shared target dir may hold several C plugins.
    let work = target.join("c-build").join(&manifest.name);
    let sdk_dir = work.join("sdk");
    for (name, text) in SDK_FILES {
        freshness::write_if_changed(&sdk_dir.join(name), text.as_bytes())?;
    }
    let wit_dir = wit::materialize(&work.join("wit"), wit::latest())?;
    let bindings_dir = work.join("bindings");
    let bindings = generate_bindings(&wit_dir, world).map_err(|m| BuildError::Failed {
        status: "bindings".into(),
        output: m,
    })?;
    let mut objects = Vec::new();
    let mut c_files = Vec::new();
    for (name, bytes) in &bindings {
        let path = bindings_dir.join(name);
        freshness::write_if_changed(&path, bytes)?;
        if name.ends_with(".o") {
            objects.push(path);
        } else if name.ends_with(".c") {
            c_files.push(path);
        }
    }

    // Build next to the output and rename, so a failed or concurrent build never leaves
    // a truncated component where a loader would pick it up.
    std::fs::create_dir_all(&target)?;
    let pid = std::process::id();
    let core = work.join(format!("core-{pid}.wasm"));
    let mut cmd = toolchain.command();
    cmd.current_dir(dir)
        .args(&defines)
        .arg("-I")
        .arg(&sdk_dir)
        .arg("-I")
        .arg(&bindings_dir)
        .arg("-I")
        .arg(dir)
        .args(&manifest.cflags)
        .arg(sdk_dir.join("arbiter.c"))
        .args(&c_files)
        .args(&objects)
        .args(manifest.sources.iter().map(|s| dir.join(s)))
        .arg("-o")
        .arg(&core)
        .stdout(options.tool_output())
        .stderr(options.tool_output());
    let out = cmd.output()?;
    let diagnostics = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !out.status.success() {
        let _ = std::fs::remove_file(&core);
        return Err(BuildError::Failed {
            status: out.status.to_string(),
            output: diagnostics,
        });
    }
    if !diagnostics.is_empty() {
        // Warnings in C are often real bugs: show them even on success.
        tracing::warn!(plugin = %manifest.name, "clang reported:\n{diagnostics}");
    }
    let module = std::fs::read(&core);
    let _ = std::fs::remove_file(&core);
    let component = componentize(&module?).map_err(|m| BuildError::Failed {
        status: "componentize".into(),
        output: m,
    })?;
    let partial = freshness::partial_path(&output);
    std::fs::write(&partial, component)?;
    std::fs::rename(&partial, &output)?;
    freshness::record(&output, &fingerprint)?;
    Ok(Built::one(output, true, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(kind: &str, caps: &[&str]) -> CManifest {
        CManifest {
            name: "p".into(),
            language: "c".into(),
            kind: kind.into(),
            sources: vec!["p.c".into()],
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            cflags: Vec::new(),
        }
    }

    #[test]
    fn capabilities_choose_the_world_and_defines() {
        assert_eq!(manifest("verifier", &[]).world(), Ok("verifier"));
        assert_eq!(
            manifest("verifier", &["model"]).world(),
            Ok("model-verifier")
        );
        assert_eq!(manifest("router", &["stats"]).world(), Ok("stats-router"));
        assert_eq!(
            manifest("decomposer", &["model"]).world(),
            Ok("model-decomposer")
        );
        assert!(manifest("router", &["model"]).world().is_err());
        assert!(manifest("verifier", &["model", "stats"]).world().is_err());
        assert!(manifest("judge", &[]).world().is_err());
        assert_eq!(
            manifest("router", &["stats"]).defines(),
            ["-DARBITER_KIND_ROUTER", "-DARBITER_CAPABILITY_STATS"]
        );
    }

    #[test]
    fn manifests_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let write = |body: &str| {
            std::fs::write(d.join(MANIFEST), format!("[plugin]\n{body}")).unwrap();
        };
        std::fs::write(d.join("p.c"), "int x;\n").unwrap();
        write("name = \"p\"\nlanguage = \"c\"\nkind = \"verifier\"\nsources = [\"p.c\"]\n");
        assert_eq!(read_manifest(d).unwrap(), manifest("verifier", &[]));

        let error = |body: &str| match read_manifest({
            write(body);
            d
        }) {
            Err(BuildError::InvalidManifest { message, .. }) => message,
            other => panic!("{body}: {other:?}"),
        };
        let base = "language = \"c\"\nkind = \"verifier\"\n";
        assert!(error(&format!("name = \"P!\"\n{base}sources = [\"p.c\"]")).contains("name"));
        assert!(error(&format!("name = \"p\"\n{base}sources = []")).contains("sources"));
        assert!(
            error(&format!("name = \"p\"\n{base}sources = [\"missing.c\"]"))
                .contains("does not exist")
        );
        assert!(
            error(&format!("name = \"p\"\n{base}sources = [\"../p.c\"]"))
                .contains("inside the project")
        );
        assert!(error(&format!(
            "name = \"p\"\n{base}sources = [\"p.c\"]\nsource = []"
        ))
        .contains("source"));
        assert!(error(&format!(
            "name = \"p\"\n{base}sources = [\"p.c\"]\ncapabilities = [\"stats\"]"
        ))
        .contains("model"));
    }

    #[test]
    fn the_shipped_editor_bindings_are_the_host_worlds() {
        // `sdk/c/bindings/arbiter_world.h` lets editors use `arbiter.h` before any build;
        // it must follow the contract. To refresh it, write this test's `generated` there.
        let dir = tempfile::tempdir().unwrap();
        let wit_dir = wit::materialize(dir.path(), wit::latest()).unwrap();
        let files = generate_bindings(&wit_dir, "host").unwrap();
        let generated = &files
            .iter()
            .find(|(n, _)| n == "arbiter_world.h")
            .unwrap()
            .1;
        let shipped = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/c/bindings/arbiter_world.h"),
        )
        .unwrap();
        assert!(
            shipped == *generated,
            "sdk/c/bindings/arbiter_world.h is stale: regenerate it from the `host` world"
        );
    }

    #[test]
    fn every_world_has_bindings_the_sdk_compiles_against() {
        let dir = tempfile::tempdir().unwrap();
        let wit_dir = wit::materialize(dir.path(), wit::latest()).unwrap();
        let toolchain = Toolchain::find().unwrap();
        let sdk = dir.path().join("sdk");
        for (name, text) in SDK_FILES {
            freshness::write_if_changed(&sdk.join(name), text.as_bytes()).unwrap();
        }
        for (kind, caps) in [
            ("verifier", &[][..]),
            ("router", &[]),
            ("decomposer", &[]),
            ("verifier", &["model"]),
            ("router", &["stats"]),
            ("decomposer", &["model"]),
        ] {
            let m = manifest(kind, caps);
            let world = m.world().unwrap();
            let files = generate_bindings(&wit_dir, world).unwrap();
            let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(
                names,
                [
                    "arbiter_world.c",
                    "arbiter_world.h",
                    "arbiter_world_component_type.o"
                ],
                "{world}"
            );
            let out = dir.path().join(world);
            for (name, bytes) in &files {
                freshness::write_if_changed(&out.join(name), bytes).unwrap();
            }
            // The SDK and the generated code compile warning-free for every world.
            let result = toolchain
                .command()
                .args(m.defines())
                .args(["-Werror", "-Wno-unused-command-line-argument", "-c", "-I"])
                .arg(&sdk)
                .arg("-I")
                .arg(&out)
                .arg(sdk.join("arbiter.c"))
                .arg(out.join("arbiter_world.c"))
                .current_dir(&out)
                .output()
                .unwrap();
            assert!(
                result.status.success(),
                "{world}: {}",
                String::from_utf8_lossy(&result.stderr)
            );
        }
    }

    #[test]
    fn missing_pieces_are_named() {
        let msg = |stderr: &str| diagnose(stderr).to_string();
        assert!(msg(
            "clang: error: unable to execute command: Executable \"wasm-ld\" doesn't exist!"
        )
        .contains("wasm-ld"));
        assert!(msg("fatal error: 'stdlib.h' file not found").contains("wasi-libc"));
        assert!(msg("wasm-ld: error: cannot open crt1-reactor.o").contains("wasi-libc"));
        assert!(msg(
            "cannot open /usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a"
        )
        .contains("compiler-rt"));
        for m in [
            msg("anything"),
            msg("fatal error: 'stdio.h' file not found"),
        ] {
            assert!(
                m.contains("apt-get install clang lld wasi-libc libclang-rt-dev-wasm32"),
                "{m}"
            );
        }
    }
}
