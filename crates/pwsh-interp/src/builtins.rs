//! The built-in commands: `Write-*`, `Out-*`, `ForEach-Object`, `Where-Object`,
//! `Select-Object`, `Sort-Object`, `Measure-Object`, `Group-Object`, `New-Object`,
//! `Add-Member`, `Start-Sleep`, `Get-Date`, `Get-Command`, `Format-List` (which writes the
//! list text as strings rather than PowerShell's format objects), `Set-StrictMode`
//! (accepted, no effect: the interpreter always behaves as without strict mode). Each is declared with a
//! [`CommandInfo`] so that its arguments are bound exactly like a host command's.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::ast::{Case, Span};
use super::binding::Binding;
use super::error::{ErrorCategory, ErrorRecord};
use super::format;
use super::host::{CommandInfo, ParamType as T, ParameterInfo as P};
use super::interp::{
    Collector, Downstream, Flow, Interp, R, command_not_found, enumerate, unwrap_output,
};
use super::members;
use super::ops;
use super::value::{Hashtable, PS_CUSTOM_OBJECT, PsObject, Value};

const ALIASES: &[(&str, &str)] = &[
    ("%", "ForEach-Object"),
    ("foreach", "ForEach-Object"),
    ("?", "Where-Object"),
    ("where", "Where-Object"),
    ("select", "Select-Object"),
    ("sort", "Sort-Object"),
    ("measure", "Measure-Object"),
    ("group", "Group-Object"),
    ("echo", "Write-Output"),
    ("write", "Write-Output"),
    ("sleep", "Start-Sleep"),
    ("gcm", "Get-Command"),
    ("fl", "Format-List"),
];

/// The command an alias stands for, or the name itself.
pub(crate) fn resolve_alias(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(name))
        .map_or(name, |(_, c)| c)
}

fn cmd(name: &str, class: &str) -> CommandInfo {
    CommandInfo::new(name, format!("Microsoft.PowerShell.Commands.{class}"))
}

