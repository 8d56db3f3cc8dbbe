//! Component builders the fuzz targets share: the ABI-level liar of the runtime tests and
//! wasm-smith modules shaped like it.

use std::path::PathBuf;

use wit_parser::Resolve;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The liar of `tests/guests/abi-liar.wat`, encoded as a `verifier` component.
pub fn liar() -> Vec<u8> {
    let wat = std::fs::read_to_string(repo().join("tests/guests/abi-liar.wat")).unwrap();
    componentize(wat::parse_str(wat).unwrap()).expect("the liar encodes")
}

/// Wraps a core module exporting the verifier's functions (legacy `interface#function`
/// names, as the liar) as a component of the v0.1.0 `verifier` world.
pub fn componentize(mut module: Vec<u8>) -> Option<Vec<u8>> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_dir(repo().join("wit/v0.1.0")).unwrap();
    let world = resolve.select_world(&[package], Some("verifier")).unwrap();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .ok()?;
    wit_component::ComponentEncoder::default()
        .module(&module)
        .ok()?
        .validate(true)
        .encode()
        .ok()
}

/// A wasm-smith module with exactly the liar's exports (memory, `cabi_realloc` and the
/// verification functions) and arbitrary bodies, as a component; `None` when the input
/// runs out or the encoder refuses the module.
pub fn smith_verifier(u: &mut arbitrary::Unstructured<'_>) -> Option<Vec<u8>> {
    static SHAPE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let shape = SHAPE.get_or_init(|| {
        let wat = std::fs::read_to_string(repo().join("tests/guests/abi-liar.wat")).unwrap();
        wat::parse_str(wat).unwrap()
    });
    let config = wasm_smith::Config {
        exports: Some(shape.clone()),
        available_imports: Some(wat::parse_str("(module)").unwrap()),
        max_memories: 1,
        max_tables: 2,
        gc_enabled: false,
        exceptions_enabled: false,
        threads_enabled: false,
        memory64_enabled: false,
        custom_page_sizes_enabled: false,
        ..wasm_smith::Config::default()
    };
    let module = wasm_smith::Module::new(config, u).ok()?;
    componentize(module.to_bytes())
}
