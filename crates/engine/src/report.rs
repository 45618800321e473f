//! Renderings of many sites: the plan as text (a section per site with changes), as a
//! pull-request comment that fits GitHub's limit, as JSON, and the summary table both
//! `plan` and `apply` end with. Like [`crate::render`], they only present.
//!
//! # The pull-request comment ([`markdown`])
//!
//! A hidden marker (`<!-- exctl-plan -->`, so a CI job can find and update its own
//! comment), a summary line, a warning block for restarts and deletions, one collapsible
//! section per site (sites that could not be planned first, then sites with changes, in
//! rollout order), and one line naming the sites without changes. GitHub refuses a
//! comment over 65,536 characters; the comment is kept under [`MarkdownOptions::max_bytes`]
//! (bytes, which is stricter than characters): sites that do not fit are left out and
//! named, with a pointer to the full plan.

use std::fmt::Write as _;
use std::time::Duration;

use exctl_exchange::kind::{Action, Service};

use crate::plan::Step;
use crate::render::{self, TextOptions, md_escape, names_within, summary_line};
use crate::rollout::{RepoPlan, SitePlan};

/// The marker that starts every plan comment.
pub const COMMENT_MARKER: &str = "<!-- exctl-plan -->";

/// GitHub's limit on the body of an issue or pull-request comment.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// Options of the pull-request comment.
#[derive(Debug, Clone)]
pub struct MarkdownOptions {
    /// The comment never exceeds this many bytes.
    pub max_bytes: usize,
    /// Where the full plan is (a URL), for the note shown when sites are left out.
    pub full_plan: Option<String>,
}

