//! Model behaviours: defaults per release, ranges, inheritance, restart semantics,
//! configured-versus-effective values, permissions, registry types, error texts and
//! state files, through the same `invoke` the binding layer will use.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cmdlets::{CmdletOutput, Module, cmdlet_spec, cmdlet_specs, invoke};
use super::*;

fn manual() -> (Arc<ManualClock>, ClockRef) {
    let c = Arc::new(ManualClock::new(SimTime(1_700_000_000_000)));
    (c.clone(), ClockRef(c))
}

fn org(sp: Sp) -> (Arc<ManualClock>, ExchangeOrg) {
    let (c, r) = manual();
    (c, ExchangeOrg::seed(sp, r))
}

fn args(list: &[(&str, SimValue)]) -> Vec<(String, SimValue)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect()
}

fn run(
    o: &mut ExchangeOrg,
    cmdlet: &str,
    list: &[(&str, SimValue)],
) -> Result<CmdletOutput, ExchangeError> {
    invoke(o, cmdlet, &args(list), &[])
}

fn one(o: &mut ExchangeOrg, cmdlet: &str, list: &[(&str, SimValue)]) -> SimObject {
    let out = run(o, cmdlet, list).unwrap_or_else(|e| panic!("{cmdlet}: {e}"));
    assert_eq!(out.objects.len(), 1, "{cmdlet}: {:?}", out.objects);
    out.objects.into_iter().next().unwrap()
}

fn s(v: &str) -> SimValue {
    SimValue::str(v)
}

#[test]
fn versions_and_parameters_differ_per_service_pack() {
    for (sp, version) in [
        (Sp::Rtm, "Version 14.0 (Build 639.21)"),
        (Sp::Sp1, "Version 14.1 (Build 218.15)"),
        (Sp::Sp3, "Version 14.3 (Build 123.4)"),
    ] {
        let (_, mut o) = org(sp);
        let srv = one(&mut o, "Get-ExchangeServer", &[("Identity", s("EX01"))]);
        assert_eq!(srv.text("AdminDisplayVersion"), version);
        assert_eq!(srv.text("Fqdn"), "EX01.contoso.local");
    }
    let rtm = cmdlet_spec("Set-ThrottlingPolicy", Sp::Rtm).unwrap();
    assert!(rtm.param("CPAMaxConcurrency").is_none());
    assert!(rtm.param("IMAPMaxConcurrency").is_some());
    let sp1 = cmdlet_spec("Set-ThrottlingPolicy", Sp::Sp1).unwrap();
    for name in [
        "CPAMaxConcurrency",
        "AnonymousMaxConcurrency",
        "EASMaxDevices",
        "EASMaxDeviceDeletesPerMonth",
        "PowerShellMaxDestructiveCmdlets",
        "PowerShellMaxTenantConcurrency",
    ] {
        assert!(sp1.param(name).is_some(), "{name}");
    }
    assert!(
        cmdlet_spec("New-ThrottlingPolicy", Sp::Sp3)
            .unwrap()
            .param("PowerShellMaxTenantConcurrency")
            .is_none()
    );
    let specs = cmdlet_specs(Sp::Sp3);
    assert!(specs.len() >= 30);
    let rc = cmdlet_spec("Set-ReceiveConnector", Sp::Sp3).unwrap();
    let id = rc.param("Identity").unwrap();
    assert!(id.mandatory);
    assert_eq!(id.position, Some(0));
    assert_eq!(rc.module, Module::Exchange);
    assert_eq!(
        cmdlet_spec("Get-ItemProperty", Sp::Rtm).unwrap().module,
        Module::Core
    );
}

/// The releases of the six parameters the schema and the simulator once disagreed on (see
/// `connector.rs` and `protocol_settings.rs` for the sources), and TlsDomainCapabilities.
#[test]
fn connector_and_imap_parameters_exist_from_their_documented_release() {
    let (_, mut o) = org(Sp::Rtm);
    let id = ("Identity", s("EX01\\Default EX01"));
    for (name, v) in [
        ("AdvertiseClientSettings", SimValue::Bool(true)),
        ("MessageRateSource", s("User")),
        ("SuppressXAnonymousTls", SimValue::Bool(true)),
        (
            "TlsDomainCapabilities",
            SimValue::strings(["contoso.com:AcceptOorgProtocol"]),
        ),
    ] {
        run(&mut o, "Set-ReceiveConnector", &[id.clone(), (name, v)])
            .unwrap_or_else(|e| panic!("{name} on RTM: {e}"));
    }
    for (cmdlet, name, v) in [
        (
            "Set-ReceiveConnector",
            "BareLinefeedRejectionEnabled",
            SimValue::Bool(true),
        ),
        (
            "Set-ReceiveConnector",
            "ExtendedProtectionPolicy",
            s("Allow"),
        ),
        ("Set-ImapSettings", "ExtendedProtectionPolicy", s("Allow")),
    ] {
        let mut list = vec![(name, v.clone())];
        if cmdlet == "Set-ReceiveConnector" {
            list.insert(0, id.clone());
        }
        let e = run(&mut o, cmdlet, &list).unwrap_err();
        assert_eq!(
            e.message,
            format!("A parameter cannot be found that matches parameter name '{name}'.")
        );
        assert_eq!(
            e.fully_qualified_error_id,
            format!("NamedParameterNotFound,{cmdlet}")
        );
        let (_, mut sp1) = org(Sp::Sp1);
        if cmdlet == "Set-ReceiveConnector" {
            list = vec![id.clone(), (name, v)];
        }
        run(&mut sp1, cmdlet, &list).unwrap_or_else(|e| panic!("{name} on SP1: {e}"));
    }
    let c = one(&mut o, "Get-ReceiveConnector", std::slice::from_ref(&id));
    assert_eq!(
        c.get("TlsDomainCapabilities"),
        Some(&SimValue::strings(["contoso.com:AcceptOorgProtocol"]))
    );
    // Exchange 2010's MaxCommandSize range is 40–1024 (2013's is 1024–16384).
    let e = run(
        &mut o,
        "Set-ImapSettings",
        &[("MaxCommandSize", SimValue::Int(1025))],
    )
    .unwrap_err();
    assert_eq!(e.reason, "DataValidationException");
    run(
        &mut o,
        "Set-ImapSettings",
        &[
            (
                "ExternalConnectionSettings",
                SimValue::strings(["mail.contoso.com:993:SSL"]),
            ),
            ("MaxCommandSize", SimValue::Int(1024)),
        ],
    )
    .unwrap();
}

