//! CLIXML, PowerShell's object serialization (MS-PSRP 2.2.5), in both directions.
//!
//! [`Value`] models what travels: primitives, `Nil`, and objects ([`PsObject`]) with
//! their type names, `ToString`, adapted (`<Props>`) and extended (`<MS>`) properties, a
//! wrapped primitive (enums carry their underlying integer), a list (`LST`, `IE`, `STK`,
//! `QUE`) or a dictionary (`DCT`). [`parse`] reads one top-level element, resolving
//! `<Ref RefId>` and `<TNRef RefId>`; [`to_clixml`] writes one, numbering objects and
//! sharing type-name lists as PowerShell does. Deserialized Exchange objects arrive as
//! `Deserialized.*` type names whose ByteQuantifiedSize, Unlimited and TimeSpan-like
//! values are plain strings (`"2 GB (2,147,483,648 bytes)"`, `"Unlimited"`): they stay
//! strings here and their meaning is the caller's business.
//!
//! Strings use PowerShell's `_xHHHH_` escapes for characters XML cannot carry; a literal
//! `_x` is written `_x005F_x`. Parsing is bounded (depth, element count) because the
//! text comes from a server.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use crate::error::Error;

/// Deeper than any object PowerShell serializes (its default depth is small).
const MAX_DEPTH: usize = 128;
/// More elements than one message of a few MiB can hold in practice.
const MAX_ELEMENTS: usize = 2_000_000;

/// A serialized value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `$null`.
    Nil,
    /// `B`.
    Bool(bool),
    /// `S`.
    Str(String),
    /// `C`: a UTF-16 code unit.
    Char(char),
    /// `By`.
    U8(u8),
    /// `SB`.
    I8(i8),
    /// `U16`.
    U16(u16),
    /// `I16`.
    I16(i16),
    /// `U32`.
    U32(u32),
    /// `I32`.
    I32(i32),
    /// `U64`.
    U64(u64),
    /// `I64`.
    I64(i64),
    /// `Sg`.
    Single(f32),
    /// `Db`.
    Double(f64),
    /// `D`, kept as its text.
    Decimal(String),
    /// `DT`, ISO 8601 text as sent.
    DateTime(String),
    /// `TS`, xs:duration text as sent.
    TimeSpan(String),
    /// `G`.
    Guid(String),
    /// `URI`.
    Uri(String),
    /// `Version`.
    Version(String),
    /// `BA`.
    Bytes(Vec<u8>),
    /// `XD`.
    Xml(String),
    /// `SBK`.
    ScriptBlock(String),
    /// `SS`: encrypted with the session key; exctl never decrypts it.
    SecureString(String),
    /// `Obj`.
    Object(Arc<PsObject>),
}

/// A PowerShell object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PsObject {
    /// Most derived first (`Deserialized.` prefixed when it came back from a server).
    pub type_names: Vec<String>,
    /// `<ToString>`.
    pub to_string: Option<String>,
    /// A wrapped primitive (an enum's underlying value, a string with notes).
    pub value: Option<Value>,
    /// `<Props>`: the .NET properties.
    pub adapted: Vec<(String, Value)>,
    /// `<MS>`: note properties (and the fields of PSRP's own messages).
    pub extended: Vec<(String, Value)>,
    /// `LST`, `IE`, `STK`, `QUE`.
    pub list: Option<Vec<Value>>,
    /// `DCT`, in order.
    pub dict: Option<Vec<(Value, Value)>>,
}

