//! The boundaries of `docs/ARCHITECTURE.md`, kept by a test: which crate may depend on
//! which, and where the server may name a module.

use std::path::{Path, PathBuf};

/// The workspace root (this crate is `appliance/server`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `nexus-*` crates a manifest depends on (normal dependencies only).
fn nexus_dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest)
        .unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
    let doc: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("parsing {}: {e}", manifest.display()));
    doc.get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| {
            t.keys()
                .filter(|k| k.starts_with("nexus-"))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Every module crate: `modules/*/Cargo.toml`, by package name.
fn modules() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root().join("modules")).expect("modules/") {
        let dir = entry.expect("entry").path();
        let manifest = dir.join("Cargo.toml");
        if manifest.exists() {
            let text = std::fs::read_to_string(&manifest).expect("manifest");
            let doc: toml::Table = text.parse().expect("toml");
            let name = doc["package"]["name"].as_str().expect("name").to_owned();
            out.push((name, manifest));
        }
    }
    out
}

#[test]
fn the_platform_depends_on_no_module_and_modules_on_no_other_module() {
    let modules = modules();
    assert!(
        modules.iter().any(|(n, _)| n == "nexus-ledger"),
        "{modules:?}"
    );
    let platform = [
        "appliance/store",
        "appliance/kernel",
        "appliance/web",
        "appliance/export",
        "ui",
    ];
    for crate_dir in platform {
        let deps = nexus_dependencies(&root().join(crate_dir).join("Cargo.toml"));
        for (module, _) in &modules {
            assert!(
                !deps.contains(module),
                "{crate_dir} depends on the module {module}: the platform never names a module"
            );
        }
    }
    for (module, manifest) in &modules {
        let deps = nexus_dependencies(manifest);
        for (other, _) in &modules {
            assert!(
                other == module || !deps.contains(other),
                "{module} depends on {other}: modules use each other only through the kernel"
            );
        }
        assert!(
            !deps.iter().any(|d| d == "nexus-store" || d == "nexus"),
            "{module} depends on {deps:?}: a module reaches the store only through the kernel"
        );
    }
}

/// Every `.rs` file under `dir`, its subdirectories (`src/bin`) included.
fn sources(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

#[test]
fn the_server_names_each_module_on_its_registration_line_only() {
    let src = root().join("appliance/server/src");
    for (module, _) in modules() {
        let path = module.replace('-', "_");
        for file in sources(&src) {
            if file.file_name().is_some_and(|n| n == "boundaries.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).expect("source");
            for (n, line) in text.lines().enumerate() {
                if line.contains(&format!("{path}::")) {
                    let registration = format!("&{path}::web::MODULE,");
                    assert!(
                        line.trim() == registration,
                        "{}:{}: names {module} outside its registration line in \
                         MODULES: {line}",
                        file.display(),
                        n + 1
                    );
                }
            }
        }
    }
}
