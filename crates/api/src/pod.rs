//! Pods: the defaults the server fills, the admission it applies, validation on create and update,
//! and the QoS class.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, Pod, PodSpec, PodStatus, ResourceRequirements, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::quantity;
use crate::validation::{dns1123_label, BadValue, ErrorList};

/// The Forbidden detail of a disallowed pod spec update (Kubernetes 1.33 wording).
pub const UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

const SERVICE_ACCOUNT_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// `SetDefaults_*` for a pod and its containers (what the v1 API's defaulting fills).
pub fn set_defaults(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.security_context.get_or_insert_with(Default::default);
    spec.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    spec.enable_service_links.get_or_insert(true);
    if spec.host_network == Some(true) {
        for c in &mut spec.containers {
            for p in c.ports.iter_mut().flatten() {
                if p.host_port.is_none() {
                    p.host_port = Some(p.container_port);
                }
            }
        }
    }
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        default_container(c);
    }
    for v in spec.volumes.iter_mut().flatten() {
        default_volume(v);
    }
}

fn default_container(c: &mut Container) {
    if c.image_pull_policy.is_none() {
        let image = c.image.as_deref().unwrap_or("");
        c.image_pull_policy = Some(default_pull_policy(image).to_string());
    }
    c.termination_message_path
        .get_or_insert_with(|| "/dev/termination-log".into());
    c.termination_message_policy
        .get_or_insert_with(|| "File".into());
    let res = c
        .resources
        .get_or_insert_with(ResourceRequirements::default);
    // Limits without requests: the request is the limit.
    if let Some(limits) = &res.limits {
        let requests = res.requests.get_or_insert_with(BTreeMap::new);
        for (k, v) in limits {
            requests.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    for p in c.ports.iter_mut().flatten() {
        p.protocol.get_or_insert_with(|| "TCP".into());
    }
    for probe in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        probe.timeout_seconds.get_or_insert(1);
        probe.period_seconds.get_or_insert(10);
        probe.success_threshold.get_or_insert(1);
        probe.failure_threshold.get_or_insert(3);
        if let Some(get) = &mut probe.http_get {
            get.path.get_or_insert_with(|| "/".into());
            get.scheme.get_or_insert_with(|| "HTTP".into());
        }
    }
    for env in c.env.iter_mut().flatten() {
        if let Some(field) = env.value_from.as_mut().and_then(|f| f.field_ref.as_mut()) {
            field.api_version.get_or_insert_with(|| "v1".into());
        }
    }
}

fn default_volume(v: &mut Volume) {
    if let Some(s) = &mut v.secret {
        s.default_mode.get_or_insert(0o644);
    }
    if let Some(c) = &mut v.config_map {
        c.default_mode.get_or_insert(0o644);
    }
    if let Some(p) = &mut v.projected {
        p.default_mode.get_or_insert(0o644);
    }
    if let Some(h) = &mut v.host_path {
        h.type_.get_or_insert_with(String::new);
    }
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise (digests count as tags).
pub fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

/// What the default admission chain adds to a new pod: the service account and its token volume
/// (ServiceAccount) and the not-ready/unreachable tolerations (DefaultTolerationSeconds). The
/// priority needs the PriorityClasses: [`crate::priority::admit`].
pub fn admit(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    let sa = spec
        .service_account_name
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| spec.service_account.clone().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "default".into());
    spec.service_account_name = Some(sa.clone());
    spec.service_account = Some(sa);
    if spec.automount_service_account_token != Some(false) {
        mount_service_account_token(spec);
    }
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let covered = tolerations.iter().any(|t| {
            (t.key.as_deref() == Some(key)
                || t.key.is_none() && t.operator.as_deref() == Some("Exists"))
                && t.effect
                    .as_deref()
                    .is_none_or(|e| e == "NoExecute" || e.is_empty())
        });
        if !covered {
            tolerations.push(Toleration {
                key: Some(key.into()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: Some(300),
                value: None,
            });
        }
    }
}

fn mount_service_account_token(spec: &mut PodSpec) {
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    let already = all
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .any(|m| m.mount_path == SERVICE_ACCOUNT_MOUNT);
    if already {
        return;
    }
    let name = format!("kube-api-access-{}", crate::meta::random_suffix());
    let volume: Volume = serde_json::from_value(serde_json::json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ]
        }
    }))
    .expect("the token volume is a valid Volume");
    spec.volumes.get_or_insert_with(Vec::new).push(volume);
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        c.volume_mounts
            .get_or_insert_with(Vec::new)
            .push(VolumeMount {
                name: name.clone(),
                mount_path: SERVICE_ACCOUNT_MOUNT.into(),
                read_only: Some(true),
                ..Default::default()
            });
    }
}