impl PsObject {
    /// A property by name (extended first, then adapted; case-insensitive as PowerShell).
    pub fn property(&self, name: &str) -> Option<&Value> {
        self.extended
            .iter()
            .chain(self.adapted.iter())
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every property in order: extended, then adapted (skipping adapted duplicates).
    pub fn properties(&self) -> Vec<(&str, &Value)> {
        let mut out: Vec<(&str, &Value)> = Vec::new();
        for (n, v) in self.adapted.iter().chain(self.extended.iter()) {
            if !out.iter().any(|(m, _)| m.eq_ignore_ascii_case(n)) {
                out.push((n, v));
            }
        }
        out
    }

    /// Whether the object is a dictionary, list or enum rather than a property bag.
    pub fn is_enum(&self) -> bool {
        self.type_names
            .iter()
            .any(|t| t == "System.Enum" || t == "Deserialized.System.Enum")
    }
}

impl Value {
    /// An object value.
    pub fn object(o: PsObject) -> Value {
        Value::Object(Arc::new(o))
    }

    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&PsObject> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// An integer of any width (and an enum's underlying value).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::U8(v) => Some(i64::from(*v)),
            Value::I8(v) => Some(i64::from(*v)),
            Value::U16(v) => Some(i64::from(*v)),
            Value::I16(v) => Some(i64::from(*v)),
            Value::U32(v) => Some(i64::from(*v)),
            Value::I32(v) => Some(i64::from(*v)),
            Value::U64(v) => i64::try_from(*v).ok(),
            Value::I64(v) => Some(*v),
            Value::Object(o) => o.value.as_ref().and_then(Value::as_i64),
            _ => None,
        }
    }

    /// A property of an object.
    pub fn property(&self, name: &str) -> Option<&Value> {
        self.as_object().and_then(|o| o.property(name))
    }

    /// The value as PowerShell would turn it into a string (`"$x"`-like): primitives in
    /// their invariant form, objects by their ToString.
    pub fn display(&self) -> String {
        match self {
            Value::Nil => String::new(),
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Str(s)
            | Value::Decimal(s)
            | Value::DateTime(s)
            | Value::TimeSpan(s)
            | Value::Guid(s)
            | Value::Uri(s)
            | Value::Version(s)
            | Value::Xml(s)
            | Value::ScriptBlock(s) => s.clone(),
            Value::SecureString(_) => "System.Security.SecureString".into(),
            Value::Char(c) => c.to_string(),
            Value::U8(v) => v.to_string(),
            Value::I8(v) => v.to_string(),
            Value::U16(v) => v.to_string(),
            Value::I16(v) => v.to_string(),
            Value::U32(v) => v.to_string(),
            Value::I32(v) => v.to_string(),
            Value::U64(v) => v.to_string(),
            Value::I64(v) => v.to_string(),
            Value::Single(v) => v.to_string(),
            Value::Double(v) => v.to_string(),
            Value::Bytes(b) => b.iter().map(u8::to_string).collect::<Vec<_>>().join(" "),
            Value::Object(o) => {
                if let Some(s) = &o.to_string {
                    s.clone()
                } else if let Some(v) = &o.value {
                    v.display()
                } else if let Some(l) = &o.list {
                    l.iter().map(Value::display).collect::<Vec<_>>().join(" ")
                } else {
                    o.type_names
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "System.Management.Automation.PSCustomObject".into())
                }
            }
        }
    }
}

/// The value as PowerShell's client hands it to a script: objects that it does not
/// rehydrate into live types (property bags, not records, collections or enums) get the
/// `Deserialized.` prefix on every type name, as `Import-PSSession` and
/// `Invoke-Command` show them. The wire carries the server's own type names.
pub fn deserialized(v: &Value) -> Value {
    let Value::Object(o) = v else {
        return v.clone();
    };
    let live = o.list.is_some()
        || o.dict.is_some()
        || o.value
            .as_ref()
            .is_some_and(|v| !matches!(v, Value::Object(_)))
        || o.type_names.is_empty()
        || o.type_names.iter().any(|t| {
            t.starts_with("Deserialized.")
                || t.starts_with("System.Management.Automation.") && t.ends_with("Record")
        });
    let mut copy = PsObject::clone(o);
    if !live {
        copy.type_names = o
            .type_names
            .iter()
            .map(|t| format!("Deserialized.{t}"))
            .collect();
    }
    for (_, v) in copy.adapted.iter_mut().chain(copy.extended.iter_mut()) {
        *v = deserialized(v);
    }
    if let Some(l) = copy.list.as_mut() {
        for v in l.iter_mut() {
            *v = deserialized(v);
        }
    }
    Value::Object(Arc::new(copy))
}

// ---------------------------------------------------------------------------------------
// Writing.

