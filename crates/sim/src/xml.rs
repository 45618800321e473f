//! A small namespace-resolving XML tree for incoming SOAP envelopes, and text escaping for
//! the envelopes the simulator writes. Requests are small (bounded by MaxEnvelopeSizekb)
//! so a tree is simpler than streaming; depth and element count are still capped because
//! the bytes come from the client.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// Why an envelope could not be read as XML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// The bytes are not well-formed XML (or not UTF-8).
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// Nesting or element count beyond what any WS-Management request needs.
    #[error("XML too deeply nested or too many elements")]
    TooComplex,
    /// No root element.
    #[error("empty document")]
    Empty,
}

/// Deeper than any WinRS request; a guard against hostile input.
const MAX_DEPTH: usize = 64;
/// More elements than any WinRS request; a guard against hostile input.
const MAX_ELEMENTS: usize = 100_000;

/// An element with its namespace URI resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Namespace URI, empty when none.
    pub ns: String,
    /// Local name.
    pub name: String,
    /// Attributes as (namespace URI or empty, local name, value); `xmlns` declarations
    /// are left out.
    pub attrs: Vec<(String, String, String)>,
    /// Child elements in order.
    pub children: Vec<Element>,
    /// Concatenated character data directly inside this element.
    pub text: String,
}

impl Element {
    /// The first child with this namespace and local name.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.ns == ns && c.name == name)
    }

    /// All children with this namespace and local name.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |c| c.ns == ns && c.name == name)
    }

    /// An attribute by local name, ignoring its namespace (WS-Man attributes are
    /// unqualified, except `xml:lang` and `s:mustUnderstand`).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(_, n, _)| n == name)
            .map(|(_, _, v)| v.as_str())
    }
}

fn malformed(e: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(e.to_string())
}

fn resolved_ns(r: ResolveResult<'_>) -> String {
    match r {
        ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.into_inner()).into_owned(),
        _ => String::new(),
    }
}

/// Parses a document into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(malformed)?;
    // A BOM is legal before the XML declaration.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(malformed)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                count += 1;
                if stack.len() >= MAX_DEPTH || count > MAX_ELEMENTS {
                    return Err(XmlError::TooComplex);
                }
                if root.is_some() {
                    return Err(malformed("content after the root element"));
                }
                let ns = resolved_ns(ns);
                let name = String::from_utf8_lossy(e.local_name().into_inner()).into_owned();
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(malformed)?;
                    let key = a.key;
                    if key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let (ans, local) = reader.resolver().resolve_attribute(key);
                    let value = a.unescape_value().map_err(malformed)?.into_owned();
                    attrs.push((
                        resolved_ns(ans),
                        String::from_utf8_lossy(local.into_inner()).into_owned(),
                        value,
                    ));
                }
                let el = Element {
                    ns,
                    name,
                    attrs,
                    children: Vec::new(),
                    text: String::new(),
                };
                if matches!(event, Event::Empty(_)) {
                    attach(&mut stack, &mut root, el);
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| malformed("unbalanced end tag"))?;
                attach(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                // XML 1.0 line ends, as Windows reads them: only CR LF and CR become LF.
                // (quick-xml's `xml_content` also turns U+0085 and U+2028 into LF, as XML
                // 1.1 does, which would alter values a client sends.)
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content().map_err(malformed)?);
                } else if !t.xml10_content().map_err(malformed)?.trim().is_empty() {
                    return Err(malformed("text outside the root element"));
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.decode().map_err(malformed)?);
                }
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(malformed)?
                        .ok_or_else(|| malformed("bad character reference"))?
                        .to_string()
                } else {
                    let name = r.decode().map_err(malformed)?;
                    match &*name {
                        "lt" => "<",
                        "gt" => ">",
                        "amp" => "&",
                        "apos" => "'",
                        "quot" => "\"",
                        other => return Err(malformed(format!("unknown entity &{other};"))),
                    }
                    .to_string()
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::DocType(_) => return Err(malformed("DOCTYPE is not allowed in SOAP")),
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(malformed("unclosed element"));
    }
    root.ok_or(XmlError::Empty)
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

/// Escapes character data for element content.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes an attribute value (always written in double quotes).
pub fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_are_normalised_as_xml_1_0_does() {
        // Found by the property tests of request parsing (tests/soap_props.rs).
        let el = parse("<a>x\r\ny\rz\u{85}w\u{2028}v</a>".as_bytes()).unwrap();
        assert_eq!(el.text, "x\ny\nz\u{85}w\u{2028}v");
    }

    #[test]
    fn resolves_namespaces_entities_and_attributes() {
        let doc = br#"<s:Envelope xmlns:s="urn:s" xmlns:r="urn:r"><s:Body><r:Cmd A="x&amp;y">a &lt;b&gt; &#x41;</r:Cmd><r:Empty/></s:Body></s:Envelope>"#;
        let root = parse(doc).unwrap();
        assert_eq!(
            (root.ns.as_str(), root.name.as_str()),
            ("urn:s", "Envelope")
        );
        let body = root.child("urn:s", "Body").unwrap();
        let cmd = body.child("urn:r", "Cmd").unwrap();
        assert_eq!(cmd.text, "a <b> A");
        assert_eq!(cmd.attr("A"), Some("x&y"));
        assert!(body.child("urn:r", "Empty").is_some());
    }

    #[test]
    fn refuses_garbage_and_doctype() {
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"<!DOCTYPE x [<!ENTITY e 'x'>]><a>&e;</a>").is_err());
        assert!(parse(b"").is_err());
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(parse(deep.as_bytes()), Err(XmlError::TooComplex));
    }
}