/// Throttling values are UInt32: the whole range binds, one more is .NET's overflow.
#[test]
fn throttling_values_take_the_whole_uint32_range() {
    let (_, mut o) = org(Sp::Sp3);
    let name = o.get_throttling_policy(None).unwrap()[0].text("Name");
    run(
        &mut o,
        "Set-ThrottlingPolicy",
        &[
            ("Identity", s(&name)),
            ("IMAPPercentTimeInCAS", SimValue::Long(4_294_967_295)),
        ],
    )
    .unwrap();
    let e = run(
        &mut o,
        "Set-ThrottlingPolicy",
        &[
            ("Identity", s(&name)),
            ("IMAPPercentTimeInCAS", SimValue::Long(4_294_967_296)),
        ],
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "Cannot process argument transformation on parameter 'IMAPPercentTimeInCAS'. Cannot convert value \"4294967296\" to type \"System.UInt32\". Error: \"Value was either too large or too small for a UInt32.\""
    );
    assert_eq!(
        e.fully_qualified_error_id,
        "ParameterArgumentTransformationError,Set-ThrottlingPolicy"
    );
    // The MaxConcurrency values keep their documented 0–2147483647.
    let e = run(
        &mut o,
        "Set-ThrottlingPolicy",
        &[
            ("Identity", s(&name)),
            ("IMAPMaxConcurrency", SimValue::Long(2_147_483_648)),
        ],
    )
    .unwrap_err();
    assert_eq!(e.reason, "DataValidationException");
}

#[test]
fn rtm_refuses_sp1_parameters_with_powershells_text() {
    let (_, mut o) = org(Sp::Rtm);
    let pol = o.get_throttling_policy(None).unwrap();
    let default = pol.first().unwrap();
    assert!(default.get("CPAMaxConcurrency").is_none());
    let name = default.text("Name");
    assert!(name.starts_with("DefaultThrottlingPolicy_"));
    let e = run(
        &mut o,
        "Set-ThrottlingPolicy",
        &[
            ("Identity", s(&name)),
            ("CPAMaxConcurrency", SimValue::Int(5)),
        ],
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "A parameter cannot be found that matches parameter name 'CPAMaxConcurrency'."
    );
    assert_eq!(
        e.fully_qualified_error_id,
        "NamedParameterNotFound,Set-ThrottlingPolicy"
    );
    // RTM's EASMaxConcurrency range is 0–100.
    let e = run(
        &mut o,
        "Set-ThrottlingPolicy",
        &[
            ("Identity", s(&name)),
            ("EASMaxConcurrency", SimValue::Int(101)),
        ],
    )
    .unwrap_err();
    assert_eq!(e.reason, "DataValidationException");
}

#[test]
fn default_policy_values_follow_the_release() {
    let (_, mut o) = org(Sp::Rtm);
    let p = o.get_throttling_policy(None).unwrap().remove(0);
    assert_eq!(p.get("IsDefault"), Some(&SimValue::Bool(true)));
    assert_eq!(p.get("EASMaxConcurrency"), Some(&SimValue::UInt(10)));
    assert_eq!(p.get("OWAMaxConcurrency"), Some(&SimValue::UInt(5)));
    assert_eq!(p.get("POPMaxConcurrency"), Some(&SimValue::UInt(20)));
    assert_eq!(p.get("PowerShellMaxConcurrency"), Some(&SimValue::UInt(18)));
    assert_eq!(p.get("CPUStartPercent"), Some(&SimValue::UInt(75)));
    assert_eq!(p.get("IMAPMaxConcurrency"), Some(&SimValue::Null));
    assert_eq!(p.get("EWSFindCountLimit"), Some(&SimValue::Null));
    assert_eq!(p.text("ExchangeVersion"), "0.10 (14.0.100.0)");
    assert!(
        p.text("DistinguishedName")
            .starts_with("CN=DefaultThrottlingPolicy_")
    );
    assert!(p.text("DistinguishedName").ends_with(
        ",CN=Global Settings,CN=First Organization,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=local"
    ));
    let (_, mut o) = org(Sp::Sp2);
    let p = o.get_throttling_policy(None).unwrap().remove(0);
    assert_eq!(p.get("AnonymousMaxConcurrency"), Some(&SimValue::UInt(1)));
    assert_eq!(p.get("EASMaxDevices"), Some(&SimValue::UInt(10)));
    assert_eq!(
        p.get("EASMaxDeviceDeletesPerMonth"),
        Some(&SimValue::UInt(20))
    );
    assert_eq!(p.get("EWSFindCountLimit"), Some(&SimValue::UInt(1000)));
    assert_eq!(p.get("IMAPMaxConcurrency"), Some(&SimValue::Null));
}

#[test]
fn imap_settings_defaults_ranges_and_no_change_warning() {
    let (_, mut o) = org(Sp::Sp3);
    let g = one(&mut o, "Get-ImapSettings", &[("Server", s("EX01"))]);
    assert_eq!(g.get("MaxConnections"), Some(&SimValue::Int(2_147_483_647)));
    assert_eq!(
        g.get("MaxConnectionFromSingleIP"),
        Some(&SimValue::Int(2000))
    );
    assert_eq!(g.get("MaxConnectionsPerUser"), Some(&SimValue::Int(16)));
    assert_eq!(g.text("AuthenticatedConnectionTimeout"), "00:30:00");
    assert_eq!(
        g.text("Banner"),
        "The Microsoft Exchange IMAP4 service is ready."
    );
    assert_eq!(g.text("Identity"), "EX01\\1");
    assert_eq!(g.text("LoginType"), "SecureLogin");
    assert_eq!(
        g.get("InternalConnectionSettings"),
        Some(&SimValue::strings([
            "EX01.contoso.local:993:SSL",
            "EX01.contoso.local:143:TLS"
        ]))
    );
    let e = run(
        &mut o,
        "Set-ImapSettings",
        &[
            ("Server", s("EX01")),
            ("MaxConnectionsPerUser", SimValue::Int(25_001)),
        ],
    )
    .unwrap_err();
    assert_eq!(e.reason, "DataValidationException");
    assert!(
        e.message.contains("'MaxConnectionsPerUser'") && e.message.contains("between 1 and 25000")
    );
    let e = run(
        &mut o,
        "Set-ImapSettings",
        &[("AuthenticatedConnectionTimeout", s("00:00:10"))],
    )
    .unwrap_err();
    assert!(e.message.contains("00:00:30"), "{}", e.message);
    // A failed Set changes nothing, even for its valid parameters.
    let e = run(
        &mut o,
        "Set-ImapSettings",
        &[
            ("MaxConnectionsPerUser", SimValue::Int(40)),
            ("MaxCommandSize", SimValue::Int(5)),
        ],
    );
    assert!(e.is_err());
    let g = one(&mut o, "Get-ImapSettings", &[]);
    assert_eq!(g.get("MaxConnectionsPerUser"), Some(&SimValue::Int(16)));
    let out = run(
        &mut o,
        "Set-ImapSettings",
        &[("MaxConnectionsPerUser", SimValue::Int(16))],
    )
    .unwrap();
    assert_eq!(
        out.warnings,
        vec!["The command completed successfully but no settings of 'EX01\\1' have been modified."]
    );
    let e = run(&mut o, "Set-ImapSettings", &[("LoginType", s("Kerberos"))]).unwrap_err();
    assert!(
        e.message
            .contains("PlainTextLogin, PlainTextAuthentication, SecureLogin"),
        "{}",
        e.message
    );
    // SP1+ parameter refused on RTM.
    let (_, mut rtm) = org(Sp::Rtm);
    let e = run(
        &mut rtm,
        "Set-ImapSettings",
        &[("ExtendedProtectionPolicy", s("Allow"))],
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "A parameter cannot be found that matches parameter name 'ExtendedProtectionPolicy'."
    );
}

