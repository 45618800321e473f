//! Windows services of the simulated host and their restart semantics in simulated
//! time.
//!
//! A stop or restart is a transition with two moments: the service is StopPending from
//! its start until `stop_done`, then StartPending until `start_done` (a restart), then
//! Running. The model settles transitions lazily (see `clock`), applying what happens at
//! each moment: MSExchangeIMAP4 drops its connections when it stops and loads the
//! configured IMAP settings when it starts; MSExchangeIS dismounts its databases when it
//! begins stopping, and reads the store limits from the registry and mounts them when it
//! starts.
//!
//! Durations are configurable per service ([`ServiceTiming`]): MSExchangeIS 15 s to stop
//! and 30 s to start (45 s; no published figure exists, reference §4), MSExchangeIMAP4
//! 2 s + 3 s, other services 1 s + 2 s.
//!
//! Restart-Service and Stop-Service refuse a service with running dependents unless
//! `-Force` (Windows PowerShell 2.0's ServiceHasDependentServices error); with `-Force`
//! the running dependents stop first and start again after it, as Restart-Service does.
//! Get-Service in PowerShell 2.0 has no StartType (that came with .NET 4.6.1); the model
//! keeps one (MSExchangeIMAP4 is Manual in 2010, guides.wmlcloud.com) for the state file
//! and `/sim/state`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::clock::SimTime;
use super::value::{SimObject, SimValue};

/// A service's steady state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Steady {
    /// Running.
    Running,
    /// Stopped.
    Stopped,
}

/// How a service starts at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartType {
    /// Automatic.
    Automatic,
    /// Manual.
    Manual,
    /// Disabled.
    Disabled,
}

/// `ServiceControllerStatus` as Get-Service shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Running.
    Running,
    /// Stopped.
    Stopped,
    /// StopPending.
    StopPending,
    /// StartPending.
    StartPending,
}

impl Status {
    /// The member name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "Running",
            Status::Stopped => "Stopped",
            Status::StopPending => "StopPending",
            Status::StartPending => "StartPending",
        }
    }
}

/// How long a service takes to stop and to start, in simulated seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServiceTiming {
    /// Seconds from the stop request until Stopped.
    pub stop_secs: f64,
    /// Seconds from the start request until Running.
    pub start_secs: f64,
}

/// Seconds from a state file as a duration: negative, NaN or huge values (which would
/// make `Duration` panic) become zero or a day.
fn secs(x: f64) -> Duration {
    if x.is_nan() || x <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(x.min(86_400.0)).unwrap_or(Duration::ZERO)
    }
}

impl ServiceTiming {
    /// The stop duration.
    pub fn stop(self) -> Duration {
        secs(self.stop_secs)
    }

    /// The start duration.
    pub fn start(self) -> Duration {
        secs(self.start_secs)
    }
}

/// A stop, start or restart under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// When it began.
    pub began: SimTime,
    /// When the service is Stopped (equal to `began` for a start).
    pub stop_done: SimTime,
    /// When it is Running again; `None` for a plain stop.
    pub start_done: Option<SimTime>,
    /// Whether the stop moment has been applied.
    #[serde(default)]
    pub stop_applied: bool,
}

/// One service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// The service name (`MSExchangeIS`).
    pub name: String,
    /// The display name (`Microsoft Exchange Information Store`).
    pub display_name: String,
    /// Steady state (what it is when no transition is under way).
    pub state: Steady,
    /// Start type.
    pub start_type: StartType,
    /// Services this one needs.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Its timing.
    pub timing: ServiceTiming,
    /// A transition under way.
    #[serde(default)]
    pub transition: Option<Transition>,
    /// Restarts (for `/sim/state`): Restart-Service, or a start of a service that had run
    /// before (a stop, then a start).
    #[serde(default)]
    pub restarts: u64,
    /// The process id while it runs (`Win32_Service.ProcessId`); a new one at every
    /// start. Assigned when the model is completed when absent.
    #[serde(default)]
    pub pid: u32,
    /// When its process started (`Get-Process`'s `StartTime`), if it ever ran.
    #[serde(default)]
    pub started: Option<SimTime>,
}

/// The process id of the service at `index` after `restarts` restarts: distinct for every
/// service of a host and every restart (Windows ids are multiples of 4).
pub fn pid_for(index: usize, restarts: u64) -> u32 {
    let index = u32::try_from(index % 64).unwrap_or(0);
    let generation = u32::try_from(restarts % 100_000).unwrap_or(0);
    4 * (1000 + generation * 64 + index)
}

