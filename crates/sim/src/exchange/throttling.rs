//! Client throttling policies (New-/Get-/Set-/Remove-ThrottlingPolicy).
//!
//! Parameters per release (reference §2): the RTM list is that of Brian Desmond's dump
//! of an RTM default policy; Anonymous*, CPA*, EASMaxDevices,
//! EASMaxDeviceDeletesPerMonth, PowerShellMaxDestructiveCmdlets* and
//! PowerShellMaxTenantConcurrency are SP1+ (absent from that dump; inferred).
//! PowerShellMaxTenantConcurrency "can only be set for the default throttling policy", so
//! New-ThrottlingPolicy lacks it.
//!
//! Every value is a `Nullable<UInt32>` kept as a tri-state: not set (absent from the
//! bag), `$null` (no limit) or a number. Get-ThrottlingPolicy shows a policy's OWN values,
//! as real 2010 does: a number, or blank both for "not set" and for `$null` (the two
//! cannot be told apart from Get- output, which is why exctl should always write values
//! explicitly). The EFFECTIVE value (what the IMAP listener enforces) is the policy's own
//! number, unlimited for its own `$null`, and the default policy's value when not set
//! ("Any parameters that you omit inherit the values from the default throttling
//! policy", New-ThrottlingPolicy help).
//!
//! Default policy values: RTM from the Desmond dump (EAS 10, EWS 10,
//! EWSFastSearchTimeoutInSeconds 60, OWA 5, POP 20, PowerShell 18, RCA 20,
//! CPUStartPercent 75, everything else blank); SP1+ adds AnonymousMaxConcurrency 1,
//! EASMaxDevices 10, EASMaxDeviceDeletesPerMonth 20 and EWSFindCountLimit 1000 (SP1+
//! help). IMAPMaxConcurrency is blank (no limit) in every release.

use serde::{Deserialize, Serialize};

use super::clock::SimTime;
use super::props::{Bag, Kind, PropDef, def};
use super::sp::Sp;
use super::value::SimValue;

const CONC: Kind = Kind::NullableUInt {
    min: 0,
    max: 2_147_483_647,
};
const ANY: Kind = Kind::NullableUInt {
    min: 0,
    max: 4_294_967_295,
};
const PCT100: Kind = Kind::NullableUInt { min: 0, max: 100 };

/// Every policy parameter, in Get-ThrottlingPolicy order.
pub const TP_PROPS: &[PropDef] = &[
    def("AnonymousMaxConcurrency", CONC, Sp::Sp1),
    def("AnonymousPercentTimeInAD", ANY, Sp::Sp1),
    def("AnonymousPercentTimeInCAS", ANY, Sp::Sp1),
    def("AnonymousPercentTimeInMailboxRPC", ANY, Sp::Sp1),
    def("EASMaxConcurrency", CONC, Sp::Rtm),
    def("EASPercentTimeInAD", ANY, Sp::Rtm),
    def("EASPercentTimeInCAS", ANY, Sp::Rtm),
    def("EASPercentTimeInMailboxRPC", ANY, Sp::Rtm),
    def("EASMaxDevices", ANY, Sp::Sp1),
    def("EASMaxDeviceDeletesPerMonth", ANY, Sp::Sp1),
    def("EWSMaxConcurrency", CONC, Sp::Rtm),
    def("EWSPercentTimeInAD", ANY, Sp::Rtm),
    def("EWSPercentTimeInCAS", ANY, Sp::Rtm),
    def("EWSPercentTimeInMailboxRPC", ANY, Sp::Rtm),
    def("EWSMaxSubscriptions", ANY, Sp::Rtm),
    def("EWSFastSearchTimeoutInSeconds", ANY, Sp::Rtm),
    def("EWSFindCountLimit", ANY, Sp::Rtm),
    def("IMAPMaxConcurrency", CONC, Sp::Rtm),
    def("IMAPPercentTimeInAD", ANY, Sp::Rtm),
    def("IMAPPercentTimeInCAS", ANY, Sp::Rtm),
    def("IMAPPercentTimeInMailboxRPC", ANY, Sp::Rtm),
    def("OWAMaxConcurrency", CONC, Sp::Rtm),
    def("OWAPercentTimeInAD", ANY, Sp::Rtm),
    def("OWAPercentTimeInCAS", ANY, Sp::Rtm),
    def("OWAPercentTimeInMailboxRPC", ANY, Sp::Rtm),
    def("POPMaxConcurrency", CONC, Sp::Rtm),
    def("POPPercentTimeInAD", ANY, Sp::Rtm),
    def("POPPercentTimeInCAS", ANY, Sp::Rtm),
    def("POPPercentTimeInMailboxRPC", ANY, Sp::Rtm),
    def("PowerShellMaxConcurrency", CONC, Sp::Rtm),
    def("PowerShellMaxTenantConcurrency", PCT100, Sp::Sp1),
    def("PowerShellMaxCmdlets", ANY, Sp::Rtm),
    def("PowerShellMaxCmdletsTimePeriod", ANY, Sp::Rtm),
    def("ExchangeMaxCmdlets", ANY, Sp::Rtm),
    def("PowerShellMaxCmdletQueueDepth", ANY, Sp::Rtm),
    def("PowerShellMaxDestructiveCmdlets", ANY, Sp::Sp1),
    def("PowerShellMaxDestructiveCmdletsTimePeriod", ANY, Sp::Sp1),
    def("RCAMaxConcurrency", CONC, Sp::Rtm),
    def("RCAPercentTimeInAD", ANY, Sp::Rtm),
    def("RCAPercentTimeInCAS", ANY, Sp::Rtm),
    def("RCAPercentTimeInMailboxRPC", ANY, Sp::Rtm),
    def("CPAMaxConcurrency", CONC, Sp::Sp1),
    def("CPAPercentTimeInCAS", ANY, Sp::Sp1),
    def("CPAPercentTimeInMailboxRPC", ANY, Sp::Sp1),
    def("MessageRateLimit", ANY, Sp::Rtm),
    def("RecipientRateLimit", ANY, Sp::Rtm),
    def("ForwardeeLimit", ANY, Sp::Rtm),
    def("CPUStartPercent", PCT100, Sp::Rtm),
];

