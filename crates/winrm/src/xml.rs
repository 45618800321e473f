//! A small namespace-resolved XML tree for reading SOAP responses.
//!
//! WS-Management responses are small (bounded by MaxEnvelopeSize) and we look at a
//! handful of elements in each, so a tree is simpler than a streaming reader and costs
//! nothing that matters. Namespaces are resolved to URIs, so prefixes (`s:`, `a:`,
//! `rsp:`, which differ between Windows versions and peers) never matter. Depth and
//! element counts are bounded: a hostile server cannot make us recurse or allocate
//! without limit.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// Deeper nesting than any WS-Management message has; refused beyond this.
const MAX_DEPTH: usize = 64;
/// More elements than any response we read carries (a Receive holds a few hundred).
const MAX_ELEMENTS: usize = 200_000;

/// An element with its namespace URI, local name, attributes and children.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Element {
    pub ns: String,
    pub local: String,
    /// Attributes by local name (the attributes we read are unqualified, or `xml:lang`).
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// The concatenated text directly inside this element.
    pub text: String,
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// The bytes are not well-formed XML.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// The document nests deeper or holds more elements than any WS-Management message.
    #[error("the XML document is nested too deeply or is too large")]
    TooComplex,
    /// The document has no root element.
    #[error("the XML document is empty")]
    Empty,
}

impl Element {
    /// The value of an attribute by local name.
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == local)
            .map(|(_, v)| v.as_str())
    }

    /// The first child with this namespace and local name.
    pub fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.ns == ns && c.local == local)
    }

    /// Every child with this namespace and local name.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        local: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |c| c.ns == ns && c.local == local)
    }

    /// Follows a path of (namespace, name) steps from this element.
    pub fn path(&self, steps: &[(&str, &str)]) -> Option<&Element> {
        let mut cur = self;
        for (ns, local) in steps {
            cur = cur.child(ns, local)?;
        }
        Some(cur)
    }

    /// All text in this element and its descendants, in document order.
    pub fn deep_text(&self) -> String {
        let mut out = self.text.clone();
        for c in &self.children {
            out.push_str(&c.deep_text());
        }
        out
    }
}

/// Parses a document into its root element.
pub(crate) fn parse(xml: &str) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let (resolved, event) = reader
            .read_resolved_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                count += 1;
                if stack.len() >= MAX_DEPTH || count > MAX_ELEMENTS {
                    return Err(XmlError::TooComplex);
                }
                let ns = match resolved {
                    ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
                    ResolveResult::Unbound => String::new(),
                    ResolveResult::Unknown(p) => {
                        return Err(XmlError::Malformed(format!(
                            "undeclared namespace prefix '{}'",
                            String::from_utf8_lossy(&p)
                        )));
                    }
                };
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|e| XmlError::Malformed(e.to_string()))?;
                    let key = a.key.as_ref();
                    if key.starts_with(b"xmlns") {
                        continue;
                    }
                    let name = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
                    let value = a
                        .unescape_value()
                        .map_err(|e| XmlError::Malformed(e.to_string()))?
                        .into_owned();
                    attrs.push((name, value));
                }
                let el = Element {
                    ns,
                    local,
                    attrs,
                    ..Element::default()
                };
                if matches!(event, Event::Empty(_)) {
                    attach(&mut stack, &mut root, el)?;
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("unbalanced end tag".into()))?;
                attach(&mut stack, &mut root, el)?;
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let s = t.decode().map_err(|e| XmlError::Malformed(e.to_string()))?;
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    let s = t.decode().map_err(|e| XmlError::Malformed(e.to_string()))?;
                    top.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let ch = if r.is_char_ref() {
                        r.resolve_char_ref()
                            .map_err(|e| XmlError::Malformed(e.to_string()))?
                    } else {
                        let name = r.decode().map_err(|e| XmlError::Malformed(e.to_string()))?;
                        match name.as_ref() {
                            "amp" => Some('&'),
                            "lt" => Some('<'),
                            "gt" => Some('>'),
                            "quot" => Some('"'),
                            "apos" => Some('\''),
                            other => {
                                return Err(XmlError::Malformed(format!(
                                    "unknown entity '&{other};'"
                                )));
                            }
                        }
                    };
                    if let Some(ch) = ch {
                        top.text.push(ch);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed(
            "unclosed element at end of document".into(),
        ));
    }
    root.ok_or(XmlError::Empty)
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None if root.is_none() => *root = Some(el),
        None => return Err(XmlError::Malformed("more than one root element".into())),
    }
    Ok(())
}