#[test]
fn imap_settings_take_effect_only_after_an_imap4_restart() {
    let (clock, mut o) = org(Sp::Sp3);
    run(
        &mut o,
        "Set-ImapSettings",
        &[
            ("Server", s("EX01")),
            ("MaxConnectionsPerUser", SimValue::Int(40)),
            ("Banner", s("Hello")),
        ],
    )
    .unwrap();
    let g = one(&mut o, "Get-ImapSettings", &[]);
    assert_eq!(g.get("MaxConnectionsPerUser"), Some(&SimValue::Int(40)));
    assert_eq!(o.effective_imap_limits(None).unwrap().max_per_user, 16);
    // MSExchangeIMAP4 has no dependents: no -Force needed.
    let out = run(&mut o, "Restart-Service", &[("Name", s("MSExchangeIMAP4"))]).unwrap();
    let done = out.wait_until.unwrap();
    assert_eq!(done.since(o.now()), Duration::from_secs(5));
    assert_eq!(
        o.effective_imap_limits(None),
        None,
        "not serving while restarting"
    );
    assert_eq!(
        o.service_status("EX01", "MSExchangeIMAP4"),
        Some(services::Status::StopPending)
    );
    clock.advance(Duration::from_secs(3));
    assert_eq!(
        o.service_status("EX01", "MSExchangeIMAP4"),
        Some(services::Status::StartPending)
    );
    clock.advance(Duration::from_secs(2));
    let l = o.effective_imap_limits(None).unwrap();
    assert_eq!(l.max_per_user, 40);
    assert_eq!(l.banner, "Hello");
}

#[test]
fn information_store_restart_needs_force_takes_time_and_dismounts() {
    let (clock, mut o) = org(Sp::Sp3);
    let e = run(&mut o, "Restart-Service", &[("Name", s("MSExchangeIS"))]).unwrap_err();
    assert_eq!(
        e.message,
        "Cannot stop service 'Microsoft Exchange Information Store (MSExchangeIS)' because it has dependent services. It can only be stopped if the Force flag is set."
    );
    assert_eq!(
        e.fully_qualified_error_id,
        "ServiceHasDependentServices,Microsoft.PowerShell.Commands.RestartServiceCommand"
    );
    let db = one(
        &mut o,
        "Get-MailboxDatabase",
        &[("Server", s("EX01")), ("Status", SimValue::Bool(true))],
    );
    assert_eq!(db.get("Mounted"), Some(&SimValue::Bool(true)));
    let db = one(&mut o, "Get-MailboxDatabase", &[("Server", s("EX01"))]);
    assert_eq!(
        db.get("Mounted"),
        Some(&SimValue::Null),
        "no -Status, no Mounted"
    );

    // The store limit written now is not in force until the store restarts.
    run(
        &mut o,
        "New-ItemProperty",
        &[
            (
                "Path",
                s("HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem"),
            ),
            ("Name", s(SERVICE_SESSIONS_VALUE)),
            ("PropertyType", s("DWord")),
            ("Value", SimValue::Int(40)),
        ],
    )
    .unwrap();
    assert_eq!(
        o.effective_store_limits(None)
            .unwrap()
            .service_sessions_per_user,
        16
    );

    let out = run(
        &mut o,
        "Restart-Service",
        &[("Name", s("MSExchangeIS")), ("Force", SimValue::Bool(true))],
    )
    .unwrap();
    let wait = out.wait_until.unwrap().since(o.now());
    assert!(wait >= Duration::from_secs(45), "{wait:?}");
    assert!(out.warnings.iter().any(|w| w
        == "Waiting for service 'Microsoft Exchange Information Store (MSExchangeIS)' to finish starting..."));
    let svc = one(&mut o, "Get-Service", &[("Name", s("MSExchangeIS"))]);
    assert_eq!(svc.text("Status"), "StopPending");
    let db = one(
        &mut o,
        "Get-MailboxDatabase",
        &[("Server", s("EX01")), ("Status", SimValue::Bool(true))],
    );
    assert_eq!(db.get("Mounted"), Some(&SimValue::Bool(false)));
    let dep = one(
        &mut o,
        "Get-Service",
        &[("Name", s("MSExchangeMailboxAssistants"))],
    );
    assert_eq!(dep.text("Status"), "StopPending");
    clock.advance(Duration::from_secs(20));
    assert_eq!(
        one(&mut o, "Get-Service", &[("Name", s("MSExchangeIS"))]).text("Status"),
        "StartPending"
    );
    let db = one(
        &mut o,
        "Get-MailboxDatabase",
        &[("Server", s("EX01")), ("Status", SimValue::Bool(true))],
    );
    assert_eq!(db.get("Mounted"), Some(&SimValue::Bool(false)));
    // A second restart while one is under way is refused.
    assert!(
        run(
            &mut o,
            "Restart-Service",
            &[("Name", s("MSExchangeIS")), ("Force", SimValue::Bool(true))]
        )
        .is_err()
    );
    clock.advance(wait);
    assert_eq!(
        one(&mut o, "Get-Service", &[("Name", s("MSExchangeIS"))]).text("Status"),
        "Running"
    );
    assert_eq!(
        one(
            &mut o,
            "Get-Service",
            &[("Name", s("MSExchangeMailboxAssistants"))]
        )
        .text("Status"),
        "Running"
    );
    let db = one(
        &mut o,
        "Get-MailboxDatabase",
        &[("Server", s("EX01")), ("Status", SimValue::Bool(true))],
    );
    assert_eq!(db.get("Mounted"), Some(&SimValue::Bool(true)));
    assert_eq!(
        o.effective_store_limits(None)
            .unwrap()
            .service_sessions_per_user,
        40
    );
    let state = o.state_section();
    assert_eq!(
        state["servers"][0]["services"]["MSExchangeIS"]["restarts"],
        1
    );
    assert_eq!(state["cmdlets"]["Restart-Service"], 3);
}

#[test]
fn service_cmdlets_errors_and_wildcards() {
    let (clock, mut o) = org(Sp::Sp3);
    let e = run(&mut o, "Get-Service", &[("Name", s("NoSuch"))]).unwrap_err();
    assert_eq!(
        e.message,
        "Cannot find any service with service name 'NoSuch'."
    );
    assert_eq!(
        e.fully_qualified_error_id,
        "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand"
    );
    let all = run(&mut o, "Get-Service", &[("Name", s("MSExchange*"))]).unwrap();
    assert!(all.objects.len() >= 6);
    let is = one(&mut o, "Get-Service", &[("Name", s("msexchangeis"))]);
    assert_eq!(
        is.get("DependentServices"),
        Some(&SimValue::strings([
            "MSExchangeMailboxAssistants",
            "MSExchangeMailSubmission"
        ]))
    );
    let pop = one(&mut o, "Get-Service", &[("Name", s("MSExchangePOP3"))]);
    assert_eq!(pop.text("Status"), "Stopped");
    let out = run(&mut o, "Start-Service", &[("Name", s("MSExchangePOP3"))]).unwrap();
    assert!(out.wait_until.unwrap() > o.now());
    clock.advance(Duration::from_secs(3));
    assert_eq!(
        one(&mut o, "Get-Service", &[("Name", s("MSExchangePOP3"))]).text("Status"),
        "Running"
    );
    run(&mut o, "Stop-Service", &[("Name", s("MSExchangePOP3"))]).unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        one(&mut o, "Get-Service", &[("Name", s("MSExchangePOP3"))]).text("Status"),
        "Stopped"
    );
}

