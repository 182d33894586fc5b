//! Dependencies point one way (ARCHITECTURE.md's module table): the console never touches
//! the adapters or the command line, and the demo never the command line (the CLI drives
//! the demo, not the other way round). A use that breaks a rule fails here, naming its
//! file and line.

use std::path::{Path, PathBuf};

/// (the modules under src/ that are checked, the modules they must not name)
const RULES: &[(&str, &[&str])] = &[("tui", &["adapters", "cli"]), ("demo", &["cli"])];

/// Uses a rule would refuse that are known and on their way out: (file under src/, the
/// path used). None today: the console's redaction lives in the leaf `crate::redact`.
const ALLOWED: &[(&str, &str)] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::...` path in `code` with the byte offset it starts at: `crate::a::b`, and
/// each top-level item of a grouped `use crate::{a::b, c::{d, e}}`.
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = code[from..].find("crate::") {
        let at = from + i;
        let rest = &code[at + "crate::".len()..];
        // Not the tail of a longer identifier (`my_crate::`).
        let word_start = at == 0
            || !code[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if word_start {
            if let Some(group) = rest.strip_prefix('{') {
                // Split the group's top-level items (nested groups stay with their item).
                let mut depth = 0usize;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out.push((at, item.trim().to_string()));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
                if !item.trim().is_empty() {
                    out.push((at, item.trim().to_string()));
                }
            } else {
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(rest.len());
                out.push((at, rest[..end].to_string()));
            }
        }
        from = at + "crate::".len();
    }
    out
}

/// Code without comments (line comments and doc comments; block comments are not used).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // A "//" inside a string literal (a URL) is rare here and only hides code
            // after it on that line.
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn violations(src: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for (module, forbidden) in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(module), &mut files);
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let code = without_comments(&text);
            let rel = file
                .strip_prefix(src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            for (at, path) in crate_paths(&code) {
                let head = path.split("::").next().unwrap_or("");
                if !forbidden.contains(&head) {
                    continue;
                }
                if ALLOWED
                    .iter()
                    .any(|(f, p)| *f == rel && path.starts_with(p))
                {
                    continue;
                }
                let line = code[..at].matches('\n').count() + 1;
                found.push(format!(
                    "src/{rel}:{line}: {module} uses crate::{path}, but {module} must not depend on {head}"
                ));
            }
        }
    }
    found
}

#[test]
fn dependencies_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(found.is_empty(), "\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_plain_and_grouped_uses() {
    let code = "use crate::cli::logging;\nuse crate::{Error, adapters::{http::X, Y}, cli};\nlet a = crate::adapters::y();\n// crate::cli in a comment\nlet b = my_crate::cli::z;\n";
    let paths: Vec<String> = crate_paths(&without_comments(code))
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        paths,
        vec![
            "cli::logging",
            "Error",
            "adapters::{http::X, Y}",
            "cli",
            "adapters::y"
        ]
    );
}
