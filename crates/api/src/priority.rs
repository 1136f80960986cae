//! PriorityClasses (scheduling.k8s.io/v1) and the Priority admission of pods, as Kubernetes has
//! them (`pkg/apis/scheduling`, `plugin/pkg/admission/priority`): the two system classes every
//! cluster has, the classes' validation, and the priority and preemption policy a new pod gets
//! from its `priorityClassName` (or the global default).

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::scheduling::v1::PriorityClass;

use crate::status::ApiError;
use crate::validation::{BadValue, ErrorList};

/// The highest value a class that is not a system class may have.
pub const HIGHEST_USER_DEFINABLE: i32 = 1_000_000_000;
const SYSTEM_PREFIX: &str = "system-";
const DEFAULT_PREEMPTION: &str = "PreemptLowerPriority";

/// The system classes: name, value, description.
pub const SYSTEM_CLASSES: &[(&str, i32, &str)] = &[
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

/// Whether `pc` is one of the system classes as the system made it.
pub fn is_system_class(pc: &PriorityClass) -> bool {
    SYSTEM_CLASSES.iter().any(|(name, value, _)| {
        pc.metadata.name.as_deref() == Some(name)
            && pc.value == *value
            && pc.global_default != Some(true)
    })
}

/// The system classes as objects to create.
pub fn system_classes() -> Vec<serde_json::Value> {
    SYSTEM_CLASSES
        .iter()
        .map(|(name, value, description)| {
            serde_json::json!({
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": name},
                "value": value,
                "description": description,
                "preemptionPolicy": DEFAULT_PREEMPTION,
            })
        })
        .collect()
}

/// Defaults of a new class.
pub fn set_defaults(pc: &mut PriorityClass) {
    pc.preemption_policy
        .get_or_insert_with(|| DEFAULT_PREEMPTION.into());
}

/// The field errors of a class.
pub fn validate(pc: &PriorityClass) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = pc.metadata.name.as_deref().unwrap_or_default();
    if name.starts_with(SYSTEM_PREFIX) {
        if !is_system_class(pc) {
            errs.forbidden(
                "metadata.name",
                "priority class names with 'system-' prefix are reserved for system use only",
            );
        }
    } else if pc.value > HIGHEST_USER_DEFINABLE {
        errs.forbidden(
            "value",
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE}"),
        );
    }
    if let Some(policy) = &pc.preemption_policy {
        if policy != "Never" && policy != DEFAULT_PREEMPTION {
            errs.not_supported("preemptionPolicy", policy, &[DEFAULT_PREEMPTION, "Never"]);
        }
    }
    errs
}

/// The field errors of an update: the value and the preemption policy never change.
pub fn validate_update(new: &PriorityClass, old: &PriorityClass) -> ErrorList {
    let mut errs = validate(new);
    if new.value != old.value {
        errs.forbidden("value", "may not be changed in an update.");
    }
    if new.preemption_policy != old.preemption_policy {
        let shown = new.preemption_policy.clone().unwrap_or_default();
        errs.invalid(
            "preemptionPolicy",
            BadValue::Str(shown),
            "field is immutable",
        );
    }
    errs
}

/// The class that is `globalDefault` among `classes`, other than `except`; a second one may not
/// be made (Kubernetes' words).
pub fn check_single_default(pc: &PriorityClass, classes: &[PriorityClass]) -> Result<(), ApiError> {
    if pc.global_default != Some(true) {
        return Ok(());
    }
    let other = classes
        .iter()
        .find(|c| c.global_default == Some(true) && c.metadata.name != pc.metadata.name);
    match other {
        Some(existing) => Err(forbidden(
            "priorityclasses",
            "scheduling.k8s.io",
            pc.metadata.name.as_deref().unwrap_or_default(),
            &format!(
                "PriorityClass {} is already marked as default. Only one default can exist",
                existing.metadata.name.as_deref().unwrap_or_default()
            ),
        )),
        None => Ok(()),
    }
}

fn forbidden(resource: &str, group: &str, name: &str, why: &str) -> ApiError {
    ApiError::forbidden(group, resource, name, why)
}

