//! The strategic merge patch that turns a live object into a wanted one, as `kubectl apply` and
//! `kubectl edit` compute it: fields that differ, `null` for fields the previous configuration set
//! and the wanted one dropped, and lists as their type merges them (by key with
//! `$setElementOrder` and `$patch: delete`, as sets with `$deleteFromPrimitiveList`, or whole).

use serde_json::{json, Map, Value};

use super::schema::{ListStrategy, Types};

/// The patch from `current` to `modified`, deleting what `original` (the last applied
/// configuration) had and `modified` no longer has; `types` are those of the object's kind
/// (without them every list is replaced whole).
pub fn three_way(
    types: Option<&Types>,
    original: &Value,
    modified: &Value,
    current: &Value,
) -> Value {
    let diff = Diff { types };
    Value::Object(diff.map(original, modified, current, types.map(Types::root)))
}

struct Diff<'t> {
    types: Option<&'t Types>,
}

impl<'t> Diff<'t> {
    fn field(&self, ty: Option<&str>, field: &str) -> (ListStrategy, Option<&'t str>) {
        match (self.types, ty) {
            (Some(types), Some(ty)) => {
                let f = types.field(ty, field);
                (f.list, f.ty)
            }
            _ => (ListStrategy::Replace, None),
        }
    }

    fn map(
        &self,
        original: &Value,
        modified: &Value,
        current: &Value,
        ty: Option<&str>,
    ) -> Map<String, Value> {
        let mut patch = Map::new();
        let Value::Object(wanted) = modified else {
            return patch;
        };
        for (key, want) in wanted {
            let have = &current[key];
            let (strategy, inner) = self.field(ty, key);
            match (want, have) {
                (Value::Object(_), Value::Object(_)) => {
                    let changes = self.map(&original[key], want, have, inner);
                    if !changes.is_empty() {
                        patch.insert(key.clone(), Value::Object(changes));
                    }
                }
                (Value::Array(w), Value::Array(h)) if strategy != ListStrategy::Replace => {
                    let o = original[key].as_array().map(Vec::as_slice).unwrap_or(&[]);
                    let merged = match &strategy {
                        ListStrategy::ByKey(k) => self.keyed_list(key, k, o, w, h, inner),
                        _ => primitive_list(key, o, w, h),
                    };
                    match merged {
                        Some(entries) => patch.extend(entries),
                        None if want != have => {
                            patch.insert(key.clone(), want.clone());
                        }
                        None => {}
                    }
                }
                _ if want != have => {
                    patch.insert(key.clone(), want.clone());
                }
                _ => {}
            }
        }
        if let Value::Object(o) = original {
            for key in o.keys() {
                if !wanted.contains_key(key) && !current[key].is_null() {
                    patch.insert(key.clone(), Value::Null);
                }
            }
        }
        patch
    }

    /// The patch entries of a list merged by `key`; None when an element lacks the key (the list
    /// is then sent whole).
    fn keyed_list(
        &self,
        field: &str,
        key: &str,
        original: &[Value],
        want: &[Value],
        have: &[Value],
        ty: Option<&str>,
    ) -> Option<Map<String, Value>> {
        let id = |v: &Value| v.get(key).cloned();
        if want.iter().chain(have).any(|v| id(v).is_none()) {
            return None;
        }
        let find = |list: &[Value], wanted: &Option<Value>| -> Option<Value> {
            list.iter().find(|v| id(v) == *wanted).cloned()
        };
        let mut items = Vec::new();
        for w in want {
            let wanted = id(w);
            match find(have, &wanted) {
                None => items.push(w.clone()),
                Some(h) => {
                    let o = find(original, &wanted).unwrap_or(Value::Null);
                    let mut changes = self.map(&o, w, &h, ty);
                    if !changes.is_empty() {
                        changes.insert(key.to_string(), wanted.unwrap_or_default());
                        items.push(Value::Object(changes));
                    }
                }
            }
        }
        for o in original {
            let gone = id(o);
            if find(want, &gone).is_none() && find(have, &gone).is_some() {
                items.push(json!({ key: gone, "$patch": "delete" }));
            }
        }
        let wanted_order: Vec<Option<Value>> = want.iter().map(id).collect();
        let live_order: Vec<Option<Value>> = have
            .iter()
            .map(id)
            .filter(|i| wanted_order.contains(i))
            .collect();
        let mut entries = Map::new();
        if items.is_empty() && live_order == wanted_order {
            return Some(entries);
        }
        let order: Vec<Value> = wanted_order
            .into_iter()
            .map(|i| json!({ key: i }))
            .collect();
        entries.insert(format!("$setElementOrder/{field}"), Value::Array(order));
        if !items.is_empty() {
            entries.insert(field.to_string(), Value::Array(items));
        }
        Some(entries)
    }
}

