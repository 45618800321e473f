//! Renderings of a [`Plan`]: text for terminals, markdown for pull-request comments, and
//! JSON for machines. None of them computes anything; they only present the plan.
//!
//! Sensitive attribute values are shown as `(sensitive)` in all three.

use std::fmt::Write as _;

use exctl_exchange::kind::{Action, AttrChange, Service};
use exctl_exchange::value::Value;

use crate::plan::{ChangeStep, HostPlan, Plan, RestartStep, Step};

/// Options of the text renderer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// ANSI colours (only on a terminal, and never when NO_COLOR is set: the caller decides).
    pub color: bool,
    /// Why the steps run in their order, once at the end (`--explain`): the order is
    /// always the same, so repeating it on every plan is noise for a reviewer.
    pub explain: bool,
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
}

fn symbol(a: Action) -> &'static str {
    match a {
        Action::Create => "+",
        Action::Update => "~",
        Action::Delete => "-",
    }
}

fn show(v: &Option<Value>, sensitive: bool) -> String {
    match (v, sensitive) {
        (_, true) => "(sensitive)".to_string(),
        (Some(v), false) => v.to_string(),
        (None, false) => "(none)".to_string(),
    }
}

/// The summary line: `Plan: 2 to create, 5 to update, 0 to delete, 1 restart.`
pub fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    let mut line = format!(
        "Plan: {} to create, {} to update, {} to delete, {} restart{}.",
        s.create,
        s.update,
        s.delete,
        s.restart,
        if s.restart == 1 { "" } else { "s" }
    );
    if s.errors > 0 {
        let _ = write!(
            line,
            " {} host{} could not be planned.",
            s.errors,
            if s.errors == 1 { "" } else { "s" }
        );
    }
    line
}

fn multiline_diff(before: &str, after: &str, p: &Paint, out: &mut String, indent: &str) {
    let diff = similar::TextDiff::from_lines(before, after);
    for change in diff.iter_all_changes() {
        let line = change.value().trim_end_matches('\n');
        match change.tag() {
            similar::ChangeTag::Delete => {
                let _ = writeln!(out, "{indent}{}", p.red(&format!("- {line}")));
            }
            similar::ChangeTag::Insert => {
                let _ = writeln!(out, "{indent}{}", p.green(&format!("+ {line}")));
            }
            similar::ChangeTag::Equal => {
                let _ = writeln!(out, "{indent}  {line}");
            }
        }
    }
}

fn text_attr(a: &AttrChange, p: &Paint, out: &mut String) {
    if let (Some(Value::Str(b)), Some(Value::Str(n)), false) = (&a.before, &a.after, a.sensitive)
        && (b.contains('\n') || n.contains('\n'))
    {
        let _ = writeln!(out, "      ~ {}:", a.name);
        multiline_diff(b, n, p, out, "          ");
        return;
    }
    let before = show(&a.before, a.sensitive);
    let after = show(&a.after, a.sensitive);
    match (&a.before, &a.after) {
        (None, Some(_)) => {
            let _ = writeln!(out, "      {} {} = {}", p.green("+"), a.name, after);
        }
        (Some(_), None) => {
            let _ = writeln!(out, "      {} {} = {}", p.red("-"), a.name, before);
        }
        _ => {
            let _ = writeln!(
                out,
                "      {} {}: {} → {}",
                p.yellow("~"),
                a.name,
                before,
                after
            );
        }
    }
}