/// The Priority admission of a new pod in `namespace`: its priority and preemption policy from
/// its class (or the global default, or 0), refused as Kubernetes refuses it.
pub fn admit(pod: &mut Pod, namespace: &str, classes: &[PriorityClass]) -> Result<(), ApiError> {
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let refuse = |why: String| forbidden("pods", "", &pod_name, &why);
    let spec = pod.spec.get_or_insert_with(Default::default);
    let named = spec.priority_class_name.clone().filter(|n| !n.is_empty());
    let class = match &named {
        None => classes.iter().find(|c| c.global_default == Some(true)),
        Some(name) => {
            let system = SYSTEM_CLASSES.iter().any(|(n, ..)| n == name);
            if system && namespace != "kube-system" {
                return Err(refuse(format!(
                    "pods with {name} priorityClass is not permitted in {namespace} namespace"
                )));
            }
            let found = classes
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(name.as_str()));
            match found {
                Some(c) => Some(c),
                None => {
                    return Err(refuse(format!(
                        "no PriorityClass with name {name} was found"
                    )))
                }
            }
        }
    };
    let priority = class.map_or(0, |c| c.value);
    if let Some(given) = spec.priority.filter(|p| *p != priority) {
        return Err(refuse(format!("the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name")));
    }
    let policy = class
        .and_then(|c| c.preemption_policy.clone())
        .unwrap_or_else(|| DEFAULT_PREEMPTION.into());
    if let Some(given) = spec.preemption_policy.as_ref().filter(|p| **p != policy) {
        return Err(refuse(format!("the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name")));
    }
    if named.is_none() {
        spec.priority_class_name = class.and_then(|c| c.metadata.name.clone());
    }
    spec.priority = Some(priority);
    spec.preemption_policy = Some(policy);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn class(name: &str, value: i32, default: bool) -> PriorityClass {
        serde_json::from_value(json!({"metadata": {"name": name}, "value": value,
            "globalDefault": default, "preemptionPolicy": "Never"}))
        .expect("a class")
    }

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": v})).expect("a pod")
    }

    fn system() -> Vec<PriorityClass> {
        system_classes()
            .into_iter()
            .map(|v| serde_json::from_value(v).expect("a class"))
            .collect()
    }

    #[test]
    fn pods_get_their_class_value_or_the_default_or_zero() {
        let classes = vec![class("high", 1000, false)];
        let mut p = pod(json!({"priorityClassName": "high", "containers": []}));
        admit(&mut p, "default", &classes).expect("admitted");
        let spec = p.spec.expect("spec");
        assert_eq!(spec.priority, Some(1000));
        assert_eq!(spec.preemption_policy.as_deref(), Some("Never"));
        let mut p = pod(json!({"containers": []}));
        admit(&mut p, "default", &classes).expect("admitted");
        let spec = p.spec.expect("spec");
        assert_eq!((spec.priority, spec.priority_class_name), (Some(0), None));
        let with_default = vec![class("low", 5, true)];
        let mut p = pod(json!({"containers": []}));
        admit(&mut p, "default", &with_default).expect("admitted");
        let spec = p.spec.expect("spec");
        assert_eq!(spec.priority, Some(5));
        assert_eq!(spec.priority_class_name.as_deref(), Some("low"));
    }

    #[test]
    fn pods_are_refused_as_kubernetes_refuses_them() {
        let mut classes = system();
        classes.push(class("high", 1000, false));
        let message = |spec: serde_json::Value, ns: &str| {
            admit(&mut pod(spec), ns, &classes)
                .expect_err("refused")
                .message
                .clone()
        };
        assert_eq!(
            message(
                json!({"priorityClassName": "nope", "containers": []}),
                "default"
            ),
            "pods \"p\" is forbidden: no PriorityClass with name nope was found"
        );
        assert_eq!(
            message(json!({"priorityClassName": "system-node-critical", "containers": []}), "default"),
            "pods \"p\" is forbidden: pods with system-node-critical priorityClass is not permitted in default namespace"
        );
        assert_eq!(
            message(json!({"priorityClassName": "high", "priority": 3, "containers": []}), "default"),
            "pods \"p\" is forbidden: the integer value of priority (3) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name"
        );
        let mut critical =
            pod(json!({"priorityClassName": "system-node-critical", "containers": []}));
        admit(&mut critical, "kube-system", &classes).expect("system pods may");
        assert_eq!(critical.spec.expect("spec").priority, Some(2_000_001_000));
    }

    #[test]
    fn classes_are_validated() {
        let texts = |errs: ErrorList| errs.iter().map(|e| e.to_string()).collect::<Vec<_>>();
        assert_eq!(
            texts(validate(&class("system-mine", 1, false))),
            ["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only"]
        );
        assert_eq!(
            texts(validate(&class("huge", 2_000_000_000, false))),
            ["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
        );
        assert!(system().iter().all(|c| validate(c).is_empty()));
        assert_eq!(
            texts(validate_update(
                &class("a", 2, false),
                &class("a", 1, false)
            )),
            ["value: Forbidden: may not be changed in an update."]
        );
        let err = check_single_default(&class("b", 1, true), &[class("a", 1, true)])
            .expect_err("one default");
        assert_eq!(
            err.message,
            "priorityclasses.scheduling.k8s.io \"b\" is forbidden: PriorityClass a is already marked as default. Only one default can exist"
        );
    }
}
