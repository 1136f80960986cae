//! Admission that needs other objects than the one written, read from the watch cache, in
//! kube-apiserver's order: LimitRanger (a pod's default requests and limits, and its bounds),
//! Priority (its priority from its PriorityClass; one default class), then ResourceQuota (the
//! namespace's quotas charged for the new object, or the create refused). The rules themselves
//! are [`api::limit_range`]'s, [`api::priority`]'s and [`api::quota`]'s.

use k8s_openapi::api::core::v1::{LimitRange, Pod, ResourceQuota};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use serde_json::Value;

use api::registry::{typed, untyped};
use api::resource::{self, Resource};
use api::ApiError;

use crate::Server;

/// Admits a new object of `resource` (already defaulted) in `namespace`; unless `dry`, the
/// quotas it counts against are charged for it.
pub async fn admit_create(
    server: &Server,
    resource: &'static Resource,
    namespace: Option<&str>,
    obj: &mut Value,
    dry: bool,
) -> Result<(), ApiError> {
    let name = api::meta::name(obj).to_string();
    match (resource.group, resource.kind) {
        ("", "Pod") => {
            let ns = namespace.unwrap_or_default();
            let mut pod: Pod = typed(obj)?;
            api::limit_range::admit(&mut pod, &in_namespace(server, "limitranges", ns))
                .map_err(|why| ApiError::forbidden("", "pods", &name, &why))?;
            api::priority::admit(&mut pod, ns, &classes(server))?;
            let usage = api::quota::pod_usage(&pod);
            untyped(&pod, obj)?;
            charge_quotas(server, resource, ns, &name, &usage, Some(&pod), dry).await
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            api::priority::check_single_default(&typed(obj)?, &classes(server))
        }
        ("", "Service") => {
            allocate_addresses(server, resource, &name, obj).await?;
            let usage = api::quota::object_usage(resource);
            let ns = namespace.unwrap_or_default();
            charge_quotas(server, resource, ns, &name, &usage, None, dry).await
        }
        _ => match namespace {
            Some(ns) => {
                let usage = api::quota::object_usage(resource);
                charge_quotas(server, resource, ns, &name, &usage, None, dry).await
            }
            None => Ok(()),
        },
    }
}

/// A new Service's cluster IP and node ports, from what the stored Services hold (the caller
/// holds [`Server::allocating`] until the Service is stored).
async fn allocate_addresses(
    server: &Server,
    resource: &Resource,
    name: &str,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let all = crate::rest::Target {
        resource: resource::find("", "v1", "services").expect("services are served"),
        namespace: None,
        name: None,
        subresource: None,
    };
    let services: Vec<k8s_openapi::api::core::v1::Service> = crate::rest::read_all(server, &all)
        .await?
        .iter()
        .filter_map(|(v, _)| typed(v).ok())
        .collect();
    let mut svc: k8s_openapi::api::core::v1::Service = typed(obj)?;
    let errs = api::service::allocate(
        &mut svc,
        server.service_range,
        &api::service::Taken::of(&services),
    );
    if !errs.is_empty() {
        return Err(ApiError::invalid("", resource.kind, name, &errs));
    }
    untyped(&svc, obj)?;
    Ok(())
}

/// How often a quota charge reads again when another writer changed a quota under it.
const QUOTA_TRIES: usize = 8;

/// Charges the namespace's quotas for `usage`, writing their new `status.used`, or refuses the
/// create (`exceeded quota`, `must specify`, `status unknown`) as a 403 on the object.
async fn charge_quotas(
    server: &Server,
    resource: &Resource,
    namespace: &str,
    name: &str,
    usage: &api::quota::Usage,
    pod: Option<&Pod>,
    dry: bool,
) -> Result<(), ApiError> {
    let target = |quota: Option<&str>| crate::rest::Target {
        resource: resource::find("", "v1", "resourcequotas").expect("resourcequotas are served"),
        namespace: Some(namespace.to_string()),
        name: quota.map(str::to_string),
        subresource: None,
    };
    // Most namespaces have no quota: the cache says so without a read of the store.
    if cached::<ResourceQuota>(server, "", "resourcequotas", Some(namespace)).is_empty() {
        return Ok(());
    }
    for _ in 0..QUOTA_TRIES {
        let listed = crate::rest::read_all(server, &target(None)).await?;
        if listed.is_empty() {
            return Ok(());
        }
        let quotas: Vec<ResourceQuota> = listed
            .iter()
            .map(|(v, _)| typed(v))
            .collect::<Result<_, _>>()?;
        let charged = api::quota::charge(usage, pod, &quotas)
            .map_err(|why| ApiError::forbidden(resource.group, resource.plural, name, &why))?;
        if dry {
            return Ok(());
        }
        let mut conflicted = false;
        for (quota, used) in charged {
            let Some((value, revision)) = listed.iter().find(|(v, _)| api::meta::name(v) == quota)
            else {
                continue;
            };
            let mut updated = value.clone();
            updated["status"]["used"] = serde_json::to_value(api::quota::quantities(&used))
                .map_err(|e| ApiError::internal(e.to_string()))?;
            if let crate::rest::Written::Conflict =
                crate::rest::write(server, &target(Some(&quota)), &updated, *revision).await?
            {
                conflicted = true;
                break;
            }
        }
        if !conflicted {
            return Ok(());
        }
    }
    Err(ApiError::internal("resource quota evaluation timed out"))
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
    cached(server, "scheduling.k8s.io", "priorityclasses", None)
}

/// The core objects of `plural` in `namespace` the cache holds (LimitRanges).
fn in_namespace(server: &Server, plural: &str, namespace: &str) -> Vec<LimitRange> {
    cached(server, "", plural, Some(namespace))
}

fn cached<T: serde::de::DeserializeOwned>(
    server: &Server,
    group: &str,
    plural: &str,
    namespace: Option<&str>,
) -> Vec<T> {
    let Some(r) = resource::find(group, "v1", plural) else {
        return Vec::new();
    };
    let (listed, _) = server.cache.list(&r.prefix(namespace), None);
    listed
        .iter()
        .filter_map(|c| serde_json::from_slice(&c.json).ok())
        .collect()
}
