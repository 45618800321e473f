//! Pieces every kind that wraps a Get-/Set- cmdlet pair shares: reading parameters,
//! reporting an object's properties, and comparing them.

use exctl_pwsh::quote;

use crate::kind::{Action, AttrChange, Change, DiffError, Resource};
use crate::record::Observations;
use crate::value::ParamSpec;

/// Statements reporting `props` of the object a `getter` expression returns, as
/// resource `id`; `__exists` is false when the getter returns nothing. Errors are
/// reported as `__error` for that resource only.
pub fn observe_object(id: &str, getter: &str, props: &[&str]) -> String {
    let r = quote(id);
    let mut body = format!(
        "$o = @({getter})\nif ($o.Count -eq 0) {{ __exctl_emit {r} '__exists' $false }} else {{\n$o = $o[0]\n__exctl_emit {r} '__exists' $true\n"
    );
    for p in props {
        body.push_str(&format!("__exctl_emit {r} {} $o.{}\n", quote(p), p));
    }
    body.push('}');
    crate::record::guarded(id, &body)
}

/// The spec of a parameter by (case-insensitive) name.
pub fn spec<'a>(specs: &'a [ParamSpec], name: &str) -> Option<&'a ParamSpec> {
    specs.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// Compares the desired attributes of `res` with what was observed under `id`.
/// Returns the attribute changes and the number of attributes already right.
pub fn compare_attrs(
    kind: &'static str,
    res: &Resource,
    id: &str,
    specs: &[ParamSpec],
    observed: &Observations,
) -> Result<(Vec<AttrChange>, usize), DiffError> {
    let mut changes = Vec::new();
    let mut unchanged = 0;
    for a in &res.attrs {
        let Some(spec) = spec(specs, &a.name) else {
            continue;
        };
        let raw = observed.get(id, spec.name).ok_or_else(|| DiffError {
            kind,
            id: id.to_string(),
            message: format!("the server did not report {}", spec.name),
        })?;
        let before = spec.ty.decode(raw).map_err(|m| DiffError {
            kind,
            id: id.to_string(),
            message: format!("{}: {m}", spec.name),
        })?;
        if spec.ty.same(&a.value, &before) {
            unchanged += 1;
        } else {
            changes.push(AttrChange {
                name: spec.name.to_string(),
                before: Some(before),
                after: Some(a.value.clone()),
                sensitive: res
                    .sensitive
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&a.name)),
            });
        }
    }
    Ok((changes, unchanged))
}

/// The error a resource's observation reported, or whether it exists.
pub fn existence(kind: &'static str, id: &str, observed: &Observations) -> Result<bool, DiffError> {
    if let Some(e) = observed.error(id) {
        return Err(DiffError {
            kind,
            id: id.to_string(),
            message: e.to_string(),
        });
    }
    observed.exists(id).ok_or_else(|| DiffError {
        kind,
        id: id.to_string(),
        message: "the server did not report this resource (the observe script did not reach it)"
            .into(),
    })
}

/// ` -Name value` for each changed attribute, rendered as PowerShell literals.
pub fn parameters(attrs: &[AttrChange]) -> String {
    let mut s = String::new();
    for a in attrs {
        if let Some(v) = &a.after {
            s.push_str(&format!(" -{} {}", a.name, v.to_powershell()));
        }
    }
    s
}

/// An update change with its script.
pub fn update(
    res: &Resource,
    id: &str,
    attrs: Vec<AttrChange>,
    unchanged: usize,
    script: String,
) -> Change {
    Change {
        kind: res.kind,
        id: id.to_string(),
        action: Action::Update,
        attrs,
        unchanged,
        restart: res.restart,
        script,
        span: res.span,
    }
}