/// Serializes one value as a top-level element (no `N`).
pub fn to_clixml(v: &Value) -> String {
    let mut w = Writer::default();
    let mut out = String::new();
    w.value(&mut out, None, v);
    out
}

#[derive(Default)]
struct Writer {
    next_ref: u32,
    type_refs: HashMap<Vec<String>, u32>,
}

impl Writer {
    fn value(&mut self, out: &mut String, name: Option<&str>, v: &Value) {
        let n = match name {
            Some(n) => format!(" N=\"{}\"", escape_attr(n)),
            None => String::new(),
        };
        let simple = |out: &mut String, tag: &str, text: &str| {
            out.push_str(&format!("<{tag}{n}>{text}</{tag}>"));
        };
        match v {
            Value::Nil => out.push_str(&format!("<Nil{n} />")),
            Value::Bool(b) => simple(out, "B", if *b { "true" } else { "false" }),
            Value::Str(s) => simple(out, "S", &escape_text(s)),
            Value::Char(c) => simple(out, "C", &(*c as u32).to_string()),
            Value::U8(x) => simple(out, "By", &x.to_string()),
            Value::I8(x) => simple(out, "SB", &x.to_string()),
            Value::U16(x) => simple(out, "U16", &x.to_string()),
            Value::I16(x) => simple(out, "I16", &x.to_string()),
            Value::U32(x) => simple(out, "U32", &x.to_string()),
            Value::I32(x) => simple(out, "I32", &x.to_string()),
            Value::U64(x) => simple(out, "U64", &x.to_string()),
            Value::I64(x) => simple(out, "I64", &x.to_string()),
            Value::Single(x) => simple(out, "Sg", &x.to_string()),
            Value::Double(x) => simple(out, "Db", &x.to_string()),
            Value::Decimal(s) => simple(out, "D", &escape_text(s)),
            Value::DateTime(s) => simple(out, "DT", &escape_text(s)),
            Value::TimeSpan(s) => simple(out, "TS", &escape_text(s)),
            Value::Guid(s) => simple(out, "G", &escape_text(s)),
            Value::Uri(s) => simple(out, "URI", &escape_text(s)),
            Value::Version(s) => simple(out, "Version", &escape_text(s)),
            Value::Bytes(b) => simple(out, "BA", &B64.encode(b)),
            Value::Xml(s) => simple(out, "XD", &escape_text(s)),
            Value::ScriptBlock(s) => simple(out, "SBK", &escape_text(s)),
            Value::SecureString(s) => simple(out, "SS", &escape_text(s)),
            Value::Object(o) => self.object(out, &n, o),
        }
    }