#[test]
fn pop_settings_defaults_ranges_releases_and_the_startup_type() {
    let (_, mut o) = org(Sp::Rtm);
    let pop = one(&mut o, "Get-PopSettings", &[("Server", s("EX01"))]);
    assert_eq!(pop.text("ProtocolName"), "POP3");
    assert_eq!(pop.text("MessageRetrievalSortOrder"), "Ascending");
    assert_eq!(pop.get("MaxConnectionsPerUser"), Some(&SimValue::Int(16)));
    assert!(pop.get("ShowHiddenFoldersEnabled").is_none());
    assert!(pop.get("ExtendedProtectionPolicy").is_none(), "SP1 on");
    // 2010's ranges; IMAP4-only and SP1 parameters are refused.
    let e = run(
        &mut o,
        "Set-PopSettings",
        &[("MaxConnectionsPerUser", SimValue::Int(25_001))],
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("25000") || e.to_string().contains("25,000"),
        "{e}"
    );
    for p in ["ShowHiddenFoldersEnabled", "ExtendedProtectionPolicy"] {
        let e = run(&mut o, "Set-PopSettings", &[(p, s("x"))]).unwrap_err();
        assert!(
            e.to_string().contains("A parameter cannot be found"),
            "{p}: {e}"
        );
    }
    run(
        &mut o,
        "Set-PopSettings",
        &[
            ("Server", s("EX01")),
            ("MessageRetrievalSortOrder", s("descending")),
        ],
    )
    .unwrap();
    let pop = one(&mut o, "Get-PopSettings", &[]);
    assert_eq!(pop.text("MessageRetrievalSortOrder"), "Descending");
    // The IMAP4 settings are another object.
    let imap = one(&mut o, "Get-ImapSettings", &[]);
    assert_eq!(imap.text("ProtocolName"), "IMAP4");

    let wmi = |o: &mut ExchangeOrg| {
        o.get_wmi_services(Some(("Name", "MSExchangePOP3")))
            .unwrap()
            .remove(0)
            .text("StartMode")
    };
    assert_eq!(wmi(&mut o), "Manual");
    run(
        &mut o,
        "Set-Service",
        &[
            ("Name", s("MSExchangePOP3")),
            ("StartupType", s("Automatic")),
        ],
    )
    .unwrap();
    assert_eq!(wmi(&mut o), "Auto");
    let e = run(
        &mut o,
        "Set-Service",
        &[
            ("Name", s("MSExchangePOP3")),
            ("StartupType", s("Sometimes")),
        ],
    )
    .unwrap_err();
    assert!(e.to_string().contains("Automatic, Manual, Disabled"), "{e}");
}

#[test]
fn receive_connectors_identity_types_and_cross_field_rule() {
    let (_, mut o) = org(Sp::Sp3);
    let all = run(&mut o, "Get-ReceiveConnector", &[("Server", s("EX01"))]).unwrap();
    let ids: Vec<String> = all.objects.iter().map(|c| c.text("Identity")).collect();
    assert_eq!(ids, vec!["EX01\\Default EX01", "EX01\\Client EX01"]);
    let c = one(
        &mut o,
        "Get-ReceiveConnector",
        &[("Identity", s("EX01\\Default EX01"))],
    );
    assert_eq!(c.text("MaxMessageSize"), "10 MB (10,485,760 bytes)");
    assert_eq!(c.text("MaxHeaderSize"), "64 KB (65,536 bytes)");
    assert_eq!(c.text("MessageRateLimit"), "unlimited");
    assert_eq!(c.text("MaxInboundConnection"), "5000");
    assert_eq!(c.text("ConnectionTimeout"), "00:10:00");
    assert_eq!(c.get("MaxRecipientsPerMessage"), Some(&SimValue::Int(200)));
    assert_eq!(c.get("Bindings"), Some(&SimValue::strings(["0.0.0.0:25"])));

    run(
        &mut o,
        "Set-ReceiveConnector",
        &[
            ("Identity", s("EX01\\Default EX01")),
            ("MaxMessageSize", s("20MB")),
            ("MaxInboundConnectionPerSource", s("Unlimited")),
            ("MessageRateLimit", SimValue::Int(100)),
            ("TarpitInterval", s("00:00:00")),
        ],
    )
    .unwrap();
    let c = one(
        &mut o,
        "Get-ReceiveConnector",
        &[("Identity", s("EX01\\Default EX01"))],
    );
    assert_eq!(c.text("MaxMessageSize"), "20 MB (20,971,520 bytes)");
    assert_eq!(c.text("MaxInboundConnectionPerSource"), "unlimited");
    assert_eq!(c.text("MessageRateLimit"), "100");
    assert_eq!(c.text("TarpitInterval"), "00:00:00");

    let e = run(
        &mut o,
        "Set-ReceiveConnector",
        &[
            ("Identity", s("EX01\\Client EX01")),
            ("ConnectionTimeout", s("00:04:00")),
        ],
    )
    .unwrap_err();
    assert!(
        e.message.contains("ConnectionTimeout must be greater"),
        "{}",
        e.message
    );
    for (name, bad) in [
        ("MaxRecipientsPerMessage", SimValue::Int(512_001)),
        ("MaxLogonFailures", SimValue::Int(11)),
        ("MaxInboundConnectionPercentagePerSource", SimValue::Int(0)),
        ("MaxMessageSize", s("63KB")),
        ("TarpitInterval", s("00:10:01")),
        ("MaxInboundConnectionPerSource", SimValue::Int(10_001)),
    ] {
        let e = run(
            &mut o,
            "Set-ReceiveConnector",
            &[("Identity", s("EX01\\Client EX01")), (name, bad)],
        )
        .unwrap_err();
        assert_eq!(e.reason, "DataValidationException", "{name}");
    }
    let e = run(
        &mut o,
        "Get-ReceiveConnector",
        &[("Identity", s("EX01\\Nope"))],
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "The operation couldn't be performed because object 'EX01\\Nope' couldn't be found on 'dc01.contoso.local'."
    );
    run(
        &mut o,
        "Set-ReceiveConnector",
        &[
            ("Identity", s("EX01\\Client EX01")),
            ("Name", s("Client Submission")),
        ],
    )
    .unwrap();
    assert!(
        run(
            &mut o,
            "Get-ReceiveConnector",
            &[("Identity", s("EX01\\Client Submission"))]
        )
        .is_ok()
    );
}