/// A new pod's status: Pending, with its QoS class.
pub fn initial_status(pod: &Pod) -> PodStatus {
    PodStatus {
        phase: Some("Pending".into()),
        qos_class: Some(qos_class(pod.spec.as_ref()).into()),
        ..Default::default()
    }
}

/// Guaranteed when every container has equal CPU and memory requests and limits; BestEffort when
/// none has any request or limit; Burstable otherwise.
pub fn qos_class(spec: Option<&PodSpec>) -> &'static str {
    let Some(spec) = spec else {
        return "BestEffort";
    };
    let containers: Vec<&Container> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let empty = BTreeMap::new();
        let res = c.resources.as_ref();
        let req = res.and_then(|r| r.requests.as_ref()).unwrap_or(&empty);
        let lim = res.and_then(|r| r.limits.as_ref()).unwrap_or(&empty);
        let nonzero = |m: &BTreeMap<String, Quantity>, k: &str| {
            m.get(k)
                .and_then(|q| quantity::parse(&q.0))
                .is_some_and(|v| v != 0)
        };
        for k in ["cpu", "memory"] {
            if nonzero(req, k) || nonzero(lim, k) {
                any = true;
            }
            if !nonzero(lim, k) {
                guaranteed = false;
            }
            let r = req.get(k).and_then(|q| quantity::parse(&q.0));
            let l = lim.get(k).and_then(|q| quantity::parse(&q.0));
            if r.is_some() && r != l {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

const RESTART_POLICIES: &[&str] = &["Always", "Never", "OnFailure"];
const DNS_POLICIES: &[&str] = &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const TERMINATION_POLICIES: &[&str] = &["FallbackToLogsOnError", "File"];

/// Spec validation on create (`ValidatePodSpec`, the parts a pod from the tutorial can reach).
pub fn validate_spec(spec: &PodSpec) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut volume_names = Vec::new();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let path = format!("spec.volumes[{i}].name");
        if v.name.is_empty() {
            errs.required(&path, "");
        } else if volume_names.contains(&v.name) {
            errs.duplicate(&path, BadValue::Str(v.name.clone()));
        } else {
            for p in dns1123_label(&v.name) {
                errs.invalid(&path, BadValue::Str(v.name.clone()), p);
            }
        }
        volume_names.push(v.name.clone());
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        validate_container(
            c,
            &format!("spec.initContainers[{i}]"),
            &mut names,
            &volume_names,
            &mut errs,
        );
    }
    if spec.containers.is_empty() {
        errs.required("spec.containers", "");
    }
    for (i, c) in spec.containers.iter().enumerate() {
        validate_container(
            c,
            &format!("spec.containers[{i}]"),
            &mut names,
            &volume_names,
            &mut errs,
        );
    }
    if let Some(p) = spec.restart_policy.as_deref() {
        if !RESTART_POLICIES.contains(&p) {
            errs.not_supported("spec.restartPolicy", p, RESTART_POLICIES);
        }
    } else {
        errs.required("spec.restartPolicy", "");
    }
    if let Some(p) = spec.dns_policy.as_deref() {
        if !DNS_POLICIES.contains(&p) {
            errs.not_supported("spec.dnsPolicy", p, DNS_POLICIES);
        }
    }
    if let Some(g) = spec.termination_grace_period_seconds {
        if g < 0 {
            errs.invalid(
                "spec.terminationGracePeriodSeconds",
                BadValue::Int(g),
                "must be greater than or equal to 0",
            );
        }
    }
    if let Some(d) = spec.active_deadline_seconds {
        if d < 1 {
            errs.invalid(
                "spec.activeDeadlineSeconds",
                BadValue::Int(d),
                "must be between 1 and 2147483647, inclusive",
            );
        }
    }
    if let Some(node) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        for p in crate::validation::dns1123_subdomain(node) {
            errs.invalid("spec.nodeName", BadValue::Str(node.into()), p);
        }
    }
    errs
}

