//! `exctl exec --psrp`: one pipeline over PowerShell remoting, printed as PowerShell would.
//!
//! The script (or, with `--command`, a command with the parameters after `--`, for
//! NoLanguage endpoints such as Exchange's `Microsoft.Exchange`) runs in a runspace pool
//! of `--configuration`. Output objects print as `Out-String` shows them: primitives one
//! per line, other objects one `Name : Value` block each; `--format json` prints them as
//! JSON. Error records go to stderr with their position, category and
//! FullyQualifiedErrorId; `--verbose` adds warning, verbose and debug records. Exit: 0
//! when the pipeline completed without error records, 1 when it had some or failed, 255
//! for exctl's own failures (connection, authentication, usage).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use exctl_psrp::protocol::ServerEvent;
use exctl_psrp::{Command, PipelineSpec, PoolOptions, RunspacePool, Value};
use exctl_winrm::Client;

use crate::cli::{ExecArgs, ExecFormat};
use crate::credentials;
use crate::exit::ExitStatus;

#[derive(Debug, thiserror::Error)]
enum PsrpExecError {
    #[error(transparent)]
    Psrp(#[from] exctl_psrp::Error),
    #[error(transparent)]
    Winrm(#[from] exctl_winrm::Error),
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot read the script: {0}")]
    Script(std::io::Error),
    #[error("interrupted")]
    Interrupted,
    #[error("the pipeline did not finish within {0:?}; it was stopped")]
    Deadline(Duration),
}

pub async fn run(args: ExecArgs) -> ExitCode {
    match execute(&args).await {
        Ok(true) => ExitStatus::Success.into(),
        Ok(false) => ExitStatus::Failure.into(),
        Err(PsrpExecError::Interrupted) => {
            eprintln!("exctl: interrupted; the remote pipeline was stopped");
            ExitStatus::Interrupted.into()
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitStatus::ExecOwnFailure.into()
        }
    }
}

/// `--endpoint` with its path replaced by `--path`, when given.
fn endpoint(url: &str, path: Option<&str>) -> String {
    let Some(path) = path else {
        return url.to_string();
    };
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{}", path.trim_start_matches('/'))
}

/// A word after `--` typed as PowerShell's binder would take it from a command line.
pub fn typed_value(word: &str) -> Value {
    let quoted = |q: char| word.len() >= 2 && word.starts_with(q) && word.ends_with(q);
    if quoted('\'') || quoted('"') {
        return Value::Str(word[1..word.len() - 1].to_string());
    }
    if word.contains(',') {
        let items = split_list(word).iter().map(|w| typed_value(w)).collect();
        return Value::object(exctl_psrp::PsObject {
            type_names: vec![
                "System.Object[]".into(),
                "System.Array".into(),
                "System.Object".into(),
            ],
            list: Some(items),
            ..Default::default()
        });
    }
    match word.to_ascii_lowercase().as_str() {
        "$true" => return Value::Bool(true),
        "$false" => return Value::Bool(false),
        "$null" => return Value::Nil,
        _ => {}
    }
    if let Ok(i) = word.parse::<i32>() {
        return Value::I32(i);
    }
    if let Ok(i) = word.parse::<i64>() {
        return Value::I64(i);
    }
    if word.contains('.')
        && word
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
        && let Ok(d) = word.parse::<f64>()
    {
        return Value::Double(d);
    }
    Value::Str(word.to_string())
}

/// Splits `a,'b,c',d` at the commas outside quotes.
fn split_list(word: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in word.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (None, ',') => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn is_parameter_name(word: &str) -> bool {
    word.len() > 1
        && word.starts_with('-')
        && word[1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
}

/// `NAME -Param value -Switch positional` as a command with typed parameters.
pub fn command_of(name: &str, words: &[String]) -> Command {
    let mut cmd = Command::new(name);
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        if is_parameter_name(w) {
            let name = &w[1..];
            if let Some((n, v)) = name.split_once(':') {
                cmd = cmd.param(n, typed_value(v));
            } else if let Some(next) = words.get(i + 1).filter(|n| !is_parameter_name(n)) {
                cmd = cmd.param(name, typed_value(next));
                i += 1;
            } else {
                cmd = cmd.switch(name);
            }
        } else {
            cmd = cmd.positional(typed_value(w));
        }
        i += 1;
    }
    cmd
}

fn spec(args: &ExecArgs) -> Result<PipelineSpec, PsrpExecError> {
    if let Some(name) = &args.command {
        return Ok(PipelineSpec::command(command_of(name, &args.script)));
    }
    let script = match &args.file {
        Some(f) if f.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(PsrpExecError::Script)?;
            s
        }
        Some(f) => std::fs::read_to_string(f).map_err(PsrpExecError::Script)?,
        None if args.script.is_empty() => {
            return Err(PsrpExecError::Usage(
                "nothing to run: give the script after --, --file FILE, or --command NAME".into(),
            ));
        }
        None => args.script.join(" "),
    };
    Ok(PipelineSpec::script(script))
}

async fn execute(args: &ExecArgs) -> Result<bool, PsrpExecError> {
    let spec = spec(args)?;
    let c = &args.connect;
    // As for exec over WinRS: the inventory host's credential, else for Kerberos the
    // operator's ticket (or EXCTL_PASSWORD), else EXCTL_PASSWORD, the keyring or a prompt.
    let password = if let Some(p) = &args.host_password {
        p.clone()
    } else if matches!(
        c.auth,
        crate::cli::AuthArg::Kerberos | crate::cli::AuthArg::Negotiate
    ) {
        credentials::kerberos_password(c.keyring_entry.as_deref())
    } else {
        credentials::password(crate::exec::user_of(c), &crate::exec::keyring_entry(c))?
    };
    if c.insecure_skip_verify {
        eprintln!(
            "warning: TLS certificate verification is OFF for {}: anyone on the network path can read this session, credentials included",
            crate::exec::endpoint_of(c)
        );
    }
    let mut cfg = crate::exec::client_config(c, password);
    cfg.endpoint = endpoint(crate::exec::endpoint_of(c), args.path.as_deref());
    let client = Client::new(cfg)?;
    let mut pool =
        RunspacePool::open(&client, &PoolOptions::configuration(&args.configuration)).await?;
    let verbose = args.verbose;
    let format = args.format;
    let mut printed_any = false;
    let mut json_out: Vec<serde_json::Value> = Vec::new();
    let deadline = args.timeout.map(Duration::from_secs);
    let outcome = {
        let work = pool.run_with(&spec, |ev| {
            print_event(ev, format, verbose, &mut printed_any, &mut json_out)
        });
        let timed = async {
            match deadline {
                Some(d) => tokio::time::timeout(d, work)
                    .await
                    .unwrap_or(Err(exctl_psrp::Error::Deadline(d))),
                None => work.await,
            }
        };
        tokio::select! {
            r = timed => r.map_err(|e| match e {
                exctl_psrp::Error::Deadline(d) => PsrpExecError::Deadline(d),
                e => PsrpExecError::Psrp(e),
            }),
            _ = tokio::signal::ctrl_c() => Err(PsrpExecError::Interrupted),
        }
    };
    if outcome.is_err() {
        let _ = pool.stop_running().await;
    }
    if format == ExecFormat::Json {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::Value::Array(json_out)).unwrap_or_default()
        );
    }
    let result = outcome;
    if let Err(e) = pool.close().await
        && result.is_ok()
    {
        eprintln!("warning: the runspace pool could not be closed: {e}");
    }
    let result = result?;
    if let Some(f) = &result.failure {
        eprintln!("{}", f.render());
    }
    Ok(result.succeeded())
}