#[test]
fn user_policies_inherit_unset_values_and_show_their_own() {
    let (_, mut o) = org(Sp::Sp3);
    let p = one(
        &mut o,
        "New-ThrottlingPolicy",
        &[
            ("Name", s("UCCX")),
            ("POPMaxConcurrency", SimValue::Int(50)),
        ],
    );
    assert_eq!(p.get("IsDefault"), Some(&SimValue::Bool(false)));
    assert_eq!(p.get("POPMaxConcurrency"), Some(&SimValue::UInt(50)));
    // Not set: blank, although the default policy's 10 applies.
    assert_eq!(p.get("EASMaxConcurrency"), Some(&SimValue::Null));
    run(
        &mut o,
        "Set-ThrottlingPolicyAssociation",
        &[
            ("Identity", s(UCCX_ACCOUNT)),
            ("ThrottlingPolicy", s("UCCX")),
        ],
    )
    .unwrap();
    let default = o
        .get_throttling_policy(None)
        .unwrap()
        .remove(0)
        .text("Name");
    run(
        &mut o,
        "Set-ThrottlingPolicy",
        &[
            ("Identity", s(&default)),
            ("IMAPMaxConcurrency", SimValue::Int(12)),
        ],
    )
    .unwrap();
    assert_eq!(
        o.imap_max_concurrency(UCCX_ACCOUNT).unwrap(),
        throttling::Effective::Limit(12)
    );
    run(
        &mut o,
        "Set-ThrottlingPolicy",
        &[
            ("Identity", s("UCCX")),
            ("IMAPMaxConcurrency", SimValue::Null),
        ],
    )
    .unwrap();
    assert_eq!(
        o.imap_max_concurrency(UCCX_ACCOUNT).unwrap(),
        throttling::Effective::Unlimited
    );
    let p = one(&mut o, "Get-ThrottlingPolicy", &[("Identity", s("uccx"))]);
    assert_eq!(p.get("IMAPMaxConcurrency"), Some(&SimValue::Null));
    run(
        &mut o,
        "Set-ThrottlingPolicy",
        &[("Identity", s("UCCX")), ("IMAPMaxConcurrency", s("45"))],
    )
    .unwrap();
    assert_eq!(
        o.imap_max_concurrency(UCCX_ACCOUNT).unwrap(),
        throttling::Effective::Limit(45)
    );
    let e = run(
        &mut o,
        "Set-ThrottlingPolicy",
        &[
            ("Identity", s("UCCX")),
            ("CPUStartPercent", SimValue::Int(101)),
        ],
    )
    .unwrap_err();
    assert_eq!(e.reason, "DataValidationException");
    let e = run(
        &mut o,
        "Set-ThrottlingPolicy",
        &[
            ("Identity", s("UCCX")),
            ("IMAPMaxConcurrency", SimValue::Int(-1)),
        ],
    )
    .unwrap_err();
    assert_eq!(e.reason, "ParameterBindingArgumentTransformationException");
    let e = run(
        &mut o,
        "Set-ThrottlingPolicy",
        &[
            ("Identity", s("UCCX")),
            ("PowerShellMaxTenantConcurrency", SimValue::Int(5)),
        ],
    )
    .unwrap_err();
    assert!(
        e.message.contains("default throttling policy"),
        "{}",
        e.message
    );
    let e = run(&mut o, "New-ThrottlingPolicy", &[("Name", s("UCCX"))]).unwrap_err();
    assert!(e.message.contains("already exists"), "{}", e.message);
}

#[test]
fn remove_throttling_policy_refuses_default_and_associated_policies() {
    let (_, mut o) = org(Sp::Sp3);
    let default = o
        .get_throttling_policy(None)
        .unwrap()
        .remove(0)
        .text("Name");
    let e = run(
        &mut o,
        "Remove-ThrottlingPolicy",
        &[
            ("Identity", s(&default)),
            ("Confirm", SimValue::Bool(false)),
        ],
    )
    .unwrap_err();
    assert_eq!(e.category, ErrorCategory::InvalidOperation);
    run(&mut o, "New-ThrottlingPolicy", &[("Name", s("UCCX"))]).unwrap();
    run(
        &mut o,
        "Set-Mailbox",
        &[
            ("Identity", s("uccx-agent@contoso.local")),
            ("ThrottlingPolicy", s("UCCX")),
        ],
    )
    .unwrap();
    let m = one(
        &mut o,
        "Get-Mailbox",
        &[("Identity", s("CONTOSO\\uccx-agent"))],
    );
    assert_eq!(m.text("ThrottlingPolicy"), "UCCX");
    let a = one(
        &mut o,
        "Get-ThrottlingPolicyAssociation",
        &[("Identity", s(UCCX_ACCOUNT))],
    );
    assert_eq!(a.text("ThrottlingPolicyId"), "UCCX");
    let e = run(
        &mut o,
        "Remove-ThrottlingPolicy",
        &[("Identity", s("UCCX")), ("Confirm", SimValue::Bool(false))],
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "Throttling policy \"CN=UCCX,CN=Global Settings,CN=First Organization,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=local\" can't be removed because there are currently users associated with the policy. Reset the throttling policy for those users using Set-Mailbox, and then try again."
    );
    assert_eq!(
        e.fully_qualified_error_id,
        "1481B319,Microsoft.Exchange.Management.SystemConfigurationTasks.RemoveThrottlingPolicy"
    );
    // Re-point to the default (stored explicitly, as Exchange does), then remove.
    run(
        &mut o,
        "Set-Mailbox",
        &[
            ("Identity", s(UCCX_ACCOUNT)),
            ("ThrottlingPolicy", s(&default)),
        ],
    )
    .unwrap();
    let a = one(
        &mut o,
        "Get-ThrottlingPolicyAssociation",
        &[("Identity", s(UCCX_ACCOUNT))],
    );
    assert_eq!(a.text("ThrottlingPolicyId"), default);
    run(
        &mut o,
        "Remove-ThrottlingPolicy",
        &[("Identity", s("UCCX"))],
    )
    .unwrap();
    let e = run(&mut o, "Get-ThrottlingPolicy", &[("Identity", s("UCCX"))]).unwrap_err();
    assert_eq!(e.reason, "ManagementObjectNotFoundException");
    // Clearing the association: blank means the default applies.
    run(
        &mut o,
        "Set-ThrottlingPolicyAssociation",
        &[
            ("Identity", s(UCCX_ACCOUNT)),
            ("ThrottlingPolicy", SimValue::Null),
        ],
    )
    .unwrap();
    let a = one(
        &mut o,
        "Get-ThrottlingPolicyAssociation",
        &[("Identity", s(UCCX_ACCOUNT))],
    );
    assert_eq!(a.get("ThrottlingPolicyId"), Some(&SimValue::Null));
    let e = run(
        &mut o,
        "Set-Mailbox",
        &[("Identity", s("nobody")), ("ThrottlingPolicy", s(&default))],
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "The operation couldn't be performed because object 'nobody' couldn't be found on 'dc01.contoso.local'."
    );
}

