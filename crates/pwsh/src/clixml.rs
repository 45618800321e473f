//! Decoding of what `powershell.exe` writes to stderr: CLIXML streams and plain text.
//!
//! When powershell.exe runs non-interactively with `-EncodedCommand` and a redirected stderr,
//! it serializes its error, warning, verbose, debug and progress streams onto stderr as
//! CLIXML: a `#< CLIXML` line, then an `<Objs>` document, possibly several such documents one
//! after another, possibly with plain text (from a native program sharing the handle) around
//! them. [`decode_stderr`] turns all of that into a [`Stderr`]: error records, the other
//! streams' messages, and the plain text; progress is dropped.
//!
//! # What is understood
//!
//! - `<S S="Error">`: lines of formatted error text, as the console host writes them
//!   (`WriteErrorLine`). Consecutive ones are joined and split into [`ErrorRecord`]s: the
//!   message line(s), an optional `At line:.. char:..` position block with its `+ ...` lines,
//!   then the indented `+ CategoryInfo : ...` and `+ FullyQualifiedErrorId : ...` lines. A
//!   record ends at a blank line, or after the block of `+ Key : value` lines that holds its
//!   `FullyQualifiedErrorId`. Message lines that
//!   the formatter wrapped (the line ends with a space) are joined back without a line break.
//! - `<S S="warning">`, `<S S="verbose">`, `<S S="debug">`: one message each (stream names are
//!   compared case-insensitively).
//! - `<Obj S="error">`, or any top-level `<Obj>` typed `System.Management.Automation.ErrorRecord`:
//!   a serialized error record as PSRP writes it (`<ToString>`, `<MS>` with
//!   `ErrorCategory_Message`, `FullyQualifiedErrorId`, `ErrorDetails_Message`,
//!   `InvocationInfo_PositionMessage` ...), decoded on a best-effort basis.
//! - `<Obj S="warning|verbose|debug">`: informational records, by their `ToString` or
//!   `InformationalRecord_Message`; `<Obj S="information">` and any other object with a
//!   `ToString` go to [`Stderr::other_text`]; `<Obj S="progress">` is dropped.
//! - Strings are unescaped twice: XML entities, then PowerShell's `_xHHHH_` escapes (a UTF-16
//!   code unit; `_x000D__x000A_` is CRLF, `_x005F_` an underscore, surrogate pairs are
//!   combined, and a lone surrogate becomes U+FFFD).
//!
//! Text outside the documents is returned line by line in [`Stderr::other_text`], without
//! blank lines.
//!
//! # Bounds
//!
//! Nothing here panics on any input. A malformed document is a [`ClixmlError`]. Elements may
//! nest at most [`MAX_DEPTH`] deep, so the tree walks that follow recurse at most that far;
//! all other work is linear in the input.

use std::collections::HashMap;
use std::fmt;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// The line that announces a CLIXML document on stderr.
pub const MARKER: &str = "#< CLIXML";

/// How deep elements may nest in a CLIXML document before it is refused.
pub const MAX_DEPTH: usize = 64;

/// Everything powershell.exe wrote to stderr, sorted by stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stderr {
    /// Error records, in order.
    pub errors: Vec<ErrorRecord>,
    /// Warning messages, in order.
    pub warnings: Vec<String>,
    /// Verbose messages, in order.
    pub verbose: Vec<String>,
    /// Debug messages, in order.
    pub debug: Vec<String>,
    /// Plain text outside CLIXML (one entry per non-blank line), and messages of streams not
    /// listed above.
    pub other_text: Vec<String>,
}

impl Stderr {
    /// Whether nothing at all was decoded (progress does not count).
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
            && self.warnings.is_empty()
            && self.verbose.is_empty()
            && self.debug.is_empty()
            && self.other_text.is_empty()
    }
}

/// One error, as PowerShell displayed or serialized it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorRecord {
    /// The message, e.g. `fake : The term 'fake' is not recognized as ...`.
    pub message: String,
    /// The category line, e.g. `ObjectNotFound: (fake:String) [], CommandNotFoundException`.
    pub category: Option<String>,
    /// The fully qualified error id, e.g. `CommandNotFoundException`.
    pub fully_qualified_error_id: Option<String>,
    /// Where it happened: the `At line:1 char:1` line and the `+ ...` lines under it,
    /// separated by `\n`.
    pub position: Option<String>,
}

impl fmt::Display for ErrorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(position) = &self.position {
            write!(f, "\n{position}")?;
        }
        if let Some(category) = &self.category {
            write!(f, "\n    + CategoryInfo          : {category}")?;
        }
        if let Some(id) = &self.fully_qualified_error_id {
            write!(f, "\n    + FullyQualifiedErrorId : {id}")?;
        }
        Ok(())
    }
}

