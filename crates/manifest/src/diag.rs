//! Diagnostics: one [`Diagnostic`] per problem found in the manifests, and the
//! [`Diagnostics`] collector every loader and reader pushes into.
//!
//! Nothing here stops at the first problem: readers report and carry on, so an
//! administrator sees every mistake of a pull request in one run. Codes are
//! stable strings (`manifest::unknown-key`) that tests, docs and CI filters can
//! rely on; messages may be reworded.

use serde::Serialize;

use crate::source::Span;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Severity {
    /// The manifest is refused.
    Error,
    /// The manifest is accepted, but something is probably not what was meant.
    /// `--strict` turns these into errors ([`Diagnostics::promote_warnings`]).
    Warning,
}

impl Severity {
    #[must_use]
    /// The word renderers print (`error`, `warning`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem, with where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable identifier, `area::kebab-case` (e.g. `manifest::unknown-key`).
    pub code: &'static str,
    /// One sentence, lower-case start, no trailing full stop.
    pub message: String,
    /// The primary location, if the problem has one (an unreadable file has none).
    pub span: Option<Span>,
    /// Short text printed under the primary location.
    pub label: Option<String>,
    /// What to do about it; printed as `= hint: ...`.
    pub hint: Option<String>,
    /// Other locations that explain the problem (e.g. the first definition of a
    /// duplicated key).
    pub related: Vec<(Span, String)>,
    /// Whether a renderer may quote the source lines of the spans. False for
    /// problems about secrets, so that CI logs never show the value.
    pub show_source: bool,
}

impl Diagnostic {
    #[must_use]
    /// A diagnostic without location, label or hint.
    pub fn new(severity: Severity, code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity,
            code,
            message: message.into(),
            span: None,
            label: None,
            hint: None,
            related: Vec::new(),
            show_source: true,
        }
    }

    #[must_use]
    /// An error.
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Error, code, message)
    }

    #[must_use]
    /// A warning.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Warning, code, message)
    }

    #[must_use]
    /// Sets the primary location.
    pub fn with_span(mut self, span: Span) -> Diagnostic {
        self.span = Some(span);
        self
    }

    #[must_use]
    /// Sets the text under the primary location.
    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    #[must_use]
    /// Sets what to do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the hint only if there is one; convenient with `did_you_mean`.
    #[must_use]
    pub fn with_hint_opt(mut self, hint: Option<String>) -> Diagnostic {
        if hint.is_some() {
            self.hint = hint;
        }
        self
    }

    #[must_use]
    /// Adds another location that explains the problem.
    pub fn with_related(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.related.push((span, label.into()));
        self
    }

    /// Forbids quoting source lines when rendering (see [`Diagnostic::show_source`]).
    #[must_use]
    pub fn without_source(mut self) -> Diagnostic {
        self.show_source = false;
        self
    }

    #[must_use]
    /// Whether it is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The collector of every problem found in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    #[must_use]
    /// No diagnostics.
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    /// Adds one.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    /// Adds all of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    #[must_use]
    /// Whether any is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    #[must_use]
    /// How many are errors.
    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    #[must_use]
    /// How many are warnings.
    pub fn warning_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }

    #[must_use]
    /// How many there are.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    #[must_use]
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Each, in the order reported.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    #[must_use]
    /// All, as a slice.
    pub fn as_slice(&self) -> &[Diagnostic] {
        &self.items
    }

    #[must_use]
    /// All, by value.
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }

    /// Sorts by file (load order), then position, then severity; diagnostics
    /// without a location come first. The sort is stable, so problems at the
    /// same place keep the order they were found in.
    pub fn sort(&mut self) {
        self.items.sort_by_key(|d| {
            (
                d.span.map(|s| (s.file, s.start.offset, s.end.offset)),
                d.severity,
            )
        });
    }

    /// `--strict`: every warning becomes an error (codes unchanged).
    pub fn promote_warnings(&mut self) {
        for d in &mut self.items {
            d.severity = Severity::Error;
        }
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl FromIterator<Diagnostic> for Diagnostics {
    fn from_iter<T: IntoIterator<Item = Diagnostic>>(iter: T) -> Self {
        Diagnostics {
            items: iter.into_iter().collect(),
        }
    }
}

impl Extend<Diagnostic> for Diagnostics {
    fn extend<T: IntoIterator<Item = Diagnostic>>(&mut self, iter: T) {
        self.items.extend(iter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{FileId, Pos};

    fn at(file: u32, line: u32, offset: usize) -> Span {
        let p = Pos {
            line,
            column: 1,
            offset,
        };
        Span::point(FileId(file), p)
    }

    #[test]
    fn sort_orders_by_file_then_position_and_keeps_unlocated_first() {
        let mut d = Diagnostics::new();
        d.push(Diagnostic::error("t::a", "b2").with_span(at(1, 2, 10)));
        d.push(Diagnostic::warning("t::a", "a9").with_span(at(0, 9, 90)));
        d.push(Diagnostic::error("t::a", "a1").with_span(at(0, 1, 0)));
        d.push(Diagnostic::error("t::io", "no file"));
        d.sort();
        let order: Vec<_> = d.iter().map(|x| x.message.as_str()).collect();
        assert_eq!(order, ["no file", "a1", "a9", "b2"]);
    }

    #[test]
    fn strict_promotes_warnings() {
        let mut d = Diagnostics::new();
        d.push(Diagnostic::warning("t::w", "w"));
        assert!(!d.has_errors());
        assert_eq!(d.warning_count(), 1);
        d.promote_warnings();
        assert!(d.has_errors());
        assert_eq!(d.error_count(), 1);
        assert_eq!(d.warning_count(), 0);
    }
}