#[test]
fn ad_permissions_explicit_versus_inherited() {
    let (_, mut o) = org(Sp::Sp3);
    let cfg = one(&mut o, "Get-OrganizationConfig", &[]);
    assert_eq!(cfg.text("Identity"), "First Organization");
    // Piped as in `Get-OrganizationConfig | Get-ADPermission -User ...`.
    let out = invoke(
        &mut o,
        "Get-ADPermission",
        &args(&[("User", s("CONTOSO\\Exchange Servers"))]),
        std::slice::from_ref(&cfg),
    )
    .unwrap();
    assert!(!out.objects.is_empty());
    assert!(
        out.objects
            .iter()
            .all(|a| a.get("IsInherited") == Some(&SimValue::Bool(true)))
    );
    let vis = out
        .objects
        .iter()
        .find(|a| {
            a.get("ExtendedRights") == Some(&SimValue::strings(["View Information Store status"]))
        })
        .expect("inherited store-visible ACE");
    assert_eq!(
        vis.get("AccessRights"),
        Some(&SimValue::strings(["ExtendedRight"]))
    );

    // Granted by LDAP name, shown by display name.
    let out = run(
        &mut o,
        "Add-ADPermission",
        &[
            ("Identity", s("First Organization")),
            ("User", s("uccx-agent")),
            ("ExtendedRights", s("ms-Exch-Store-Visible")),
        ],
    )
    .unwrap();
    let ace = out.objects.first().unwrap();
    assert_eq!(ace.text("User"), "CONTOSO\\uccx-agent");
    assert_eq!(
        ace.get("ExtendedRights"),
        Some(&SimValue::strings(["View Information Store status"]))
    );
    assert_eq!(ace.get("IsInherited"), Some(&SimValue::Bool(false)));
    assert_eq!(ace.text("InheritanceType"), "All");
    let again = run(
        &mut o,
        "Add-ADPermission",
        &[
            ("Identity", s("First Organization")),
            ("User", s("CONTOSO\\uccx-agent")),
            ("ExtendedRights", s("View Information Store status")),
        ],
    )
    .unwrap();
    assert!(again.objects.is_empty());
    assert_eq!(again.warnings.len(), 1);
    let mine = run(
        &mut o,
        "Get-ADPermission",
        &[
            ("Identity", s("First Organization")),
            ("User", s("uccx-agent")),
        ],
    )
    .unwrap();
    assert_eq!(mine.objects.len(), 1);
    // The server inherits what the organization grants with InheritanceType All.
    let srv = run(
        &mut o,
        "Get-ADPermission",
        &[("Identity", s("EX01")), ("User", s("uccx-agent"))],
    )
    .unwrap();
    assert_eq!(
        srv.objects.first().and_then(|a| a.get("IsInherited")),
        Some(&SimValue::Bool(true))
    );
    // Removing through -Instance, piped from Get-ADPermission.
    let out = invoke(&mut o, "Remove-ADPermission", &[], &mine.objects).unwrap();
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    let left = run(
        &mut o,
        "Get-ADPermission",
        &[
            ("Identity", s("First Organization")),
            ("User", s("uccx-agent")),
        ],
    )
    .unwrap();
    assert!(left.objects.is_empty());
    // Inherited entries are not removable here.
    let out = run(
        &mut o,
        "Remove-ADPermission",
        &[
            ("Identity", s("First Organization")),
            ("User", s("Exchange Servers")),
            ("ExtendedRights", s("ms-Exch-Store-Visible")),
        ],
    )
    .unwrap();
    assert_eq!(out.warnings.len(), 1);
    let e = run(
        &mut o,
        "Add-ADPermission",
        &[
            ("Identity", s("First Organization")),
            ("User", s("CONTOSO\\ghost")),
            ("ExtendedRights", s("Send As")),
        ],
    )
    .unwrap_err();
    assert_eq!(e.reason, "ManagementObjectNotFoundException");
    let e = run(
        &mut o,
        "Add-ADPermission",
        &[
            ("Identity", s("First Organization")),
            ("User", s("uccx-agent")),
            ("ExtendedRights", s("Fly")),
        ],
    )
    .unwrap_err();
    assert_eq!(e.reason, "ManagementObjectNotFoundException");
}

#[test]
fn registry_cmdlets_through_invoke() {
    let (_, mut o) = org(Sp::Sp3);
    let key = "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem";
    let t = run(&mut o, "Test-Path", &[("Path", s(key))]).unwrap();
    assert_eq!(t.values, vec![SimValue::Bool(true)]);
    let t = run(&mut o, "Test-Path", &[("Path", s("HKLM:\\SOFTWARE\\Nope"))]).unwrap();
    assert_eq!(t.values, vec![SimValue::Bool(false)]);
    let t = run(
        &mut o,
        "Test-Path",
        &[(
            "Path",
            s("C:\\Program Files\\Microsoft\\Exchange Server\\V14\\Scripts"),
        )],
    )
    .unwrap();
    assert_eq!(t.values, vec![SimValue::Bool(true)]);
    // Absent by default: the store uses 32 / 16.
    let e = run(
        &mut o,
        "Get-ItemProperty",
        &[("Path", s(key)), ("Name", s(SERVICE_SESSIONS_VALUE))],
    )
    .unwrap_err();
    assert_eq!(e.reason, "PSArgumentException");
    run(
        &mut o,
        "Set-ItemProperty",
        &[
            ("Path", s(key)),
            ("Name", s(SESSIONS_VALUE)),
            ("Value", s("64")),
        ],
    )
    .unwrap();
    assert_eq!(
        o.registry().unwrap().value(STORE_KEY, SESSIONS_VALUE),
        Some(&registry::RegValue::String("64".into())),
        "a string value makes REG_SZ, which the store ignores"
    );
    let p = one(
        &mut o,
        "New-ItemProperty",
        &[
            ("Path", s(key)),
            ("Name", s(SESSIONS_VALUE)),
            ("PropertyType", s("DWord")),
            ("Value", SimValue::Int(64)),
            ("Force", SimValue::Bool(true)),
        ],
    );
    assert_eq!(p.get(SESSIONS_VALUE), Some(&SimValue::Int(64)));
    let e = run(
        &mut o,
        "New-ItemProperty",
        &[
            ("Path", s(key)),
            ("Name", s(SESSIONS_VALUE)),
            ("PropertyType", s("DWord")),
            ("Value", SimValue::Int(1)),
        ],
    )
    .unwrap_err();
    assert_eq!(e.message, "The property already exists.");
    let e = run(
        &mut o,
        "New-ItemProperty",
        &[
            ("Path", s(key)),
            ("Name", s("X")),
            ("PropertyType", s("REG_DWORD")),
            ("Value", SimValue::Int(1)),
        ],
    )
    .unwrap_err();
    assert_eq!(
        e.fully_qualified_error_id,
        "ParameterArgumentTransformationError,New-ItemProperty"
    );
    assert!(
        run(
            &mut o,
            "New-Item",
            &[
                ("Path", s("HKLM:\\SOFTWARE\\Contoso")),
                ("Name", s("Exctl"))
            ]
        )
        .is_err()
    );
    run(
        &mut o,
        "New-Item",
        &[
            ("Path", s("HKLM:\\SOFTWARE\\Contoso")),
            ("Name", s("Exctl")),
            ("Force", SimValue::Bool(true)),
        ],
    )
    .unwrap();
    assert_eq!(
        run(
            &mut o,
            "Test-Path",
            &[("Path", s("HKLM:\\SOFTWARE\\Contoso\\Exctl"))]
        )
        .unwrap()
        .values,
        vec![SimValue::Bool(true)]
    );
    run(
        &mut o,
        "Remove-ItemProperty",
        &[("Path", s(key)), ("Name", s(SESSIONS_VALUE))],
    )
    .unwrap();
    let e = run(
        &mut o,
        "Remove-ItemProperty",
        &[("Path", s(key)), ("Name", s(SESSIONS_VALUE))],
    )
    .unwrap_err();
    assert!(e.message.starts_with(
        "Property Maximum Allowed Sessions Per User does not exist at path HKEY_LOCAL_MACHINE\\"
    ));
    let setup = one(
        &mut o,
        "Get-ItemProperty",
        &[(
            "Path",
            s("HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v14\\Setup"),
        )],
    );
    assert_eq!(setup.get("MsiProductMinor"), Some(&SimValue::Int(3)));
}