/// Why stderr could not be decoded. Offsets count bytes from the start of the whole input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClixmlError {
    /// The document after a `#< CLIXML` line is not well-formed XML (a bad tag, a mismatched
    /// end tag, an unknown entity, a bad character reference ...).
    #[error("malformed CLIXML at byte {offset}: {message}")]
    Xml {
        /// Where the XML parser stopped.
        offset: u64,
        /// The parser's description of the problem.
        message: String,
    },
    /// The input ended inside a CLIXML document, before its `</Objs>`.
    #[error("CLIXML document starting at byte {offset} ends before its closing </Objs>")]
    Truncated {
        /// Where the unfinished document starts.
        offset: u64,
    },
    /// A `#< CLIXML` line is not followed by an `<Objs>` document.
    #[error("expected an <Objs> document after `#< CLIXML` at byte {offset}, found {found}")]
    NotObjs {
        /// Where the document should start.
        offset: u64,
        /// What was found instead: an element name or `text`.
        found: String,
    },
    /// Elements nest deeper than [`MAX_DEPTH`].
    #[error("CLIXML nests deeper than {limit} elements at byte {offset}")]
    TooDeep {
        /// Where the element that went too deep starts.
        offset: u64,
        /// The limit, [`MAX_DEPTH`].
        limit: usize,
    },
}

/// Whether `stderr` contains CLIXML, i.e. a line that starts with `#< CLIXML`.
pub fn is_clixml(stderr: &[u8]) -> bool {
    let stderr = stderr.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(stderr);
    let marker = MARKER.as_bytes();
    stderr.starts_with(marker)
        || stderr
            .windows(marker.len() + 1)
            .any(|w| w[0] == b'\n' && &w[1..] == marker)
}

/// Decodes stderr bytes, reading them as UTF-8 (invalid sequences become U+FFFD).
pub fn decode_stderr_bytes(stderr: &[u8]) -> Result<Stderr, ClixmlError> {
    decode_stderr(&String::from_utf8_lossy(stderr))
}

/// Decodes everything powershell.exe wrote to stderr; see the module documentation.
pub fn decode_stderr(stderr: &str) -> Result<Stderr, ClixmlError> {
    let mut out = Sink::default();
    let input = stderr.strip_prefix('\u{FEFF}').unwrap_or(stderr);
    let base = stderr.len() - input.len();
    let mut pos = 0;
    while pos < input.len() {
        let rest = &input[pos..];
        let Some(found) = find_marker(rest) else {
            out.plain_text(rest);
            break;
        };
        out.plain_text(&rest[..found]);
        let doc_start = pos + found + MARKER.len();
        let consumed = decode_document(&input[doc_start..], base + doc_start, &mut out)?;
        pos = doc_start + consumed;
    }
    out.flush_errors();
    Ok(out.stderr)
}

/// The offset of the first marker that starts a line.
fn find_marker(s: &str) -> Option<usize> {
    s.match_indices(MARKER)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || s.as_bytes()[i - 1] == b'\n')
}

/// Accumulates the result; error text is buffered until something else interrupts it.
#[derive(Default)]
struct Sink {
    stderr: Stderr,
    error_text: String,
}

impl Sink {
    fn plain_text(&mut self, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        self.flush_errors();
        for line in text.lines() {
            if !line.trim().is_empty() {
                self.stderr.other_text.push(line.to_owned());
            }
        }
    }

    fn flush_errors(&mut self) {
        if !self.error_text.is_empty() {
            let text = std::mem::take(&mut self.error_text);
            self.stderr.errors.extend(parse_error_text(&text));
        }
    }

    fn message(&mut self, stream: &str, text: String) {
        self.flush_errors();
        let text = trim_line_end(&text).to_owned();
        let target = match stream.to_ascii_lowercase().as_str() {
            "warning" => &mut self.stderr.warnings,
            "verbose" => &mut self.stderr.verbose,
            "debug" => &mut self.stderr.debug,
            _ => &mut self.stderr.other_text,
        };
        target.push(text);
    }
}

fn trim_line_end(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

// ---------------------------------------------------------------------------------------------
// A small element tree, built without recursion and with a depth limit.

#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
}