/// A parameter only the default policy has (not on New-ThrottlingPolicy).
pub const DEFAULT_ONLY: &[&str] = &["PowerShellMaxTenantConcurrency"];

/// One policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThrottlingPolicy {
    /// Its name (also its Identity).
    pub name: String,
    /// Its GUID.
    #[serde(default = "super::new_guid")]
    pub guid: String,
    /// True for the organization's default policy.
    #[serde(default)]
    pub is_default: bool,
    /// Values that are set; an absent name is "not set".
    #[serde(default)]
    pub values: Bag,
    /// WhenCreated.
    #[serde(default)]
    pub created: Option<SimTime>,
    /// WhenChanged.
    #[serde(default)]
    pub changed: Option<SimTime>,
}

/// The default policy Setup creates, for a release.
pub fn default_policy(sp: Sp, guid_suffix: &str, now: SimTime) -> ThrottlingPolicy {
    let mut values = Bag::default();
    for d in TP_PROPS.iter().filter(|d| d.since <= sp) {
        values.set(d, SimValue::Null);
    }
    let mut put = |name: &str, v: u32| {
        if let Some(d) = TP_PROPS.iter().find(|d| d.name == name && d.since <= sp) {
            values.set(d, SimValue::UInt(v));
        }
    };
    put("EASMaxConcurrency", 10);
    put("EWSMaxConcurrency", 10);
    put("EWSFastSearchTimeoutInSeconds", 60);
    put("OWAMaxConcurrency", 5);
    put("POPMaxConcurrency", 20);
    put("PowerShellMaxConcurrency", 18);
    put("RCAMaxConcurrency", 20);
    put("CPUStartPercent", 75);
    if sp >= Sp::Sp1 {
        put("AnonymousMaxConcurrency", 1);
        put("EASMaxDevices", 10);
        put("EASMaxDeviceDeletesPerMonth", 20);
        put("EWSFindCountLimit", 1000);
    }
    ThrottlingPolicy {
        name: format!("DefaultThrottlingPolicy_{guid_suffix}"),
        guid: super::new_guid(),
        is_default: true,
        values,
        created: Some(now),
        changed: Some(now),
    }
}

/// A limit as enforced: a number or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effective {
    /// No limit (`$null`).
    Unlimited,
    /// At most this many.
    Limit(u32),
}

/// The effective value of `name` for `policy` (see the module docs).
pub fn effective(
    policy: Option<&ThrottlingPolicy>,
    default: Option<&ThrottlingPolicy>,
    name: &str,
) -> Effective {
    let own = |p: &ThrottlingPolicy| match p.values.get(name) {
        None => None,
        Some(SimValue::UInt(n)) => Some(Effective::Limit(*n)),
        Some(other) => match other.as_i64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Some(Effective::Limit(n)),
            None => Some(Effective::Unlimited),
        },
    };
    policy
        .and_then(own)
        .or_else(|| default.and_then(own))
        .unwrap_or(Effective::Unlimited)
}
