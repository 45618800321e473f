//! A PowerShell 2.0 subset for the simulated host: [`parse`] turns script text into an
//! [`ast::Script`] or a [`ParseError`] with PowerShell's message and position. Syntax
//! outside the subset is refused with [`ParseErrorKind::Unsupported`], never guessed at.
//! (The interpreter follows in this module tree.)

pub mod ast;
pub mod convert;
pub mod error;
pub mod parser;
pub mod value;

pub use ast::Script;
pub use error::{ErrorCategory, ErrorPosition, ErrorRecord, ParseError, ParseErrorKind};
pub use parser::parse;
pub use value::{Hashtable, PsObject, Value};
