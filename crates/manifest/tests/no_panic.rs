//! Hostile input: whatever the text, loading, reading and rendering must not
//! panic, and every span must point inside its file on character boundaries.

use exctl_manifest::{
    Diagnostics, MapReader, Node, NodeKind, SourceMap, Span, ValueReader, check_secrets, parse_str,
    render, render_json, render_short,
};
use proptest::prelude::*;

const VALID: &str = "\
# UCCX baseline
site: lon
hosts:
  - name: ex1.example.com
    roles: [mailbox, cas]
imap_settings:
  MaxConnectionsPerUser: 40
  MaxConnectionFromSingleIP: '2000'
  AuthenticatedConnectionTimeout: 00:30:00
  Banner: \"IMAP4 ready\"
  ProtocolLogEnabled: yes
throttling:
  uccx:
    IMAPMaxConcurrency: ~
    EWSMaxConcurrency: unlimited
    CPUStartPercent: 75
receive_connector:
  MaxMessageSize: 10 MB (10,485,760 bytes)
  MaxInboundConnection: unlimited
  credential: keyring:svc
  password: hunter2
notes: |
  multi
  line
---
second: {a: [1, 2.5, -3, 0x1F], b: null}
";

fn check_span(sources: &SourceMap, span: &Span) {
    let text = &sources.get(span.file).expect("span file exists").text;
    assert!(span.start.offset <= span.end.offset, "{span:?}");
    assert!(
        span.end.offset <= text.len(),
        "{span:?} past {}",
        text.len()
    );
    assert!(text.is_char_boundary(span.start.offset), "{span:?}");
    assert!(text.is_char_boundary(span.end.offset), "{span:?}");
    assert!(span.start.line >= 1 && span.start.column >= 1, "{span:?}");
}

fn check_tree(sources: &SourceMap, node: &Node) {
    check_span(sources, &node.span);
    match &node.kind {
        NodeKind::Seq(items) => items.iter().for_each(|n| check_tree(sources, n)),
        NodeKind::Map(entries) => {
            for (k, v) in entries {
                check_span(sources, &k.span);
                check_tree(sources, v);
            }
        }
        _ => {}
    }
}

/// Reads every value with every reader, as a careless resource kind might.
fn read_everything(node: &Node, path: &str, diags: &mut Diagnostics) {
    let keys: Vec<String> = node
        .as_map()
        .map(|m| m.iter().map(|(k, _)| k.text.clone()).collect())
        .unwrap_or_default();
    let Some(mut m) = MapReader::new(node, path, diags) else {
        return;
    };
    for (i, key) in keys.iter().enumerate() {
        let Some(child) = m.node_of(key) else {
            continue;
        };
        let what = format!("{path}.{key}");
        let d = m.diags();
        match i % 12 {
            0 => drop(ValueReader::new(child, &what, d).string()),
            1 => drop(ValueReader::new(child, &what, d).bool()),
            2 => drop(ValueReader::new(child, &what, d).int_in_range(1..=25000)),
            3 => drop(ValueReader::new(child, &what, d).unlimited_int(0..=i64::MAX)),
            4 => drop(ValueReader::new(child, &what, d).nullable_int(0..=100)),
            5 => drop(ValueReader::new(child, &what, d).one_of(&["None", "All"])),
            6 => drop(ValueReader::new(child, &what, d).string_list()),
            7 => drop(ValueReader::new(child, &what, d).timespan()),
            8 => drop(ValueReader::new(child, &what, d).unlimited_byte_quantity(0..=u64::MAX)),
            9 => drop(ValueReader::new(child, &what, d).credential()),
            10 => drop(ValueReader::new(child, &what, d).list_of(|v| v.int())),
            _ => read_everything(child, &what, d),
        }
    }
    m.finish_with_known(&["MaxConnectionsPerUser", "Banner"]);
}

