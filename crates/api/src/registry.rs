//! What happens to an object on each write, per resource: decoding (with strict field validation),
//! defaulting and admission on create, the update rules, validation, the fields a field selector
//! may test, and the conversion between the two Event APIs that share one storage.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    Event, LimitRange, Namespace, Node, Pod, PodTemplate, ReplicationController, ResourceQuota,
    Service,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::meta::{self, NameRule};
use crate::resource::Resource;
use crate::status::ApiError;
use crate::validation::ErrorList;

/// `?fieldValidation=`: what to do with unknown or duplicate fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    #[default]
    Warn,
    Strict,
    Ignore,
}

impl FieldValidation {
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s.unwrap_or("") {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Strict" => Ok(FieldValidation::Strict),
            "Ignore" => Ok(FieldValidation::Ignore),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}. Valid values are: Strict, Warn, Ignore"
            ))),
        }
    }
}

/// A decoded request body and the warnings decoding produced.
#[derive(Debug)]
pub struct Decoded {
    pub object: Value,
    pub warnings: Vec<String>,
}

/// Renders a serde_ignored path the way Kubernetes names fields (`spec.containers[0].foo`).
fn path_string(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", path_string(parent)),
        Path::Map { parent, key } => {
            let p = path_string(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => path_string(parent),
    }
}

fn roundtrip<T: DeserializeOwned + Serialize>(
    v: Value,
    unknown: &mut Vec<String>,
) -> Result<Value, String> {
    let typed: T = serde_ignored::deserialize(v, |p| unknown.push(path_string(&p)))
        .map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// Finds keys that appear twice in one JSON object, with their paths.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    struct Walk<'a> {
        path: String,
        out: &'a mut Vec<String>,
    }
    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            while seq
                .next_element_seed(Walk {
                    path: format!("{}[{i}]", self.path),
                    out: self.out,
                })?
                .is_some()
            {
                i += 1;
            }
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let path = if self.path.is_empty() {
                    key.clone()
                } else {
                    format!("{}.{key}", self.path)
                };
                if !seen.insert(key) {
                    self.out.push(path.clone());
                }
                map.next_value_seed(Walk {
                    path,
                    out: self.out,
                })?;
            }
            Ok(())
        }
    }
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = Walk {
        path: String::new(),
        out: &mut out,
    }
    .deserialize(&mut de);
    out
}

/// `Pod in version "v1" cannot be handled as a Pod: why` — a body that does not decode.
fn cannot_handle(resource: &Resource, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: {why}",
        resource.kind, resource.version, resource.kind
    ))
}

/// serde_json's error in the words Go's encoding/json uses for the common cases.
fn json_error_text(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "unexpected end of JSON input".into(),
        _ => e.to_string(),
    }
}

/// How Kubernetes quotes a body it could not parse: empty, short, or its first 30 bytes.
fn body_summary(body: &[u8]) -> String {
    if body.is_empty() {
        return "<empty>".into();
    }
    if body[0] == b'{' {
        if body.len() <= 30 {
            return String::from_utf8_lossy(body).into_owned();
        }
        return format!("{} ...", String::from_utf8_lossy(&body[..30]));
    }
    let n = body.len().min(30);
    let hex: String = body[..n].iter().map(|b| format!("{b:02x}")).collect();
    if body.len() > 30 {
        format!("{hex} ...")
    } else {
        hex
    }
}

/// Decodes a JSON request body for `resource`: checks apiVersion/kind, applies field validation
/// and normalizes the object through its typed form (dropping unknown fields).
pub fn decode(
    resource: &Resource,
    body: &[u8],
    mode: FieldValidation,
) -> Result<Decoded, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: {} ({})",
            resource.kind,
            json_error_text(&e),
            body_summary(body)
        ))
    })?;
    let duplicates = if mode == FieldValidation::Ignore {
        Vec::new()
    } else {
        duplicate_fields(body)
    };
    decode_value(resource, value, duplicates, mode)
}

