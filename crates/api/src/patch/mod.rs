//! Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and Kubernetes' strategic merge
//! patch, which merges lists of objects by a key (containers by `name`) and understands the
//! `$patch`, `$setElementOrder`, `$retainKeys` and `$deleteFromPrimitiveList` directives.

use serde_json::{Map, Value};

use crate::status::ApiError;

/// The patch formats, by request Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            _ => None,
        }
    }
}

/// The most operations one JSON patch may hold (kube-apiserver's limit).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;
/// The most a JSON patch's `copy` operations may add together: no object larger can be stored.
pub const MAX_COPIED_BYTES: usize = crate::meta::MAX_STORED_OBJECT;

/// Applies a JSON patch one operation at a time, so that `copy`s doubling a value cannot grow
/// the document past what could be stored.
fn apply_json_patch(original: &Value, ops: json_patch::Patch) -> Result<Value, ApiError> {
    if ops.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!(
                "Request entity too large: The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
                ops.0.len()
            ),
        ));
    }
    let invalid = |e: String| {
        ApiError::new(
            422,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {e}"),
        )
    };
    let mut doc = original.clone();
    let mut copied = 0usize;
    for op in ops.0 {
        if let json_patch::PatchOperation::Copy(c) = &op {
            let size = doc
                .pointer(c.from.as_str())
                .map_or(0, |v| serde_json::to_vec(v).map_or(0, |b| b.len()));
            copied += size;
            if copied > MAX_COPIED_BYTES {
                return Err(invalid(format!(
                    "Unable to complete the copy, the accumulated size increase of copy is {copied}, exceeding the limit {MAX_COPIED_BYTES}"
                )));
            }
        }
        json_patch::patch(&mut doc, &[op]).map_err(|e| invalid(e.to_string()))?;
    }
    Ok(doc)
}

/// Applies `patch` to `original` and returns the patched object.
pub fn apply(original: &Value, patch: &[u8], kind: PatchType) -> Result<Value, ApiError> {
    let body: Value = serde_json::from_slice(patch)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    match kind {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            apply_json_patch(original, ops)
        }
        PatchType::Merge => {
            if !body.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: a merge patch must be a JSON object",
                ));
            }
            let mut doc = original.clone();
            json_patch::merge(&mut doc, &body);
            Ok(doc)
        }
        PatchType::Strategic => {
            let Value::Object(p) = body else {
                return Err(ApiError::bad_request(
                    "error decoding patch: a strategic merge patch must be a JSON object",
                ));
            };
            let Value::Object(o) = original.clone() else {
                return Err(ApiError::internal("the stored object is not a JSON object"));
            };
            Ok(Value::Object(merge_map(o, p, &mut Vec::new())?))
        }
    }
}

/// How a list field merges, from the `patchStrategy`/`patchMergeKey` tags of the Kubernetes types
/// kubelite serves. Lists not named here are replaced whole.
enum ListStrategy {
    ByKey(&'static str),
    Primitive,
    Replace,
}

fn strategy(path: &[String]) -> ListStrategy {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["metadata", "finalizers"] => ListStrategy::Primitive,
        ["metadata", "ownerReferences"] => ListStrategy::ByKey("uid"),
        ["spec", "containers" | "initContainers" | "ephemeralContainers"] => {
            ListStrategy::ByKey("name")
        }
        ["spec", "volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates"] => {
            ListStrategy::ByKey("name")
        }
        ["spec", "hostAliases"] => ListStrategy::ByKey("ip"),
        // A Node's `spec.taints` is atomic (`+listType=atomic`): a patch replaces it whole.
        ["spec", "containers" | "initContainers" | "ephemeralContainers", "ports"] => {
            ListStrategy::ByKey("containerPort")
        }
        ["spec", "containers" | "initContainers" | "ephemeralContainers", "env"] => {
            ListStrategy::ByKey("name")
        }
        ["spec", "containers" | "initContainers" | "ephemeralContainers", "volumeMounts"] => {
            ListStrategy::ByKey("mountPath")
        }
        ["spec", "containers" | "initContainers" | "ephemeralContainers", "volumeDevices"] => {
            ListStrategy::ByKey("devicePath")
        }
        ["status", "conditions"] => ListStrategy::ByKey("type"),
        ["status", "addresses"] => ListStrategy::ByKey("type"),
        ["status", "podIPs" | "hostIPs"] => ListStrategy::ByKey("ip"),
        _ => ListStrategy::Replace,
    }
}

