//! Discovery documents: the legacy `/api`, `/apis`, `/api/v1`, `/apis/<g>[/<v>]` forms, and the
//! aggregated `apidiscovery.k8s.io/v2` form kubectl 1.30+ asks for, built from one resource table.

use serde_json::{json, Value};

use api::resource::{self, Resource, RESOURCES};

/// The aggregated form's Content-Type, which tells the client how to decode the body.
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the Accept header asks for aggregated discovery v2 (parameters in any order).
pub fn wants_aggregated(accept: Option<&str>) -> bool {
    accept.unwrap_or("").split(',').any(|clause| {
        let params: Vec<&str> = clause.split(';').map(str::trim).collect();
        params.first() == Some(&"application/json")
            && params.contains(&"g=apidiscovery.k8s.io")
            && params.contains(&"v=v2")
            && params.contains(&"as=APIGroupDiscoveryList")
    })
}

fn in_group(group: &str) -> impl Iterator<Item = &'static Resource> + '_ {
    RESOURCES.iter().filter(move |r| r.group == group)
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_entry(group: &str) -> Value {
    let version = in_group(group).next().map(|r| r.version).unwrap_or("v1");
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

pub fn api_group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": resource::groups().into_iter().map(group_entry).collect::<Vec<_>>(),
    })
}

pub fn api_group(group: &str) -> Option<Value> {
    in_group(group).next()?;
    let mut g = group_entry(group);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

fn storage_version_hash(r: &Resource) -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{}/{}/{}", r.group, r.version, r.kind));
    base64::engine::general_purpose::STANDARD.encode(&digest[..8])
}

/// `APIResourceList` for one group version (`""` for core).
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    let mut found = false;
    let mut sorted: Vec<&Resource> = in_group(group).filter(|r| r.version == version).collect();
    sorted.sort_by_key(|r| r.plural);
    for r in sorted {
        found = true;
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
            "storageVersionHash": storage_version_hash(r),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        resources.push(entry);
        for s in r.subresources {
            let mut sub = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if s.group != r.group || s.version != r.version {
                sub["group"] = json!(s.group);
                sub["version"] = json!(s.version);
            }
            resources.push(sub);
        }
    }
    if !found {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn aggregated_versions(group: &str) -> Vec<Value> {
    let version = in_group(group).next().map(|r| r.version).unwrap_or("v1");
    let mut sorted: Vec<&Resource> = in_group(group).filter(|r| r.version == version).collect();
    sorted.sort_by_key(|r| r.plural);
    let resources: Vec<Value> = sorted
        .into_iter()
        .map(|r| {
            let mut entry = json!({
                "resource": r.plural,
                "responseKind": {"group": "", "version": "", "kind": r.kind},
                "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": r.singular,
                "verbs": r.verbs,
            });
            if !r.short_names.is_empty() {
                entry["shortNames"] = json!(r.short_names);
            }
            if !r.categories.is_empty() {
                entry["categories"] = json!(r.categories);
            }
            if !r.subresources.is_empty() {
                entry["subresources"] = json!(r
                    .subresources
                    .iter()
                    .map(|s| {
                        let kind_group = if s.group == r.group { "" } else { s.group };
                        let kind_version = if s.group == r.group && s.version == r.version { "" } else { s.version };
                        json!({"subresource": s.name, "responseKind": {"group": kind_group, "version": kind_version, "kind": s.kind}, "verbs": s.verbs})
                    })
                    .collect::<Vec<_>>());
            }
            entry
        })
        .collect();
    vec![json!({"version": version, "resources": resources, "freshness": "Current"})]
}

/// The aggregated document for `/api` (core) or `/apis` (every other group).
pub fn aggregated(core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![json!({"metadata": {"creationTimestamp": null}, "versions": aggregated_versions("")})]
    } else {
        resource::groups()
            .into_iter()
            .map(|g| json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": aggregated_versions(g)}))
            .collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_is_asked_for_by_kubectl_133_only() {
        let k133 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        let k127 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert!(wants_aggregated(Some(k133)));
        assert!(!wants_aggregated(Some(k127)));
        assert!(!wants_aggregated(None));
    }

    #[test]
    fn core_resource_list_has_pods_and_subresources() {
        let list = resource_list("", "v1").unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"pods")
                && names.contains(&"pods/status")
                && names.contains(&"pods/binding")
        );
        assert!(!names.contains(&"leases"));
        assert!(resource_list("coordination.k8s.io", "v1").is_some());
        assert!(resource_list("nope", "v1").is_none());
    }

    #[test]
    fn aggregated_core_lists_pods_with_scope() {
        let doc = aggregated(true);
        let pods = doc["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap();
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["responseKind"]["kind"], "Pod");
        assert_eq!(pods["shortNames"][0], "po");
    }
}