fn print_event(
    ev: &ServerEvent,
    format: ExecFormat,
    verbose: bool,
    printed_any: &mut bool,
    json_out: &mut Vec<serde_json::Value>,
) {
    match ev {
        ServerEvent::Output(v) => {
            let v = exctl_psrp::clixml::deserialized(v);
            match format {
                ExecFormat::Json => json_out.push(to_json(&v)),
                ExecFormat::Text => {
                    let text = out_string(&v, printed_any);
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(text.as_bytes());
                    let _ = out.flush();
                }
            }
        }
        ServerEvent::Error(e) => eprintln!("{}", e.render()),
        ServerEvent::Warning(w) if verbose => eprintln!("WARNING: {}", w.message),
        ServerEvent::Verbose(w) if verbose => eprintln!("VERBOSE: {}", w.message),
        ServerEvent::Debug(w) if verbose => eprintln!("DEBUG: {}", w.message),
        ServerEvent::Information(w) if verbose => eprintln!("{}", w.message),
        _ => {}
    }
}

fn is_property_bag(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        o.list.is_none()
            && o.dict.is_none()
            && !matches!(&o.value, Some(p) if !matches!(p, Value::Object(_)))
            && !o.properties().is_empty()
    })
}

/// How a property's value shows in a `Name : Value` line: collections as `{a, b}`.
fn short(v: &Value) -> String {
    match v.as_object() {
        Some(o) if o.list.is_some() => {
            let items: Vec<String> = o.list.iter().flatten().map(short).collect();
            format!("{{{}}}", items.join(", "))
        }
        _ => v.display(),
    }
}

