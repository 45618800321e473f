//! exctl's PSRP client against the simulator's two PowerShell remoting endpoints:
//! `Microsoft.PowerShell` on `/wsman` (full language) and Exchange's `Microsoft.Exchange`
//! on `/PowerShell` (NoLanguage, Exchange cmdlets only, deserialized objects).

use std::sync::Arc;

use exctl_psrp::{Command, PipelineSpec, PipelineState, PoolOptions, RunspacePool, Value};
use exctl_secret::Secret;
use exctl_sim::exchange::{ClockRef, ExchangeOrg, OrgHandle, ScaledClock, Sp};
use exctl_sim::psrp::PsrpHost;
use exctl_sim::state::SimState;
use exctl_sim::{HostOptions, RunningSim, SimConfig};
use exctl_winrm::{AuthMethod, Client, ClientConfig};

async fn start() -> (RunningSim, OrgHandle) {
    let clock = ClockRef(Arc::new(ScaledClock::with_scale(0.001)));
    let org = OrgHandle::new(ExchangeOrg::seed_named(Sp::Sp3, clock, "EXCH01"));
    let config = SimConfig::default();
    let executor = exctl_sim::exchange_host(&config, org.clone());
    let psrp = PsrpHost::new(org.clone(), HostOptions::default());
    let sim =
        exctl_sim::serve_with_psrp(config, executor, Arc::new(SimState::default()), Some(psrp))
            .await
            .unwrap();
    (sim, org)
}

fn client(url: &str, adjust: impl FnOnce(&mut ClientConfig)) -> Client {
    let mut cfg = ClientConfig::new(url, "CONTOSO\\Administrator", Secret::new("P@ssw0rd!"));
    cfg.auth = AuthMethod::Ntlm;
    adjust(&mut cfg);
    Client::new(cfg).unwrap()
}

fn exchange_url(sim: &RunningSim) -> String {
    sim.url().replace("/wsman", "/PowerShell/")
}

#[tokio::test]
async fn the_wsman_endpoint_runs_scripts_and_commands() {
    let (sim, _org) = start().await;
    let c = client(sim.url(), |_| {});
    let mut pool = RunspacePool::open(&c, &PoolOptions::powershell())
        .await
        .unwrap();
    assert_eq!(pool.server_protocol_version(), (2, 1));
    assert_eq!(pool.server_ps_version(), "2.0");
    let r = pool
        .run(&PipelineSpec::script(
            "1+1; 'two'; [datetime]'2024-05-01 10:00:00'",
        ))
        .await
        .unwrap();
    assert!(r.succeeded(), "{r:?}");
    assert_eq!(
        r.output,
        vec![
            Value::I32(2),
            Value::str("two"),
            Value::DateTime("2024-05-01T10:00:00.0000000".into())
        ]
    );

    let r = pool
        .run(&PipelineSpec::command(
            Command::new("Get-Service").param("Name", "MSExchangeIMAP4"),
        ))
        .await
        .unwrap();
    assert!(r.succeeded(), "{r:?}");
    let o = r.output[0].as_object().unwrap();
    assert_eq!(
        o.type_names[0],
        "Deserialized.System.ServiceProcess.ServiceController"
    );
    assert!(r.output[0].property("Status").is_some());

    // Errors come as records with their category and FullyQualifiedErrorId.
    let r = pool
        .run(&PipelineSpec::command(Command::new("Get-ImapSettings")))
        .await
        .unwrap();
    assert_eq!(r.state, PipelineState::Completed);
    assert!(!r.succeeded());
    let e = r.failure.as_ref().or(r.errors.first()).unwrap();
    assert!(e.message.contains("is not recognized"), "{e:?}");
    assert_eq!(
        e.fully_qualified_error_id.as_deref(),
        Some("CommandNotFoundException")
    );
    // The runspace keeps what a pipeline did: the snap-in loaded by one serves the next.
    let r = pool
        .run(&PipelineSpec::command(Command::new("Add-PSSnapin").param(
            "Name",
            "Microsoft.Exchange.Management.PowerShell.E2010",
        )))
        .await
        .unwrap();
    assert!(r.succeeded(), "{r:?}");
    let r = pool
        .run(&PipelineSpec::command(
            Command::new("Get-ImapSettings").param("Server", "EXCH01"),
        ))
        .await
        .unwrap();
    assert!(r.succeeded(), "{r:?}");
    // Pipelines run in the runspace's global scope: what one defines at its top level,
    // the next sees (as `Invoke-Command -Session` does on Windows); another pool does not.
    let r = pool
        .run(&PipelineSpec::script(
            "$kept = 41; function Add-One($x) { $x + 1 }",
        ))
        .await
        .unwrap();
    assert!(r.succeeded(), "{r:?}");
    let r = pool
        .run(&PipelineSpec::script("Add-One $kept"))
        .await
        .unwrap();
    assert_eq!(r.output, vec![Value::I32(42)], "{r:?}");
    let mut other = RunspacePool::open(&c, &PoolOptions::powershell())
        .await
        .unwrap();
    let r = other
        .run(&PipelineSpec::script("$kept -eq $null"))
        .await
        .unwrap();
    assert_eq!(r.output, vec![Value::Bool(true)], "{r:?}");
    other.close().await.unwrap();
    pool.close().await.unwrap();
}

