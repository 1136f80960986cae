//! The downward API: a pod's own fields and its containers' resources, as files and variables
//! show them (`metadata.labels` as sorted `key="value"` lines, CPU in whole divisors rounded up).

use k8s_openapi::api::core::v1::{Pod, ResourceFieldSelector};
use kube::ResourceExt;

/// Lines `key="value"` in key order, values quoted as Go's `%q` does.
fn format_map(map: &std::collections::BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={}", api::validation::go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A list of addresses as the downward API gives it: comma-separated.
fn joined<T>(list: Option<&Vec<T>>, ip: impl Fn(&T) -> &String) -> String {
    list.map(|l| {
        l.iter()
            .map(|i| ip(i).as_str())
            .collect::<Vec<_>>()
            .join(",")
    })
    .unwrap_or_default()
}

/// `metadata.labels['key']` → `("labels", "key")`.
fn subscript(path: &str) -> Option<(&str, &str)> {
    let (head, rest) = path.split_once("['")?;
    let key = rest.strip_suffix("']")?;
    Some((head.strip_prefix("metadata.")?, key))
}

/// The value of a `fieldRef` path.
pub fn field(pod: &Pod, path: &str) -> Result<String, String> {
    let status = pod.status.as_ref();
    let spec = pod.spec.as_ref();
    let value = match path {
        "metadata.name" => pod.name_any(),
        "metadata.namespace" => pod.namespace().unwrap_or_default(),
        "metadata.uid" => pod.uid().unwrap_or_default(),
        "metadata.labels" => format_map(pod.labels()),
        "metadata.annotations" => format_map(pod.annotations()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()).unwrap_or_default(),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
        "status.hostIPs" => joined(status.and_then(|s| s.host_ips.as_ref()), |i| &i.ip),
        "status.podIPs" => joined(status.and_then(|s| s.pod_ips.as_ref()), |i| &i.ip),
        other => match subscript(other) {
            Some(("labels", key)) => pod.labels().get(key).cloned().unwrap_or_default(),
            Some(("annotations", key)) => pod.annotations().get(key).cloned().unwrap_or_default(),
            _ => return Err(format!("unsupported fieldPath: {other}")),
        },
    };
    Ok(value)
}

/// The value of a `resourceFieldRef`: the container's limit or request in divisor units,
/// rounded up; an unset limit is the node's capacity.
pub fn resource(pod: &Pod, r: &ResourceFieldSelector) -> Result<String, String> {
    let name = r.container_name.as_deref().unwrap_or("");
    let c = pod
        .spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .find(|c| {
            c.name == name
                || (name.is_empty() && pod.spec.as_ref().is_some_and(|s| s.containers.len() == 1))
        })
        .ok_or_else(|| format!("container {name:?} not found"))?;
    let (which, resource) = r
        .resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource: {}", r.resource))?;
    let resources = c.resources.as_ref();
    let set = match which {
        "limits" => resources.and_then(|r| r.limits.as_ref()),
        "requests" => resources.and_then(|r| r.requests.as_ref()),
        _ => return Err(format!("unsupported container resource: {}", r.resource)),
    };
    let quantity = set
        .and_then(|m| m.get(resource))
        .and_then(|q| api::quantity::parse(&q.0));
    let host = crate::host::Host::read();
    let value = match (quantity, resource) {
        (Some(q), _) => q,
        (None, "cpu") if which == "limits" => host.cpus as i128 * 1_000_000_000,
        (None, "memory") if which == "limits" => host.memory_kib as i128 * 1024 * 1_000_000_000,
        (None, "ephemeral-storage") if which == "limits" => {
            host.ephemeral_storage_kib as i128 * 1024 * 1_000_000_000
        }
        (None, _) => 0,
    };
    let divisor = r
        .divisor
        .as_ref()
        .and_then(|d| api::quantity::parse(&d.0))
        .filter(|d| *d > 0)
        .unwrap_or(1_000_000_000);
    Ok(((value + divisor - 1).div_euclid(divisor)).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1",
                          "labels": {"b": "2", "a": "say \"hi\""}},
            "spec": {"containers": [{"name": "c", "resources": {
                "limits": {"cpu": "250m", "memory": "64Mi"}, "requests": {"cpu": "100m"}}}]},
        }))
        .expect("pod")
    }

    #[test]
    fn fields_read_as_the_downward_api_shows_them() {
        let p = pod();
        assert_eq!(field(&p, "metadata.name").as_deref(), Ok("p"));
        assert_eq!(field(&p, "metadata.namespace").as_deref(), Ok("ns"));
        assert_eq!(
            field(&p, "metadata.labels").as_deref(),
            Ok("a=\"say \\\"hi\\\"\"\nb=\"2\"")
        );
        assert_eq!(field(&p, "metadata.labels['b']").as_deref(), Ok("2"));
        assert!(field(&p, "spec.bogus").is_err());
    }

    #[test]
    fn resources_count_in_divisors_rounded_up() {
        let p = pod();
        let sel = |resource: &str, divisor: Option<&str>| ResourceFieldSelector {
            container_name: Some("c".into()),
            resource: resource.into(),
            divisor: divisor
                .map(|d| k8s_openapi::apimachinery::pkg::api::resource::Quantity(d.into())),
        };
        assert_eq!(resource(&p, &sel("limits.cpu", None)).as_deref(), Ok("1"));
        assert_eq!(
            resource(&p, &sel("limits.cpu", Some("1m"))).as_deref(),
            Ok("250")
        );
        assert_eq!(
            resource(&p, &sel("requests.cpu", Some("1m"))).as_deref(),
            Ok("100")
        );
        assert_eq!(
            resource(&p, &sel("limits.memory", Some("1Mi"))).as_deref(),
            Ok("64")
        );
    }
}