/// One object as `Out-String` shows it (the list view of a property bag).
pub fn out_string(v: &Value, printed_any: &mut bool) -> String {
    if !is_property_bag(v) {
        if let Some(o) = v.as_object()
            && let Some(l) = &o.list
        {
            return l.iter().map(|i| out_string(i, printed_any)).collect();
        }
        *printed_any = true;
        return format!("{}\n", v.display());
    }
    let Some(o) = v.as_object() else {
        return String::new();
    };
    let props = o.properties();
    let width = props
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::from("\n");
    for (n, val) in props {
        out.push_str(&format!("{n:<width$} : {}\n", short(val)));
    }
    *printed_any = true;
    out
}

/// An object as JSON: primitives as themselves, objects with their type names and
/// properties.
pub fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::{Value as J, json};
    match v {
        Value::Nil => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::U8(_)
        | Value::I8(_)
        | Value::U16(_)
        | Value::I16(_)
        | Value::U32(_)
        | Value::I32(_)
        | Value::I64(_) => v.as_i64().map(J::from).unwrap_or(J::Null),
        Value::U64(u) => J::from(*u),
        Value::Double(d) => json!(d),
        Value::Single(d) => json!(d),
        Value::Object(o) => {
            if let Some(l) = &o.list {
                return J::Array(l.iter().map(to_json).collect());
            }
            if let Some(d) = &o.dict {
                let mut m = serde_json::Map::new();
                for (k, v) in d {
                    m.insert(k.display(), to_json(v));
                }
                return J::Object(m);
            }
            if let Some(p) = &o.value
                && !matches!(p, Value::Object(_))
            {
                // Enums: their name, as ConvertTo-Json with -EnumsAsStrings.
                return J::String(v.display());
            }
            let mut props = serde_json::Map::new();
            for (n, val) in o.properties() {
                props.insert(n.to_string(), to_json(val));
            }
            json!({
                "type_names": o.type_names,
                "to_string": o.to_string,
                "properties": props,
            })
        }
        other => J::String(other.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_typed_as_powershell_binds_them() {
        assert_eq!(typed_value("20"), Value::I32(20));
        assert_eq!(typed_value("5000000000"), Value::I64(5_000_000_000));
        assert_eq!(typed_value("$TRUE"), Value::Bool(true));
        assert_eq!(typed_value("'20'"), Value::str("20"));
        assert_eq!(typed_value("EX01"), Value::str("EX01"));
        let list = typed_value("a,'b,c',3");
        let items = list.as_object().unwrap().list.clone().unwrap();
        assert_eq!(
            items,
            vec![Value::str("a"), Value::str("b,c"), Value::I32(3)]
        );
        let cmd = command_of(
            "Set-ImapSettings",
            &[
                "-Server".into(),
                "EX01".into(),
                "-Force".into(),
                "-X:$false".into(),
                "pos".into(),
            ],
        );
        let names: Vec<Option<&str>> = cmd.parameters.iter().map(|p| p.name.as_deref()).collect();
        assert_eq!(names, [Some("Server"), Some("Force"), Some("X"), None]);
        assert_eq!(cmd.parameters[1].value, Value::Bool(true));
        assert_eq!(cmd.parameters[2].value, Value::Bool(false));
    }

    #[test]
    fn path_replaces_the_endpoints_path() {
        assert_eq!(
            endpoint("http://ex01:80/wsman", Some("PowerShell/")),
            "http://ex01:80/PowerShell/"
        );
        assert_eq!(endpoint("http://ex01/wsman", None), "http://ex01/wsman");
    }
}
