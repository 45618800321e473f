//! The registry of kinds is honest: what each kind says it calls (`Kind::cmdlets`) is
//! what its scripts call, and what `access: psrp` relays (generated from those lists and
//! `exctl_exchange::HOST_CMDLETS`) covers every Exchange cmdlet and parameter they use.
//!
//! How: a manifest declaring every kind (with changes of every action) is planned against
//! the simulator's Exchange in this process, without a network: each kind's observe
//! script runs in the simulator's PowerShell, its report is diffed into changes, and
//! its export script is made too. The observe and export scripts are read with the
//! interpreter's parser (every branch, not only those a run takes) and the changes are
//! commands as data; a command is an Exchange cmdlet when the simulator's cmdlet table
//! says so (the table a new kind's cmdlets are added to anyway), so neither PowerShell's
//! own commands nor the scripts' functions need a list here.
//! The engine's own host scripts (observe, export, doctor, capacity, the store restart)
//! are read the same way: every Exchange cmdlet they call must be relayed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use exctl_engine::desired::DesiredState;
use exctl_engine::relay;
use exctl_exchange::export::ExportContext;
use exctl_exchange::kinds::ALL;
use exctl_exchange::record::PRELUDE;
use exctl_exchange::{HOST_CMDLETS, Observations, ObserveContext, Resource, Version};
use exctl_pwsh_interp::ast::{
    Block, CommandElement, CommandTarget, ElementKind, Expr, ExprKind, Pipeline, ScriptBlockAst,
    Statement, StatementKind, StringPart,
};
use exctl_pwsh_interp::{CollectSink, Interpreter, Limits};
use exctl_sim::HostOptions;
use exctl_sim::exchange::clock::ScaledClock;
use exctl_sim::exchange::cmdlets::{Module, cmdlet_spec};
use exctl_sim::exchange::{ClockRef, ExchangeOrg, OrgHandle, Sp};
use exctl_sim::pshost::SimHost;

const HOST: &str = "EX01";

const INVENTORY: &str = "hosts:\n  EX01:\n    endpoint: https://ex01.contoso.local:5986/wsman\n    user: CONTOSO\\svc-exctl\n    credential: env:EXCTL_TEST_PASSWORD\n    exchange: 2010-sp3\n";

/// Every kind, with a creation, an update and a removal where the kind has them.
const RESOURCES: &str = r#"targets: [EX01]
ad_permissions:
  - target: organization
    user: CONTOSO\uccx-agent
    extended_rights: [View Information Store status]
  - target: organization
    user: CONTOSO\uccx-agent
    extended_rights: [ms-Exch-Store-Admin]
    deny: true
  - target: organization
    user: CONTOSO\Administrator
    extended_rights: [ms-Exch-Store-Admin]
    ensure: absent
throttling_policies:
  UCCXThrottlingPolicy:
    IMAPMaxConcurrency: unlimited
  OldPolicy:
    IMAPMaxConcurrency: 10
  GonePolicy:
    ensure: absent
throttling_associations:
  - identity: uccx-agent
    policy: UCCXThrottlingPolicy
receive_connectors:
  "*":
    MaxInboundConnectionPerSource: unlimited
imap_settings:
  MaxConnectionsPerUser: 250
pop_settings:
  MaxConnectionsPerUser: 250
registry_values:
  - path: 'HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeIS\ParametersSystem'
    name: Maximum Allowed Service Sessions Per User
    type: dword
    value: 250
"#;

/// What the simulator has before the plan, so that every action has something to act on.
const SETUP: &str = "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010\n\
    $null = New-ThrottlingPolicy -Name OldPolicy\n\
    $null = New-ThrottlingPolicy -Name GonePolicy\n\
    $null = Add-ADPermission -Identity (Get-OrganizationConfig).DistinguishedName -User 'CONTOSO\\Administrator' -ExtendedRights ms-Exch-Store-Admin\n";

fn desired() -> (tempfile::TempDir, DesiredState) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("inventory.yaml"), INVENTORY).expect("written");
    std::fs::write(dir.path().join("ex01.yaml"), RESOURCES).expect("written");
    let (sources, docs, mut diags) = exctl_manifest::load_paths(&[dir.path().to_path_buf()]);
    let state = exctl_engine::desired::build(&sources, &docs, &mut diags);
    assert!(!diags.has_errors(), "{:?}", diags.as_slice());
    (dir, state)
}

