//! The JSON Schema of manifest documents, for editors (YAML language servers read JSON
//! Schema). The documents' own keys (inventory, layers, targets, capacity) are written
//! here; every resource section is the schema its kind carries (`Kind::schema`, built
//! from the kind's parameter tables, described by `Kind::help`), taken from the registry
//! `kinds::ALL`, so a new kind appears without an edit here and the schema can never
//! disagree with validation about names, types or ranges; validation remains the
//! authority for what a schema cannot say (versions, cross-field rules, duplicates).

use exctl_exchange::Version;
use exctl_exchange::kinds::ALL;
use exctl_exchange::schema::string_list;
use serde_json::{Value, json};

/// A kind's section: its own schema, described by its help text.
fn section(kind: &dyn exctl_exchange::Kind) -> Value {
    let mut v = kind.schema();
    if let Some(o) = v.as_object_mut() {
        o.entry("description")
            .or_insert_with(|| Value::String(kind.help().to_string()));
    }
    v
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
    let mut doc = json!({
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
            "capacity": capacity
        }
    });
    if let Some(props) = doc.get_mut("properties").and_then(Value::as_object_mut) {
        for kind in ALL {
            props.insert(kind.key().to_string(), section(*kind));
        }
    }
    doc
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
