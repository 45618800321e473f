//! Parameter binding for commands declared with a [`CommandInfo`] (host commands and the
//! built-in cmdlets): named parameters by unique prefix or alias, switches, positional
//! arguments in position order, parameter sets, conversion to the declared types, mandatory
//! checks, and pipeline binding by value and by property name, with PowerShell's messages
//! and error ids.

use super::ast::Span;
use super::convert::{PsType, convert};
use super::error::{ErrorCategory, ErrorRecord};
use super::host::{
    ActionPreference, ArgumentError, BoundArguments, CommandInfo, Host, ParamType, ParameterInfo,
};
use super::value::Value;

/// An argument as written, after evaluation.
#[derive(Debug, Clone)]
pub(crate) enum ArgItem {
    /// `-Name`, `-Name:value` (value given), or a splatted `Name = value`.
    Named {
        name: String,
        value: Option<Value>,
        span: Span,
    },
    /// A positional argument.
    Positional { value: Value, span: Span },
}

/// The common parameters every cmdlet has.
#[derive(Debug, Clone, Default)]
pub(crate) struct Common {
    pub error_action: Option<ActionPreference>,
    pub warning_action: Option<ActionPreference>,
    pub verbose: Option<bool>,
    pub debug: Option<bool>,
    pub error_variable: Option<String>,
    pub out_variable: Option<String>,
}

/// The result of binding.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub args: BoundArguments,
    pub set: Option<String>,
    pub common: Common,
}

/// A binding failure: the record and where the marker goes.
#[derive(Debug)]
pub(crate) struct BindError {
    pub record: Box<ErrorRecord>,
    pub span: Option<Span>,
}

const COMMON: &[(&str, &str, bool)] = &[
    ("Verbose", "vb", true),
    ("Debug", "db", true),
    ("ErrorAction", "ea", false),
    ("WarningAction", "wa", false),
    ("ErrorVariable", "ev", false),
    ("WarningVariable", "wv", false),
    ("OutVariable", "ov", false),
    ("OutBuffer", "ob", false),
];

enum Resolved<'a> {
    Declared(&'a ParameterInfo),
    Common(&'static str, bool),
    ShouldProcess(&'static str),
}

impl Resolved<'_> {
    fn name(&self) -> &str {
        match self {
            Resolved::Declared(p) => &p.name,
            Resolved::Common(n, _) | Resolved::ShouldProcess(n) => n,
        }
    }

    fn is_switch(&self) -> bool {
        match self {
            Resolved::Declared(p) => p.ty == ParamType::Switch,
            Resolved::Common(_, switch) => *switch,
            Resolved::ShouldProcess(_) => true,
        }
    }

    fn type_name(&self) -> String {
        match self {
            Resolved::Declared(p) => p.ty.type_name(),
            Resolved::Common(n, _) if n.ends_with("Action") => {
                "System.Management.Automation.ActionPreference".into()
            }
            Resolved::Common("OutBuffer", _) => "System.Int32".into(),
            Resolved::Common(_, true) | Resolved::ShouldProcess(_) => {
                "System.Management.Automation.SwitchParameter".into()
            }
            Resolved::Common(..) => "System.String".into(),
        }
    }
}

pub(crate) fn binding_error(
    info: &CommandInfo,
    message: String,
    id: &str,
    span: Option<Span>,
) -> BindError {
    let mut record = ErrorRecord::new(
        message,
        "System.Management.Automation.ParameterBindingException",
        ErrorCategory::InvalidArgument,
        format!("{id},{}", info.full_name),
    );
    record.command_name = Some(info.name.clone());
    BindError {
        record: Box::new(record),
        span,
    }
}

fn resolve<'a>(info: &'a CommandInfo, name: &str, span: Span) -> Result<Resolved<'a>, BindError> {
    let exact = |n: &str| n.eq_ignore_ascii_case(name);
    for p in &info.parameters {
        if exact(&p.name) || p.aliases.iter().any(|a| exact(a)) {
            return Ok(Resolved::Declared(p));
        }
    }
    for (n, alias, switch) in COMMON {
        if exact(n) || exact(alias) {
            return Ok(Resolved::Common(n, *switch));
        }
    }
    if info.supports_should_process {
        for (n, alias) in [("WhatIf", "wi"), ("Confirm", "cf")] {
            if exact(n) || exact(alias) {
                return Ok(Resolved::ShouldProcess(n));
            }
        }
    }
    let lower = name.to_ascii_lowercase();
    let prefix = |n: &str| n.to_ascii_lowercase().starts_with(&lower);
    let mut matches: Vec<Resolved<'a>> = Vec::new();
    for p in &info.parameters {
        if prefix(&p.name) || p.aliases.iter().any(|a| prefix(a)) {
            matches.push(Resolved::Declared(p));
        }
    }
    for (n, _, switch) in COMMON {
        if prefix(n) {
            matches.push(Resolved::Common(n, *switch));
        }
    }
    if info.supports_should_process {
        for n in ["WhatIf", "Confirm"] {
            if prefix(n) {
                matches.push(Resolved::ShouldProcess(n));
            }
        }
    }
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => Err(binding_error(
            info,
            format!("A parameter cannot be found that matches parameter name '{name}'."),
            "NamedParameterNotFound",
            Some(span),
        )),
        _ => {
            let names: Vec<String> = matches.iter().map(|m| format!("-{}", m.name())).collect();
            Err(binding_error(
                info,
                format!(
                    "Parameter cannot be processed because the parameter name '{name}' is ambiguous. Possible matches include: {}.",
                    names.join(" ")
                ),
                "AmbiguousParameter",
                Some(span),
            ))
        }
    }
}