/// Runs `script` in the simulated host's PowerShell; what it writes to stdout.
fn run(org: &OrgHandle, script: &str) -> String {
    let host = SimHost::new(org.clone(), HostOptions::default(), &[]);
    let mut interpreter = Interpreter::with_limits(host, Limits::default());
    let mut sink = CollectSink::default();
    let status = interpreter.run(script, None, &mut sink);
    assert_eq!(status.code, 0, "{script}\n{:?}", sink.errors);
    sink.stdout
}

/// Every command a script names (with the parameter names written after it), in every
/// branch: the parse tree walked, nothing run.
#[derive(Default)]
struct Calls(BTreeMap<String, BTreeSet<String>>);

impl Calls {
    fn script(&mut self, text: &str) {
        let script = exctl_pwsh_interp::parse(text)
            .unwrap_or_else(|e| panic!("the script parses: {e:?}\n{text}"));
        self.script_block(&script.block);
    }

    fn script_block(&mut self, b: &ScriptBlockAst) {
        for p in &b.params {
            if let Some(d) = &p.default {
                self.expr(d);
            }
        }
        for blk in [&b.begin, &b.process].into_iter().flatten() {
            self.block(blk);
        }
        self.block(&b.end);
    }

    fn block(&mut self, b: &Block) {
        for s in &b.statements {
            self.statement(s);
        }
        for t in &b.traps {
            self.block(&t.body);
        }
    }

    fn statement(&mut self, s: &Statement) {
        match &s.kind {
            StatementKind::Pipeline(p) => self.pipeline(p),
            StatementKind::Assign { target, value, .. } => {
                self.expr(target);
                self.statement(value);
            }
            StatementKind::If { clauses, otherwise } => {
                for (c, b) in clauses {
                    self.pipeline(c);
                    self.block(b);
                }
                if let Some(b) = otherwise {
                    self.block(b);
                }
            }
            StatementKind::While { cond, body, .. } | StatementKind::DoLoop { body, cond, .. } => {
                self.pipeline(cond);
                self.block(body);
            }
            StatementKind::For {
                init,
                cond,
                step,
                body,
                ..
            } => {
                for s in [init, step].into_iter().flatten() {
                    self.statement(s);
                }
                if let Some(c) = cond {
                    self.pipeline(c);
                }
                self.block(body);
            }
            StatementKind::Foreach {
                collection, body, ..
            } => {
                self.pipeline(collection);
                self.block(body);
            }
            StatementKind::Function(f) => self.script_block(&f.body),
            StatementKind::Try {
                body,
                catches,
                finally,
            } => {
                self.block(body);
                for c in catches {
                    self.block(&c.body);
                }
                if let Some(b) = finally {
                    self.block(b);
                }
            }
            StatementKind::Throw(p) | StatementKind::Return(p) | StatementKind::Exit(p) => {
                if let Some(p) = p {
                    self.pipeline(p);
                }
            }
            _ => {}
        }
    }

