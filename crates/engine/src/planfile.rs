//! Plan files: a plan saved by `exctl plan --out FILE` and applied later by
//! `exctl apply FILE`, refused when the servers or the manifests moved in between.
//!
//! # Format (`format_version` 3)
//!
//! A JSON object, recognised by its content (the `format` marker), never by its name:
//!
//! ```json
//! {
//!   "format": "exctl-plan",
//!   "format_version": 3,
//!   "exctl_version": "0.1.0",
//!   "created_utc": "2024-05-01T09:00:00Z",
//!   "inputs": ["manifests"],
//!   "manifests": [
//!     { "path": "manifests/inventory.yaml", "sha256": "<hex of the file's text>" }
//!   ],
//!   "hosts": [
//!     {
//!       "name": "EX01", "endpoint": "https://ex01.contoso.local:5986/wsman",
//!       "auth": "ntlm", "user": "CONTOSO\\svc-exctl", "site": "lon",
//!       "exchange": "2010-sp3", "observed_version": "Version 14.3 (Build 123.4)",
//!       "in_sync": 0,
//!       "steps": [
//!         { "type": "change", "kind": "imap_settings", "title": "IMAP4 settings",
//!           "id": "EX01", "action": "update", "requires_restart": "MSExchangeIMAP4",
//!           "declared_at": "manifests/lon.yaml:3",
//!           "attributes": [
//!             { "name": "MaxConnectionsPerUser", "before": "16", "after": 40,
//!               "before_text": "16", "after_text": "40", "sensitive": false } ],
//!           "commands": [
//!             { "name": "Set-ImapSettings",
//!               "params": [ { "name": "Server", "value": "EX01" },
//!                           { "name": "MaxConnectionsPerUser", "value": 40 } ] } ] },
//!         { "type": "restart", "service": "MSExchangeIMAP4",
//!           "required_by": ["imap_settings EX01"], "pending": null }
//!       ]
//!     }
//!   ],
//!   "summary": { "create": 0, "update": 1, "delete": 0, "restart": 1 },
//!   "sites": ["lon"],
//!   "root": "/home/ops/exchange-manifests",
//!   "digest": "<SHA-256 of everything above>"
//! }
//! ```
//!
//! - `before` is the value observed when the plan was made (what it relied on), `after`
//!   the desired one, both as the plan's JSON rendering; `*_text` are their renderings
//!   in messages.
//! - `inputs` are the manifest paths given to `exctl plan`, relative to the directory it
//!   ran in, `root`: apply reads them there (or, when that directory is not on this
//!   machine, in its own working directory or the plan file's), so it runs from anywhere.
//! - `digest` seals the content ([`PlanFile::content_digest`]): a file edited by hand
//!   (a value changed, a host removed) is refused, naming what differs from the plan
//!   exctl makes now from the same manifests ([`PlanFile::edits_against`]). `manifests` holds every file loaded, with the SHA-256 of its
//!   text; the hosts' endpoints and users are recorded for the reader.
//! - `sites` are the sites the plan was made for (`--site`, `--selector`), in rollout
//!   order; `exctl apply FILE` applies to those sites only, observing each again just
//!   before its turn ([`PlanFile::check_fresh_hosts`]). Absent in older plans: every site.
//! - **No secret is ever written**: no password (none is part of a plan), and for a
//!   sensitive attribute neither value, and no commands for its step (`"commands": null`).
//! - `commands` are each change's commands as data ([`exctl_pwsh::Command`]: a name and
//!   named parameters whose values are JSON literals; a switch is `{"switch": true}`),
//!   compared structurally with the commands this exctl would run now.
//!
//! # Applying a plan file
//!
//! 1. [`PlanFile::check_manifests`]: every file must be there with the same digest, and
//!    no new one may appear; otherwise the file is named.
//! 2. The hosts are observed again and planned from the same manifests;
//!    [`PlanFile::check_fresh`] compares that plan with the saved one: every observed
//!    value the saved plan relied on must be unchanged, nothing new may differ, the same
//!    restarts must be due, and each step's commands must be the same. Otherwise the plan
//!    is stale and each thing that moved is named
//!    (`EX01 imap_settings EX01 MaxConnectionsPerUser: the plan expected 16, the server
//!    now has 20`).
//! 3. The fresh plan, identical to the saved one, is applied (it alone holds the commands
//!    of sensitive steps).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use exctl_manifest::SourceMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::desired::DesiredState;
use crate::plan::{Plan, Step};