fn action(
    info: &CommandInfo,
    name: &str,
    v: &Value,
    span: Span,
) -> Result<ActionPreference, BindError> {
    ActionPreference::parse(&v.to_text()).ok_or_else(|| {
        binding_error(
            info,
            format!(
                "Cannot bind parameter '{name}'. Cannot convert value \"{}\" to type \"System.Management.Automation.ActionPreference\" due to invalid enumeration values. Specify one of the following enumeration values and try again. The possible enumeration values are \"SilentlyContinue, Stop, Continue, Inquire\".",
                v.to_text()
            ),
            "CannotConvertArgumentNoMessage",
            Some(span),
        )
    })
}

/// Converts an argument to a declared parameter's type.
pub(crate) fn convert_param(
    info: &CommandInfo,
    p: &ParameterInfo,
    v: Value,
    host: &mut dyn Host,
    span: Span,
) -> Result<Value, BindError> {
    if v.is_null()
        && p.mandatory
        && !matches!(
            p.ty,
            ParamType::Any | ParamType::Switch | ParamType::Nullable(_)
        )
    {
        return Err(binding_error(
            info,
            format!(
                "Cannot bind argument to parameter '{}' because it is null.",
                p.name
            ),
            "ParameterArgumentValidationErrorNullNotAllowed",
            Some(span),
        ));
    }
    convert_type(info, &p.name, &p.ty, p.mandatory, v, host, span)
}