fn invalid_patch(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    path: &mut Vec<String>,
) -> Result<Map<String, Value>, ApiError> {
    match patch.remove("$patch") {
        Some(Value::String(d)) if d == "replace" => return Ok(strip_directives(patch)),
        Some(Value::String(d)) if d == "delete" => return Ok(Map::new()),
        Some(other) => return Err(invalid_patch(format!("unknown patch type: {other}"))),
        None => {}
    }
    let retain = patch.remove("$retainKeys");
    let mut orders = Vec::new();
    let mut deletions = Vec::new();
    let keys: Vec<String> = patch.keys().cloned().collect();
    for key in keys {
        if let Some(field) = key.strip_prefix("$setElementOrder/") {
            orders.push((field.to_string(), patch.remove(&key).unwrap_or_default()));
        } else if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            deletions.push((field.to_string(), patch.remove(&key).unwrap_or_default()));
        }
    }
    for (key, value) in patch {
        path.push(key.clone());
        let merged = match (original.remove(&key), value) {
            (_, Value::Null) => None,
            (Some(Value::Object(o)), Value::Object(p)) => {
                let deleting = p.get("$patch").and_then(Value::as_str) == Some("delete");
                if deleting {
                    None
                } else {
                    Some(Value::Object(merge_map(o, p, path)?))
                }
            }
            (Some(Value::Array(o)), Value::Array(p)) => Some(Value::Array(merge_list(o, p, path)?)),
            (None, Value::Object(p)) => {
                let deleting = p.get("$patch").and_then(Value::as_str) == Some("delete");
                if deleting {
                    None
                } else {
                    Some(Value::Object(merge_map(Map::new(), p, path)?))
                }
            }
            (None, Value::Array(p)) => Some(Value::Array(merge_list(Vec::new(), p, path)?)),
            (_, v) => Some(v),
        };
        path.pop();
        if let Some(v) = merged {
            original.insert(key, v);
        }
    }
    for (field, values) in deletions {
        if let (Some(Value::Array(list)), Value::Array(remove)) = (original.get_mut(&field), values)
        {
            list.retain(|v| !remove.contains(v));
        }
    }
    for (field, order) in orders {
        path.push(field.clone());
        if let (Some(Value::Array(list)), Value::Array(order)) = (original.get_mut(&field), order) {
            let key = match strategy(path) {
                ListStrategy::ByKey(k) => Some(k),
                _ => None,
            };
            let position = |v: &Value| {
                order
                    .iter()
                    .position(|o| match key {
                        Some(k) => o.get(k) == v.get(k),
                        None => o == v,
                    })
                    .unwrap_or(usize::MAX)
            };
            list.sort_by_key(position);
        }
        path.pop();
    }
    if let Some(Value::Array(keep)) = retain {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        original.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(original)
}

fn strip_directives(mut m: Map<String, Value>) -> Map<String, Value> {
    m.retain(|k, _| !k.starts_with('$'));
    m
}

fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    path: &mut Vec<String>,
) -> Result<Vec<Value>, ApiError> {
    // `{"$patch": "replace"}` as an element replaces the whole list with the other elements.
    if patch
        .iter()
        .any(|v| v.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(patch
            .into_iter()
            .filter(|v| v.get("$patch").is_none())
            .collect());
    }
    match strategy(path) {
        ListStrategy::Replace => Ok(patch),
        ListStrategy::Primitive => {
            let mut out = original;
            for v in patch {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Ok(out)
        }
        ListStrategy::ByKey(key) => {
            let mut out = original;
            for item in patch {
                let Value::Object(mut item) = item else {
                    return Err(invalid_patch(format!(
                        "the list {} must hold objects merged by {key}",
                        path.join(".")
                    )));
                };
                let Some(id) = item.get(key).cloned() else {
                    return Err(invalid_patch(format!(
                        "map: {item:?} does not contain declared merge key: {key}"
                    )));
                };
                let at = out.iter().position(|o| o.get(key) == Some(&id));
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (at, delete) {
                    (Some(i), true) => {
                        out.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => {
                        let existing = match out[i].take() {
                            Value::Object(m) => m,
                            _ => Map::new(),
                        };
                        out[i] = Value::Object(merge_map(existing, item, path)?);
                    }
                    (None, false) => {
                        item.remove("$patch");
                        out.push(Value::Object(merge_map(Map::new(), item, path)?));
                    }
                }
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_patches_are_bounded_in_operations_and_in_what_copies_add() {
        let doc = serde_json::json!({"spec": {"args": ["x"]}});
        let doubling: Vec<Value> = (0..40)
            .map(
                |_| serde_json::json!({"op": "copy", "from": "/spec/args", "path": "/spec/args/-"}),
            )
            .collect();
        let body = serde_json::to_vec(&doubling).expect("json");
        let err = apply(&doc, &body, PatchType::Json).expect_err("bounded");
        assert_eq!(err.code, 422);
        assert!(
            err.message.contains("accumulated size increase of copy"),
            "{}",
            err.message
        );
        let many: Vec<Value> = (0..10_001)
            .map(|_| serde_json::json!({"op": "test", "path": "/spec", "value": {"args": ["x"]}}))
            .collect();
        let err = apply(
            &doc,
            &serde_json::to_vec(&many).expect("json"),
            PatchType::Json,
        )
        .expect_err("too many");
        assert_eq!(err.code, 413);
        assert!(
            err.message.ends_with("is 10000, got 10001"),
            "{}",
            err.message
        );
        let fine = serde_json::json!([{"op": "copy", "from": "/spec/args", "path": "/spec/more"}]);
        let done = apply(
            &doc,
            &serde_json::to_vec(&fine).expect("json"),
            PatchType::Json,
        )
        .expect("a small copy");
        assert_eq!(done["spec"]["more"], serde_json::json!(["x"]));
    }
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x"]},
               "spec": {"containers": [
                   {"name": "one", "image": "kuard:1", "env": [{"name": "A", "value": "1"}]},
                   {"name": "two", "image": "kuard:1"}]}})
    }

    fn smp(patch: Value) -> Value {
        apply(&pod(), patch.to_string().as_bytes(), PatchType::Strategic).unwrap()
    }

    #[test]
    fn containers_merge_by_name() {
        let out = smp(
            json!({"spec": {"$setElementOrder/containers": [{"name": "one"}, {"name": "two"}],
            "containers": [{"name": "two", "image": "kuard:2"}]}}),
        );
        let cs = out["spec"]["containers"].as_array().unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0]["name"], "one");
        assert_eq!(cs[1]["image"], "kuard:2");
        assert_eq!(cs[0]["env"][0]["name"], "A", "untouched fields stay");
    }

    #[test]
    fn node_taints_are_replaced_whole() {
        let node = json!({"spec": {"taints": [
            {"key": "a", "effect": "NoSchedule"},
            {"key": "a", "effect": "NoExecute"},
            {"key": "b", "effect": "NoSchedule"},
        ]}});
        let patch = json!({"spec": {"taints": [{"key": "b", "effect": "NoSchedule"}]}});
        let out = apply(
            &node,
            &serde_json::to_vec(&patch).unwrap(),
            PatchType::Strategic,
        )
        .unwrap();
        assert_eq!(out["spec"]["taints"], patch["spec"]["taints"]);
    }

    #[test]
    fn directives_delete_and_replace() {
        let out = smp(json!({"spec": {"containers": [{"name": "one", "$patch": "delete"}]}}));
        assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 1);
        let out = smp(
            json!({"spec": {"containers": [{"name": "z", "image": "i"}, {"$patch": "replace"}]}}),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "z", "image": "i"}])
        );
        let out = smp(json!({"metadata": {"labels": {"a": null, "b": "2"}}}));
        assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
        let out = smp(json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}));
        assert_eq!(out["metadata"]["finalizers"], json!([]));
        let out = smp(json!({"metadata": {"finalizers": ["y"]}}));
        assert_eq!(out["metadata"]["finalizers"], json!(["x", "y"]));
    }

    #[test]
    fn json_and_merge_patches() {
        let out = apply(
            &pod(),
            br#"[{"op":"add","path":"/spec/containers/0/args","value":["--address",":8081"]}]"#,
            PatchType::Json,
        )
        .unwrap();
        assert_eq!(out["spec"]["containers"][0]["args"][1], ":8081");
        let err = apply(
            &pod(),
            br#"[{"op":"remove","path":"/nope"}]"#,
            PatchType::Json,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        let out = apply(
            &pod(),
            br#"{"spec":{"containers":[{"name":"x"}]}}"#,
            PatchType::Merge,
        )
        .unwrap();
        assert_eq!(
            out["spec"]["containers"].as_array().unwrap().len(),
            1,
            "merge patch replaces lists"
        );
        assert_eq!(
            apply(&pod(), b"{bad", PatchType::Merge).unwrap_err().code,
            400
        );
    }
}
