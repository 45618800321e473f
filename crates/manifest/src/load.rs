//! Loading a manifest repository from disk: files and directories to a
//! [`SourceMap`] and the [`Document`]s in it.
//!
//! What is read is deterministic: directories are walked recursively in
//! byte-wise name order, taking `*.yaml` and `*.yml` (any case) and skipping
//! hidden entries (names starting with `.`, such as `.git`); symbolic links to
//! files are followed, links to directories are not (no loops, and no reading
//! outside the repository by accident). A file named twice is read once.
//! Files named explicitly are read whatever their extension.
//!
//! Every document is also checked for secrets in clear ([`check_secrets`]), so
//! no caller can forget to.

use std::collections::HashSet;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::{Document, Limits, parse_file};
use crate::secret::check_secrets;
use crate::source::SourceMap;

/// Loads `paths` (files or directories) with the default [`Limits`].
#[must_use]
pub fn load_paths(paths: &[PathBuf]) -> (SourceMap, Vec<Document>, Diagnostics) {
    load_paths_with(paths, &Limits::default())
}

/// Loads `paths` (files or directories) with the given limits. Problems with
/// one file are reported and the others still loaded.
#[must_use]
pub fn load_paths_with(
    paths: &[PathBuf],
    limits: &Limits,
) -> (SourceMap, Vec<Document>, Diagnostics) {
    let mut diags = Diagnostics::new();
    let files = collect_files(paths, &mut diags);
    let mut sources = SourceMap::new();
    let mut docs = Vec::new();
    for path in files {
        let Some(text) = read_text(&path, limits, &mut diags) else {
            continue;
        };
        let id = sources.add(path, text);
        let file_docs = parse_file(&sources, id, limits, &mut diags);
        for doc in &file_docs {
            check_secrets(&doc.root, &mut diags);
        }
        docs.extend(file_docs);
    }
    (sources, docs, diags)
}

/// The manifest files `paths` stand for, in load order, without duplicates.
pub fn collect_files(paths: &[PathBuf], diags: &mut Diagnostics) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let before = out.len();
                walk_dir(path, &mut out, &mut seen, diags);
                if out.len() == before {
                    diags.push(Diagnostic::warning(
                        "manifest::no-files",
                        format!("no manifest files (*.yaml, *.yml) in {}", path.display()),
                    ));
                }
            }
            Ok(_) => push_unique(path.clone(), &mut out, &mut seen),
            Err(e) => diags.push(io_error(path, &e)),
        }
    }
    out
}

fn walk_dir(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    seen: &mut HashSet<PathBuf>,
    diags: &mut Diagnostics,
) {
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            diags.push(io_error(dir, &e));
            return;
        }
    };
    let mut entries: Vec<fs::DirEntry> = entries
        .filter_map(|e| match e {
            Ok(e) => Some(e),
            Err(err) => {
                diags.push(io_error(dir, &err));
                None
            }
        })
        .collect();
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk_dir(&path, out, seen, diags);
        } else if is_manifest_name(&path) {
            // A link is taken only if it leads to a regular file.
            let is_file = kind.is_file() || fs::metadata(&path).is_ok_and(|m| m.is_file());
            if is_file {
                push_unique(path, out, seen);
            }
        }
    }
}

fn is_manifest_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

