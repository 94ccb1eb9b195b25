//! The shape the code keeps, checked on its text: SQL only in `store/` (and
//! `db.rs`), LAPOR!'s client settings owned by `lapor/`, the API and the
//! dashboard leaves of `web/` that never import each other, HTML only
//! through maud, and `docs/architecture.md` naming every module there is.

use std::fs;
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The files under `src/` (outside `exempt`) whose text contains one of
/// `needles`, with the first needle found.
fn offenders(needles: &[&str], exempt: impl Fn(&str) -> bool) -> Vec<String> {
    src()
        .into_iter()
        .filter(|(rel, _)| !exempt(rel))
        .filter_map(|(rel, text)| {
            needles
                .iter()
                .find(|n| text.contains(*n))
                .map(|n| format!("{rel}: {n}"))
        })
        .collect()
}

#[test]
fn sql_lives_in_store_and_db_only() {
    let found = offenders(
        &[
            "sqlx::query",
            "query_as(",
            "query_scalar(",
            "sqlx::raw_sql",
            "query_as::<",
            "query_scalar::<",
        ],
        |rel| rel.starts_with("store/") || rel == "db.rs",
    );
    assert!(found.is_empty(), "SQL outside store/: {found:#?}");
}

#[test]
fn lapor_does_not_reach_into_config_and_api_and_dashboard_are_leaves() {
    let lapor = offenders(&["crate::config"], |rel| !rel.starts_with("lapor/"));
    assert!(lapor.is_empty(), "lapor/ imports config: {lapor:#?}");
    let api = offenders(&["dashboard::", "crate::web::dashboard"], |rel| {
        !rel.starts_with("web/api/")
    });
    assert!(api.is_empty(), "the API imports the dashboard: {api:#?}");
    let dashboard = offenders(&["crate::web::api", "super::api", "web::api::"], |rel| {
        !rel.starts_with("web/dashboard/")
    });
    assert!(
        dashboard.is_empty(),
        "the dashboard imports the API: {dashboard:#?}"
    );
}

#[test]
fn the_dashboard_builds_html_with_maud_only() {
    // Markup by hand is where escaping becomes a convention: every page and
    // part is a maud template, which escapes what it interpolates.
    let found = offenders(&["format!(\"<", "push_str(\"<", "Html(format!"], |rel| {
        !rel.starts_with("web/dashboard/")
    });
    assert!(found.is_empty(), "HTML built by hand: {found:#?}");
}

/// The module path of a source file: `web/api/mod.rs` is `web/api`.
fn module_of(rel: &str) -> Option<String> {
    let stem = rel.strip_suffix(".rs")?;
    let module = stem.strip_suffix("/mod").unwrap_or(stem);
    (module != "lib" && module != "main").then(|| module.to_string())
}

#[test]
fn architecture_md_names_every_module() {
    let doc =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .unwrap();
    let table: Vec<&str> = doc.lines().filter(|l| l.starts_with("| `")).collect();
    let mut missing = Vec::new();
    for (rel, _) in src() {
        let Some(module) = module_of(&rel) else {
            continue;
        };
        let mut parts = module.split('/');
        let top = parts.next().unwrap_or_default();
        let Some(row) = table
            .iter()
            .find(|row| row.starts_with(&format!("| `{top}` |")))
        else {
            missing.push(format!("{module}: no row for `{top}`"));
            continue;
        };
        // Submodules are named in their top module's row (the leaf name,
        // or its path under the top module).
        if let Some(leaf) = module.rsplit('/').next().filter(|_| module.contains('/')) {
            let under = module.split_once('/').map(|(_, r)| r).unwrap_or(leaf);
            if !row.contains(&format!("`{leaf}`")) && !row.contains(&format!("`{under}`")) {
                missing.push(format!("{module}: not named in the `{top}` row"));
            }
        }
    }
    assert!(missing.is_empty(), "docs/architecture.md: {missing:#?}");
}