    fn object(&mut self, out: &mut String, n: &str, o: &PsObject) {
        let id = self.next_ref;
        self.next_ref += 1;
        out.push_str(&format!("<Obj{n} RefId=\"{id}\">"));
        if !o.type_names.is_empty() {
            if let Some(tid) = self.type_refs.get(&o.type_names) {
                out.push_str(&format!("<TNRef RefId=\"{tid}\" />"));
            } else {
                let tid = self.type_refs.len() as u32;
                self.type_refs.insert(o.type_names.clone(), tid);
                out.push_str(&format!("<TN RefId=\"{tid}\">"));
                for t in &o.type_names {
                    out.push_str(&format!("<T>{}</T>", escape_text(t)));
                }
                out.push_str("</TN>");
            }
        }
        if let Some(s) = &o.to_string {
            out.push_str(&format!("<ToString>{}</ToString>", escape_text(s)));
        }
        if let Some(v) = &o.value {
            self.value(out, None, v);
        }
        if let Some(l) = &o.list {
            if l.is_empty() {
                out.push_str("<LST />");
            } else {
                out.push_str("<LST>");
                for v in l {
                    self.value(out, None, v);
                }
                out.push_str("</LST>");
            }
        }
        if let Some(d) = &o.dict {
            out.push_str("<DCT>");
            for (k, v) in d {
                out.push_str("<En>");
                self.value(out, Some("Key"), k);
                self.value(out, Some("Value"), v);
                out.push_str("</En>");
            }
            out.push_str("</DCT>");
        }
        if !o.adapted.is_empty() {
            out.push_str("<Props>");
            for (k, v) in &o.adapted {
                self.value(out, Some(k), v);
            }
            out.push_str("</Props>");
        }
        if !o.extended.is_empty() {
            out.push_str("<MS>");
            for (k, v) in &o.extended {
                self.value(out, Some(k), v);
            }
            out.push_str("</MS>");
        }
        out.push_str("</Obj>");
    }
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// XML-escapes `s` and applies PowerShell's `_xHHHH_` escapes to what XML cannot carry
/// (control characters, lone surrogates cannot occur in Rust strings) and to a literal
/// `_x` so that it reads back as itself.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '_' if chars.peek() == Some(&'x') => out.push_str("_x005F_"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                out.push_str(&format!("_x{:04X}_", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Reading.

#[derive(Debug, Default)]
struct Node {
    name: String,
    n: Option<String>,
    ref_id: Option<String>,
    children: Vec<Node>,
    text: String,
}

fn start(e: &BytesStart<'_>) -> Result<Node, Error> {
    let mut node = Node {
        name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
        ..Node::default()
    };
    for a in e.attributes() {
        let a = a.map_err(|e| Error::Clixml(e.to_string()))?;
        let v = a
            .unescape_value()
            .map_err(|e| Error::Clixml(e.to_string()))?
            .into_owned();
        match a.key.local_name().as_ref() {
            b"N" => node.n = Some(exctl_pwsh::clixml::decode_escapes(&v)),
            b"RefId" => node.ref_id = Some(v),
            _ => {}
        }
    }
    Ok(node)
}

fn tree(text: &str) -> Result<Node, Error> {
    let text = text.trim_start_matches('\u{FEFF}');
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Node> = Vec::new();
    let mut count = 0usize;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| Error::Clixml(e.to_string()))?;
        match ev {
            Event::Start(e) => {
                count += 1;
                if stack.len() >= MAX_DEPTH || count > MAX_ELEMENTS {
                    return Err(Error::Clixml("nested too deeply or too large".into()));
                }
                stack.push(start(&e)?);
            }
            Event::Empty(e) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(Error::Clixml("too large".into()));
                }
                let node = start(&e)?;
                match stack.last_mut() {
                    Some(p) => p.children.push(node),
                    None => return Ok(node),
                }
            }
            Event::End(_) => {
                let Some(node) = stack.pop() else {
                    return Err(Error::Clixml("end tag without a start".into()));
                };
                match stack.last_mut() {
                    Some(p) => p.children.push(node),
                    None => return Ok(node),
                }
            }
            Event::Text(t) => {
                let s = t
                    .xml10_content()
                    .map_err(|e| Error::Clixml(e.to_string()))?;
                if let Some(p) = stack.last_mut() {
                    p.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                let s = t
                    .xml10_content()
                    .map_err(|e| Error::Clixml(e.to_string()))?;
                if let Some(p) = stack.last_mut() {
                    p.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                let c = match r
                    .resolve_char_ref()
                    .map_err(|e| Error::Clixml(e.to_string()))?
                {
                    Some(c) => c,
                    None => match r
                        .decode()
                        .map_err(|e| Error::Clixml(e.to_string()))?
                        .as_ref()
                    {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => return Err(Error::Clixml(format!("unknown entity &{other};"))),
                    },
                };
                if let Some(p) = stack.last_mut() {
                    p.text.push(c);
                }
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            Event::Eof => return Err(Error::Clixml("the document ends early".into())),
        }
    }
}

/// Reads one top-level CLIXML element (a message's data).
pub fn parse(text: &str) -> Result<Value, Error> {
    let root = tree(text)?;
    let mut r = Resolver::default();
    r.value(&root, 0)
}

/// Reads a PSRP message's data, which is always an object, into its object.
pub fn parse_object(text: &str) -> Result<Arc<PsObject>, Error> {
    match parse(text)? {
        Value::Object(o) => Ok(o),
        other => Err(Error::Clixml(format!(
            "expected an object, found {}",
            other.display()
        ))),
    }
}

