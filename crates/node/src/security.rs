//! A container's security context as the kubelet and a CRI runtime apply it: the pod's settings
//! with the container's over them, the image's `USER` when neither names one, `runAsNonRoot`
//! checked with Kubernetes' messages, capabilities added and dropped on the runtime's default
//! set, and the safe sysctls.

use k8s_openapi::api::core::v1::{Container, Pod};
use runtime::oci::{Seccomp, Security, ALL_CAPABILITIES, DEFAULT_CAPABILITIES};

/// The sysctls Kubernetes deems safe (namespaced and isolated per pod).
pub const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// What the pod and the container ask for, before the image's user is known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: bool,
    pub security: Security,
}

fn capability(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// The capabilities after `add` and `drop` on the runtime's default set (`ALL` in either means
/// every capability).
pub fn capabilities(add: &[String], drop: &[String]) -> Vec<String> {
    let all = |list: &[String]| list.iter().any(|c| c.eq_ignore_ascii_case("ALL"));
    let mut caps: Vec<String> = if all(add) {
        ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect()
    } else {
        DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect()
    };
    if all(drop) {
        caps.clear();
    } else {
        let dropped: Vec<String> = drop.iter().map(|c| capability(c)).collect();
        caps.retain(|c| !dropped.contains(c));
    }
    for c in add.iter().filter(|c| !c.eq_ignore_ascii_case("ALL")) {
        let c = capability(c);
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    caps
}

/// The container's settings, the pod's where the container has none.
pub fn plan(pod: &Pod, c: &Container) -> Plan {
    let pod_sc = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let seccomp = sc
        .seccomp_profile
        .as_ref()
        .or(pod_sc.seccomp_profile.as_ref())
        .map(|p| p.type_.as_str());
    let mut additional_gids: Vec<u32> = pod_sc
        .supplemental_groups
        .iter()
        .flatten()
        .chain(pod_sc.fs_group.iter())
        .filter_map(|g| u32::try_from(*g).ok())
        .collect();
    additional_gids.dedup();
    let caps = sc.capabilities.as_ref();
    let (add, drop) = (
        caps.and_then(|c| c.add.clone()).unwrap_or_default(),
        caps.and_then(|c| c.drop.clone()).unwrap_or_default(),
    );
    Plan {
        run_as_user: sc.run_as_user.or(pod_sc.run_as_user),
        run_as_group: sc.run_as_group.or(pod_sc.run_as_group),
        run_as_non_root: sc.run_as_non_root.or(pod_sc.run_as_non_root) == Some(true),
        security: Security {
            additional_gids,
            capabilities: caps.map(|_| capabilities(&add, &drop)),
            no_new_privileges: sc.allow_privilege_escalation == Some(false),
            readonly_rootfs: sc.read_only_root_filesystem == Some(true),
            privileged: sc.privileged == Some(true),
            seccomp: match seccomp {
                Some("RuntimeDefault") => Seccomp::RuntimeDefault,
                _ => Seccomp::Unconfined,
            },
            sysctls: pod_sc
                .sysctls
                .iter()
                .flatten()
                .map(|s| (s.name.clone(), s.value.clone()))
                .collect(),
            ..Default::default()
        },
    }
}

/// The final settings once the image's `USER` is known (`image_user`: as written, and what it
/// resolved to in the image); an error with the kubelet's words when `runAsNonRoot` forbids it.
pub fn finish(
    plan: &Plan,
    pod: &Pod,
    container: &str,
    image_user: &str,
    resolved: Result<(u32, Option<u32>), String>,
) -> Result<Security, String> {
    let at = format!(
        "(pod: \"{}\", container: {container})",
        crate::status::pod_name(pod)
    );
    let (uid, image_gid) = match plan.run_as_user {
        Some(uid) => (uid.max(0) as u32, None),
        None if image_user.is_empty() => (0, None),
        None => resolved?,
    };
    if plan.run_as_non_root {
        if plan.run_as_user == Some(0) {
            return Err(format!("container's runAsUser breaks non-root policy {at}"));
        }
        let name = image_user.split(':').next().unwrap_or("");
        if plan.run_as_user.is_none() && !name.is_empty() && name.parse::<u32>().is_err() {
            return Err(format!(
                "container has runAsNonRoot and image has non-numeric user ({name}), cannot verify user is non-root {at}"
            ));
        }
        if uid == 0 {
            return Err(format!(
                "container has runAsNonRoot and image will run as root {at}"
            ));
        }
    }
    let gid = match plan.run_as_group {
        Some(g) => g.max(0) as u32,
        None => image_gid.unwrap_or(0),
    };
    Ok(Security {
        uid,
        gid,
        ..plan.security.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": spec
        }))
        .expect("pod")
    }

    #[test]
    fn the_container_overrides_the_pod_and_the_image_fills_in() {
        let p = pod(serde_json::json!({
            "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "supplementalGroups": [4000], "fsGroup": 2000},
            "containers": [{"name": "c", "securityContext": {"runAsUser": 1001, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false}}],
        }));
        let c = &p.spec.as_ref().expect("spec").containers[0];
        let plan = plan(&p, c);
        let sec = finish(&plan, &p, "c", "", Ok((0, None))).expect("security");
        assert_eq!((sec.uid, sec.gid), (1001, 3000));
        assert_eq!(sec.additional_gids, [4000, 2000]);
        assert!(sec.readonly_rootfs && sec.no_new_privileges);
        let bare = pod(serde_json::json!({"containers": [{"name": "c"}]}));
        let c = &bare.spec.as_ref().expect("spec").containers[0];
        let sec = finish(
            &super::plan(&bare, c),
            &bare,
            "c",
            "nobody",
            Ok((65534, Some(65534))),
        )
        .expect("security");
        assert_eq!((sec.uid, sec.gid), (65534, 65534), "the image's USER");
    }

    #[test]
    fn run_as_non_root_refuses_root_with_the_kubelets_words() {
        let p = pod(serde_json::json!({
            "securityContext": {"runAsNonRoot": true},
            "containers": [{"name": "c"}],
        }));
        let c = &p.spec.as_ref().expect("spec").containers[0];
        let plan = plan(&p, c);
        assert_eq!(
            finish(&plan, &p, "c", "", Ok((0, None))),
            Err("container has runAsNonRoot and image will run as root (pod: \"p_ns(u)\", container: c)".into())
        );
        assert_eq!(
            finish(&plan, &p, "c", "nobody", Ok((65534, None))),
            Err("container has runAsNonRoot and image has non-numeric user (nobody), cannot verify user is non-root (pod: \"p_ns(u)\", container: c)".into())
        );
        assert!(finish(&plan, &p, "c", "1000", Ok((1000, None))).is_ok());
        let root = Plan {
            run_as_user: Some(0),
            ..plan
        };
        assert_eq!(
            finish(&root, &p, "c", "", Ok((0, None))),
            Err(
                "container's runAsUser breaks non-root policy (pod: \"p_ns(u)\", container: c)"
                    .into()
            )
        );
    }

    #[test]
    fn capabilities_are_added_and_dropped_on_the_default_set() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            capabilities(&s(&["NET_BIND_SERVICE"]), &s(&["ALL"])),
            ["CAP_NET_BIND_SERVICE"]
        );
        let some = capabilities(&s(&["NET_ADMIN"]), &s(&["KILL", "CHOWN"]));
        assert!(some.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(
            !some.contains(&"CAP_KILL".to_string()) && !some.contains(&"CAP_CHOWN".to_string())
        );
        assert_eq!(
            capabilities(&s(&["ALL"]), &[]).len(),
            ALL_CAPABILITIES.len()
        );
    }
}
