//! Server-side tables (`meta.k8s.io/v1` `Table`): the columns and cells `kubectl get` prints,
//! computed as Kubernetes' printers compute them. Every resource gets one, so `get NAME`,
//! `get` of a list and each watch event print alike.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::resource::Resource;

/// One column: name, type, priority (1 = shown only with `-o wide`), description.
struct Column(&'static str, &'static str, u8, &'static str);

const NAME: Column = Column(
    "Name",
    "string",
    0,
    "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically.",
);
const AGE: Column = Column(
    "Age",
    "string",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
);

fn columns(resource: &Resource) -> Vec<Column> {
    match (resource.group, resource.kind) {
        ("", "Pod") => vec![
            NAME,
            Column("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
            Column("Status", "string", 0, "The aggregate status of the containers in this pod."),
            Column("Restarts", "string", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
            AGE,
            Column("IP", "string", 1, "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."),
            Column("Node", "string", 1, "NodeName is a request to schedule this pod onto a specific node."),
            Column("Nominated Node", "string", 1, "nominatedNodeName is set only when this pod preempts other pods on the node."),
            Column("Readiness Gates", "string", 1, "If specified, all readiness gates will be evaluated for pod readiness."),
        ],
        ("", "Event") | ("events.k8s.io", "Event") => vec![
            Column("Last Seen", "string", 0, "The time at which the most recent occurrence of this event was recorded."),
            Column("Type", "string", 0, "Type of this event (Normal, Warning), new types could be added in the future."),
            Column("Reason", "string", 0, "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
            Column("Object", "string", 0, "The object that this event is about."),
            Column("Subobject", "string", 1, "The subobject (field path) this event is about."),
            Column("Source", "string", 1, "The component reporting this event."),
            Column("Message", "string", 0, "A human-readable description of the status of this operation."),
            Column("First Seen", "string", 1, "The time at which the event was first recorded."),
            Column("Count", "string", 1, "The number of times this event has occurred."),
            Column("Name", "string", 1, "Name of the event."),
        ],
        ("", "Node") => vec![
            NAME,
            Column("Status", "string", 0, "The status of the node"),
            Column("Roles", "string", 0, "The roles of the node"),
            AGE,
            Column("Version", "string", 0, "Kubelet Version reported by the node."),
            Column("Internal-IP", "string", 1, "List of internal IPs of the node."),
            Column("External-IP", "string", 1, "List of external IPs of the node."),
            Column("OS-Image", "string", 1, "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
            Column("Kernel-Version", "string", 1, "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
            Column("Container-Runtime", "string", 1, "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2)."),
        ],
        ("", "Namespace") => vec![
            NAME,
            Column("Status", "string", 0, "The status of the namespace"),
            AGE,
        ],
        ("coordination.k8s.io", "Lease") => vec![
            NAME,
            Column("Holder", "string", 0, "HolderIdentity contains the identity of the holder of a current lease."),
            AGE,
        ],
        ("", "Secret") => vec![
            NAME,
            Column("Type", "string", 0, "Used to facilitate programmatic handling of secret data."),
            Column("Data", "string", 0, "Data contains the secret data."),
            AGE,
        ],
        ("", "ConfigMap") => vec![
            NAME,
            Column("Data", "string", 0, "Data contains the configuration data."),
            AGE,
        ],
        ("", "Service") => vec![
            NAME,
            Column("Type", "string", 0, "The type of service."),
            Column("Cluster-IP", "string", 0, "The cluster IP of the service."),
            Column("External-IP", "string", 0, "The external IP of the service."),
            Column("Port(s)", "string", 0, "The ports of the service."),
            AGE,
            Column("Selector", "string", 1, "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/"),
        ],
        ("", "Endpoints") => vec![
            NAME,
            Column("Endpoints", "string", 0, "Endpoints of the service."),
            AGE,
        ],
        ("discovery.k8s.io", "EndpointSlice") => vec![
            NAME,
            Column("AddressType", "string", 0, "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name. (Deprecated) The EndpointSlice controller only generates, and kube-proxy only processes, slices of addressType \"IPv4\" and \"IPv6\". No semantics are defined for the \"FQDN\" type."),
            Column("Ports", "string", 0, "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. Each slice may include a maximum of 100 ports. Services always have at least 1 port, so EndpointSlices generated by the EndpointSlice controller will likewise always have at least 1 port. EndpointSlices used for other purposes may have an empty ports list."),
            Column("Endpoints", "string", 0, "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints."),
            AGE,
        ],
        ("", "PodTemplate") => vec![
            NAME,
            Column("Containers", "string", 0, "Names of each container in the template."),
            Column("Images", "string", 0, "Images referenced by each container in the template."),
            Column("Pod Labels", "string", 0, "The labels for the pod template."),
        ],
        ("", "ReplicationController") => vec![
            NAME,
            Column("Desired", "integer", 0, "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"),
            Column("Current", "integer", 0, "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"),
            Column("Ready", "integer", 0, "The number of ready replicas for this replication controller."),
            AGE,
            Column("Containers", "string", 1, "Names of each container in the template."),
            Column("Images", "string", 1, "Images referenced by each container in the template."),
            Column("Selector", "string", 1, "Label selector for pods. Pods that match this label selector are counted towards the replica count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
        ],
        ("", "ResourceQuota") => vec![
            NAME,
            AGE,
            Column("Request", "string", 0, "Request represents a minimum amount of cpu/memory that a container may consume."),
            Column("Limit", "string", 0, "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
        ],
        ("", "LimitRange") => vec![
            NAME,
            Column("Created At", "date", 0, "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
        ],
        ("scheduling.k8s.io", "PriorityClass") => vec![
            NAME,
            Column("Value", "integer", 0, "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec."),
            Column("Global-Default", "boolean", 0, "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority."),
            AGE,
            Column("PreemptionPolicy", "string", 0, "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset."),
        ],
        ("policy", "PodDisruptionBudget") => vec![
            NAME,
            Column("Min Available", "string", 0, "The minimum number of pods that must be available simultaneously.  This can be either an integer or a string specifying a percentage, e.g. \"28%\"."),
            Column("Max Unavailable", "string", 0, "The maximum number of pods that may be unavailable simultaneously.  This can be either an integer or a string specifying a percentage, e.g. \"28%\"."),
            Column("Allowed Disruptions", "integer", 0, "Calculated number of pods that may be disrupted at this time."),
            AGE,
        ],
        ("", "ServiceAccount") => vec![
            NAME,
            Column("Secrets", "string", 0, "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."),
            AGE,
        ],
        _ => vec![NAME, AGE],
    }
}

/// Go's `duration.HumanDuration`, as every AGE column prints.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{d}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The age of a timestamp field, `<unknown>` when it is missing.
pub fn age(v: &Value, now: DateTime<Utc>) -> String {
    match parse_time(v) {
        Some(t) => human_duration((now - t).num_seconds()),
        None => "<unknown>".into(),
    }
}

fn str_or<'a>(v: &'a Value, default: &'a str) -> &'a str {
    v.as_str().filter(|s| !s.is_empty()).unwrap_or(default)
}

fn pod_cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &pod["spec"];
    let status = &pod["status"];
    let total = spec["containers"].as_array().map_or(0, Vec::len);
    let mut restarts: i64 = 0;
    let mut ready = 0;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut reason = str_or(&status["phase"], "").to_string();
    if let Some(r) = status["reason"].as_str().filter(|s| !s.is_empty()) {
        reason = r.to_string();
    }
    let mut note_restart = |cs: &Value, restarts: &mut i64| {
        *restarts += cs["restartCount"].as_i64().unwrap_or(0);
        if let Some(t) = parse_time(&cs["lastState"]["terminated"]["finishedAt"]) {
            if last_restart.is_none_or(|l| l < t) {
                last_restart = Some(t);
            }
        }
    };
    let init_statuses = status["initContainerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let init_count = spec["initContainers"].as_array().map_or(0, Vec::len);
    let mut initializing = false;
    for (i, cs) in init_statuses.iter().enumerate() {
        note_restart(cs, &mut restarts);
        let term = &cs["state"]["terminated"];
        let waiting = &cs["state"]["waiting"];
        if term.is_object() && term["exitCode"].as_i64() == Some(0) {
            continue;
        }
        if term.is_object() {
            reason = match term["reason"].as_str().filter(|s| !s.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None => match term["signal"].as_i64().filter(|s| *s != 0) {
                    Some(sig) => format!("Init:Signal:{sig}"),
                    None => format!("Init:ExitCode:{}", term["exitCode"].as_i64().unwrap_or(0)),
                },
            };
        } else if let Some(r) = waiting["reason"]
            .as_str()
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{i}/{init_count}");
        }
        initializing = true;
        break;
    }
    let initialized = status["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Initialized" && c["status"] == "True")
    });
    if !initializing || initialized {
        restarts = 0;
        last_restart = None;
        let mut has_running = false;
        let statuses = status["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for cs in statuses.iter().rev() {
            restarts += cs["restartCount"].as_i64().unwrap_or(0);
            if let Some(t) = parse_time(&cs["lastState"]["terminated"]["finishedAt"]) {
                if last_restart.is_none_or(|l| l < t) {
                    last_restart = Some(t);
                }
            }
            let state = &cs["state"];
            if let Some(r) = state["waiting"]["reason"]
                .as_str()
                .filter(|s| !s.is_empty())
            {
                reason = r.to_string();
            } else if let Some(r) = state["terminated"]["reason"]
                .as_str()
                .filter(|s| !s.is_empty())
            {
                reason = r.to_string();
            } else if state["terminated"].is_object() {
                reason = match state["terminated"]["signal"].as_i64().filter(|s| *s != 0) {
                    Some(sig) => format!("Signal:{sig}"),
                    None => format!(
                        "ExitCode:{}",
                        state["terminated"]["exitCode"].as_i64().unwrap_or(0)
                    ),
                };
            } else if cs["ready"] == true && state["running"].is_object() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let has_ready = status["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            reason = if has_ready {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }
    let phase = status["phase"].as_str().unwrap_or("");
    if crate::meta::is_deleting(pod) {
        if status["reason"] == "NodeLost" {
            reason = "Unknown".into();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".into();
        }
    }
    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!(
            "{restarts} ({} ago)",
            human_duration((now - t).num_seconds())
        ),
        _ => restarts.to_string(),
    };
    let gates = spec["readinessGates"].as_array().filter(|g| !g.is_empty());
    let gates_cell = match gates {
        None => "<none>".to_string(),
        Some(gates) => {
            let conds = status["conditions"].as_array().cloned().unwrap_or_default();
            let true_count = gates
                .iter()
                .filter(|g| {
                    conds
                        .iter()
                        .any(|c| c["type"] == g["conditionType"] && c["status"] == "True")
                })
                .count();
            format!("{true_count}/{}", gates.len())
        }
    };
    vec![
        json!(pod["metadata"]["name"]),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_cell),
        json!(age(&pod["metadata"]["creationTimestamp"], now)),
        json!(str_or(&status["podIP"], "<none>")),
        json!(str_or(&spec["nodeName"], "<none>")),
        json!(str_or(&status["nominatedNodeName"], "<none>")),
        json!(gates_cell),
    ]
}

fn event_cells(ev: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let first = if parse_time(&ev["firstTimestamp"]).is_some() {
        age(&ev["firstTimestamp"], now)
    } else {
        age(&ev["eventTime"], now)
    };
    let mut last = if parse_time(&ev["lastTimestamp"]).is_some() {
        age(&ev["lastTimestamp"], now)
    } else {
        first.clone()
    };
    let mut count = ev["count"].as_i64().unwrap_or(0);
    if ev["series"].is_object() {
        last = age(&ev["series"]["lastObservedTime"], now);
        count = ev["series"]["count"].as_i64().unwrap_or(0);
    } else if count == 0 {
        count = 1;
    }
    let obj = &ev["involvedObject"];
    let kind = obj["kind"].as_str().unwrap_or("").to_lowercase();
    let target = match obj["name"].as_str().filter(|s| !s.is_empty()) {
        Some(n) => format!("{kind}/{n}"),
        None => kind,
    };
    let source = {
        let component = ev["source"]["component"]
            .as_str()
            .filter(|s| !s.is_empty())
            .or_else(|| ev["reportingComponent"].as_str().filter(|s| !s.is_empty()));
        let host = ev["source"]["host"]
            .as_str()
            .filter(|s| !s.is_empty())
            .or_else(|| ev["reportingInstance"].as_str().filter(|s| !s.is_empty()));
        match (component, host) {
            (Some(c), Some(h)) => format!("{c}, {h}"),
            (Some(c), None) => c.to_string(),
            (None, Some(h)) => h.to_string(),
            (None, None) => String::new(),
        }
    };
    vec![
        json!(last),
        json!(ev["type"].as_str().unwrap_or("")),
        json!(ev["reason"].as_str().unwrap_or("")),
        json!(target),
        json!(obj["fieldPath"].as_str().unwrap_or("")),
        json!(source),
        json!(ev["message"].as_str().unwrap_or("").trim()),
        json!(first),
        json!(count),
        json!(ev["metadata"]["name"]),
    ]
}

fn node_cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let status = &node["status"];
    let mut state = "Unknown".to_string();
    if let Some(conds) = status["conditions"].as_array() {
        if let Some(ready) = conds.iter().find(|c| c["type"] == "Ready") {
            state = if ready["status"] == "True" {
                "Ready".into()
            } else {
                "NotReady".into()
            };
        }
    }
    if node["spec"]["unschedulable"] == true {
        state.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = crate::meta::labels(node)
        .into_iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("node-role.kubernetes.io/")
                .map(str::to_string)
                .or_else(|| (k == "kubernetes.io/role").then_some(v))
        })
        .filter(|r| !r.is_empty())
        .collect();
    roles.sort();
    let addr = |t: &str| {
        status["addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["type"] == t))
            .and_then(|x| x["address"].as_str())
            .unwrap_or("<none>")
            .to_string()
    };
    let info = &status["nodeInfo"];
    vec![
        json!(node["metadata"]["name"]),
        json!(state),
        json!(if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        }),
        json!(age(&node["metadata"]["creationTimestamp"], now)),
        json!(info["kubeletVersion"].as_str().unwrap_or("")),
        json!(addr("InternalIP")),
        json!(addr("ExternalIP")),
        json!(str_or(&info["osImage"], "<unknown>")),
        json!(str_or(&info["kernelVersion"], "<unknown>")),
        json!(str_or(&info["containerRuntimeVersion"], "<unknown>")),
    ]
}

/// How many entries a map field holds.
fn count(map: &Value) -> usize {
    map.as_object().map_or(0, |m| m.len())
}

fn cells(resource: &Resource, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    match (resource.group, resource.kind) {
        ("", "Pod") => pod_cells(obj, now),
        ("", "Event") => event_cells(obj, now),
        ("events.k8s.io", "Event") => event_cells(&crate::registry::event_to_core(obj), now),
        ("", "Node") => node_cells(obj, now),
        ("", "Namespace") => vec![
            json!(obj["metadata"]["name"]),
            json!(obj["status"]["phase"].as_str().unwrap_or("")),
            json!(age(&obj["metadata"]["creationTimestamp"], now)),
        ],
        ("coordination.k8s.io", "Lease") => vec![
            json!(obj["metadata"]["name"]),
            json!(obj["spec"]["holderIdentity"].as_str().unwrap_or("")),
            json!(age(&obj["metadata"]["creationTimestamp"], now)),
        ],
        ("", "Secret") => vec![
            json!(obj["metadata"]["name"]),
            json!(obj["type"].as_str().unwrap_or("")),
            json!(count(&obj["data"])),
            json!(age(&obj["metadata"]["creationTimestamp"], now)),
        ],
        ("", "ConfigMap") => vec![
            json!(obj["metadata"]["name"]),
            json!(count(&obj["data"]) + count(&obj["binaryData"])),
            json!(age(&obj["metadata"]["creationTimestamp"], now)),
        ],
        ("", "Service") => service_cells(obj, now),
        ("", "Endpoints") => endpoints_cells(obj, now),
        ("discovery.k8s.io", "EndpointSlice") => endpoint_slice_cells(obj, now),
        ("", "PodTemplate") => {
            let (containers, images) = containers_and_images(&obj["template"]["spec"]);
            vec![
                json!(obj["metadata"]["name"]),
                json!(containers),
                json!(images),
                json!(label_string(&obj["template"]["metadata"]["labels"])),
            ]
        }
        ("", "ReplicationController") => {
            let (containers, images) = containers_and_images(&obj["spec"]["template"]["spec"]);
            vec![
                json!(obj["metadata"]["name"]),
                json!(obj["spec"]["replicas"].as_i64().unwrap_or(0)),
                json!(obj["status"]["replicas"].as_i64().unwrap_or(0)),
                json!(obj["status"]["readyReplicas"].as_i64().unwrap_or(0)),
                json!(age(&obj["metadata"]["creationTimestamp"], now)),
                json!(containers),
                json!(images),
                json!(label_string(&obj["spec"]["selector"])),
            ]
        }
        ("", "ResourceQuota") => {
            let (request, limit) = quota_cells(obj);
            vec![
                json!(obj["metadata"]["name"]),
                json!(age(&obj["metadata"]["creationTimestamp"], now)),
                json!(request),
                json!(limit),
            ]
        }
        ("", "LimitRange") => vec![
            json!(obj["metadata"]["name"]),
            obj["metadata"]["creationTimestamp"].clone(),
        ],
        ("scheduling.k8s.io", "PriorityClass") => vec![
            json!(obj["metadata"]["name"]),
            json!(obj["value"].as_i64().unwrap_or(0)),
            json!(obj["globalDefault"].as_bool().unwrap_or(false)),
            json!(age(&obj["metadata"]["creationTimestamp"], now)),
            json!(obj["preemptionPolicy"].as_str().unwrap_or("")),
        ],
        ("policy", "PodDisruptionBudget") => {
            let bound = |v: &Value| match v {
                Value::Null => "N/A".to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            vec![
                json!(obj["metadata"]["name"]),
                json!(bound(&obj["spec"]["minAvailable"])),
                json!(bound(&obj["spec"]["maxUnavailable"])),
                json!(obj["status"]["disruptionsAllowed"].as_i64().unwrap_or(0)),
                json!(age(&obj["metadata"]["creationTimestamp"], now)),
            ]
        }
        ("", "ServiceAccount") => vec![
            json!(obj["metadata"]["name"]),
            json!(obj["secrets"].as_array().map_or(0, Vec::len)),
            json!(age(&obj["metadata"]["creationTimestamp"], now)),
        ],
        _ => vec![
            json!(obj["metadata"]["name"]),
            json!(age(&obj["metadata"]["creationTimestamp"], now)),
        ],
    }
}

/// A Service's row: its type, cluster IP, external IPs, ports (`80:30080/TCP`) and selector.
fn service_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &obj["spec"];
    let kind = spec["type"].as_str().unwrap_or("ClusterIP");
    let cluster_ip = spec["clusterIP"].as_str().unwrap_or("");
    let ingress = obj["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str()));
    let external: Vec<&str> = spec["externalIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .chain(ingress)
        .collect();
    let external = match (kind, external.is_empty()) {
        ("ExternalName", _) => spec["externalName"].as_str().unwrap_or("").to_string(),
        ("LoadBalancer", true) => "<pending>".to_string(),
        (_, true) => "<none>".to_string(),
        (_, false) => external.join(","),
    };
    let ports: Vec<String> = spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64() {
                Some(node) => format!("{}:{node}/{protocol}", p["port"]),
                None => format!("{}/{protocol}", p["port"]),
            }
        })
        .collect();
    vec![
        json!(obj["metadata"]["name"]),
        json!(kind),
        json!(if cluster_ip.is_empty() {
            "<none>"
        } else {
            cluster_ip
        }),
        json!(external),
        json!(or_none(ports.join(","))),
        json!(age(&obj["metadata"]["creationTimestamp"], now)),
        json!(label_string(&spec["selector"])),
    ]
}

fn or_none(text: String) -> String {
    if text.is_empty() {
        "<none>".into()
    } else {
        text
    }
}

/// An Endpoints' row: every `ip:port`.
fn endpoints_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut addresses = Vec::new();
    for subset in obj["subsets"].as_array().into_iter().flatten() {
        for a in subset["addresses"].as_array().into_iter().flatten() {
            for p in subset["ports"].as_array().into_iter().flatten() {
                addresses.push(format!("{}:{}", a["ip"].as_str().unwrap_or(""), p["port"]));
            }
        }
    }
    vec![
        json!(obj["metadata"]["name"]),
        json!(or_none(addresses.join(","))),
        json!(age(&obj["metadata"]["creationTimestamp"], now)),
    ]
}

/// An EndpointSlice's row: its address type, ports and addresses.
fn endpoint_slice_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let unset = |items: Vec<String>| {
        if items.is_empty() {
            "<unset>".to_string()
        } else {
            items.join(",")
        }
    };
    let ports = obj["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["port"].to_string())
        .collect();
    let addresses = obj["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    vec![
        json!(obj["metadata"]["name"]),
        json!(obj["addressType"].as_str().unwrap_or("")),
        json!(unset(ports)),
        json!(unset(addresses)),
        json!(age(&obj["metadata"]["creationTimestamp"], now)),
    ]
}

/// A template's container names and images, comma-separated.
fn containers_and_images(spec: &Value) -> (String, String) {
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    let field = |f: &str| {
        containers
            .iter()
            .map(|c| c[f].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    (field("name"), field("image"))
}

/// Labels as `a=b,c=d` (sorted), or `<none>`.
fn label_string(labels: &Value) -> String {
    match labels.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".into(),
    }
}

/// A quota's Request and Limit cells: `used/hard` of each hard name, sorted, `limits.*` in the
/// second.
fn quota_cells(obj: &Value) -> (String, String) {
    let (mut request, mut limit) = (Vec::new(), Vec::new());
    if let Some(hard) = obj["status"]["hard"].as_object() {
        for (name, value) in hard {
            let used = obj["status"]["used"][name].as_str().unwrap_or("0");
            let cell = format!("{name}: {used}/{}", value.as_str().unwrap_or(""));
            if name.split('.').next() == Some("limits") {
                limit.push(cell);
            } else {
                request.push(cell);
            }
        }
    }
    (request.join(", "), limit.join(", "))
}

/// What each row carries besides its cells (`?includeObject=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s.unwrap_or("") {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(format!("unsupported includeObject value: {other:?}")),
        }
    }
}

/// One row of `obj`'s table, as of `now`.
pub fn row(resource: &Resource, obj: &Value, include: IncludeObject, now: DateTime<Utc>) -> Value {
    let mut row = json!({ "cells": cells(resource, obj, now) });
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            });
        }
        IncludeObject::Object => row["object"] = obj.clone(),
    }
    row
}