/// The marker of a plan file.
pub const FORMAT: &str = "exctl-plan";
/// The plan file version this exctl writes and reads.
// 2: throttling values without limit are `"unlimited"` (as in the JSON plan 2).
// 3: each change's commands as data (`commands`), no longer script text (`script`).
pub const FORMAT_VERSION: u32 = 3;

/// Why a plan file cannot be written or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanFileError {
    /// The plan has hosts that could not be planned.
    #[error("the plan was not saved: {0} host(s) could not be planned")]
    HasErrors(usize),
    /// The file is a plan file but not valid.
    #[error("this looks like an exctl plan file, but it cannot be read: {0}")]
    Damaged(String),
    /// A plan file of an earlier format, which this exctl no longer reads.
    #[error(
        "this plan file was made by an older exctl (format_version {found}; this exctl reads version {FORMAT_VERSION}): run plan again"
    )]
    Older {
        /// The version found.
        found: u64,
    },
    /// A step names a service that no kind of this exctl declares (a hand edit, or a
    /// plan made by an exctl with another kind).
    #[error("host {host} of this plan file: {source}; make the plan again with this exctl")]
    UnknownService {
        /// The host whose step names it.
        host: String,
        /// The name and the services this exctl knows.
        source: exctl_exchange::services::UnknownService,
    },
    /// A version this exctl does not read.
    #[error(
        "this plan file has format_version {found}; this exctl reads version {FORMAT_VERSION}: make the plan again with this exctl"
    )]
    Unsupported {
        /// The version found.
        found: u64,
    },
}

/// A manifest file and the digest of its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestDigest {
    /// As loaded (relative to the working directory when relative paths were given).
    pub path: String,
    /// SHA-256 of its text, lower-case hex.
    pub sha256: String,
}

/// One attribute a saved change sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedAttr {
    /// Exchange's parameter name.
    pub name: String,
    /// The observed value the plan relied on (null when sensitive or absent).
    pub before: serde_json::Value,
    /// The desired value (null when sensitive or deleted).
    pub after: serde_json::Value,
    /// `before` as messages show it.
    pub before_text: String,
    /// `after` as messages show it.
    pub after_text: String,
    /// Whether the values are hidden.
    pub sensitive: bool,
}

/// A saved change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedChange {
    /// The kind's key.
    pub kind: String,
    /// The kind's title.
    pub title: String,
    /// The resource.
    pub id: String,
    /// `create`, `update` or `delete`.
    pub action: String,
    /// The attributes it sets.
    pub attributes: Vec<SavedAttr>,
    /// The service it requires restarting.
    pub requires_restart: Option<String>,
    /// `file:line` of the declaration.
    pub declared_at: String,
    /// The commands that converge it; null when it carries a sensitive value.
    pub commands: Option<Vec<exctl_pwsh::Command>>,
}

/// A saved restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRestart {
    /// The service.
    pub service: String,
    /// The changes that require it.
    pub required_by: Vec<String>,
    /// Why it was owed from before, if it was.
    pub pending: Option<String>,
    /// Why the host was not healthy (the service, its dependants or databases down), if
    /// it was: the step brings them back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover: Option<crate::restart::Recovery>,
}

/// A saved step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SavedStep {
    /// A change.
    Change(SavedChange),
    /// A restart.
    Restart(SavedRestart),
}

/// A host of the plan: how it is reached (never a password) and its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedHost {
    /// The host's name.
    pub name: String,
    /// The WinRM endpoint.
    pub endpoint: String,
    /// `ntlm` or `basic`.
    pub auth: String,
    /// The account.
    pub user: String,
    /// The site.
    pub site: Option<String>,
    /// The Exchange release the inventory declares.
    pub exchange: String,
    /// What the server reported.
    pub observed_version: Option<String>,
    /// Resources already in their desired state.
    pub in_sync: usize,
    /// The steps, in order.
    pub steps: Vec<SavedStep>,
}

/// Totals, for readers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSummary {
    /// Resources to create.
    pub create: usize,
    /// Resources to update.
    pub update: usize,
    /// Resources to delete.
    pub delete: usize,
    /// Restarts.
    pub restart: usize,
}