fn infos() -> &'static Vec<Arc<CommandInfo>> {
    static INFOS: OnceLock<Vec<Arc<CommandInfo>>> = OnceLock::new();
    INFOS.get_or_init(|| {
        let input = || P::new("InputObject", T::Any).from_pipeline();
        vec![
            cmd("Write-Output", "WriteOutputCommand").param(
                P::new("InputObject", T::Any)
                    .position(0)
                    .mandatory()
                    .from_pipeline()
                    .remaining_arguments(),
            ),
            cmd("Write-Host", "WriteHostCommand")
                .param(
                    P::new("Object", T::Any)
                        .position(0)
                        .from_pipeline()
                        .remaining_arguments(),
                )
                .param(P::new("NoNewline", T::Switch))
                .param(P::new("Separator", T::Any))
                .param(P::new("ForegroundColor", T::Any))
                .param(P::new("BackgroundColor", T::Any)),
            cmd("Write-Error", "WriteErrorCommand")
                .param(
                    P::new("Message", T::String)
                        .position(0)
                        .from_pipeline()
                        .alias("Msg"),
                )
                .param(P::new("Category", T::String))
                .param(P::new("ErrorId", T::String))
                .param(P::new("TargetObject", T::Any))
                .param(P::new("RecommendedAction", T::String))
                .param(P::new("CategoryReason", T::String)),
            cmd("Write-Warning", "WriteWarningCommand").param(
                P::new("Message", T::String)
                    .position(0)
                    .mandatory()
                    .from_pipeline()
                    .alias("Msg"),
            ),
            cmd("Write-Verbose", "WriteVerboseCommand").param(
                P::new("Message", T::String)
                    .position(0)
                    .mandatory()
                    .from_pipeline()
                    .alias("Msg"),
            ),
            cmd("Write-Debug", "WriteDebugCommand").param(
                P::new("Message", T::String)
                    .position(0)
                    .mandatory()
                    .from_pipeline()
                    .alias("Msg"),
            ),
            cmd("Out-Null", "OutNullCommand").param(input()),
            cmd("Format-List", "FormatListCommand")
                .param(input())
                .param(P::new("Property", T::Array(Box::new(T::Any))).position(0)),
            cmd("Out-Default", "OutDefaultCommand").param(input()),
            cmd("Out-Host", "OutHostCommand")
                .param(input())
                .param(P::new("Paging", T::Switch)),
            cmd("Out-String", "OutStringCommand")
                .param(input())
                .param(P::new("Stream", T::Switch))
                .param(P::new("Width", T::Int)),
            cmd("ForEach-Object", "ForEachObjectCommand")
                .param(input())
                .param(
                    P::new("Process", T::Array(Box::new(T::ScriptBlock)))
                        .position(0)
                        .mandatory()
                        .remaining_arguments(),
                )
                .param(P::new("Begin", T::ScriptBlock))
                .param(P::new("End", T::ScriptBlock)),
            cmd("Where-Object", "WhereObjectCommand")
                .param(input())
                .param(
                    P::new("FilterScript", T::ScriptBlock)
                        .position(0)
                        .mandatory(),
                ),
            cmd("Select-Object", "SelectObjectCommand")
                .param(input())
                .param(P::new("Property", T::Array(Box::new(T::Any))).position(0))
                .param(P::new("ExpandProperty", T::String))
                .param(P::new("First", T::Int))
                .param(P::new("Last", T::Int))
                .param(P::new("Skip", T::Int))
                .param(P::new("Unique", T::Switch)),
            cmd("Sort-Object", "SortObjectCommand")
                .param(input())
                .param(P::new("Property", T::Array(Box::new(T::Any))).position(0))
                .param(P::new("Descending", T::Switch))
                .param(P::new("Unique", T::Switch))
                .param(P::new("CaseSensitive", T::Switch)),
            cmd("Measure-Object", "MeasureObjectCommand")
                .param(input())
                .param(P::new("Property", T::Array(Box::new(T::String))).position(0))
                .param(P::new("Sum", T::Switch))
                .param(P::new("Average", T::Switch))
                .param(P::new("Maximum", T::Switch))
                .param(P::new("Minimum", T::Switch)),
            cmd("Group-Object", "GroupObjectCommand")
                .param(input())
                .param(P::new("Property", T::Array(Box::new(T::Any))).position(0))
                .param(P::new("NoElement", T::Switch)),
            cmd("New-Object", "NewObjectCommand")
                .param(P::new("TypeName", T::String).position(0).mandatory())
                .param(
                    P::new("ArgumentList", T::Array(Box::new(T::Any)))
                        .position(1)
                        .alias("Args"),
                )
                .param(P::new("Property", T::Hashtable)),
            cmd("Add-Member", "AddMemberCommand")
                .param(
                    P::new("MemberType", T::String)
                        .position(0)
                        .mandatory()
                        .alias("Type"),
                )
                .param(P::new("Name", T::String).position(1).mandatory())
                .param(P::new("Value", T::Any).position(2))
                .param(P::new("SecondValue", T::Any).position(3))
                .param(P::new("InputObject", T::Any).mandatory().from_pipeline())
                .param(P::new("PassThru", T::Switch))
                .param(P::new("Force", T::Switch)),
            cmd("Start-Sleep", "StartSleepCommand")
                .param(
                    P::new("Seconds", T::Int)
                        .position(0)
                        .mandatory()
                        .in_set("Seconds")
                        .from_pipeline(),
                )
                .param(
                    P::new("Milliseconds", T::Int)
                        .mandatory()
                        .in_set("Milliseconds"),
                )
                .default_set("Seconds"),
            cmd("Get-Date", "GetDateCommand")
                .param(P::new("Date", T::DateTime).position(0).from_pipeline())
                .param(P::new("Format", T::String)),
            cmd("Get-Command", "GetCommandCommand").param(
                P::new("Name", T::Array(Box::new(T::String)))
                    .position(0)
                    .mandatory(),
            ),
            cmd("Set-StrictMode", "SetStrictModeCommand")
                .param(P::new("Version", T::Any).in_set("Version").mandatory())
                .param(P::new("Off", T::Switch).in_set("Off").mandatory()),
        ]
        .into_iter()
        .map(Arc::new)
        .collect()
    })
}

