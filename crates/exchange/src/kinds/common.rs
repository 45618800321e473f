//! Pieces every kind shares: reporting an object's properties, comparing them, the
//! namespacing of observation keys and duplicate detection.

use std::collections::BTreeMap;

use exctl_manifest::{Diagnostic, Diagnostics, Span};
use exctl_pwsh::{Command, quote};

use crate::kind::{
    Action, AttrChange, Change, Declared, DesiredAttr, DiffError, Payload, Resource,
};
use crate::record::Observations;
use crate::value::{ParamSpec, ParamType};

/// The observation key of a resource: `<kind>:<identity>`. Every kind's records share one
/// observation per host, so keys carry the kind to keep, say, a throttling policy and an
/// association of the same name apart.
pub fn obs_key(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}

/// The PowerShell expression that reports property `prop` of `$var`: multi-valued
/// properties go through `@()` so they are reported as a list even with one element (a
/// `MultiValuedProperty` is no `[array]`, and `[string]` would join it with spaces).
pub fn prop_expr(var: &str, spec: &ParamSpec) -> String {
    match spec.ty {
        ParamType::StrList => format!("@(${var}.{})", spec.name),
        _ => format!("${var}.{}", spec.name),
    }
}

/// Statements reporting `props` of the object a `getter` expression returns, as
/// resource `key`; `__exists` is false when the getter returns nothing. Errors are
/// reported as `__error` for that resource only.
pub fn observe_object(key: &str, getter: &str, props: &[&ParamSpec]) -> String {
    let r = quote(key);
    let mut body = format!(
        "$o = @({getter})\nif ($o.Count -eq 0) {{ __exctl_emit {r} '__exists' $false }} else {{\n$o = $o[0]\n__exctl_emit {r} '__exists' $true\n"
    );
    for p in props {
        body.push_str(&format!(
            "__exctl_emit {r} {} {}\n",
            quote(p.name),
            prop_expr("o", p)
        ));
    }
    body.push('}');
    crate::record::guarded(key, &body)
}

/// A resource that no manifest declared, for reusing a kind's observe fragment and
/// decoding in `exctl export` (which reads what exists rather than what is declared).
pub fn synthetic(kind: &'static str, id: String, payload: Payload) -> Resource {
    Resource {
        kind,
        id,
        ensure: crate::kind::Ensure::Present,
        attrs: Vec::new(),
        payload,
        restart: None,
        sensitive: Vec::new(),
        span: Span::point(exctl_manifest::FileId(0), Default::default()),
    }
}

/// The declaration of `resource` (for [`crate::kind::Kind::parse`]).
pub fn declared(resource: Resource) -> Declared {
    Declared { resource }
}

/// The resources of `host` for a per-server settings kind (IMAP, POP): each declaration
/// with the host as its identity.
pub fn host_is_identity(declared: &[Declared], host: &str) -> Vec<Resource> {
    declared
        .iter()
        .map(|d| Resource {
            id: host.to_string(),
            ..d.resource.clone()
        })
        .collect()
}

/// The spec of a parameter by (case-insensitive) name.
pub fn spec<'a>(specs: &'a [ParamSpec], name: &str) -> Option<&'a ParamSpec> {
    specs.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// The specs of the desired attributes of `resources`, each once, in spec order.
pub fn specs_of<'a>(specs: &'a [ParamSpec], resources: &[&Resource]) -> Vec<&'a ParamSpec> {
    specs
        .iter()
        .filter(|s| {
            resources
                .iter()
                .any(|r| r.attrs.iter().any(|a| a.name.eq_ignore_ascii_case(s.name)))
        })
        .collect()
}

/// Compares desired attributes with what was observed under observation key `key`;
/// `id` names the resource in errors. Returns the attribute changes and the number of
/// attributes already right.
pub fn compare(
    kind: &'static str,
    id: &str,
    key: &str,
    attrs: &[&DesiredAttr],
    sensitive: &[String],
    specs: &[ParamSpec],
    observed: &Observations,
) -> Result<(Vec<AttrChange>, usize), DiffError> {
    let mut changes = Vec::new();
    let mut unchanged = 0;
    for a in attrs {
        let Some(spec) = spec(specs, &a.name) else {
            continue;
        };
        let before = observed_value(kind, id, key, spec, observed)?;
        if spec.ty.same(&a.value, &before) {
            unchanged += 1;
        } else {
            changes.push(AttrChange {
                name: spec.name.to_string(),
                before: Some(before),
                after: Some(a.value.clone()),
                sensitive: sensitive.iter().any(|s| s.eq_ignore_ascii_case(&a.name)),
            });
        }
    }
    Ok((changes, unchanged))
}

