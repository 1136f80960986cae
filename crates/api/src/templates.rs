//! PodTemplates and ReplicationControllers (core/v1), stored and validated as Kubernetes does;
//! kubelite runs no replication controller yet, so a new one is stored with a warning saying no
//! pods will be made for it.

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};

use crate::validation::{BadValue, ErrorList};

/// The warning a new ReplicationController gets.
pub const NO_CONTROLLER: &str =
    "kubelite runs no replication controller yet: no pods will be made for this ReplicationController";

/// A template's pod spec, defaulted as a pod's is.
pub fn default_template(template: &mut PodTemplateSpec) {
    let mut pod = Pod {
        metadata: template.metadata.clone().unwrap_or_default(),
        spec: template.spec.take(),
        status: None,
    };
    crate::pod::set_defaults(&mut pod);
    template.spec = pod.spec;
}

/// Validation of a template's pod spec, its field paths under `at` (`template`,
/// `spec.template`).
pub fn validate_template(template: Option<&PodTemplateSpec>, at: &str) -> ErrorList {
    let Some(spec) = template.and_then(|t| t.spec.as_ref()) else {
        let mut errs = ErrorList::new();
        errs.required(format!("{at}.spec"), "");
        return errs;
    };
    crate::pod::validate_spec(spec).under(at)
}

/// A new controller's defaults: its selector and labels from the template's labels, one
/// replica, an empty status, generation 1.
pub fn default_controller(rc: &mut ReplicationController) {
    let spec = rc.spec.get_or_insert_with(Default::default);
    let labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone());
    if spec.selector.as_ref().is_none_or(|s| s.is_empty()) {
        spec.selector = labels.clone();
    }
    if rc.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
        rc.metadata.labels = labels;
    }
    spec.replicas.get_or_insert(1);
    if let Some(t) = spec.template.as_mut() {
        default_template(t);
    }
}

/// The field errors of a controller.
pub fn validate_controller(rc: &ReplicationController) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = rc.spec.clone().unwrap_or_default();
    let selector = spec.selector.clone().unwrap_or_default();
    if selector.is_empty() {
        errs.required("spec.selector", "");
    }
    if spec.replicas.is_some_and(|r| r < 0) {
        errs.invalid(
            "spec.replicas",
            BadValue::Int(i64::from(spec.replicas.unwrap_or(0))),
            "must be greater than or equal to 0",
        );
    }
    let Some(template) = spec.template.as_ref() else {
        errs.required("spec.template", "");
        return errs;
    };
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let selected = selector.iter().all(|(k, v)| labels.get(k) == Some(v));
    if !selector.is_empty() && !selected {
        errs.invalid(
            "spec.template.metadata.labels",
            BadValue::Raw(go_map(&labels)),
            "`selector` does not match template `labels`",
        );
    }
    errs.extend(validate_template(Some(template), "spec.template"));
    let policy = template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_default();
    if policy != "Always" {
        errs.not_supported("spec.template.spec.restartPolicy", &policy, &["Always"]);
    }
    errs
}

/// `map[string]string{"app":"web"}`, as Go prints a label map in a field error.
fn go_map(labels: &std::collections::BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{:?}:{:?}", k, v))
        .collect();
    format!("map[string]string{{{}}}", pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rc(v: serde_json::Value) -> ReplicationController {
        let mut rc: ReplicationController =
            serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": v})).expect("an rc");
        default_controller(&mut rc);
        rc
    }

    #[test]
    fn controllers_take_their_selector_from_the_template() {
        let r = rc(json!({"template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}}));
        let spec = r.spec.as_ref().expect("spec");
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.selector.as_ref().expect("selector")["app"], "web");
        assert!(validate_controller(&r).is_empty());
    }

    #[test]
    fn a_selector_that_misses_the_template_is_refused() {
        let r = rc(json!({"selector": {"app": "db"},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}));
        let errs: Vec<String> = validate_controller(&r)
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errs,
            [
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ]
        );
    }
}