fn convert_type(
    info: &CommandInfo,
    name: &str,
    ty: &ParamType,
    mandatory: bool,
    v: Value,
    host: &mut dyn Host,
    span: Span,
) -> Result<Value, BindError> {
    let fail = |message: String| {
        binding_error(
            info,
            format!("Cannot bind parameter '{name}'. {message}"),
            "CannotConvertArgumentNoMessage",
            Some(span),
        )
    };
    let ps = |t: PsType, v: &Value| convert(v, &t).map_err(|e| fail(e.message));
    match ty {
        ParamType::Any => Ok(v),
        ParamType::String => {
            if v.is_null() {
                return Ok(Value::Null);
            }
            let text = v.to_text();
            if mandatory && text.is_empty() {
                return Err(binding_error(
                    info,
                    format!(
                        "Cannot bind argument to parameter '{name}' because it is an empty string."
                    ),
                    "ParameterArgumentValidationErrorEmptyStringNotAllowed",
                    Some(span),
                ));
            }
            Ok(match v {
                Value::String(_) => v,
                _ => Value::from(text),
            })
        }
        ParamType::Bool => match v {
            Value::Bool(_) => Ok(v),
            Value::Int(_) | Value::Long(_) | Value::Double(_) => Ok(Value::Bool(v.is_true())),
            other => Err(fail(format!(
                "Cannot convert value \"{}\" to type \"System.Boolean\", parameters of this type only accept booleans or numbers, use $true, $false, 1 or 0 instead.",
                other.type_name()
            ))),
        },
        ParamType::Switch => Ok(Value::Bool(v.is_true())),
        ParamType::Int => ps(PsType::Int, &v),
        ParamType::Long => ps(PsType::Long, &v),
        ParamType::UInt32 => ps(PsType::UInt32, &v),
        ParamType::Double => ps(PsType::Double, &v),
        ParamType::Hashtable => ps(PsType::Hashtable, &v),
        ParamType::ScriptBlock => ps(PsType::ScriptBlock, &v),
        ParamType::TimeSpan => ps(PsType::TimeSpan, &v),
        ParamType::DateTime => ps(PsType::DateTime, &v),
        ParamType::Array(inner) => {
            if v.is_null() {
                return Ok(Value::Null);
            }
            let items = v.as_array().unwrap_or_else(|| vec![v.clone()]);
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(convert_type(info, name, inner, false, item, host, span)?);
            }
            Ok(Value::from(out))
        }
        ParamType::Nullable(inner) => {
            if v.is_null() {
                return Ok(Value::Null);
            }
            convert_type(info, name, inner, mandatory, v, host, span)
        }
        ParamType::Custom(type_name) => match host.convert_argument(type_name, &v) {
            Ok(converted) => Ok(converted),
            Err(ArgumentError::Conversion(detail)) => Err(fail(format!(
                "Cannot convert value \"{}\" to type \"{type_name}\". Error: \"{detail}\"",
                v.to_text()
            ))),
            Err(ArgumentError::Message(message)) => Err(binding_error(
                info,
                message,
                "ParameterArgumentTransformationError",
                Some(span),
            )),
        },
    }
}

fn compatible_sets(info: &CommandInfo, args: &BoundArguments) -> Vec<Option<String>> {
    let sets = info.sets();
    if sets.is_empty() {
        return vec![None];
    }
    sets.into_iter()
        .filter(|s| {
            args.iter().all(|(name, _)| {
                info.parameters
                    .iter()
                    .find(|p| p.name.eq_ignore_ascii_case(name))
                    .is_none_or(|p| p.belongs_to(Some(s)))
            })
        })
        .map(Some)
        .collect()
}

fn missing_mandatory(
    info: &CommandInfo,
    args: &BoundArguments,
    set: Option<&str>,
    defer_pipeline: bool,
) -> Vec<String> {
    info.parameters
        .iter()
        .filter(|p| p.mandatory && p.belongs_to(set) && !args.contains(&p.name))
        .filter(|p| !(defer_pipeline && (p.from_pipeline || p.from_pipeline_by_property_name)))
        .map(|p| p.name.clone())
        .collect()
}

