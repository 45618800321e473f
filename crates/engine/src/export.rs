//! `exctl export`: a host's current state as a manifest, ready to commit.
//!
//! One script, one PowerShell process per host, as for plan: the record PRELUDE, the
//! Exchange snap-in, the server's AdminDisplayVersion (checked against the declared
//! release, whose parameters the script reads), then the export fragment of every kind
//! asked for ([`exctl_exchange::Kind::export_script`]). Each kind turns the records into
//! its section ([`exctl_exchange::Kind::export`]); [`render`] writes them as two layer
//! documents of the documented schema: `site: <the host's site>` with the
//! organization-wide sections (which a host override may not hold) and `host: <name>`
//! with the server's own, so that the file can be planned beside the inventory alone, or
//! dropped into a repository over its baselines. Everything here is read-only.

use std::fmt::Write as _;

use exctl_exchange::Version;
use exctl_exchange::export::{ExportContext, Section};
use exctl_exchange::host::{ExchangeServer, exchange_server_script};
use exctl_exchange::kind::{DiffError, Kind, Scope};
use exctl_exchange::record::{Observations, RecordError};

use crate::desired::HostSpec;
use crate::observe::{HOST_RESOURCE, Runner};
use crate::script::ScriptBuilder;

/// What to export from a host.
#[derive(Clone, Copy)]
pub struct ExportRequest<'a> {
    /// The kinds, in plan order.
    pub kinds: &'a [&'static dyn Kind],
    /// Mailboxes whose throttling association to export.
    pub mailboxes: &'a [String],
    /// Users whose AD permissions on the organization to export.
    pub users: &'a [String],
}

/// Why a host could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The script could not be run (connection, credentials, protocol).
    #[error("{0}")]
    Run(String),
    /// The script ran and failed as a whole.
    #[error("the export script failed on {host} (exit code {code}){detail}")]
    Script {
        /// The host.
        host: String,
        /// Its exit code.
        code: i64,
        /// stderr, after a colon and a line break, when there is any.
        detail: String,
    },
    /// Its output is not valid records.
    #[error(transparent)]
    Records(#[from] RecordError),
    /// The Exchange server itself could not be read.
    #[error("cannot read the Exchange server {host}: {message}")]
    Server {
        /// The host.
        host: String,
        /// The server's words.
        message: String,
    },
    /// The server runs another release than declared (the script read the declared
    /// release's parameters).
    #[error(
        "{host} runs {actual} ({raw}) but {declared} was declared; declare the host's release (exchange: {} in the inventory, or --exchange) so the right parameters are read",
        actual_version.as_str()
    )]
    Version {
        /// The host.
        host: String,
        /// What it runs.
        actual: String,
        /// The release it runs.
        actual_version: Version,
        /// AdminDisplayVersion as printed.
        raw: String,
        /// What was declared.
        declared: String,
    },
    /// A kind could not make its section.
    #[error("{0}")]
    Kind(#[from] DiffError),
}

/// A host's export, before rendering.
#[derive(Debug)]
pub struct HostExport {
    /// The host's computer name.
    pub host: String,
    /// Its site (the inventory's, or its own name).
    pub site: String,
    /// The release it runs.
    pub version: Version,
    /// AdminDisplayVersion as the server printed it, when it did.
    pub admin_display_version: Option<String>,
    /// The sections, in plan order: (kind key, scope, section).
    pub sections: Vec<(&'static str, Scope, Section)>,
}

fn context<'a>(host: &'a HostSpec, req: &ExportRequest<'a>) -> ExportContext<'a> {
    ExportContext {
        host: &host.name,
        version: host.version,
        mailboxes: req.mailboxes,
        users: req.users,
    }
}

/// The export script for one host.
pub fn export_script(host: &HostSpec, req: &ExportRequest<'_>) -> String {
    let mut s = ScriptBuilder::new(host);
    s.raw(&exchange_server_script(HOST_RESOURCE, &host.name));
    let ctx = context(host, req);
    for kind in req.kinds {
        s.raw(&kind.export_script(&ctx));
    }
    s.finish()
}

/// Exports one host of site `site`.
pub async fn export_host(
    host: &HostSpec,
    site: &str,
    req: &ExportRequest<'_>,
    runner: &dyn Runner,
) -> Result<HostExport, ExportError> {
    let script = export_script(host, req);
    // RunError's shape is the runner's business: only its message is used.
    let out = runner
        .run(host, &script)
        .await
        .map_err(|e| ExportError::Run(e.to_string()))?;
    if out.exit_code != 0 {
        let detail = out.stderr.trim();
        return Err(ExportError::Script {
            host: host.name.clone(),
            code: out.exit_code,
            detail: if detail.is_empty() {
                String::new()
            } else {
                format!(":\n{detail}")
            },
        });
    }
    let observed = Observations::parse(&out.stdout)?;
    from_observations(host, site, req, &observed)
}

/// The export made from what the script reported (separate for tests).
pub fn from_observations(
    host: &HostSpec,
    site: &str,
    req: &ExportRequest<'_>,
    observed: &Observations,
) -> Result<HostExport, ExportError> {
    let server =
        ExchangeServer::read(observed, HOST_RESOURCE).map_err(|message| ExportError::Server {
            host: host.name.clone(),
            message,
        })?;
    let admin_display_version = Some(server.admin_display_version).filter(|v| !v.is_empty());
    if let Some(v) = &admin_display_version {
        match Version::from_admin_display_version(v) {
            Some(actual) if actual != host.version => {
                return Err(ExportError::Version {
                    host: host.name.clone(),
                    actual: actual.to_string(),
                    actual_version: actual,
                    raw: v.clone(),
                    declared: host.version.as_str().to_string(),
                });
            }
            Some(_) => {}
            None => {
                return Err(ExportError::Server {
                    host: host.name.clone(),
                    message: format!("AdminDisplayVersion '{v}' is not Exchange 2010"),
                });
            }
        }
    }
    let ctx = context(host, req);
    let mut sections = Vec::new();
    for kind in req.kinds {
        if let Some(section) = kind.export(observed, &ctx)? {
            sections.push((kind.key(), kind.scope(), section));
        }
    }
    Ok(HostExport {
        host: host.name.clone(),
        site: site.to_string(),
        version: host.version,
        admin_display_version,
        sections,
    })
}

/// What the header comment says about how the file was made.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// The command line (never holds a secret: passwords are no arguments).
    pub command: String,
    /// When, `YYYY-MM-DDTHH:MM:SSZ`.
    pub at: String,
    /// exctl's version.
    pub tool_version: String,
}

