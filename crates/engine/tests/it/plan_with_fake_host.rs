//! Planning against a scripted host: what the observe script asks, how the answers become
//! ordered steps with their restart, and the three renderings (snapshots).

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use exctl_engine::desired::{self, HostSpec};
use exctl_engine::observe::{self, RunError, Runner, ScriptOutput};
use exctl_engine::render::{self, TextOptions};
use exctl_exchange::RawValue;
use exctl_exchange::record::encode;

struct FakeHost {
    records: Vec<String>,
    scripts: Mutex<Vec<String>>,
}

impl Runner for FakeHost {
    fn run<'a>(
        &'a self,
        _host: &'a HostSpec,
        script: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<ScriptOutput, RunError>> + Send + 'a>> {
        self.scripts.lock().unwrap().push(script.to_string());
        let stdout = self.records.join("\r\n");
        Box::pin(async move {
            Ok(ScriptOutput {
                stdout,
                stderr: String::new(),
                exit_code: 0,
            })
        })
    }
}

const INVENTORY: &str = "hosts:\n  EX01:\n    endpoint: http://127.0.0.1:5985/wsman\n    user: CONTOSO\\Administrator\n    credential: env:EXCTL_TEST_PASSWORD\n    exchange: 2010-sp3\n    site: lon\n    exchange_auth: ntlm\n";
const SITE: &str = "targets: [EX01]\nimap_settings:\n  MaxConnectionsPerUser: 40\n  MaxConnectionFromSingleIP: 2000\n  Banner: The Microsoft Exchange IMAP4 service is ready.\n";

fn load() -> (exctl_manifest::SourceMap, desired::DesiredState) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.yaml"), INVENTORY).unwrap();
    std::fs::write(dir.path().join("lon.yaml"), SITE).unwrap();
    let (sources, docs, mut diags) = exctl_manifest::load_paths(&[dir.path().to_path_buf()]);
    let state = desired::build(&sources, &docs, &mut diags);
    assert!(diags.is_empty(), "{:?}", diags.as_slice());
    (sources, state)
}

fn host(version: &str) -> FakeHost {
    let s = |v: &str| RawValue::Str(v.into());
    FakeHost {
        records: vec![
            "WARNING: noise that is not a record".into(),
            encode("__host", "AdminDisplayVersion", &s(version)),
            encode("EX01", "__exists", &s("True")),
            encode("EX01", "MaxConnectionsPerUser", &s("16")),
            encode("EX01", "MaxConnectionFromSingleIP", &s("2000")),
            encode(
                "EX01",
                "Banner",
                &s("The Microsoft Exchange IMAP4 service is ready."),
            ),
        ],
        scripts: Mutex::new(Vec::new()),
    }
}

fn normalise(s: &str) -> String {
    // Temp directories differ per run.
    let mut out = String::new();
    for line in s.lines() {
        if let Some(i) = line.find("declared at ") {
            let file = line[i + 12..].rsplit('/').next().unwrap_or("");
            out.push_str(&format!("{}declared at {file}\n", &line[..i]));
        } else if let Some(rest) = line.strip_prefix("- `") {
            // The markdown's "Declared at" list.
            let file = rest.rsplit('/').next().unwrap_or("");
            out.push_str(&format!("- `{file}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[tokio::test]
async fn one_round_trip_and_an_ordered_plan() {
    let (sources, state) = load();
    let fake = host("Version 14.3 (Build 123.4)");
    let plan = observe::plan(&state, &fake, &sources, 4).await;
    let scripts = fake.scripts.lock().unwrap().clone();
    assert_eq!(scripts.len(), 1, "one script per host");
    assert!(scripts[0].contains("Get-ImapSettings -Server 'EX01'"));
    // access: psrp (the default): the Exchange cmdlets are the relay's functions.
    assert!(scripts[0].contains("function Get-ImapSettings {"));
    assert!(!scripts[0].contains("Add-PSSnapin"));
    assert_eq!(plan.summary.update, 1);
    assert_eq!(plan.summary.restart, 1);
    assert!(plan.has_changes());
    insta::assert_snapshot!(
        "text",
        normalise(&render::text(&plan, TextOptions::default()))
    );
    insta::assert_snapshot!("markdown", normalise(&render::markdown(&plan)));
    let mut json = render::json(&plan);
    json["hosts"][0]["steps"][0]["declared_at"] = "lon.yaml:3".into();
    insta::assert_json_snapshot!("json", json);
}

#[tokio::test]
async fn a_version_mismatch_is_an_error_of_that_host() {
    let (sources, state) = load();
    let plan = observe::plan(&state, &host("Version 14.0 (Build 639.21)"), &sources, 4).await;
    assert!(plan.has_errors());
    let e = &plan.hosts[0].errors[0];
    assert!(
        e.contains("runs Exchange 2010 RTM") && e.contains("declares 2010-sp3"),
        "{e}"
    );
}

#[tokio::test]
async fn nothing_to_do_when_in_sync() {
    let (sources, state) = load();
    let mut fake = host("Version 14.3 (Build 123.4)");
    fake.records[3] = encode("EX01", "MaxConnectionsPerUser", &RawValue::Str("40".into()));
    let plan = observe::plan(&state, &fake, &sources, 4).await;
    assert!(!plan.has_changes() && !plan.has_errors());
    assert!(
        render::text(&plan, TextOptions::default()).contains("no changes (1 resource in sync)")
    );
}
