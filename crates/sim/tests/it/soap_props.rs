//! What clients send the simulator, with generated input: request envelopes built from
//! arbitrary values (any namespace prefixes, escaped text) read back as those values;
//! arbitrary or mutated envelopes and sealed bodies never panic; the framing round-trips.

use exctl_sim::framing;
use exctl_sim::soap::{self, action};
use exctl_sim::xml::{escape_attr, escape_text};
use proptest::prelude::*;

const NS_S: &str = "http://www.w3.org/2003/05/soap-envelope";
const NS_A: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
const NS_W: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";

fn prefix() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,4}"
}

/// Text without characters XML 1.0 cannot carry; surrounding whitespace (Unicode's, too)
/// is trimmed by the reader, so the generator puts none at either end.
fn value() -> impl Strategy<Value = String> {
    "[!-~\u{a1}-\u{167f}]([^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{fffe}\u{ffff}\r]{0,30}[!-~\u{a1}-\u{167f}])?"
}

#[derive(Debug, Clone)]
struct Fields {
    action: String,
    message_id: String,
    selectors: Vec<(String, String)>,
    options: Vec<(String, String)>,
    seconds: u32,
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        prop_oneof![
            Just(action::CREATE.to_string()),
            Just(action::COMMAND.to_string()),
            Just(action::RECEIVE.to_string()),
            value(),
        ],
        value(),
        proptest::collection::vec(("[A-Za-z_]{1,12}", value()), 0..4),
        proptest::collection::vec(("[A-Za-z_]{1,16}", value()), 0..4),
        0u32..100_000,
    )
        .prop_map(|(action, message_id, selectors, options, seconds)| Fields {
            action,
            message_id,
            selectors,
            options,
            seconds,
        })
}

fn build(f: &Fields, s: &str, a: &str, w: &str) -> String {
    let mut header = format!(
        "<{a}:Action {s}:mustUnderstand=\"true\">{}</{a}:Action><{a}:MessageID>{}</{a}:MessageID><{w}:OperationTimeout>PT{}S</{w}:OperationTimeout>",
        escape_text(&f.action),
        escape_text(&f.message_id),
        f.seconds
    );
    header.push_str(&format!("<{w}:SelectorSet>"));
    for (k, v) in &f.selectors {
        header.push_str(&format!(
            "<{w}:Selector Name=\"{}\">{}</{w}:Selector>",
            escape_attr(k),
            escape_text(v)
        ));
    }
    header.push_str(&format!("</{w}:SelectorSet><{w}:OptionSet>"));
    for (k, v) in &f.options {
        header.push_str(&format!(
            "<{w}:Option Name=\"{}\">{}</{w}:Option>",
            escape_attr(k),
            escape_text(v)
        ));
    }
    header.push_str(&format!("</{w}:OptionSet>"));
    format!(
        "<{s}:Envelope xmlns:{s}=\"{NS_S}\" xmlns:{a}=\"{NS_A}\" xmlns:{w}=\"{NS_W}\"><{s}:Header>{header}</{s}:Header><{s}:Body><rsp:Shell xmlns:rsp=\"urn:x\"/></{s}:Body></{s}:Envelope>"
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn request_envelopes_round_trip(f in fields(), s in prefix(), a in prefix(), w in prefix()) {
        prop_assume!(s != a && a != w && s != w);
        let xml = build(&f, &s, &a, &w);
        let req = soap::parse_request(xml.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}: {xml}")))?;
        prop_assert_eq!(&req.action, &f.action);
        prop_assert_eq!(req.message_id.as_deref(), Some(f.message_id.as_str()));
        prop_assert_eq!(&req.selectors, &f.selectors);
        prop_assert_eq!(&req.options, &f.options);
        prop_assert_eq!(req.operation_timeout.map(|d| d.as_secs()), Some(u64::from(f.seconds)));
        prop_assert!(!req.bad_operation_timeout);
        prop_assert_eq!(req.body.map(|b| b.name), Some("Shell".to_string()));
    }

    #[test]
    fn mutated_envelopes_never_panic(
        f in fields(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = build(&f, "s", "a", "w").into_bytes();
        for (i, v) in edits {
            let i = i.index(bytes.len());
            bytes[i] = v;
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(bytes.len()));
        }
        let _ = soap::parse_request(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = soap::parse_request(&bytes);
        let _ = framing::parse(&bytes);
        let _ = soap::parse_duration(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn durations_never_panic(s in "P[0-9.YMDTHS]{0,24}") {
        if let Some(d) = soap::parse_duration(&s) {
            prop_assert!(d.as_secs_f64() <= 1e9);
        }
    }

    #[test]
    fn framing_round_trips_and_survives_mutation(
        parts in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 16), proptest::collection::vec(any::<u8>(), 0..600)),
            1..3,
        ),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
    ) {
        let mut body = Vec::new();
        for (i, (sig, sealed)) in parts.iter().enumerate() {
            let mut one = framing::build(sealed.len(), sig, sealed);
            if i + 1 < parts.len() {
                // Several messages in one body: drop all but the last closing boundary.
                one.truncate(one.len() - b"--Encrypted Boundary--\r\n".len());
            }
            body.extend_from_slice(&one);
        }
        let back = framing::parse(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.len(), parts.len());
        for (got, (sig, sealed)) in back.iter().zip(&parts) {
            prop_assert_eq!(got.signature, sig.as_slice());
            prop_assert_eq!(got.sealed, sealed.as_slice());
        }
        let mut mutated = body.clone();
        for (i, v) in edits {
            let i = i.index(mutated.len());
            mutated[i] = v;
        }
        if let Ok(found) = framing::parse(&mutated) {
            for p in found {
                prop_assert!(p.signature.len() + p.sealed.len() <= mutated.len());
            }
        }
    }
}