#[tokio::test]
async fn large_output_crosses_fragments_within_a_small_envelope() {
    let (sim, _org) = start().await;
    let c = client(sim.url(), |cfg| cfg.max_envelope_size = 16 * 1024);
    let mut pool = RunspacePool::open(&c, &PoolOptions::powershell())
        .await
        .unwrap();
    let r = pool
        .run(&PipelineSpec::script("'x' * 200000; 1..50"))
        .await
        .unwrap();
    assert!(r.succeeded(), "{r:?}");
    assert_eq!(r.output[0].as_str().map(str::len), Some(200_000));
    assert_eq!(r.output.len(), 51);
    pool.close().await.unwrap();
}

#[tokio::test]
async fn the_exchange_endpoint_runs_exchange_cmdlets_only() {
    let (sim, org) = start().await;
    let c = client(&exchange_url(&sim), |_| {});
    let mut pool = RunspacePool::open(&c, &PoolOptions::exchange())
        .await
        .unwrap();
    let r = pool
        .run(&PipelineSpec::command(
            Command::new("Get-ImapSettings").param("Server", "EXCH01"),
        ))
        .await
        .unwrap();
    assert!(r.succeeded(), "{r:?}");
    let o = r.output[0].as_object().unwrap();
    assert!(
        o.type_names[0].starts_with("Deserialized."),
        "{:?}",
        o.type_names
    );
    assert!(r.output[0].property("MaxConnectionsPerUser").is_some());

    // NoLanguage: a script is refused as Exchange refuses it.
    let r = pool
        .run(&PipelineSpec::script("Get-ImapSettings"))
        .await
        .unwrap();
    assert_eq!(r.state, PipelineState::Failed);
    let f = r.failure.unwrap();
    assert_eq!(
        f.fully_qualified_error_id.as_deref(),
        Some("ScriptsNotAllowed")
    );
    assert!(f.message.contains("no-language mode"));

    // Only Exchange's cmdlets exist there.
    let r = pool
        .run(&PipelineSpec::command(Command::new("Get-Service")))
        .await
        .unwrap();
    assert_eq!(r.state, PipelineState::Failed);
    assert_eq!(
        r.failure.unwrap().fully_qualified_error_id.as_deref(),
        Some("CommandNotFoundException")
    );
    pool.close().await.unwrap();

    let state = sim.state().snapshot();
    let json = serde_json::to_value(&state).unwrap();
    assert_eq!(
        json["counters"]["psrp_exchange_sessions_opened"], 1,
        "{json}"
    );
    assert_eq!(json["counters"]["psrp_pipelines"], 3, "{json}");
    let ex = org.lock().state_section();
    assert_eq!(ex["exchange_sessions"], 1);
    assert!(
        ex["cmdlets"].get("Add-PSSnapin").is_none(),
        "no snap-in load: {ex}"
    );
}