/// Escapes text for an element body or a double-quoted attribute value.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab/newline cannot appear in XML 1.0 at all;
            // a character reference keeps the document well-formed for lenient readers
            // and makes the value visible instead of silently dropping it.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => {
                out.push_str(&format!("&#x{:X};", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_namespaces_regardless_of_prefix() {
        let a = parse(r#"<x:a xmlns:x="urn:one"><x:b k="v">t&amp;u&#65;</x:b></x:a>"#).unwrap();
        let b =
            parse(r#"<a xmlns="urn:one"><y:b xmlns:y="urn:one" k="v">t&amp;uA</y:b></a>"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.child("urn:one", "b").unwrap().text, "t&uA");
        assert_eq!(a.child("urn:one", "b").unwrap().attr("k"), Some("v"));
    }

    #[test]
    fn refuses_malformed_and_deep_documents() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("").is_err());
        assert!(parse("<a/><b/>").is_err());
        assert!(parse("<p:a/>").is_err());
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(matches!(parse(&deep), Err(XmlError::TooComplex)));
    }

    #[test]
    fn escape_round_trips() {
        let s = "a<b>&\"c'\u{1}";
        let doc = format!("<a x=\"{}\">{}</a>", escape(s), escape(s));
        let el = parse(&doc).unwrap();
        assert_eq!(el.text, s);
        assert_eq!(el.attr("x"), Some(s));
    }
}

/// Generated documents: trees written with [`escape`] read back as the same trees, and
/// arbitrary text never panics nor nests without bound.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn tree() -> impl Strategy<Value = Element> {
        let text = "[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{fffe}\u{ffff}\r]{0,12}";
        let leaf = (
            "[a-z][a-z0-9]{0,6}",
            text,
            proptest::collection::vec(("[a-z]{1,5}", text), 0..3),
        )
            .prop_map(|(local, text, attrs)| Element {
                ns: "urn:t".into(),
                local,
                // Attribute names are unique in XML.
                attrs: {
                    let mut seen = std::collections::HashSet::new();
                    attrs
                        .into_iter()
                        .filter(|(k, _)| seen.insert(k.clone()))
                        .collect()
                },
                children: Vec::new(),
                text,
            });
        leaf.prop_recursive(4, 32, 4, |inner| {
            (inner.clone(), proptest::collection::vec(inner, 0..4)).prop_map(
                |(mut el, children)| {
                    el.children = children;
                    el
                },
            )
        })
    }

    fn write(el: &Element, out: &mut String, root: bool) {
        out.push_str(&format!("<t:{}", el.local));
        if root {
            out.push_str(" xmlns:t=\"urn:t\"");
        }
        for (k, v) in &el.attrs {
            out.push_str(&format!(" {k}=\"{}\"", escape(v)));
        }
        out.push('>');
        out.push_str(&escape(&el.text));
        for c in &el.children {
            write(c, out, false);
        }
        out.push_str(&format!("</t:{}>", el.local));
    }

    // The parser concatenates text around children; the generator puts it all first.
    proptest! {
        #[test]
        fn escaped_trees_round_trip(el in tree()) {
            let mut doc = String::new();
            write(&el, &mut doc, true);
            let back = parse(&doc).map_err(|e| TestCaseError::fail(format!("{e}: {doc}")))?;
            prop_assert_eq!(back, el);
        }

        #[test]
        fn arbitrary_text_never_panics(s in "(<[a-z:]{0,3}( [a-z:]{1,3}=\"[^\"]{0,4}\")?/?>|</[a-z:]{0,3}>|&[a-z#0-9]{0,4};|[^<&]{0,5}){0,60}") {
            let _ = parse(&s);
        }

        #[test]
        fn nesting_is_bounded(depth in 0usize..200) {
            let doc = "<a>".repeat(depth) + &"</a>".repeat(depth);
            match parse(&doc) {
                Ok(_) => prop_assert!((1..=MAX_DEPTH).contains(&depth)),
                Err(XmlError::TooComplex) => prop_assert!(depth > MAX_DEPTH),
                Err(XmlError::Empty) => prop_assert_eq!(depth, 0),
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}