#[derive(Default)]
struct Resolver {
    objects: HashMap<String, Arc<PsObject>>,
    types: HashMap<String, Vec<String>>,
}

fn num<T: std::str::FromStr>(n: &Node) -> Result<T, Error> {
    n.text
        .trim()
        .parse()
        .map_err(|_| Error::Clixml(format!("<{}> holds '{}'", n.name, n.text.trim())))
}

impl Resolver {
    fn value(&mut self, n: &Node, depth: usize) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            return Err(Error::Clixml("nested too deeply".into()));
        }
        let text = || exctl_pwsh::clixml::decode_escapes(&n.text);
        Ok(match n.name.as_str() {
            "Nil" => Value::Nil,
            "B" => Value::Bool(n.text.trim().eq_ignore_ascii_case("true")),
            "S" => Value::Str(text()),
            "C" => {
                let u: u32 = num(n)?;
                Value::Char(char::from_u32(u).unwrap_or('\u{FFFD}'))
            }
            "By" => Value::U8(num(n)?),
            "SB" => Value::I8(num(n)?),
            "U16" => Value::U16(num(n)?),
            "I16" => Value::I16(num(n)?),
            "U32" => Value::U32(num(n)?),
            "I32" => Value::I32(num(n)?),
            "U64" => Value::U64(num(n)?),
            "I64" => Value::I64(num(n)?),
            "Sg" => Value::Single(num(n)?),
            "Db" => Value::Double(num(n)?),
            "D" => Value::Decimal(text()),
            "DT" => Value::DateTime(text()),
            "TS" => Value::TimeSpan(text()),
            "G" => Value::Guid(text()),
            "URI" => Value::Uri(text()),
            "Version" => Value::Version(text()),
            "XD" => Value::Xml(text()),
            "SBK" => Value::ScriptBlock(text()),
            "SS" => Value::SecureString(n.text.trim().to_string()),
            "BA" => Value::Bytes(
                B64.decode(n.text.trim())
                    .map_err(|e| Error::Clixml(format!("<BA> is not base64: {e}")))?,
            ),
            "Ref" => {
                let id = n.ref_id.as_deref().unwrap_or_default();
                let o = self
                    .objects
                    .get(id)
                    .ok_or_else(|| Error::Clixml(format!("<Ref RefId=\"{id}\"> to no object")))?;
                Value::Object(o.clone())
            }
            "Obj" => Value::Object(self.object(n, depth)?),
            other => return Err(Error::Clixml(format!("unknown element <{other}>"))),
        })
    }

    fn object(&mut self, n: &Node, depth: usize) -> Result<Arc<PsObject>, Error> {
        let mut o = PsObject::default();
        for c in &n.children {
            match c.name.as_str() {
                "TN" => {
                    o.type_names = c
                        .children
                        .iter()
                        .filter(|t| t.name == "T")
                        .map(|t| exctl_pwsh::clixml::decode_escapes(&t.text))
                        .collect();
                    if let Some(id) = &c.ref_id {
                        self.types.insert(id.clone(), o.type_names.clone());
                    }
                }
                "TNRef" => {
                    let id = c.ref_id.as_deref().unwrap_or_default();
                    o.type_names = self.types.get(id).cloned().ok_or_else(|| {
                        Error::Clixml(format!("<TNRef RefId=\"{id}\"> to no type names"))
                    })?;
                }
                "ToString" => o.to_string = Some(exctl_pwsh::clixml::decode_escapes(&c.text)),
                "Props" | "MS" => {
                    let mut props = Vec::with_capacity(c.children.len());
                    for p in &c.children {
                        let name = p.n.clone().unwrap_or_default();
                        props.push((name, self.value(p, depth + 1)?));
                    }
                    if c.name == "Props" {
                        o.adapted = props;
                    } else {
                        o.extended = props;
                    }
                }
                "LST" | "IE" | "STK" | "QUE" => {
                    let mut items = Vec::with_capacity(c.children.len());
                    for i in &c.children {
                        items.push(self.value(i, depth + 1)?);
                    }
                    o.list = Some(items);
                }
                "DCT" => {
                    let mut entries = Vec::with_capacity(c.children.len());
                    for en in c.children.iter().filter(|e| e.name == "En") {
                        let mut k = Value::Nil;
                        let mut v = Value::Nil;
                        for kv in &en.children {
                            match kv.n.as_deref() {
                                Some("Key") => k = self.value(kv, depth + 1)?,
                                Some("Value") => v = self.value(kv, depth + 1)?,
                                _ => {}
                            }
                        }
                        entries.push((k, v));
                    }
                    o.dict = Some(entries);
                }
                _ => o.value = Some(self.value(c, depth + 1)?),
            }
        }
        let o = Arc::new(o);
        if let Some(id) = &n.ref_id {
            self.objects.insert(id.clone(), o.clone());
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_and_type_refs_resolve() {
        let x = r#"<Obj RefId="0"><TN RefId="0"><T>System.ServiceProcess.ServiceController</T><T>System.Object</T></TN><ToString>winrm</ToString><Props><Obj N="ServicesDependedOn" RefId="2"><TN RefId="1"><T>System.ServiceProcess.ServiceController[]</T></TN><LST><S>RPCSS</S><S>HTTP</S></LST></Obj><S N="Status">Running</S></Props><MS><S N="Name">winrm</S><Ref N="RequiredServices" RefId="2" /><Obj N="Other" RefId="3"><TNRef RefId="0" /></Obj></MS></Obj>"#;
        let v = parse(x).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o.to_string.as_deref(), Some("winrm"));
        let req = o.property("requiredservices").unwrap().as_object().unwrap();
        assert_eq!(req.list.as_ref().unwrap().len(), 2);
        let other = o.property("Other").unwrap().as_object().unwrap();
        assert_eq!(
            other.type_names[0],
            "System.ServiceProcess.ServiceController"
        );
    }

    #[test]
    fn escapes_round_trip() {
        let s = "line\r\nnext _x000A_ <&> \u{1F600} tab\t";
        let v = Value::str(s);
        assert_eq!(parse(&to_clixml(&v)).unwrap(), v);
        let decoded = parse("<S>a_x000D__x000A_b _xD83D__xDE00_</S>").unwrap();
        assert_eq!(decoded, Value::str("a\r\nb \u{1F600}"));
    }

    #[test]
    fn objects_round_trip() {
        let inner = PsObject {
            type_names: vec!["System.Enum".into()],
            to_string: Some("Two".into()),
            value: Some(Value::I32(2)),
            ..PsObject::default()
        };
        let o = PsObject {
            type_names: vec![
                "Deserialized.Microsoft.Exchange.Data.Directory.Management.Mailbox".into(),
            ],
            to_string: Some("x".into()),
            extended: vec![
                ("Size".into(), Value::str("2 GB (2,147,483,648 bytes)")),
                ("E".into(), Value::object(inner.clone())),
                ("F".into(), Value::object(inner)),
                ("D".into(), Value::Double(1.5)),
                ("T".into(), Value::TimeSpan("PT1H".into())),
            ],
            dict: Some(vec![(Value::str("k"), Value::I64(-4))]),
            list: Some(vec![
                Value::Nil,
                Value::Bool(true),
                Value::Bytes(vec![1, 2]),
            ]),
            ..PsObject::default()
        };
        let v = Value::object(o);
        let text = to_clixml(&v);
        assert!(text.contains("<TNRef RefId=\"1\" />"), "{text}");
        assert_eq!(parse(&text).unwrap(), v);
    }

    #[test]
    fn hostile_input_is_refused_not_panicked_on() {
        for x in [
            "",
            "<Obj>",
            "<Ref RefId=\"9\" />",
            "<I32>x</I32>",
            "<Obj RefId=\"0\"><TNRef RefId=\"4\"/></Obj>",
            "<Unknown/>",
            "<S>&bogus;</S>",
        ] {
            assert!(parse(x).is_err(), "{x}");
        }
        let deep = "<Obj><LST>".repeat(200);
        assert!(parse(&deep).is_err());
    }
}
