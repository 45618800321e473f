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