/// A Table of `objects`; `with_columns` is false for the watch events after the first, as
/// Kubernetes sends the column definitions only once per watch.
pub fn table(
    resource: &Resource,
    objects: &[&Value],
    resource_version: Option<&str>,
    continue_token: Option<&str>,
    include: IncludeObject,
    with_columns: bool,
) -> Value {
    let now = Utc::now();
    let rows = objects
        .iter()
        .map(|o| row(resource, o, include, now))
        .collect();
    table_of_rows(
        resource,
        rows,
        resource_version,
        continue_token,
        with_columns,
    )
}

/// A Table of rows already made with [`row`].
pub fn table_of_rows(
    resource: &Resource,
    rows: Vec<Value>,
    resource_version: Option<&str>,
    continue_token: Option<&str>,
    with_columns: bool,
) -> Value {
    let mut meta = json!({});
    if let Some(rv) = resource_version {
        meta["resourceVersion"] = json!(rv);
    }
    if let Some(c) = continue_token {
        meta["continue"] = json!(c);
    }
    let column_defs: Vec<Value> = if with_columns {
        columns(resource)
            .into_iter()
            .map(|Column(name, ty, priority, description)| {
                let format = if name == "Name" && priority == 0 { "name" } else { "" };
                json!({"name": name, "type": ty, "format": format, "description": description, "priority": priority})
            })
            .collect()
    } else {
        Vec::new()
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": column_defs,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::find;

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(50 * 3600), "2d2h");
    }

    fn pod_row(pod: Value) -> Vec<Value> {
        let t = table(
            find("", "v1", "pods").unwrap(),
            &[&pod],
            Some("5"),
            None,
            IncludeObject::Metadata,
            true,
        );
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 9);
        t["rows"][0]["cells"].as_array().unwrap().clone()
    }

    #[test]
    fn pending_pod_prints_like_kubectl() {
        let cells = pod_row(
            json!({"metadata": {"name": "k"}, "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Pending"}}),
        );
        assert_eq!(cells[1], "0/1");
        assert_eq!(cells[2], "Pending");
        assert_eq!(cells[3], "0");
        assert_eq!(cells[5], "<none>");
    }

    #[test]
    fn crash_looping_container_shows_its_waiting_reason() {
        let finished = crate::meta::timestamp(Utc::now() - chrono::Duration::seconds(7));
        let cells = pod_row(json!({"metadata": {"name": "d"},
            "spec": {"containers": [{"name": "one"}, {"name": "two"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "one", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "two", "ready": false, "restartCount": 3,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": finished}}}]}}));
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[2], "CrashLoopBackOff");
        assert_eq!(cells[3], "3 (7s ago)");
    }

    #[test]
    fn deleting_pod_is_terminating() {
        let cells = pod_row(
            json!({"metadata": {"name": "k", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Running"}}),
        );
        assert_eq!(cells[2], "Terminating");
    }

    #[test]
    fn event_rows_name_their_object() {
        let ev = json!({"metadata": {"name": "e1"}, "type": "Warning", "reason": "FailedScheduling",
            "involvedObject": {"kind": "Pod", "name": "web"}, "message": "0/1 nodes are available: 1 Insufficient cpu.",
            "source": {"component": "default-scheduler"}, "count": 6});
        let t = table(
            find("", "v1", "events").unwrap(),
            &[&ev],
            None,
            None,
            IncludeObject::None,
            true,
        );
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[3], "pod/web");
        assert_eq!(cells[5], "default-scheduler");
        assert_eq!(cells[8], 6);
    }
}