/// Like [`decode`], for a body already parsed (a patched object, or YAML).
pub fn decode_value(
    resource: &Resource,
    value: Value,
    duplicates: Vec<String>,
    mode: FieldValidation,
) -> Result<Decoded, ApiError> {
    if !value.is_object() {
        return Err(cannot_handle(resource, "the object is not a JSON object"));
    }
    let api_version = resource.api_version();
    match value.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != api_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )))
        }
        _ => {}
    }
    match value.get("kind").and_then(Value::as_str) {
        Some(k) if !k.is_empty() && k != resource.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                resource.kind
            )))
        }
        _ => {}
    }
    let mut unknown = Vec::new();
    let mut object = match (resource.group, resource.kind) {
        ("", "Pod") => roundtrip::<Pod>(value, &mut unknown),
        ("", "Namespace") => roundtrip::<Namespace>(value, &mut unknown),
        ("", "Node") => roundtrip::<Node>(value, &mut unknown),
        ("", "Event") => roundtrip::<Event>(value, &mut unknown),
        ("", "Service") => roundtrip::<Service>(value, &mut unknown),
        ("", "ServiceAccount") => {
            roundtrip::<k8s_openapi::api::core::v1::ServiceAccount>(value, &mut unknown)
        }
        ("", "ConfigMap") => {
            roundtrip::<k8s_openapi::api::core::v1::ConfigMap>(value, &mut unknown)
        }
        ("", "Secret") => roundtrip::<k8s_openapi::api::core::v1::Secret>(value, &mut unknown),
        ("events.k8s.io", "Event") => {
            roundtrip::<k8s_openapi::api::events::v1::Event>(value, &mut unknown)
        }
        ("coordination.k8s.io", "Lease") => roundtrip::<Lease>(value, &mut unknown),
        ("policy", "PodDisruptionBudget") => roundtrip::<PodDisruptionBudget>(value, &mut unknown),
        ("", "ResourceQuota") => roundtrip::<ResourceQuota>(value, &mut unknown),
        ("", "LimitRange") => roundtrip::<LimitRange>(value, &mut unknown),
        ("", "Endpoints") => {
            roundtrip::<k8s_openapi::api::core::v1::Endpoints>(value, &mut unknown)
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            roundtrip::<k8s_openapi::api::discovery::v1::EndpointSlice>(value, &mut unknown)
        }
        ("", "PodTemplate") => roundtrip::<PodTemplate>(value, &mut unknown),
        ("", "ReplicationController") => roundtrip::<ReplicationController>(value, &mut unknown),
        ("scheduling.k8s.io", "PriorityClass") => roundtrip::<PriorityClass>(value, &mut unknown),
        _ => Ok(value),
    }
    .map_err(|e| cannot_handle(resource, e))?;
    // Fields the typed form knows but that are owned by the envelope.
    unknown.retain(|p| p != "apiVersion" && p != "kind");
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(resource.kind);
    if resource.kind == "Pod" {
        check_quantities(resource, &object)?;
    }
    let mut problems: Vec<String> = unknown
        .iter()
        .map(|p| format!("unknown field \"{p}\""))
        .collect();
    problems.extend(
        duplicates
            .iter()
            .map(|p| format!("duplicate field \"{p}\"")),
    );
    let mut warnings = match mode {
        FieldValidation::Strict if !problems.is_empty() => {
            return Err(cannot_handle(
                resource,
                format!("strict decoding error: {}", problems.join(", ")),
            ));
        }
        FieldValidation::Warn => problems,
        _ => Vec::new(),
    };
    if (resource.group, resource.kind) == ("", "ReplicationController") {
        warnings.push(crate::templates::NO_CONTROLLER.to_string());
    }
    Ok(Decoded { object, warnings })
}

