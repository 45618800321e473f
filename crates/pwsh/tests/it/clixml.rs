//! CLIXML on stderr: the recorded fixtures, hand-made samples of every stream, escapes,
//! malformed input, and a property that no input makes the decoder panic.

use exctl_pwsh::clixml::{ClixmlError, MAX_DEPTH, decode_escapes, decode_stderr_bytes};
use exctl_pwsh::{ErrorRecord, Stderr, decode_stderr, is_clixml};
use proptest::prelude::*;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/clixml-recorded"
);

fn fixture(name: &str) -> String {
    let path = format!("{FIXTURES}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const NS: &str =
    r#"<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">"#;

/// A CLIXML stderr document holding `body`, as powershell.exe writes it.
fn doc(body: &str) -> String {
    format!("#< CLIXML\r\n{NS}{body}</Objs>")
}

/// `<S S="Error">` elements, one per line, as the console host writes a formatted error.
fn error_lines(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| format!(r#"<S S="Error">{l}_x000D__x000A_</S>"#))
        .collect()
}

const NOT_RECOGNIZED: &str = "fake : The term 'fake' is not recognized as the name of a cmdlet, \
    function, script file, or operable program. Check the spelling of the name, or if a path was \
    included, verify that the path is correct and try again.";

#[test]
fn recorded_error_fixture_yields_one_record() {
    let text = fixture("test_sanitise_clixml_with_error.xml");
    assert!(is_clixml(text.as_bytes()));
    let stderr = decode_stderr(&text).unwrap();
    assert_eq!(stderr.errors.len(), 1, "{stderr:#?}");
    let e = &stderr.errors[0];
    assert!(
        e.message
            .starts_with("fake : The term 'fake' is not recognized")
    );
    // The formatter wrapped the message after "Check "; the pieces are joined back.
    assert_eq!(e.message, NOT_RECOGNIZED);
    assert_eq!(
        e.category.as_deref(),
        Some("ObjectNotFound: (fake:String) [], CommandNotFoundException")
    );
    assert_eq!(
        e.fully_qualified_error_id.as_deref(),
        Some("CommandNotFoundException")
    );
    assert_eq!(
        e.position.as_deref(),
        Some("At line:1 char:1\n+ fake cmdlet\n+ ~~~~")
    );
    // Progress is dropped, nothing else is there.
    assert!(stderr.warnings.is_empty() && stderr.verbose.is_empty() && stderr.debug.is_empty());
    assert!(stderr.other_text.is_empty(), "{:?}", stderr.other_text);
}

#[test]
fn recorded_fixture_without_errors_yields_nothing() {
    let text = fixture("test_sanitise_clixml_with_no_errors.xml");
    assert!(is_clixml(text.as_bytes()));
    let stderr = decode_stderr(&text).unwrap();
    assert!(stderr.errors.is_empty());
    assert!(stderr.is_empty(), "{stderr:#?}");
}

#[test]
fn fixtures_decode_with_crlf_line_endings_too() {
    for name in [
        "test_sanitise_clixml_with_error.xml",
        "test_sanitise_clixml_with_no_errors.xml",
    ] {
        let lf = fixture(name);
        let crlf = lf.replace("\r\n", "\n").replace('\n', "\r\n");
        assert_eq!(decode_stderr(&crlf).unwrap(), decode_stderr(&lf).unwrap());
    }
}

#[test]
fn is_clixml_detects_the_marker_at_a_line_start() {
    assert!(is_clixml(b"#< CLIXML\r\n<Objs/>"));
    assert!(is_clixml(b"\xEF\xBB\xBF#< CLIXML\r\n<Objs/>"));
    assert!(is_clixml(b"native noise\r\n#< CLIXML\r\n<Objs/>"));
    assert!(!is_clixml(b""));
    assert!(!is_clixml(b"plain error text\r\n"));
    assert!(!is_clixml(b"text #< CLIXML"));
}

#[test]
fn plain_text_goes_to_other_text() {
    let stderr = decode_stderr("first line\r\n\r\nsecond line\r\n").unwrap();
    assert_eq!(stderr.other_text, ["first line", "second line"]);
    assert!(stderr.errors.is_empty());
    assert_eq!(decode_stderr("").unwrap(), Stderr::default());
}

#[test]
fn text_around_and_between_documents() {
    let input = format!(
        "before\r\n{}\r\nbetween\r\n{}after",
        doc(r#"<S S="warning">w1</S>"#),
        doc(r#"<S S="warning">w2</S>"#)
    );
    let stderr = decode_stderr(&input).unwrap();
    assert_eq!(stderr.warnings, ["w1", "w2"]);
    assert_eq!(stderr.other_text, ["before", "between", "after"]);
}

#[test]
fn warning_verbose_debug_streams() {
    let input = doc(concat!(
        r#"<S S="warning">careful_x000D__x000A_</S>"#,
        r#"<S S="Warning">Careful</S>"#,
        r#"<S S="verbose">saying more</S>"#,
        r#"<S S="debug">details &amp; more</S>"#,
        r#"<S S="information">info</S>"#,
        r#"<S>no stream</S>"#,
        r#"<Obj S="progress" RefId="0"><MS><I64 N="SourceId">1</I64></MS></Obj>"#,
    ));
    let stderr = decode_stderr(&input).unwrap();
    assert_eq!(stderr.warnings, ["careful", "Careful"]);
    assert_eq!(stderr.verbose, ["saying more"]);
    assert_eq!(stderr.debug, ["details & more"]);
    assert_eq!(stderr.other_text, ["info", "no stream"]);
    assert!(stderr.errors.is_empty());
}

#[test]
fn several_errors_separated_by_blank_lines() {
    let input = doc(&error_lines(&[
        "Get-Item : Cannot find path 'C:\\nope' because it does not exist.",
        "At line:2 char:9",
        "+ Get-Item &lt;&lt;&lt;&lt;  C:\\nope",
        "    + CategoryInfo          : ObjectNotFound: (C:\\nope:String) [Get-Item], ItemNotFoundException",
        "    + FullyQualifiedErrorId : PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand",
        " ",
        "boom",
        "At C:\\scripts\\x.ps1:3 char:6",
        "+ throw &lt;&lt;&lt;&lt;  'boom'",
        "    + CategoryInfo          : OperationStopped: (boom:String) [], RuntimeException",
        "    + FullyQualifiedErrorId : boom",
        " ",
    ]));
    let stderr = decode_stderr(&input).unwrap();
    assert_eq!(
        stderr.errors,
        [
            ErrorRecord {
                message: "Get-Item : Cannot find path 'C:\\nope' because it does not exist.".into(),
                category: Some(
                    "ObjectNotFound: (C:\\nope:String) [Get-Item], ItemNotFoundException".into()
                ),
                fully_qualified_error_id: Some(
                    "PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand".into()
                ),
                position: Some("At line:2 char:9\n+ Get-Item <<<<  C:\\nope".into()),
            },
            ErrorRecord {
                message: "boom".into(),
                category: Some("OperationStopped: (boom:String) [], RuntimeException".into()),
                fully_qualified_error_id: Some("boom".into()),
                position: Some("At C:\\scripts\\x.ps1:3 char:6\n+ throw <<<<  'boom'".into()),
            },
        ]
    );
}

#[test]
fn errors_without_blank_line_split_after_the_error_id() {
    let input = doc(&error_lines(&[
        "first",
        "    + CategoryInfo          : NotSpecified: (:) [], RuntimeException",
        "    + FullyQualifiedErrorId : One",
        "    + PSComputerName        : ex01",
        "second",
        "    + FullyQualifiedErrorId : Two",
    ]));
    let stderr = decode_stderr(&input).unwrap();
    let ids: Vec<_> = stderr
        .errors
        .iter()
        .map(|e| e.fully_qualified_error_id.as_deref())
        .collect();
    assert_eq!(ids, [Some("One"), Some("Two")]);
    assert_eq!(stderr.errors[0].message, "first");
    assert_eq!(stderr.errors[1].message, "second");
    assert_eq!(stderr.errors[1].category, None);
}

#[test]
fn error_written_as_one_element_by_the_bootstrap_trap() {
    // `$Host.UI.WriteErrorLine(($_|Out-String))`: the whole formatted record in one string.
    let text = "Set-Thing : A parameter cannot be found that matches parameter name 'Bogus'.\r\n\
                At line:1 char:18\r\n\
                + Set-Thing -Bogus &lt;&lt;&lt;&lt;  1\r\n    \
                + CategoryInfo          : InvalidArgument: (:) [Set-Thing], ParameterBindingException\r\n    \
                + FullyQualifiedErrorId : NamedParameterNotFound,Set-Thing\r\n\r\n\r\n";
    let escaped = text.replace("\r\n", "_x000D__x000A_");
    let stderr = decode_stderr(&doc(&format!(r#"<S S="Error">{escaped}</S>"#))).unwrap();
    assert_eq!(stderr.errors.len(), 1);
    let e = &stderr.errors[0];
    assert_eq!(
        e.message,
        "Set-Thing : A parameter cannot be found that matches parameter name 'Bogus'."
    );
    assert_eq!(
        e.position.as_deref(),
        Some("At line:1 char:18\n+ Set-Thing -Bogus <<<<  1")
    );
    assert_eq!(
        e.fully_qualified_error_id.as_deref(),
        Some("NamedParameterNotFound,Set-Thing")
    );
}

#[test]
fn message_that_merely_starts_with_at_is_not_a_position() {
    let input = doc(&error_lines(&[
        "At least one of the values is wrong.",
        "    + FullyQualifiedErrorId : X",
    ]));
    let e = &decode_stderr(&input).unwrap().errors[0];
    assert_eq!(e.message, "At least one of the values is wrong.");
    assert_eq!(e.position, None);
}

#[test]
fn multi_line_message_keeps_its_line_breaks() {
    let input = doc(&error_lines(&[
        "line one",
        "line two",
        "    + FullyQualifiedErrorId : X",
    ]));
    assert_eq!(
        decode_stderr(&input).unwrap().errors[0].message,
        "line one\nline two"
    );
}

#[test]
fn plain_error_lines_without_details() {
    let input = doc(r#"<S S="Error">just text_x000D__x000A_</S>"#);
    let stderr = decode_stderr(&input).unwrap();
    assert_eq!(
        stderr.errors,
        [ErrorRecord {
            message: "just text".into(),
            ..ErrorRecord::default()
        }]
    );
}

#[test]
fn serialized_error_record_objects() {
    // PSRP-style, hand-made: the type names, ToString and the flattened members.
    let input = doc(concat!(
        r#"<Obj S="error" RefId="0">"#,
        r#"<TN RefId="0"><T>System.Management.Automation.ErrorRecord</T><T>System.Object</T></TN>"#,
        r#"<ToString>The term 'fake' is not recognized.</ToString>"#,
        r#"<MS>"#,
        r#"<Obj N="Exception" RefId="1"><TN RefId="1"><T>System.Management.Automation.CommandNotFoundException</T></TN>"#,
        r#"<ToString>exception text</ToString><Props><S N="Message">exception message</S></Props></Obj>"#,
        r#"<Nil N="TargetObject" />"#,
        r#"<S N="FullyQualifiedErrorId">CommandNotFoundException</S>"#,
        r#"<I32 N="ErrorCategory_Category">13</I32>"#,
        r#"<S N="ErrorCategory_Message">ObjectNotFound: (fake:String) [], CommandNotFoundException</S>"#,
        r#"<B N="SerializeExtendedInfo">true</B>"#,
        r#"<S N="InvocationInfo_PositionMessage">At line:1 char:1_x000A_+ fake_x000A_+ ~~~~</S>"#,
        r#"</MS></Obj>"#,
        // The same type by reference, no stream attribute, details message preferred.
        r#"<Obj RefId="2"><TNRef RefId="0" /><ToString>plain</ToString><MS>"#,
        r#"<S N="ErrorDetails_Message">from details</S>"#,
        r#"<Obj N="InvocationInfo" RefId="3"><Props><S N="PositionMessage">At line:2 char:3</S></Props></Obj>"#,
        r#"</MS></Obj>"#,
        // Only the exception carries a message.
        r#"<Obj S="error" RefId="4"><MS><Obj N="Exception" RefId="5"><Props><S N="Message">inner</S></Props></Obj></MS></Obj>"#,
    ));
    let stderr = decode_stderr(&input).unwrap();
    assert_eq!(
        stderr.errors,
        [
            ErrorRecord {
                message: "The term 'fake' is not recognized.".into(),
                category: Some("ObjectNotFound: (fake:String) [], CommandNotFoundException".into()),
                fully_qualified_error_id: Some("CommandNotFoundException".into()),
                position: Some("At line:1 char:1\n+ fake\n+ ~~~~".into()),
            },
            ErrorRecord {
                message: "from details".into(),
                position: Some("At line:2 char:3".into()),
                ..ErrorRecord::default()
            },
            ErrorRecord {
                message: "inner".into(),
                ..ErrorRecord::default()
            },
        ]
    );
}

#[test]
fn informational_objects() {
    let input = doc(concat!(
        r#"<Obj S="warning" RefId="0"><ToString>warned</ToString></Obj>"#,
        r#"<Obj S="verbose" RefId="1"><MS><S N="InformationalRecord_Message">verbosely</S></MS></Obj>"#,
        r#"<Obj S="information" RefId="2"><ToString>informed</ToString></Obj>"#,
        r#"<Obj S="debug" RefId="3"><MS><Nil N="InformationalRecord_Message" /></MS></Obj>"#,
    ));
    let stderr = decode_stderr(&input).unwrap();
    assert_eq!(stderr.warnings, ["warned"]);
    assert_eq!(stderr.verbose, ["verbosely"]);
    assert_eq!(stderr.other_text, ["informed"]);
    assert!(stderr.debug.is_empty());
}

#[test]
fn escapes() {
    assert_eq!(decode_escapes("a_x000D__x000A_b"), "a\r\nb");
    // `_x005F_` is an underscore, so this is the literal text `_x000D_`.
    assert_eq!(decode_escapes("_x005F_x000D_"), "_x000D_");
    assert_eq!(decode_escapes("_xD83D__xDE00_"), "😀");
    assert_eq!(decode_escapes("_x0001F600_"), "😀");
    assert_eq!(decode_escapes("_xD83D_a"), "\u{FFFD}a");
    assert_eq!(decode_escapes("_xDE00_"), "\u{FFFD}");
    assert_eq!(decode_escapes("_xD83D_"), "\u{FFFD}");
    assert_eq!(decode_escapes("_xD83D__xD83D__xDE00_"), "\u{FFFD}😀");
    assert_eq!(
        decode_escapes("_x12_ _xZZZZ_ _x0041"),
        "_x12_ _xZZZZ_ _x0041"
    );
    assert_eq!(decode_escapes("snake_x_case"), "snake_x_case");
    assert_eq!(decode_escapes("_x0041__x0042_"), "AB");
    assert_eq!(decode_escapes("ü_x0009_ü"), "ü\tü");
}

#[test]
fn escapes_and_entities_through_the_decoder() {
    let input =
        doc(r#"<S S="warning">&lt;a&gt; &amp; &#x41;&#66; _x005F_x0041_ _xD83D__xDE00_</S>"#);
    assert_eq!(
        decode_stderr(&input).unwrap().warnings,
        ["<a> & AB _x0041_ 😀"]
    );
}

#[test]
fn bytes_are_read_as_utf8() {
    let mut bytes = doc(r#"<S S="warning">Zürich</S>"#).into_bytes();
    bytes.extend_from_slice(b"\r\n\xFF tail");
    let stderr = decode_stderr_bytes(&bytes).unwrap();
    assert_eq!(stderr.warnings, ["Zürich"]);
    assert_eq!(stderr.other_text, ["\u{FFFD} tail"]);
}

type Check = fn(&ClixmlError) -> bool;

#[test]
fn malformed_documents_are_errors() {
    let cases: [(&str, Check); 7] = [
        ("#< CLIXML\r\n<Objs><S S=\"Error\">x</Objs>", |e| {
            matches!(e, ClixmlError::Xml { .. })
        }),
        ("#< CLIXML\r\n<Objs><S>x", |e| {
            matches!(e, ClixmlError::Truncated { .. })
        }),
        ("#< CLIXML\r\n", |e| {
            matches!(e, ClixmlError::Truncated { .. })
        }),
        (
            "#< CLIXML\r\n<Foo/>",
            |e| matches!(e, ClixmlError::NotObjs { found, .. } if found == "Foo"),
        ),
        ("#< CLIXML\r\nhello", |e| {
            matches!(e, ClixmlError::NotObjs { .. })
        }),
        ("#< CLIXML\r\n<Objs><S>&bogus;</S></Objs>", |e| {
            matches!(e, ClixmlError::Xml { .. })
        }),
        ("#< CLIXML\r\n<Objs><S a=\"1\" a=\"2\"/></Objs>", |e| {
            matches!(e, ClixmlError::Xml { .. })
        }),
    ];
    for (input, expected) in cases {
        let err = decode_stderr(input).expect_err(input);
        assert!(expected(&err), "{input:?}: {err:?}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn nesting_is_bounded() {
    let ok = format!(
        "#< CLIXML\r\n<Objs>{}{}</Objs>",
        "<Obj>".repeat(MAX_DEPTH - 1),
        "</Obj>".repeat(MAX_DEPTH - 1)
    );
    assert!(decode_stderr(&ok).is_ok());
    let deep = format!("#< CLIXML\r\n<Objs>{}", "<Obj>".repeat(1_000_000));
    assert!(matches!(
        decode_stderr(&deep),
        Err(ClixmlError::TooDeep {
            limit: MAX_DEPTH,
            ..
        })
    ));
}

#[test]
fn error_record_display() {
    let e = ErrorRecord {
        message: "m".into(),
        category: Some("c".into()),
        fully_qualified_error_id: Some("f".into()),
        position: Some("At line:1 char:1".into()),
    };
    assert_eq!(
        e.to_string(),
        "m\nAt line:1 char:1\n    + CategoryInfo          : c\n    + FullyQualifiedErrorId : f"
    );
}

fn clixml_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("#< CLIXML\r\n".to_owned()),
        Just("<Objs>".to_owned()),
        Just("</Objs>".to_owned()),
        Just(r#"<S S="Error">"#.to_owned()),
        Just(r#"<S S="warning">"#.to_owned()),
        Just("</S>".to_owned()),
        Just(r#"<Obj S="error" RefId="0">"#.to_owned()),
        Just(r#"<Obj S="progress">"#.to_owned()),
        Just("</Obj>".to_owned()),
        Just("<MS>".to_owned()),
        Just("</MS>".to_owned()),
        Just(r#"<TNRef RefId="0"/>"#.to_owned()),
        Just(r#"<S N="FullyQualifiedErrorId">"#.to_owned()),
        Just("<ToString>".to_owned()),
        Just("</ToString>".to_owned()),
        Just("_x000D__x000A_".to_owned()),
        Just("_xD83D_".to_owned()),
        Just("    + CategoryInfo          : ".to_owned()),
        Just("At line:1 char:1".to_owned()),
        Just("&amp;".to_owned()),
        Just("&#0;".to_owned()),
        Just("\r\n \r\n".to_owned()),
        ".{0,12}",
    ]
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in any::<String>()) {
        let _ = decode_stderr(&s);
        let _ = is_clixml(s.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_stderr_bytes(&b);
        let _ = is_clixml(&b);
    }

    #[test]
    fn clixml_like_input_never_panics(parts in proptest::collection::vec(clixml_fragment(), 0..40)) {
        let s: String = parts.concat();
        let _ = decode_stderr(&s);
        let _ = decode_stderr(&format!("#< CLIXML\r\n<Objs>{s}"));
    }

    #[test]
    fn escapes_never_panic(s in "(_x[0-9A-Fa-f]{0,8}_?|.){0,20}") {
        let _ = decode_escapes(&s);
    }
}
