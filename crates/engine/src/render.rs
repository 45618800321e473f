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

/// A kind with more changes than this on one host is summarized in text and markdown
/// (a count per action and per new value: per policy, for associations) instead of
/// listed: thousands of associations would bury everything else. The JSON plan lists
/// every change, and markdown lists them in a collapsed section.
pub const LIST_LIMIT: usize = 50;

/// What the renderers show, in step order: a step, or a run of more than
/// [`LIST_LIMIT`] changes of one kind.
enum Block<'a> {
    Step(&'a Step),
    Many(&'a [Step]),
}

/// The steps of a host as [`Block`]s.
fn blocks(steps: &[Step]) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < steps.len() {
        let kind = match &steps[i] {
            Step::Change(c) => Some(c.kind),
            Step::Restart(_) => None,
        };
        let run = kind.map_or(1, |k| {
            steps[i..]
                .iter()
                .take_while(|s| matches!(s, Step::Change(c) if c.kind == k))
                .count()
        });
        if run > LIST_LIMIT {
            out.push(Block::Many(&steps[i..i + run]));
        } else {
            out.extend(steps[i..i + run].iter().map(Block::Step));
        }
        i += run.max(1);
    }
    out
}

/// A summarized run of changes: the changes of each action, and how many changes set
/// each attribute to each value (most frequent first, then in order of appearance).
struct Tally<'a> {
    title: &'a str,
    reason: &'a str,
    total: usize,
    actions: Vec<(Action, usize)>,
    values: Vec<(&'a str, String, usize)>,
    /// The changes that require each restart (its own step says when it runs).
    restarts: Vec<(Service, usize)>,
}

fn tally(run: &[Step]) -> Tally<'_> {
    let mut t = Tally {
        title: "",
        reason: "",
        total: 0,
        actions: Vec::new(),
        values: Vec::new(),
        restarts: Vec::new(),
    };
    let mut at: std::collections::HashMap<(&str, String), usize> = std::collections::HashMap::new();
    for s in run {
        let Step::Change(c) = s else { continue };
        t.title = c.title;
        t.reason = c.reason;
        t.total += 1;
        let action = c.actions.first().copied().unwrap_or(Action::Update);
        match t.actions.iter_mut().find(|(a, _)| *a == action) {
            Some((_, n)) => *n += 1,
            None => t.actions.push((action, 1)),
        }
        if let Some(svc) = c.requires_restart.filter(|_| c.no_restart.is_none()) {
            match t.restarts.iter_mut().find(|(s, _)| *s == svc) {
                Some((_, n)) => *n += 1,
                None => t.restarts.push((svc, 1)),
            }
        }
        for a in &c.attributes {
            let shown = show(&a.after, a.sensitive);
            match at.get(&(a.name.as_str(), shown.clone())) {
                Some(&i) => t.values[i].2 += 1,
                None => {
                    at.insert((a.name.as_str(), shown.clone()), t.values.len());
                    t.values.push((a.name.as_str(), shown, 1));
                }
            }
        }
    }
    // Stable: equal counts keep their order of appearance.
    t.values.sort_by_key(|v| std::cmp::Reverse(v.2));
    t
}

/// Values shown per summarized run; the rest are counted.
const VALUES_SHOWN: usize = 20;

fn action_word(a: Action) -> &'static str {
    match a {
        Action::Create => "to create",
        Action::Update => "to update",
        Action::Delete => "to delete",
    }
}