impl Service {
    /// A service with default timing.
    pub fn new(name: &str, display: &str, state: Steady, start_type: StartType) -> Self {
        Service {
            name: name.to_string(),
            display_name: display.to_string(),
            state,
            start_type,
            depends_on: Vec::new(),
            timing: ServiceTiming {
                stop_secs: 1.0,
                start_secs: 2.0,
            },
            transition: None,
            restarts: 0,
            pid: 0,
            started: None,
        }
    }

    /// Its status at `now`.
    pub fn status(&self, now: SimTime) -> Status {
        match self.transition {
            None => match self.state {
                Steady::Running => Status::Running,
                Steady::Stopped => Status::Stopped,
            },
            Some(t) if now < t.stop_done => Status::StopPending,
            Some(t) => match t.start_done {
                Some(done) if now < done => Status::StartPending,
                Some(_) => Status::Running,
                None => Status::Stopped,
            },
        }
    }

    /// True when running with no transition: the only state that serves clients.
    pub fn is_serving(&self, now: SimTime) -> bool {
        self.status(now) == Status::Running && self.transition.is_none()
    }

    /// Begins a restart (or a start when stopped): returns when it will be Running.
    pub fn begin_restart(&mut self, now: SimTime) -> SimTime {
        let stop_done = if self.state == Steady::Running {
            now.plus(self.timing.stop())
        } else {
            now
        };
        let start_done = stop_done.plus(self.timing.start());
        self.transition = Some(Transition {
            began: now,
            stop_done,
            start_done: Some(start_done),
            stop_applied: false,
        });
        start_done
    }

    /// Begins a start of a stopped service.
    pub fn begin_start(&mut self, now: SimTime) -> SimTime {
        let done = now.plus(self.timing.start());
        self.transition = Some(Transition {
            began: now,
            stop_done: now,
            start_done: Some(done),
            stop_applied: true,
        });
        done
    }

    /// Begins a stop.
    pub fn begin_stop(&mut self, now: SimTime) -> SimTime {
        let done = now.plus(self.timing.stop());
        self.transition = Some(Transition {
            began: now,
            stop_done: done,
            start_done: None,
            stop_applied: false,
        });
        done
    }

    /// The `Win32_Service` WMI object (Get-WmiObject): `State` with WMI's spellings,
    /// `StartMode` (`Auto`, `Manual`, `Disabled`), `ProcessId` (0 unless running).
    pub fn to_wmi_object(&self, now: SimTime, computer: &str) -> SimObject {
        let status = self.status(now);
        let state = match status {
            Status::Running => "Running",
            Status::Stopped => "Stopped",
            Status::StartPending => "Start Pending",
            Status::StopPending => "Stop Pending",
        };
        let mode = match self.start_type {
            StartType::Automatic => "Auto",
            StartType::Manual => "Manual",
            StartType::Disabled => "Disabled",
        };
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        SimObject {
            type_names: vec![
                "System.Management.ManagementObject#root\\cimv2\\Win32_Service".to_string(),
                "System.Management.ManagementObject".to_string(),
                "System.Management.ManagementBaseObject".to_string(),
                "System.ComponentModel.Component".to_string(),
                "System.MarshalByRefObject".to_string(),
                "System.Object".to_string(),
            ],
            properties: Vec::new(),
        }
        .with("ExitCode", SimValue::UInt(0))
        .with("Name", SimValue::str(&self.name))
        .with("ProcessId", SimValue::UInt(pid))
        .with("StartMode", SimValue::str(mode))
        .with("State", SimValue::str(state))
        .with("Status", SimValue::str("OK"))
        .with("DisplayName", SimValue::str(&self.display_name))
        .with("Started", status == Status::Running)
        .with("SystemName", SimValue::str(computer))
        .with("__CLASS", SimValue::str("Win32_Service"))
    }