fn validate_container<'a>(
    c: &'a Container,
    path: &str,
    names: &mut Vec<&'a str>,
    volumes: &[String],
    errs: &mut ErrorList,
) {
    if c.name.is_empty() {
        errs.required(format!("{path}.name"), "");
    } else if names.contains(&c.name.as_str()) {
        errs.duplicate(format!("{path}.name"), BadValue::Str(c.name.clone()));
    } else {
        for p in dns1123_label(&c.name) {
            errs.invalid(format!("{path}.name"), BadValue::Str(c.name.clone()), p);
        }
    }
    names.push(&c.name);
    if c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
        errs.required(format!("{path}.image"), "");
    }
    if let Some(p) = c.image_pull_policy.as_deref() {
        if !PULL_POLICIES.contains(&p) {
            errs.not_supported(format!("{path}.imagePullPolicy"), p, PULL_POLICIES);
        }
    }
    if let Some(p) = c.termination_message_policy.as_deref() {
        if !TERMINATION_POLICIES.contains(&p) {
            errs.not_supported(
                format!("{path}.terminationMessagePolicy"),
                p,
                TERMINATION_POLICIES,
            );
        }
    }
    let mut port_names: Vec<&str> = Vec::new();
    for (j, port) in c.ports.iter().flatten().enumerate() {
        let pp = format!("{path}.ports[{j}]");
        if !(1..=65535).contains(&port.container_port) {
            errs.invalid(
                format!("{pp}.containerPort"),
                BadValue::Int(port.container_port.into()),
                "must be between 1 and 65535, inclusive",
            );
        }
        if let Some(hp) = port.host_port {
            if !(0..=65535).contains(&hp) {
                errs.invalid(
                    format!("{pp}.hostPort"),
                    BadValue::Int(hp.into()),
                    "must be between 1 and 65535, inclusive",
                );
            }
        }
        if let Some(proto) = port.protocol.as_deref() {
            if !PROTOCOLS.contains(&proto) {
                errs.not_supported(format!("{pp}.protocol"), proto, PROTOCOLS);
            }
        }
        if let Some(name) = port.name.as_deref() {
            if port_names.contains(&name) {
                errs.duplicate(format!("{pp}.name"), BadValue::Str(name.into()));
            }
            port_names.push(name);
        }
    }
    for (j, m) in c.volume_mounts.iter().flatten().enumerate() {
        if !volumes.contains(&m.name) {
            errs.push(crate::validation::FieldError {
                kind: crate::validation::ErrorKind::NotFound,
                field: format!("{path}.volumeMounts[{j}].name"),
                value: Some(BadValue::Str(m.name.clone())),
                detail: String::new(),
            });
        }
        if m.mount_path.is_empty() {
            errs.required(format!("{path}.volumeMounts[{j}].mountPath"), "");
        }
    }
    for (j, e) in c.env.iter().flatten().enumerate() {
        if e.name.is_empty() {
            errs.required(format!("{path}.env[{j}].name"), "");
        }
    }
    if let Some(res) = &c.resources {
        validate_resources(res, &format!("{path}.resources"), errs);
    }
}