    fn pipeline(&mut self, p: &Pipeline) {
        for e in &p.elements {
            match &e.kind {
                ElementKind::Expression(x) => self.expr(x),
                ElementKind::Command(c) => {
                    let mut params = BTreeSet::new();
                    for el in &c.elements {
                        match el {
                            CommandElement::Parameter { name, argument, .. } => {
                                params.insert(name.clone());
                                if let Some(a) = argument {
                                    self.expr(a);
                                }
                            }
                            CommandElement::Argument(a) => self.expr(a),
                            _ => {}
                        }
                    }
                    match &c.target {
                        CommandTarget::Name(n) => {
                            self.0.entry(n.clone()).or_default().extend(params);
                        }
                        CommandTarget::Expression(x) => self.expr(x),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Expandable(parts) => {
                for p in parts {
                    if let StringPart::SubExpression(b) = p {
                        self.block(b);
                    }
                }
            }
            ExprKind::ArrayLiteral(items) => items.iter().for_each(|x| self.expr(x)),
            ExprKind::UnaryComma(x) | ExprKind::Cast(_, x) | ExprKind::Unary(_, x) => self.expr(x),
            ExprKind::ArraySubExpression(b) | ExprKind::SubExpression(b) => self.block(b),
            ExprKind::Paren(s) => self.statement(s),
            ExprKind::Hashtable(entries) => {
                for (k, v) in entries {
                    self.expr(k);
                    self.statement(v);
                }
            }
            ExprKind::ScriptBlock(b) => self.script_block(b),
            ExprKind::Binary(_, a, b, _) => {
                self.expr(a);
                self.expr(b);
            }
            ExprKind::Member { target, name, .. } => {
                self.expr(target);
                self.expr(name);
            }
            ExprKind::MethodCall {
                target, name, args, ..
            } => {
                self.expr(target);
                self.expr(name);
                args.iter().for_each(|x| self.expr(x));
            }
            ExprKind::Index { target, index } => {
                self.expr(target);
                self.expr(index);
            }
            _ => {}
        }
    }

    fn command(&mut self, c: &exctl_pwsh::Command) {
        let params = c.params.iter().map(|p| p.name.clone());
        self.0.entry(c.name.clone()).or_default().extend(params);
    }

    /// The calls of Exchange cmdlets (as the simulator's table knows them).
    fn exchange(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.0
            .iter()
            .filter(|(n, _)| cmdlet_spec(n, Sp::Sp3).is_some_and(|s| s.module == Module::Exchange))
            .map(|(n, p)| (n.clone(), p.clone()))
            .collect()
    }
}

fn sorted(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn each_kind_lists_exactly_the_exchange_cmdlets_its_scripts_call() {
    let (_dir, state) = desired();
    let resources = state.resources.get(HOST).cloned().unwrap_or_default();
    let clock = ClockRef(Arc::new(ScaledClock::real()));
    let org = OrgHandle::new(ExchangeOrg::seed_named(Sp::Sp3, clock, HOST));
    run(&org, SETUP);
    let ctx = ObserveContext {
        host: HOST,
        version: Version::Sp3,
    };
    let mailboxes = vec!["uccx-agent".to_string()];
    let users = vec!["CONTOSO\\uccx-agent".to_string()];
    let export = ExportContext {
        host: HOST,
        version: Version::Sp3,
        mailboxes: &mailboxes,
        users: &users,
    };
    // One observe script for every kind, as the engine sends per host: a kind may read
    // another's records (associations learn from the policies' whether a policy exists).
    let mine = |kind: &str| -> Vec<&Resource> {
        let r: Vec<&Resource> = resources.iter().filter(|r| r.kind == kind).collect();
        assert!(!r.is_empty(), "the manifest declares {kind}");
        r
    };
    let observe: String = ALL
        .iter()
        .map(|k| k.observe(&mine(k.key()), &ctx))
        .collect();
    let report = run(
        &org,
        &format!(
            "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010\n{PRELUDE}\n{observe}"
        ),
    );
    let observed = Observations::parse(&report).expect("the observe script reports records");
    let mut problems = Vec::new();
    let mut relayed_params: Vec<(String, String)> = Vec::new();
    for kind in ALL {
        let mine = mine(kind.key());
        let mut calls = Calls::default();
        calls.script(&format!("{PRELUDE}\n{}", kind.observe(&mine, &ctx)));
        let changes = kind
            .diff(&mine, &observed, &ctx)
            .unwrap_or_else(|e| panic!("{}: {e}", kind.key()));
        assert!(
            !changes.is_empty(),
            "{}: the manifest changes something",
            kind.key()
        );
        for c in &changes {
            for cmd in &c.commands {
                calls.command(cmd);
            }
        }
        calls.script(&format!("{PRELUDE}\n{}", kind.export_script(&export)));
        let called: BTreeMap<_, _> = calls.exchange();
        let listed = sorted(kind.cmdlets());
        let names: BTreeSet<String> = called.keys().cloned().collect();
        if names != listed {
            problems.push(format!(
                "{}: its scripts call {names:?}, its cmdlets() lists {listed:?}",
                kind.key()
            ));
        }
        for (n, params) in called {
            relayed_params.extend(params.into_iter().map(|p| (n.clone(), p)));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // And the relay of `access: psrp` declares every parameter they pass.
    let declared: Vec<&str> = relay::parameter_names()
        .into_iter()
        .chain(relay::SWITCHES.iter().copied())
        .chain(relay::COMMON.iter().copied())
        .collect();
    let missing: Vec<_> = relayed_params
        .iter()
        .filter(|(_, p)| !declared.iter().any(|d| d.eq_ignore_ascii_case(p)))
        .collect();
    assert!(missing.is_empty(), "the relay does not declare {missing:?}");
}

#[test]
fn the_relayed_cmdlets_are_the_kinds_and_the_host_scripts_and_all_are_exchanges() {
    let relayed = relay::exchange_cmdlets();
    let mut expected: BTreeSet<String> = sorted(HOST_CMDLETS);
    for k in ALL {
        expected.extend(sorted(k.cmdlets()));
    }
    assert_eq!(
        relayed
            .iter()
            .map(|n| n.to_string())
            .collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(relayed.len(), expected.len(), "each once");
    for name in relayed {
        let spec = cmdlet_spec(name, Sp::Rtm);
        assert!(
            spec.is_some_and(|s| s.module == Module::Exchange),
            "{name} is no Exchange cmdlet of the simulator"
        );
    }
}

#[test]
fn the_host_scripts_call_only_relayed_exchange_cmdlets() {
    use exctl_engine::restart::{self, RestartScriptOptions};
    let (_dir, state) = desired();
    let host = state.hosts.get(HOST).expect("EX01 is in the inventory");
    let resources = state.resources.get(HOST).cloned().unwrap_or_default();
    let users = vec!["CONTOSO\\uccx-agent".to_string()];
    let mailboxes = vec!["uccx-agent".to_string()];
    let opts = RestartScriptOptions {
        move_active_databases: true,
        ..RestartScriptOptions::default()
    };
    let scripts = [
        exctl_engine::observe::observe_script(host, &resources),
        exctl_engine::export::export_script(
            host,
            &exctl_engine::export::ExportRequest {
                kinds: ALL,
                mailboxes: &mailboxes,
                users: &users,
            },
        ),
        exctl_engine::doctor::script(
            host,
            Some("uccx-agent"),
            std::time::Duration::from_secs(3600),
        ),
        exctl_engine::capacity::observe_script(HOST, host.version, "uccx-agent"),
    ];
    // Every registered service's restart and recovery steps (the store's read databases).
    let scripts: Vec<String> = scripts
        .into_iter()
        .chain(exctl_exchange::kinds::services().iter().flat_map(|&svc| {
            [
                restart::restart_body(svc, HOST, 1, &opts),
                restart::recovery_body(svc, HOST, 1, &opts),
            ]
        }))
        .collect();
    let mut calls = Calls::default();
    for s in &scripts {
        calls.script(&format!("{PRELUDE}\n{s}"));
    }
    let relayed = relay::exchange_cmdlets();
    let called = calls.exchange();
    assert!(called.contains_key("Get-MailboxDatabase"), "{called:?}");
    let missing: Vec<&String> = called
        .keys()
        .filter(|n| !relayed.iter().any(|r| r.eq_ignore_ascii_case(n)))
        .collect();
    assert!(
        missing.is_empty(),
        "the host scripts call {missing:?}, which access: psrp does not relay: add them to exctl_exchange::HOST_CMDLETS"
    );
}

#[test]
fn exctl_kinds_lists_every_kind_with_its_help() {
    let out = crate::common::exctl()
        .arg("kinds")
        .output()
        .expect("exctl runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for k in ALL {
        assert!(
            text.contains(&format!("{} (", k.key())),
            "{}: {text}",
            k.key()
        );
        assert!(text.contains(k.help()), "{}: {text}", k.key());
    }
    assert!(
        text.contains("Exchange cmdlets: Get-ImapSettings, Set-ImapSettings"),
        "{text}"
    );
    // What each kind's changes restart, from the services the kinds declare.
    for svc in exctl_exchange::kinds::services() {
        assert!(
            text.contains(&format!("{} ({})", svc.name(), svc.consequence())),
            "{}: {text}",
            svc.name()
        );
    }
}
