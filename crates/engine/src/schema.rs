//! The JSON Schema of manifest documents, for editors (YAML language servers read JSON
//! Schema). Generated from the kinds' own parameter tables, so it can never disagree
//! with validation about names, types or ranges; validation remains the authority for
//! what a schema cannot say (versions, cross-field rules, duplicates).

use exctl_exchange::kinds::{imap, pop, receive_connectors, throttling_policies};
use exctl_exchange::{ParamSpec, ParamType, Version};
use serde_json::{Value, json};

fn range_int(r: &std::ops::RangeInclusive<i64>) -> Value {
    json!({"type": "integer", "minimum": r.start(), "maximum": r.end()})
}

fn unlimited() -> Value {
    json!({"type": "string", "pattern": "^(?i)unlimited$"})
}

fn param_schema(ty: &ParamType) -> Value {
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
        ParamType::Bytes(_) => {
            json!({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]})
        }
        ParamType::UnlimitedBytes(_) => {
            json!({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]})
        }
        ParamType::StrList => {
            json!({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
        }
        _ => json!({"type": ["string", "number"]}),
    }
}

fn params_object(specs: &[ParamSpec], extra: &[(&str, Value)]) -> Value {
    let mut props = serde_json::Map::new();
    for s in specs {
        let mut p = param_schema(&s.ty);
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

fn ensure() -> Value {
    json!({"type": "string", "enum": ["present", "absent"]})
}

fn string_list() -> Value {
    json!({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
}

/// The schema of a manifest document (inventory, layer or resources).
pub fn manifest_schema() -> Value {
    let host = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["endpoint", "user", "exchange"],
        "properties": {
            "endpoint": {"type": "string", "description": "http://host:5985/wsman or https://host:5986/wsman"},
            "auth": {"type": "string", "enum": ["ntlm", "basic", "kerberos", "negotiate"], "description": "kerberos: the operator's ticket (kinit) unless a credential is given; negotiate: Kerberos, else NTLM"},
            "spn": {"type": "string", "description": "Kerberos: the server's service principal; default HTTP/<host of the endpoint>"},
            "user": {"type": "string", "description": "DOMAIN\\user, user@domain or a local user"},
            "credential": {"type": "string", "pattern": "^(?i)((keyring|env):.+|prompt)$", "description": "keyring:NAME, env:VAR or prompt; a password in clear is refused"},
            "exchange": {"type": "string", "enum": Version::NAMES},
            "access": {"type": "string", "enum": ["psrp", "snapin", "remote-session"], "description": "psrp (default): Exchange's own endpoint for its cmdlets, the WinRM endpoint for the host's work; snapin: unsupported by Microsoft, needs CredSSP or delegation to reach AD; remote-session: imported from the host's session with the host's password"},
            "session_uri": {"type": "string", "pattern": "^(?i)https?://.+/powershell/?$", "description": "psrp and remote-session: Exchange's PowerShell virtual directory; default http://<host of the endpoint>/PowerShell/ (psrp), http://<name>/PowerShell/ (remote-session)"},
            "exchange_auth": {"type": "string", "enum": ["kerberos", "negotiate", "ntlm", "basic"], "description": "psrp only: how exctl logs on to session_uri; default kerberos, as the virtual directory is configured"},
            "site": {"type": "string"},
            "baselines": string_list(),
            "ca_file": {"type": "string"},
            "tls_fingerprint": {"type": "string", "pattern": "^(sha256|SHA256):[0-9A-Fa-f: ]{64,95}$"}
        }
    });
    let site = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}, "description": "for --selector label=value"},
            "baselines": string_list(),
            "hosts": {"type": "object", "additionalProperties": host.clone()}
        }
    });
    let registry = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["path", "name"],
        "properties": {
            "path": {"type": "string"},
            "name": {"type": "string"},
            "type": {"type": "string", "enum": ["dword", "qword", "string", "expandstring", "multistring"]},
            "value": {},
            "restart": {"type": "string", "enum": ["MSExchangeIS", "MSExchangeIMAP4", "none"]},
            "sensitive": {"type": "boolean", "description": "never show the value (plans, results, journal)"},
            "ensure": ensure()
        }
    });
    let ad_permission = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["target", "user"],
        "properties": {
            "target": {"type": "string", "description": "'organization' or an identity Get-ADPermission accepts"},
            "user": {"type": "string"},
            "extended_rights": string_list(),
            "access_rights": string_list(),
            "inheritance": {"type": "string", "enum": ["None", "All", "Descendents", "SelfAndChildren", "Children"]},
            "deny": {"type": "boolean"},
            "ensure": ensure()
        },
        "patternProperties": {"^(extended_rights|access_rights)\\+$": string_list()}
    });
    let association = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["identity", "policy"],
        "properties": {
            "identity": {"type": "string"},
            "policy": {"type": "string", "description": "a policy name, or 'default'"}
        }
    });
    let capacity = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["account", "desktops"],
        "description": "the IMAP demand on a shared account; validate and plan check every limit on its path against it",
        "properties": {
            "account": {"type": "string", "description": "the shared account the desktops log in with"},
            "desktops": {"type": "integer", "minimum": 0, "maximum": 1_000_000, "description": "agent desktops logged in at the same time"},
            "connections_per_desktop": {"type": "integer", "minimum": 1, "maximum": 100, "description": "IMAP connections per desktop (default 2, UCCX/CAD)"},
            "server_connections": {"type": "integer", "minimum": 0, "maximum": 1_000_000, "description": "connections the contact-centre server itself holds (default 0)"},
            "desktops_per_address": {"type": "integer", "minimum": 1, "maximum": 1_000_000, "description": "desktops behind one NAT address (default 1)"}
        }
    });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "exctl manifest document",
        "description": "An inventory document (sites, hosts), a baseline (baseline: NAME), a site or host override (site: NAME, host: NAME), or a resource document (targets), with resource kinds.",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "sites": {"type": "object", "additionalProperties": site},
            "hosts": {"type": "object", "additionalProperties": host},
            "baseline": {"type": "string", "description": "this document is the baseline NAME, applied to the sites (or hosts) that list it"},
            "site": {"type": "string", "description": "this document overrides and extends the baselines for the site NAME"},
            "host": {"type": "string", "description": "this document overrides and extends its site's values for the host NAME"},
            "description": {"type": "string"},
            "targets": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "imap_settings": params_object(imap::PARAMS, &[]),
            "pop_settings": params_object(pop::PARAMS, &[]),
            "receive_connectors": {"type": "object", "additionalProperties": params_object(receive_connectors::PARAMS, &[])},
            "throttling_policies": {"type": "object", "additionalProperties": params_object(throttling_policies::PARAMS, &[("ensure", ensure())])},
            "throttling_associations": {"type": "array", "items": association},
            "ad_permissions": {"type": "array", "items": ad_permission},
            "registry_values": {"type": "array", "items": registry},
            "capacity": capacity
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_schema_is_the_generated_one() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/manifest.schema.json"
        );
        let generated = serde_json::to_string_pretty(&super::manifest_schema()).unwrap() + "\n";
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/manifest.schema.json is out of date: run `cargo run -- schema > docs/manifest.schema.json`"
        );
    }
}