impl Tally<'_> {
    /// `9000 to update` or `10 to create, 2 to update`.
    fn counts(&self) -> String {
        self.actions
            .iter()
            .map(|(a, n)| format!("{n} {}", action_word(*a)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The symbol of the run: its action's, or `~` when mixed.
    fn symbol(&self) -> Action {
        match self.actions.as_slice() {
            [(a, _)] => *a,
            _ => Action::Update,
        }
    }
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
    match (&c.no_restart, c.requires_restart) {
        (Some(why), _) => {
            let _ = writeln!(out, "      {}", p.dim(why));
        }
        (None, Some(r)) => {
            let _ = writeln!(
                out,
                "      {}",
                p.dim(&format!("requires a restart of {r}"))
            );
        }
        (None, None) => {}
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
    let head = if r.service.disconnects_everyone() {
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
        let _ = writeln!(out, "  {} {}", p.red("error:"), for_people(e));
    }
    for w in &h.warnings {
        // Each says what it is ("capacity warning: ...").
        let _ = writeln!(out, "  {}", p.yellow(w));
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
    for b in blocks(&h.steps) {
        match b {
            Block::Step(Step::Change(c)) => text_change(c, p, out),
            Block::Step(Step::Restart(r)) => text_restart(r, p, out),
            Block::Many(run) => text_many(&tally(run), p, out),
        }
    }
    out.push('\n');
}

/// A summarized run: `~ Throttling policy associations: 9000 to update`, then a line
/// per attribute and new value with its count.
fn text_many(t: &Tally<'_>, p: &Paint, out: &mut String) {
    let sym = match t.symbol() {
        Action::Create => p.green("+"),
        Action::Update => p.yellow("~"),
        Action::Delete => p.red("-"),
    };
    let _ = writeln!(out, "  {sym} {}: {}", p.bold(t.title), t.counts());
    for (name, value, n) in t.values.iter().take(VALUES_SHOWN) {
        let _ = writeln!(out, "      {name} → {value}: {n}");
    }
    if t.values.len() > VALUES_SHOWN {
        let _ = writeln!(
            out,
            "      {}",
            p.dim(&format!(
                "… and {} other values",
                t.values.len() - VALUES_SHOWN
            ))
        );
    }
    for (svc, n) in &t.restarts {
        let _ = writeln!(
            out,
            "      {}",
            p.dim(&format!("{n} of them require a restart of {svc}"))
        );
    }
    let _ = writeln!(
        out,
        "      {}",
        p.dim(&format!(
            "({} changes summarized; --format json or markdown lists each)",
            t.total
        ))
    );
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

/// The message of PowerShell 2.0's ActionPreferenceStopException before the error it
/// wraps: every error of a cmdlet run with `-ErrorAction Stop` (as exctl's scripts run
/// them) starts with it (see learn.microsoft.com/dotnet/api/
/// system.management.automation.actionpreferencestopexception). It says nothing an
/// administrator can act on.
pub const STOP_PREFIX: &str = "Command execution stopped because the preference variable \"ErrorActionPreference\" or common parameter is set to Stop: ";

/// An error from a server as a person reads it: without [`STOP_PREFIX`] (the JSON and
/// the journal keep the text as the server said it).
pub fn for_people(s: &str) -> String {
    s.replace(STOP_PREFIX, "")
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
            // A line break GitHub shows in a table cell, a list item and a quote alike.
            '\n' => o.push_str("<br>"),
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
    let capacity = capacity_hosts(plan);
    if plan.summary.delete > 0 || !restarts.is_empty() || !capacity.is_empty() {
        let _ = writeln!(out, "> [!WARNING]");
        if plan.summary.delete > 0 {
            let _ = writeln!(out, "> {}", deletions_line(&deleted(plan)));
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
        if !capacity.is_empty() {
            let _ = writeln!(out, "> {}", capacity_line(&capacity));
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
    markdown_hosts_listing(plan, usize::MAX)
}

/// [`markdown_hosts`], listing at most `listed` changes of each summarized run (see
/// [`LIST_LIMIT`]) in its collapsed section: a pull-request comment has a size limit.
pub fn markdown_hosts_listing(plan: &Plan, listed: usize) -> String {
    let mut out = String::new();
    for h in &plan.hosts {
        md_host(h, listed, &mut out);
    }
    out
}

/// The table rows of one change: the resource named on its first row only, long
/// identities and values shortened (their whole text remembered in `full`).
fn md_change_rows(c: &ChangeStep, full: &mut Vec<(String, String)>, out: &mut String) {
    let sym = symbol(c.actions.first().copied().unwrap_or(Action::Update));
    let res = format!("{} `{}`", c.title, md_escape(&code(&cell(&c.id, full))));
    if c.attributes.is_empty() {
        let _ = writeln!(out, "| {sym} | {res} | | | |");
    }
    for (i, a) in c.attributes.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {sym} |{}| {} | {} | {} |",
            if i == 0 {
                format!(" {res} ")
            } else {
                " ".to_string()
            },
            md_escape(&a.name),
            md_escape(&cell(&show(&a.before, a.sensitive), full)),
            md_escape(&cell(&show(&a.after, a.sensitive), full))
        );
    }
}

const MD_TABLE_HEAD: &str = "| | resource | attribute | before | after |\n|---|---|---|---|---|";

/// What a plan deletes: `Receive connectors 'Relay' on EX01 (site lon)`, in step order.
pub fn deleted(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for h in &plan.hosts {
        for s in &h.steps {
            if let Step::Change(c) = s
                && c.actions.first() == Some(&Action::Delete)
            {
                out.push(format!("{} '{}' on {}", c.title, c.id, host_title(h)));
            }
        }
    }
    out
}

/// The warning line for [`deleted`] (its list cut to a bounded length).
pub fn deletions_line(deleted: &[String]) -> String {
    let names: Vec<&str> = deleted.iter().map(String::as_str).collect();
    format!(
        "{} will be **deleted**: {}.",
        if deleted.len() == 1 {
            "1 resource".to_string()
        } else {
            format!("{} resources", deleted.len())
        },
        md_escape(&names_within(&names, 1500))
    )
}

/// The hosts (`EX01 (site lon)`) whose plan carries a capacity warning.
pub fn capacity_hosts(plan: &Plan) -> Vec<String> {
    plan.hosts
        .iter()
        .filter(|h| !h.warnings.is_empty())
        .map(host_title)
        .collect()
}

/// The warning line for [`capacity_hosts`].
pub fn capacity_line(hosts: &[String]) -> String {
    let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    format!(
        "**Capacity**: a limit is below the declared demand on {}: {}; see {}.",
        if hosts.len() == 1 {
            "1 host".to_string()
        } else {
            format!("{} hosts", hosts.len())
        },
        md_escape(&names_within(&names, 1500)),
        if hosts.len() == 1 {
            "its section"
        } else {
            "their sections"
        }
    )
}

/// Names, joined, cut to about `budget` bytes with a count of the rest.
pub fn names_within(names: &[&str], budget: usize) -> String {
    let mut out = String::new();
    for (i, n) in names.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        if out.len() + sep.len() + n.len() > budget {
            let _ = write!(out, "{sep}… and {} more", names.len() - i);
            return out;
        }
        out.push_str(sep);
        out.push_str(n);
    }
    out
}

/// The longest identity or value a comment's table shows whole: longer ones (registry
/// paths) would push the other columns off a reviewer's screen.
pub const CELL_MAX: usize = 56;

/// `s` shortened to at most [`CELL_MAX`] characters, or `None` when it fits: a path keeps
/// its root and as many of its last components as fit (`HKLM:\…\Setup\MsiInstallPath`),
/// anything else its start and end around an ellipsis.
pub fn shorten(s: &str) -> Option<String> {
    let n = s.chars().count();
    if n <= CELL_MAX {
        return None;
    }
    // A path: its root, then as many of its last components as fit.
    let parts: Vec<&str> = s.split('\\').collect();
    if parts.len() > 2 {
        let mut tail = parts[parts.len() - 1].to_string();
        if parts[0].chars().count() + 3 + tail.chars().count() <= CELL_MAX {
            for p in parts[1..parts.len() - 1].iter().rev() {
                let longer = format!("{p}\\{tail}");
                if parts[0].chars().count() + 3 + longer.chars().count() > CELL_MAX {
                    break;
                }
                tail = longer;
            }
            return Some(format!("{}\\…\\{tail}", parts[0]));
        }
    }
    let half = CELL_MAX / 2 - 1;
    let head: String = s.chars().take(half).collect();
    let tail: String = s.chars().skip(n - half).collect();
    Some(format!("{head}…{tail}"))
}

/// A table cell's text, shortened (see [`shorten`]) with the full text remembered for the
/// details below the table.
fn cell(s: &str, full: &mut Vec<(String, String)>) -> String {
    match shorten(s) {
        Some(short) => {
            if !full.iter().any(|(a, _)| *a == short) {
                full.push((short.clone(), s.to_string()));
            }
            short
        }
        None => s.to_string(),
    }
}

/// Text for inside a code span: a backtick would end it.
fn code(s: &str) -> String {
    s.replace('`', "'")
}

/// A warning as a list item: its first line as the item, the lines after it (the
/// manifest lines it proposes) as a code block under it.
fn md_warning(w: &str, out: &mut String) {
    let (first, rest) = w.split_once('\n').unwrap_or((w, ""));
    let _ = writeln!(out, "- ⚠️ {}", md_escape(first));
    if !rest.trim().is_empty() {
        let _ = writeln!(out, "\n  ```yaml");
        for l in rest.lines() {
            let _ = writeln!(out, "  {}", l.replace("```", "'''"));
        }
        let _ = writeln!(out, "  ```");
    }
}

/// One host as a collapsible section (open when it has steps or errors).
fn md_host(h: &HostPlan, listed: usize, out: &mut String) {
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
        let _ = writeln!(out, "- ❌ {}", md_escape(&for_people(e)));
    }
    for w in &h.warnings {
        md_warning(w, out);
    }
    for n in &h.notes {
        let _ = writeln!(out, "- ℹ️ {}", md_escape(n));
    }
    // Why a change that needs a restart has none (once per service).
    let mut idle: Vec<&str> = Vec::new();
    for s in &h.steps {
        if let Step::Change(c) = s
            && let Some(why) = &c.no_restart
            && !idle.contains(&why.as_str())
        {
            idle.push(why);
            let _ = writeln!(out, "- ℹ️ {}", md_escape(why));
        }
    }
    if !h.errors.is_empty() || !h.warnings.is_empty() || !h.notes.is_empty() || !idle.is_empty() {
        out.push('\n');
    }
    if !h.steps.is_empty() {
        // Indexed by place: thousands of changes each declared on their own line stay
        // linear.
        let mut origins: Vec<(String, Vec<String>)> = Vec::new();
        let mut at_index: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        for s in &h.steps {
            if let Step::Change(c) = s {
                let mut add = |at: &str, what: String| match at_index.get(at) {
                    Some(&i) => origins[i].1.push(what),
                    None => {
                        at_index.insert(at.to_string(), origins.len());
                        origins.push((at.to_string(), vec![what]));
                    }
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
        // Identities and values too long for a cell, shown whole below the table.
        let mut full: Vec<(String, String)> = Vec::new();
        let _ = writeln!(out, "{MD_TABLE_HEAD}");
        // Summarized runs: counts in the table, each change in a collapsed section after it.
        let mut lists: Vec<(Tally<'_>, &[Step])> = Vec::new();
        for b in blocks(&h.steps) {
            match b {
                Block::Step(Step::Change(c)) => md_change_rows(c, &mut full, out),
                Block::Many(run) => {
                    let t = tally(run);
                    let sym = symbol(t.symbol());
                    let _ = writeln!(
                        out,
                        "| {sym} | {} × {} | | | {} |",
                        t.total,
                        t.title,
                        md_escape(&t.counts())
                    );
                    for (name, value, n) in t.values.iter().take(VALUES_SHOWN) {
                        let _ = writeln!(
                            out,
                            "| {sym} | {n} × {} | {} | | {} |",
                            t.title,
                            md_escape(name),
                            md_escape(value)
                        );
                    }
                    if t.values.len() > VALUES_SHOWN {
                        let _ = writeln!(
                            out,
                            "| {sym} | {} | | | … and {} other values |",
                            t.title,
                            t.values.len() - VALUES_SHOWN
                        );
                    }
                    lists.push((t, run));
                }
                Block::Step(Step::Restart(r)) => {
                    // `registry_values HKLM:\...`: the identity shortened as in its row.
                    let required_by: Vec<String> = r
                        .required_by
                        .iter()
                        .map(|x| match x.split_once(' ') {
                            Some((kind, id)) => format!("{kind} {}", cell(id, &mut full)),
                            None => x.clone(),
                        })
                        .collect();
                    let mut why = match (&r.pending, required_by.is_empty()) {
                        (Some(p), true) => format!("pending from before: {p}"),
                        (Some(p), false) => format!(
                            "required by {}; pending from before: {p}",
                            required_by.join(", ")
                        ),
                        (None, true) => String::new(),
                        (None, false) => format!("required by {}", required_by.join(", ")),
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
        for (t, run) in lists {
            let _ = writeln!(
                out,
                "<details><summary>{}: the {} changes</summary>\n\n{MD_TABLE_HEAD}",
                t.title, t.total
            );
            for s in run.iter().take(listed) {
                if let Step::Change(c) = s {
                    md_change_rows(c, &mut full, out);
                }
            }
            out.push('\n');
            if run.len() > listed {
                let _ = writeln!(
                    out,
                    "… and {} more: the JSON plan (`exctl plan --format json`) lists every change.\n",
                    run.len() - listed
                );
            }
            let _ = writeln!(out, "</details>\n");
        }
        if !full.is_empty() {
            let _ = writeln!(
                out,
                "<details><summary>Shortened above ({})</summary>\n",
                full.len()
            );
            for (short, whole) in &full {
                let _ = writeln!(out, "- `{}`: `{}`", code(short), code(whole));
            }
            let _ = writeln!(out, "\n</details>\n");
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::HostPlan;
    use exctl_exchange::Version;

    fn association(i: usize, policy: &str) -> Step {
        Step::Change(ChangeStep {
            kind: "throttling_associations",
            title: "Throttling policy associations",
            id: format!("user{i:05}"),
            actions: vec![Action::Update],
            attributes: vec![AttrChange {
                name: "ThrottlingPolicy".into(),
                before: Some(Value::Str("default".into())),
                after: Some(Value::Str(policy.into())),
                sensitive: false,
            }],
            unchanged_attributes: 0,
            reason: "associations run after the throttling policies",
            requires_restart: None,
            no_restart: None,
            declared_at: format!("site.yaml:{}", 3 + 2 * i),
            attributes_declared_at: Vec::new(),
            commands: Vec::new(),
        })
    }

    fn many(n: usize) -> Plan {
        let steps = (1..=n)
            .map(|i| association(i, if i % 3 == 0 { "Bulk" } else { "UCCX" }))
            .collect();
        Plan::new(vec![HostPlan {
            host: "EX01".into(),
            site: None,
            expected_version: Version::Sp3,
            observed_version: None,
            steps,
            in_sync: 0,
            errors: Vec::new(),
            notes: Vec::new(),
            warnings: Vec::new(),
        }])
    }

    const LONG: &str = r"HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeIS\ParametersSystem\Maximum Allowed Service Sessions Per User";

    fn change(kind: &'static str, id: &str, action: Action, attrs: Vec<AttrChange>) -> Step {
        Step::Change(ChangeStep {
            kind,
            title: "Registry values",
            id: id.into(),
            actions: vec![action],
            attributes: attrs,
            unchanged_attributes: 0,
            reason: "registry values run first",
            requires_restart: None,
            no_restart: None,
            declared_at: "manifests/lon.yaml:3".into(),
            attributes_declared_at: Vec::new(),
            commands: Vec::new(),
        })
    }

    fn attr(name: &str, before: Option<Value>, after: Option<Value>) -> AttrChange {
        AttrChange {
            name: name.into(),
            before,
            after,
            sensitive: false,
        }
    }

    fn plan() -> Plan {
        Plan::new(vec![HostPlan {
            host: "EX01".into(),
            site: Some("lon".into()),
            expected_version: Version::Sp3,
            observed_version: None,
            steps: vec![
                change(
                    "registry_values",
                    LONG,
                    Action::Create,
                    vec![
                        attr("Type", None, Some(Value::Str("dword".into()))),
                        attr("Value", None, Some(Value::Int(250))),
                    ],
                ),
                change(
                    "registry_values",
                    r"HKLM:\SOFTWARE\Contoso\Old",
                    Action::Delete,
                    Vec::new(),
                ),
                change(
                    "registry_values",
                    r"HKLM:\SOFTWARE\Contoso\Limit",
                    Action::Update,
                    vec![attr("Value", Some(Value::Int(16)), Some(Value::Unlimited))],
                ),
            ],
            in_sync: 0,
            errors: vec!["first line\nsecond line".into()],
            notes: Vec::new(),
            warnings: vec![
                "capacity warning: MaxConnectionsPerUser is 16 on EX01. Add:\n    imap_settings:\n      MaxConnectionsPerUser: 42".into(),
            ],
        }])
    }

    #[test]
    fn many_changes_of_one_kind_are_counted_per_value_in_text() {
        let text = text(&many(90), TextOptions::default());
        assert!(
            text.contains("~ Throttling policy associations: 90 to update\n      ThrottlingPolicy → \"UCCX\": 60\n      ThrottlingPolicy → \"Bulk\": 30\n"),
            "{text}"
        );
        assert!(!text.contains("user00001"), "{text}");
        // Up to the limit, each change is listed.
        let text = super::text(&many(LIST_LIMIT), TextOptions::default());
        assert_eq!(
            text.matches("~ Throttling policy associations user")
                .count(),
            LIST_LIMIT
        );
    }

    #[test]
    fn a_summarized_run_counts_the_restarts_its_changes_require() {
        let mut p = many(60);
        for s in p.hosts[0].steps.iter_mut().take(7) {
            if let Step::Change(c) = s {
                c.requires_restart = Some(exctl_exchange::services::INFORMATION_STORE);
            }
        }
        let text = text(&p, TextOptions::default());
        assert!(
            text.contains(&format!(
                "      7 of them require a restart of {}\n",
                exctl_exchange::services::INFORMATION_STORE
            )),
            "{text}"
        );
    }

    #[test]
    fn many_changes_of_one_kind_are_listed_in_a_collapsed_markdown_section() {
        let md = markdown(&many(90));
        assert!(
            md.contains(
                "| ~ | 60 × Throttling policy associations | ThrottlingPolicy | | \"UCCX\" |"
            ),
            "{md}"
        );
        assert!(md.contains(
            "<details><summary>Throttling policy associations: the 90 changes</summary>"
        ));
        assert_eq!(md.matches("`user0").count(), 90, "{md}");
        // Cut when asked: the count of the rest, and where the full list is.
        let cut = markdown_hosts_listing(&many(90), 10);
        assert_eq!(cut.matches("`user0").count(), 10, "{cut}");
        assert!(cut.contains("… and 80 more: the JSON plan"), "{cut}");
    }

    #[test]
    fn long_identities_are_shortened_in_the_table_and_shown_whole_below_it() {
        let md = markdown(&plan());
        let short = shorten(LONG).unwrap();
        assert!(short.chars().count() <= CELL_MAX, "{short}");
        assert_eq!(short, r"HKLM:\…\Maximum Allowed Service Sessions Per User");
        assert!(
            md.contains(&format!("| + | Registry values `{short}` | Type |")),
            "{md}"
        );
        // The second attribute of the same resource does not repeat it.
        assert!(md.contains("| + | | Value | (none) | 250 |"), "{md}");
        assert!(md.contains(&format!("- `{short}`: `{LONG}`")), "{md}");
        assert!(!md.contains(&format!("| {LONG}")), "{md}");
        assert!(shorten("short").is_none());
        let text = shorten(&"x".repeat(100)).unwrap();
        assert_eq!(text.chars().count(), CELL_MAX - 1, "{text}");
    }

    #[test]
    fn the_comment_names_what_is_deleted_and_the_capacity_warnings_without_stray_symbols() {
        let md = markdown(&plan());
        assert!(
            md.contains(r"> 1 resource will be **deleted**: Registry values 'HKLM:\SOFTWARE\Contoso\Old' on EX01 (site lon)."),
            "{md}"
        );
        assert!(
            md.contains("> **Capacity**: a limit is below the declared demand on 1 host: EX01 (site lon); see its section."),
            "{md}"
        );
        assert!(
            md.contains("- ⚠️ capacity warning: MaxConnectionsPerUser is 16 on EX01. Add:\n\n  ```yaml\n      imap_settings:\n        MaxConnectionsPerUser: 42\n  ```\n"),
            "{md}"
        );
        assert!(md.contains("- ❌ first line<br>second line"), "{md}");
        assert!(!md.contains('⏎'), "{md}");
        // Unlimited reads as unlimited; the order is explained once.
        assert!(md.contains("| 16 | unlimited |"), "{md}");
        assert_eq!(md.matches("registry values run first").count(), 1, "{md}");
    }

    #[test]
    fn the_text_plan_shows_capacity_warnings_and_the_order_only_on_request() {
        let t = text(&plan(), TextOptions::default());
        assert!(
            t.contains("  capacity warning: MaxConnectionsPerUser is 16 on EX01."),
            "{t}"
        );
        assert!(t.contains("~ Value: 16 → unlimited"), "{t}");
        assert!(!t.contains("registry values run first"), "{t}");
        let t = text(
            &plan(),
            TextOptions {
                explain: true,
                ..TextOptions::default()
            },
        );
        assert_eq!(t.matches("registry values run first").count(), 1, "{t}");
        assert!(
            t.contains("Order of the steps:\n  Registry values: registry values run first\n"),
            "{t}"
        );
    }
}