#[derive(Debug)]
enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// The text directly inside the element, XML-unescaped but not yet `_xHHHH_`-decoded.
    fn raw_text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }

    /// The text as a PowerShell string.
    fn text(&self) -> String {
        decode_escapes(&self.raw_text())
    }

    fn push_text(&mut self, text: &str) {
        if let Some(Node::Text(last)) = self.children.last_mut() {
            last.push_str(text);
        } else {
            self.children.push(Node::Text(text.to_owned()));
        }
    }

    /// A property of a serialized object by its `N` name, from its `<MS>` or `<Props>`.
    fn member(&self, name: &str) -> Option<&Element> {
        self.elements()
            .filter(|e| e.name == "MS" || e.name == "Props")
            .flat_map(Element::elements)
            .find(|e| e.attr("N") == Some(name))
    }

    /// A string-valued property, `None` when absent, `<Nil>` or empty.
    fn member_text(&self, name: &str) -> Option<String> {
        let m = self.member(name)?;
        if m.name == "Nil" {
            return None;
        }
        let text = m.text();
        (!text.trim().is_empty()).then_some(text)
    }

    fn to_string_text(&self) -> Option<String> {
        let text = self.child("ToString")?.text();
        (!text.trim().is_empty()).then_some(text)
    }
}

fn xml_error(offset: u64, err: impl fmt::Display) -> ClixmlError {
    ClixmlError::Xml {
        offset,
        message: err.to_string(),
    }
}

fn start_element(e: &BytesStart<'_>, offset: u64) -> Result<Element, ClixmlError> {
    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| xml_error(offset, err))?;
        let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
        let value = attr
            .unescape_value()
            .map_err(|err| xml_error(offset, err))?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
    })
}

/// Parses one `<Objs>` document at the start of `doc` (after optional whitespace), feeds it to
/// `out`, and returns how many bytes of `doc` it used. `base` is `doc`'s offset in the input.
fn decode_document(doc: &str, base: usize, out: &mut Sink) -> Result<usize, ClixmlError> {
    let base = base as u64;
    let mut reader = Reader::from_str(doc);
    let mut stack: Vec<Element> = Vec::new();
    let root = loop {
        let at = base + reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|err| xml_error(base + reader.error_position(), err))?;
        match event {
            Event::Start(e) | Event::Empty(e)
                if stack.is_empty() && e.local_name().as_ref() != b"Objs" =>
            {
                return Err(ClixmlError::NotObjs {
                    offset: at,
                    found: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                });
            }
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(ClixmlError::TooDeep {
                        offset: at,
                        limit: MAX_DEPTH,
                    });
                }
                stack.push(start_element(&e, at)?);
            }
            Event::Empty(e) => {
                let element = start_element(&e, at)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None => break element,
                }
            }
            Event::End(_) => {
                // quick-xml has already checked that the end tag matches its start tag.
                let Some(element) = stack.pop() else {
                    return Err(xml_error(at, "end tag without a start tag"));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None => break element,
                }
            }
            Event::Text(t) => {
                let text = t.xml10_content().map_err(|err| xml_error(at, err))?;
                match stack.last_mut() {
                    Some(parent) => parent.push_text(&text),
                    None if text.trim().is_empty() => {}
                    None => {
                        return Err(ClixmlError::NotObjs {
                            offset: at,
                            found: "text".to_owned(),
                        });
                    }
                }
            }
            Event::CData(t) => {
                let text = t.xml10_content().map_err(|err| xml_error(at, err))?;
                match stack.last_mut() {
                    Some(parent) => parent.push_text(&text),
                    None => {
                        return Err(ClixmlError::NotObjs {
                            offset: at,
                            found: "CDATA".to_owned(),
                        });
                    }
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|err| xml_error(at, err))? {
                    Some(c) => c,
                    None => match r.decode().map_err(|err| xml_error(at, err))?.as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => return Err(xml_error(at, format!("unknown entity &{other};"))),
                    },
                };
                match stack.last_mut() {
                    Some(parent) => parent.push_text(resolved.encode_utf8(&mut [0; 4])),
                    None => {
                        return Err(ClixmlError::NotObjs {
                            offset: at,
                            found: "text".to_owned(),
                        });
                    }
                }
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            Event::Eof => return Err(ClixmlError::Truncated { offset: base }),
        }
    };
    let consumed = usize::try_from(reader.buffer_position()).unwrap_or(doc.len());
    interpret(&root, out);
    Ok(consumed.min(doc.len()))
}

// ---------------------------------------------------------------------------------------------
// Interpretation of a parsed document.

const ERROR_RECORD_TYPE: &str = "System.Management.Automation.ErrorRecord";