fn text_change(c: &ChangeStep, p: &Paint, out: &mut String) {
    let action = c.actions.first().copied().unwrap_or(Action::Update);
    let sym = match action {
        Action::Create => p.green("+"),
        Action::Update => p.yellow("~"),
        Action::Delete => p.red("-"),
    };
    let _ = writeln!(out, "  {sym} {} {}", p.bold(c.title), c.id);
    for a in &c.attributes {
        text_attr(a, p, out);
    }
    if c.unchanged_attributes > 0 {
        let n = c.unchanged_attributes;
        let _ = writeln!(
            out,
            "      {}",
            p.dim(&format!(
                "({n} unchanged attribute{} hidden)",
                if n == 1 { "" } else { "s" }
            ))
        );
    }
    if let Some(r) = c.requires_restart {
        let _ = writeln!(
            out,
            "      {}",
            p.dim(&format!("requires a restart of {r}"))
        );
    }
    let at = if c.attributes_declared_at.is_empty() {
        format!("declared at {}", c.declared_at)
    } else {
        // One place per file: its first line, and the attributes it sets.
        let mut files: Vec<(&str, &str, Vec<&str>)> = Vec::new();
        for a in &c.attributes {
            let at = c.origin_of(&a.name);
            let file = at.rsplit_once(':').map_or(at, |(f, _)| f);
            match files.iter_mut().find(|(f, _, _)| *f == file) {
                Some((_, _, names)) => names.push(&a.name),
                None => files.push((file, at, vec![&a.name])),
            }
        }
        let each: Vec<String> = files
            .iter()
            .map(|(_, at, names)| format!("{at} ({})", names.join(", ")))
            .collect();
        format!("declared at {}", each.join(", "))
    };
    let _ = writeln!(out, "      {}", p.dim(&at));
}

fn text_restart(r: &RestartStep, p: &Paint, out: &mut String) {
    let head = format!("  ↻ {} {}", r.verb(), r.service);
    let head = if r.service == Service::InformationStore {
        p.red(&p.bold(&head))
    } else {
        p.yellow(&head)
    };
    let _ = writeln!(out, "{head}");
    if let Some(rec) = &r.recover {
        let _ = writeln!(
            out,
            "      {}",
            p.red(&format!("not healthy: {}", rec.reason))
        );
    }
    let _ = writeln!(out, "      {}", r.consequence);
    if !r.required_by.is_empty() {
        let _ = writeln!(
            out,
            "      {}",
            p.dim(&format!("required by: {}", r.required_by.join(", ")))
        );
    }
    if let Some(why) = &r.pending {
        let _ = writeln!(
            out,
            "      {}",
            p.yellow(&format!("pending from before: {why}"))
        );
    }
    for w in &r.warnings {
        let _ = writeln!(out, "      {} {w}", p.yellow("warning:"));
    }
}

fn host_title(h: &HostPlan) -> String {
    match &h.site {
        Some(s) => format!("{} (site {s})", h.host),
        None => h.host.clone(),
    }
}

fn text_host(h: &HostPlan, p: &Paint, out: &mut String) {
    let _ = writeln!(out, "{}", p.bold(&format!("Host {}", host_title(h))));
    for e in &h.errors {
        let _ = writeln!(out, "  {} {e}", p.red("error:"));
    }
    for n in &h.notes {
        let _ = writeln!(out, "  {} {n}", p.dim("note:"));
    }
    if h.steps.is_empty() && h.errors.is_empty() {
        let _ = writeln!(
            out,
            "  no changes ({} resource{} in sync)",
            h.in_sync,
            if h.in_sync == 1 { "" } else { "s" }
        );
    }
    for s in &h.steps {
        match s {
            Step::Change(c) => text_change(c, p, out),
            Step::Restart(r) => text_restart(r, p, out),
        }
    }
    out.push('\n');
}

/// Why the steps run in this order: one `(kind title, reason)` per kind that changes, in
/// the order the steps run, over all hosts of the plan.
pub fn order_legend(plan: &Plan) -> Vec<(&'static str, &'static str)> {
    let mut reasons: Vec<(&'static str, &'static str)> = Vec::new();
    for h in &plan.hosts {
        for s in &h.steps {
            if let Step::Change(c) = s
                && !c.reason.is_empty()
                && !reasons.iter().any(|(t, r)| *t == c.title && *r == c.reason)
            {
                reasons.push((c.title, c.reason));
            }
        }
    }
    reasons
}

/// The legend of [`order_legend`] for a terminal (empty when nothing changes).
pub fn text_legend(plan: &Plan, opts: TextOptions) -> String {
    let p = Paint(opts.color);
    let legend = order_legend(plan);
    let mut out = String::new();
    if legend.is_empty() {
        return out;
    }
    let _ = writeln!(out, "{}", p.bold("Order of the steps:"));
    for (title, reason) in legend {
        let _ = writeln!(out, "  {}", p.dim(&format!("{title}: {reason}")));
    }
    out.push('\n');
    out
}