#[test]
fn binding_errors_have_powershell_texts() {
    let (_, mut o) = org(Sp::Sp3);
    let e = run(
        &mut o,
        "Set-ReceiveConnector",
        &[("MaxMessageSize", s("20MB"))],
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "Cannot process command because of one or more missing mandatory parameters: Identity."
    );
    let e = run(
        &mut o,
        "Get-Mailbox",
        &[("Frobnicate", SimValue::Bool(true))],
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "A parameter cannot be found that matches parameter name 'Frobnicate'."
    );
    let e = run(&mut o, "Get-Mailbox", &[("Identity", s("nobody"))]).unwrap_err();
    assert!(
        e.fully_qualified_error_id
            .ends_with(",Microsoft.Exchange.Management.RecipientTasks.GetMailbox"),
        "{}",
        e.fully_qualified_error_id
    );
    assert_eq!(
        cmdlet_spec("Get-ItemProperty", Sp::Sp3).unwrap().class,
        "Microsoft.PowerShell.Commands.GetItemPropertyCommand"
    );
    // Unique prefixes bind; ambiguous ones do not.
    let m = one(&mut o, "Get-Mailbox", &[("Ident", s(UCCX_ACCOUNT))]);
    assert_eq!(m.text("Alias"), UCCX_ACCOUNT);
    let e = run(&mut o, "Set-ImapSettings", &[("MaxConn", SimValue::Int(5))]).unwrap_err();
    assert!(e.message.contains("is ambiguous"), "{}", e.message);
    // Common parameters are the interpreter's.
    assert!(
        run(
            &mut o,
            "Get-Mailbox",
            &[("Identity", s(UCCX_ACCOUNT)), ("ErrorAction", s("Stop"))]
        )
        .is_ok()
    );
    let e = run(
        &mut o,
        "Set-ImapSettings",
        &[("MaxConnectionsPerUser", s("many"))],
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "Cannot process argument transformation on parameter 'MaxConnectionsPerUser'. Cannot convert value \"many\" to type \"System.Int32\". Error: \"Input string was not in a correct format.\""
    );
    let e = run(&mut o, "Add-PSSnapin", &[("Name", s("Nope.Snapin"))]).unwrap_err();
    assert_eq!(
        e.message,
        "The Windows PowerShell snap-in 'Nope.Snapin' is not installed on this machine."
    );
    run(
        &mut o,
        "Add-PSSnapin",
        &[("Name", s(super::cmdlets::EXCHANGE_SNAPIN))],
    )
    .unwrap();
    assert_eq!(o.state_section()["exchange_sessions"], 1);
}

#[test]
fn event_log_filters_and_no_matches() {
    let (clock, mut o) = org(Sp::Sp3);
    let e = run(
        &mut o,
        "Get-EventLog",
        &[
            ("LogName", s("Application")),
            ("InstanceId", SimValue::Int(9646)),
        ],
    )
    .unwrap_err();
    assert_eq!(e.message, "No matches found");
    assert_eq!(
        e.fully_qualified_error_id,
        "GetEventLogNoEntriesFound,Microsoft.PowerShell.Commands.GetEventLogCommand"
    );
    let before = o.now();
    clock.advance(Duration::from_secs(1));
    super::cmdlets::log_store_event(&mut o, 9646, "first");
    o.write_event(
        None,
        1000,
        "Other",
        eventlog::Level::Information,
        "x".into(),
    );
    super::cmdlets::log_store_event(&mut o, 9646, "second");
    let out = run(
        &mut o,
        "Get-EventLog",
        &[
            ("LogName", s("Application")),
            ("InstanceId", SimValue::Int(9646)),
            ("Newest", SimValue::Int(1)),
        ],
    )
    .unwrap();
    assert_eq!(out.objects.len(), 1);
    assert_eq!(out.objects[0].text("Message"), "second");
    assert_eq!(out.objects[0].text("EntryType"), "Error");
    assert_eq!(out.objects[0].text("Source"), "MSExchangeIS");
    let out = run(
        &mut o,
        "Get-EventLog",
        &[
            ("LogName", s("Application")),
            ("Source", s("MSExchange*")),
            ("After", SimValue::DateTime(before)),
        ],
    )
    .unwrap();
    assert_eq!(out.objects.len(), 2);
    let e = run(&mut o, "Get-EventLog", &[("LogName", s("Nope"))]).unwrap_err();
    assert_eq!(
        e.message,
        "The event log 'Nope' on computer '.' does not exist."
    );
}

#[test]
fn five_thousand_mailboxes_are_cheap() {
    let (_, mut o) = org(Sp::Sp3);
    o.add_generated_mailboxes(5000);
    let t0 = Instant::now();
    for i in (1..=5000).step_by(7) {
        let id = format!("user{i:05}@contoso.local");
        assert!(o.get_mailbox(Some(&id), None).is_ok());
    }
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let out = run(&mut o, "Get-Mailbox", &[]).unwrap();
    assert_eq!(out.objects.len(), 1000);
    assert!(out.warnings[0].starts_with("By default, only the first 1000 items are returned."));
    let out = run(&mut o, "Get-Mailbox", &[("ResultSize", s("Unlimited"))]).unwrap();
    assert_eq!(out.objects.len(), 5002);
    assert!(out.warnings.is_empty());
}

