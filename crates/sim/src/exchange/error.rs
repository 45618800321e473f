//! The errors model operations fail with, carrying what a PowerShell error record needs:
//! the message text, the category, the reason (the exception's short type name), the
//! target and the FullyQualifiedErrorId. The texts are Exchange's and Windows
//! PowerShell 2.0's own where they are known; each constructor says where its text comes
//! from, and which ones are reconstructions.

use std::fmt;

/// PowerShell's `ErrorCategory`, the ones the model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCategory {
    /// `NotSpecified` (Exchange's usual category for validation failures).
    NotSpecified,
    /// `InvalidArgument`.
    InvalidArgument,
    /// `InvalidData`.
    InvalidData,
    /// `InvalidOperation`.
    InvalidOperation,
    /// `ObjectNotFound`.
    ObjectNotFound,
    /// `ResourceExists`.
    ResourceExists,
    /// `ResourceUnavailable`.
    ResourceUnavailable,
}

impl ErrorCategory {
    /// The enum member name, as `CategoryInfo` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::NotSpecified => "NotSpecified",
            ErrorCategory::InvalidArgument => "InvalidArgument",
            ErrorCategory::InvalidData => "InvalidData",
            ErrorCategory::InvalidOperation => "InvalidOperation",
            ErrorCategory::ObjectNotFound => "ObjectNotFound",
            ErrorCategory::ResourceExists => "ResourceExists",
            ErrorCategory::ResourceUnavailable => "ResourceUnavailable",
        }
    }
}

impl fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed cmdlet, as an error record would describe it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExchangeError {
    /// The exception message (what `$error[0].Exception.Message` holds).
    pub message: String,
    /// `CategoryInfo.Category`.
    pub category: ErrorCategory,
    /// `CategoryInfo.Reason`: the exception's short type name.
    pub reason: String,
    /// `CategoryInfo.TargetName` (often empty for Exchange errors).
    pub target: String,
    /// `FullyQualifiedErrorId`.
    pub fully_qualified_error_id: String,
}

impl ExchangeError {
    /// A generic constructor.
    pub fn new(
        message: impl Into<String>,
        category: ErrorCategory,
        reason: &str,
        fully_qualified_error_id: impl Into<String>,
    ) -> Self {
        ExchangeError {
            message: message.into(),
            category,
            reason: reason.to_string(),
            target: String::new(),
            fully_qualified_error_id: fully_qualified_error_id.into(),
        }
    }