fn choose_set(
    info: &CommandInfo,
    args: &BoundArguments,
    candidates: &[Option<String>],
    defer_pipeline: bool,
    span: Span,
) -> Result<Option<String>, BindError> {
    if candidates.is_empty() {
        return Err(binding_error(
            info,
            "Parameter set cannot be resolved using the specified named parameters.".into(),
            "AmbiguousParameterSet",
            Some(span),
        ));
    }
    if let [only] = candidates {
        return Ok(only.clone());
    }
    let satisfied: Vec<&Option<String>> = candidates
        .iter()
        .filter(|s| missing_mandatory(info, args, s.as_deref(), defer_pipeline).is_empty())
        .collect();
    let default = info.default_parameter_set.as_deref();
    let is_default = |s: &&Option<String>| {
        s.as_deref()
            .is_some_and(|s| default.is_some_and(|d| d.eq_ignore_ascii_case(s)))
    };
    match satisfied.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Ok(candidates
            .iter()
            .find(|s| is_default(s))
            .or(candidates.first())
            .cloned()
            .flatten()),
        many => match many.iter().find(|s| is_default(s)) {
            Some(s) => Ok((*s).clone()),
            None => Err(binding_error(
                info,
                "Parameter set cannot be resolved using the specified named parameters.".into(),
                "AmbiguousParameterSet",
                Some(span),
            )),
        },
    }
}

/// Binds the arguments of one command invocation. `has_input` defers mandatory parameters
/// that take pipeline input to [`bind_pipeline`].
pub(crate) fn bind(
    info: &CommandInfo,
    items: Vec<ArgItem>,
    host: &mut dyn Host,
    has_input: bool,
    name_span: Span,
) -> Result<Binding, BindError> {
    let mut args = BoundArguments::default();
    let mut common = Common::default();
    let mut positional: Vec<(Value, Span)> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut items = items.into_iter().peekable();
    while let Some(item) = items.next() {
        match item {
            ArgItem::Positional { value, span } => positional.push((value, span)),
            ArgItem::Named { name, value, span } => {
                let resolved = resolve(info, &name, span)?;
                let canonical = resolved.name().to_owned();
                let value = match value {
                    Some(v) => v,
                    None if resolved.is_switch() => Value::Bool(true),
                    None => match items.peek() {
                        Some(ArgItem::Positional { .. }) => match items.next() {
                            Some(ArgItem::Positional { value, .. }) => value,
                            _ => Value::Null,
                        },
                        _ => {
                            return Err(binding_error(
                                info,
                                format!(
                                    "Missing an argument for parameter '{canonical}'. Specify a parameter of type '{}' and try again.",
                                    resolved.type_name()
                                ),
                                "MissingArgument",
                                Some(span),
                            ));
                        }
                    },
                };
                if seen.iter().any(|s| s.eq_ignore_ascii_case(&canonical)) {
                    return Err(binding_error(
                        info,
                        format!(
                            "Cannot bind parameter because parameter '{canonical}' is specified more than once. To provide multiple values to parameters that can accept multiple values, use the array syntax. For example, \"-parameter value1,value2,value3\"."
                        ),
                        "ParameterAlreadyBound",
                        Some(span),
                    ));
                }
                seen.push(canonical.clone());
                match resolved {
                    Resolved::Declared(p) => {
                        let v = convert_param(info, p, value, host, span)?;
                        args.set(&p.name, v);
                    }
                    Resolved::ShouldProcess(n) => args.set(n, Value::Bool(value.is_true())),
                    Resolved::Common(n, _) => match n {
                        "ErrorAction" => common.error_action = Some(action(info, n, &value, span)?),
                        "WarningAction" => {
                            common.warning_action = Some(action(info, n, &value, span)?);
                        }
                        "Verbose" => common.verbose = Some(value.is_true()),
                        "Debug" => common.debug = Some(value.is_true()),
                        "ErrorVariable" => common.error_variable = Some(value.to_text()),
                        "OutVariable" => common.out_variable = Some(value.to_text()),
                        _ => {}
                    },
                }
            }
        }
    }
    let mut candidates = compatible_sets(info, &args);
    if candidates.is_empty() {
        return Err(binding_error(
            info,
            "Parameter set cannot be resolved using the specified named parameters.".into(),
            "AmbiguousParameterSet",
            Some(name_span),
        ));
    }
    let mut remaining: Vec<Value> = Vec::new();
    for (value, span) in positional {
        let mut by_position: Vec<&ParameterInfo> = info
            .parameters
            .iter()
            .filter(|p| p.position.is_some() && !args.contains(&p.name))
            .filter(|p| candidates.iter().any(|s| p.belongs_to(s.as_deref())))
            .collect();
        by_position.sort_by_key(|p| p.position);
        if let Some(p) = by_position.first() {
            let v = convert_param(info, p, value, host, span)?;
            args.set(&p.name, v);
            candidates = compatible_sets(info, &args);
        } else if info.parameters.iter().any(|p| p.remaining_arguments) {
            remaining.push(value);
        } else {
            return Err(binding_error(
                info,
                format!(
                    "A positional parameter cannot be found that accepts argument '{}'.",
                    value.to_text()
                ),
                "PositionalParameterNotFound",
                Some(span),
            ));
        }
    }
    if !remaining.is_empty()
        && let Some(p) = info.parameters.iter().find(|p| p.remaining_arguments)
    {
        let mut all = match args.get(&p.name) {
            Some(existing) => existing
                .as_array()
                .unwrap_or_else(|| vec![existing.clone()]),
            None => Vec::new(),
        };
        all.extend(remaining);
        args.set(&p.name, Value::from(all));
    }
    let set = choose_set(info, &args, &candidates, has_input, name_span)?;
    let missing = missing_mandatory(info, &args, set.as_deref(), has_input);
    if !missing.is_empty() {
        return Err(binding_error(
            info,
            format!(
                "Cannot process command because of one or more missing mandatory parameters: {}.",
                missing.join(" ")
            ),
            "MissingMandatoryParameter",
            Some(name_span),
        ));
    }
    Ok(Binding { args, set, common })
}

