//! Admission that needs other objects than the one written, read from the watch cache: the
//! Priority admission of pods (their priority from their PriorityClass) and the single default
//! PriorityClass. The rules themselves are [`api::priority`]'s.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use serde_json::Value;

use api::resource::{self, Resource};
use api::ApiError;

use crate::Server;

/// Admits a new object of `resource` (already defaulted) in `namespace`.
pub fn admit_create(
    server: &Server,
    resource: &Resource,
    namespace: Option<&str>,
    obj: &mut Value,
) -> Result<(), ApiError> {
    match (resource.group, resource.kind) {
        ("", "Pod") => {
            let mut pod: Pod = typed(obj)?;
            api::priority::admit(&mut pod, namespace.unwrap_or_default(), &classes(server))?;
            *obj = untyped(&pod, obj)?;
            Ok(())
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            api::priority::check_single_default(&typed(obj)?, &classes(server))
        }
        _ => Ok(()),
    }
}

/// Admits an update of an object of `resource`.
pub fn admit_update(server: &Server, resource: &Resource, new: &Value) -> Result<(), ApiError> {
    match (resource.group, resource.kind) {
        ("scheduling.k8s.io", "PriorityClass") => {
            api::priority::check_single_default(&typed(new)?, &classes(server))
        }
        _ => Ok(()),
    }
}

/// Whether deleting `obj` of `resource` is refused (the system PriorityClasses stay).
pub fn refuse_delete(resource: &Resource, obj: &Value) -> Result<(), ApiError> {
    if (resource.group, resource.kind) != ("scheduling.k8s.io", "PriorityClass") {
        return Ok(());
    }
    let pc: PriorityClass = typed(obj)?;
    if api::priority::is_system_class(&pc) {
        return Err(ApiError::forbidden(
            resource.group,
            resource.plural,
            pc.metadata.name.as_deref().unwrap_or_default(),
            "this is a system priority class and cannot be deleted",
        ));
    }
    Ok(())
}

/// The PriorityClasses the cache holds.
fn classes(server: &Server) -> Vec<PriorityClass> {
    let Some(r) = resource::find("scheduling.k8s.io", "v1", "priorityclasses") else {
        return Vec::new();
    };
    let (listed, _) = server.cache.list(&r.prefix(None), None);
    listed
        .iter()
        .filter_map(|c| serde_json::from_slice(&c.json).ok())
        .collect()
}

fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, ApiError> {
    serde_json::from_value(v.clone())
        .map_err(|e| ApiError::internal(format!("object does not decode: {e}")))
}

/// `t` as JSON, keeping `like`'s apiVersion and kind.
fn untyped<T: serde::Serialize>(t: &T, like: &Value) -> Result<Value, ApiError> {
    let mut v = serde_json::to_value(t).map_err(|e| ApiError::internal(e.to_string()))?;
    v["apiVersion"] = like["apiVersion"].clone();
    v["kind"] = like["kind"].clone();
    Ok(v)
}