#[test]
fn state_files_round_trip_and_may_be_partial() {
    let (_, r) = manual();
    let yaml = r#"
sp: Sp1
servers:
  - name: EXCAS1
    imap:
      MaxConnectionsPerUser: 40
    registry:
      "hkey_local_machine\\system\\currentcontrolset\\services\\msexchangeis\\parameterssystem":
        path: "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem"
        values:
          - ["Maximum Allowed Service Sessions Per User", {DWord: 64}]
    connectors:
      - name: Default EXCAS1
        settings:
          MaxMessageSize: 25MB
mailboxes:
  - alias: uccx-agent
    password: secret
"#;
    let mut o = ExchangeOrg::from_yaml(yaml, r.clone()).unwrap();
    // The old spelling (`Sp1`) is still read.
    assert_eq!(o.sp, Sp::Sp1);
    let g = o.get_imap_settings(Some("EXCAS1")).unwrap();
    assert_eq!(g.get("MaxConnectionsPerUser"), Some(&SimValue::Int(40)));
    assert_eq!(
        g.get("MaxConnections"),
        Some(&SimValue::Int(i32::MAX)),
        "defaults fill in"
    );
    assert_eq!(
        o.effective_store_limits(None)
            .unwrap()
            .service_sessions_per_user,
        64
    );
    let c = o
        .get_receive_connector(Some("EXCAS1\\Default EXCAS1"), None)
        .unwrap()
        .remove(0);
    assert_eq!(c.text("MaxMessageSize"), "25 MB (26,214,400 bytes)");
    assert!(
        o.get_throttling_policy(None).unwrap()[0].get("IsDefault") == Some(&SimValue::Bool(true))
    );

    let text = o.to_yaml().unwrap();
    // Written in the CLI's spelling; read back, as every old spelling is.
    assert!(text.contains("sp: 2010-sp1"), "{text}");
    for old in ["SP1", "sp1", "2010-SP1"] {
        let y = yaml.replace("sp: Sp1", &format!("sp: {old}"));
        assert_eq!(ExchangeOrg::from_yaml(&y, r.clone()).unwrap().sp, Sp::Sp1);
    }
    assert!(ExchangeOrg::from_yaml(&yaml.replace("sp: Sp1", "sp: sp4"), r.clone()).is_err());
    let mut back = ExchangeOrg::from_yaml(&text, r.clone()).unwrap();
    assert_eq!(
        back.get_imap_settings(None).unwrap().properties,
        o.get_imap_settings(None).unwrap().properties
    );
    let json = back.to_json().unwrap();
    let again = ExchangeOrg::from_json(&json, r.clone()).unwrap();
    assert_eq!(again.mailboxes, back.mailboxes);

    let bad = "servers:\n  - name: X\n    imap:\n      MaxConnectionsPerUser: 0\n";
    assert!(matches!(
        ExchangeOrg::from_yaml(bad, r.clone()),
        Err(StateError::Invalid(_))
    ));
    let typo = "servers:\n  - name: X\n    imap:\n      MaxConectionsPerUser: 5\n";
    assert!(ExchangeOrg::from_yaml(typo, r).is_err());
}

#[test]
fn sim_state_section_is_published() {
    let (_, o) = org(Sp::Sp3);
    let h = OrgHandle::new(o);
    let state = crate::state::SimState::default();
    h.publish(&state);
    let snap = state.snapshot();
    let ex = &snap.sections["exchange"];
    assert_eq!(ex["sp"], "SP3");
    assert_eq!(ex["mailboxes"], 2);
    assert_eq!(
        ex["servers"][0]["store_limits"]["service_sessions_per_user"],
        16
    );
    assert_eq!(
        ex["servers"][0]["services"]["MSExchangeIMAP4"]["status"],
        "Running"
    );
}

#[test]
fn glob_matches_like_powershell() {
    assert!(glob("MSExchange*", "MSExchangeIS"));
    assert!(glob("*imap?", "MSExchangeIMAP4"));
    assert!(!glob("MSExchangeIS", "MSExchangeIS2"));
    assert!(glob("*", ""));
}

#[test]
fn throttling_policy_rename_moves_associations_and_state_files_save() {
    let (_, mut o) = org(Sp::Sp3);
    run(&mut o, "New-ThrottlingPolicy", &[("Name", s("Old"))]).unwrap();
    run(
        &mut o,
        "Set-Mailbox",
        &[
            ("Identity", s(UCCX_ACCOUNT)),
            ("ThrottlingPolicy", s("Old")),
        ],
    )
    .unwrap();
    run(
        &mut o,
        "Set-ThrottlingPolicy",
        &[("Identity", s("Old")), ("Name", s("New"))],
    )
    .unwrap();
    let a = one(
        &mut o,
        "Get-ThrottlingPolicyAssociation",
        &[("Identity", s(UCCX_ACCOUNT))],
    );
    assert_eq!(a.text("ThrottlingPolicyId"), "New");
    o.set_service_timing(None, "MSExchangeIS", 1.0, 2.0)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for file in ["state.yaml", "state.json"] {
        let path = dir.path().join(file);
        o.save_state_file(&path).unwrap();
        let (_, r) = manual();
        let mut back = ExchangeOrg::load_state_file(&path, r).unwrap();
        let a = back
            .get_throttling_policy_association(UCCX_ACCOUNT)
            .unwrap();
        assert_eq!(a.text("ThrottlingPolicyId"), "New");
        let done = back.restart_service(None, "MSExchangeIS", true).unwrap();
        // 1 s + 2 s for the store, then 2 s for its dependents to start again.
        assert_eq!(done.since(back.now()), Duration::from_secs(5), "{file}");
    }
    let (_, r) = manual();
    assert!(matches!(
        ExchangeOrg::load_state_file(&dir.path().join("missing.yaml"), r),
        Err(StateError::Io(..))
    ));
}

#[test]
fn dependent_services_and_a_stop_then_start_counts_as_a_restart() {
    let (clock, mut o) = org(Sp::Sp3);
    let deps = run(
        &mut o,
        "Get-Service",
        &[
            ("Name", s("MSExchangeIS")),
            ("DependentServices", SimValue::Bool(true)),
        ],
    )
    .unwrap();
    let names: Vec<String> = deps.objects.iter().map(|d| d.text("Name")).collect();
    assert_eq!(
        names,
        ["MSExchangeMailboxAssistants", "MSExchangeMailSubmission"]
    );
    assert!(deps.objects.iter().all(|d| d.text("Status") == "Running"));
    // ServiceController.Stop() (force: the dependents stop first), then Start().
    o.stop_service(None, "MSExchangeIS", true).unwrap();
    assert_eq!(
        one(
            &mut o,
            "Get-Service",
            &[("Name", s("MSExchangeMailboxAssistants"))]
        )
        .text("Status"),
        "StopPending"
    );
    clock.advance(Duration::from_secs(20));
    assert_eq!(
        one(&mut o, "Get-Service", &[("Name", s("MSExchangeIS"))]).text("Status"),
        "Stopped"
    );
    o.start_service(None, "MSExchangeIS").unwrap();
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        one(&mut o, "Get-Service", &[("Name", s("MSExchangeIS"))]).text("Status"),
        "Running"
    );
    let state = o.state_section();
    assert_eq!(
        state["servers"][0]["services"]["MSExchangeIS"]["restarts"],
        1
    );
    // A service that never ran is started, not restarted.
    run(&mut o, "Start-Service", &[("Name", s("MSExchangePOP3"))]).unwrap();
    let state = o.state_section();
    assert_eq!(
        state["servers"][0]["services"]["MSExchangePOP3"]["restarts"],
        0
    );
}
