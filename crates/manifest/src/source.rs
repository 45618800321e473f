//! Source files and locations: the [`SourceMap`] that owns every loaded file's
//! text, and the [`FileId`]/[`Pos`]/[`Span`] values that point into it.
//!
//! Positions carry both the editor view (1-based line and column, columns counted
//! in characters) and the byte offset into the stored text, so a renderer (ours,
//! or miette's) can cut snippets without re-scanning the file.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// Identifies one file inside a [`SourceMap`]. Ids are handed out in load order,
/// so sorting by id sorts by the (deterministic) order files were loaded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FileId(pub u32);

/// A position in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Pos {
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, counted in characters (what editors show).
    pub column: u32,
    /// Byte offset into the file's text as stored in the [`SourceMap`]
    /// (a leading byte-order mark is not part of that text).
    pub offset: usize,
}

/// A range in one source file: `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Span {
    /// The file.
    pub file: FileId,
    /// Where it starts.
    pub start: Pos,
    /// Where it ends (exclusive).
    pub end: Pos,
}

impl Span {
    /// A zero-width span at `pos`.
    #[must_use]
    pub fn point(file: FileId, pos: Pos) -> Span {
        Span {
            file,
            start: pos,
            end: pos,
        }
    }

    /// Byte range of the span, for slicing the file text or for miette.
    #[must_use]
    pub fn byte_range(&self) -> std::ops::Range<usize> {
        self.start.offset..self.end.offset.max(self.start.offset)
    }

    /// The smallest span covering `self` and `other` (same file assumed; if the
    /// files differ `self` is returned unchanged).
    #[must_use]
    pub fn cover(&self, other: &Span) -> Span {
        if self.file != other.file {
            return *self;
        }
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// One loaded file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as it was given or found while walking a directory; rendered as is.
    pub path: PathBuf,
    /// The file's text (UTF-8, without a leading byte-order mark).
    pub text: String,
}

impl SourceFile {
    /// The text of the line containing byte `offset`, without its line break,
    /// and the byte offset at which that line starts. Never panics: an offset
    /// past the end or inside a character is clamped.
    #[must_use]
    pub fn line_at(&self, offset: usize) -> (&str, usize) {
        let offset = clamp_to_boundary(&self.text, offset);
        let before = self.text.get(..offset).unwrap_or("");
        let start = before.rfind('\n').map_or(0, |i| i + 1);
        let rest = self.text.get(start..).unwrap_or("");
        let len = rest.find('\n').unwrap_or(rest.len());
        let line = rest.get(..len).unwrap_or("");
        (line.strip_suffix('\r').unwrap_or(line), start)
    }
}

/// Every file loaded in a run, by [`FileId`].
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    #[must_use]
    /// No files.
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    /// Stores a file and returns its id. A leading byte-order mark is dropped so
    /// that offsets and columns match what editors show.
    pub fn add(&mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> FileId {
        let mut text = text.into();
        if text.starts_with('\u{feff}') {
            text.drain(..'\u{feff}'.len_utf8());
        }
        let id = FileId(u32::try_from(self.files.len()).unwrap_or(u32::MAX));
        self.files.push(SourceFile {
            path: path.into(),
            text,
        });
        id
    }

    #[must_use]
    /// The file `id`, if loaded.
    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    /// The path of a file, or `<unknown>` for an id from another map.
    #[must_use]
    pub fn path(&self, id: FileId) -> &Path {
        self.get(id)
            .map_or(Path::new("<unknown>"), |f| f.path.as_path())
    }

    /// The source text a span covers (empty if the span does not fit the file).
    #[must_use]
    pub fn text_of(&self, span: &Span) -> &str {
        self.get(span.file)
            .and_then(|f| f.text.get(span.byte_range()))
            .unwrap_or("")
    }

    /// Every file, in load order.
    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(u32::try_from(i).unwrap_or(u32::MAX)), f))
    }

    #[must_use]
    /// How many files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    #[must_use]
    /// Whether no file is loaded.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Moves `offset` back to the nearest character boundary within `text`.
pub(crate) fn clamp_to_boundary(text: &str, offset: usize) -> usize {
    let mut o = offset.min(text.len());
    while o > 0 && !text.is_char_boundary(o) {
        o -= 1;
    }
    o
}

/// Converts the parser's character indices to byte offsets. Checkpoints every
/// `STEP` characters keep this linear in memory and constant-ish in time, which
/// matters for 16 MiB inputs with many nodes.
pub(crate) struct CharIndex {
    checkpoints: Vec<usize>,
}

impl CharIndex {
    const STEP: usize = 64;

    pub(crate) fn new(text: &str) -> CharIndex {
        let checkpoints = text
            .char_indices()
            .step_by(Self::STEP)
            .map(|(b, _)| b)
            .collect();
        CharIndex { checkpoints }
    }

    /// Byte offset of character `index`; past the end gives `text.len()`.
    pub(crate) fn byte(&self, text: &str, index: usize) -> usize {
        let Some(&base) = self.checkpoints.get(index / Self::STEP) else {
            return text.len();
        };
        let rest = index % Self::STEP;
        let tail = text.get(base..).unwrap_or("");
        tail.char_indices()
            .nth(rest)
            .map_or(text.len(), |(b, _)| base + b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_index_maps_multibyte_text() {
        let text = "é".repeat(200) + "x";
        let idx = CharIndex::new(&text);
        assert_eq!(idx.byte(&text, 0), 0);
        assert_eq!(idx.byte(&text, 1), 2);
        assert_eq!(idx.byte(&text, 130), 260);
        assert_eq!(idx.byte(&text, 200), 400);
        assert_eq!(idx.byte(&text, 201), 401);
        assert_eq!(idx.byte(&text, 5000), 401);
    }

    #[test]
    fn bom_is_dropped_and_lines_are_found() {
        let mut map = SourceMap::new();
        let id = map.add("a.yaml", "\u{feff}a: 1\r\nbb: 2\n");
        let file = map.get(id).unwrap();
        assert_eq!(file.text, "a: 1\r\nbb: 2\n");
        assert_eq!(file.line_at(7), ("bb: 2", 6));
        assert_eq!(file.line_at(2), ("a: 1", 0));
        assert_eq!(file.line_at(10_000), ("", 12));
        assert_eq!(map.path(FileId(9)), Path::new("<unknown>"));
    }
}