/// The decoded observed value of one parameter.
pub fn observed_value(
    kind: &'static str,
    id: &str,
    key: &str,
    spec: &ParamSpec,
    observed: &Observations,
) -> Result<crate::value::Value, DiffError> {
    let raw = observed.get(key, spec.name).ok_or_else(|| DiffError {
        kind,
        id: id.to_string(),
        message: format!("the server did not report {}", spec.name),
    })?;
    spec.ty.decode(raw).map_err(|m| DiffError {
        kind,
        id: id.to_string(),
        message: format!("{}: {m}", spec.name),
    })
}

/// Compares the desired attributes of `res` with what was observed under `key`.
pub fn compare_attrs(
    kind: &'static str,
    res: &Resource,
    key: &str,
    specs: &[ParamSpec],
    observed: &Observations,
) -> Result<(Vec<AttrChange>, usize), DiffError> {
    let attrs: Vec<&DesiredAttr> = res.attrs.iter().collect();
    compare(kind, &res.id, key, &attrs, &res.sensitive, specs, observed)
}

/// The error a resource's observation reported, or whether it exists.
pub fn existence(
    kind: &'static str,
    id: &str,
    key: &str,
    observed: &Observations,
) -> Result<bool, DiffError> {
    if let Some(e) = observed.error(key) {
        return Err(DiffError {
            kind,
            id: id.to_string(),
            message: e.to_string(),
        });
    }
    observed.exists(key).ok_or_else(|| not_reported(kind, id))
}

/// The error for a resource the observation does not mention at all.
pub fn not_reported(kind: &'static str, id: &str) -> DiffError {
    DiffError {
        kind,
        id: id.to_string(),
        message: "the server did not report this resource (the observe script did not reach it)"
            .into(),
    }
}

/// `cmd` with `-Name value` for each changed attribute's desired value.
pub fn with_parameters(mut cmd: Command, attrs: &[AttrChange]) -> Command {
    for a in attrs {
        if let Some(v) = &a.after {
            cmd = cmd.param(a.name.clone(), v.to_arg());
        }
    }
    cmd
}

/// A change with its commands.
pub fn change(
    res: &Resource,
    id: &str,
    action: Action,
    attrs: Vec<AttrChange>,
    unchanged: usize,
    commands: Vec<Command>,
) -> Change {
    Change {
        kind: res.kind,
        id: id.to_string(),
        action,
        attrs,
        unchanged,
        restart: res.restart,
        commands,
        span: res.span,
    }
}

/// An update change with its commands.
pub fn update(
    res: &Resource,
    id: &str,
    attrs: Vec<AttrChange>,
    unchanged: usize,
    commands: Vec<Command>,
) -> Change {
    change(res, id, Action::Update, attrs, unchanged, commands)
}

/// Reports every group of resources of `kind` that share a `key` (`None`: not
/// compared) but come from different places in the manifests: an error at the later
/// declaration pointing at the first. Resources with the same span are one declaration
/// read for several hosts, not duplicates.
pub fn report_duplicates(
    all: &[Resource],
    kind: &str,
    key: impl Fn(&Resource) -> Option<String>,
    what: impl Fn(&Resource) -> String,
    diags: &mut Diagnostics,
) {
    let mut groups: BTreeMap<String, Vec<&Resource>> = BTreeMap::new();
    for r in all.iter().filter(|r| r.kind == kind) {
        if let Some(k) = key(r) {
            let g = groups.entry(k).or_default();
            if !g.iter().any(|o| o.span == r.span) {
                g.push(r);
            }
        }
    }
    for group in groups.values_mut() {
        group.sort_by_key(|r| (r.span.file, r.span.start.offset));
        if let Some((first, rest)) = group.split_first() {
            for r in rest {
                diags.push(duplicate(&what(r), r.span, first.span));
            }
        }
    }
}

/// The error for a resource declared twice.
pub fn duplicate(what: &str, span: Span, first: Span) -> Diagnostic {
    Diagnostic::error(
        "exchange::duplicate-resource",
        format!("{what} is declared more than once"),
    )
    .with_span(span)
    .with_label("declared again here")
    .with_related(first, "first declared here")
    .with_hint("keep one declaration (names compare ignoring case, as Exchange compares them)")
}

/// The error for a `ensure: absent` resource that also declares attributes.
pub fn absent_with_attributes(what: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        "exchange::absent-with-attributes",
        format!("{what} has ensure: absent and also declares values to set"),
    )
    .with_span(span)
    .with_label("nothing is set on something that is removed")
    .with_hint("remove the values, or remove `ensure: absent`")
}

