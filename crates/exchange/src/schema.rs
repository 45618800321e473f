//! The pieces of JSON Schema the kinds build their sections from ([`crate::Kind::schema`]).
//!
//! A kind's schema is made from its own parameter tables ([`ParamSpec`]), so it can never
//! disagree with validation about names, types or ranges; validation remains the
//! authority for what a schema cannot say (versions, cross-field rules, duplicates). The
//! engine assembles the document schema from every registered kind
//! (`exctl_engine::schema`).

use serde_json::{Value, json};

use crate::value::{ParamSpec, ParamType};
use crate::version::Version;

fn range_int(r: &std::ops::RangeInclusive<i64>) -> Value {
    json!({"type": "integer", "minimum": r.start(), "maximum": r.end()})
}

fn unlimited() -> Value {
    json!({"type": "string", "pattern": "^(?i)unlimited$"})
}

/// The schema of one value of type `ty`.
pub fn param(ty: &ParamType) -> Value {
    match ty {
        ParamType::Int(r) => range_int(r),
        ParamType::UnlimitedInt(r) => json!({"anyOf": [range_int(r), unlimited()]}),
        ParamType::NullableInt(r) => json!({"anyOf": [
            range_int(r),
            {"type": "null"},
            {"type": "string", "pattern": "^(?i)(unlimited|\\$null)$"}
        ]}),
        ParamType::Bool => json!({"type": "boolean"}),
        ParamType::Enum(values) => json!({"type": "string", "enum": values}),
        ParamType::Flags(values) => json!({"anyOf": [
            {"type": "string", "enum": values},
            {"type": "array", "items": {"type": "string", "enum": values}}
        ]}),
        ParamType::TimeSpan(_) => {
            json!({"type": "string", "pattern": "^(\\d+\\.)?\\d{1,2}:\\d{2}:\\d{2}(\\.\\d{1,7})?$"})
        }
        ParamType::Bytes(_) | ParamType::UnlimitedBytes(_) => {
            json!({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]})
        }
        ParamType::StrList => string_list(),
        // Free text, as the cmdlet takes it (a number is text too).
        ParamType::Str | ParamType::StrIgnoreCase => json!({"type": ["string", "number"]}),
    }
}

/// A map of settings-cmdlet parameters (`imap_settings`, one receive connector, one
/// throttling policy): every parameter of `specs` with its type, described with the
/// release that added it, plus `extra` properties (`ensure`).
pub fn params_object(specs: &[ParamSpec], extra: &[(&str, Value)]) -> Value {
    let mut props = serde_json::Map::new();
    for s in specs {
        let mut p = param(&s.ty);
        let mut desc = s.ty.describe();
        if s.since > Version::Rtm {
            desc.push_str(&format!("; from {} on", s.since.as_str()));
        }
        if let Some(o) = p.as_object_mut() {
            o.insert("description".into(), Value::String(desc));
        }
        props.insert(s.name.to_string(), p);
    }
    for (k, v) in extra {
        props.insert((*k).to_string(), v.clone());
    }
    // `NAME+:` extends a list of the layers below (see docs/manifests.md).
    json!({"type": "object", "additionalProperties": false, "properties": props, "patternProperties": {"^.+\\+$": string_list()}})
}

/// `ensure: present | absent`.
pub fn ensure() -> Value {
    json!({"type": "string", "enum": ["present", "absent"]})
}

/// One string or a list of them.
pub fn string_list() -> Value {
    json!({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
}