/// The declaration of a built-in command.
pub(crate) fn info(name: &str) -> Option<Arc<CommandInfo>> {
    infos()
        .iter()
        .find(|i| i.name.eq_ignore_ascii_case(name))
        .cloned()
}

/// A built-in command in a pipeline.
pub(crate) struct BuiltinStage {
    info: Arc<CommandInfo>,
    binding: Binding,
    items: Vec<Value>,
    count: usize,
}

fn custom_error(
    info: &CommandInfo,
    message: String,
    id: &str,
    category: ErrorCategory,
    exception: &str,
) -> ErrorRecord {
    let mut record = ErrorRecord::new(
        message,
        exception,
        category,
        format!("{id},{}", info.full_name),
    );
    record.command_name = Some(info.name.clone());
    record
}

impl BuiltinStage {
    pub(crate) fn new(info: Arc<CommandInfo>, binding: Binding) -> BuiltinStage {
        BuiltinStage {
            info,
            binding,
            items: Vec::new(),
            count: 0,
        }
    }

    fn arg(&self, name: &str) -> Option<Value> {
        self.binding.args.get(name).cloned()
    }

    fn name(&self) -> String {
        self.info.name.to_ascii_lowercase()
    }

    fn block(&self, name: &str) -> Option<super::value::ScriptBlock> {
        match self.arg(name) {
            Some(Value::ScriptBlock(sb)) => Some(sb),
            _ => None,
        }
    }

    /// ForEach-Object's blocks: with several positional blocks and no `-Begin`, the first
    /// is the begin block and the third the end block.
    fn foreach_blocks(&self) -> (Option<Value>, Option<Value>, Option<Value>) {
        let process = self
            .arg("Process")
            .and_then(|v| v.as_array())
            .unwrap_or_default();
        let begin = self.arg("Begin");
        let end = self.arg("End");
        if begin.is_none() && end.is_none() && process.len() > 1 {
            let mut it = process.into_iter();
            let b = it.next();
            let p = it.next();
            let e = it.next();
            return (b, p, e);
        }
        (begin, process.into_iter().next(), end)
    }

    pub(crate) fn begin(&mut self, it: &mut Interp<'_>, down: &mut dyn Downstream) -> R<()> {
        if self.name() == "foreach-object"
            && let (Some(Value::ScriptBlock(b)), _, _) = self.foreach_blocks()
        {
            it.invoke_with_underscore(&b, None, down)?;
        }
        Ok(())
    }

