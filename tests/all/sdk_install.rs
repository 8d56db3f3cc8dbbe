//! The SDKs as a plugin author installs them for an editor, before any `arbiter plugin
//! build`: each one installed into a clean place from this repository, then a
//! freshly scaffolded template checked against only what was installed.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cmd`, failing the test with its output unless it exits 0.
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// `arbiter plugin new --lang <lang> --kind <kind> <lang>-<kind>` in `parent`.
fn scaffold(lang: &str, kind: &str, parent: &Path) -> PathBuf {
    let name = format!("{lang}-{kind}");
    run(Command::new(env!("CARGO_BIN_EXE_arbiter")).args([
        "plugin",
        "new",
        "--lang",
        lang,
        "--kind",
        kind,
        &name,
        "--dir",
        parent.to_str().unwrap(),
    ]));
    parent.join(name)
}

const KINDS: [&str; 3] = ["verifier", "router", "decomposer"];

/// `pip install sdk/python` into a new venv (pip fetches the build backend, flit_core,
/// from PyPI as it would for any user), then mypy --strict on every template and the example, resolving
/// `arbiter_sdk` from that venv only.
#[test]
fn python_sdk_installs_with_pip_and_type_checks_templates() {
    let mypy = Command::new("python3")
        .args(["-m", "mypy", "--version"])
        .output();
    assert!(
        mypy.is_ok_and(|o| o.status.success()),
        "mypy is needed (python3 -m pip install mypy; .ci/run installs it)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let venv = tmp.path().join("venv");
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
    let python = venv.join("bin/python");
    run(Command::new(&python)
        .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
        .arg(repo_root().join("sdk/python"))
        .current_dir(tmp.path()));
    // Imported from the venv (not this checkout) and typed.
    let out = run(Command::new(&python)
        .args([
            "-c",
            "import arbiter_sdk, os; d = os.path.dirname(arbiter_sdk.__file__); \
             assert os.path.isfile(os.path.join(d, 'py.typed')), d; \
             print(arbiter_sdk.__version__, d)",
        ])
        .current_dir(tmp.path()));
    let said = text(&out.stdout);
    assert!(said.starts_with("0.2.0 "), "{said}");
    assert!(said.contains(venv.to_str().unwrap()), "{said}");

    let mut files: Vec<PathBuf> = KINDS
        .iter()
        .map(|kind| scaffold("python", kind, tmp.path()).join("plugin.py"))
        .collect();
    files.push(repo_root().join("sdk/python/examples/majority-vote/majority_vote.py"));
    // One file per run: every template's module is named `plugin`.
    for file in &files {
        run(Command::new("python3")
            .args(["-m", "mypy", "--strict", "--no-incremental"])
            .arg("--python-executable")
            .arg(&python)
            .arg(file)
            .current_dir(tmp.path()));
    }
}

/// TypeScript from the tools `npm ci` installs in `sdk/js` (no download here).
fn tsc() -> PathBuf {
    let tsc = repo_root().join("sdk/js/node_modules/typescript/bin/tsc");
    assert!(tsc.is_file(), "run `npm ci` in sdk/js first (.ci/run does)");
    tsc
}

/// A new TypeScript project type-checks after a plain offline `npm install` (which links
/// the SDK copy the project carries) or after installing the `npm pack`ed SDK, with no
/// build first; and the linked layout still builds.
#[test]
fn js_sdk_installs_with_npm_and_templates_type_check_before_a_build() {
    let tmp = tempfile::tempdir().unwrap();
    let npm_install = |dir: &Path, extra: &[&Path]| {
        run(Command::new("npm")
            .args([
                "install",
                "--offline",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ])
            .args(extra)
            .current_dir(dir));
    };
    let type_check = |dir: &Path| {
        assert!(!dir.join("target").exists(), "no build ran");
        run(Command::new("node").arg(tsc()).arg("-p").arg(dir));
    };
    for kind in KINDS {
        let project = scaffold("ts", kind, tmp.path());
        npm_install(&project, &[]);
        assert!(project
            .join("node_modules/@arbiter/sdk/wit-types/index.d.ts")
            .is_file());
        type_check(&project);
    }

    // The SDK as a package: what `npm pack` ships is enough for the compiler.
    let packed = tmp.path().join("packed");
    std::fs::create_dir(&packed).unwrap();
    run(Command::new("npm")
        .args(["pack", "--silent", "--pack-destination"])
        .arg(&packed)
        .current_dir(repo_root().join("sdk/js")));
    let tarball = packed.join("arbiter-sdk-0.2.0.tgz");
    assert!(tarball.is_file(), "npm pack wrote {tarball:?}");
    let project = tmp.path().join("from-tarball");
    std::fs::create_dir(&project).unwrap();
    let template = tmp.path().join("ts-verifier");
    for f in ["tsconfig.json", "package.json"] {
        std::fs::copy(template.join(f), project.join(f)).unwrap();
    }
    std::fs::create_dir(project.join("src")).unwrap();
    std::fs::copy(template.join("src/index.ts"), project.join("src/index.ts")).unwrap();
    npm_install(&project, &[&tarball]);
    assert!(!project.join("node_modules/@arbiter/sdk").is_symlink());
    type_check(&project);

    // A build over the npm-linked SDK copy works as over no node_modules at all.
    let project = tmp.path().join("ts-verifier");
    let out = Command::new(env!("CARGO_BIN_EXE_arbiter"))
        .args(["plugin", "build", project.to_str().unwrap(), "--json"])
        .env("ARBITER_JS_TOOLS", repo_root().join("sdk/js"))
        .output()
        .unwrap();
    assert_exit_ok(&out);
    assert!(project.join("target/ts-verifier.wasm").is_file());
}

/// `arbiter.h` with no generated bindings on the include path: the templates compile
/// against a copy of only `arbiter.h` and `bindings/`, for wasm32-wasi and for the host
/// (what an editor's clangd does with no flags).
#[test]
fn c_header_checks_templates_without_generated_bindings() {
    let tmp = tempfile::tempdir().unwrap();
    let include = tmp.path().join("include");
    std::fs::create_dir_all(include.join("bindings")).unwrap();
    for f in ["arbiter.h", "bindings/arbiter_world.h"] {
        std::fs::copy(repo_root().join("sdk/c").join(f), include.join(f)).unwrap();
    }
    let sysroot = std::env::var_os("WASI_SYSROOT")
        .map(PathBuf::from)
        .or_else(|| {
            let p = PathBuf::from("/usr/share/wasi-sysroot");
            p.is_dir().then_some(p)
        });
    let mut sources: Vec<PathBuf> = KINDS
        .iter()
        .map(|kind| scaffold("c", kind, tmp.path()).join("src/plugin.c"))
        .collect();
    sources.push(repo_root().join("sdk/c/example/keywords.c"));
    for source in &sources {
        let mut wasm = Command::new("clang");
        wasm.args([
            "--target=wasm32-wasi",
            "-fsyntax-only",
            "-Wall",
            "-Wextra",
            "-Werror",
        ]);
        if let Some(s) = &sysroot {
            wasm.arg(format!("--sysroot={}", s.display()));
        }
        run(wasm.arg("-I").arg(&include).arg(source));
        run(Command::new("clang")
            .args(["-fsyntax-only", "-Wall", "-Werror"])
            .arg("-I")
            .arg(&include)
            .arg(source));
    }
    // A kind macro (as the build defines) narrows the declarations to that kind.
    let verifier = &sources[0];
    run(Command::new("clang")
        .args(["-fsyntax-only", "-DARBITER_KIND_VERIFIER"])
        .arg("-I")
        .arg(&include)
        .arg(verifier));
}
