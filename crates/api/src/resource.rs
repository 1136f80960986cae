//! The resources kubelite serves: their names, scope, verbs, storage prefix and schema, in one
//! table.

use k8s_openapi::api::{
    authentication, authorization, coordination, core, discovery, events, policy, scheduling,
};
use schemars::{JsonSchema, SchemaGenerator};

/// A subresource such as `pods/status`.
#[derive(Debug)]
pub struct Subresource {
    pub name: &'static str,
    pub kind: &'static str,
    /// The group and version of `kind` when it is not the parent's (`pods/eviction` → policy/v1).
    pub group: &'static str,
    pub version: &'static str,
    pub verbs: &'static [&'static str],
}

#[derive(Debug)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// The storage prefix, shared by every version of the same resource (`events` in two groups).
    pub storage: &'static str,
    /// Adds the kind's JSON schema (from its k8s-openapi type) to a generator and names it.
    pub schema: fn(&mut SchemaGenerator) -> String,
}

/// [`Resource::schema`] of the k8s-openapi type `T`.
fn schema_of<T: JsonSchema>(gen: &mut SchemaGenerator) -> String {
    gen.subschema_for::<T>();
    T::schema_name().into_owned()
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];
/// Reviews are asked, not stored: create only (`storage` is empty).
const REVIEW_VERBS: &[&str] = &["create"];

