//! What this node honours of a Pod spec. A pod asking for anything else is refused (phase Failed,
//! reason `UnsupportedPodSpec`, an event naming the fields) instead of running without it.
//! docs/POD-SPEC.md lists the same fields for users.

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

/// Pod spec fields the node honours, or that only the API server and scheduler act on.
const POD_FIELDS: &[&str] = &[
    "containers",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "dnsPolicy",
    "nodeSelector",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "nodeName",
    "affinity",
    "schedulerName",
    "tolerations",
    "priorityClassName",
    "priority",
    "preemptionPolicy",
    "enableServiceLinks",
    "volumes",
    "securityContext",
    "initContainers",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
    "imagePullSecrets",
];

/// Pod `securityContext` fields the node honours.
const POD_SECURITY_FIELDS: &[&str] = &[
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "supplementalGroups",
    "fsGroup",
    "fsGroupChangePolicy",
    "seccompProfile",
    "sysctls",
];

/// Container `securityContext` fields the node honours.
const CONTAINER_SECURITY_FIELDS: &[&str] = &[
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "capabilities",
    "privileged",
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "seccompProfile",
    "procMount",
];

/// Container fields the node honours.
const CONTAINER_FIELDS: &[&str] = &[
    "name",
    "image",
    "command",
    "args",
    "workingDir",
    "ports",
    "env",
    "envFrom",
    "resources",
    "volumeMounts",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "lifecycle",
    "stdin",
    "stdinOnce",
    "tty",
];

/// Values that ask for nothing: an empty object or list, `false`, null.
fn asks_nothing(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The fields of `pod` this node cannot honour, as paths (`spec.initContainers`, …).
pub fn refusals(pod: &Pod) -> Vec<String> {
    let Some(spec) = pod.spec.as_ref().and_then(|s| serde_json::to_value(s).ok()) else {
        return vec![];
    };
    let mut out = Vec::new();
    for (key, value) in spec.as_object().into_iter().flatten() {
        if !POD_FIELDS.contains(&key.as_str()) && !asks_nothing(value) {
            out.push(format!("spec.{key}"));
        }
    }
    if spec["dnsPolicy"].as_str() == Some("None") {
        out.push("spec.dnsPolicy: None".into());
    }
    out.extend(security_refusals(
        &spec["securityContext"],
        "spec.securityContext",
        POD_SECURITY_FIELDS,
    ));
    // The scheduler places pods by node affinity only.
    for kind in ["podAffinity", "podAntiAffinity"] {
        if !asks_nothing(&spec["affinity"][kind]) {
            out.push(format!("spec.affinity.{kind}"));
        }
    }
    for (i, v) in pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .enumerate()
    {
        if let Some(kind) = crate::volumes::unsupported(v) {
            out.push(format!("spec.volumes[{i}].{kind}"));
        }
    }
    for (i, c) in spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        out.extend(container_refusals(c, &format!("spec.containers[{i}]")));
    }
    for (i, c) in spec["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("spec.initContainers[{i}]");
        // `restartPolicy: Always` makes a sidecar; nothing else is defined for it.
        let mut c = c.clone();
        match c.as_object_mut().and_then(|o| o.remove("restartPolicy")) {
            Some(p) if p != "Always" => out.push(format!("{at}.restartPolicy")),
            _ => {}
        }
        out.extend(container_refusals(&c, &at));
    }
    out
}

/// The fields of a security context the node cannot honour.
fn security_refusals(sc: &Value, at: &str, honoured: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (key, value) in sc.as_object().into_iter().flatten() {
        if !honoured.contains(&key.as_str()) && !asks_nothing(value) {
            out.push(format!("{at}.{key}"));
        }
    }
    let seccomp = sc["seccompProfile"]["type"]
        .as_str()
        .unwrap_or("Unconfined");
    if seccomp != "Unconfined" && seccomp != "RuntimeDefault" {
        out.push(format!("{at}.seccompProfile: {seccomp}"));
    }
    if sc["procMount"].as_str().is_some_and(|p| p != "Default") {
        out.push(format!("{at}.procMount"));
    }
    if sc["supplementalGroupsPolicy"]
        .as_str()
        .is_some_and(|p| p != "Merge")
    {
        out.push(format!("{at}.supplementalGroupsPolicy"));
    }
    out
}

