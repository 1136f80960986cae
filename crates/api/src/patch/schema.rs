//! What a strategic merge patch needs to know of a type: for each field, how a list merges
//! (`patchStrategy` and `patchMergeKey`, as the Go types' tags say) and which type the field
//! holds. The shape of the types comes from k8s-openapi's JSON schemas; the strategies, which
//! those schemas leave out, from Kubernetes' OpenAPI definitions (`list_strategies.json`, written
//! by `cargo xtask list-strategies`).

use std::collections::HashMap;
use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{Map, Value};

use crate::resource::Resource;

/// How a list field merges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListStrategy {
    /// Elements are objects merged by the value of this key (`patchStrategy: merge` with a key).
    ByKey(String),
    /// A set of scalars: the patch's values are added (`patchStrategy: merge` without a key).
    Primitive,
    /// The patch's list replaces the whole list (no `merge` strategy: atomic).
    Replace,
}

/// One field of a type, as a patch sees it.
#[derive(Clone, Debug)]
pub struct Field<'a> {
    pub list: ListStrategy,
    /// The type of the field's value, or of its elements (list) or values (map), when it is an
    /// object type.
    pub ty: Option<&'a str>,
}

/// Every type one resource's objects are made of, by name.
#[derive(Debug)]
pub struct Types {
    root: String,
    definitions: Map<String, Value>,
}

type Strategies = HashMap<String, Map<String, Value>>;

fn strategies() -> &'static Strategies {
    static TABLE: OnceLock<Strategies> = OnceLock::new();
    TABLE.get_or_init(|| {
        serde_json::from_str(include_str!("list_strategies.json")).unwrap_or_default()
    })
}

/// The extensions Kubernetes' OpenAPI definitions give field `field` of type `ty`
/// (`x-kubernetes-patch-strategy` and friends, named without the prefix, camel-cased).
pub fn extensions(ty: &str, field: &str) -> Option<&'static Map<String, Value>> {
    strategies().get(ty)?.get(field)?.as_object()
}

/// Adds the `x-kubernetes-*` list and map extensions to every property of `definitions` (an
/// OpenAPI document's schemas) that has them in Kubernetes' own documents.
pub fn annotate(definitions: &mut Map<String, Value>) {
    for (name, schema) in definitions.iter_mut() {
        let Some(fields) = strategies().get(name) else {
            continue;
        };
        let Some(Value::Object(properties)) = schema.get_mut("properties") else {
            continue;
        };
        for (field, ext) in fields {
            let (Some(Value::Object(property)), Some(ext)) =
                (properties.get_mut(field), ext.as_object())
            else {
                continue;
            };
            for (key, value) in ext {
                property.insert(format!("x-kubernetes-{}", kebab(key)), value.clone());
            }
        }
    }
}

/// `patchMergeKey` → `patch-merge-key`.
fn kebab(camel: &str) -> String {
    let mut out = String::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The name a `$ref` points to (`#/components/schemas/X` or `#/$defs/X`), also when the
/// reference is wrapped in an `allOf` to carry a description beside it.
fn ref_name(schema: &Value) -> Option<&str> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next();
    }
    schema.get("allOf")?.as_array()?.iter().find_map(ref_name)
}

impl Types {
    /// The types of `resource`, built once per resource.
    pub fn of(resource: &'static Resource) -> &'static Types {
        type ByResource = HashMap<(&'static str, &'static str), &'static Types>;
        static BY_RESOURCE: OnceLock<std::sync::Mutex<ByResource>> = OnceLock::new();
        let map = BY_RESOURCE.get_or_init(Default::default);
        let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
        // Built once per resource and kept for the life of the process.
        map.entry((resource.group, resource.plural))
            .or_insert_with(|| {
                let mut gen: SchemaGenerator = SchemaSettings::openapi3().into_generator();
                let root = (resource.schema)(&mut gen);
                Box::leak(Box::new(Types {
                    root,
                    definitions: gen.take_definitions(true),
                }))
            })
    }

    /// The types of the served kind `kind` of `group`, if kubelite serves it.
    pub fn of_kind(group: &str, kind: &str) -> Option<&'static Types> {
        crate::resource::RESOURCES
            .iter()
            .find(|r| r.group == group && r.kind == kind)
            .map(Types::of)
    }

    /// The resource's own type (`io.k8s.api.core.v1.Pod`).
    pub fn root(&self) -> &str {
        &self.root
    }