fn interpret(root: &Element, out: &mut Sink) {
    let types = type_names(root);
    for el in root.elements() {
        let stream = el.attr("S").unwrap_or("");
        match el.name.as_str() {
            "S" if stream.eq_ignore_ascii_case("error") => out.error_text.push_str(&el.text()),
            "S" => out.message(stream, el.text()),
            "Obj" if stream.eq_ignore_ascii_case("progress") => {}
            "Obj" if stream.eq_ignore_ascii_case("error") || is_error_record(el, &types) => {
                out.flush_errors();
                out.stderr.errors.push(error_record_from_obj(el));
            }
            "Obj" => {
                let text = el
                    .member_text("InformationalRecord_Message")
                    .or_else(|| el.to_string_text());
                if let Some(text) = text {
                    out.message(stream, text);
                }
            }
            // Primitive values on an error stream carry nothing we act on.
            _ => {}
        }
    }
    out.flush_errors();
}

/// Every `<TN RefId="..">` in the document, so that a `<TNRef>` can be resolved.
fn type_names(root: &Element) -> HashMap<String, Vec<String>> {
    let mut map = HashMap::new();
    // An explicit stack instead of recursion; the tree is at most MAX_DEPTH deep anyway.
    let mut todo = vec![root];
    while let Some(el) = todo.pop() {
        if el.name == "TN"
            && let Some(id) = el.attr("RefId")
        {
            let names = el
                .elements()
                .filter(|t| t.name == "T")
                .map(Element::text)
                .collect();
            map.insert(id.to_owned(), names);
        }
        todo.extend(el.elements());
    }
    map
}

fn is_error_record(obj: &Element, types: &HashMap<String, Vec<String>>) -> bool {
    let names: Option<Vec<String>> = if let Some(tn) = obj.child("TN") {
        Some(
            tn.elements()
                .filter(|t| t.name == "T")
                .map(Element::text)
                .collect(),
        )
    } else {
        obj.child("TNRef")
            .and_then(|r| r.attr("RefId"))
            .and_then(|id| types.get(id).cloned())
    };
    names.is_some_and(|names| {
        names.iter().any(|t| {
            t == ERROR_RECORD_TYPE || t == "Deserialized.System.Management.Automation.ErrorRecord"
        })
    })
}

fn error_record_from_obj(obj: &Element) -> ErrorRecord {
    let exception_message = || {
        let exception = obj.member("Exception")?;
        exception
            .member_text("Message")
            .or_else(|| exception.to_string_text())
    };
    let message = obj
        .member_text("ErrorDetails_Message")
        .or_else(|| obj.to_string_text())
        .or_else(exception_message)
        .unwrap_or_default();
    let position = obj
        .member_text("InvocationInfo_PositionMessage")
        .or_else(|| obj.member("InvocationInfo")?.member_text("PositionMessage"))
        .map(|p| trim_line_end(&p).to_owned());
    ErrorRecord {
        message: trim_line_end(&message).to_owned(),
        category: obj.member_text("ErrorCategory_Message"),
        fully_qualified_error_id: obj.member_text("FullyQualifiedErrorId"),
        position,
    }
}

// ---------------------------------------------------------------------------------------------
// Formatted error text.

/// Splits formatted error text into records; see the module documentation.
fn parse_error_text(text: &str) -> Vec<ErrorRecord> {
    let lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    let mut records = Vec::new();
    let mut group: Vec<&str> = Vec::new();
    let mut seen_id = false;
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            finish_group(&mut group, &mut records);
            seen_id = false;
            continue;
        }
        group.push(line);
        let info = info_line(line);
        seen_id |= matches!(info, Some(("FullyQualifiedErrorId", _)));
        // The `+ Key : value` block that holds the error id closes the record, even when no
        // blank line follows it.
        let ends_record = seen_id
            && info.is_some()
            && lines
                .get(i + 1)
                .is_none_or(|next| info_line(next).is_none());
        if ends_record {
            finish_group(&mut group, &mut records);
            seen_id = false;
        }
    }
    finish_group(&mut group, &mut records);
    records
}

