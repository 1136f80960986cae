//! Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and Kubernetes' strategic merge
//! patch, which merges each list as its type says (containers by `name`, finalizers as a set,
//! the rest replaced whole; [`schema`]) and understands the `$patch`, `$setElementOrder`,
//! `$retainKeys` and `$deleteFromPrimitiveList` directives.

pub mod diff;
pub mod schema;

use serde_json::{Map, Value};

use crate::resource::Resource;
use crate::status::ApiError;
use schema::{ListStrategy, Types};

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

/// Applies `patch` to `original`, an object of `resource`, and returns the patched object.
pub fn apply(
    resource: &'static Resource,
    original: &Value,
    patch: &[u8],
    kind: PatchType,
) -> Result<Value, ApiError> {
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
            let types = Types::of(resource);
            let merger = Merger { types };
            Ok(Value::Object(merger.merge_map(o, p, Some(types.root()))?))
        }
    }
}

fn invalid_patch(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

/// A strategic merge over the types of one resource.
struct Merger<'t> {
    types: &'t Types,
}

impl Merger<'_> {
    /// How field `field` of type `ty` merges, and the type it holds.
    fn field(&self, ty: Option<&str>, field: &str) -> (ListStrategy, Option<&str>) {
        match ty {
            Some(ty) => {
                let f = self.types.field(ty, field);
                (f.list, f.ty)
            }
            None => (ListStrategy::Replace, None),
        }
    }

    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        ty: Option<&str>,
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
            let (strategy, inner) = self.field(ty, &key);
            let merged = match (original.remove(&key), value) {
                (_, Value::Null) => None,
                (_, Value::Object(p)) if is_delete(&p) => None,
                (Some(Value::Object(o)), Value::Object(p)) => {
                    Some(Value::Object(self.merge_map(o, p, inner)?))
                }
                (None, Value::Object(p)) => {
                    Some(Value::Object(self.merge_map(Map::new(), p, inner)?))
                }
                (Some(Value::Array(o)), Value::Array(p)) => {
                    Some(Value::Array(self.merge_list(o, p, &strategy, inner, &key)?))
                }
                (None, Value::Array(p)) => Some(Value::Array(self.merge_list(
                    Vec::new(),
                    p,
                    &strategy,
                    inner,
                    &key,
                )?)),
                (_, v) => Some(v),
            };
            if let Some(v) = merged {
                original.insert(key, v);
            }
        }
        for (field, values) in deletions {
            if let (Some(Value::Array(list)), Value::Array(remove)) =
                (original.get_mut(&field), values)
            {
                list.retain(|v| !remove.contains(v));
            }
        }
        for (field, order) in orders {
            let key = match self.field(ty, &field).0 {
                ListStrategy::ByKey(k) => Some(k),
                _ => None,
            };
            if let (Some(Value::Array(list)), Value::Array(order)) =
                (original.get_mut(&field), order)
            {
                let position = |v: &Value| {
                    order
                        .iter()
                        .position(|o| match &key {
                            Some(k) => o.get(k) == v.get(k),
                            None => o == v,
                        })
                        .unwrap_or(usize::MAX)
                };
                list.sort_by_key(position);
            }
        }
        if let Some(Value::Array(keep)) = retain {
            let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
            original.retain(|k, _| keep.contains(&k.as_str()));
        }
        Ok(original)
    }

    /// Merges list `field` (of `strategy`, holding objects of type `ty`).
    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        strategy: &ListStrategy,
        ty: Option<&str>,
        field: &str,
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
        match strategy {
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
                            "the list {field} must hold objects merged by {key}"
                        )));
                    };
                    let Some(id) = item.get(key).cloned() else {
                        return Err(invalid_patch(format!(
                            "map: {item:?} does not contain declared merge key: {key}"
                        )));
                    };
                    let at = out.iter().position(|o| o.get(key) == Some(&id));
                    match (at, is_delete(&item)) {
                        (Some(i), true) => {
                            out.remove(i);
                        }
                        (None, true) => {}
                        (Some(i), false) => {
                            let existing = match out[i].take() {
                                Value::Object(m) => m,
                                _ => Map::new(),
                            };
                            out[i] = Value::Object(self.merge_map(existing, item, ty)?);
                        }
                        (None, false) => {
                            item.remove("$patch");
                            out.push(Value::Object(self.merge_map(Map::new(), item, ty)?));
                        }
                    }
                }
                Ok(out)
            }
        }
    }
}

/// Whether a patch's object is `{"$patch": "delete", …}`.
fn is_delete(patch: &Map<String, Value>) -> bool {
    patch.get("$patch").and_then(Value::as_str) == Some("delete")
}

fn strip_directives(mut m: Map<String, Value>) -> Map<String, Value> {
    m.retain(|k, _| !k.starts_with('$'));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods() -> &'static Resource {
        crate::resource::find("", "v1", "pods").expect("pods are served")
    }

    fn nodes() -> &'static Resource {
        crate::resource::find("", "v1", "nodes").expect("nodes are served")
    }

    #[test]
    fn json_patches_are_bounded_in_operations_and_in_what_copies_add() {
        let doc = serde_json::json!({"spec": {"args": ["x"]}});
        let doubling: Vec<Value> = (0..40)
            .map(
                |_| serde_json::json!({"op": "copy", "from": "/spec/args", "path": "/spec/args/-"}),
            )
            .collect();
        let body = serde_json::to_vec(&doubling).expect("json");
        let err = apply(pods(), &doc, &body, PatchType::Json).expect_err("bounded");
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
            pods(),
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
            pods(),
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
        apply(
            pods(),
            &pod(),
            patch.to_string().as_bytes(),
            PatchType::Strategic,
        )
        .unwrap()
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
            nodes(),
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
            pods(),
            &pod(),
            br#"[{"op":"add","path":"/spec/containers/0/args","value":["--address",":8081"]}]"#,
            PatchType::Json,
        )
        .unwrap();
        assert_eq!(out["spec"]["containers"][0]["args"][1], ":8081");
        let err = apply(
            pods(),
            &pod(),
            br#"[{"op":"remove","path":"/nope"}]"#,
            PatchType::Json,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        let out = apply(
            pods(),
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
            apply(pods(), &pod(), b"{bad", PatchType::Merge)
                .unwrap_err()
                .code,
            400
        );
    }
}