fn exercise(text: &str) {
    let (sources, docs, mut diags) = parse_str("fuzz.yaml", text.to_owned());
    for doc in &docs {
        check_tree(&sources, &doc.root);
        check_secrets(&doc.root, &mut diags);
        read_everything(&doc.root, "root", &mut diags);
    }
    for d in &diags {
        if let Some(s) = &d.span {
            check_span(&sources, s);
        }
        for (s, _) in &d.related {
            check_span(&sources, s);
        }
    }
    diags.sort();
    let _ = render(&sources, &diags, true);
    let plain = render(&sources, &diags, false);
    assert!(!plain.contains('\x1b'));
    let _ = render_short(&sources, &diags);
    let _ = render_json(&sources, &diags);
    diags.promote_warnings();
}

/// One edit of the valid text, at a position given as a fraction of its length.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, char),
    Delete(usize),
    Replace(usize, char),
    Duplicate(usize, usize),
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        let len = chars.len().max(1);
        match *edit {
            Edit::Insert(at, c) => chars.insert(at % (len + 1).min(chars.len() + 1), c),
            Edit::Delete(at) if !chars.is_empty() => {
                chars.remove(at % chars.len());
            }
            Edit::Replace(at, c) if !chars.is_empty() => {
                let i = at % chars.len();
                chars[i] = c;
            }
            Edit::Duplicate(at, n) if !chars.is_empty() => {
                let i = at % chars.len();
                let end = (i + n % 40).min(chars.len());
                let piece: Vec<char> = chars[i..end].to_vec();
                chars.splice(i..i, piece);
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

fn yaml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(vec![
            ':', '-', ' ', '\n', '\t', '\r', '[', ']', '{', '}', ',', '&', '*', '!', '|', '>',
            '\'', '"', '#', '%', '@', '`', '?', '~', '.', '\\', '0', 'a', 'é', '\u{feff}',
            '\u{2028}',
        ]),
        any::<char>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), yaml_char()).prop_map(|(a, c)| Edit::Insert(a, c)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), yaml_char()).prop_map(|(a, c)| Edit::Replace(a, c)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, n)| Edit::Duplicate(a, n)),
    ]
}

// 256 cases each by default; set PROPTEST_CASES for a longer run.
proptest! {

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        exercise(&text);
    }

    #[test]
    fn yaml_alphabet_strings_never_panic(chars in prop::collection::vec(yaml_char(), 0..300)) {
        let text: String = chars.into_iter().collect();
        exercise(&text);
    }

    #[test]
    fn mutated_valid_yaml_never_panics(edits in prop::collection::vec(edit(), 1..8)) {
        exercise(&apply(VALID, &edits));
    }
}

#[test]
fn the_valid_sample_reads_with_expected_findings() {
    let (_, docs, mut diags) = parse_str("fuzz.yaml", VALID);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(docs.len(), 2);
    check_secrets(&docs[0].root, &mut diags);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags.as_slice()[0].code, "manifest::secret-in-clear");
}

#[test]
fn pathological_inputs() {
    for text in [
        "",
        "\u{feff}",
        "---",
        "...",
        "- - - - - -",
        "? ? ? ?",
        "&a [*a]",
        "*a",
        "!<tag:x> 1",
        "%YAML 1.2\n---\na: 1",
        "%TAG ! tag:x,2000:\n--- !a\nb: 1",
        "a: 'unterminated",
        "a: \"\\u12\"",
        "\r\r\r\n\n",
        "{a: 1, a: 2, [x]: 3, ? b}",
        "a:\n  - b\n  c: d",
        "\u{2028}a: 1\u{2029}",
    ] {
        exercise(text);
    }
    exercise(&"[".repeat(300_000));
    exercise(&"{a: ".repeat(10_000));
    exercise(&"- ".repeat(10_000));
    exercise(&format!("a: {}", "x".repeat(1_000_000)));
    exercise(&"a: 1\n".repeat(20_000));
}
