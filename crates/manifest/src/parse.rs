//! YAML text to [`Node`] trees, with a [`Document`] per `---` section.
//!
//! This module owns what a manifest may be at the YAML level, before any
//! meaning is given to it:
//! - duplicate keys are refused (both places are shown): other YAML tools keep
//!   the last one silently, which makes reviews lie;
//! - anchors (`&a`) and aliases (`*a`) are refused: a reviewer reading a diff
//!   would not see what a changed anchor also changes elsewhere;
//! - tags (`!!str`, `!Foo`) are refused: quoting says "string" plainly;
//! - non-scalar keys are refused;
//! - nesting deeper than [`Limits::max_depth`], files over
//!   [`Limits::max_file_bytes`] and documents with more than
//!   [`Limits::max_nodes`] values stop the file, so hostile input cannot
//!   exhaust memory or the stack.
//!
//! Everything else is reported and parsing goes on, so one run shows every
//! problem; only a YAML syntax error ends a file (the parser cannot resume).
//! Documents that are empty (only comments, or a bare `---`) are skipped.

use std::collections::HashMap;
use std::path::PathBuf;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError};

use crate::diag::{Diagnostic, Diagnostics};
use crate::node::{Key, Node, NodeKind, Style, resolve_plain};
use crate::source::{CharIndex, FileId, Pos, SourceMap, Span};

/// Bounds on what one file may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting of maps and lists (the root container is depth 1).
    pub max_depth: usize,
    /// Maximum size of one file in bytes.
    pub max_file_bytes: usize,
    /// Maximum number of values (scalars, maps, lists) in one file.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_depth: 64,
            max_file_bytes: 16 * 1024 * 1024,
            max_nodes: 250_000,
        }
    }
}

/// One YAML document of a manifest file.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The file it was read from.
    pub file: FileId,
    /// 0-based position among the file's non-empty documents.
    pub index: usize,
    /// Its root node.
    pub root: Node,
}

/// Parses `text` as the single file `path`: a convenience for tests and tools.
/// Uses the default [`Limits`].
#[must_use]
pub fn parse_str(
    path: impl Into<PathBuf>,
    text: impl Into<String>,
) -> (SourceMap, Vec<Document>, Diagnostics) {
    let mut sources = SourceMap::new();
    let id = sources.add(path, text);
    let mut diags = Diagnostics::new();
    let docs = parse_file(&sources, id, &Limits::default(), &mut diags);
    (sources, docs, diags)
}

/// Parses one file of `sources` into its documents, reporting problems in `diags`.
/// Documents completed before a syntax error are returned.
pub fn parse_file(
    sources: &SourceMap,
    file: FileId,
    limits: &Limits,
    diags: &mut Diagnostics,
) -> Vec<Document> {
    let Some(source) = sources.get(file) else {
        return Vec::new();
    };
    let text = source.text.as_str();
    if text.len() > limits.max_file_bytes {
        diags.push(
            Diagnostic::error(
                "manifest::file-too-large",
                format!(
                    "{} is {} bytes, more than the {} bytes a manifest file may have",
                    source.path.display(),
                    text.len(),
                    limits.max_file_bytes
                ),
            )
            .with_hint("split the manifests into several files"),
        );
        return Vec::new();
    }
    let mut builder = Builder {
        file,
        text,
        chars: CharIndex::new(text),
        limits,
        diags,
        stack: Vec::new(),
        root: None,
        nodes: 0,
        docs: Vec::new(),
    };
    builder.run();
    builder.docs
}

/// The parser stopped reading this file; the reason is already in the diagnostics.
struct Stop;

enum Frame {
    Seq {
        start: Pos,
        flow: bool,
        items: Vec<Node>,
    },
    Map {
        start: Pos,
        flow: bool,
        entries: Vec<(Key, Node)>,
        /// Key text -> index in `entries`, for duplicate detection in O(1).
        seen: HashMap<String, usize>,
        pending: Pending,
    },
}

/// Where a map is between its events: expecting a key, or the value of a key
/// (`None` when the key was refused and its value must be dropped).
enum Pending {
    Key,
    Value(Option<Key>),
}

struct Builder<'a> {
    file: FileId,
    text: &'a str,
    chars: CharIndex,
    limits: &'a Limits,
    diags: &'a mut Diagnostics,
    stack: Vec<Frame>,
    root: Option<Node>,
    nodes: usize,
    docs: Vec<Document>,
}