fn comment(out: &mut String, text: &str) {
    for line in text.lines() {
        let clean: String = line
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let clean = clean.trim_end();
        if clean.is_empty() {
            out.push_str("#\n");
        } else {
            let _ = writeln!(out, "# {clean}");
        }
    }
}

fn section(out: &mut String, key: &str, s: &Section) {
    for n in &s.notes {
        comment(out, n);
    }
    if s.body.is_empty() {
        // Only notes: nothing to manage (an empty section would add nothing anyway).
        comment(out, &format!("{key}: nothing to export"));
        return;
    }
    let _ = writeln!(out, "{key}:");
    out.push_str(&s.body.render(2));
}

/// The manifest: a header comment, then `site:` (organization-wide sections) and
/// `host:` (the server's sections) documents; a document with no section is left out.
pub fn render(e: &HostExport, p: &Provenance) -> String {
    let mut out = String::new();
    let seen = e
        .admin_display_version
        .as_deref()
        .map_or_else(String::new, |v| format!(", AdminDisplayVersion {v}"));
    let kinds: Vec<&str> = e.sections.iter().map(|(k, _, _)| *k).collect();
    comment(
        &mut out,
        &format!(
            "Exported from {} ({}{seen}) at {} by exctl {}:\n  {}\nThe server's state as found{}. Plan it with the inventory to check it:\nexctl plan shows no change for it until the server or this file changes.",
            e.host,
            e.version,
            p.at,
            p.tool_version,
            p.command,
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            }
        ),
    );
    out.push('\n');
    let org: Vec<&(&str, Scope, Section)> = e
        .sections
        .iter()
        .filter(|(_, s, _)| *s == Scope::Organization)
        .collect();
    let server: Vec<&(&str, Scope, Section)> = e
        .sections
        .iter()
        .filter(|(_, s, _)| *s == Scope::Server)
        .collect();
    let mut first = true;
    for (header, name, group) in [("site", &e.site, org), ("host", &e.host, server)] {
        if group.is_empty() {
            continue;
        }
        if !first {
            out.push_str("---\n");
        }
        first = false;
        if header == "site" {
            comment(
                &mut out,
                "Organization-wide: applied once per site, through its first host.",
            );
        }
        let _ = writeln!(out, "{header}: {}", exctl_exchange::export::string(name));
        for (key, _, s) in group {
            section(&mut out, key, s);
        }
    }
    if first {
        comment(&mut out, "Nothing to export.");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use exctl_exchange::RawValue;
    use exctl_exchange::kinds;
    use exctl_exchange::record::encode;

    fn host(version: Version) -> HostSpec {
        HostSpec {
            name: "EX01".into(),
            endpoint: "http://127.0.0.1:5985/wsman".into(),
            auth: crate::Auth::Ntlm,
            spn: None,
            user: "CONTOSO\\Administrator".into(),
            credential: None,
            version,
            access: crate::desired::Access::Snapin,
            session_uri: None,
            exchange_auth: crate::desired::Auth::Kerberos,
            capacity: None,
            declared_limits: None,
            site: Some("lab".into()),
            baselines: None,
            ca_file: None,
            tls_fingerprint: None,
            span: exctl_manifest::Span::point(exctl_manifest::FileId(0), Default::default()),
        }
    }

    #[test]
    fn the_script_reads_every_kind_once_and_parses() {
        let mailboxes = vec!["uccx-agent".to_string()];
        let users = vec!["CONTOSO\\uccx-agent".to_string()];
        let req = ExportRequest {
            kinds: kinds::ALL,
            mailboxes: &mailboxes,
            users: &users,
        };
        let script = export_script(&host(Version::Sp3), &req);
        exctl_pwsh_interp::parse(&script).expect("the script parses");
        for cmdlet in [
            "Get-ReceiveConnector -Server 'EX01'",
            "Get-ImapSettings -Server 'EX01'",
            "Get-ThrottlingPolicy -ErrorAction Stop",
            "Get-ADPermission",
            "Get-ThrottlingPolicyAssociation",
            "Get-ItemProperty",
        ] {
            assert!(script.contains(cmdlet), "{cmdlet}:\n{script}");
        }
        for write in ["Set-", "New-", "Add-ADPermission", "Remove-", "Restart-"] {
            assert!(!script.contains(write), "{write} in:\n{script}");
        }
    }

    #[test]
    fn a_server_on_another_release_is_refused() {
        let req = ExportRequest {
            kinds: &[],
            mailboxes: &[],
            users: &[],
        };
        let mut o = Observations::default();
        o.insert(
            HOST_RESOURCE,
            "AdminDisplayVersion",
            RawValue::Str("Version 14.1 (Build 218.15)".into()),
        );
        let e = from_observations(&host(Version::Sp3), "lab", &req, &o).unwrap_err();
        assert!(
            e.to_string()
                .contains("EX01 runs Exchange 2010 SP1 (Version 14.1 (Build 218.15)) but 2010-sp3 was declared"),
            "{e}"
        );
    }

    #[test]
    fn renders_site_and_host_documents_that_load() {
        let req = ExportRequest {
            kinds: kinds::ALL,
            mailboxes: &["uccx-agent".to_string()],
            users: &[],
        };
        let lines = [
            encode(
                HOST_RESOURCE,
                "AdminDisplayVersion",
                &RawValue::Str("Version 14.3 (Build 123.4)".into()),
            ),
            encode("uccx-agent", "ThrottlingPolicyId", &RawValue::Null),
            encode(
                "throttling_policies:*",
                "__members",
                &RawValue::List(vec![]),
            ),
            encode(
                "receive_connectors:EX01",
                "__members",
                &RawValue::List(vec![]),
            ),
        ];
        let mut o = Observations::parse(&lines.join("\n")).unwrap();
        // The POP3 settings as the IMAP4 ones (the same parameters, bar two).
        for k in ["imap_settings:EX01", "pop_settings:EX01"] {
            o.insert(k, "__exists", RawValue::Str("True".into()));
            for spec in kinds::imap::PARAMS.iter().chain(kinds::pop::PARAMS) {
                o.insert(k, spec.name, RawValue::Null);
            }
            o.insert(k, "MaxConnectionsPerUser", RawValue::Str("16".into()));
            o.insert(k, "MaxCommandSize", RawValue::Str("512".into()));
            o.insert(k, "MaxConnections", RawValue::Str("2147483647".into()));
            o.insert(k, "MaxConnectionFromSingleIP", RawValue::Str("2000".into()));
            o.insert(k, "ProxyTargetPort", RawValue::Str("993".into()));
            o.insert(
                k,
                "AuthenticatedConnectionTimeout",
                RawValue::Str("00:30:00".into()),
            );
            o.insert(
                k,
                "PreAuthenticatedConnectionTimeout",
                RawValue::Str("00:01:00".into()),
            );
            for b in [
                "EnableExactRFC822Size",
                "EnableGSSAPIAndNTLMAuth",
                "EnforceCertificateErrors",
                "LiveIdBasicAuthReplacement",
                "ProtocolLogEnabled",
                "ShowHiddenFoldersEnabled",
                "SuppressReadReceipt",
            ] {
                o.insert(k, b, RawValue::Str("False".into()));
            }
        }
        o.insert(
            "pop_settings:EX01",
            "MessageRetrievalSortOrder",
            RawValue::Str("Ascending".into()),
        );
        // Registry: nothing but the sessions limit exists.
        for name in kinds::registry_values::STORE_LIMITS {
            let path = if name.starts_with("objt") {
                format!(
                    "{}\\MaxObjsPerMapiSession",
                    kinds::registry_values::STORE_KEY
                )
            } else {
                kinds::registry_values::STORE_KEY.to_string()
            };
            let key = format!("registry_values:{path}\\{name}");
            let exists = *name == "Maximum Allowed Service Sessions Per User";
            o.insert(
                &key,
                "__exists",
                RawValue::Str(if exists { "True" } else { "False" }.into()),
            );
            if exists {
                o.insert(&key, "Type", RawValue::Str("DWord".into()));
                o.insert(&key, "Value", RawValue::Str("250".into()));
            }
        }
        let e = from_observations(&host(Version::Sp3), "lab", &req, &o).unwrap();
        let p = Provenance {
            command: "exctl export EX01 --mailboxes uccx-agent".into(),
            at: "2024-01-02T03:04:05Z".into(),
            tool_version: "0.1.0".into(),
        };
        let text = render(&e, &p);
        insta::assert_snapshot!(text);
        let (_, docs, diags) = exctl_manifest::parse_str("export.yaml", &text);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(docs.len(), 2);
    }
}