/// Reads `ensure` (`present`, the default, or `absent`) from a map.
pub fn read_ensure(reader: &mut exctl_manifest::MapReader<'_, '_>) -> Option<crate::kind::Ensure> {
    match reader.value("ensure")?.one_of(&["present", "absent"])? {
        "absent" => Some(crate::kind::Ensure::Absent),
        _ => Some(crate::kind::Ensure::Present),
    }
}

/// The text of scalar `key` (ignoring case) of a list entry, for
/// [`crate::kind::Kind::merge_identity`]: trimmed, lower-case (identities ignore case,
/// as Exchange and Windows do). `None` when the entry is no map or has no such scalar.
pub fn entry_field(entry: &exctl_manifest::Node, key: &str) -> Option<String> {
    let (_, v) = entry
        .as_map()?
        .iter()
        .find(|(k, _)| k.text.eq_ignore_ascii_case(key))?;
    Some(v.scalar_text()?.trim().to_lowercase())
}

#[cfg(test)]
pub mod testutil {
    //! Structural checks of generated PowerShell, used by every kind's tests.

    use exctl_pwsh::literal::is_single_quote;

    /// A value meant to break out of a literal: every single quote PowerShell knows,
    /// backticks, a subexpression, a statement separator, newlines, a double quote.
    pub const HOSTILE: &str =
        "a'b\u{2018}c\u{2019}d\u{201A}e\u{201B}f`g$(Remove-Item C:\\ -Recurse);h\r\ni\"j@{k}";

    /// Splits a script into its skeleton (every single-quoted literal replaced by `'_'`)
    /// and the decoded contents of those literals, as PowerShell's tokenizer reads them.
    pub fn split_literals(script: &str) -> (String, Vec<String>) {
        let mut skeleton = String::new();
        let mut literals = Vec::new();
        let mut chars = script.chars().peekable();
        while let Some(c) = chars.next() {
            if !is_single_quote(c) {
                skeleton.push(c);
                continue;
            }
            let mut lit = String::new();
            loop {
                match chars.next() {
                    None => panic!("unterminated literal in:\n{script}"),
                    Some(q) if is_single_quote(q) => {
                        if chars.peek().copied().is_some_and(is_single_quote) {
                            lit.push(chars.next().unwrap_or(q));
                        } else {
                            break;
                        }
                    }
                    Some(x) => lit.push(x),
                }
            }
            skeleton.push_str("'_'");
            literals.push(lit);
        }
        (skeleton, literals)
    }

    /// Asserts that `hostile` reaches `script` only as whole literals and that the script
    /// has the same structure as `benign`, the script made from harmless values.
    pub fn assert_contained(script: &str, benign: &str, hostile: &str) {
        assert_parses(script);
        assert_parses(benign);
        let (skel, lits) = split_literals(script);
        let (skel_b, _) = split_literals(benign);
        assert_eq!(
            skel, skel_b,
            "the hostile value changed the script's structure:\n{script}"
        );
        assert!(
            lits.iter().any(|l| l.contains(hostile)),
            "the hostile value is not inside one literal:\n{script}"
        );
        for bad in ["$(Remove-Item", "\u{201A}e"] {
            assert!(!skel.contains(bad), "{bad} outside a literal:\n{script}");
        }
    }

    /// A YAML double-quoted scalar holding `s`.
    pub fn yaml_quote(s: &str) -> String {
        let mut out = String::from('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    /// Checks that a change is plain commands, valid on a NoLanguage endpoint: each
    /// rendered command reads back as exactly itself (named literal parameters only, no
    /// variables or script blocks), and the whole parses after the PRELUDE.
    pub fn assert_plain(change: &crate::kind::Change) {
        assert!(!change.commands.is_empty(), "a change without commands");
        for c in &change.commands {
            assert_eq!(
                exctl_pwsh_interp::parse_command(&c.to_script()).as_ref(),
                Ok(c),
                "not a plain command: {c}"
            );
        }
        assert_parses(&change.script());
    }

    /// Parses `script` (after the record PRELUDE) with the PowerShell 2.0 subset parser
    /// the simulator uses, so every generated script stays inside that subset.
    pub fn assert_parses(script: &str) {
        let text = format!("{}{script}", crate::record::PRELUDE);
        if let Err(e) = exctl_pwsh_interp::parse(&text) {
            panic!("generated script does not parse: {e}\n{script}");
        }
    }
}