fn validate_resources(res: &ResourceRequirements, path: &str, errs: &mut ErrorList) {
    let empty = BTreeMap::new();
    let limits = res.limits.as_ref().unwrap_or(&empty);
    let requests = res.requests.as_ref().unwrap_or(&empty);
    for (kind, map) in [("limits", limits), ("requests", requests)] {
        for (name, q) in map {
            let field = format!("{path}.{kind}[{name}]");
            match quantity::parse(&q.0) {
                Some(v) if v < 0 => errs.invalid(
                    &field,
                    BadValue::Str(q.0.clone()),
                    "must be greater than or equal to 0",
                ),
                Some(_) => {}
                None => errs.invalid(
                    &field,
                    BadValue::Str(q.0.clone()),
                    quantity::QUANTITY_FORMAT_ERROR,
                ),
            }
        }
    }
    for (name, req) in requests {
        let (Some(r), Some(l)) = (
            quantity::parse(&req.0),
            limits.get(name).and_then(|l| quantity::parse(&l.0)),
        ) else {
            continue;
        };
        if r > l {
            let limit = &limits[name].0;
            errs.invalid(
                format!("{path}.requests"),
                BadValue::Str(req.0.clone()),
                format!("must be less than or equal to {name} limit of {limit}"),
            );
        }
    }
}

/// `ValidatePodUpdate`: only a few spec fields may change on a live pod.
pub fn validate_update(new: &Pod, old: &Pod) -> ErrorList {
    let mut errs = ErrorList::new();
    let (Some(new_spec), Some(old_spec)) = (&new.spec, &old.spec) else {
        return errs;
    };
    errs.extend(validate_spec(new_spec));
    if !errs.is_empty() {
        return errs;
    }
    // Copy the mutable fields from the new spec onto the old one; anything else that differs is
    // a forbidden change.
    let mut allowed = old_spec.clone();
    if allowed.containers.len() == new_spec.containers.len() {
        for (o, n) in allowed.containers.iter_mut().zip(&new_spec.containers) {
            o.image = n.image.clone();
        }
    }
    if let (Some(o), Some(n)) = (&mut allowed.init_containers, &new_spec.init_containers) {
        if o.len() == n.len() {
            for (o, n) in o.iter_mut().zip(n) {
                o.image = n.image.clone();
            }
        }
    }
    // activeDeadlineSeconds may be set, or lowered, never removed or raised.
    match (
        old_spec.active_deadline_seconds,
        new_spec.active_deadline_seconds,
    ) {
        (None, n) => allowed.active_deadline_seconds = n,
        (Some(o), Some(n)) if n <= o => allowed.active_deadline_seconds = Some(n),
        _ => {}
    }
    // Tolerations may only be added to.
    let old_tol = old_spec.tolerations.clone().unwrap_or_default();
    let new_tol = new_spec.tolerations.clone().unwrap_or_default();
    if old_tol.iter().all(|t| new_tol.contains(t)) {
        allowed.tolerations = new_spec.tolerations.clone();
    }
    if old_spec
        .termination_grace_period_seconds
        .is_some_and(|g| g < 0)
        && new_spec.termination_grace_period_seconds == Some(1)
    {
        allowed.termination_grace_period_seconds = Some(1);
    }
    if &allowed != new_spec {
        let diff = spec_diff(&allowed, new_spec);
        errs.forbidden("spec", format!("{UPDATE_FORBIDDEN}\n{diff}"));
    }
    errs
}

/// A short listing of the spec fields that differ, in the spirit of the Go diff Kubernetes appends:
/// `-` the value the pod has (with the allowed changes applied), `+` the value asked for.
fn spec_diff(old: &PodSpec, new: &PodSpec) -> String {
    let a = serde_json::to_value(old).unwrap_or_default();
    let b = serde_json::to_value(new).unwrap_or_default();
    let mut lines = Vec::new();
    diff_values("spec", &a, &b, &mut lines);
    let mut out = String::from("  core.PodSpec{\n");
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out.push_str("  }\n");
    out
}

