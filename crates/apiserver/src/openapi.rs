//! OpenAPI documents, generated from the k8s-openapi types' JSON schemas (never hand-written):
//! v3 per group version, with the `x-kubernetes-group-version-kind` extensions `kubectl explain`
//! needs and a `patch` operation carrying `fieldValidation` for every kind, which is how kubectl
//! detects server-side field validation; and the minimal v2 document kubectl 1.27/1.28 insist on.

use std::collections::BTreeMap;

use bytes::Bytes;
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};
use sha2::Digest;

use api::resource::{Resource, RESOURCES};

/// One served document and its hash (uppercase hex SHA-512, as Kubernetes computes it).
#[derive(Clone, Debug)]
pub struct Document {
    pub body: Bytes,
    pub hash: String,
}

impl Document {
    fn new(value: &Value) -> Self {
        let body = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
        let hash = hex::encode_upper(sha2::Sha512::digest(&body));
        Document { body, hash }
    }
}

/// Every OpenAPI document, built once at start.
#[derive(Clone, Debug)]
pub struct Documents {
    /// `/openapi/v3`: the index with hash-addressed URLs.
    pub index: Document,
    /// `api/v1`, `apis/<group>/<version>` → document.
    pub by_path: BTreeMap<String, Document>,
}

/// The minimal protobuf OpenAPI v2 `Document` (swagger "2.0", info title and version).
pub const OPENAPI_V2_PROTOBUF: &[u8] = b"\x0a\x032.0\x12\x15\x0a\x0aKubernetes\x12\x07v1.33.0";

fn param(name: &str, location: &str, description: &str) -> Value {
    let mut p = json!({"name": name, "in": location, "description": description, "schema": {"type": "string", "uniqueItems": true}});
    if location == "path" {
        p["required"] = json!(true);
    }
    p
}

fn operation(r: &Resource, action: &str, schema: &str, id: &str, params: Vec<Value>) -> Value {
    let reference = json!({"$ref": format!("#/components/schemas/{schema}")});
    let mut op = json!({
        "description": format!("{action} {}", r.kind),
        "operationId": id,
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
    });
    if matches!(action, "post" | "put" | "patch") {
        let content_types: &[&str] = if action == "patch" {
            &[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
            ]
        } else {
            &["application/json"]
        };
        let content: Map<String, Value> = content_types
            .iter()
            .map(|ct| (ct.to_string(), json!({"schema": if action == "patch" { json!({"type": "object"}) } else { reference.clone() }})))
            .collect();
        op["requestBody"] = json!({"content": content, "required": true});
    }
    op
}

fn write_params() -> Vec<Value> {
    vec![
        param("dryRun", "query", "When present, indicates that modifications should not be persisted."),
        param("fieldManager", "query", "fieldManager is a name associated with the actor or entity that is making these changes."),
        param("fieldValidation", "query", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict."),
    ]
}

fn paths_for(r: &Resource, schema: &str, base: &str, paths: &mut Map<String, Value>) {
    let (collection, item) = if r.namespaced {
        (
            format!("{base}/namespaces/{{namespace}}/{}", r.plural),
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural),
        )
    } else {
        (
            format!("{base}/{}", r.plural),
            format!("{base}/{}/{{name}}", r.plural),
        )
    };
    let id = |verb: &str| {
        format!(
            "{verb}{}{}",
            if r.namespaced { "Namespaced" } else { "" },
            r.kind
        )
    };
    let mut path_params = vec![];
    if r.namespaced {
        path_params.push(param(
            "namespace",
            "path",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    let mut coll = json!({
        "get": operation(r, "list", schema, &id("list"), vec![param("labelSelector", "query", "A selector to restrict the list of returned objects by their labels."), param("fieldSelector", "query", "A selector to restrict the list of returned objects by their fields."), param("watch", "query", "Watch for changes to the described resources.")]),
        "post": operation(r, "post", schema, &id("create"), write_params()),
        "delete": operation(r, "deletecollection", schema, &id("deletecollection"), vec![]),
        "parameters": path_params.clone(),
    });
    if !r.has_verb("deletecollection") {
        coll.as_object_mut().map(|m| m.remove("delete"));
    }
    paths.insert(collection, coll);
    let mut item_params = path_params.clone();
    item_params.insert(0, param("name", "path", &format!("name of the {}", r.kind)));
    paths.insert(item.clone(), json!({
        "get": operation(r, "get", schema, &id("read"), vec![]),
        "put": operation(r, "put", schema, &id("replace"), write_params()),
        "patch": operation(r, "patch", schema, &id("patch"), write_params()),
        "delete": operation(r, "delete", schema, &id("delete"), vec![param("gracePeriodSeconds", "query", "The duration in seconds before the object should be deleted.")]),
        "parameters": item_params.clone(),
    }));
    for s in r.subresources.iter().filter(|s| s.name == "status") {
        paths.insert(
            format!("{item}/{}", s.name),
            json!({
                "get": operation(r, "get", schema, &id("read_status"), vec![]),
                "put": operation(r, "put", schema, &id("replace_status"), write_params()),
                "patch": operation(r, "patch", schema, &id("patch_status"), write_params()),
                "parameters": item_params.clone(),
            }),
        );
    }
    if r.namespaced {
        paths.insert(format!("{base}/{}", r.plural), json!({
            "get": operation(r, "list", schema, &format!("list{}ForAllNamespaces", r.kind), vec![]),
        }));
    }
}

fn group_version_document(group: &str, version: &str) -> Value {
    let mut gen = SchemaSettings::openapi3().into_generator();
    let base = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = Map::new();
    let mut kinds = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let schema = (r.schema)(&mut gen);
        paths_for(r, &schema, &base, &mut paths);
        kinds.push((schema, r));
    }
    let mut schemas = gen.take_definitions(true);
    api::patch::schema::annotate(&mut schemas);
    for (schema, r) in kinds {
        if let Some(Value::Object(s)) = schemas.get_mut(&schema) {
            s.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": r.group, "kind": r.kind, "version": r.version}]),
            );
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
        },
    })
}

impl Documents {
    pub fn build() -> Self {
        let mut gvs: Vec<(&str, &str)> = RESOURCES.iter().map(|r| (r.group, r.version)).collect();
        gvs.dedup();
        gvs.sort();
        gvs.dedup();
        let mut by_path = BTreeMap::new();
        for (g, v) in gvs {
            let path = if g.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{g}/{v}")
            };
            by_path.insert(path, Document::new(&group_version_document(g, v)));
        }
        let index_paths: Map<String, Value> = by_path
            .iter()
            .map(|(p, d)| {
                (
                    p.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", d.hash)}),
                )
            })
            .collect();
        let index = Document::new(&json!({"paths": index_paths}));
        Documents { index, by_path }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_document_explains_container_image() {
        let docs = Documents::build();
        let core: Value = serde_json::from_slice(&docs.by_path["api/v1"].body).unwrap();
        let pod = &core["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
        assert_eq!(pod["x-kubernetes-group-version-kind"][0]["kind"], "Pod");
        let container = &core["components"]["schemas"]["io.k8s.api.core.v1.Container"];
        assert!(container["properties"]["image"]["description"]
            .as_str()
            .unwrap()
            .starts_with("Container image name."));
        let patch = &core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Pod");
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        let index: Value = serde_json::from_slice(&docs.index.body).unwrap();
        let url = index["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        assert!(url.ends_with(&docs.by_path["api/v1"].hash));
        assert!(docs.by_path.contains_key("apis/coordination.k8s.io/v1"));
    }
}