    pub(crate) fn process(
        &mut self,
        it: &mut Interp<'_>,
        input: Option<Value>,
        down: &mut dyn Downstream,
        span: Span,
    ) -> R<()> {
        let from_arg = input.is_none();
        let input = match input {
            Some(v) => Some(v),
            None => self.arg("InputObject"),
        };
        match self.name().as_str() {
            "write-output" => {
                if let Some(v) = input {
                    if from_arg {
                        for item in enumerate(v) {
                            down.push(it, item)?;
                        }
                    } else {
                        down.push(it, v)?;
                    }
                }
                Ok(())
            }
            "write-host" => {
                let value = if from_arg { self.arg("Object") } else { input };
                let sep = self
                    .arg("Separator")
                    .map_or(" ".to_string(), |s| s.to_text());
                let mut text = match value {
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(Value::to_text)
                        .collect::<Vec<_>>()
                        .join(&sep),
                    Some(v) => v.to_text(),
                    None => String::new(),
                };
                if !self.binding.args.switch("NoNewline") {
                    text.push_str(&it.limits.newline);
                }
                it.write_host_text(&text);
                Ok(())
            }
            "write-error" => {
                let message = match (&input, self.arg("Message")) {
                    (_, Some(m)) if from_arg => m.to_text(),
                    (Some(v), _) => v.to_text(),
                    (None, m) => m.map(|m| m.to_text()).unwrap_or_default(),
                };
                let category = self
                    .arg("Category")
                    .and_then(|c| super::error::ErrorCategory::from_name(&c.to_text()))
                    .unwrap_or(ErrorCategory::NotSpecified);
                let id = self.arg("ErrorId").map_or(
                    "Microsoft.PowerShell.Commands.WriteErrorException".into(),
                    |v| v.to_text(),
                );
                let mut record = ErrorRecord::new(
                    message,
                    "Microsoft.PowerShell.Commands.WriteErrorException",
                    category,
                    id,
                );
                if let Some(t) = self.arg("TargetObject") {
                    record = record.with_target(t);
                }
                record.command_name = Some(
                    it.current_function
                        .clone()
                        .unwrap_or_else(|| "Write-Error".into()),
                );
                record.position = Some(it.position(span.end));
                it.write_error(record, self.binding.common.error_action)
            }
            "write-warning" => {
                let message = if from_arg { self.arg("Message") } else { input };
                let enabled = match self.binding.common.warning_action {
                    Some(a) => a != super::host::ActionPreference::SilentlyContinue,
                    None => it.preference_enabled("WarningPreference"),
                };
                if enabled {
                    it.sink
                        .warning(&message.map(|m| m.to_text()).unwrap_or_default());
                }
                Ok(())
            }
            "write-verbose" | "write-debug" => {
                let message = if from_arg { self.arg("Message") } else { input };
                let verbose = self.name() == "write-verbose";
                let flag = if verbose {
                    self.binding.common.verbose
                } else {
                    self.binding.common.debug
                };
                let var = if verbose {
                    "VerbosePreference"
                } else {
                    "DebugPreference"
                };
                if flag.unwrap_or_else(|| it.preference_enabled(var)) {
                    let text = message.map(|m| m.to_text()).unwrap_or_default();
                    if verbose {
                        it.sink.verbose(&text);
                    } else {
                        it.sink.debug(&text);
                    }
                }
                Ok(())
            }
            "out-null" => Ok(()),
            "out-default" | "out-host" => {
                if let Some(v) = input {
                    let text = format::format_for_output(&v, &it.limits.newline);
                    it.write_host_text(&text);
                }
                Ok(())
            }
            "foreach-object" => {
                let (_, process, _) = self.foreach_blocks();
                if let Some(Value::ScriptBlock(p)) = process {
                    it.invoke_with_underscore(&p, Some(input.unwrap_or(Value::Null)), down)?;
                }
                Ok(())
            }
            "where-object" => {
                let Some(v) = input else { return Ok(()) };
                if let Some(filter) = self.block("FilterScript") {
                    let mut c = Collector::default();
                    it.invoke_with_underscore(&filter, Some(v.clone()), &mut c)?;
                    if unwrap_output(c.0).is_true() {
                        down.push(it, v)?;
                    }
                }
                Ok(())
            }
            "select-object" => {
                let Some(v) = input else { return Ok(()) };
                let first = self.arg("First").and_then(|f| ops::index_number(&f));
                let streaming = self.arg("Last").is_none() && !self.binding.args.switch("Unique");
                if streaming {
                    self.count += 1;
                    let skip = self
                        .arg("Skip")
                        .and_then(|s| ops::index_number(&s))
                        .unwrap_or(0);
                    if (self.count as i64) <= skip {
                        return Ok(());
                    }
                    if first.is_some_and(|f| (self.count as i64) > f + skip) {
                        return Ok(());
                    }
                    return self.select_one(it, v, down, span);
                }
                it.check_len(self.items.len() + 1)?;
                self.items.push(v);
                Ok(())
            }
            "sort-object" | "measure-object" | "group-object" | "out-string" => {
                if let Some(v) = input {
                    it.check_len(self.items.len() + 1)?;
                    self.items.push(v);
                }
                Ok(())
            }
            "new-object" => self.new_object(it, down, span),
            "format-list" => {
                let Some(v) = input else { return Ok(()) };
                let v = self.project(it, v, span)?;
                let nl = it.limits.newline.clone();
                let text = format::format_for_output(&v, &nl);
                let text = text.strip_suffix(nl.as_str()).unwrap_or(&text).to_owned();
                down.push(it, Value::from(text))
            }
            "add-member" => {
                let Some(target) = input else { return Ok(()) };
                let kind = self
                    .arg("MemberType")
                    .map(|m| m.to_text())
                    .unwrap_or_default();
                if !kind.eq_ignore_ascii_case("NoteProperty") {
                    return Err(it.error_at(
                        custom_error(
                            &self.info,
                            format!("The member type '{kind}' is not supported by this PowerShell interpreter; only NoteProperty is."),
                            "NotSupported",
                            ErrorCategory::NotImplemented,
                            "System.NotSupportedException",
                        ),
                        span,
                    ));
                }
                let name = self.arg("Name").map(|m| m.to_text()).unwrap_or_default();
                if let Value::Object(o) = &target {
                    if o.has(&name) && !self.binding.args.switch("Force") {
                        let record = custom_error(
                            &self.info,
                            format!(
                                "Cannot add a member with the name \"{name}\" because a member with that name already exists. If you want to overwrite the member anyway, use the Force parameter to overwrite it."
                            ),
                            "MemberAlreadyExists",
                            ErrorCategory::InvalidOperation,
                            "System.InvalidOperationException",
                        );
                        return Err(it.error_at(record, span));
                    }
                    o.set(&name, self.arg("Value").unwrap_or(Value::Null));
                }
                if self.binding.args.switch("PassThru") {
                    down.push(it, target)?;
                }
                Ok(())
            }
            "start-sleep" => {
                let duration = match (self.arg("Seconds"), self.arg("Milliseconds")) {
                    (Some(s), _) => Duration::from_secs(
                        u64::try_from(ops::index_number(&s).unwrap_or(0)).unwrap_or(0),
                    ),
                    (None, Some(ms)) => Duration::from_millis(
                        u64::try_from(ops::index_number(&ms).unwrap_or(0)).unwrap_or(0),
                    ),
                    _ => Duration::ZERO,
                };
                let stop = it.stop;
                if !it.host.sleep(duration, stop) {
                    return Err(Flow::Stopped);
                }
                Ok(())
            }
            "get-date" => {
                let ticks = match self.arg("Date") {
                    Some(Value::DateTime(t)) => t,
                    _ => it.host.now(),
                };
                let out = match self.arg("Format") {
                    Some(f) => Value::from(format::format_date(ticks, &f.to_text())),
                    None => Value::DateTime(ticks),
                };
                down.push(it, out)
            }
            "get-command" => self.get_command(it, down, span),
            _ => Ok(()),
        }
    }

