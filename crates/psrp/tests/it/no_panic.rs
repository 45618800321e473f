//! Generated input for what the PSRP client reads from a server: arbitrary and mutated
//! fragments, message headers and CLIXML never panic, and what is built reads back as
//! built (fragments at any size, CLIXML values of any shape).

use exctl_psrp::clixml::{self, PsObject, Value};
use exctl_psrp::fragment::{self, Defragmenter, Fragmenter};
use exctl_psrp::message::Message;
use exctl_psrp::protocol;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Any text, control characters and `_x` sequences included: they must survive.
    prop_oneof!["\\PC{0,30}", "[_x0-9A-F\r\n\t<>&\"']{0,20}"]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        text().prop_map(Value::Str),
        any::<i32>().prop_map(Value::I32),
        any::<i64>().prop_map(Value::I64),
        any::<u64>().prop_map(Value::U64),
        any::<u8>().prop_map(Value::U8),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
        text().prop_map(Value::TimeSpan),
        (-1e12f64..1e12).prop_map(Value::Double),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        (
            proptest::collection::vec("[A-Za-z.]{1,12}", 0..3),
            proptest::option::of(text()),
            proptest::collection::vec(("[A-Za-z]{1,8}", inner.clone()), 0..4),
            proptest::option::of(proptest::collection::vec(inner.clone(), 0..4)),
            proptest::option::of(proptest::collection::vec((inner.clone(), inner), 0..3)),
        )
            .prop_map(|(type_names, to_string, extended, list, dict)| {
                Value::object(PsObject {
                    type_names,
                    to_string,
                    extended,
                    list,
                    dict,
                    ..PsObject::default()
                })
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn clixml_round_trips(v in value()) {
        let text = clixml::to_clixml(&v);
        let back = clixml::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        prop_assert_eq!(back, v);
    }

    #[test]
    fn fragments_round_trip_at_any_size(msg in proptest::collection::vec(any::<u8>(), 0..3000), max in 22usize..600) {
        let mut f = Fragmenter::new();
        let mut wire = Vec::new();
        for fr in f.fragment(&msg, max) {
            fr.encode(&mut wire);
        }
        let mut d = Defragmenter::new();
        let mut got = None;
        for fr in fragment::decode_all(&wire).map_err(|e| TestCaseError::fail(e.to_string()))? {
            if let Some(m) = d.push(fr).map_err(|e| TestCaseError::fail(e.to_string()))? {
                got = Some(m);
            }
        }
        prop_assert_eq!(got, Some(msg));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(frags) = fragment::decode_all(&bytes) {
            let mut d = Defragmenter::new();
            for f in frags {
                if let Ok(Some(m)) = d.push(f) {
                    let _ = Message::decode(&m);
                }
            }
        }
        if let Ok(m) = Message::decode(&bytes) {
            let _ = protocol::read_event(&m);
        }
        let _ = clixml::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_clixml_never_panics(
        v in value(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = clixml::to_clixml(&v).into_bytes();
        for (i, b) in edits {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(bytes.len()));
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(v) = clixml::parse(&text) {
            let _ = (v.display(), clixml::deserialized(&v), protocol::ErrorRecord::from_value(&v).render());
        }
    }
}

#[test]
fn references_cannot_multiply_memory() {
    // Each object refers twice to the one before: shared, not copied.
    let mut x = String::from("<Obj RefId=\"0\"><MS><I32 N=\"a\">1</I32></MS></Obj>");
    for i in 1..40 {
        x = format!(
            "<Obj RefId=\"{i}\"><MS>{x}<Ref N=\"b\" RefId=\"{}\" /></MS></Obj>",
            i - 1
        );
    }
    assert!(clixml::parse(&x).is_ok());
}
