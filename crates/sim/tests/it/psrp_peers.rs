//! pypsrp 0.9.1 (`tests/peers/requirements.txt`), an independent PSRP implementation,
//! against the simulator's PowerShell remoting endpoints: `Microsoft.PowerShell` on
//! `/wsman` and Exchange's `Microsoft.Exchange` on `/PowerShell`. It builds its own
//! fragments, CLIXML and NTLM sealing, so what it accepts is what Windows' protocol is,
//! not what exctl's client happens to do.
//!
//! The interpreter is `$EXCTL_PYTHON`, else `<workspace>/.venv/bin/python`; a missing one
//! fails the test (never skips).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use exctl_sim::exchange::{ClockRef, ExchangeOrg, OrgHandle, ScaledClock, Sp};
use exctl_sim::psrp::PsrpHost;
use exctl_sim::state::SimState;
use exctl_sim::{HostOptions, RunningSim, SimConfig};

const PEER_TIMEOUT: Duration = Duration::from_secs(120);

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("EXCTL_PYTHON") {
        return PathBuf::from(p);
    }
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../.venv/bin/python"
    ))
}

async fn run_python(script: &str, args: &[&str]) -> (i32, String, String) {
    let py = python();
    assert!(
        py.exists(),
        "Python peer interpreter {} not found: run scripts/test (it creates .venv and installs \
         tests/peers/requirements.txt), or set EXCTL_PYTHON",
        py.display()
    );
    let mut cmd = tokio::process::Command::new(&py);
    cmd.arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost");
    let child = cmd.spawn().expect("python starts");
    let out = tokio::time::timeout(PEER_TIMEOUT, child.wait_with_output())
        .await
        .expect("python peer finished within its timeout")
        .expect("python peer ran");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn start() -> (RunningSim, OrgHandle) {
    let clock = ClockRef(Arc::new(ScaledClock::with_scale(0.001)));
    let org = OrgHandle::new(ExchangeOrg::seed_named(Sp::Sp3, clock, "EXCH01"));
    let config = SimConfig::default();
    let executor = exctl_sim::exchange_host(&config, org.clone());
    let psrp = PsrpHost::new(org.clone(), HostOptions::default());
    let sim =
        exctl_sim::serve_with_psrp(config, executor, Arc::new(SimState::default()), Some(psrp))
            .await
            .expect("simulator starts");
    (sim, org)
}

/// One pypsrp session: prints one JSON document of what it saw.
const PYPSRP: &str = r#"
import sys, json
from pypsrp.wsman import WSMan
from pypsrp.powershell import PowerShell, RunspacePool
port, path, config, mes, password = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
wsman = WSMan("127.0.0.1", port=int(port), path=path, ssl=False, auth="ntlm", encryption="always",
              username="CONTOSO\\Administrator", password=password, max_envelope_size=mes)
res = {}
def run(build):
    ps = PowerShell(pool)
    build(ps)
    try:
        out = ps.invoke()
    except Exception as e:
        return {"exception": type(e).__name__ + ": " + str(e), "state": str(ps.state)}
    def show(o):
        if hasattr(o, "types"):
            props = dict(o.adapted_properties); props.update(o.extended_properties)
            return {"types": o.types, "props": {k: str(v) for k, v in props.items()}}
        if isinstance(o, str) and len(o) > 1000:
            return {"string_of_length": len(o)}
        return o
    return {"output": [show(o) for o in out], "had_errors": ps.had_errors, "state": str(ps.state),
            "errors": [{"message": str(e), "fqid": e.fq_error, "category": str(getattr(e, "category", ""))} for e in ps.streams.error]}
with RunspacePool(wsman, configuration_name=config) as pool:
    res["protocol_version"] = pool.protocol_version
    if config == "Microsoft.Exchange":
        res["get"] = run(lambda ps: ps.add_cmdlet("Get-ImapSettings").add_parameter("Server", "EXCH01"))
        res["set"] = run(lambda ps: ps.add_cmdlet("Set-ImapSettings").add_parameter("Server", "EXCH01").add_parameter("MaxConnectionsPerUser", 20))
        res["after"] = run(lambda ps: ps.add_cmdlet("Get-ImapSettings").add_parameter("Server", "EXCH01"))
        res["script"] = run(lambda ps: ps.add_script("Get-ImapSettings"))
        res["bad"] = run(lambda ps: ps.add_cmdlet("Set-ImapSettings").add_parameter("Server", "EXCH01").add_parameter("MaxConnectionsPerUser", "lots"))
    else:
        res["big"] = run(lambda ps: ps.add_script("'x' * 300000; 1..3"))
        res["cmd"] = run(lambda ps: ps.add_cmdlet("Get-Service").add_parameter("Name", "MSExchangeIMAP4"))
        res["error"] = run(lambda ps: ps.add_cmdlet("Get-Item").add_parameter("Path", "HKLM:\\SOFTWARE\\NoSuchKey"))
print(json.dumps(res))
"#;

async fn pypsrp(sim: &RunningSim, path: &str, config: &str, mes: u32) -> serde_json::Value {
    let port = sim.addr().port().to_string();
    let (code, out, err) = run_python(
        PYPSRP,
        &[&port, path, config, &mes.to_string(), "P@ssw0rd!"],
    )
    .await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"))
}

#[tokio::test]
async fn pypsrp_on_the_wsman_endpoint_with_a_small_envelope() {
    let (sim, _org) = start().await;
    // 32 KB: the 300 000-character string crosses many fragments and Receives.
    let r = pypsrp(&sim, "wsman", "Microsoft.PowerShell", 32 * 1024).await;
    assert_eq!(r["protocol_version"], "2.1", "{r}");
    let big = &r["big"];
    assert_eq!(big["had_errors"], false, "{r}");
    assert_eq!(big["output"][0]["string_of_length"], 300_000, "{r}");
    assert_eq!(big["output"][1], 1);
    assert_eq!(big["output"].as_array().map(Vec::len), Some(4));
    let cmd = &r["cmd"];
    assert_eq!(
        cmd["output"][0]["types"][0], "System.ServiceProcess.ServiceController",
        "{r}"
    );
    assert_eq!(cmd["output"][0]["props"]["Name"], "MSExchangeIMAP4", "{r}");
    let error = &r["error"];
    // pypsrp's had_errors means a failed pipeline; the records are in the error stream.
    assert_eq!(error["state"], "4", "{r}");
    assert!(
        error["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not exist")),
        "{r}"
    );
    let state = serde_json::to_value(sim.state().snapshot()).expect("state");
    assert_eq!(state["counters"]["psrp_pools_opened"], 1);
    assert_eq!(
        state["counters"]["psrp_pools_closed"], 1,
        "pypsrp closes its pool"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn pypsrp_on_the_exchange_endpoint() {
    let (sim, org) = start().await;
    let r = pypsrp(&sim, "PowerShell", "Microsoft.Exchange", 153_600).await;
    let get = &r["get"];
    assert_eq!(get["had_errors"], false, "{r}");
    assert!(
        get["output"][0]["types"][0]
            .as_str()
            .is_some_and(|t| t.starts_with("Microsoft.Exchange")),
        "{r}"
    );
    assert_eq!(
        get["output"][0]["props"]["MaxConnectionsPerUser"], "16",
        "{r}"
    );
    assert_eq!(r["set"]["had_errors"], false, "{r}");
    assert_eq!(
        r["after"]["output"][0]["props"]["MaxConnectionsPerUser"], "20",
        "{r}"
    );
    // NoLanguage: the script is refused and the pipeline fails.
    let script = &r["script"];
    assert!(
        script["state"]
            .as_str()
            .is_some_and(|s| s.contains('5') || s.to_lowercase().contains("failed")),
        "{r}"
    );
    assert!(
        script.to_string().contains("no-language mode")
            || script.to_string().contains("ScriptsNotAllowed"),
        "{r}"
    );
    // A value Exchange cannot convert is an error record.
    assert!(
        r["bad"]["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Cannot bind parameter")),
        "{r}"
    );
    let ex = org.lock().state_section();
    assert_eq!(ex["exchange_sessions"], 1, "{ex}");
    assert!(ex["cmdlets"].get("Add-PSSnapin").is_none(), "{ex}");
    sim.shutdown().await;
}
