//! miette integration (feature `miette`): each [`Diagnostic`] as a
//! [`miette::Diagnostic`], for a CLI that reports everything through miette.
//!
//! Our own [`crate::render`] needs no extra dependencies and is what the tests
//! pin down; this adapter only maps fields. Spans are byte offsets into the
//! [`SourceMap`] text, which is what miette expects. Related locations in
//! other files cannot share one miette source and are given in the help text.

use std::fmt;

use miette::{LabeledSpan, NamedSource, SourceSpan};

use crate::diag::{Diagnostic, Diagnostics, Severity};
use crate::source::{SourceMap, Span};

/// One diagnostic with the source text miette needs to draw it.
#[derive(Debug)]
pub struct MietteReport {
    diagnostic: Diagnostic,
    source: Option<NamedSource<String>>,
    /// Help: the hint, plus locations miette cannot draw.
    help: Option<String>,
}

impl MietteReport {
    #[must_use]
    pub fn new(sources: &SourceMap, diagnostic: &Diagnostic) -> MietteReport {
        let primary = diagnostic.span;
        let source = primary
            .filter(|_| diagnostic.show_source)
            .and_then(|s| sources.get(s.file))
            .map(|f| NamedSource::new(f.path.display().to_string(), f.text.clone()));
        let mut help: Vec<String> = diagnostic.hint.iter().cloned().collect();
        let locate = |s: &Span| {
            format!(
                "{}:{}:{}",
                sources.path(s.file).display(),
                s.start.line,
                s.start.column
            )
        };
        if source.is_none()
            && let Some(s) = &primary
        {
            help.insert(0, format!("at {}", locate(s)));
        }
        for (s, label) in &diagnostic.related {
            if source.is_none() || primary.is_some_and(|p| p.file != s.file) {
                help.push(format!("{label}: {}", locate(s)));
            }
        }
        MietteReport {
            diagnostic: diagnostic.clone(),
            source,
            help: (!help.is_empty()).then(|| help.join("\n")),
        }
    }
}

/// Every diagnostic as a miette report, in order.
#[must_use]
pub fn to_miette(sources: &SourceMap, diags: &Diagnostics) -> Vec<MietteReport> {
    diags
        .iter()
        .map(|d| MietteReport::new(sources, d))
        .collect()
}

fn source_span(s: &Span) -> SourceSpan {
    let r = s.byte_range();
    SourceSpan::new(r.start.into(), r.len())
}

impl fmt::Display for MietteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for MietteReport {}

impl miette::Diagnostic for MietteReport {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diagnostic.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        let primary = self.diagnostic.span?;
        let mut labels = vec![LabeledSpan::new_primary_with_span(
            self.diagnostic.label.clone(),
            source_span(&primary),
        )];
        for (s, label) in &self.diagnostic.related {
            if s.file == primary.file {
                labels.push(LabeledSpan::new_with_span(
                    Some(label.clone()),
                    source_span(s),
                ));
            }
        }
        Some(Box::new(labels.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_str;
    use miette::Diagnostic as _;

    #[test]
    fn maps_fields_and_spans() {
        let (sources, _, diags) = parse_str("d.yaml", "a: 1\na: 3\n");
        let reports = to_miette(&sources, &diags);
        let r = &reports[0];
        assert_eq!(r.to_string(), "duplicate key 'a' in this map");
        assert_eq!(r.code().unwrap().to_string(), "manifest::duplicate-key");
        let labels: Vec<_> = r.labels().unwrap().collect();
        assert_eq!(labels.len(), 2);
        assert_eq!((labels[0].offset(), labels[0].len()), (5, 1));
        assert!(labels[0].primary());
        assert_eq!(labels[1].label(), Some("first defined here"));
        assert!(r.source_code().is_some());
    }

    #[test]
    fn secrets_get_no_source() {
        let (sources, docs, mut diags) = parse_str("s.yaml", "password: x\n");
        crate::secret::check_secrets(&docs[0].root, &mut diags);
        let r = MietteReport::new(&sources, &diags.as_slice()[0]);
        assert!(r.source_code().is_none() && r.labels().is_none());
        assert!(
            r.help()
                .unwrap()
                .to_string()
                .starts_with("at s.yaml:1:11\n")
        );
    }
}