impl Builder<'_> {
    fn run(&mut self) {
        let text = self.text;
        let mut parser = Parser::new_from_str(text);
        while let Some(event) = parser.next_event() {
            let step = match event {
                Ok((event, span)) => {
                    let span = self.span(span.start, span.end);
                    self.event(event, span)
                }
                Err(e) => {
                    self.syntax_error(&e);
                    Err(Stop)
                }
            };
            if step.is_err() {
                return;
            }
        }
    }

    fn pos(&self, m: Marker) -> Pos {
        Pos {
            line: u32::try_from(m.line()).unwrap_or(u32::MAX),
            column: u32::try_from(m.col().saturating_add(1)).unwrap_or(u32::MAX),
            offset: self.chars.byte(self.text, m.index()),
        }
    }

    fn span(&self, start: Marker, end: Marker) -> Span {
        Span {
            file: self.file,
            start: self.pos(start),
            end: self.pos(end),
        }
    }

    fn syntax_error(&mut self, e: &ScanError) {
        let at = Span::point(self.file, self.pos(*e.marker()));
        // saphyr bounds flow nesting itself (255 levels), sometimes before we
        // see the events; report it as what it is.
        if e.info().contains("recursion limit") {
            self.too_deep(at);
            return;
        }
        let mut d = Diagnostic::error(
            "manifest::yaml-syntax",
            format!("invalid YAML: {}", e.info()),
        )
        .with_span(at)
        .with_label("here");
        // Tabs are the classic YAML trap; the parser's wording does not say so.
        let line = line_around(self.text, at.start.offset);
        if line.contains('\t') || e.info().contains("tab") {
            d = d.with_hint("YAML indentation must use spaces, not tabs");
        }
        self.diags.push(d);
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), Stop> {
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => Ok(()),
            Event::DocumentStart(_) => {
                self.stack.clear();
                self.root = None;
                Ok(())
            }
            Event::DocumentEnd => {
                if let Some(root) = self.root.take() {
                    let empty = root.is_null() && root.raw.is_empty();
                    if !empty {
                        let index = self.docs.len();
                        self.docs.push(Document {
                            file: self.file,
                            index,
                            root,
                        });
                    }
                }
                Ok(())
            }
            Event::Alias(_) => {
                self.diags.push(
                    Diagnostic::error(
                        "manifest::alias",
                        "anchors and aliases are not supported in manifests; write the value out",
                    )
                    .with_span(span)
                    .with_label("alias"),
                );
                self.count()?;
                self.finish(Node {
                    kind: NodeKind::Null,
                    span,
                    style: Style::Plain,
                    raw: String::new(),
                });
                Ok(())
            }
            Event::Scalar(value, style, anchor, tag) => {
                self.check_anchor_tag(anchor, tag.is_some(), span);
                self.count()?;
                let raw = self.text.get(span.byte_range()).unwrap_or("").to_owned();
                let (kind, style) = match style {
                    ScalarStyle::Plain => (resolve_plain(&value), Style::Plain),
                    ScalarStyle::SingleQuoted => (NodeKind::Str(value.into()), Style::SingleQuoted),
                    ScalarStyle::DoubleQuoted => (NodeKind::Str(value.into()), Style::DoubleQuoted),
                    ScalarStyle::Literal => (NodeKind::Str(value.into()), Style::Literal),
                    ScalarStyle::Folded => (NodeKind::Str(value.into()), Style::Folded),
                };
                // An empty plain scalar is "nothing": give it a zero-width span
                // and no raw text (the parser sometimes spans a `---` with it).
                let (span, raw) = if style == Style::Plain
                    && matches!(kind, NodeKind::Null)
                    && value_is_empty(&raw, &kind)
                {
                    (Span::point(self.file, span.start), String::new())
                } else {
                    (span, raw)
                };
                self.finish(Node {
                    kind,
                    span,
                    style,
                    raw,
                });
                Ok(())
            }
            Event::SequenceStart(anchor, tag) => {
                self.check_anchor_tag(anchor, tag.is_some(), span);
                self.open(span)?;
                self.stack.push(Frame::Seq {
                    start: span.start,
                    flow: span.start != span.end,
                    items: Vec::new(),
                });
                Ok(())
            }
            Event::MappingStart(anchor, tag) => {
                self.check_anchor_tag(anchor, tag.is_some(), span);
                self.open(span)?;
                self.stack.push(Frame::Map {
                    start: span.start,
                    flow: span.start != span.end,
                    entries: Vec::new(),
                    seen: HashMap::new(),
                    pending: Pending::Key,
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Ok(());
                };
                let node = match frame {
                    Frame::Seq { start, flow, items } => {
                        let last = items.last().map(|n| n.span.end);
                        Node {
                            span: self.container_span(start, flow, span, last),
                            kind: NodeKind::Seq(items),
                            style: if flow { Style::Flow } else { Style::Block },
                            raw: String::new(),
                        }
                    }
                    Frame::Map {
                        start,
                        flow,
                        entries,
                        ..
                    } => {
                        let last = entries.last().map(|(_, v)| v.span.end);
                        Node {
                            span: self.container_span(start, flow, span, last),
                            kind: NodeKind::Map(entries),
                            style: if flow { Style::Flow } else { Style::Block },
                            raw: String::new(),
                        }
                    }
                };
                self.finish(node);
                Ok(())
            }
        }
    }

    /// A container ends at its closing bracket when it has one (flow style),
    /// else at the end of its last child.
    fn container_span(&self, start: Pos, flow: bool, end_event: Span, last: Option<Pos>) -> Span {
        let end = if flow {
            end_event.end
        } else {
            last.unwrap_or(start)
        };
        Span {
            file: self.file,
            start,
            end: end.max(start),
        }
    }

    fn open(&mut self, span: Span) -> Result<(), Stop> {
        self.count()?;
        if self.stack.len() >= self.limits.max_depth {
            self.too_deep(span);
            return Err(Stop);
        }
        Ok(())
    }

    fn too_deep(&mut self, span: Span) {
        self.diags.push(
            Diagnostic::error(
                "manifest::too-deep",
                format!(
                    "values are nested more than {} levels deep",
                    self.limits.max_depth
                ),
            )
            .with_span(span)
            .with_label("too deep")
            .with_hint("manifests are shallow; this file was not read further"),
        );
    }

    fn count(&mut self) -> Result<(), Stop> {
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes {
            self.diags.push(Diagnostic::error(
                "manifest::too-many-values",
                format!(
                    "this file holds more than {} values; it was not read further",
                    self.limits.max_nodes
                ),
            ));
            return Err(Stop);
        }
        Ok(())
    }

    fn check_anchor_tag(&mut self, anchor: usize, tagged: bool, span: Span) {
        // saphyr numbers anchors from 1; 0 means "no anchor".
        if anchor != 0 {
            self.diags.push(
                Diagnostic::error(
                    "manifest::anchor",
                    "anchors and aliases are not supported in manifests; write the value out",
                )
                .with_span(Span::point(self.file, span.start))
                .with_label("anchor")
                .with_hint("a reviewer of a diff cannot see what else an anchor changes"),
            );
        }
        if tagged {
            self.diags.push(
                Diagnostic::error("manifest::tag", "YAML tags are not supported in manifests")
                    .with_span(Span::point(self.file, span.start))
                    .with_label("tag")
                    .with_hint("remove the tag; to make a value a string, quote it"),
            );
        }
    }

    /// Attaches a completed node to its parent (or makes it the document root).
    fn finish(&mut self, node: Node) {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return;
        };
        match frame {
            Frame::Seq { items, .. } => items.push(node),
            Frame::Map {
                entries,
                seen,
                pending,
                ..
            } => match pending {
                Pending::Key => {
                    let text = match &node.kind {
                        NodeKind::Str(s) => Some(s.clone()),
                        NodeKind::Null
                        | NodeKind::Bool(_)
                        | NodeKind::Int(_)
                        | NodeKind::Float(_) => Some(node.raw.trim().to_owned()),
                        NodeKind::Seq(_) | NodeKind::Map(_) => None,
                    };
                    let Some(text) = text else {
                        self.diags.push(
                            Diagnostic::error(
                                "manifest::complex-key",
                                format!("{} cannot be a map key", node.describe()),
                            )
                            .with_span(node.span)
                            .with_label("not a plain key")
                            .with_hint("map keys must be plain names"),
                        );
                        *pending = Pending::Value(None);
                        return;
                    };
                    if let Some(first) = seen.get(&text).and_then(|&i| entries.get(i)) {
                        self.diags.push(
                            Diagnostic::error(
                                "manifest::duplicate-key",
                                format!("duplicate key '{text}' in this map"),
                            )
                            .with_span(node.span)
                            .with_label("defined again here")
                            .with_related(first.0.span, "first defined here")
                            .with_hint("a key may appear once in a map; keep one of them"),
                        );
                        *pending = Pending::Value(None);
                        return;
                    }
                    seen.insert(text.clone(), entries.len());
                    *pending = Pending::Value(Some(Key {
                        text,
                        span: node.span,
                    }));
                }
                Pending::Value(key) => {
                    if let Some(key) = key.take() {
                        entries.push((key, node));
                    }
                    *pending = Pending::Key;
                }
            },
        }
    }
}