    /// Field `field` of type `ty`; an unknown one is a replaced list holding no known type.
    pub fn field<'a>(&'a self, ty: &str, field: &str) -> Field<'a> {
        let schema = self
            .definitions
            .get(ty)
            .and_then(|t| t.get("properties"))
            .and_then(|p| p.get(field));
        let inner = schema.and_then(|s| {
            ref_name(s)
                .or_else(|| s.get("items").and_then(ref_name))
                .or_else(|| s.get("additionalProperties").and_then(ref_name))
        });
        Field {
            list: list_strategy(extensions(ty, field)),
            ty: inner.filter(|name| self.definitions.contains_key(*name)),
        }
    }
}

fn list_strategy(ext: Option<&Map<String, Value>>) -> ListStrategy {
    let Some(ext) = ext else {
        return ListStrategy::Replace;
    };
    let merges = ext
        .get("patchStrategy")
        .and_then(Value::as_str)
        .is_some_and(|s| s.split(',').any(|part| part == "merge"));
    match (merges, ext.get("patchMergeKey").and_then(Value::as_str)) {
        (true, Some(key)) => ListStrategy::ByKey(key.to_string()),
        (true, None) => ListStrategy::Primitive,
        (false, _) => ListStrategy::Replace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::{apply, PatchType};
    use serde_json::json;

    /// Every list field reachable from type `ty`, as a dotted path, with its strategy.
    fn list_fields(
        types: &Types,
        ty: &str,
        prefix: &str,
        stack: &mut Vec<String>,
    ) -> Vec<(String, ListStrategy)> {
        let mut out = Vec::new();
        let properties = types.definitions[ty]["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (name, schema) in properties {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            let field = types.field(ty, &name);
            if schema.get("type").and_then(Value::as_str) == Some("array") {
                out.push((path.clone(), field.list.clone()));
            }
            if let Some(inner) = field.ty {
                if !stack.iter().any(|t| t == inner) {
                    stack.push(inner.to_string());
                    out.extend(list_fields(types, inner, &path, stack));
                    stack.pop();
                }
            }
        }
        out
    }

    /// The lists of a Pod that merge rather than being replaced, as Kubernetes' Go types tag them
    /// (`patchStrategy:"merge"` and `patchMergeKey`); every other list of a Pod is atomic.
    fn pod_merging_lists() -> Vec<(String, ListStrategy)> {
        let by = |k: &str| ListStrategy::ByKey(k.to_string());
        let mut lists = vec![
            ("spec.hostAliases".to_string(), by("ip")),
            ("spec.imagePullSecrets".into(), by("name")),
            ("spec.resourceClaims".into(), by("name")),
            ("spec.schedulingGates".into(), by("name")),
            ("spec.topologySpreadConstraints".into(), by("topologyKey")),
            ("spec.volumes".into(), by("name")),
            ("status.conditions".into(), by("type")),
            ("status.hostIPs".into(), by("ip")),
            ("status.podIPs".into(), by("ip")),
            ("status.resourceClaimStatuses".into(), by("name")),
        ];
        for meta in [
            "metadata",
            "spec.volumes.ephemeral.volumeClaimTemplate.metadata",
        ] {
            lists.push((format!("{meta}.finalizers"), ListStrategy::Primitive));
            lists.push((format!("{meta}.ownerReferences"), by("uid")));
        }
        for c in ["containers", "initContainers", "ephemeralContainers"] {
            lists.push((format!("spec.{c}"), by("name")));
            lists.push((format!("spec.{c}.env"), by("name")));
            lists.push((format!("spec.{c}.ports"), by("containerPort")));
            lists.push((format!("spec.{c}.volumeDevices"), by("devicePath")));
            lists.push((format!("spec.{c}.volumeMounts"), by("mountPath")));
        }
        for s in [
            "containerStatuses",
            "initContainerStatuses",
            "ephemeralContainerStatuses",
        ] {
            lists.push((format!("status.{s}.allocatedResourcesStatus"), by("name")));
            lists.push((format!("status.{s}.volumeMounts"), by("mountPath")));
        }
        lists.sort_by(|a, b| a.0.cmp(&b.0));
        lists
    }

    fn node_merging_lists() -> Vec<(String, ListStrategy)> {
        vec![
            ("metadata.finalizers".to_string(), ListStrategy::Primitive),
            (
                "metadata.ownerReferences".into(),
                ListStrategy::ByKey("uid".into()),
            ),
            ("spec.podCIDRs".into(), ListStrategy::Primitive),
            (
                "status.addresses".into(),
                ListStrategy::ByKey("type".into()),
            ),
            (
                "status.conditions".into(),
                ListStrategy::ByKey("type".into()),
            ),
        ]
    }

    fn resource(plural: &str) -> &'static Resource {
        crate::resource::find("", "v1", plural).expect("served")
    }

    /// `{a: {b: [{<key of b>: "k"} ...]}}`: the object along `path`, each list on the way one
    /// element named by its merge key, and `leaf` at the end.
    fn nest(types: &Types, path: &[&str], leaf: Value) -> Value {
        fn go(types: &Types, ty: Option<&str>, path: &[&str], leaf: Value) -> Value {
            let Some((first, rest)) = path.split_first() else {
                return leaf;
            };
            let field = ty.map(|t| types.field(t, first));
            let inner = field.as_ref().and_then(|f| f.ty);
            let value = go(types, inner, rest, leaf);
            let value = match (rest.is_empty(), field.map(|f| f.list)) {
                (false, Some(ListStrategy::ByKey(key))) => {
                    let mut element = value;
                    element[key.as_str()] = json!("k");
                    json!([element])
                }
                (false, Some(ListStrategy::Replace | ListStrategy::Primitive))
                    if is_list(types, ty, first) =>
                {
                    json!([value])
                }
                _ => value,
            };
            json!({ *first: value })
        }
        go(types, Some(types.root()), path, leaf)
    }

    fn is_list(types: &Types, ty: Option<&str>, field: &str) -> bool {
        ty.and_then(|t| types.definitions[t]["properties"].get(field))
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
            == Some("array")
    }

    /// The length of the list at `path` (every list on the way has one element).
    fn length_at(doc: &Value, path: &[&str]) -> usize {
        let mut at = doc;
        for (i, field) in path.iter().enumerate() {
            at = &at[*field];
            if i + 1 < path.len() {
                if let Some(first) = at.as_array().and_then(|a| a.first()) {
                    at = first;
                }
            }
        }
        at.as_array().map_or(0, Vec::len)
    }

    #[test]
    fn every_list_of_a_pod_and_a_node_merges_as_kubernetes_tags_it() {
        for (plural, merging, total) in [
            ("pods", pod_merging_lists(), 171),
            ("nodes", node_merging_lists(), 12),
        ] {
            let types = Types::of(resource(plural));
            let lists = list_fields(types, types.root(), "", &mut Vec::new());
            // As many lists as Kubernetes' v1.33 definitions give the type.
            assert_eq!(lists.len(), total, "{plural}: {lists:?}");
            let mut found: Vec<(String, ListStrategy)> = lists
                .iter()
                .filter(|(_, s)| *s != ListStrategy::Replace)
                .cloned()
                .collect();
            found.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(found, merging, "{plural}");
            // And each merges so: two elements, then a patch of one other.
            let strategies: HashMap<String, ListStrategy> = lists.iter().cloned().collect();
            for (dotted, strategy) in &lists {
                let path: Vec<&str> = dotted.split('.').collect();
                // Inside a list that is replaced whole, nothing merges.
                let atomic_above = (1..path.len())
                    .any(|n| strategies.get(&path[..n].join(".")) == Some(&ListStrategy::Replace));
                let element = |n: &str| match strategy {
                    ListStrategy::ByKey(key) => json!({ key.as_str(): n }),
                    ListStrategy::Primitive => json!(n),
                    ListStrategy::Replace => json!({ "x": n }),
                };
                let original = nest(types, &path, json!([element("a"), element("b")]));
                let patch = nest(types, &path, json!([element("c")]));
                let out = apply(
                    resource(plural),
                    &original,
                    patch.to_string().as_bytes(),
                    PatchType::Strategic,
                )
                .unwrap_or_else(|e| panic!("{plural} {path:?}: {}", e.message));
                let expected = if *strategy == ListStrategy::Replace || atomic_above {
                    1
                } else {
                    3
                };
                assert_eq!(length_at(&out, &path), expected, "{plural} {path:?}: {out}");
            }
        }
    }

    #[test]
    fn served_documents_carry_the_strategies() {
        let mut definitions = Map::new();
        definitions.insert(
            "io.k8s.api.core.v1.PodSpec".into(),
            json!({"properties": {"volumes": {"type": "array"}, "hostname": {"type": "string"}}}),
        );
        annotate(&mut definitions);
        let volumes = &definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"];
        assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
        assert_eq!(volumes["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(volumes["x-kubernetes-list-type"], "map");
        assert_eq!(volumes["x-kubernetes-list-map-keys"], json!(["name"]));
        assert!(
            definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["hostname"]
                .get("x-kubernetes-list-type")
                .is_none()
        );
    }
}