pub static RESOURCES: &[Resource] = &[
    Resource {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        singular: "namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        verbs: &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        subresources: &[Subresource {
            name: "status",
            kind: "Namespace",
            group: "",
            version: "v1",
            verbs: STATUS_VERBS,
        }],
        storage: "namespaces",
        schema: schema_of::<core::v1::Namespace>,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        singular: "pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[
            Subresource {
                name: "binding",
                kind: "Binding",
                group: "",
                version: "v1",
                verbs: &["create"],
            },
            Subresource {
                name: "attach",
                kind: "PodAttachOptions",
                group: "",
                version: "v1",
                verbs: &["create", "get"],
            },
            Subresource {
                name: "eviction",
                kind: "Eviction",
                group: "policy",
                version: "v1",
                verbs: &["create"],
            },
            Subresource {
                name: "exec",
                kind: "PodExecOptions",
                group: "",
                version: "v1",
                verbs: &["create", "get"],
            },
            Subresource {
                name: "log",
                kind: "Pod",
                group: "",
                version: "v1",
                verbs: &["get"],
            },
            Subresource {
                name: "portforward",
                kind: "PodPortForwardOptions",
                group: "",
                version: "v1",
                verbs: &["create", "get"],
            },
            Subresource {
                name: "status",
                kind: "Pod",
                group: "",
                version: "v1",
                verbs: STATUS_VERBS,
            },
        ],
        storage: "pods",
        schema: schema_of::<core::v1::Pod>,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Node",
        plural: "nodes",
        singular: "node",
        namespaced: false,
        short_names: &["no"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[Subresource {
            name: "status",
            kind: "Node",
            group: "",
            version: "v1",
            verbs: STATUS_VERBS,
        }],
        storage: "minions",
        schema: schema_of::<core::v1::Node>,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "events",
        schema: schema_of::<core::v1::Event>,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        singular: "service",
        namespaced: true,
        short_names: &["svc"],
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[Subresource {
            name: "status",
            kind: "Service",
            group: "",
            version: "v1",
            verbs: STATUS_VERBS,
        }],
        storage: "services",
        schema: schema_of::<core::v1::Service>,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Endpoints",
        plural: "endpoints",
        singular: "endpoints",
        namespaced: true,
        short_names: &["ep"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "services/endpoints",
        schema: schema_of::<core::v1::Endpoints>,
    },
    Resource {
        group: "discovery.k8s.io",
        version: "v1",
        kind: "EndpointSlice",
        plural: "endpointslices",
        singular: "endpointslice",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "endpointslices",
        schema: schema_of::<discovery::v1::EndpointSlice>,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        namespaced: true,
        short_names: &["sa"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[Subresource {
            name: "token",
            kind: "TokenRequest",
            group: "authentication.k8s.io",
            version: "v1",
            verbs: &["create"],
        }],
        storage: "serviceaccounts",
        schema: schema_of::<core::v1::ServiceAccount>,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        singular: "configmap",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "configmaps",
        schema: schema_of::<core::v1::ConfigMap>,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        singular: "secret",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "secrets",
        schema: schema_of::<core::v1::Secret>,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "ResourceQuota",
        plural: "resourcequotas",
        singular: "resourcequota",
        namespaced: true,
        short_names: &["quota"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[Subresource {
            name: "status",
            kind: "ResourceQuota",
            group: "",
            version: "v1",
            verbs: STATUS_VERBS,
        }],
        storage: "resourcequotas",
        schema: schema_of::<core::v1::ResourceQuota>,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "PodTemplate",
        plural: "podtemplates",
        singular: "podtemplate",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "podtemplates",
        schema: schema_of::<core::v1::PodTemplate>,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "ReplicationController",
        plural: "replicationcontrollers",
        singular: "replicationcontroller",
        namespaced: true,
        short_names: &["rc"],
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[Subresource {
            name: "status",
            kind: "ReplicationController",
            group: "",
            version: "v1",
            verbs: STATUS_VERBS,
        }],
        storage: "controllers",
        schema: schema_of::<core::v1::ReplicationController>,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "LimitRange",
        plural: "limitranges",
        singular: "limitrange",
        namespaced: true,
        short_names: &["limits"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "limitranges",
        schema: schema_of::<core::v1::LimitRange>,
    },
    Resource {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        singular: "lease",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "leases",
        schema: schema_of::<coordination::v1::Lease>,
    },
    Resource {
        group: "events.k8s.io",
        version: "v1",
        kind: "Event",
        plural: "events",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "events",
        schema: schema_of::<events::v1::Event>,
    },
    Resource {
        group: "policy",
        version: "v1",
        kind: "PodDisruptionBudget",
        plural: "poddisruptionbudgets",
        singular: "poddisruptionbudget",
        namespaced: true,
        short_names: &["pdb"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[Subresource {
            name: "status",
            kind: "PodDisruptionBudget",
            group: "policy",
            version: "v1",
            verbs: STATUS_VERBS,
        }],
        storage: "poddisruptionbudgets",
        schema: schema_of::<policy::v1::PodDisruptionBudget>,
    },
    Resource {
        group: "scheduling.k8s.io",
        version: "v1",
        kind: "PriorityClass",
        plural: "priorityclasses",
        singular: "priorityclass",
        namespaced: false,
        short_names: &["pc"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "priorityclasses",
        schema: schema_of::<scheduling::v1::PriorityClass>,
    },
    Resource {
        group: "authentication.k8s.io",
        version: "v1",
        kind: "TokenReview",
        plural: "tokenreviews",
        singular: "tokenreview",
        namespaced: false,
        short_names: &[],
        categories: &[],
        verbs: REVIEW_VERBS,
        subresources: &[],
        storage: "",
        schema: schema_of::<authentication::v1::TokenReview>,
    },
    Resource {
        group: "authentication.k8s.io",
        version: "v1",
        kind: "SelfSubjectReview",
        plural: "selfsubjectreviews",
        singular: "selfsubjectreview",
        namespaced: false,
        short_names: &[],
        categories: &[],
        verbs: REVIEW_VERBS,
        subresources: &[],
        storage: "",
        schema: schema_of::<authentication::v1::SelfSubjectReview>,
    },
    Resource {
        group: "authorization.k8s.io",
        version: "v1",
        kind: "SubjectAccessReview",
        plural: "subjectaccessreviews",
        singular: "subjectaccessreview",
        namespaced: false,
        short_names: &[],
        categories: &[],
        verbs: REVIEW_VERBS,
        subresources: &[],
        storage: "",
        schema: schema_of::<authorization::v1::SubjectAccessReview>,
    },
    Resource {
        group: "authorization.k8s.io",
        version: "v1",
        kind: "SelfSubjectAccessReview",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        namespaced: false,
        short_names: &[],
        categories: &[],
        verbs: REVIEW_VERBS,
        subresources: &[],
        storage: "",
        schema: schema_of::<authorization::v1::SelfSubjectAccessReview>,
    },
    Resource {
        group: "authorization.k8s.io",
        version: "v1",
        kind: "SelfSubjectRulesReview",
        plural: "selfsubjectrulesreviews",
        singular: "selfsubjectrulesreview",
        namespaced: false,
        short_names: &[],
        categories: &[],
        verbs: REVIEW_VERBS,
        subresources: &[],
        storage: "",
        schema: schema_of::<authorization::v1::SelfSubjectRulesReview>,
    },
    Resource {
        group: "authorization.k8s.io",
        version: "v1",
        kind: "LocalSubjectAccessReview",
        plural: "localsubjectaccessreviews",
        singular: "localsubjectaccessreview",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: REVIEW_VERBS,
        subresources: &[],
        storage: "",
        schema: schema_of::<authorization::v1::LocalSubjectAccessReview>,
    },
];

impl Resource {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("/registry/{}/{ns}/{name}", self.storage),
            _ => format!("/registry/{}/{name}", self.storage),
        }
    }

    /// The store prefix of a namespace's objects, or of all of them.
    pub fn prefix(&self, namespace: Option<&str>) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("/registry/{}/{ns}/", self.storage),
            _ => format!("/registry/{}/", self.storage),
        }
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// Whether objects of this resource are answered rather than stored (the reviews).
    pub fn is_review(&self) -> bool {
        self.storage.is_empty()
    }
}

/// The resource served at `group/version/plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The groups other than core, in the order discovery lists them.
pub fn groups() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !out.contains(&r.group) {
            out.push(r.group);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_registry_layout() {
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!(
            pods.key(Some("default"), "web"),
            "/registry/pods/default/web"
        );
        assert_eq!(pods.prefix(None), "/registry/pods/");
        let nodes = find("", "v1", "nodes").unwrap();
        assert_eq!(nodes.key(None, "n1"), "/registry/minions/n1");
    }

    #[test]
    fn both_event_groups_share_storage() {
        let core = find("", "v1", "events").unwrap();
        let new = find("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(core.prefix(Some("a")), new.prefix(Some("a")));
    }
}
