//! Secrets: `stringData` merged into `data` on every write, the `Opaque` default, the keys each
//! `type` requires, key names, the 1 MiB limit, and what `immutable` and `type` forbid to change.

use serde_json::{json, Value};

use crate::validation::{BadValue, ErrorList};

/// The most a Secret's data may hold in total.
const MAX_SIZE: usize = 1024 * 1024;

/// Moves `stringData` into `data` (base64, as stored) and defaults `type`.
pub fn prepare(obj: &mut Value) {
    use base64::Engine as _;
    if let Some(strings) = obj
        .as_object_mut()
        .and_then(|o| o.remove("stringData"))
        .and_then(|v| v.as_object().cloned())
    {
        if !obj["data"].is_object() {
            obj["data"] = json!({});
        }
        for (k, v) in strings {
            let text = v.as_str().unwrap_or_default();
            obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
        }
    }
    if obj["type"].as_str().unwrap_or("").is_empty() {
        obj["type"] = json!("Opaque");
    }
}

fn is_config_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && !key.starts_with("..")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn decoded_len(v: &Value) -> usize {
    use base64::Engine as _;
    v.as_str()
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .map_or(0, |b| b.len())
}

/// The rules every Secret meets.
pub fn validate(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let data = obj["data"].as_object().cloned().unwrap_or_default();
    let mut total = 0;
    for (key, value) in &data {
        if !is_config_key(key) {
            errs.invalid(
                format!("data[{key}]"),
                BadValue::Str(key.clone()),
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
            );
        }
        total += decoded_len(value);
    }
    if total > MAX_SIZE {
        errs.too_long("data", MAX_SIZE);
    }
    let required: &[&str] = match obj["type"].as_str().unwrap_or("Opaque") {
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        _ => &[],
    };
    for key in required {
        if !data.contains_key(*key) {
            errs.required(format!("data[{key}]"), "");
        }
    }
    if obj["type"] == "kubernetes.io/basic-auth"
        && !data.contains_key("username")
        && !data.contains_key("password")
    {
        errs.required("data[username]", "");
        errs.required("data[password]", "");
    }
    if obj["type"] == "kubernetes.io/service-account-token"
        && obj["metadata"]["annotations"]["kubernetes.io/service-account.name"]
            .as_str()
            .unwrap_or("")
            .is_empty()
    {
        errs.required(
            "metadata.annotations[kubernetes.io/service-account.name]",
            "",
        );
    }
    errs
}

/// What an update may not change: the type, and anything of an immutable Secret's data.
pub fn validate_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate(new);
    if new["type"] != old["type"] {
        let shown = new["type"].as_str().unwrap_or("").to_string();
        errs.invalid("type", BadValue::Str(shown), "field is immutable");
    }
    if old["immutable"] == json!(true) {
        if new["data"] != old["data"] {
            errs.forbidden("data", "field is immutable when `immutable` is set");
        }
        if new["immutable"] != json!(true) {
            errs.forbidden("immutable", "field is immutable when `immutable` is set");
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_data_lands_in_data_and_type_defaults_to_opaque() {
        let mut s = json!({"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}, "data": {"user": "YWRtaW4="}});
        prepare(&mut s);
        assert_eq!(
            s["data"],
            json!({"user": "YWRtaW4=", "password": "aHVudGVyMg=="})
        );
        assert_eq!(s["type"], "Opaque");
        assert!(s.get("stringData").is_none());
        assert!(validate(&s).is_empty());
    }

    #[test]
    fn types_require_their_keys_and_keys_their_form() {
        let tls = json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
        let errs = validate(&tls);
        assert_eq!(errs.len(), 1, "{errs:?}");
        let bad = json!({"type": "Opaque", "data": {"a/b": "eA=="}});
        assert_eq!(validate(&bad).len(), 1);
        let old = json!({"type": "Opaque", "immutable": true, "data": {"a": "eA=="}});
        let new = json!({"type": "Opaque", "immutable": true, "data": {"a": "eQ=="}});
        assert_eq!(validate_update(&new, &old).len(), 1);
        let retyped = json!({"type": "kubernetes.io/basic-auth", "data": {"username": "eA=="}});
        assert_eq!(
            validate_update(&retyped, &json!({"type": "Opaque"})).len(),
            1
        );
    }
}