fn diff_values(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let null = Value::Null;
                diff_values(
                    &format!("{path}.{k}"),
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_values(&format!("{path}[{i}]"), p, q, out);
            }
        }
        _ if a != b => {
            out.push(format!("- \t{path}: {a}"));
            out.push(format!("+ \t{path}: {b}"));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn kuard() -> Pod {
        pod(json!({"metadata": {"name": "k", "namespace": "default"},
            "spec": {"containers": [{"name": "kuard", "image": "gcr.io/kuar-demo/kuard-amd64:1"}]}}))
    }

    #[test]
    fn defaults_match_a_real_server() {
        let mut p = kuard();
        set_defaults(&mut p);
        admit(&mut p);
        let v = serde_json::to_value(&p).unwrap();
        let spec = &v["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["enableServiceLinks"], true);
        assert_eq!(spec["serviceAccountName"], "default");
        assert_eq!(spec["tolerations"].as_array().unwrap().len(), 2);
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["resources"], json!({}));
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["volumeMounts"][0]["mountPath"], SERVICE_ACCOUNT_MOUNT);
        assert!(spec["volumes"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("kube-api-access-"));
        assert_eq!(initial_status(&p).qos_class.as_deref(), Some("BestEffort"));
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("busybox:1.36"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/busybox"), "Always");
        assert_eq!(default_pull_policy("busybox@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn limits_become_requests_and_qos() {
        let mut p = pod(json!({"spec": {"containers": [{"name": "a", "image": "x:1",
            "resources": {"limits": {"memory": "256M"}}}]}}));
        set_defaults(&mut p);
        let r = p.spec.as_ref().unwrap().containers[0]
            .resources
            .as_ref()
            .unwrap();
        assert_eq!(r.requests.as_ref().unwrap()["memory"].0, "256M");
        assert_eq!(qos_class(p.spec.as_ref()), "Burstable");
        let mut g = pod(json!({"spec": {"containers": [{"name": "a", "image": "x:1",
            "resources": {"limits": {"memory": "1Gi", "cpu": "1"}}}]}}));
        set_defaults(&mut g);
        assert_eq!(qos_class(g.spec.as_ref()), "Guaranteed");
    }

    #[test]
    fn validation_reports_kubernetes_paths() {
        let p = pod(json!({"spec": {"containers": [
            {"name": "one", "image": "x:1"},
            {"name": "one", "image": "", "ports": [{"containerPort": 70000}],
             "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]}}));
        let mut p = p;
        set_defaults(&mut p);
        let errs = validate_spec(p.spec.as_ref().unwrap());
        let s = errs.summary();
        assert!(
            s.contains("spec.containers[1].name: Duplicate value: \"one\""),
            "{s}"
        );
        assert!(
            s.contains("spec.containers[1].image: Required value"),
            "{s}"
        );
        assert!(s.contains("spec.containers[1].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"), "{s}");
        assert!(s.contains("spec.containers[1].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"), "{s}");
    }

    #[test]
    fn only_images_may_change_on_update() {
        let mut old = kuard();
        set_defaults(&mut old);
        let mut image = old.clone();
        image.spec.as_mut().unwrap().containers[0].image = Some("kuard:2".into());
        assert!(validate_update(&image, &old).is_empty());
        let mut args = old.clone();
        args.spec.as_mut().unwrap().containers[0].args =
            Some(vec!["--address".into(), ":8081".into()]);
        let errs = validate_update(&args, &old);
        assert_eq!(errs.len(), 1);
        assert!(errs
            .summary()
            .starts_with("spec: Forbidden: pod updates may not change fields other than"));
        assert!(errs.summary().contains("args"));
        // The old value is `-`, the new one `+`.
        let summary = errs.summary();
        let minus = summary.lines().find(|l| l.starts_with("- ")).unwrap();
        let plus = summary.lines().find(|l| l.starts_with("+ ")).unwrap();
        assert!(minus.ends_with(": null"), "{minus}");
        assert!(plus.contains(":8081"), "{plus}");
    }
}
