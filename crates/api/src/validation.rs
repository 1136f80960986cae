//! Field errors (`field.ErrorList` in Kubernetes) and the name rules every object shares.

use std::fmt;

/// The kind of a field error, with Kubernetes' wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Required,
    Invalid,
    Duplicate,
    Forbidden,
    NotSupported,
    TooLong,
    NotFound,
}

impl ErrorKind {
    fn text(self) -> &'static str {
        match self {
            ErrorKind::Required => "Required value",
            ErrorKind::Invalid => "Invalid value",
            ErrorKind::Duplicate => "Duplicate value",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::NotSupported => "Unsupported value",
            ErrorKind::TooLong => "Too long",
            ErrorKind::NotFound => "Not found",
        }
    }

    pub fn cause_reason(self) -> &'static str {
        match self {
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Invalid => "FieldValueInvalid",
            ErrorKind::Duplicate => "FieldValueDuplicate",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::NotSupported => "FieldValueNotSupported",
            ErrorKind::TooLong => "FieldValueTooLong",
            ErrorKind::NotFound => "FieldValueNotFound",
        }
    }

    /// Whether the bad value is printed after the kind.
    fn shows_value(self) -> bool {
        matches!(
            self,
            ErrorKind::Invalid
                | ErrorKind::Duplicate
                | ErrorKind::NotSupported
                | ErrorKind::NotFound
        )
    }
}

/// A value as Go's `%#v`-like quoting in field errors prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadValue {
    Str(String),
    Int(i64),
    /// Printed verbatim.
    Raw(String),
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadValue::Str(s) => write!(f, "{}", go_quote(s)),
            BadValue::Int(i) => write!(f, "{i}"),
            BadValue::Raw(s) => f.write_str(s),
        }
    }
}

/// Quotes a string as Go's `%q` does for printable text.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub kind: ErrorKind,
    pub field: String,
    pub value: Option<BadValue>,
    pub detail: String,
}

impl FieldError {
    /// The message without the field path: `Invalid value: "x": detail`.
    pub fn body(&self) -> String {
        let mut s = self.kind.text().to_string();
        if self.kind.shows_value() {
            if let Some(v) = &self.value {
                s.push_str(&format!(": {v}"));
            }
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// An ordered list of field errors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorList(Vec<FieldError>);

impl ErrorList {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn iter(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter()
    }
    /// The same errors, each field path under `prefix` (`spec.template`).
    pub fn under(self, prefix: &str) -> ErrorList {
        ErrorList(
            self.0
                .into_iter()
                .map(|mut e| {
                    e.field = format!("{prefix}.{}", e.field);
                    e
                })
                .collect(),
        )
    }
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }
    pub fn extend(&mut self, other: ErrorList) {
        self.0.extend(other.0);
    }

    pub fn required(&mut self, field: impl Into<String>, detail: impl Into<String>) {
        self.push(FieldError {
            kind: ErrorKind::Required,
            field: field.into(),
            value: None,
            detail: detail.into(),
        });
    }
    pub fn invalid(
        &mut self,
        field: impl Into<String>,
        value: BadValue,
        detail: impl Into<String>,
    ) {
        self.push(FieldError {
            kind: ErrorKind::Invalid,
            field: field.into(),
            value: Some(value),
            detail: detail.into(),
        });
    }
    pub fn duplicate(&mut self, field: impl Into<String>, value: BadValue) {
        self.push(FieldError {
            kind: ErrorKind::Duplicate,
            field: field.into(),
            value: Some(value),
            detail: String::new(),
        });
    }
    /// `field: Too long: must have at most MAX bytes`.
    pub fn too_long(&mut self, field: impl Into<String>, max: usize) {
        self.push(FieldError {
            kind: ErrorKind::TooLong,
            field: field.into(),
            value: None,
            detail: format!("must have at most {max} bytes"),
        });
    }
    pub fn forbidden(&mut self, field: impl Into<String>, detail: impl Into<String>) {
        self.push(FieldError {
            kind: ErrorKind::Forbidden,
            field: field.into(),
            value: None,
            detail: detail.into(),
        });
    }
    pub fn not_supported(&mut self, field: impl Into<String>, value: &str, supported: &[&str]) {
        let list: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
        self.push(FieldError {
            kind: ErrorKind::NotSupported,
            field: field.into(),
            value: Some(BadValue::Str(value.to_string())),
            detail: format!("supported values: {}", list.join(", ")),
        });
    }

    /// The aggregate message: one error alone, several in brackets, duplicates dropped.
    pub fn summary(&self) -> String {
        let mut msgs: Vec<String> = Vec::new();
        for e in &self.0 {
            let m = e.to_string();
            if !msgs.contains(&m) {
                msgs.push(m);
            }
        }
        if msgs.len() == 1 {
            msgs.remove(0)
        } else {
            format!("[{}]", msgs.join(", "))
        }
    }
}

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Why `s` is not a DNS-1123 label (container names, namespaces), if it is not.
pub fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !is_label(s) {
        errs.push(format!("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{DNS1123_LABEL_FMT}')"));
    }
    errs
}

/// Why `s` is not a DNS-1123 subdomain (most object names), if it is not.
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if s.is_empty() || !s.split('.').all(is_label) {
        errs.push(format!("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '{DNS1123_SUBDOMAIN_FMT}')"));
    }
    errs
}

/// Kubernetes' `IsValidLabelValue` / qualified-name checks, for label selectors and labels.
pub fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    let ok = s.is_empty()
        || (s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if !ok {
        errs.push("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string());
    }
    errs
}

/// Label keys: an optional DNS subdomain prefix and a name part.
pub fn qualified_name(s: &str) -> Vec<String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    let mut errs = Vec::new();
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push("prefix part must be non-empty".to_string());
        } else {
            errs.extend(
                dns1123_subdomain(p)
                    .into_iter()
                    .map(|e| format!("prefix part {e}")),
            );
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else {
        if name.len() > 63 {
            errs.push("name part must be no more than 63 characters".to_string());
        }
        let ok = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !ok {
            errs.push("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_string());
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomain_rejects_underscores_and_uppercase() {
        assert!(dns1123_subdomain("kubernetes-up-and-running").is_empty());
        assert!(dns1123_subdomain("a.b-c.d").is_empty());
        assert_eq!(dns1123_subdomain("Invalid_Name").len(), 1);
        assert_eq!(dns1123_subdomain("-a").len(), 1);
        assert_eq!(dns1123_subdomain("a..b").len(), 1);
        assert_eq!(dns1123_subdomain("").len(), 1);
    }

    #[test]
    fn label_rejects_dots_and_long_names() {
        assert!(dns1123_label("kuard").is_empty());
        assert_eq!(dns1123_label("a.b").len(), 1);
        assert_eq!(dns1123_label(&"a".repeat(64)).len(), 1);
    }

    #[test]
    fn summary_matches_kubernetes_aggregate() {
        let mut l = ErrorList::new();
        l.invalid("metadata.name", BadValue::Str("X".into()), "bad");
        assert_eq!(l.summary(), "metadata.name: Invalid value: \"X\": bad");
        l.required("spec.containers", "");
        assert_eq!(
            l.summary(),
            "[metadata.name: Invalid value: \"X\": bad, spec.containers: Required value]"
        );
    }

    #[test]
    fn not_supported_lists_values() {
        let mut l = ErrorList::new();
        l.not_supported(
            "spec.restartPolicy",
            "Sometimes",
            &["Always", "Never", "OnFailure"],
        );
        assert_eq!(
            l.summary(),
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\", \"OnFailure\""
        );
    }
}
