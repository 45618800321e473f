//! Exchange 2010 knowledge: resource kinds, their parameters per service pack, and the
//! protocol their observe scripts use to report values.
//!
//! [`host`] reads the host itself for `exctl doctor` (server, service state, event log).
//! [`kind::Kind`] is the unit of knowledge (which also exports a host's state, with the
//! shared pieces in [`export`]); [`kinds`] registers every kind (each with its
//! schema, help and cmdlets; the pieces of JSON Schema in [`schema`]);
//! [`value`] holds the typed values and their comparison semantics; [`record`] the
//! observation protocol; [`services`] the services a change may restart, as data, with
//! the PowerShell that restarts them and reads their state; [`version`] the Exchange
//! releases.

pub mod export;
pub mod host;
pub mod kind;
pub mod kinds;
pub mod record;
pub mod schema;
pub mod services;
pub mod value;
pub mod version;

pub use kind::{
    Action, AttrChange, Change, Declared, DesiredAttr, DiffError, Ensure, Kind, ObserveContext,
    Order, ParseContext, Payload, PayloadData, Resource, Scope, Service,
};
pub use record::Observations;
pub use value::{ParamSpec, ParamType, RawValue, Value};
pub use version::Version;

/// The Exchange cmdlets of the scripts beyond the kinds' own ([`Kind::cmdlets`]): the
/// server's version ([`host`]: `Get-ExchangeServer`, read by observe, export and doctor)
/// and the databases ([`services`]: `Get-MailboxDatabase -Status`,
/// `Get-MailboxDatabaseCopyStatus`, read by the Information Store's restart, recovery and
/// health). Capacity and doctor read through the kinds, whose cmdlets are theirs; a
/// protocol service's settings are read with its kind's Get- cmdlet. `access: psrp`
/// relays the union of these and every kind's (`exctl_engine::relay`); a cmdlet a new
/// script of `host` or `services` calls goes here (a test checks).
pub const HOST_CMDLETS: &[&str] = &[
    "Get-ExchangeServer",
    "Get-MailboxDatabase",
    "Get-MailboxDatabaseCopyStatus",
];