/// The legend of [`order_legend`] for a comment: one collapsed section (empty when
/// nothing changes).
pub fn markdown_legend(plan: &Plan) -> String {
    let legend = order_legend(plan);
    let mut out = String::new();
    if legend.is_empty() {
        return out;
    }
    let _ = writeln!(out, "<details><summary>Order of the steps</summary>\n");
    for (title, reason) in legend {
        let _ = writeln!(out, "- {title}: {}", md_escape(reason));
    }
    let _ = writeln!(out, "\n</details>\n");
    out
}

/// The plan for a terminal.
pub fn text(plan: &Plan, opts: TextOptions) -> String {
    let p = Paint(opts.color);
    let mut out = String::new();
    for h in &plan.hosts {
        text_host(h, &p, &mut out);
    }
    if opts.explain {
        out.push_str(&text_legend(plan, opts));
    }
    let _ = writeln!(out, "{}", p.bold(&summary_line(plan)));
    out
}

/// Escapes text for a markdown table cell or a summary line.
pub fn md_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => o.push_str("\\|"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '`' => o.push('\''),
            '\n' => o.push('⏎'),
            '\r' => {}
            c => o.push(c),
        }
    }
    o
}

/// The plan as a pull-request comment: a summary line, a warning block when anything is
/// deleted or restarted, then one collapsible section per host.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### exctl plan\n\n**{}**\n", summary_line(plan));
    let restarts: Vec<(String, &RestartStep)> = plan
        .hosts
        .iter()
        .flat_map(|h| {
            h.steps.iter().filter_map(move |s| match s {
                Step::Restart(r) => Some((h.host.clone(), r)),
                _ => None,
            })
        })
        .collect();
    if plan.summary.delete > 0 || !restarts.is_empty() {
        let _ = writeln!(out, "> [!WARNING]");
        if plan.summary.delete > 0 {
            let _ = writeln!(
                out,
                "> {} resource(s) will be **deleted**.",
                plan.summary.delete
            );
        }
        for (host, r) in &restarts {
            match &r.recover {
                Some(rec) => {
                    let _ = writeln!(
                        out,
                        "> **{}** on **{}** is not healthy ({}): apply brings it back ({}).",
                        r.service,
                        md_escape(host),
                        md_escape(&rec.reason),
                        r.verb()
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "> **{}** restarts on **{}**: {}.",
                        r.service,
                        md_escape(host),
                        r.consequence
                    );
                }
            }
            for w in &r.warnings {
                let _ = writeln!(out, "> {}.", md_escape(w));
            }
        }
        out.push('\n');
    }
    out.push_str(&markdown_hosts(plan));
    out.push_str(&markdown_legend(plan));
    out
}

/// The host sections of [`markdown`] alone (the per-site sections of a repository's
/// comment).
pub fn markdown_hosts(plan: &Plan) -> String {
    let mut out = String::new();
    for h in &plan.hosts {
        md_host(h, &mut out);
    }
    out
}

