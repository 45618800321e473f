//! Exchange 2010 knowledge: resource kinds, their parameters per service pack, and the
//! protocol their observe scripts use to report values.
//!
//! [`host`] reads the host itself for `exctl doctor` (server, service state, event log).
//! [`kind::Kind`] is the unit of knowledge (which also exports a host's state, with the
//! shared pieces in [`export`]); [`kinds`] registers every kind;
//! [`value`] holds the typed values and their comparison semantics; [`record`] the
//! observation protocol; [`services`] the services a change may restart, as data, with
//! the PowerShell that restarts them and reads their state; [`version`] the Exchange
//! releases.

pub mod export;
pub mod host;
pub mod kind;
pub mod kinds;
pub mod record;
pub mod services;
pub mod value;
pub mod version;

pub use kind::{
    Action, AttrChange, Change, DesiredAttr, DiffError, Ensure, Kind, ObserveContext, Order,
    ParseContext, Resource, Scope, Service,
};
pub use record::Observations;
pub use value::{ParamSpec, ParamType, RawValue, Value};
pub use version::Version;
