//! Object metadata on untyped objects: reading names and labels, filling what the server owns on
//! create, and the checks every object's metadata must pass.

use std::collections::BTreeMap;

use rand::Rng;
use serde_json::{json, Map, Value};

/// The largest object that can be stored: etcd's default request limit, which kubelite keeps on
/// SQLite too so that a cluster behaves the same on either.
pub const MAX_STORED_OBJECT: usize = 1536 * 1024;

use crate::status::ApiError;
use crate::validation::{
    dns1123_label, dns1123_subdomain, label_value, qualified_name, BadValue, ErrorList,
};

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.as_object()
}

pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

pub fn str_field<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj)?.get(field)?.as_str()
}

pub fn name(obj: &Value) -> &str {
    str_field(obj, "name").unwrap_or("")
}

pub fn namespace(obj: &Value) -> Option<&str> {
    str_field(obj, "namespace").filter(|s| !s.is_empty())
}

pub fn resource_version(obj: &Value) -> Option<&str> {
    str_field(obj, "resourceVersion").filter(|s| !s.is_empty())
}

pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    meta(obj)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn is_deleting(obj: &Value) -> bool {
    meta(obj).is_some_and(|m| m.get("deletionTimestamp").is_some_and(|v| !v.is_null()))
}

/// Kubernetes timestamps: RFC 3339, whole seconds, UTC.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `obj` as a `PartialObjectMetadata`: its metadata alone.
pub fn partial(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

pub fn now() -> String {
    timestamp(chrono::Utc::now())
}

/// The random suffix `generateName` gets: 5 characters from an alphabet without vowels or
/// look-alike characters, as Kubernetes' `utilrand.String` draws them.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Fills the server-owned metadata of a new object: namespace, name from `generateName`, uid,
/// creationTimestamp; clears what a client may not set.
pub fn prepare_create(obj: &mut Value, namespace: Option<&str>) -> Result<(), ApiError> {
    let m = meta_mut(obj);
    if let Some(ns) = namespace {
        match m.get("namespace").and_then(Value::as_str) {
            Some(given) if !given.is_empty() && given != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                m.insert("namespace".into(), json!(ns));
            }
        }
    } else {
        m.remove("namespace");
    }
    let has_name = m
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !has_name {
        if let Some(prefix) = m
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            let name = format!("{prefix}{}", random_suffix());
            m.insert("name".into(), json!(name));
        }
    }
    m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    m.insert("creationTimestamp".into(), json!(now()));
    for owned in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        m.remove(owned);
    }
    Ok(())
}

/// How an object's name must look.
#[derive(Clone, Copy, Debug)]
pub enum NameRule {
    Subdomain,
    Label,
}

/// ObjectMeta checks shared by every resource (`ValidateObjectMeta`).
pub fn validate_meta(obj: &Value, namespaced: bool, rule: NameRule) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = name(obj);
    let generate = str_field(obj, "generateName").unwrap_or("");
    if name.is_empty() {
        if generate.is_empty() {
            errs.required("metadata.name", "name or generateName is required");
        }
    } else {
        let problems = match rule {
            NameRule::Subdomain => dns1123_subdomain(name),
            NameRule::Label => dns1123_label(name),
        };
        for p in problems {
            errs.invalid("metadata.name", BadValue::Str(name.to_string()), p);
        }
    }
    if namespaced {
        match namespace(obj) {
            None => errs.required("metadata.namespace", ""),
            Some(ns) => {
                for p in dns1123_label(ns) {
                    errs.invalid("metadata.namespace", BadValue::Str(ns.to_string()), p);
                }
            }
        }
    }
    for (k, v) in labels(obj) {
        for p in qualified_name(&k) {
            errs.invalid("metadata.labels", BadValue::Str(k.clone()), p);
        }
        for p in label_value(&v) {
            errs.invalid("metadata.labels", BadValue::Str(v.clone()), p);
        }
    }
    if let Some(ann) = meta(obj)
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
    {
        let mut total = 0;
        for (k, v) in ann {
            for p in qualified_name(k) {
                errs.invalid("metadata.annotations", BadValue::Str(k.clone()), p);
            }
            total += k.len() + v.as_str().map_or(0, str::len);
        }
        if total > 256 * 1024 {
            errs.push(crate::validation::FieldError {
                kind: crate::validation::ErrorKind::TooLong,
                field: "metadata.annotations".into(),
                value: None,
                detail: "may not be more than 262144 bytes".into(),
            });
        }
    }
    errs
}

/// On update: the fields a client may not change, and the server-owned fields carried over.
pub fn prepare_update(new: &mut Value, old: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let old_meta = meta(old).cloned().unwrap_or_default();
    let m = meta_mut(new);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generateName",
        "namespace",
    ] {
        match old_meta.get(field) {
            Some(v) => {
                let given = m.get(field);
                let immutable_given = matches!(field, "uid" | "namespace")
                    && given.is_some_and(|g| !g.is_null() && g != v && g.as_str() != Some(""));
                if immutable_given {
                    errs.invalid(
                        format!("metadata.{field}"),
                        BadValue::Str(given.and_then(Value::as_str).unwrap_or("").to_string()),
                        "field is immutable",
                    );
                }
                m.insert(field.into(), v.clone());
            }
            None => {
                m.remove(field);
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_name_gets_five_random_characters() {
        let mut a = json!({"metadata": {"generateName": "kuard-"}});
        prepare_create(&mut a, Some("default")).unwrap();
        let n = name(&a);
        assert!(n.starts_with("kuard-") && n.len() == 11, "{n}");
        assert!(n[6..]
            .chars()
            .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_eq!(namespace(&a), Some("default"));
        assert!(str_field(&a, "uid").is_some_and(|u| u.len() == 36));
    }

    #[test]
    fn namespace_mismatch_is_rejected() {
        let mut a = json!({"metadata": {"name": "x", "namespace": "other"}});
        let err = prepare_create(&mut a, Some("default")).unwrap_err();
        assert_eq!(err.code, 400);
    }

    #[test]
    fn invalid_name_is_reported_with_its_path() {
        let o = json!({"metadata": {"name": "Invalid_Name", "namespace": "default"}});
        let errs = validate_meta(&o, true, NameRule::Subdomain);
        assert_eq!(errs.len(), 1);
        assert!(errs.summary().starts_with(
            "metadata.name: Invalid value: \"Invalid_Name\": a lowercase RFC 1123 subdomain"
        ));
    }

    #[test]
    fn update_keeps_server_owned_fields() {
        let old = json!({"metadata": {"name": "x", "uid": "u1", "creationTimestamp": "t"}});
        let mut new = json!({"metadata": {"name": "x"}});
        assert!(prepare_update(&mut new, &old).is_empty());
        assert_eq!(new["metadata"]["uid"], "u1");
        let mut bad = json!({"metadata": {"name": "x", "uid": "other"}});
        assert_eq!(prepare_update(&mut bad, &old).len(), 1);
    }
}