/// The patch entries of a list of scalars merged as a set.
fn primitive_list(
    field: &str,
    original: &[Value],
    want: &[Value],
    have: &[Value],
) -> Option<Map<String, Value>> {
    let added: Vec<Value> = want.iter().filter(|v| !have.contains(v)).cloned().collect();
    let removed: Vec<Value> = original
        .iter()
        .filter(|v| !want.contains(v) && have.contains(v))
        .cloned()
        .collect();
    let mut entries = Map::new();
    if !added.is_empty() {
        entries.insert(
            format!("$setElementOrder/{field}"),
            Value::Array(want.to_vec()),
        );
        entries.insert(field.to_string(), Value::Array(added));
    }
    if !removed.is_empty() {
        entries.insert(
            format!("$deleteFromPrimitiveList/{field}"),
            Value::Array(removed),
        );
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::{apply, PatchType};

    fn pods() -> &'static crate::resource::Resource {
        crate::resource::find("", "v1", "pods").expect("served")
    }

    /// The patch, and that applying it to `current` gives what `kubectl apply` would leave.
    fn check(original: Value, modified: Value, current: Value, expected: Value) -> Value {
        let types = Types::of(pods());
        let patch = three_way(Some(types), &original, &modified, &current);
        let out = apply(
            pods(),
            &current,
            patch.to_string().as_bytes(),
            PatchType::Strategic,
        )
        .expect("the patch applies");
        assert_eq!(out, expected, "patch {patch}");
        patch
    }

    #[test]
    fn an_unchanged_manifest_makes_an_empty_patch_whatever_the_server_defaulted() {
        let manifest = json!({"spec": {"containers": [{"name": "kuard", "image": "kuard:1"}]}});
        let live = json!({"spec": {"containers": [
            {"name": "kuard", "image": "kuard:1", "imagePullPolicy": "IfNotPresent"}
        ], "restartPolicy": "Always"}});
        let patch = check(manifest.clone(), manifest, live.clone(), live);
        assert_eq!(patch, json!({}));
    }

    #[test]
    fn containers_change_by_name_and_dropped_ones_are_deleted() {
        let original = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}
        ]}});
        let modified = json!({"spec": {"containers": [{"name": "a", "image": "a:2"}]}});
        let current = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "imagePullPolicy": "IfNotPresent"},
            {"name": "b", "image": "b:1"}
        ]}});
        let patch = check(
            original,
            modified,
            current,
            json!({"spec": {"containers": [
                {"name": "a", "image": "a:2", "imagePullPolicy": "IfNotPresent"}
            ]}}),
        );
        assert_eq!(
            patch,
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "a"}],
                "containers": [{"name": "a", "image": "a:2"}, {"name": "b", "$patch": "delete"}]
            }})
        );
    }

    #[test]
    fn finalizers_are_a_set_and_tolerations_are_replaced_whole() {
        let original = json!({"metadata": {"finalizers": ["x", "y"]},
                              "spec": {"tolerations": [{"key": "a"}]}});
        let modified = json!({"metadata": {"finalizers": ["x", "z"]},
                              "spec": {"tolerations": [{"key": "b"}]}});
        let current = json!({"metadata": {"finalizers": ["x", "y"]},
                             "spec": {"tolerations": [{"key": "a"}, {"key": "c"}]}});
        check(
            original,
            modified,
            current,
            json!({"metadata": {"finalizers": ["x", "z"]},
                   "spec": {"tolerations": [{"key": "b"}]}}),
        );
    }
}