impl Default for MarkdownOptions {
    fn default() -> Self {
        MarkdownOptions {
            max_bytes: GITHUB_COMMENT_LIMIT,
            full_plan: None,
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `2 to update, 1 restart`.
fn site_counts(s: &SitePlan) -> String {
    let (mut create, mut update, mut delete) = (0, 0, 0);
    for h in &s.hosts {
        for st in &h.steps {
            if let Step::Change(c) = st {
                match c.actions.first() {
                    Some(Action::Create) => create += 1,
                    Some(Action::Delete) => delete += 1,
                    _ => update += 1,
                }
            }
        }
    }
    let mut parts = Vec::new();
    if create > 0 {
        parts.push(format!("{create} to create"));
    }
    if update > 0 {
        parts.push(format!("{update} to update"));
    }
    if delete > 0 {
        parts.push(format!("{delete} to delete"));
    }
    let r = s.restarts();
    if r > 0 {
        parts.push(plural(r, "restart", "restarts"));
    }
    if parts.is_empty() {
        "no changes".to_string()
    } else {
        parts.join(", ")
    }
}

/// `30 sites: 3 with changes, 26 without, 1 could not be planned.`
pub fn sites_line(plan: &RepoPlan) -> String {
    let errors = plan.sites.iter().filter(|s| s.has_errors()).count();
    let changes = plan
        .sites
        .iter()
        .filter(|s| !s.has_errors() && s.has_changes())
        .count();
    let none = plan.sites.len() - errors - changes;
    let mut line = format!(
        "{}: {changes} with changes, {none} without",
        plural(plan.sites.len(), "site", "sites")
    );
    if errors > 0 {
        let _ = write!(line, ", {errors} could not be planned");
    }
    line.push('.');
    line
}

/// The changes a summarized run lists in its collapsed section when the comment would
/// not fit with them all (see [`render::LIST_LIMIT`]).
const LISTED_WHEN_CUT: usize = 100;

/// A site's section, listing at most `listed` changes of each summarized run.
fn site_section(s: &SitePlan, listed: usize) -> String {
    let mut out = String::new();
    let hosts = plural(s.hosts.len(), "host", "hosts");
    if s.has_errors() {
        let _ = writeln!(
            out,
            "<details open><summary>❌ <b>{}</b>: could not be planned ({hosts})</summary>\n",
            md_escape(&s.site)
        );
    } else {
        let _ = writeln!(
            out,
            "<details open><summary><b>{}</b>: {} ({hosts})</summary>\n",
            md_escape(&s.site),
            site_counts(s)
        );
    }
    let plan = s.plan();
    let body = render::markdown_hosts_listing(&plan, listed);
    out.push_str(&body);
    let _ = writeln!(out, "</details>\n");
    out
}

/// The warning block: what restarts where, and deletions, kept short.
fn warnings(plan: &RepoPlan) -> String {
    let mut out = String::new();
    let mut by_service: Vec<(Service, Vec<String>)> = Vec::new();
    let mut unhealthy: Vec<String> = Vec::new();
    let whole = plan.plan();
    let deleted = render::deleted(&whole);
    let capacity = render::capacity_hosts(&whole);
    for s in &plan.sites {
        for h in &s.hosts {
            for st in &h.steps {
                match st {
                    Step::Restart(r) if r.verb() != "restart" => {
                        if let Some(rec) = &r.recover {
                            unhealthy.push(format!("{} ({}): {}", h.host, s.site, rec.reason));
                        }
                    }
                    Step::Restart(r) => {
                        let who = format!("{} ({})", h.host, s.site);
                        match by_service.iter_mut().find(|(svc, _)| *svc == r.service) {
                            Some((_, v)) => v.push(who),
                            None => by_service.push((r.service, vec![who])),
                        }
                    }
                    Step::Change(_) => {}
                }
            }
        }
    }
    if by_service.is_empty() && deleted.is_empty() && unhealthy.is_empty() && capacity.is_empty() {
        return out;
    }
    by_service.sort_by_key(|(s, _)| *s);
    let _ = writeln!(out, "> [!WARNING]");
    if !deleted.is_empty() {
        let _ = writeln!(out, "> {}", render::deletions_line(&deleted));
    }
    for (svc, hosts) in &by_service {
        let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let _ = writeln!(
            out,
            "> **{svc}** restarts on {}: {}. {}.",
            plural(hosts.len(), "host", "hosts"),
            md_escape(&names_within(&names, 1500)),
            capitalize(svc.consequence())
        );
    }
    for u in &unhealthy {
        let _ = writeln!(
            out,
            "> Not healthy, apply brings it back: {}.",
            md_escape(u)
        );
    }
    if !capacity.is_empty() {
        let _ = writeln!(out, "> {}", render::capacity_line(&capacity));
    }
    out.push('\n');
    out
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The plan of many sites as a pull-request comment (see the module docs).
pub fn markdown(plan: &RepoPlan, opts: &MarkdownOptions) -> String {
    let whole = plan.plan();
    let mut head = String::new();
    let _ = writeln!(head, "{COMMENT_MARKER}\n### exctl plan\n");
    let _ = writeln!(head, "**{}** {}\n", summary_line(&whole), sites_line(plan));
    head.push_str(&warnings(plan));

    let mut shown: Vec<&SitePlan> = plan.sites.iter().filter(|s| s.has_errors()).collect();
    shown.extend(
        plan.sites
            .iter()
            .filter(|s| !s.has_errors() && s.has_changes()),
    );
    let quiet: Vec<&str> = plan
        .sites
        .iter()
        .filter(|s| !s.has_errors() && !s.has_changes())
        .map(|s| s.site.as_str())
        .collect();
    let mut tail = if quiet.is_empty() {
        String::new()
    } else {
        format!(
            "✅ **No changes** ({}): {}\n",
            plural(quiet.len(), "site", "sites"),
            md_escape(&names_within(&quiet, 4000))
        )
    };
    // Why the steps run in this order: once per comment, collapsed.
    let legend = render::markdown_legend(&whole);
    if !legend.is_empty() {
        if !tail.is_empty() {
            tail.push('\n');
        }
        tail.push_str(&legend);
    }
    let where_full = match &opts.full_plan {
        Some(url) => format!("[the full plan]({url})"),
        None => "the full plan in the job's artefacts (or run `exctl plan` locally)".to_string(),
    };
    let mut sections: Vec<String> = shown.iter().map(|s| site_section(s, usize::MAX)).collect();
    let mut total: usize =
        head.len() + sections.iter().map(String::len).sum::<usize>() + tail.len();
    if total > opts.max_bytes {
        // Long lists of one kind's changes go first: their counts stay, the JSON plan
        // has every change.
        sections = shown
            .iter()
            .map(|s| site_section(s, LISTED_WHEN_CUT))
            .collect();
        total = head.len() + sections.iter().map(String::len).sum::<usize>() + tail.len();
    }
    if total <= opts.max_bytes {
        let mut out = head;
        for s in &sections {
            out.push_str(s);
        }
        out.push_str(&tail);
        return out;
    }
    // Too long: keep what fits, name the rest. The note's size is bounded (its list of
    // names is cut), so it can be reserved up front.
    const NOTE_NAMES: usize = 1500;
    let note = |left: &[&str]| {
        format!(
            "> [!NOTE]\n> This comment is cut to fit GitHub's limit: {} with changes or errors {} not shown here ({}). See {where_full}.\n\n",
            plural(left.len(), "site", "sites"),
            if left.len() == 1 { "is" } else { "are" },
            md_escape(&names_within(left, NOTE_NAMES))
        )
    };
    let reserve = note(&[]).len() + NOTE_NAMES + 64 + tail.len();
    let mut out = head;
    let mut left: Vec<&str> = Vec::new();
    for (s, text) in shown.iter().zip(&sections) {
        if out.len() + text.len() + reserve <= opts.max_bytes {
            out.push_str(text);
        } else {
            left.push(&s.site);
        }
    }
    out.push_str(&note(&left));
    out.push_str(&tail);
    if out.len() > opts.max_bytes {
        return smallest(plan, opts.max_bytes, &where_full);
    }
    out
}

/// The comment when even the summary and warnings do not fit `max` bytes: whole parts
/// only, never a cut through markup (a cut marker would hide the comment, a cut
/// `<details>` the rest of the page): the marker, the title, the summary, a pointer, as
/// many as fit. Empty when not even the marker fits.
fn smallest(plan: &RepoPlan, max: usize, where_full: &str) -> String {
    let whole = plan.plan();
    let mut out = String::new();
    for p in [
        format!("{COMMENT_MARKER}\n"),
        "### exctl plan\n\n".to_string(),
        format!("**{}** {}\n\n", summary_line(&whole), sites_line(plan)),
    ] {
        if out.len() + p.len() > max {
            break;
        }
        out.push_str(&p);
    }
    if out.is_empty() {
        return out;
    }
    for pointer in [
        format!("This comment is cut to fit: see {where_full}.\n"),
        "This comment is cut to fit.\n".to_string(),
    ] {
        if out.len() + pointer.len() <= max {
            out.push_str(&pointer);
            break;
        }
    }
    out
}

/// The plan of many sites for a terminal: a section per site with changes or errors,
/// one line for the sites without changes, and the summary line.
pub fn text(plan: &RepoPlan, opts: TextOptions) -> String {
    let mut out = String::new();
    let mut quiet = Vec::new();
    for s in &plan.sites {
        if !s.has_changes() && !s.has_errors() {
            quiet.push(s.site.as_str());
            continue;
        }
        let _ = writeln!(
            out,
            "=== Site {}: {} ===\n",
            s.site,
            if s.has_errors() {
                "could not be planned".to_string()
            } else {
                site_counts(s)
            }
        );
        // The legend is said once for the whole plan, below.
        let body = render::text(
            &s.plan(),
            TextOptions {
                explain: false,
                ..opts
            },
        );
        // The per-site text ends with its own summary line; the whole plan has one.
        let body = body.trim_end();
        let body = body
            .rsplit_once('\n')
            .map_or(body, |(hosts, _summary)| hosts);
        out.push_str(body.trim_end());
        out.push_str("\n\n");
    }
    if !quiet.is_empty() {
        let _ = writeln!(
            out,
            "No changes ({}): {}\n",
            plural(quiet.len(), "site", "sites"),
            quiet.join(", ")
        );
    }
    let whole = plan.plan();
    if opts.explain {
        out.push_str(&render::text_legend(&whole, opts));
    }
    let _ = writeln!(out, "{} {}", summary_line(&whole), sites_line(plan));
    out
}

/// The plan of many sites as JSON: the plan of every host (format version
/// [`crate::plan::FORMAT_VERSION`]) with a `sites` summary beside it.
pub fn json(plan: &RepoPlan) -> serde_json::Value {
    let mut v = render::json(&plan.plan());
    if let Some(o) = v.as_object_mut() {
        o.insert("sites".into(), plan.sites_json());
    }
    v
}

/// A row of the summary table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The site.
    pub site: String,
    /// Resources that change.
    pub changes: usize,
    /// Restarts.
    pub restarts: usize,
    /// What happened (`done`, `FAILED`, `no changes`, `not started`).
    pub result: String,
    /// How long it took, when it ran.
    pub duration: Option<Duration>,
}

/// `1.2 s`, `3 min 05 s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        let secs = d.as_secs();
        format!("{} min {:02} s", secs / 60, secs % 60)
    }
}

/// The table both `plan` and `apply` end with: per site, changes, restarts, result and
/// duration.
pub fn table(rows: &[Row]) -> String {
    let head = ["SITE", "CHANGES", "RESTARTS", "RESULT", "DURATION"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.site.clone(),
                r.changes.to_string(),
                r.restarts.to_string(),
                r.result.clone(),
                r.duration.map(duration).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut width = head.map(|h| h.chars().count());
    for c in &cells {
        for (w, cell) in width.iter_mut().zip(c) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |c: [&str; 5]| {
        let mut s = String::new();
        for (i, cell) in c.iter().enumerate() {
            let w = width[i];
            if i == 1 || i == 2 || i == 4 {
                let _ = write!(s, "{cell:>w$}");
            } else {
                let _ = write!(s, "{cell:<w$}");
            }
            if i < 4 {
                s.push_str("  ");
            }
        }
        s.trim_end().to_string()
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", line(head));
    for c in &cells {
        let _ = writeln!(out, "{}", line([&c[0], &c[1], &c[2], &c[3], &c[4]]));
    }
    out
}

/// The summary rows of a plan.
pub fn plan_rows(plan: &RepoPlan) -> Vec<Row> {
    plan.sites
        .iter()
        .map(|s| Row {
            site: s.site.clone(),
            changes: s.changes(),
            restarts: s.restarts(),
            result: if s.has_errors() {
                "ERROR".into()
            } else if s.has_changes() {
                "changes".into()
            } else {
                "no changes".into()
            },
            duration: Some(s.duration),
        })
        .collect()
}

/// The summary rows of a rollout: the changes and restarts that were done (a restart
/// skipped by `--restart never`, a step not attempted or failed, a site not started
/// count for nothing).
pub fn rollout_rows(r: &crate::rollout::RolloutResult) -> Vec<Row> {
    let done = |s: &crate::rollout::SiteResult, ty: &str| {
        s.host_results
            .iter()
            .flat_map(|h| &h.steps)
            .filter(|st| st.step_type == ty && st.status == crate::apply::StepStatus::Done)
            .count()
    };
    r.sites
        .iter()
        .map(|s| Row {
            site: if s.canary {
                format!("{} (canary)", s.site)
            } else {
                s.site.clone()
            },
            changes: done(s, "change"),
            restarts: done(s, "restart"),
            result: s.status.to_string(),
            duration: (s.status != crate::rollout::SiteStatus::NotStarted)
                .then(|| Duration::from_millis(s.duration_ms)),
        })
        .collect()
}
