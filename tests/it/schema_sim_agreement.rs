//! The schema (what `validate` accepts) and the simulator (what its Exchange binds) agree
//! on every parameter of every settings cmdlet, per Exchange 2010 release: the same names,
//! the same types, the same ranges where both declare one, the same enumeration values. A
//! parameter the schema deliberately leaves alone must still be one the simulator has.
//! Every disagreement is named in the failure message.

use std::collections::BTreeMap;

use exctl_exchange::kinds::{cmdlet_parameters, settings_cmdlets};
use exctl_exchange::value::ParamType;
use exctl_exchange::version::Version;
use exctl_sim::exchange::Sp;
use exctl_sim::exchange::props::Kind;
use exctl_sim::exchange::sp;

fn sim_release(v: Version) -> Sp {
    match v {
        Version::Rtm => Sp::Rtm,
        Version::Sp1 => Sp::Sp1,
        Version::Sp2 => Sp::Sp2,
        Version::Sp3 => Sp::Sp3,
    }
}

/// The type class and the enumeration values of a schema type.
fn schema_class(t: &ParamType) -> (&'static str, Vec<String>) {
    let names = |l: &[&str]| l.iter().map(|n| n.to_ascii_lowercase()).collect();
    match t {
        ParamType::Int(_) => ("Int32", Vec::new()),
        ParamType::UnlimitedInt(_) => ("Unlimited<Int32>", Vec::new()),
        ParamType::NullableInt(_) => ("Nullable<UInt32>", Vec::new()),
        ParamType::Bool => ("Boolean", Vec::new()),
        ParamType::Str | ParamType::StrIgnoreCase => ("String", Vec::new()),
        ParamType::Enum(l) => ("Enum", names(l)),
        ParamType::Flags(l) => ("Flags", names(l)),
        ParamType::TimeSpan(_) => ("EnhancedTimeSpan", Vec::new()),
        ParamType::Bytes(_) => ("ByteQuantifiedSize", Vec::new()),
        ParamType::UnlimitedBytes(_) => ("Unlimited<ByteQuantifiedSize>", Vec::new()),
        ParamType::StrList => ("MultiValuedProperty", Vec::new()),
    }
}

/// The same for a simulator type (its enumerations keep an empty placeholder at 0 where
/// Exchange's numbering starts at 1).
fn sim_class(k: Kind) -> (&'static str, Vec<String>) {
    let names = |l: &[&str]| {
        l.iter()
            .filter(|n| !n.is_empty())
            .map(|n| n.to_ascii_lowercase())
            .collect()
    };
    match k {
        Kind::Int { .. } => ("Int32", Vec::new()),
        Kind::Unlimited { .. } => ("Unlimited<Int32>", Vec::new()),
        Kind::NullableUInt { .. } => ("Nullable<UInt32>", Vec::new()),
        Kind::Bool => ("Boolean", Vec::new()),
        Kind::Str => ("String", Vec::new()),
        Kind::Enum(l) => ("Enum", names(l)),
        Kind::Flags(l) => ("Flags", names(l)),
        Kind::Span { .. } => ("EnhancedTimeSpan", Vec::new()),
        Kind::Bytes { .. } => ("ByteQuantifiedSize", Vec::new()),
        Kind::UnlimitedBytes => ("Unlimited<ByteQuantifiedSize>", Vec::new()),
        Kind::Multi => ("MultiValuedProperty", Vec::new()),
    }
}

/// Every disagreement between the two sides for one cmdlet in one release.
fn disagreements(cmdlet: &str, v: Version) -> Vec<String> {
    let at = format!("{cmdlet} in {v}");
    let Some(schema) = cmdlet_parameters(cmdlet, v) else {
        return vec![format!("{at}: the schema does not know the cmdlet")];
    };
    let Some(sim) = sp::parameters(sim_release(v), cmdlet) else {
        return vec![format!("{at}: the simulator does not know the cmdlet")];
    };
    let sim: BTreeMap<String, Kind> = sim
        .iter()
        .map(|p| (p.name.to_ascii_lowercase(), p.kind))
        .collect();
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for p in &schema.managed {
        let key = p.name.to_ascii_lowercase();
        seen.push(key.clone());
        let Some(k) = sim.get(&key) else {
            out.push(format!(
                "{at}: {} is accepted by the schema but not by the simulator",
                p.name
            ));
            continue;
        };
        let (sc, se) = schema_class(&p.ty);
        let (mc, me) = sim_class(*k);
        if sc != mc {
            out.push(format!(
                "{at}: {} is {sc} in the schema, {mc} in the simulator",
                p.name
            ));
        } else if se != me {
            out.push(format!(
                "{at}: {} takes {se:?} in the schema, {me:?} in the simulator",
                p.name
            ));
        }
        if let (Some(a), Some(b)) = (p.ty.range(), k.range())
            && a != b
        {
            out.push(format!(
                "{at}: {} ranges {}..={} in the schema, {}..={} in the simulator",
                p.name, a.0, a.1, b.0, b.1
            ));
        }
    }
    for (name, _why) in &schema.not_managed {
        let key = name.to_ascii_lowercase();
        seen.push(key.clone());
        if !sim.contains_key(&key) {
            out.push(format!(
                "{at}: {name} is listed as not managed by the schema but the simulator has no such parameter"
            ));
        }
    }
    for (key, _) in sim {
        if !seen.contains(&key) {
            out.push(format!(
                "{at}: {key} is accepted by the simulator but unknown to the schema"
            ));
        }
    }
    out
}

#[test]
fn schema_and_simulator_agree_on_every_parameter_per_release() {
    let mut all = Vec::new();
    for v in Version::ALL {
        for c in settings_cmdlets() {
            all.extend(disagreements(c.cmdlet, v));
        }
    }
    assert!(
        all.is_empty(),
        "{} disagreements between the schema and the simulator:\n{}",
        all.len(),
        all.join("\n")
    );
}

#[test]
fn both_sides_list_the_same_settings_cmdlets() {
    // The registry lists them in kind order, the simulator in its own.
    let mut ours: Vec<&str> = settings_cmdlets().iter().map(|c| c.cmdlet).collect();
    let mut sim = sp::settings_cmdlets();
    ours.sort_unstable();
    sim.sort_unstable();
    assert_eq!(ours, sim);
    assert!(cmdlet_parameters("Get-Mailbox", Version::Sp3).is_none());
    assert!(sp::parameters(Sp::Sp3, "Get-Mailbox").is_none());
}

/// The check itself finds what it is meant to find (a name, a range, an enumeration value).
#[test]
fn the_check_names_each_kind_of_disagreement() {
    // On RTM the simulator has none of the SP1 throttling parameters: the schema must not
    // either, which the full check covers; here a synthetic comparison of two types.
    assert_ne!(
        schema_class(&ParamType::Enum(&["None", "Allow"])),
        sim_class(Kind::Enum(&["None", "Allow", "Require"]))
    );
    assert_eq!(
        schema_class(&ParamType::Enum(&["iCalendar", "IntranetUrl"])),
        sim_class(Kind::Enum(&["", "icalendar", "intranetUrl"]))
    );
    assert_ne!(
        ParamType::Int(40..=16_384).range(),
        Kind::Int { min: 40, max: 1024 }.range()
    );
}