/// Binds one pipeline object on top of a static binding.
pub(crate) fn bind_pipeline(
    info: &CommandInfo,
    base: &Binding,
    input: &Value,
    host: &mut dyn Host,
    name_span: Span,
) -> Result<Binding, BindError> {
    let mut binding = base.clone();
    let candidates = compatible_sets(info, &binding.args);
    let eligible = |p: &&ParameterInfo| {
        !binding.args.contains(&p.name) && candidates.iter().any(|s| p.belongs_to(s.as_deref()))
    };
    let mut bound_any = false;
    let by_value: Vec<&ParameterInfo> = info
        .parameters
        .iter()
        .filter(|p| p.from_pipeline)
        .filter(eligible)
        .collect();
    for p in by_value {
        if let Ok(v) = convert_param(info, p, input.clone(), host, name_span) {
            binding.args.set(&p.name, v);
            bound_any = true;
            break;
        }
    }
    if !bound_any && let Value::Object(obj) = input {
        let by_name: Vec<&ParameterInfo> = info
            .parameters
            .iter()
            .filter(|p| p.from_pipeline_by_property_name && !binding.args.contains(&p.name))
            .collect();
        for p in by_name {
            let found = std::iter::once(&p.name)
                .chain(p.aliases.iter())
                .find_map(|n| obj.get(n));
            if let Some(v) = found {
                let v = convert_param(info, p, v, host, name_span)?;
                binding.args.set(&p.name, v);
                bound_any = true;
            }
        }
    }
    if !bound_any {
        let mut err = binding_error(
            info,
            "The input object cannot be bound to any parameters for the command either because the command does not take pipeline input or the input and its properties do not match any of the parameters that take pipeline input.".into(),
            "InputObjectNotBound",
            Some(name_span),
        );
        err.record = Box::new(err.record.with_target(input.clone()));
        return Err(err);
    }
    let candidates = compatible_sets(info, &binding.args);
    let set = choose_set(info, &binding.args, &candidates, false, name_span)?;
    let missing = missing_mandatory(info, &binding.args, set.as_deref(), false);
    if !missing.is_empty() {
        return Err(binding_error(
            info,
            format!(
                "Cannot process command because of one or more missing mandatory parameters: {}.",
                missing.join(" ")
            ),
            "MissingMandatoryParameter",
            Some(name_span),
        ));
    }
    binding.set = set;
    Ok(binding)
}