fn push_unique(path: PathBuf, out: &mut Vec<PathBuf>, seen: &mut HashSet<PathBuf>) {
    let key = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    if seen.insert(key) {
        out.push(path);
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> Diagnostic {
    Diagnostic::error(
        "manifest::io",
        format!("cannot read {}: {e}", path.display()),
    )
}

/// Reads a file as UTF-8 text, refusing files over the size limit before
/// reading them whole.
fn read_text(path: &Path, limits: &Limits, diags: &mut Diagnostics) -> Option<String> {
    let too_large = |size: u64| {
        Diagnostic::error(
            "manifest::file-too-large",
            format!(
                "{} is {size} bytes, more than the {} bytes a manifest file may have",
                path.display(),
                limits.max_file_bytes
            ),
        )
        .with_hint("split the manifests into several files")
    };
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            diags.push(io_error(path, &e));
            return None;
        }
    };
    let limit = u64::try_from(limits.max_file_bytes).unwrap_or(u64::MAX);
    if let Ok(meta) = file.metadata()
        && meta.len() > limit
    {
        diags.push(too_large(meta.len()));
        return None;
    }
    let mut bytes = Vec::new();
    // The file may grow between the check and the read: read one byte past
    // the limit at most.
    if let Err(e) = file.take(limit.saturating_add(1)).read_to_end(&mut bytes) {
        diags.push(io_error(path, &e));
        return None;
    }
    if bytes.len() > limits.max_file_bytes {
        diags.push(too_large(u64::try_from(bytes.len()).unwrap_or(u64::MAX)));
        return None;
    }
    match String::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let valid = e.as_bytes().get(..at).unwrap_or(&[]);
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            diags.push(
                Diagnostic::error(
                    "manifest::not-utf8",
                    format!(
                        "{} is not valid UTF-8 (line {line}, byte {at})",
                        path.display()
                    ),
                )
                .with_hint("save the file as UTF-8"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &[u8]) {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn directories_are_walked_sorted_skipping_hidden_and_other_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(root, "sites/lon.yaml", b"site: lon\n");
        write(root, "sites/ams.YML", b"site: ams\n---\nsite: ams2\n");
        write(root, "inventory.yaml", b"hosts: {}\n");
        write(root, ".git/config.yaml", b"x: 1\n");
        write(root, "sites/.draft.yaml", b"x: 1\n");
        write(root, "README.md", b"# no\n");
        let (sources, docs, diags) = load_paths(&[root.to_path_buf(), root.join("inventory.yaml")]);
        assert!(diags.is_empty(), "{diags:?}");
        let names: Vec<String> = sources
            .iter()
            .map(|(_, f)| f.path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["inventory.yaml", "sites/ams.YML", "sites/lon.yaml"]);
        assert_eq!(docs.len(), 4);
        assert_eq!(docs[2].index, 1);
        assert_eq!(sources.path(docs[3].file), root.join("sites/lon.yaml"));
    }

    #[test]
    fn problems_with_one_file_do_not_stop_the_others() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(root, "a.yaml", b"a: [1\n");
        write(root, "b.yaml", b"password: hunter2\n");
        write(root, "c.yaml", b"x: \xff\n");
        write(root, "d.yaml", b"ok: true\n");
        let missing = root.join("nope.yaml");
        let (_, docs, diags) = load_paths(&[root.to_path_buf(), missing]);
        let codes: Vec<_> = diags.iter().map(|d| d.code).collect();
        assert_eq!(
            codes,
            [
                "manifest::io",
                "manifest::yaml-syntax",
                "manifest::secret-in-clear",
                "manifest::not-utf8",
            ]
        );
        assert!(
            diags.as_slice()[3]
                .message
                .ends_with("is not valid UTF-8 (line 1, byte 3)")
        );
        assert_eq!(docs.len(), 2);
    }

    #[test]
    fn oversized_files_are_refused_before_reading() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "big.yaml", &b"a: 1\n".repeat(100));
        let limits = Limits {
            max_file_bytes: 100,
            ..Limits::default()
        };
        let (sources, docs, diags) = load_paths_with(&[tmp.path().join("big.yaml")], &limits);
        assert!(sources.is_empty() && docs.is_empty());
        assert_eq!(diags.as_slice()[0].code, "manifest::file-too-large");
        assert!(
            diags.as_slice()[0]
                .message
                .ends_with("is 500 bytes, more than the 100 bytes a manifest file may have")
        );
    }

    #[test]
    fn empty_directories_warn() {
        let tmp = tempfile::tempdir().unwrap();
        let (_, docs, diags) = load_paths(&[tmp.path().to_path_buf()]);
        assert!(docs.is_empty());
        assert_eq!(diags.as_slice()[0].code, "manifest::no-files");
        assert!(!diags.has_errors());
    }
}