fn finish_group(group: &mut Vec<&str>, records: &mut Vec<ErrorRecord>) {
    if !group.is_empty() {
        records.push(parse_record(group));
        group.clear();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Message,
    Position,
    Category,
    Id,
    OtherInfo,
}

fn parse_record(lines: &[&str]) -> ErrorRecord {
    let mut message = String::new();
    let mut position: Vec<&str> = Vec::new();
    let mut category: Option<String> = None;
    let mut id: Option<String> = None;
    let mut part = Part::Message;
    for (i, line) in lines.iter().enumerate() {
        if let Some((key, value)) = info_line(line) {
            part = match key {
                "CategoryInfo" => {
                    category = Some(value.to_owned());
                    Part::Category
                }
                "FullyQualifiedErrorId" => {
                    id = Some(value.to_owned());
                    Part::Id
                }
                _ => Part::OtherInfo,
            };
            continue;
        }
        match part {
            Part::Message if i > 0 && is_position_start(line) => {
                position.push(line.trim_end());
                part = Part::Position;
            }
            Part::Message => {
                if !message.is_empty() && !message.ends_with(' ') {
                    message.push('\n');
                }
                message.push_str(line);
            }
            Part::Position => position.push(line.trim_end()),
            // A line that is not a `+ Key : value` line continues the value above it: the
            // formatter wrapped it.
            Part::Category => append_wrapped(&mut category, line),
            Part::Id => append_wrapped(&mut id, line),
            Part::OtherInfo => {}
        }
    }
    ErrorRecord {
        message: message.trim_end().to_owned(),
        category,
        fully_qualified_error_id: id,
        position: (!position.is_empty()).then(|| position.join("\n")),
    }
}

fn append_wrapped(field: &mut Option<String>, line: &str) {
    if let Some(value) = field {
        value.push_str(line.trim());
    }
}

/// `    + Key : value` (indented, as PowerShell writes CategoryInfo and friends).
fn info_line(line: &str) -> Option<(&str, &str)> {
    if !line.starts_with([' ', '\t']) {
        return None;
    }
    let rest = line.trim_start().strip_prefix("+ ")?;
    let (key, value) = rest.split_once(':')?;
    let key = key.trim();
    let is_identifier =
        !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    is_identifier.then(|| (key, value.trim()))
}

/// `At line:1 char:1`, or `At C:\path\script.ps1:12 char:5`.
fn is_position_start(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("At ") else {
        return false;
    };
    rest.rfind(" char:").is_some_and(|i| {
        let digits = &rest[i + " char:".len()..];
        !digits.is_empty() && digits.trim_end().chars().all(|c| c.is_ascii_digit())
    })
}

// ---------------------------------------------------------------------------------------------
// PowerShell's `_xHHHH_` escapes.

/// Decodes PowerShell's CLIXML string escapes: `_xHHHH_` is one UTF-16 code unit (so a
/// surrogate pair is two of them), `_xHHHHHHHH_` a code point. A lone surrogate becomes
/// U+FFFD; anything that is not a complete escape is kept as it is.
pub fn decode_escapes(s: &str) -> String {
    if !s.contains("_x") {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut pending_high: Option<u16> = None;
    let mut rest = s;
    while !rest.is_empty() {
        if let Some((unit, len)) = escape_at(rest) {
            match unit {
                Escaped::Unit(u) => push_unit(&mut out, &mut pending_high, u),
                Escaped::Char(c) => {
                    flush_high(&mut out, &mut pending_high);
                    out.push(c);
                }
            }
            rest = &rest[len..];
        } else {
            flush_high(&mut out, &mut pending_high);
            let c = rest.chars().next().unwrap_or('\u{FFFD}');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    flush_high(&mut out, &mut pending_high);
    out
}

enum Escaped {
    Unit(u16),
    Char(char),
}

fn escape_at(s: &str) -> Option<(Escaped, usize)> {
    let b = s.as_bytes();
    if !s.starts_with("_x") {
        return None;
    }
    let hex = |range: std::ops::Range<usize>| {
        let digits = b.get(range)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    };
    if b.get(6) == Some(&b'_')
        && let Some(v) = hex(2..6)
    {
        return Some((Escaped::Unit(u16::try_from(v).ok()?), 7));
    }
    if b.get(10) == Some(&b'_')
        && let Some(v) = hex(2..10)
    {
        return Some((Escaped::Char(char::from_u32(v).unwrap_or('\u{FFFD}')), 11));
    }
    None
}

fn push_unit(out: &mut String, pending_high: &mut Option<u16>, unit: u16) {
    match unit {
        0xD800..=0xDBFF => {
            flush_high(out, pending_high);
            *pending_high = Some(unit);
        }
        0xDC00..=0xDFFF => match pending_high.take() {
            Some(high) => {
                let c = char::decode_utf16([high, unit])
                    .next()
                    .and_then(Result::ok)
                    .unwrap_or('\u{FFFD}');
                out.push(c);
            }
            None => out.push('\u{FFFD}'),
        },
        _ => {
            flush_high(out, pending_high);
            out.push(char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}'));
        }
    }
}

fn flush_high(out: &mut String, pending_high: &mut Option<u16>) {
    if pending_high.take().is_some() {
        out.push('\u{FFFD}');
    }
}
