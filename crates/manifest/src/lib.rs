//! Manifest loading for exctl: YAML files to trees that know where every value
//! came from, typed reading that reports every problem at once, and the
//! diagnostics (with rendering) every validation rule uses.
//!
//! The crate gives no meaning to documents (inventory, sites, resource kinds):
//! it exposes the trees, and the resource kinds read their parts with
//! [`MapReader`]/[`ValueReader`]. A typical run:
//!
//! ```no_run
//! use std::path::PathBuf;
//! use exctl_manifest::{load_paths, render};
//!
//! let (sources, docs, mut diags) = load_paths(&[PathBuf::from("manifests")]);
//! for doc in &docs {
//!     // ... each resource kind reads its part of doc.root, pushing into diags
//! }
//! diags.sort();
//! eprint!("{}", render(&sources, &diags, false));
//! ```
//!
//! Modules:
//! - [`source`]: files, positions and spans;
//! - [`node`]: the YAML tree;
//! - [`parse`]: YAML text to trees, with the refusals and bounds;
//! - [`load`]: files and directories to a source map and documents;
//! - [`merge`]: overlaying trees (baselines, sites, hosts) with the origin of every value;
//! - [`diag`]: diagnostics and their collector;
//! - [`render`]: human, one-line and JSON output of diagnostics;
//! - [`suggest`]: "did you mean" and case-insensitive names;
//! - [`reader`] and [`value`]: typed reading;
//! - [`units`]: Exchange's time spans, byte quantities, Unlimited and `$null`;
//! - [`secret`]: credential references and the secrets-in-clear check;
//! - [`yaml`]: writing YAML scalars and keys that every reader reads back as written;
//! - `fancy` (feature `miette`): diagnostics as `miette::Diagnostic`s.

pub mod diag;
#[cfg(feature = "miette")]
pub mod fancy;
pub mod load;
pub mod merge;
pub mod node;
pub mod parse;
pub mod reader;
pub mod render;
pub mod secret;
pub mod source;
pub mod suggest;
pub mod units;
pub mod value;
pub mod yaml;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use load::{collect_files, load_paths, load_paths_with};
pub use merge::{Merged, Origin, Overlay};
pub use node::{Key, Node, NodeKind, Style};
pub use parse::{Document, Limits, parse_file, parse_str};
pub use reader::MapReader;
pub use render::{render, render_json, render_one, render_short};
pub use secret::{CredentialRef, CredentialRefError, check_secrets, is_secret_key};
pub use source::{FileId, Pos, SourceFile, SourceMap, Span};
pub use suggest::{did_you_mean, did_you_mean_hint, edit_distance, find_ignore_case};
pub use units::{
    ByteSizeError, Nullable, TimeSpanError, Unlimited, format_byte_quantity, format_timespan,
    parse_byte_quantity, parse_timespan,
};
pub use value::{ValueReader, describe_range};