/// One host as a collapsible section (open when it has steps or errors).
fn md_host(h: &HostPlan, out: &mut String) {
    let changes = h.steps.len();
    let status = if !h.errors.is_empty() {
        "❌ error".to_string()
    } else if changes == 0 {
        "no changes".to_string()
    } else {
        format!("{changes} step{}", if changes == 1 { "" } else { "s" })
    };
    let open = if changes > 0 || !h.errors.is_empty() {
        " open"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "<details{open}><summary><b>{}</b>: {status}</summary>\n",
        md_escape(&host_title(h))
    );
    for e in &h.errors {
        let _ = writeln!(out, "- ❌ {}", md_escape(e));
    }
    for n in &h.notes {
        let _ = writeln!(out, "- ℹ️ {}", md_escape(n));
    }
    if !h.steps.is_empty() {
        let _ = writeln!(
            out,
            "| | resource | attribute | before | after |\n|---|---|---|---|---|"
        );
        let mut origins: Vec<(String, Vec<String>)> = Vec::new();
        for s in &h.steps {
            if let Step::Change(c) = s {
                let mut add =
                    |at: &str, what: String| match origins.iter_mut().find(|(o, _)| o == at) {
                        Some((_, v)) => v.push(what),
                        None => origins.push((at.to_string(), vec![what])),
                    };
                if c.attributes_declared_at.is_empty() {
                    add(&c.declared_at, format!("{} {}", c.title, c.id));
                } else {
                    for a in &c.attributes {
                        add(
                            c.origin_of(&a.name),
                            format!("{} {} ({})", c.title, c.id, a.name),
                        );
                    }
                }
            }
        }
        for s in &h.steps {
            match s {
                Step::Change(c) => {
                    let sym = symbol(c.actions.first().copied().unwrap_or(Action::Update));
                    let res = format!("{} `{}`", c.title, md_escape(&c.id).replace('\'', ""));
                    if c.attributes.is_empty() {
                        let _ = writeln!(out, "| {sym} | {res} | | | |");
                    }
                    for a in &c.attributes {
                        let _ = writeln!(
                            out,
                            "| {sym} | {res} | {} | {} | {} |",
                            md_escape(&a.name),
                            md_escape(&show(&a.before, a.sensitive)),
                            md_escape(&show(&a.after, a.sensitive))
                        );
                    }
                }
                Step::Restart(r) => {
                    let mut why = match (&r.pending, r.required_by.is_empty()) {
                        (Some(p), true) => format!("pending from before: {p}"),
                        (Some(p), false) => format!(
                            "required by {}; pending from before: {p}",
                            r.required_by.join(", ")
                        ),
                        (None, true) => String::new(),
                        (None, false) => format!("required by {}", r.required_by.join(", ")),
                    };
                    if let Some(rec) = &r.recover {
                        why = if why.is_empty() {
                            format!("not healthy: {}", rec.reason)
                        } else {
                            format!("not healthy: {}; {why}", rec.reason)
                        };
                    }
                    let _ = writeln!(
                        out,
                        "| ↻ | {} **{}** | | | {} |",
                        r.verb(),
                        r.service,
                        md_escape(&why)
                    );
                }
            }
        }
        out.push('\n');
        // Where each shown value is declared: one line per file:line.
        if !origins.is_empty() {
            let _ = writeln!(out, "Declared at:");
            const SHOWN: usize = 20;
            for (at, what) in origins.iter().take(SHOWN) {
                let listed: Vec<String> = what.iter().take(5).map(|w| md_escape(w)).collect();
                let more = what.len().saturating_sub(5);
                let _ = writeln!(
                    out,
                    "- `{}`: {}{}",
                    at.replace('`', "'"),
                    listed.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                );
            }
            if origins.len() > SHOWN {
                let _ = writeln!(out, "- and {} more places", origins.len() - SHOWN);
            }
            out.push('\n');
        }
    }
    let _ = writeln!(out, "</details>\n");
}

/// The plan as JSON (see [`crate::plan::FORMAT_VERSION`]); sensitive values are `null`
/// with their name listed in `sensitive`.
pub fn json(plan: &Plan) -> serde_json::Value {
    let mut v = serde_json::to_value(plan).unwrap_or(serde_json::Value::Null);
    // Mask sensitive values: the serialized AttrChange carries before/after.
    if let Some(hosts) = v.get_mut("hosts").and_then(|h| h.as_array_mut()) {
        for h in hosts {
            let Some(steps) = h.get_mut("steps").and_then(|s| s.as_array_mut()) else {
                continue;
            };
            for s in steps {
                let Some(attrs) = s.get_mut("attributes").and_then(|a| a.as_array_mut()) else {
                    continue;
                };
                for a in attrs {
                    if a.get("sensitive").and_then(|x| x.as_bool()) == Some(true) {
                        a["before"] = serde_json::Value::String("(sensitive)".into());
                        a["after"] = serde_json::Value::String("(sensitive)".into());
                    }
                }
            }
        }
    }
    v
}