/// The line of `text` that contains byte `offset` (clamped, never panics).
fn line_around(text: &str, offset: usize) -> &str {
    let offset = crate::source::clamp_to_boundary(text, offset);
    let start = text
        .get(..offset)
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |i| i + 1);
    let rest = text.get(start..).unwrap_or("");
    rest.get(..rest.find('\n').unwrap_or(rest.len()))
        .unwrap_or("")
}

fn value_is_empty(raw: &str, kind: &NodeKind) -> bool {
    matches!(kind, NodeKind::Null) && !matches!(raw.trim(), "~" | "null" | "Null" | "NULL")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<Document>, Diagnostics) {
        let (_, docs, diags) = parse_str("t.yaml", text);
        (docs, diags)
    }

    fn root(text: &str) -> Node {
        let (mut docs, diags) = parse(text);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(docs.len(), 1);
        docs.remove(0).root
    }

    #[test]
    fn quoted_scalars_stay_strings_and_plain_ones_resolve() {
        let r = root("a: 16\nb: '16'\nc: \"true\"\nd: true\ne:\nf: ~\ng: |\n  x\n");
        assert_eq!(r.get("a").unwrap().kind, NodeKind::Int(16));
        let b = r.get("b").unwrap();
        assert_eq!(b.kind, NodeKind::Str("16".into()));
        assert_eq!(b.style, Style::SingleQuoted);
        assert_eq!(b.raw, "'16'");
        assert_eq!(b.describe(), "the quoted string '16'");
        assert_eq!(r.get("c").unwrap().kind, NodeKind::Str("true".into()));
        assert_eq!(r.get("d").unwrap().kind, NodeKind::Bool(true));
        assert_eq!(r.get("e").unwrap().kind, NodeKind::Null);
        assert_eq!(r.get("e").unwrap().describe(), "nothing (an empty value)");
        assert_eq!(r.get("f").unwrap().kind, NodeKind::Null);
        assert_eq!(r.get("g").unwrap().kind, NodeKind::Str("x\n".into()));
        assert_eq!(r.get("g").unwrap().style, Style::Literal);
    }

    #[test]
    fn spans_are_editor_positions_with_byte_offsets() {
        let text = "é: 1\nlist:\n  - 'x'\n  - {k: v}\n";
        let r = root(text);
        let map = r.as_map().unwrap();
        let (k, v) = &map[0];
        assert_eq!(k.text, "é");
        assert_eq!((k.span.start.line, k.span.start.column), (1, 1));
        assert_eq!(
            (v.span.start.line, v.span.start.column, v.span.start.offset),
            (1, 4, 4)
        );
        let list = r.get("list").unwrap();
        assert_eq!((list.span.start.line, list.span.start.column), (3, 3));
        let items = list.as_seq().unwrap();
        assert_eq!(&text[items[0].span.byte_range()], "'x'");
        assert_eq!(&text[items[1].span.byte_range()], "{k: v}");
        assert_eq!(&text[list.span.byte_range()], "- 'x'\n  - {k: v}");
        assert_eq!((items[1].span.end.line, items[1].span.end.column), (4, 11));
    }

    #[test]
    fn duplicate_keys_are_refused_with_both_locations() {
        let (docs, diags) = parse("a: 1\nb: 2\na: 3\n");
        assert_eq!(diags.len(), 1);
        let d = &diags.as_slice()[0];
        assert_eq!(d.code, "manifest::duplicate-key");
        assert_eq!(d.message, "duplicate key 'a' in this map");
        let s = d.span.unwrap();
        assert_eq!((s.start.line, s.start.column), (3, 1));
        let (first, label) = &d.related[0];
        assert_eq!((first.start.line, first.start.column), (1, 1));
        assert_eq!(label, "first defined here");
        // The first value is kept, the duplicate dropped.
        let root = &docs[0].root;
        assert_eq!(root.get("a").unwrap().kind, NodeKind::Int(1));
        assert_eq!(root.as_map().unwrap().len(), 2);
    }

    #[test]
    fn anchors_aliases_and_tags_are_refused_all_at_once() {
        let (docs, diags) = parse("a: &x 1\nb: *x\nc: !!str 5\n");
        let codes: Vec<_> = diags.iter().map(|d| d.code).collect();
        assert_eq!(
            codes,
            ["manifest::anchor", "manifest::alias", "manifest::tag"]
        );
        let alias = &diags.as_slice()[1];
        assert_eq!(
            alias.message,
            "anchors and aliases are not supported in manifests; write the value out"
        );
        let s = alias.span.unwrap();
        assert_eq!((s.start.line, s.start.column), (2, 4));
        assert_eq!(diags.as_slice()[2].span.unwrap().start.column, 4);
        // The tree is still built, so later checks can run.
        assert_eq!(docs.len(), 1);
    }

    #[test]
    fn multi_document_files_give_one_document_each_and_skip_empty_ones() {
        let (docs, diags) = parse("# header\n---\na: 1\n---\n---\nb: 2\n...\n");
        assert!(diags.is_empty());
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].index, 0);
        assert_eq!(docs[1].index, 1);
        assert!(docs[1].root.get("b").is_some());
        let (docs, diags) = parse("# only a comment\n");
        assert!(docs.is_empty() && diags.is_empty());
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(100);
        let (docs, diags) = parse(&deep);
        assert!(docs.is_empty());
        assert_eq!(diags.len(), 1);
        let d = &diags.as_slice()[0];
        assert_eq!(d.code, "manifest::too-deep");
        assert_eq!(d.message, "values are nested more than 64 levels deep");
        assert_eq!(d.span.unwrap().start.column, 65);
        // Deeper than the parser's own bound: same diagnostic.
        let (_, diags) = parse(&"[".repeat(100_000));
        assert_eq!(diags.len(), 1);
        assert_eq!(diags.as_slice()[0].code, "manifest::too-deep");
        // Block nesting is bounded too.
        let block: String = (0..100)
            .map(|i| format!("{}k:\n", "  ".repeat(i)))
            .collect();
        let (_, diags) = parse(&block);
        assert_eq!(diags.len(), 1);
        let d = &diags.as_slice()[0];
        assert_eq!(d.code, "manifest::too-deep");
        assert_eq!(d.span.unwrap().start.line, 65);
        // 64 levels are fine.
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        let (docs, diags) = parse(&ok);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(docs.len(), 1);
    }

    #[test]
    fn size_and_node_count_are_bounded() {
        let mut sources = SourceMap::new();
        let id = sources.add("big.yaml", "a: 1\n".repeat(10));
        let limits = Limits {
            max_file_bytes: 20,
            ..Limits::default()
        };
        let mut diags = Diagnostics::new();
        assert!(parse_file(&sources, id, &limits, &mut diags).is_empty());
        assert_eq!(diags.as_slice()[0].code, "manifest::file-too-large");

        let id = sources.add("many.yaml", "[1, 2, 3, 4, 5]");
        let limits = Limits {
            max_nodes: 3,
            ..Limits::default()
        };
        let mut diags = Diagnostics::new();
        assert!(parse_file(&sources, id, &limits, &mut diags).is_empty());
        assert_eq!(diags.as_slice()[0].code, "manifest::too-many-values");
    }

    #[test]
    fn syntax_errors_report_the_position_and_keep_earlier_documents() {
        let (docs, diags) = parse("a: 1\n---\nb: [1, 2\n");
        assert_eq!(docs.len(), 1);
        assert_eq!(diags.len(), 1);
        let d = &diags.as_slice()[0];
        assert_eq!(d.code, "manifest::yaml-syntax");
        assert!(d.message.starts_with("invalid YAML: "), "{}", d.message);
        assert!(d.span.is_some());
    }

    #[test]
    fn tab_indentation_gets_a_hint() {
        let (_, diags) = parse("a:\n\tb: 1\n");
        let d = &diags.as_slice()[0];
        assert_eq!(d.code, "manifest::yaml-syntax");
        assert_eq!(
            d.hint.as_deref(),
            Some("YAML indentation must use spaces, not tabs")
        );
    }

    #[test]
    fn complex_keys_are_refused() {
        let (docs, diags) = parse("? [x]\n: 1\nb: 2\n");
        assert_eq!(diags.as_slice()[0].code, "manifest::complex-key");
        assert_eq!(diags.as_slice()[0].message, "a list cannot be a map key");
        assert_eq!(docs[0].root.as_map().unwrap().len(), 1);
    }

    #[test]
    fn non_string_keys_use_their_text() {
        let r = root("1: a\ntrue: b\n");
        let keys: Vec<_> = r
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.text.as_str())
            .collect();
        assert_eq!(keys, ["1", "true"]);
    }
}
