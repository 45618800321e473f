//! The Application event log of a host, as Get-EventLog reads it.
//!
//! The store writes event 9646 (source MSExchangeIS, category General, Error) when a
//! user exceeds a per-user object limit; its text is the one documented for the event:
//! `Mapi session "<legacyExchangeDN>" exceeded the maximum of 16 objects of type
//! "session".` (eventid.net and KB 842022 show the same form for 32 sessions).
//!
//! InstanceId is kept equal to EventID (the severity bits real message files may add
//! to InstanceId are not modelled). The log keeps the newest [`MAX_ENTRIES`] entries.

use serde::{Deserialize, Serialize};

use super::clock::SimTime;
use super::value::{SimObject, SimValue};

/// How many entries a log keeps (oldest dropped first), so a long test cannot grow it
/// without bound.
pub const MAX_ENTRIES: usize = 10_000;

/// `EventLogEntryType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    /// Error.
    Error,
    /// Warning.
    Warning,
    /// Information.
    Information,
}

impl Level {
    /// The member name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "Error",
            Level::Warning => "Warning",
            Level::Information => "Information",
        }
    }
}

/// One entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEntry {
    /// Index (increasing).
    pub index: u64,
    /// EventID (and InstanceId).
    pub event_id: u32,
    /// Source.
    pub source: String,
    /// Category text.
    pub category: String,
    /// Entry type.
    pub level: Level,
    /// TimeGenerated.
    pub time: SimTime,
    /// Message.
    pub message: String,
}

impl EventEntry {
    /// The Get-EventLog object.
    pub fn to_object(&self, machine: &str) -> SimObject {
        SimObject::new("System.Diagnostics.EventLogEntry")
            .with("EventID", SimValue::Int(self.event_id as i32))
            .with("MachineName", SimValue::str(machine))
            .with("Data", SimValue::List(Vec::new()))
            .with("Index", SimValue::Int(self.index as i32))
            .with("Category", SimValue::str(&self.category))
            .with("CategoryNumber", SimValue::Int(1))
            .with("EntryType", SimValue::str(self.level.as_str()))
            .with("Message", SimValue::str(&self.message))
            .with("Source", SimValue::str(&self.source))
            .with("ReplacementStrings", SimValue::List(Vec::new()))
            .with("InstanceId", SimValue::Long(i64::from(self.event_id)))
            .with("TimeGenerated", SimValue::DateTime(self.time))
            .with("TimeWritten", SimValue::DateTime(self.time))
            .with("UserName", SimValue::Null)
    }
}

/// One host's Application log.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EventLog {
    /// Entries, oldest first.
    pub entries: Vec<EventEntry>,
}

impl EventLog {
    /// Appends an entry.
    pub fn write(
        &mut self,
        event_id: u32,
        source: &str,
        level: Level,
        time: SimTime,
        message: String,
    ) {
        let index = self.entries.last().map_or(1, |e| e.index + 1);
        self.entries.push(EventEntry {
            index,
            event_id,
            source: source.to_string(),
            category: "General".to_string(),
            level,
            time,
            message,
        });
        if self.entries.len() > MAX_ENTRIES {
            let excess = self.entries.len() - MAX_ENTRIES;
            self.entries.drain(..excess);
        }
    }
}

/// The 9646 message for a user's legacyExchangeDN and limit.
pub fn session_limit_message(legacy_dn: &str, limit: u32) -> String {
    format!(
        "Mapi session \"{legacy_dn}\" exceeded the maximum of {limit} objects of type \"session\"."
    )
}