/// The kubelet's own rejection of unsafe sysctls: (reason, message).
pub fn forbidden_sysctl(pod: &Pod) -> Option<(String, String)> {
    let sysctls = pod
        .spec
        .as_ref()?
        .security_context
        .as_ref()?
        .sysctls
        .as_ref()?;
    let bad = sysctls
        .iter()
        .find(|s| !crate::security::SAFE_SYSCTLS.contains(&s.name.as_str()))?;
    Some((
        "SysctlForbidden".into(),
        format!(
            "Pod was rejected: forbidden sysctl: \"{}\" not allowlisted",
            bad.name
        ),
    ))
}

fn container_refusals(c: &Value, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(security_refusals(
        &c["securityContext"],
        &format!("{at}.securityContext"),
        CONTAINER_SECURITY_FIELDS,
    ));
    for (key, value) in c.as_object().into_iter().flatten() {
        if !CONTAINER_FIELDS.contains(&key.as_str()) && !asks_nothing(value) {
            out.push(format!("{at}.{key}"));
        }
    }
    for (i, p) in c["ports"].as_array().into_iter().flatten().enumerate() {
        if p["hostPort"].as_i64().is_some_and(|h| h != 0) {
            out.push(format!("{at}.ports[{i}].hostPort"));
        }
    }
    for (i, m) in c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let propagation = m["mountPropagation"].as_str().unwrap_or("None");
        if propagation != "None" {
            out.push(format!("{at}.volumeMounts[{i}].mountPropagation"));
        }
        for field in ["subPathExpr", "recursiveReadOnly"] {
            if m[field]
                .as_str()
                .is_some_and(|v| !v.is_empty() && v != "Disabled")
            {
                out.push(format!("{at}.volumeMounts[{i}].{field}"));
            }
        }
    }
    if !asks_nothing(&c["lifecycle"]["stopSignal"]) {
        out.push(format!("{at}.lifecycle.stopSignal"));
    }
    if !asks_nothing(&c["resources"]["claims"]) {
        out.push(format!("{at}.resources.claims"));
    }
    out
}

/// The status reason of a refused pod.
pub const REASON: &str = "UnsupportedPodSpec";

/// The message of a refused pod.
pub fn message(fields: &[String]) -> String {
    format!(
        "Pod was rejected: this node does not support {}",
        fields.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "spec": spec}))
            .expect("pod")
    }

    #[test]
    fn what_the_api_fills_in_is_honoured() {
        let p = pod(serde_json::json!({
            "containers": [{"name": "c", "image": "i", "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent",
                "resources": {}, "volumeMounts": [{"name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]}],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "securityContext": {},
            "schedulerName": "default-scheduler", "enableServiceLinks": true, "priority": 0,
            "preemptionPolicy": "PreemptLowerPriority", "tolerations": [],
            "volumes": [{"name": "kube-api-access-x", "projected": {"sources": []}}],
        }));
        assert_eq!(refusals(&p), Vec::<String>::new());
    }

    #[test]
    fn fields_the_node_cannot_honour_are_named() {
        let p = pod(serde_json::json!({
            "containers": [{"name": "c", "image": "i",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
                "ports": [{"containerPort": 80, "hostPort": 8080}],
                "securityContext": {"runAsUser": 1000, "seLinuxOptions": {"level": "s0"}}}],
            "initContainers": [{"name": "i", "image": "i", "restartPolicy": "Always"}, {"name": "j", "image": "i", "tty": true, "workingDir": "/", "hostIP": null, "lifecycle": {"stopSignal": "SIGUSR1"}}],
            "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db"]}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "c"}}],
        }));
        let mut got = refusals(&p);
        got.sort();
        assert_eq!(
            got,
            [
                "spec.containers[0].ports[0].hostPort",
                "spec.containers[0].resizePolicy",
                "spec.containers[0].securityContext.seLinuxOptions",
                "spec.hostAliases",
                "spec.initContainers[1].lifecycle.stopSignal",
                "spec.volumes[0].persistentVolumeClaim",
            ]
        );
        let sysctl: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "spec": {
            "containers": [], "securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}}}))
        .expect("pod");
        assert_eq!(
            forbidden_sysctl(&sysctl),
            Some((
                "SysctlForbidden".into(),
                "Pod was rejected: forbidden sysctl: \"kernel.msgmax\" not allowlisted".into()
            ))
        );
        assert_eq!(
            message(&got[3..4]),
            "Pod was rejected: this node does not support spec.hostAliases"
        );
    }
}
