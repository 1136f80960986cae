//! `cargo xtask list-strategies`: the merge strategies of the Kubernetes types' fields, taken from
//! the OpenAPI definitions Kubernetes publishes, as the table `api::patch` merges by.
//!
//! k8s-openapi's JSON schemas give the shape of every type but leave out the
//! `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys` and `x-kubernetes-map-type` extensions, so the table keeps just
//! those, per type and field, for every type (not only the served ones). The definitions of one
//! Kubernetes version as a single JSON document are in the `kubernetes-validate` package on PyPI
//! (`kubernetes_validate/kubernetes-json-schema/v1.33.0-local/_definitions.json`); the Kubernetes
//! repository's `api/openapi-spec/swagger.json` has the same under `definitions`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Map, Value};

/// Where the table lives, from the workspace root.
pub const DEFAULT_OUT: &str = "crates/api/src/patch/list_strategies.json";

const EXTENSIONS: &[&str] = &[
    "x-kubernetes-patch-strategy",
    "x-kubernetes-patch-merge-key",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
];

pub fn run(definitions: &Path, out: &Path) -> Result<()> {
    let text = std::fs::read_to_string(definitions)
        .with_context(|| format!("reading {}", definitions.display()))?;
    let doc: Value = serde_json::from_str(&text).context("the definitions are not JSON")?;
    let types = doc
        .get("$defs")
        .or_else(|| doc.get("definitions"))
        .and_then(Value::as_object)
        .context("no `$defs` or `definitions` object")?;
    let table = extract(types);
    let mut body = serde_json::to_string_pretty(&table)?;
    body.push('\n');
    std::fs::write(out, body).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{}: {} types, {} fields",
        out.display(),
        table.len(),
        table.values().map(Map::len).sum::<usize>()
    );
    Ok(())
}

/// Type name → field → the extensions it carries; types whose fields carry none are left out.
fn extract(types: &Map<String, Value>) -> BTreeMap<String, Map<String, Value>> {
    let mut table = BTreeMap::new();
    for (name, ty) in types {
        let Some(properties) = ty.get("properties").and_then(Value::as_object) else {
            continue;
        };
        let fields: Map<String, Value> = properties
            .iter()
            .filter_map(|(field, schema)| {
                let kept: Map<String, Value> = EXTENSIONS
                    .iter()
                    .filter_map(|ext| Some((short(ext).to_string(), schema.get(*ext)?.clone())))
                    .collect();
                (!kept.is_empty()).then(|| (field.clone(), Value::Object(kept)))
            })
            .collect();
        if !fields.is_empty() {
            table.insert(name.clone(), fields);
        }
    }
    table
}

/// `x-kubernetes-patch-merge-key` → `patchMergeKey`.
fn short(extension: &str) -> &'static str {
    match extension {
        "x-kubernetes-patch-strategy" => "patchStrategy",
        "x-kubernetes-patch-merge-key" => "patchMergeKey",
        "x-kubernetes-list-type" => "listType",
        "x-kubernetes-list-map-keys" => "listMapKeys",
        _ => "mapType",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_fields_with_strategies_are_kept() {
        let types = json!({
            "io.k8s.api.core.v1.PodSpec": {"properties": {
                "containers": {"type": "array", "x-kubernetes-patch-strategy": "merge",
                               "x-kubernetes-patch-merge-key": "name", "description": "…"},
                "hostname": {"type": "string"}
            }},
            "io.k8s.api.core.v1.Plain": {"properties": {"a": {"type": "string"}}}
        });
        let table = extract(types.as_object().unwrap());
        assert_eq!(
            serde_json::to_value(&table).unwrap(),
            json!({"io.k8s.api.core.v1.PodSpec": {"containers":
                {"patchStrategy": "merge", "patchMergeKey": "name"}}})
        );
    }
}