    /// Sets the target.
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = target.into();
        self
    }

    /// Sets the FullyQualifiedErrorId (the dispatcher fills in the cmdlet's class).
    pub fn with_fqid(mut self, fqid: impl Into<String>) -> Self {
        self.fully_qualified_error_id = fqid.into();
        self
    }

    /// Exchange's object-not-found text, verbatim from Exchange 2010:
    /// "The operation couldn't be performed because object 'X' couldn't be found on
    /// 'dc01.contoso.local'." (ManagementObjectNotFoundException).
    pub fn not_found(identity: &str, dc: &str) -> Self {
        Self::new(
            format!(
                "The operation couldn't be performed because object '{identity}' couldn't be found on '{dc}'."
            ),
            ErrorCategory::NotSpecified,
            "ManagementObjectNotFoundException",
            "",
        )
    }

    /// Several objects match an identity (ManagementObjectAmbiguousException).
    pub fn ambiguous(identity: &str) -> Self {
        Self::new(
            format!(
                "The operation couldn't be performed because '{identity}' matches multiple entries."
            ),
            ErrorCategory::NotSpecified,
            "ManagementObjectAmbiguousException",
            "",
        )
    }

    /// A value outside the range a property accepts. Exchange raises this from the
    /// property's RangedValueConstraint (DataValidationException). The exact 2010
    /// wording could not be retrieved; this text keeps the facts (property, bounds,
    /// value) and is produced in this one place so it can be corrected.
    pub fn out_of_range(property: &str, min: &str, max: &str, value: &str) -> Self {
        Self::new(
            format!(
                "The value of property '{property}' must be between {min} and {max} (inclusive). Value: {value}"
            ),
            ErrorCategory::NotSpecified,
            "DataValidationException",
            "",
        )
    }

    /// A value that is not valid for another reason (DataValidationException).
    pub fn invalid_value(message: impl Into<String>) -> Self {
        Self::new(
            message,
            ErrorCategory::NotSpecified,
            "DataValidationException",
            "",
        )
    }

    /// PowerShell's parameter binding failure for an unknown name (exact text).
    pub fn parameter_not_found(param: &str, cmdlet: &str) -> Self {
        Self::new(
            format!("A parameter cannot be found that matches parameter name '{param}'."),
            ErrorCategory::InvalidArgument,
            "ParameterBindingException",
            format!("NamedParameterNotFound,{cmdlet}"),
        )
    }

    /// PowerShell's text for missing mandatory parameters in a non-interactive host.
    pub fn missing_mandatory(params: &[&str], cmdlet: &str) -> Self {
        Self::new(
            format!(
                "Cannot process command because of one or more missing mandatory parameters: {}.",
                params.join(" ")
            ),
            ErrorCategory::InvalidArgument,
            "ParameterBindingException",
            format!("MissingMandatoryParameter,{cmdlet}"),
        )
    }

    /// PowerShell's argument transformation failure ("Cannot convert value ...").
    pub fn cannot_convert(param: &str, value: &str, type_name: &str, cmdlet: &str) -> Self {
        Self::cannot_convert_because(
            param,
            value,
            type_name,
            cmdlet,
            "Input string was not in a correct format.",
        )
    }

    /// The same failure with .NET's own reason, such as an overflow's "Value was either too
    /// large or too small for a UInt32." (mscorlib's `Overflow_UInt32`; `Overflow_Int32`
    /// says "an Int32").
    pub fn cannot_convert_because(
        param: &str,
        value: &str,
        type_name: &str,
        cmdlet: &str,
        reason: &str,
    ) -> Self {
        Self::new(
            format!(
                "Cannot process argument transformation on parameter '{param}'. Cannot convert value \"{value}\" to type \"{type_name}\". Error: \"{reason}\""
            ),
            ErrorCategory::InvalidData,
            "ParameterBindingArgumentTransformationException",
            format!("ParameterArgumentTransformationError,{cmdlet}"),
        )
    }

    /// PowerShell's ValidateSet failure for enum-typed parameters.
    pub fn not_in_set(param: &str, value: &str, allowed: &[&str], cmdlet: &str) -> Self {
        Self::new(
            format!(
                "Cannot process argument transformation on parameter '{param}'. Cannot convert value \"{value}\" to type \"{param}\". Error: \"Unable to match the identifier name {value} to a valid enumerator name.  Specify one of the following enumerator names and try again: {}\"",
                allowed.join(", ")
            ),
            ErrorCategory::InvalidData,
            "ParameterBindingArgumentTransformationException",
            format!("ParameterArgumentTransformationError,{cmdlet}"),
        )
    }

    /// A path the PowerShell provider cannot find (ItemNotFoundException, exact text).
    pub fn path_not_found(path: &str, command_class: &str) -> Self {
        Self::new(
            format!("Cannot find path '{path}' because it does not exist."),
            ErrorCategory::ObjectNotFound,
            "ItemNotFoundException",
            format!("PathNotFound,Microsoft.PowerShell.Commands.{command_class}"),
        )
        .with_target(path)
    }
}

/// The FullyQualifiedErrorId Exchange 2010 gives its task errors: an 8-digit hex code
/// and the task class. The real code is a hash we cannot recompute, so a stable one is
/// derived from the message kind; only known real codes are used verbatim.
pub fn exchange_fqid(code: Option<&str>, kind: &str, task_class: &str) -> String {
    let code = match code {
        Some(c) => c.to_string(),
        None => {
            // FNV-1a over the kind: stable across runs and platforms.
            let mut h: u32 = 0x811c_9dc5;
            for b in kind.bytes() {
                h ^= u32::from(b);
                h = h.wrapping_mul(0x0100_0193);
            }
            format!("{h:08X}")
        }
    };
    format!("{code},{task_class}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_texts() {
        let e = ExchangeError::not_found("nosuch", "dc01.contoso.local");
        assert_eq!(
            e.to_string(),
            "The operation couldn't be performed because object 'nosuch' couldn't be found on 'dc01.contoso.local'."
        );
        assert_eq!(e.reason, "ManagementObjectNotFoundException");
        let e = ExchangeError::parameter_not_found("CPAMaxConcurrency", "Set-ThrottlingPolicy");
        assert_eq!(
            e.message,
            "A parameter cannot be found that matches parameter name 'CPAMaxConcurrency'."
        );
        assert_eq!(
            e.fully_qualified_error_id,
            "NamedParameterNotFound,Set-ThrottlingPolicy"
        );
    }

    #[test]
    fn fqids_are_stable() {
        let a = exchange_fqid(None, "x", "Microsoft.Exchange.Management.T");
        assert_eq!(
            a,
            exchange_fqid(None, "x", "Microsoft.Exchange.Management.T")
        );
        assert!(a.ends_with(",Microsoft.Exchange.Management.T"));
        assert_eq!(a.find(','), Some(8));
    }
}