/// Issue 13: the changes exctl plans are plain commands, so they run as they are on
/// Exchange's NoLanguage endpoint, sent as commands with parameters (no script text):
/// switches, booleans, numbers, lists and `$null` bind there as the cmdlets expect.
#[tokio::test]
async fn planned_changes_run_on_the_exchange_endpoint_as_commands() {
    use exctl_exchange::kind::{Kind, ObserveContext, ParseContext, read_for_host};
    use exctl_exchange::kinds::IMAP4;
    use exctl_exchange::kinds::ad_permissions::AdPermissions;
    use exctl_exchange::kinds::throttling_associations::ThrottlingAssociations;
    use exctl_exchange::kinds::throttling_policies::ThrottlingPolicies;
    use exctl_exchange::record::Observations;
    use exctl_exchange::{RawValue, Version};

    let yaml = "imap_settings:\n  MaxConnectionsPerUser: 40\n  ProtocolLogEnabled: true\n  SSLBindings: ['0.0.0.0:993', '[::]:993']\nthrottling_policies:\n  Agents:\n    IMAPMaxConcurrency: unlimited\n    EWSMaxConcurrency: 20\nthrottling_associations:\n  - identity: Administrator\n    policy: Agents\nad_permissions:\n  - {target: organization, user: 'CONTOSO\\uccx-agent', extended_rights: [ms-Exch-Store-Visible], deny: true}\n";
    let (_, docs, mut diags) = exctl_manifest::parse_str("site.yaml", yaml);
    let root = &docs[0].root;
    let pctx = ParseContext::new(Version::Sp3, vec!["EXCH01".into()], "site.yaml");
    let section = |key: &str| {
        root.as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.text == key).map(|(_, v)| v))
            .expect("section")
    };
    let kinds: [&dyn Kind; 4] = [
        &AdPermissions,
        &ThrottlingPolicies,
        &ThrottlingAssociations,
        &IMAP4,
    ];
    let resources: Vec<_> = kinds
        .iter()
        .map(|k| read_for_host(*k, section(k.key()), &pctx, "EXCH01", &mut diags))
        .collect();
    assert!(!diags.iter().any(|d| d.is_error()), "{diags:?}");

    let (sim, _org) = start().await;
    let c = client(&exchange_url(&sim), |_| {});
    let mut pool = RunspacePool::open(&c, &PoolOptions::exchange())
        .await
        .unwrap();
    let r = pool
        .run(&PipelineSpec::command(Command::new(
            "Get-OrganizationConfig",
        )))
        .await
        .unwrap();
    let dn = r.output[0]
        .property("DistinguishedName")
        .map(Value::display)
        .expect("a distinguished name");

    // What the server has now, as the observe script would report it.
    let s = |v: &str| RawValue::Str(v.into());
    let mut o = Observations::default();
    let perm = "ad_permissions:organization|CONTOSO\\uccx-agent";
    o.insert(perm, "__exists", s("True"));
    o.insert(perm, "TargetDistinguishedName", s(&dn));
    for attr in ["Deny", "InheritanceType", "AccessRights", "ExtendedRights"] {
        o.insert(perm, attr, RawValue::List(Vec::new()));
    }
    o.insert("EXCH01", "__exists", s("True"));
    o.insert("EXCH01", "MaxConnectionsPerUser", s("16"));
    o.insert("EXCH01", "ProtocolLogEnabled", s("False"));
    o.insert(
        "EXCH01",
        "SSLBindings",
        RawValue::List(vec!["[::]:993".into()]),
    );
    o.insert("throttling_policies:Agents", "__exists", s("False"));
    o.insert(
        "throttling_associations:policy:Agents",
        "__exists",
        s("False"),
    );
    o.insert("Administrator", "ThrottlingPolicyId", RawValue::Null);
    let octx = ObserveContext {
        host: "EXCH01",
        version: Version::Sp3,
    };
    let mut commands = Vec::new();
    for (kind, rs) in kinds.iter().zip(&resources) {
        let refs: Vec<_> = rs.iter().collect();
        for c in kind.diff(&refs, &o, &octx).expect("diff") {
            commands.extend(c.commands);
        }
    }
    assert_eq!(commands.len(), 4, "{commands:?}");
    // The permission: the organization by its name, the deny as a switch.
    assert_eq!(
        commands[0].get("Identity"),
        Some(&exctl_pwsh::Arg::Str(dn.clone()))
    );
    assert_eq!(commands[0].get("Deny"), Some(&exctl_pwsh::Arg::Switch));
    for cmd in &commands {
        let r = pool
            .run(&PipelineSpec::command(Command::from(cmd)))
            .await
            .unwrap();
        assert!(r.succeeded(), "{cmd}: {r:?}");
    }
    let r = pool
        .run(&PipelineSpec::command(
            Command::new("Get-ImapSettings").param("Server", "EXCH01"),
        ))
        .await
        .unwrap();
    let imap = &r.output[0];
    assert_eq!(
        imap.property("MaxConnectionsPerUser")
            .and_then(Value::as_i64),
        Some(40)
    );
    assert_eq!(
        imap.property("ProtocolLogEnabled"),
        Some(&Value::Bool(true))
    );
    let r = pool
        .run(&PipelineSpec::command(
            Command::new("Get-ThrottlingPolicyAssociation").param("Identity", "Administrator"),
        ))
        .await
        .unwrap();
    assert!(r.succeeded(), "{r:?}");
    let id = r.output[0]
        .property("ThrottlingPolicyId")
        .map(Value::display)
        .unwrap_or_default();
    assert!(id.contains("Agents"), "{id}");
    let r = pool
        .run(&PipelineSpec::command(
            Command::new("Get-ADPermission")
                .param("Identity", dn.as_str())
                .param("User", "uccx-agent"),
        ))
        .await
        .unwrap();
    assert!(r.succeeded(), "{r:?}");
    let denied = r.output.iter().any(|a| {
        a.property("Deny") == Some(&Value::Bool(true))
            && a.property("IsInherited") == Some(&Value::Bool(false))
    });
    assert!(denied, "{:?}", r.output);
    pool.close().await.unwrap();
}