/// A plan file (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    /// [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The exctl that made it.
    pub exctl_version: String,
    /// When (UTC, RFC 3339).
    pub created_utc: String,
    /// The manifest paths given to `exctl plan`.
    pub inputs: Vec<String>,
    /// Every manifest file loaded, with its digest.
    pub manifests: Vec<ManifestDigest>,
    /// The hosts and their steps.
    pub hosts: Vec<SavedHost>,
    /// Totals.
    pub summary: SavedSummary,
    /// The sites the plan was made for (`--site`, `--selector`), in rollout order;
    /// absent in plans made before rollouts, and then every site is meant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<String>>,
    /// The directory `exctl plan` ran in (absolute): `inputs` are relative to it, so
    /// apply can read the manifests from anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// SHA-256 over the rest of the file's content ([`PlanFile::content_digest`]),
    /// written last by [`PlanFile::to_json`]: a file edited by hand no longer matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Set by [`PlanFile::read`] when `digest` is missing or does not match the content.
    #[serde(skip)]
    pub edited: bool,
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn json_of<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn text_of(v: &Option<exctl_exchange::Value>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "(none)".to_string(),
    }
}

/// The digests of every file of `sources`.
pub fn digests(sources: &SourceMap) -> Vec<ManifestDigest> {
    sources
        .iter()
        .map(|(_, f)| ManifestDigest {
            path: f.path.display().to_string(),
            sha256: sha256_hex(&f.text),
        })
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a time since the epoch.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl PlanFile {
    /// Captures `plan`, made from `sources` (loaded from `inputs`) for `state`.
    pub fn new(
        plan: &Plan,
        state: &DesiredState,
        sources: &SourceMap,
        inputs: &[String],
    ) -> Result<PlanFile, PlanFileError> {
        if plan.has_errors() {
            return Err(PlanFileError::HasErrors(plan.summary.errors));
        }
        let mut hosts = Vec::new();
        for hp in &plan.hosts {
            let spec = state.hosts.get(&hp.host.to_ascii_uppercase());
            hosts.push(SavedHost {
                name: hp.host.clone(),
                endpoint: spec.map(|s| s.endpoint.clone()).unwrap_or_default(),
                auth: spec.map(|s| s.auth.to_string()).unwrap_or_default(),
                user: spec.map(|s| s.user.clone()).unwrap_or_default(),
                site: hp.site.clone(),
                exchange: hp.expected_version.as_str().to_string(),
                observed_version: hp.observed_version.clone(),
                in_sync: hp.in_sync,
                steps: hp.steps.iter().map(save_step).collect(),
            });
        }
        Ok(PlanFile {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            exctl_version: env!("CARGO_PKG_VERSION").to_string(),
            created_utc: rfc3339(SystemTime::now()),
            inputs: inputs.to_vec(),
            manifests: digests(sources),
            hosts,
            summary: SavedSummary {
                create: plan.summary.create,
                update: plan.summary.update,
                delete: plan.summary.delete,
                restart: plan.summary.restart,
            },
            sites: None,
            root: None,
            digest: None,
            edited: false,
        })
    }

    /// The SHA-256 (lower-case hex) of the plan's content: every field but `digest`, as
    /// compact JSON in the order this type writes it (so formatting is free, content is
    /// not).
    pub fn content_digest(&self) -> String {
        let mut bare = self.clone();
        bare.digest = None;
        sha256_hex(&serde_json::to_string(&bare).unwrap_or_default())
    }

    /// The file's text, sealed with its [`PlanFile::content_digest`].
    pub fn to_json(&self) -> String {
        let mut sealed = self.clone();
        sealed.digest = Some(self.content_digest());
        let mut s = serde_json::to_string_pretty(&sealed).unwrap_or_default();
        s.push('\n');
        s
    }

    /// What differs between this file and `now`, the plan file exctl makes now from the
    /// same manifests (for a file whose digest does not match: what was edited). The
    /// observed values (`before`) are left to [`PlanFile::check_fresh`]: they move with
    /// the servers.
    pub fn edits_against(&self, now: &PlanFile) -> Vec<String> {
        let mut out = Vec::new();
        if self.inputs != now.inputs {
            out.push(format!(
                "inputs: the file says {:?}, the plan was made from {:?}",
                self.inputs, now.inputs
            ));
        }
        for h in &self.hosts {
            let Some(n) = now
                .hosts
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case(&h.name))
            else {
                out.push(format!(
                    "host {}: in the file, but the manifests do not plan it",
                    h.name
                ));
                continue;
            };
            for (field, a, b) in [
                ("endpoint", &h.endpoint, &n.endpoint),
                ("auth", &h.auth, &n.auth),
                ("user", &h.user, &n.user),
                ("exchange", &h.exchange, &n.exchange),
            ] {
                if a != b {
                    out.push(format!(
                        "host {} {field}: the file says '{a}', the manifests say '{b}'",
                        h.name
                    ));
                }
            }
            if h.steps.len() != n.steps.len() {
                out.push(format!(
                    "host {}: the file has {} step(s), a plan made now from the manifests has {}",
                    h.name,
                    h.steps.len(),
                    n.steps.len()
                ));
                continue;
            }
            for (i, (a, b)) in h.steps.iter().zip(&n.steps).enumerate() {
                step_edits(&h.name, i + 1, a, b, &mut out);
            }
        }
        for n in &now.hosts {
            if !n.steps.is_empty()
                && !self
                    .hosts
                    .iter()
                    .any(|h| h.name.eq_ignore_ascii_case(&n.name))
            {
                out.push(format!(
                    "host {}: the manifests plan {} step(s) for it, the file has none",
                    n.name,
                    n.steps.len()
                ));
            }
        }
        out
    }

    /// Reads `text` if it is a plan file: `Ok(None)` when it is not one (a manifest),
    /// an error when it carries the marker but cannot be used.
    pub fn read(text: &str) -> Result<Option<PlanFile>, PlanFileError> {
        let t = text.trim_start_matches('\u{feff}').trim_start();
        if !t.starts_with('{') {
            return Ok(None);
        }
        let value: serde_json::Value = match serde_json::from_str(t) {
            Ok(v) => v,
            // A damaged file that still shows the marker is a damaged plan, not YAML.
            Err(e) if t.contains(&format!("\"{FORMAT}\"")) => {
                return Err(PlanFileError::Damaged(e.to_string()));
            }
            Err(_) => return Ok(None),
        };
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Ok(None);
        }
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(found) if found < u64::from(FORMAT_VERSION) => {
                return Err(PlanFileError::Older { found });
            }
            Some(found) => return Err(PlanFileError::Unsupported { found }),
            None => {
                return Err(PlanFileError::Damaged(
                    "format_version is missing".to_string(),
                ));
            }
        }
        let mut pf: PlanFile =
            serde_json::from_value(value).map_err(|e| PlanFileError::Damaged(e.to_string()))?;
        pf.check_services()?;
        pf.edited = pf.digest.as_deref() != Some(pf.content_digest().as_str());
        Ok(Some(pf))
    }

    /// Every service a step names is one this exctl restarts (`kinds::services`): an
    /// unknown name is refused when the file is read, not met half-way through apply.
    fn check_services(&self) -> Result<(), PlanFileError> {
        for h in &self.hosts {
            for step in &h.steps {
                let name = match step {
                    SavedStep::Change(c) => c.requires_restart.as_deref(),
                    SavedStep::Restart(r) => Some(r.service.as_str()),
                };
                if let Some(name) = name {
                    name.parse::<exctl_exchange::kind::Service>()
                        .map_err(|source| PlanFileError::UnknownService {
                            host: h.name.clone(),
                            source,
                        })?;
                }
            }
        }
        Ok(())
    }

    /// Whether the manifests loaded now are exactly those the plan was made from;
    /// otherwise one message per file that differs.
    pub fn check_manifests(&self, sources: &SourceMap) -> Result<(), Vec<String>> {
        let now: BTreeMap<String, String> = digests(sources)
            .into_iter()
            .map(|d| (d.path, d.sha256))
            .collect();
        let then: BTreeMap<&str, &str> = self
            .manifests
            .iter()
            .map(|d| (d.path.as_str(), d.sha256.as_str()))
            .collect();
        let mut problems = Vec::new();
        for (path, digest) in &then {
            match now.get(*path) {
                None => problems.push(format!(
                    "{path}: the plan was made from this manifest, which is no longer there"
                )),
                Some(d) if d != digest => problems.push(format!(
                    "{path}: this manifest changed since the plan was made (SHA-256 {} now, {} then)",
                    short(d),
                    short(digest)
                )),
                Some(_) => {}
            }
        }
        for path in now.keys() {
            if !then.contains_key(path.as_str()) {
                problems.push(format!(
                    "{path}: this manifest is new since the plan was made"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Whether `fresh` (the same manifests, observed now) is the saved plan; otherwise
    /// one message per thing that moved on the servers.
    pub fn check_fresh(&self, fresh: &Plan) -> Result<(), Vec<String>> {
        self.check_fresh_of(fresh, |_| true)
    }

    /// [`PlanFile::check_fresh`] for some hosts only (one site of a rollout, observed
    /// again just before it is applied): `fresh` holds those hosts.
    pub fn check_fresh_hosts(&self, fresh: &Plan, hosts: &[String]) -> Result<(), Vec<String>> {
        self.check_fresh_of(fresh, |name| {
            hosts.iter().any(|h| h.eq_ignore_ascii_case(name))
        })
    }

    fn check_fresh_of(
        &self,
        fresh: &Plan,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<(), Vec<String>> {
        let mut moved = Vec::new();
        for saved in self.hosts.iter().filter(|h| wanted(&h.name)) {
            let Some(now) = fresh
                .hosts
                .iter()
                .find(|h| h.host.eq_ignore_ascii_case(&saved.name))
            else {
                if !saved.steps.is_empty() {
                    moved.push(format!(
                        "{}: the plan changes this host, which the manifests no longer target",
                        saved.name
                    ));
                }
                continue;
            };
            if !now.errors.is_empty() {
                // Nothing is known of the host now: no comparison (its empty step list
                // would read as "everything is in place").
                for e in &now.errors {
                    moved.push(format!("{}: cannot be observed now: {e}", saved.name));
                }
                continue;
            }
            self.compare_host(saved, &now.steps, &mut moved);
        }
        for now in &fresh.hosts {
            if !now.steps.is_empty()
                && !self
                    .hosts
                    .iter()
                    .any(|h| h.name.eq_ignore_ascii_case(&now.host))
            {
                moved.push(format!(
                    "{}: the plan has nothing for this host, which now has changes",
                    now.host
                ));
            }
        }
        if moved.is_empty() { Ok(()) } else { Err(moved) }
    }

    fn compare_host(&self, saved: &SavedHost, now: &[Step], moved: &mut Vec<String>) {
        let host = &saved.name;
        let key = |kind: &str, id: &str| (kind.to_string(), id.to_ascii_lowercase());
        let saved_changes: BTreeMap<(String, String), &SavedChange> = saved
            .steps
            .iter()
            .filter_map(|s| match s {
                SavedStep::Change(c) => Some((key(&c.kind, &c.id), c)),
                SavedStep::Restart(_) => None,
            })
            .collect();
        let now_changes: BTreeMap<(String, String), &crate::plan::ChangeStep> = now
            .iter()
            .filter_map(|s| match s {
                Step::Change(c) => Some((key(c.kind, &c.id), c)),
                Step::Restart(_) => None,
            })
            .collect();
        for (k, sc) in &saved_changes {
            let head = format!("{host} {} {}", sc.kind, sc.id);
            let Some(nc) = now_changes.get(k) else {
                match sc.action.as_str() {
                    "create" => moved.push(format!(
                        "{head}: the plan expected it not to exist, the server now has it as wanted"
                    )),
                    "delete" => moved.push(format!(
                        "{head}: the plan expected it to exist, the server no longer has it"
                    )),
                    _ => {
                        for a in &sc.attributes {
                            moved.push(format!(
                                "{head} {}: the plan expected {}, the server now has {}",
                                a.name,
                                shown(&a.before_text, a.sensitive),
                                shown(&a.after_text, a.sensitive)
                            ));
                        }
                    }
                }
                continue;
            };
            let now_action = nc
                .actions
                .first()
                .map(|a| json_of(a).as_str().unwrap_or("").to_string())
                .unwrap_or_default();
            if now_action != sc.action {
                moved.push(format!(
                    "{head}: the plan expected to {} it, the server now needs a {now_action}",
                    sc.action
                ));
                continue;
            }
            let moved_before = moved.len();
            for a in &sc.attributes {
                match nc.attributes.iter().find(|n| n.name == a.name) {
                    None => moved.push(format!(
                        "{head} {}: the plan expected {}, the server now has {}",
                        a.name,
                        shown(&a.before_text, a.sensitive),
                        shown(&a.after_text, a.sensitive)
                    )),
                    Some(_) if a.sensitive => {}
                    Some(n) if json_of(&n.before) != a.before => moved.push(format!(
                        "{head} {}: the plan expected {}, the server now has {}",
                        a.name,
                        a.before_text,
                        text_of(&n.before)
                    )),
                    Some(_) => {}
                }
            }
            for n in &nc.attributes {
                if !sc.attributes.iter().any(|a| a.name == n.name) {
                    moved.push(format!(
                        "{head} {}: the plan expected {}, the server now has {}",
                        n.name,
                        shown(&text_of(&n.after), n.sensitive),
                        shown(&text_of(&n.before), n.sensitive)
                    ));
                }
            }
            // With the same attributes to set, the commands must be those reviewed (they
            // can differ only when another exctl made the plan).
            if moved.len() == moved_before
                && let Some(commands) = &sc.commands
                && !same_commands(commands, &nc.commands)
            {
                moved.push(format!(
                    "{head}: the plan's command differs from the one this exctl ({}) would run; the plan was made by exctl {}",
                    env!("CARGO_PKG_VERSION"),
                    self.exctl_version
                ));
            }
        }
        for (k, nc) in &now_changes {
            if saved_changes.contains_key(k) {
                continue;
            }
            let head = format!("{host} {} {}", nc.kind, nc.id);
            let action = nc
                .actions
                .first()
                .map(|a| json_of(a).as_str().unwrap_or("").to_string())
                .unwrap_or_default();
            match action.as_str() {
                "create" => moved.push(format!(
                    "{head}: the plan expected it to exist, the server no longer has it"
                )),
                "delete" => moved.push(format!(
                    "{head}: the plan expected it to be absent, the server now has it"
                )),
                _ => {
                    for n in &nc.attributes {
                        moved.push(format!(
                            "{head} {}: the plan expected {}, the server now has {}",
                            n.name,
                            shown(&text_of(&n.after), n.sensitive),
                            shown(&text_of(&n.before), n.sensitive)
                        ));
                    }
                }
            }
        }
        let saved_restarts: Vec<&str> = saved
            .steps
            .iter()
            .filter_map(|s| match s {
                SavedStep::Restart(r) => Some(r.service.as_str()),
                SavedStep::Change(_) => None,
            })
            .collect();
        for s in now {
            if let Step::Restart(r) = s
                && !saved_restarts
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(r.service.name()))
            {
                moved.push(match &r.recover {
                    Some(rec) => format!(
                        "{host} {}: the plan expected a healthy host, it is not ({})",
                        r.service, rec.reason
                    ),
                    None => format!(
                        "{host} {}: the plan expected no restart, the server now owes one ({})",
                        r.service,
                        r.pending.as_deref().unwrap_or("required by a change")
                    ),
                });
            }
        }
        for name in saved_restarts {
            let still = now.iter().any(
                |s| matches!(s, Step::Restart(r) if r.service.name().eq_ignore_ascii_case(name)),
            );
            if !still {
                moved.push(format!(
                    "{host} {name}: the plan expected a restart, the server no longer needs one"
                ));
            }
        }
    }
}

/// The differences of one step between a plan file and the plan made now.
fn step_edits(host: &str, n: usize, a: &SavedStep, b: &SavedStep, out: &mut Vec<String>) {
    match (a, b) {
        (SavedStep::Change(a), SavedStep::Change(b)) => {
            let head = format!("host {host} step {n} ({} {})", a.kind, a.id);
            if a.kind != b.kind || !a.id.eq_ignore_ascii_case(&b.id) || a.action != b.action {
                out.push(format!(
                    "{head}: the file says {} {} {}, the manifests say {} {} {}",
                    a.action, a.kind, a.id, b.action, b.kind, b.id
                ));
                return;
            }
            for x in &a.attributes {
                match b.attributes.iter().find(|y| y.name == x.name) {
                    Some(y) if y.after != x.after || y.after_text != x.after_text => {
                        out.push(format!(
                            "{head} {}: the file says {}, the manifests say {}",
                            x.name, x.after_text, y.after_text
                        ));
                    }
                    Some(_) => {}
                    None => out.push(format!(
                        "{head} {}: in the file, not in the plan made from the manifests",
                        x.name
                    )),
                }
            }
            for y in &b.attributes {
                if !a.attributes.iter().any(|x| x.name == y.name) {
                    out.push(format!(
                        "{head} {}: the manifests set it, the file does not",
                        y.name
                    ));
                }
            }
            match (&a.commands, &b.commands) {
                (Some(x), Some(y)) if !same_commands(x, y) => {
                    out.push(format!("{head}: its commands were edited"));
                }
                (Some(_), None) | (None, Some(_)) => {
                    out.push(format!("{head}: its commands were edited"));
                }
                _ => {}
            }
        }
        (SavedStep::Restart(a), SavedStep::Restart(b)) if a.service == b.service => {}
        _ => out.push(format!(
            "host {host} step {n}: the file's step is not the one the manifests plan"
        )),
    }
}

/// Whether two lists of commands do the same: the same commands in the same order, each
/// with the same parameters in the same order and the same values. Names compare ignoring
/// case, as PowerShell resolves commands and binds parameters; values exactly.
fn same_commands(a: &[exctl_pwsh::Command], b: &[exctl_pwsh::Command]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name.eq_ignore_ascii_case(&y.name)
                && x.params.len() == y.params.len()
                && x.params
                    .iter()
                    .zip(&y.params)
                    .all(|(p, q)| p.name.eq_ignore_ascii_case(&q.name) && p.value == q.value)
        })
}

fn shown(text: &str, sensitive: bool) -> String {
    if sensitive {
        "(sensitive)".to_string()
    } else {
        text.to_string()
    }
}

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

fn save_step(step: &Step) -> SavedStep {
    match step {
        Step::Change(c) => {
            let sensitive = c.attributes.iter().any(|a| a.sensitive);
            SavedStep::Change(SavedChange {
                kind: c.kind.to_string(),
                title: c.title.to_string(),
                id: c.id.clone(),
                action: c
                    .actions
                    .first()
                    .map(|a| json_of(a).as_str().unwrap_or("").to_string())
                    .unwrap_or_default(),
                attributes: c
                    .attributes
                    .iter()
                    .map(|a| SavedAttr {
                        name: a.name.clone(),
                        before: if a.sensitive {
                            serde_json::Value::Null
                        } else {
                            json_of(&a.before)
                        },
                        after: if a.sensitive {
                            serde_json::Value::Null
                        } else {
                            json_of(&a.after)
                        },
                        before_text: shown(&text_of(&a.before), a.sensitive),
                        after_text: shown(&text_of(&a.after), a.sensitive),
                        sensitive: a.sensitive,
                    })
                    .collect(),
                requires_restart: c.requires_restart.map(|s| s.name().to_string()),
                declared_at: c.declared_at.clone(),
                commands: (!sensitive).then(|| c.commands.clone()),
            })
        }
        Step::Restart(r) => SavedStep::Restart(SavedRestart {
            service: r.service.name().to_string(),
            required_by: r.required_by.clone(),
            pending: r.pending.clone(),
            recover: r.recover.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_compare_by_structure() {
        use exctl_pwsh::{Arg, Command};
        let a = vec![
            Command::new("Set-ImapSettings")
                .param("Server", "EX01")
                .param("MaxConnectionsPerUser", 40),
        ];
        let same = vec![
            Command::new("set-imapsettings")
                .param("server", "EX01")
                .param("MaxConnectionsPerUser", 40),
        ];
        assert!(same_commands(&a, &same));
        for other in [
            vec![
                Command::new("Set-ImapSettings")
                    .param("Server", "EX01")
                    .param("MaxConnectionsPerUser", "40"),
            ],
            vec![Command::new("Set-ImapSettings").param("Server", "EX01")],
            vec![
                Command::new("Set-ImapSettings")
                    .param("Server", "ex01")
                    .param("MaxConnectionsPerUser", 40),
            ],
            vec![
                Command::new("Set-PopSettings")
                    .param("Server", "EX01")
                    .param("MaxConnectionsPerUser", 40),
            ],
            vec![
                Command::new("Set-ImapSettings")
                    .param("Server", "EX01")
                    .param("MaxConnectionsPerUser", Arg::List(vec![Arg::Int(40)])),
            ],
            [a.clone(), a.clone()].concat(),
        ] {
            assert!(!same_commands(&a, &other), "{other:?}");
        }
    }

    #[test]
    fn rfc3339_of_known_times() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_709_209_800);
        assert_eq!(rfc3339(t), "2024-02-29T12:30:00Z");
    }

    #[test]
    fn recognised_by_content_only() {
        assert_eq!(PlanFile::read("targets: [EX01]\n"), Ok(None));
        assert_eq!(PlanFile::read("{\"targets\": [\"EX01\"]}"), Ok(None));
        assert!(matches!(
            PlanFile::read("{\"format\": \"exctl-plan\", \"format_version\": 9}"),
            Err(PlanFileError::Unsupported { found: 9 })
        ));
        // Format 2 stored script text: such a file is refused with what to do.
        let old = PlanFile::read("{\"format\": \"exctl-plan\", \"format_version\": 2}");
        assert_eq!(old, Err(PlanFileError::Older { found: 2 }));
        let message = old.unwrap_err().to_string();
        assert!(message.contains("made by an older exctl"), "{message}");
        assert!(message.contains("run plan again"), "{message}");
        assert!(matches!(
            PlanFile::read("{\"format\": \"exctl-plan\", \"format_ver"),
            Err(PlanFileError::Damaged(_))
        ));
    }

    /// The module docs' example, as plan files of format 3 were written before services
    /// became data (a store restart added, in another spelling).
    const FORMAT_3: &str = r#"{
      "format": "exctl-plan", "format_version": 3, "exctl_version": "0.1.0",
      "created_utc": "2024-05-01T09:00:00Z", "inputs": ["manifests"],
      "manifests": [ { "path": "manifests/inventory.yaml", "sha256": "00" } ],
      "hosts": [ {
        "name": "EX01", "endpoint": "https://ex01.contoso.local:5986/wsman",
        "auth": "ntlm", "user": "CONTOSO\\svc-exctl", "site": "lon",
        "exchange": "2010-sp3", "observed_version": "Version 14.3 (Build 123.4)",
        "in_sync": 0,
        "steps": [
          { "type": "change", "kind": "imap_settings", "title": "IMAP4 settings",
            "id": "EX01", "action": "update", "requires_restart": "MSExchangeIMAP4",
            "declared_at": "manifests/lon.yaml:3",
            "attributes": [
              { "name": "MaxConnectionsPerUser", "before": "16", "after": 40,
                "before_text": "16", "after_text": "40", "sensitive": false } ],
            "commands": [
              { "name": "Set-ImapSettings",
                "params": [ { "name": "Server", "value": "EX01" },
                            { "name": "MaxConnectionsPerUser", "value": 40 } ] } ] },
          { "type": "restart", "service": "MSExchangeIMAP4",
            "required_by": ["imap_settings EX01"], "pending": null },
          { "type": "restart", "service": "msexchangeis",
            "required_by": [], "pending": "owed from before" }
        ] } ],
      "summary": { "create": 0, "update": 1, "delete": 0, "restart": 2 }
    }"#;

    #[test]
    fn format_3_files_load_and_an_unknown_service_is_refused_by_name() {
        let pf = PlanFile::read(FORMAT_3).unwrap().unwrap();
        assert_eq!(pf.hosts[0].steps.len(), 3);
        let unknown = FORMAT_3.replace("\"msexchangeis\"", "\"MSExchangeFoo\"");
        let e = PlanFile::read(&unknown).unwrap_err();
        assert!(
            matches!(&e, PlanFileError::UnknownService { host, .. } if host == "EX01"),
            "{e:?}"
        );
        assert!(
            e.to_string().contains("unknown service 'MSExchangeFoo'"),
            "{e}"
        );
        let unknown = FORMAT_3.replace(
            "\"requires_restart\": \"MSExchangeIMAP4\"",
            "\"requires_restart\": \"MSExchangeBar\"",
        );
        assert!(matches!(
            PlanFile::read(&unknown),
            Err(PlanFileError::UnknownService { .. })
        ));
    }
}