    /// The executable's name (Get-Process `ProcessName`).
    pub fn process_name(&self) -> &'static str {
        match self.name.as_str() {
            "MSExchangeIS" => "store",
            "MSExchangeIMAP4" => "Microsoft.Exchange.Imap4Service",
            "MSExchangePOP3" => "Microsoft.Exchange.Pop3Service",
            "MSExchangeADTopology" => "MSExchangeADTopologyService",
            "MSExchangeMailboxAssistants" => "MSExchangeMailboxAssistants",
            "MSExchangeMailSubmission" => "MSExchangeMailSubmission",
            "MSExchangeTransport" => "EdgeTransport",
            _ => "svchost",
        }
    }

    /// The Get-Process object of its process, if it runs.
    pub fn to_process_object(&self, now: SimTime) -> Option<SimObject> {
        if self.status(now) == Status::Stopped {
            return None;
        }
        let mut o = SimObject {
            type_names: vec![
                "System.Diagnostics.Process".to_string(),
                "System.ComponentModel.Component".to_string(),
                "System.MarshalByRefObject".to_string(),
                "System.Object".to_string(),
            ],
            properties: Vec::new(),
        }
        .with(
            "Id",
            SimValue::Int(i32::try_from(self.pid).unwrap_or(i32::MAX)),
        )
        .with("ProcessName", SimValue::str(self.process_name()))
        .with("Name", SimValue::str(self.process_name()));
        if let Some(t) = self.started {
            o.push("StartTime", SimValue::DateTime(t));
        }
        Some(o)
    }

    /// The Get-Service object (a deserialized ServiceController).
    pub fn to_object(&self, now: SimTime, dependents: &[String]) -> SimObject {
        let status = self.status(now);
        SimObject::new("System.ServiceProcess.ServiceController")
            .with("Name", SimValue::str(&self.name))
            .with(
                "RequiredServices",
                SimValue::strings(self.depends_on.iter().cloned()),
            )
            .with("CanPauseAndContinue", false)
            .with("CanShutdown", status == Status::Running)
            .with("CanStop", status == Status::Running)
            .with("DisplayName", SimValue::str(&self.display_name))
            .with(
                "DependentServices",
                SimValue::strings(dependents.iter().cloned()),
            )
            .with("MachineName", SimValue::str("."))
            .with("ServiceName", SimValue::str(&self.name))
            .with(
                "ServicesDependedOn",
                SimValue::strings(self.depends_on.iter().cloned()),
            )
            .with("ServiceHandle", SimValue::Null)
            .with("Status", SimValue::str(status.as_str()))
            .with("ServiceType", SimValue::str("Win32OwnProcess"))
            .with("Site", SimValue::Null)
            .with("Container", SimValue::Null)
    }
}

/// The services of an Exchange 2010 Mailbox/Client Access/Hub server that matter here.
pub fn default_services() -> Vec<Service> {
    use StartType::{Automatic, Manual};
    use Steady::{Running, Stopped};
    let mut is = Service::new(
        "MSExchangeIS",
        "Microsoft Exchange Information Store",
        Running,
        Automatic,
    );
    is.depends_on = vec!["MSExchangeADTopology".into(), "RPCSS".into()];
    is.timing = ServiceTiming {
        stop_secs: 15.0,
        start_secs: 30.0,
    };
    let mut imap = Service::new(
        "MSExchangeIMAP4",
        "Microsoft Exchange IMAP4",
        Running,
        Manual,
    );
    imap.depends_on = vec!["MSExchangeADTopology".into()];
    imap.timing = ServiceTiming {
        stop_secs: 2.0,
        start_secs: 3.0,
    };
    let mut assistants = Service::new(
        "MSExchangeMailboxAssistants",
        "Microsoft Exchange Mailbox Assistants",
        Running,
        Automatic,
    );
    assistants.depends_on = vec!["MSExchangeIS".into(), "MSExchangeADTopology".into()];
    let mut submission = Service::new(
        "MSExchangeMailSubmission",
        "Microsoft Exchange Mail Submission",
        Running,
        Automatic,
    );
    submission.depends_on = vec!["MSExchangeIS".into(), "MSExchangeADTopology".into()];
    vec![
        Service::new("RPCSS", "Remote Procedure Call (RPC)", Running, Automatic),
        Service::new(
            "MSExchangeADTopology",
            "Microsoft Exchange Active Directory Topology",
            Running,
            Automatic,
        ),
        is,
        assistants,
        submission,
        imap,
        Service::new("MSExchangePOP3", "Microsoft Exchange POP3", Stopped, Manual),
        Service::new(
            "MSExchangeTransport",
            "Microsoft Exchange Transport",
            Running,
            Automatic,
        ),
        Service::new(
            "W3SVC",
            "World Wide Web Publishing Service",
            Running,
            Automatic,
        ),
        Service::new(
            "WinRM",
            "Windows Remote Management (WS-Management)",
            Running,
            Automatic,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_phases_follow_the_timing() {
        let mut s = default_services()
            .into_iter()
            .find(|s| s.name == "MSExchangeIS")
            .unwrap();
        let t0 = SimTime(1_000_000);
        let done = s.begin_restart(t0);
        assert_eq!(done, t0.plus(Duration::from_secs(45)));
        assert_eq!(s.status(t0), Status::StopPending);
        assert_eq!(
            s.status(t0.plus(Duration::from_secs(14))),
            Status::StopPending
        );
        assert_eq!(
            s.status(t0.plus(Duration::from_secs(16))),
            Status::StartPending
        );
        assert_eq!(s.status(t0.plus(Duration::from_secs(45))), Status::Running);
        assert!(
            !s.is_serving(t0.plus(Duration::from_secs(45))),
            "not settled yet"
        );
    }
}