    pub(crate) fn end(
        &mut self,
        it: &mut Interp<'_>,
        down: &mut dyn Downstream,
        span: Span,
    ) -> R<()> {
        let items = std::mem::take(&mut self.items);
        match self.name().as_str() {
            "foreach-object" => {
                if let (_, _, Some(Value::ScriptBlock(e))) = self.foreach_blocks() {
                    it.invoke_with_underscore(&e, None, down)?;
                }
                Ok(())
            }
            "out-string" => {
                let mut text = String::new();
                for item in &items {
                    text.push_str(&format::format_for_output(item, &it.limits.newline));
                    it.check_string(text.len())?;
                }
                if self.binding.args.switch("Stream") {
                    for line in text.lines() {
                        down.push(it, Value::from(line))?;
                    }
                    Ok(())
                } else {
                    down.push(it, Value::from(text))
                }
            }
            "select-object" => {
                let mut items = items;
                if self.binding.args.switch("Unique") {
                    let mut seen: Vec<String> = Vec::new();
                    items.retain(|v| {
                        let key = v.to_text();
                        if seen.contains(&key) {
                            false
                        } else {
                            seen.push(key);
                            true
                        }
                    });
                }
                let skip = self
                    .arg("Skip")
                    .and_then(|s| ops::index_number(&s))
                    .unwrap_or(0);
                let items: Vec<Value> = items
                    .into_iter()
                    .skip(usize::try_from(skip).unwrap_or(0))
                    .collect();
                let mut selected = items;
                if let Some(f) = self.arg("First").and_then(|f| ops::index_number(&f)) {
                    selected.truncate(usize::try_from(f).unwrap_or(0));
                }
                if let Some(l) = self.arg("Last").and_then(|f| ops::index_number(&f)) {
                    let l = usize::try_from(l).unwrap_or(0);
                    let start = selected.len().saturating_sub(l);
                    selected = selected.split_off(start);
                }
                for v in selected {
                    self.select_one(it, v, down, span)?;
                }
                Ok(())
            }
            "sort-object" => {
                let keys = self
                    .arg("Property")
                    .and_then(|p| p.as_array())
                    .unwrap_or_default();
                let descending = self.binding.args.switch("Descending");
                let case = if self.binding.args.switch("CaseSensitive") {
                    Case::Sensitive
                } else {
                    Case::Insensitive
                };
                let mut keyed: Vec<(Vec<Value>, Value)> = Vec::with_capacity(items.len());
                for v in items {
                    let mut k = Vec::new();
                    if keys.is_empty() {
                        k.push(v.clone());
                    }
                    for key in &keys {
                        k.push(self.property_value(it, &v, key, span)?);
                    }
                    keyed.push((k, v));
                }
                keyed.sort_by(|a, b| {
                    let ord =
                        a.0.iter()
                            .zip(b.0.iter())
                            .map(|(x, y)| {
                                ops::ordering(x, y, case).unwrap_or(std::cmp::Ordering::Equal)
                            })
                            .find(|o| *o != std::cmp::Ordering::Equal)
                            .unwrap_or(std::cmp::Ordering::Equal);
                    if descending { ord.reverse() } else { ord }
                });
                let unique = self.binding.args.switch("Unique");
                let mut last: Option<Vec<Value>> = None;
                for (k, v) in keyed {
                    if unique
                        && let Some(prev) = &last
                        && prev
                            .iter()
                            .zip(k.iter())
                            .all(|(a, b)| ops::equals(a, b, case))
                    {
                        continue;
                    }
                    last = Some(k);
                    down.push(it, v)?;
                }
                Ok(())
            }
            "measure-object" => {
                let props = self
                    .arg("Property")
                    .and_then(|p| p.as_array())
                    .unwrap_or_default();
                let prop = props.first().map(|p| p.to_text());
                let mut values = Vec::new();
                for v in &items {
                    let x = match &prop {
                        Some(p) => members::get_member(it, v, p, span)?,
                        None => v.clone(),
                    };
                    values.push(x);
                }
                let want = |n: &str| self.binding.args.switch(n);
                let numeric = want("Sum") || want("Average") || want("Maximum") || want("Minimum");
                let mut nums = Vec::new();
                if numeric {
                    for x in &values {
                        match super::convert::to_num(x) {
                            Ok(n) => nums.push(n.as_f64()),
                            Err(e) => {
                                return Err(it.error_at(
                                    custom_error(
                                        &self.info,
                                        e.message,
                                        "NonNumericInputObject",
                                        ErrorCategory::InvalidType,
                                        "System.Management.Automation.PSInvalidOperationException",
                                    ),
                                    span,
                                ));
                            }
                        }
                    }
                }
                let sum: f64 = nums.iter().sum();
                let opt = |on: bool, v: f64| {
                    if on && !nums.is_empty() {
                        Value::Double(v)
                    } else {
                        Value::Null
                    }
                };
                let max = nums.iter().copied().fold(f64::MIN, f64::max);
                let min = nums.iter().copied().fold(f64::MAX, f64::min);
                let obj = PsObject::new([
                    "Microsoft.PowerShell.Commands.GenericMeasureInfo",
                    "System.Object",
                ])
                .with(
                    "Count",
                    Value::Int(i32::try_from(values.len()).unwrap_or(i32::MAX)),
                )
                .with(
                    "Average",
                    opt(want("Average"), sum / nums.len().max(1) as f64),
                )
                .with("Sum", opt(want("Sum"), sum))
                .with("Maximum", opt(want("Maximum"), max))
                .with("Minimum", opt(want("Minimum"), min))
                .with("Property", prop.map_or(Value::Null, Value::from));
                down.push(it, Value::Object(obj))
            }
            "group-object" => {
                let keys = self
                    .arg("Property")
                    .and_then(|p| p.as_array())
                    .unwrap_or_default();
                let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
                for v in items {
                    let mut parts = Vec::new();
                    for key in &keys {
                        parts.push(self.property_value(it, &v, key, span)?.to_text());
                    }
                    let name = if keys.is_empty() {
                        v.to_text()
                    } else {
                        parts.join(", ")
                    };
                    match groups
                        .iter_mut()
                        .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                    {
                        Some((_, g)) => g.push(v),
                        None => groups.push((name, vec![v])),
                    }
                }
                for (name, group) in groups {
                    let obj =
                        PsObject::new(["Microsoft.PowerShell.Commands.GroupInfo", "System.Object"])
                            .with(
                                "Count",
                                Value::Int(i32::try_from(group.len()).unwrap_or(i32::MAX)),
                            )
                            .with("Name", name.as_str())
                            .with("Group", Value::from(group));
                    down.push(it, Value::Object(obj))?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A property by name (with wildcards not supported), script block, or calculated
    /// property hashtable.
    fn property_value(&self, it: &mut Interp<'_>, v: &Value, key: &Value, span: Span) -> R<Value> {
        match key {
            Value::ScriptBlock(sb) => {
                let mut c = Collector::default();
                it.invoke_with_underscore(sb, Some(v.clone()), &mut c)?;
                Ok(unwrap_output(c.0))
            }
            Value::Hashtable(h) => {
                let expr = h
                    .get_str("Expression")
                    .or_else(|| h.get_str("e"))
                    .unwrap_or(Value::Null);
                self.property_value(it, v, &expr, span)
            }
            other => members::get_member(it, v, &other.to_text(), span),
        }
    }

    fn select_one(
        &mut self,
        it: &mut Interp<'_>,
        v: Value,
        down: &mut dyn Downstream,
        span: Span,
    ) -> R<()> {
        if let Some(name) = self.arg("ExpandProperty") {
            let name = name.to_text();
            let has = match &v {
                Value::Object(o) => o.has(&name),
                Value::Hashtable(_) | Value::Null => false,
                other => !members::get_member(it, other, &name, span)?.is_null(),
            };
            if !has {
                let record = custom_error(
                    &self.info,
                    format!("Property \"{name}\" cannot be found."),
                    "ExpandPropertyNotFound",
                    ErrorCategory::InvalidArgument,
                    "System.Management.Automation.PSArgumentException",
                )
                .with_target(v);
                let mut record = record;
                record.position = Some(it.position(span.end));
                return it.write_error(record, self.binding.common.error_action);
            }
            let value = members::get_member(it, &v, &name, span)?;
            for item in enumerate(value) {
                down.push(it, item)?;
            }
            return Ok(());
        }
        let projected = self.project(it, v, span)?;
        down.push(it, projected)
    }

    /// The object with only the `-Property` properties (all of it without `-Property`).
    fn project(&self, it: &mut Interp<'_>, v: Value, span: Span) -> R<Value> {
        let Some(props) = self.arg("Property").and_then(|p| p.as_array()) else {
            return Ok(v);
        };
        let orig = v.type_name();
        let obj = PsObject::new([
            format!("Selected.{orig}"),
            PS_CUSTOM_OBJECT.into(),
            "System.Object".into(),
        ]);
        for p in props {
            match &p {
                Value::Hashtable(h) => {
                    let name = h
                        .get_str("Name")
                        .or_else(|| h.get_str("n"))
                        .or_else(|| h.get_str("Label"))
                        .or_else(|| h.get_str("l"))
                        .map(|n| n.to_text())
                        .unwrap_or_default();
                    let value = self.property_value(it, &v, &p, span)?;
                    obj.set(&name, value);
                }
                other => {
                    let name = other.to_text();
                    if name.contains('*') {
                        let re = ops::wildcard_regex(&name, Case::Insensitive).ok();
                        if let (Value::Object(src), Some(re)) = (&v, re) {
                            for (n, val) in src.properties() {
                                if re.is_match(&n) {
                                    obj.set(&n, val);
                                }
                            }
                        }
                    } else {
                        let value = members::get_member(it, &v, &name, span)?;
                        obj.set(&name, value);
                    }
                }
            }
        }
        Ok(Value::Object(obj))
    }

    fn new_object(&mut self, it: &mut Interp<'_>, down: &mut dyn Downstream, span: Span) -> R<()> {
        let type_name = self
            .arg("TypeName")
            .map(|t| t.to_text())
            .unwrap_or_default();
        let lower = type_name.to_ascii_lowercase();
        let lower = lower.strip_prefix("system.").unwrap_or(&lower);
        let value = match lower {
            "psobject" | "management.automation.psobject" | "object" => {
                let obj = PsObject::custom();
                if let Some(Value::Hashtable(h)) = self.arg("Property") {
                    for (k, v) in h.entries() {
                        obj.set(&k.to_text(), v);
                    }
                }
                Value::Object(obj)
            }
            "collections.hashtable" | "hashtable" => Value::Hashtable(Hashtable::new()),
            // PSCredential(string userName, SecureString password).
            "management.automation.pscredential" | "pscredential" => {
                let args = self
                    .arg("ArgumentList")
                    .map(|a| a.as_array().unwrap_or_else(|| vec![a.clone()]))
                    .unwrap_or_default();
                let secure = args.get(1).and_then(Value::as_object).filter(|o| {
                    o.type_names()
                        .first()
                        .is_some_and(|t| t == "System.Security.SecureString")
                });
                match (args.first(), secure, args.len()) {
                    (Some(user), Some(password), 2) => Value::Object(
                        PsObject::new([
                            "System.Management.Automation.PSCredential",
                            "System.Object",
                        ])
                        .with("UserName", Value::from(user.to_text()))
                        .with("Password", Value::Object(password.clone())),
                    ),
                    _ => {
                        let record = custom_error(
                            &self.info,
                            format!(
                                "Cannot find an overload for \"PSCredential\" and the argument count: \"{}\".",
                                args.len()
                            ),
                            "ConstructorInvokedThrowException",
                            ErrorCategory::InvalidOperation,
                            "System.Management.Automation.MethodException",
                        );
                        return Err(it.error_at(record, span));
                    }
                }
            }
            _ => {
                let record = custom_error(
                    &self.info,
                    format!("Cannot find type [{type_name}]: make sure the assembly containing this type is loaded."),
                    "TypeNotFound",
                    ErrorCategory::InvalidType,
                    "System.Management.Automation.PSArgumentException",
                )
                .with_target(Value::from(type_name.as_str()));
                return Err(it.error_at(record, span));
            }
        };
        down.push(it, value)
    }

    fn get_command(&mut self, it: &mut Interp<'_>, down: &mut dyn Downstream, span: Span) -> R<()> {
        let names = self
            .arg("Name")
            .and_then(|n| n.as_array())
            .unwrap_or_default();
        for name in names {
            let name = name.to_text();
            let canonical = resolve_alias(&name);
            let found = info(canonical)
                .map(|i| (i, "Cmdlet"))
                .or_else(|| it.host.command(&name).map(|i| (i, "Cmdlet")));
            match found {
                Some((ci, kind)) => {
                    let params = Hashtable::new();
                    for p in &ci.parameters {
                        let meta = PsObject::new([
                            "System.Management.Automation.ParameterMetadata",
                            "System.Object",
                        ])
                        .with("Name", p.name.as_str())
                        .with("ParameterType", p.ty.type_name())
                        .with(
                            "Aliases",
                            Value::from(
                                p.aliases
                                    .iter()
                                    .map(|a| Value::from(a.as_str()))
                                    .collect::<Vec<_>>(),
                            ),
                        )
                        .with("SwitchParameter", p.ty == super::host::ParamType::Switch);
                        params.insert(Value::from(p.name.as_str()), Value::Object(meta));
                    }
                    let obj = PsObject::with_display(
                        ["System.Management.Automation.CmdletInfo", "System.Object"],
                        ci.name.clone(),
                    )
                    .with("Name", ci.name.as_str())
                    .with("CommandType", kind)
                    .with("Definition", ci.name.as_str())
                    .with("ImplementingType", ci.full_name.as_str())
                    .with("Parameters", Value::Hashtable(params));
                    down.push(it, Value::Object(obj))?;
                }
                None => {
                    let mut record = command_not_found(&name);
                    record.fully_qualified_error_id =
                        format!("CommandNotFoundException,{}", self.info.full_name);
                    record.command_name = Some(self.info.name.clone());
                    record.position = Some(it.position(span.end));
                    it.write_error(record, self.binding.common.error_action)?;
                }
            }
        }
        Ok(())
    }
}