fn check_quantities(resource: &Resource, pod: &Value) -> Result<(), ApiError> {
    let spec = &pod["spec"];
    let containers = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(spec["initContainers"].as_array().into_iter().flatten());
    for c in containers {
        for kind in ["limits", "requests"] {
            for q in c["resources"][kind]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
            {
                if q.as_str().and_then(crate::quantity::parse).is_none() {
                    return Err(cannot_handle(
                        resource,
                        crate::quantity::QUANTITY_FORMAT_ERROR,
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A stored object as its k8s-openapi type (it decoded when it was written).
pub fn typed<T: DeserializeOwned>(v: &Value) -> Result<T, ApiError> {
    serde_json::from_value(v.clone())
        .map_err(|e| ApiError::internal(format!("object does not decode: {e}")))
}

/// Writes `t` over `into`, keeping `into`'s apiVersion and kind.
pub fn untyped<T: Serialize>(t: &T, into: &mut Value) -> Result<(), ApiError> {
    let (api_version, kind) = (into["apiVersion"].clone(), into["kind"].clone());
    *into = serde_json::to_value(t).map_err(|e| ApiError::internal(e.to_string()))?;
    into["apiVersion"] = api_version;
    into["kind"] = kind;
    Ok(())
}

/// Defaults and admission for a new object, after its metadata was prepared.
pub fn prepare_create(resource: &Resource, obj: &mut Value) -> Result<(), ApiError> {
    match (resource.group, resource.kind) {
        ("", "Pod") => {
            let mut pod: Pod = typed(obj)?;
            crate::pod::set_defaults(&mut pod);
            crate::pod::admit(&mut pod);
            pod.status = Some(crate::pod::initial_status(&pod));
            pod.metadata.generation = Some(1);
            untyped(&pod, obj)?;
        }
        ("", "Namespace") => {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "Node") => taint_new_node(obj),
        ("", "Secret") => crate::secret::prepare(obj),
        ("policy", "PodDisruptionBudget") => {
            // Status is the disruption controller's to write; a new budget has observed nothing.
            obj["status"] = json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0});
            obj["metadata"]["generation"] = json!(1);
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            let mut pc: PriorityClass = typed(obj)?;
            crate::priority::set_defaults(&mut pc);
            untyped(&pc, obj)?;
        }
        // The quota controller computes the status.
        ("", "ResourceQuota") => obj["status"] = json!({}),
        ("", "Service") => {
            let mut svc: Service = typed(obj)?;
            crate::service::set_defaults(&mut svc);
            svc.status = Some(k8s_openapi::api::core::v1::ServiceStatus {
                load_balancer: Some(Default::default()),
                ..Default::default()
            });
            untyped(&svc, obj)?;
        }
        ("", "LimitRange") => {
            let mut range: LimitRange = typed(obj)?;
            crate::limit_range::set_defaults(&mut range);
            untyped(&range, obj)?;
        }
        ("", "PodTemplate") => {
            let mut t: PodTemplate = typed(obj)?;
            if let Some(template) = t.template.as_mut() {
                crate::templates::default_template(template);
            }
            untyped(&t, obj)?;
        }
        ("", "ReplicationController") => {
            let mut rc: ReplicationController = typed(obj)?;
            crate::templates::default_controller(&mut rc);
            rc.status = Some(Default::default());
            rc.metadata.generation = Some(1);
            untyped(&rc, obj)?;
        }
        _ => {}
    }
    Ok(())
}

/// The TaintNodesAtCreation admission: a new Node is not ready until its agent says so, so it
/// carries `node.kubernetes.io/not-ready:NoSchedule` and nothing is scheduled onto it before
/// then (the node lifecycle controller removes the taint once the node reports Ready).
fn taint_new_node(obj: &mut Value) {
    const NOT_READY: &str = "node.kubernetes.io/not-ready";
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    if !obj["spec"]["taints"].is_array() {
        obj["spec"]["taints"] = json!([]);
    }
    if let Some(taints) = obj["spec"]["taints"].as_array_mut() {
        let present = taints
            .iter()
            .any(|t| t["key"] == NOT_READY && t["effect"] == "NoSchedule");
        if !present {
            taints.push(json!({"key": NOT_READY, "effect": "NoSchedule"}));
        }
    }
}

fn name_rule(resource: &Resource) -> NameRule {
    match resource.kind {
        "Namespace" => NameRule::Label,
        _ => NameRule::Subdomain,
    }
}

/// Validation of a new object.
pub fn validate_create(resource: &Resource, obj: &Value) -> Result<ErrorList, ApiError> {
    let mut errs = meta::validate_meta(obj, resource.namespaced, name_rule(resource));
    match (resource.group, resource.kind) {
        ("", "Pod") => {
            let pod: Pod = typed(obj)?;
            if let Some(spec) = &pod.spec {
                errs.extend(crate::pod::validate_spec(spec));
            }
        }
        ("", "Secret") => errs.extend(crate::secret::validate(obj)),
        ("policy", "PodDisruptionBudget") => errs.extend(crate::pdb::validate(&typed(obj)?)),
        ("scheduling.k8s.io", "PriorityClass") => {
            errs.extend(crate::priority::validate(&typed(obj)?))
        }
        ("", "ResourceQuota") => errs.extend(crate::quota::validate(&typed(obj)?)),
        ("", "LimitRange") => errs.extend(crate::limit_range::validate(&typed(obj)?)),
        ("", "PodTemplate") => {
            let t: PodTemplate = typed(obj)?;
            errs.extend(crate::templates::validate_template(
                t.template.as_ref(),
                "template",
            ));
        }
        ("", "ReplicationController") => {
            errs.extend(crate::templates::validate_controller(&typed(obj)?))
        }
        _ => {}
    }
    Ok(errs)
}

/// Carries over what a write to the main resource or to `/status` may not change, then validates.
pub fn prepare_and_validate_update(
    resource: &Resource,
    new: &mut Value,
    old: &Value,
    subresource: Option<&str>,
) -> Result<ErrorList, ApiError> {
    let mut errs = meta::prepare_update(new, old);
    match subresource {
        Some("status") => {
            // A status write changes status (and, as Kubernetes allows, labels and annotations
            // stay as the client sent them); the spec is the stored one.
            if let Some(spec) = old.get("spec") {
                new["spec"] = spec.clone();
            }
            if resource.kind == "Pod" && new["status"]["qosClass"].is_null() {
                new["status"]["qosClass"] = old["status"]["qosClass"].clone();
            }
        }
        _ => {
            if resource.kind != "Lease" && resource.kind != "Event" {
                if let Some(status) = old.get("status") {
                    new["status"] = status.clone();
                }
            }
        }
    }
    errs.extend(meta::validate_meta(
        new,
        resource.namespaced,
        name_rule(resource),
    ));
    if (resource.group, resource.kind) == ("", "Secret") {
        crate::secret::prepare(new);
        errs.extend(crate::secret::validate_update(new, old));
    }
    if (resource.group, resource.kind) == ("policy", "PodDisruptionBudget") {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
        let changed = subresource.is_none() && new.get("spec") != old.get("spec");
        new["metadata"]["generation"] = json!(if changed { generation + 1 } else { generation });
        errs.extend(crate::pdb::validate(&typed(new)?));
    }
    if (resource.group, resource.kind) == ("", "ResourceQuota") && subresource.is_none() {
        errs.extend(crate::quota::validate(&typed(new)?));
    }
    if (resource.group, resource.kind) == ("", "ReplicationController") && subresource.is_none() {
        let mut rc: ReplicationController = typed(new)?;
        crate::templates::default_controller(&mut rc);
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
        let changed = serde_json::to_value(&rc.spec).ok().as_ref() != old.get("spec");
        rc.metadata.generation = Some(if changed { generation + 1 } else { generation });
        errs.extend(crate::templates::validate_controller(&rc));
        untyped(&rc, new)?;
    }
    if (resource.group, resource.kind) == ("", "Service") && subresource.is_none() {
        let mut svc: Service = typed(new)?;
        crate::service::set_defaults(&mut svc);
        errs.extend(crate::service::keep_allocated(&mut svc, &typed(old)?));
        untyped(&svc, new)?;
    }
    if (resource.group, resource.kind) == ("", "LimitRange") {
        let mut range: LimitRange = typed(new)?;
        crate::limit_range::set_defaults(&mut range);
        errs.extend(crate::limit_range::validate(&range));
        untyped(&range, new)?;
    }
    if (resource.group, resource.kind) == ("scheduling.k8s.io", "PriorityClass") {
        let mut pc: PriorityClass = typed(new)?;
        crate::priority::set_defaults(&mut pc);
        errs.extend(crate::priority::validate_update(&pc, &typed(old)?));
        untyped(&pc, new)?;
    }
    if (resource.group, resource.kind) == ("", "Pod") {
        let mut new_pod: Pod = typed(new)?;
        let old_pod: Pod = typed(old)?;
        crate::pod::set_defaults(&mut new_pod);
        if subresource.is_none() {
            if new_pod.spec != old_pod.spec {
                new_pod.metadata.generation = Some(old_pod.metadata.generation.unwrap_or(1) + 1);
            } else {
                new_pod.metadata.generation = old_pod.metadata.generation;
            }
            errs.extend(crate::pod::validate_update(&new_pod, &old_pod));
        } else {
            new_pod.metadata.generation = old_pod.metadata.generation;
        }
        untyped(&new_pod, new)?;
    }
    Ok(errs)
}

/// The fields a field selector may test on this resource, with their values.
pub fn fields(resource: &Resource, obj: &Value) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    f.insert("metadata.name".into(), meta::name(obj).to_string());
    if resource.namespaced {
        f.insert(
            "metadata.namespace".into(),
            meta::namespace(obj).unwrap_or("").to_string(),
        );
    }
    match (resource.group, resource.kind) {
        ("", "Pod") => {
            for (k, v) in [
                ("spec.nodeName", &obj["spec"]["nodeName"]),
                ("spec.restartPolicy", &obj["spec"]["restartPolicy"]),
                ("spec.schedulerName", &obj["spec"]["schedulerName"]),
                (
                    "spec.serviceAccountName",
                    &obj["spec"]["serviceAccountName"],
                ),
                ("status.phase", &obj["status"]["phase"]),
                ("status.podIP", &obj["status"]["podIP"]),
                (
                    "status.nominatedNodeName",
                    &obj["status"]["nominatedNodeName"],
                ),
            ] {
                f.insert(k.into(), s(v));
            }
            f.insert(
                "spec.hostNetwork".into(),
                (obj["spec"]["hostNetwork"] == true).to_string(),
            );
        }
        (_, "Event") => {
            let core;
            let ev = if resource.group.is_empty() {
                obj
            } else {
                core = event_to_core(obj);
                &core
            };
            for k in [
                "kind",
                "namespace",
                "name",
                "uid",
                "apiVersion",
                "resourceVersion",
                "fieldPath",
            ] {
                f.insert(format!("involvedObject.{k}"), s(&ev["involvedObject"][k]));
            }
            f.insert("reason".into(), s(&ev["reason"]));
            f.insert("reportingComponent".into(), s(&ev["reportingComponent"]));
            f.insert("source".into(), s(&ev["source"]["component"]));
            f.insert("type".into(), s(&ev["type"]));
        }
        ("", "Node") => {
            f.insert(
                "spec.unschedulable".into(),
                (obj["spec"]["unschedulable"] == true).to_string(),
            );
        }
        ("", "Namespace") => {
            f.insert("status.phase".into(), s(&obj["status"]["phase"]));
        }
        _ => {}
    }
    f
}

const EVENT_RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

fn rename(obj: &Value, from_new: bool, api_version: &str) -> Value {
    let mut out = obj.clone();
    if let Some(m) = out.as_object_mut() {
        for (new_name, core_name) in EVENT_RENAMES {
            let (from, to) = if from_new {
                (new_name, core_name)
            } else {
                (core_name, new_name)
            };
            if let Some(v) = m.remove(*from) {
                m.insert(to.to_string(), v);
            }
        }
        m.insert("apiVersion".into(), json!(api_version));
        m.insert("kind".into(), json!("Event"));
    }
    out
}

/// An `events.k8s.io/v1` Event in its stored `core/v1` form.
pub fn event_to_core(obj: &Value) -> Value {
    rename(obj, true, "v1")
}

/// A stored `core/v1` Event as `events.k8s.io/v1` shows it.
pub fn event_from_core(obj: &Value) -> Value {
    rename(obj, false, "events.k8s.io/v1")
}

/// The form an object is stored in (shared by every version of a resource).
pub fn to_storage(resource: &Resource, obj: Value) -> Value {
    if (resource.group, resource.kind) == ("events.k8s.io", "Event") {
        event_to_core(&obj)
    } else {
        obj
    }
}

/// The stored form as `resource` serves it.
pub fn from_storage(resource: &Resource, obj: Value) -> Value {
    if (resource.group, resource.kind) == ("events.k8s.io", "Event") {
        event_from_core(&obj)
    } else {
        obj
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::find;

    fn pods() -> &'static Resource {
        find("", "v1", "pods").unwrap()
    }

    #[test]
    fn strict_rejects_unknown_and_duplicate_fields() {
        let body = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","name":"b"},"spec":{"foo":1,"containers":[{"name":"c","image":"i","bar":2}]}}"#;
        let err = decode(pods(), body, FieldValidation::Strict).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message.starts_with(
                "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: "
            ),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("unknown field \"spec.foo\""),
            "{}",
            err.message
        );
        assert!(
            err.message
                .contains("unknown field \"spec.containers[0].bar\""),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("duplicate field \"metadata.name\""),
            "{}",
            err.message
        );
        let warned = decode(pods(), body, FieldValidation::Warn).unwrap();
        assert_eq!(warned.warnings.len(), 3);
        assert!(
            warned.object["spec"].get("foo").is_none(),
            "unknown fields are dropped"
        );
        assert!(decode(pods(), body, FieldValidation::Ignore)
            .unwrap()
            .warnings
            .is_empty());
    }

    #[test]
    fn wrong_kind_and_bad_json_are_bad_requests() {
        let e = decode(
            pods(),
            br#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"a"}}"#,
            FieldValidation::Strict,
        )
        .unwrap_err();
        assert_eq!(e.code, 400);
        let e = decode(pods(), b"{not json", FieldValidation::Strict).unwrap_err();
        assert_eq!(e.code, 400);
        assert!(e.message.starts_with("the object provided is unrecognized (must be of type Pod): couldn't get version/kind; json parse error: "), "{}", e.message);
        assert!(e.message.ends_with("({not json)"), "{}", e.message);
        let e = decode(
            pods(),
            br#"{"spec":{"containers":"x"}}"#,
            FieldValidation::Strict,
        )
        .unwrap_err();
        assert!(
            e.message
                .starts_with("Pod in version \"v1\" cannot be handled as a Pod"),
            "{}",
            e.message
        );
    }

    #[test]
    fn bad_quantity_is_a_decode_error() {
        let body = br#"{"spec":{"containers":[{"name":"c","image":"i","resources":{"limits":{"cpu":"lots"}}}]}}"#;
        let e = decode(pods(), body, FieldValidation::Strict).unwrap_err();
        assert!(e.message.contains("quantities must match"), "{}", e.message);
    }

    #[test]
    fn events_convert_both_ways() {
        let new = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "note": "hi", "regarding": {"kind": "Pod", "name": "p"}});
        let core = event_to_core(&new);
        assert_eq!(core["message"], "hi");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(event_from_core(&core)["note"], "hi");
    }

    #[test]
    fn status_writes_keep_the_spec() {
        let old = json!({"metadata": {"name": "p", "namespace": "d", "uid": "u"}, "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Pending", "qosClass": "BestEffort"}});
        let mut new = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": []}, "status": {"phase": "Running"}});
        let errs = prepare_and_validate_update(pods(), &mut new, &old, Some("status")).unwrap();
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(new["spec"]["containers"][0]["name"], "c");
        assert_eq!(new["status"]["phase"], "Running");
        assert_eq!(new["status"]["qosClass"], "BestEffort");
    }
}
