//! Exchange 2010 knowledge: resource kinds, their parameters per service pack, and the
//! protocol their observe scripts use to report values.
//!
//! [`kind::Kind`] is the unit of knowledge (which also exports a host's state, with the
//! shared pieces in [`export`]); [`kinds`] registers every kind;
//! [`value`] holds the typed values and their comparison semantics; [`record`] the
//! observation protocol; [`version`] the Exchange releases.

pub mod export;
pub mod kind;
pub mod kinds;
pub mod record;
pub mod value;
pub mod version;

pub use kind::{
    Action, AttrChange, Change, Declared, DesiredAttr, DiffError, Ensure, Kind, ObserveContext,
    Order, ParseContext, Payload, PayloadData, Resource, Scope, Service,
};
pub use record::Observations;
pub use value::{ParamSpec, ParamType, RawValue, Value};
pub use version::Version;
