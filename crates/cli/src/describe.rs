//! `kubectl describe`: pods, nodes and namespaces laid out as kubectl lays them out — the text
//! is built with tabs, then aligned in one pass by [`output::align`] — and, for other kinds,
//! the object's fields as an indented outline.

use chrono::{DateTime, Local, Utc};
use serde_json::Value;

use crate::args::DescribeArgs;
use crate::config::Context;
use crate::discovery::Resource;
use crate::get::{self, get_value};
use crate::output;
use crate::Error;

/// kubectl's describe tabwriter: no minimum width, two spaces of padding.
const PADDING: usize = 2;

/// `kubectl describe`
pub async fn run(ctx: &Context, args: DescribeArgs) -> Result<(), Error> {
    let targets = get::targets(ctx, &args.args).await?;
    let mut texts = Vec::new();
    let namespace = (!args.all_namespaces).then_some(ctx.namespace.as_str());
    for (resource, names) in targets {
        let objects = if names.is_empty() {
            let mut path = resource.collection(namespace);
            if let Some(l) = &args.selector {
                path.push_str(&format!("?labelSelector={}", get::encode_query(l)));
            }
            let list = get_value(ctx, &path).await?;
            list["items"].as_array().cloned().unwrap_or_default()
        } else {
            let mut found = Vec::new();
            for name in &names {
                let path = resource.object(&ctx.namespace, name);
                match get_value(ctx, &path).await {
                    Ok(v) => found.push(v),
                    // kubectl describes every object whose name starts with the word.
                    Err(err) if err.is_not_found() => {
                        let list =
                            get_value(ctx, &resource.collection(Some(&ctx.namespace))).await?;
                        let matching: Vec<Value> = list["items"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter(|i| {
                                i["metadata"]["name"]
                                    .as_str()
                                    .is_some_and(|n| n.starts_with(name.as_str()))
                            })
                            .cloned()
                            .collect();
                        if matching.is_empty() {
                            return Err(err);
                        }
                        found.extend(matching);
                    }
                    Err(err) => return Err(err),
                }
            }
            found
        };
        for object in objects {
            texts.push(describe(ctx, &resource, &object, args.show_events).await?);
        }
    }
    if texts.is_empty() {
        match namespace {
            Some(ns) => eprintln!("No resources found in {ns} namespace."),
            None => eprintln!("No resources found"),
        }
        return Ok(());
    }
    print!("{}", texts.join("\n\n"));
    Ok(())
}

async fn describe(
    ctx: &Context,
    resource: &Resource,
    object: &Value,
    events: bool,
) -> Result<String, Error> {
    let now = Utc::now();
    let events = if events && resource.kind != "Namespace" {
        events_of(ctx, object).await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut w = Writer::default();
    match (resource.group.as_str(), resource.kind.as_str()) {
        ("", "Pod") => pod(&mut w, object, now),
        ("", "Node") => node(ctx, &mut w, object, now).await,
        ("", "Namespace") => namespace(ctx, &mut w, object).await,
        _ => generic(&mut w, object),
    }
    if resource.kind != "Namespace" {
        write_events(&mut w, &events, now);
    }
    Ok(output::align(&w.0, 0, PADDING))
}

/// Tab-separated lines at indent levels of two spaces.
#[derive(Default)]
struct Writer(String);

impl Writer {
    fn line(&mut self, level: usize, text: &str) {
        for _ in 0..level {
            self.0.push_str("  ");
        }
        // Escape sequences and carriage returns would rewrite the terminal.
        self.0
            .push_str(&text.replace('\u{1b}', "^[").replace('\r', "\\r"));
        self.0.push('\n');
    }
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or("")
}

/// A time as kubectl prints it (RFC 1123 with a numeric zone, in local time).
fn time(value: &Value) -> String {
    match value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    {
        Some(t) => t
            .with_timezone(&Local)
            .format("%a, %d %b %Y %H:%M:%S %z")
            .to_string(),
        None => "Mon, 01 Jan 0001 00:00:00 +0000".to_string(),
    }
}

/// How long ago, as kubectl's short human durations read (`5s`, `2m3s`, `3h5m`, `2d3h`).
pub fn age(value: &Value, now: DateTime<Utc>) -> String {
    match value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    {
        Some(t) => {
            let millis = (now - t.with_timezone(&Utc)).num_milliseconds();
            api::table::human_duration(millis.div_euclid(1000))
        }
        None => "<unknown>".to_string(),
    }
}

fn map_lines(w: &mut Writer, title: &str, map: &Value, sep: &str, skip: &[&str]) {
    let mut entries: Vec<(&String, &Value)> = map
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    if entries.is_empty() {
        w.line(0, &format!("{title}:\t<none>"));
        return;
    }
    for (i, (k, v)) in entries.iter().enumerate() {
        let lead = if i == 0 {
            format!("{title}:\t")
        } else {
            "\t".to_string()
        };
        let value = v.as_str().unwrap_or("");
        if sep == ": " {
            let value = value.strip_suffix('\n').unwrap_or(value);
            if value.len() + k.len() + 2 > 140 || value.contains('\n') {
                w.line(0, &format!("{lead}{k}:"));
                for part in value.split('\n') {
                    let part = if part.len() > 138 {
                        format!("{}...", truncate(part, 138))
                    } else {
                        part.to_string()
                    };
                    w.line(0, &format!("\t  {part}"));
                }
                continue;
            }
            w.line(0, &format!("{lead}{k}: {value}"));
        } else {
            w.line(0, &format!("{lead}{k}={value}"));
        }
    }
}

fn truncate(s: &str, bytes: usize) -> &str {
    let mut end = bytes.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn pod(w: &mut Writer, p: &Value, now: DateTime<Utc>) {
    let meta = &p["metadata"];
    let spec = &p["spec"];
    let status = &p["status"];
    w.line(0, &format!("Name:\t{}", s(meta, &["name"])));
    w.line(0, &format!("Namespace:\t{}", s(meta, &["namespace"])));
    if let Some(priority) = spec["priority"].as_i64() {
        w.line(0, &format!("Priority:\t{priority}"));
    }
    for (key, label) in [
        ("priorityClassName", "Priority Class Name"),
        ("runtimeClassName", "Runtime Class Name"),
        ("serviceAccountName", "Service Account"),
    ] {
        if !s(spec, &[key]).is_empty() {
            w.line(0, &format!("{label}:\t{}", s(spec, &[key])));
        }
    }
    match s(spec, &["nodeName"]) {
        "" => w.line(0, "Node:\t<none>"),
        node => w.line(0, &format!("Node:\t{node}/{}", s(status, &["hostIP"]))),
    }
    if !status["startTime"].is_null() {
        w.line(0, &format!("Start Time:\t{}", time(&status["startTime"])));
    }
    map_lines(w, "Labels", &meta["labels"], "=", &[]);
    map_lines(
        w,
        "Annotations",
        &meta["annotations"],
        ": ",
        &["kubectl.kubernetes.io/last-applied-configuration"],
    );
    let phase = s(status, &["phase"]);
    if !meta["deletionTimestamp"].is_null() && phase != "Failed" && phase != "Succeeded" {
        w.line(
            0,
            &format!(
                "Status:\tTerminating (lasts {})",
                age(&meta["deletionTimestamp"], now)
            ),
        );
        w.line(
            0,
            &format!(
                "Termination Grace Period:\t{}s",
                meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0)
            ),
        );
    } else {
        w.line(0, &format!("Status:\t{phase}"));
    }
    for (key, label) in [("reason", "Reason"), ("message", "Message")] {
        if !s(status, &[key]).is_empty() {
            w.line(0, &format!("{label}:\t{}", s(status, &[key])));
        }
    }
    w.line(0, &format!("IP:\t{}", s(status, &["podIP"])));
    match status["podIPs"].as_array().filter(|a| !a.is_empty()) {
        None => w.line(0, "IPs:\t<none>"),
        Some(ips) => {
            w.line(0, "IPs:");
            for ip in ips {
                w.line(1, &format!("IP:\t{}", s(ip, &["ip"])));
            }
        }
    }
    if let Some(owner) = meta["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["controller"] == true)
    {
        w.line(
            0,
            &format!(
                "Controlled By:\t{}/{}",
                s(owner, &["kind"]),
                s(owner, &["name"])
            ),
        );
    }
    if !s(status, &["nominatedNodeName"]).is_empty() {
        w.line(
            0,
            &format!("NominatedNodeName:\t{}", s(status, &["nominatedNodeName"])),
        );
    }
    for (field, statuses, title) in [
        ("initContainers", "initContainerStatuses", "Init Containers"),
        ("containers", "containerStatuses", "Containers"),
    ] {
        let containers = spec[field].as_array().cloned().unwrap_or_default();
        if containers.is_empty() {
            if field == "containers" {
                w.line(0, "Containers: <none>");
            }
            continue;
        }
        w.line(0, &format!("{title}:"));
        for c in &containers {
            let name = s(c, &["name"]);
            let st = status[statuses]
                .as_array()
                .into_iter()
                .flatten()
                .find(|x| s(x, &["name"]) == name);
            container(w, c, st);
        }
    }
    if let Some(conditions) = status["conditions"].as_array().filter(|c| !c.is_empty()) {
        w.line(0, "Conditions:");
        w.line(1, "Type\tStatus");
        for c in conditions {
            w.line(1, &format!("{} \t{} ", s(c, &["type"]), s(c, &["status"])));
        }
    }
    volumes(w, &spec["volumes"]);
    w.line(
        0,
        &format!(
            "QoS Class:\t{}",
            match s(status, &["qosClass"]) {
                "" => qos_class(spec),
                q => q.to_string(),
            }
        ),
    );
    map_lines(w, "Node-Selectors", &spec["nodeSelector"], "=", &[]);
    tolerations(w, &spec["tolerations"]);
}

fn container(w: &mut Writer, c: &Value, st: Option<&Value>) {
    w.line(1, &format!("{}:", s(c, &["name"])));
    if let Some(st) = st {
        w.line(2, &format!("Container ID:\t{}", s(st, &["containerID"])));
    }
    w.line(2, &format!("Image:\t{}", s(c, &["image"])));
    if let Some(st) = st {
        w.line(2, &format!("Image ID:\t{}", s(st, &["imageID"])));
    }
    let ports: Vec<&Value> = c["ports"].as_array().into_iter().flatten().collect();
    let proto = |p: &Value| match s(p, &["protocol"]) {
        "" => "TCP".to_string(),
        x => x.to_string(),
    };
    let list = |key: &str| -> String {
        ports
            .iter()
            .map(|p| format!("{}/{}", p[key].as_i64().unwrap_or(0), proto(p)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (key, one, many) in [
        ("containerPort", "Port", "Ports"),
        ("hostPort", "Host Port", "Host Ports"),
    ] {
        let text = list(key);
        if text.contains(',') {
            w.line(2, &format!("{many}:\t{text}"));
        } else {
            w.line(
                2,
                &format!(
                    "{one}:\t{}",
                    if text.is_empty() {
                        "<none>".to_string()
                    } else {
                        text
                    }
                ),
            );
        }
    }
    for (key, title) in [("command", "Command"), ("args", "Args")] {
        if let Some(items) = c[key].as_array().filter(|a| !a.is_empty()) {
            w.line(2, &format!("{title}:"));
            for item in items {
                for piece in item.as_str().unwrap_or("").split('\n') {
                    w.line(3, piece);
                }
            }
        }
    }
    if let Some(st) = st {
        state(w, "State", &st["state"]);
        if st["lastState"]["terminated"].is_object() {
            state(w, "Last State", &st["lastState"]);
        }
        w.line(
            2,
            &format!(
                "Ready:\t{}",
                if st["ready"] == true { "True" } else { "False" }
            ),
        );
        w.line(
            2,
            &format!(
                "Restart Count:\t{}",
                st["restartCount"].as_i64().unwrap_or(0)
            ),
        );
    }
    for (key, title) in [("limits", "Limits"), ("requests", "Requests")] {
        if let Some(map) = c["resources"][key].as_object().filter(|m| !m.is_empty()) {
            w.line(2, &format!("{title}:"));
            let mut names: Vec<&String> = map.keys().collect();
            names.sort();
            for n in names {
                w.line(3, &format!("{n}:\t{}", quantity(&map[n])));
            }
        }
    }
    for (key, title) in [
        ("livenessProbe", "Liveness"),
        ("readinessProbe", "Readiness"),
        ("startupProbe", "Startup"),
    ] {
        if c[key].is_object() {
            w.line(2, &format!("{title}:\t{}", probe(&c[key])));
        }
    }
    match c["env"].as_array().filter(|e| !e.is_empty()) {
        None => w.line(2, "Environment:\t<none>"),
        Some(env) => {
            w.line(2, "Environment:");
            for e in env {
                let name = s(e, &["name"]);
                if let Some(value) = e["value"].as_str() {
                    let mut parts = value.split('\n');
                    w.line(3, &format!("{name}:\t{}", parts.next().unwrap_or("")));
                    for more in parts {
                        w.line(3, &format!("\t{more}"));
                    }
                } else if e["valueFrom"]["fieldRef"].is_object() {
                    let f = &e["valueFrom"]["fieldRef"];
                    w.line(
                        3,
                        &format!(
                            "{name}:\t ({}:{})",
                            s(f, &["apiVersion"]),
                            s(f, &["fieldPath"])
                        ),
                    );
                } else if e["valueFrom"]["secretKeyRef"].is_object() {
                    let r = &e["valueFrom"]["secretKeyRef"];
                    w.line(
                        3,
                        &format!(
                            "{name}:\t<set to the key '{}' in secret '{}'>\tOptional: {}",
                            s(r, &["key"]),
                            s(r, &["name"]),
                            r["optional"] == true
                        ),
                    );
                } else if e["valueFrom"]["configMapKeyRef"].is_object() {
                    let r = &e["valueFrom"]["configMapKeyRef"];
                    w.line(
                        3,
                        &format!(
                            "{name}:\t<set to the key '{}' of config map '{}'>\tOptional: {}",
                            s(r, &["key"]),
                            s(r, &["name"]),
                            r["optional"] == true
                        ),
                    );
                } else {
                    w.line(3, &format!("{name}:\t"));
                }
            }
        }
    }
    let mut mounts: Vec<&Value> = c["volumeMounts"].as_array().into_iter().flatten().collect();
    if mounts.is_empty() {
        w.line(2, "Mounts:\t<none>");
    } else {
        mounts.sort_by_key(|m| s(m, &["mountPath"]).to_string());
        w.line(2, "Mounts:");
        for m in mounts {
            let mut flags = if m["readOnly"] == true {
                "ro".to_string()
            } else {
                "rw".to_string()
            };
            if !s(m, &["subPath"]).is_empty() {
                flags.push_str(&format!(
                    ",path={}",
                    api::validation::go_quote(s(m, &["subPath"]))
                ));
            }
            w.line(
                3,
                &format!(
                    "{} from {} ({flags})",
                    s(m, &["mountPath"]),
                    s(m, &["name"])
                ),
            );
        }
    }
}

fn quantity(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn probe(p: &Value) -> String {
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        p["initialDelaySeconds"].as_i64().unwrap_or(0),
        p["timeoutSeconds"].as_i64().unwrap_or(1),
        p["periodSeconds"].as_i64().unwrap_or(10),
        p["successThreshold"].as_i64().unwrap_or(1),
        p["failureThreshold"].as_i64().unwrap_or(3),
    );
    let port = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if p["exec"].is_object() {
        let cmd: Vec<&str> = p["exec"]["command"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        format!("exec [{}] {attrs}", cmd.join(" "))
    } else if p["httpGet"].is_object() {
        let h = &p["httpGet"];
        let scheme = match s(h, &["scheme"]) {
            "" => "http".to_string(),
            x => x.to_lowercase(),
        };
        format!(
            "http-get {scheme}://{}:{}{} {attrs}",
            s(h, &["host"]),
            port(&h["port"]),
            s(h, &["path"])
        )
    } else if p["tcpSocket"].is_object() {
        let t = &p["tcpSocket"];
        format!(
            "tcp-socket {}:{} {attrs}",
            s(t, &["host"]),
            port(&t["port"])
        )
    } else if p["grpc"].is_object() {
        let g = &p["grpc"];
        format!(
            "grpc <pod>:{} {} {attrs}",
            port(&g["port"]),
            s(g, &["service"])
        )
    } else {
        format!("unknown {attrs}")
    }
}

fn state(w: &mut Writer, title: &str, st: &Value) {
    if st["running"].is_object() {
        w.line(2, &format!("{title}:\tRunning"));
        w.line(
            3,
            &format!("Started:\t{}", time(&st["running"]["startedAt"])),
        );
    } else if st["waiting"].is_object() {
        w.line(2, &format!("{title}:\tWaiting"));
        if !s(st, &["waiting", "reason"]).is_empty() {
            w.line(3, &format!("Reason:\t{}", s(st, &["waiting", "reason"])));
        }
    } else if st["terminated"].is_object() {
        let t = &st["terminated"];
        w.line(2, &format!("{title}:\tTerminated"));
        if !s(t, &["reason"]).is_empty() {
            w.line(3, &format!("Reason:\t{}", s(t, &["reason"])));
        }
        if !s(t, &["message"]).is_empty() {
            w.line(3, &format!("Message:\t{}", s(t, &["message"])));
        }
        w.line(
            3,
            &format!("Exit Code:\t{}", t["exitCode"].as_i64().unwrap_or(0)),
        );
        if t["signal"].as_i64().unwrap_or(0) > 0 {
            w.line(3, &format!("Signal:\t{}", t["signal"]));
        }
        w.line(3, &format!("Started:\t{}", time(&t["startedAt"])));
        w.line(3, &format!("Finished:\t{}", time(&t["finishedAt"])));
    } else {
        w.line(2, &format!("{title}:\tWaiting"));
    }
}

fn volumes(w: &mut Writer, vols: &Value) {
    let Some(vols) = vols.as_array().filter(|v| !v.is_empty()) else {
        w.line(0, "Volumes:\t<none>");
        return;
    };
    w.line(0, "Volumes:");
    for v in vols {
        w.line(1, &format!("{}:", s(v, &["name"])));
        if v["emptyDir"].is_object() {
            let e = &v["emptyDir"];
            w.line(
                2,
                "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)",
            );
            w.line(2, &format!("Medium:\t{}", s(e, &["medium"])));
            let limit = match &e["sizeLimit"] {
                Value::Null => "<unset>".to_string(),
                q => quantity(q),
            };
            w.line(2, &format!("SizeLimit:\t{limit}"));
        } else if v["hostPath"].is_object() {
            let h = &v["hostPath"];
            w.line(2, "Type:\tHostPath (bare host directory volume)");
            w.line(2, &format!("Path:\t{}", s(h, &["path"])));
            let t = if h["type"].is_null() {
                "<none>"
            } else {
                s(h, &["type"])
            };
            w.line(2, &format!("HostPathType:\t{t}"));
        } else if v["secret"].is_object() {
            w.line(2, "Type:\tSecret (a volume populated by a Secret)");
            w.line(
                2,
                &format!("SecretName:\t{}", s(v, &["secret", "secretName"])),
            );
            w.line(
                2,
                &format!("Optional:\t{}", v["secret"]["optional"] == true),
            );
        } else if v["configMap"].is_object() {
            w.line(2, "Type:\tConfigMap (a volume populated by a ConfigMap)");
            w.line(2, &format!("Name:\t{}", s(v, &["configMap", "name"])));
            w.line(
                2,
                &format!("Optional:\t{}", v["configMap"]["optional"] == true),
            );
        } else if v["projected"].is_object() {
            w.line(
                2,
                "Type:\tProjected (a volume that contains injected data from multiple sources)",
            );
            for source in v["projected"]["sources"].as_array().into_iter().flatten() {
                if source["secret"].is_object() {
                    w.line(
                        2,
                        &format!("SecretName:\t{}", s(source, &["secret", "name"])),
                    );
                    w.line(
                        2,
                        &format!("Optional:\t{}", source["secret"]["optional"] == true),
                    );
                } else if source["downwardAPI"].is_object() {
                    w.line(2, "DownwardAPI:\ttrue");
                } else if source["configMap"].is_object() {
                    w.line(
                        2,
                        &format!("ConfigMapName:\t{}", s(source, &["configMap", "name"])),
                    );
                    w.line(
                        2,
                        &format!("Optional:\t{}", source["configMap"]["optional"] == true),
                    );
                } else if source["serviceAccountToken"].is_object() {
                    w.line(
                        2,
                        &format!(
                            "TokenExpirationSeconds:\t{}",
                            source["serviceAccountToken"]["expirationSeconds"]
                                .as_i64()
                                .unwrap_or(3600)
                        ),
                    );
                }
            }
        } else if v["persistentVolumeClaim"].is_object() {
            w.line(2, "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)");
            w.line(
                2,
                &format!(
                    "ClaimName:\t{}",
                    s(v, &["persistentVolumeClaim", "claimName"])
                ),
            );
            w.line(
                2,
                &format!(
                    "ReadOnly:\t{}",
                    v["persistentVolumeClaim"]["readOnly"] == true
                ),
            );
        } else {
            w.line(1, "<unknown>");
        }
    }
}

/// The QoS class Kubernetes gives a pod whose status does not say.
fn qos_class(spec: &Value) -> String {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten())
        .collect();
    let positive = |q: &Value| !matches!(quantity(q).as_str(), "0" | "" | "0m");
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let r = &c["resources"];
        for kind in ["requests", "limits"] {
            for name in ["cpu", "memory"] {
                if positive(&r[kind][name]) {
                    any = true;
                }
            }
        }
        for name in ["cpu", "memory"] {
            let limit = &r["limits"][name];
            let request = if r["requests"][name].is_null() {
                limit
            } else {
                &r["requests"][name]
            };
            if !positive(limit) || quantity(request) != quantity(limit) {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort".into()
    } else if guaranteed {
        "Guaranteed".into()
    } else {
        "Burstable".into()
    }
}

fn tolerations(w: &mut Writer, list: &Value) {
    let mut items: Vec<&Value> = list.as_array().into_iter().flatten().collect();
    if items.is_empty() {
        w.line(0, "Tolerations:\t<none>");
        return;
    }
    items.sort_by_key(|t| s(t, &["key"]).to_string());
    for (i, t) in items.iter().enumerate() {
        let mut text = s(t, &["key"]).to_string();
        if !s(t, &["value"]).is_empty() {
            text.push_str(&format!("={}", s(t, &["value"])));
        }
        if !s(t, &["effect"]).is_empty() {
            text.push_str(&format!(":{}", s(t, &["effect"])));
        }
        if s(t, &["operator"]) == "Exists" && s(t, &["value"]).is_empty() {
            if text.is_empty() {
                text.push_str("op=Exists");
            } else {
                text.push_str(" op=Exists");
            }
        }
        if let Some(secs) = t["tolerationSeconds"].as_i64() {
            text.push_str(&format!(" for {secs}s"));
        }
        let lead = if i == 0 { "Tolerations:\t" } else { "\t" };
        w.line(0, &format!("{lead}{text}"));
    }
}

async fn events_of(ctx: &Context, object: &Value) -> Result<Vec<Value>, Error> {
    let meta = &object["metadata"];
    let mut selector = format!("involvedObject.name={}", s(meta, &["name"]));
    let ns = s(meta, &["namespace"]);
    if !ns.is_empty() {
        selector.push_str(&format!(",involvedObject.namespace={ns}"));
    }
    if !s(meta, &["uid"]).is_empty() {
        selector.push_str(&format!(",involvedObject.uid={}", s(meta, &["uid"])));
    }
    let base = if ns.is_empty() {
        "/api/v1/events".to_string()
    } else {
        format!("/api/v1/namespaces/{ns}/events")
    };
    let path = format!("{base}?fieldSelector={}", get::encode_query(&selector));
    let list = get_value(ctx, &path).await?;
    let mut events = list["items"].as_array().cloned().unwrap_or_default();
    events.sort_by_key(|e| e["lastTimestamp"].as_str().unwrap_or("").to_string());
    Ok(events)
}

/// When an event first happened: its event time, else its first timestamp.
fn first_seen(e: &Value) -> &Value {
    if e["eventTime"].is_string() {
        &e["eventTime"]
    } else {
        &e["firstTimestamp"]
    }
}

/// `2m (x3 over 5m)` for an event seen more than once (a series, or a count above one), as
/// describe and `kubectl events` print it.
pub fn repeated(e: &Value, now: DateTime<Utc>) -> Option<String> {
    let (last, count) = if e["series"].is_object() {
        (
            &e["series"]["lastObservedTime"],
            e["series"]["count"].as_i64().unwrap_or(0),
        )
    } else {
        match e["count"].as_i64().unwrap_or(0) {
            n if n > 1 => (&e["lastTimestamp"], n),
            _ => return None,
        }
    };
    Some(format!(
        "{} (x{count} over {})",
        age(last, now),
        age(first_seen(e), now)
    ))
}

fn write_events(w: &mut Writer, events: &[Value], now: DateTime<Utc>) {
    if events.is_empty() {
        w.line(0, "Events:\t<none>");
        return;
    }
    w.line(0, "Events:");
    w.line(1, "Type\tReason\tAge\tFrom\tMessage");
    w.line(1, "----\t------\t----\t----\t-------");
    for e in events {
        let interval = repeated(e, now).unwrap_or_else(|| age(first_seen(e), now));
        let from = match s(e, &["source", "component"]) {
            "" => s(e, &["reportingComponent"]),
            c => c,
        };
        w.line(
            1,
            &format!(
                "{}\t{}\t{interval}\t{from}\t{}",
                s(e, &["type"]),
                s(e, &["reason"]),
                s(e, &["message"]).trim()
            ),
        );
    }
}

async fn node(ctx: &Context, w: &mut Writer, n: &Value, now: DateTime<Utc>) {
    let meta = &n["metadata"];
    let name = s(meta, &["name"]);
    w.line(0, &format!("Name:\t{name}"));
    let mut roles: Vec<String> = meta["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            k.strip_prefix("node-role.kubernetes.io/")
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .or_else(|| {
                    (k == "kubernetes.io/role")
                        .then(|| v.as_str().unwrap_or("").to_string())
                        .filter(|r| !r.is_empty())
                })
        })
        .collect();
    roles.sort();
    roles.dedup();
    w.line(
        0,
        &format!(
            "Roles:\t{}",
            if roles.is_empty() {
                "<none>".to_string()
            } else {
                roles.join(",")
            }
        ),
    );
    map_lines(w, "Labels", &meta["labels"], "=", &[]);
    map_lines(w, "Annotations", &meta["annotations"], ": ", &[]);
    w.line(
        0,
        &format!("CreationTimestamp:\t{}", time(&meta["creationTimestamp"])),
    );
    let mut taints: Vec<&Value> = n["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if taints.is_empty() {
        w.line(0, "Taints:\t<none>");
    }
    taints.sort_by_key(|t| format!("{},{}", s(t, &["effect"]), s(t, &["key"])));
    for (i, t) in taints.iter().enumerate() {
        let lead = if i == 0 { "Taints:\t" } else { "\t" };
        let value = if s(t, &["value"]).is_empty() {
            String::new()
        } else {
            format!("={}", s(t, &["value"]))
        };
        w.line(
            0,
            &format!("{lead}{}{value}:{}", s(t, &["key"]), s(t, &["effect"])),
        );
    }
    w.line(
        0,
        &format!("Unschedulable:\t{}", n["spec"]["unschedulable"] == true),
    );
    match get_value(
        ctx,
        &format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"),
    )
    .await
    {
        Ok(lease) => {
            w.line(0, "Lease:");
            let unset = |v: &Value| {
                if v.is_null() {
                    "<unset>".to_string()
                } else {
                    time(v)
                }
            };
            let holder = if lease["spec"]["holderIdentity"].is_null() {
                "<unset>"
            } else {
                s(&lease, &["spec", "holderIdentity"])
            };
            w.line(1, &format!("HolderIdentity:\t{holder}"));
            w.line(
                1,
                &format!("AcquireTime:\t{}", unset(&lease["spec"]["acquireTime"])),
            );
            w.line(
                1,
                &format!("RenewTime:\t{}", unset(&lease["spec"]["renewTime"])),
            );
        }
        Err(err) => w.line(0, &format!("Lease:\tFailed to get lease: {err}")),
    }
    let status = &n["status"];
    if let Some(conditions) = status["conditions"].as_array().filter(|c| !c.is_empty()) {
        w.line(0, "Conditions:");
        w.line(
            1,
            "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage",
        );
        w.line(
            1,
            "----\t------\t-----------------\t------------------\t------\t-------",
        );
        for c in conditions {
            w.line(
                1,
                &format!(
                    "{} \t{} \t{} \t{} \t{} \t{}",
                    s(c, &["type"]),
                    s(c, &["status"]),
                    time(&c["lastHeartbeatTime"]),
                    time(&c["lastTransitionTime"]),
                    s(c, &["reason"]),
                    s(c, &["message"])
                ),
            );
        }
    }
    w.line(0, "Addresses:");
    for a in status["addresses"].as_array().into_iter().flatten() {
        w.line(1, &format!("{}:\t{}", s(a, &["type"]), s(a, &["address"])));
    }
    for (key, title) in [("capacity", "Capacity"), ("allocatable", "Allocatable")] {
        if let Some(map) = status[key].as_object().filter(|m| !m.is_empty()) {
            w.line(0, &format!("{title}:"));
            let mut names: Vec<&String> = map.keys().collect();
            names.sort();
            for k in names {
                w.line(1, &format!("{k}:\t{}", quantity(&map[k])));
            }
        }
    }
    let info = &status["nodeInfo"];
    w.line(0, "System Info:");
    for (key, label) in [
        ("machineID", "Machine ID"),
        ("systemUUID", "System UUID"),
        ("bootID", "Boot ID"),
        ("kernelVersion", "Kernel Version"),
        ("osImage", "OS Image"),
        ("operatingSystem", "Operating System"),
        ("architecture", "Architecture"),
        ("containerRuntimeVersion", "Container Runtime Version"),
        ("kubeletVersion", "Kubelet Version"),
        ("kubeProxyVersion", "Kube-Proxy Version"),
    ] {
        w.line(1, &format!("{label}:\t{}", s(info, &[key])));
    }
    if !s(n, &["spec", "podCIDR"]).is_empty() {
        w.line(0, &format!("PodCIDR:\t{}", s(n, &["spec", "podCIDR"])));
    }
    if let Some(cidrs) = n["spec"]["podCIDRs"].as_array().filter(|c| !c.is_empty()) {
        let list: Vec<&str> = cidrs.iter().filter_map(Value::as_str).collect();
        w.line(0, &format!("PodCIDRs:\t{}", list.join(",")));
    }
    if !s(n, &["spec", "providerID"]).is_empty() {
        w.line(
            0,
            &format!("ProviderID:\t{}", s(n, &["spec", "providerID"])),
        );
    }
    let selector = get::encode_query(&format!(
        "spec.nodeName={name},status.phase!=Failed,status.phase!=Succeeded"
    ));
    if let Ok(list) = get_value(ctx, &format!("/api/v1/pods?fieldSelector={selector}")).await {
        node_pods(
            w,
            status,
            list["items"].as_array().cloned().unwrap_or_default(),
            now,
        );
    }
}

fn node_pods(w: &mut Writer, status: &Value, pods: Vec<Value>, now: DateTime<Utc>) {
    let alloc = if status["allocatable"].is_object() {
        &status["allocatable"]
    } else {
        &status["capacity"]
    };
    let alloc_cpu = milli(&alloc["cpu"], true);
    let alloc_mem = milli(&alloc["memory"], false);
    let pct = |v: i128, total: i128| if total == 0 { 0 } else { v * 100 / total };
    w.line(
        0,
        &format!("Non-terminated Pods:\t({} in total)", pods.len()),
    );
    w.line(
        1,
        "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge",
    );
    w.line(
        1,
        "---------\t----\t\t------------\t----------\t---------------\t-------------\t---",
    );
    let (mut tot_cr, mut tot_cl, mut tot_mr, mut tot_ml) = (0i128, 0i128, 0i128, 0i128);
    for p in &pods {
        let sum = |kind: &str, res: &str, cpu: bool| -> i128 {
            p["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| milli(&c["resources"][kind][res], cpu))
                .sum()
        };
        let (cr, cl, mr, ml) = (
            sum("requests", "cpu", true),
            sum("limits", "cpu", true),
            sum("requests", "memory", false),
            sum("limits", "memory", false),
        );
        tot_cr += cr;
        tot_cl += cl;
        tot_mr += mr;
        tot_ml += ml;
        w.line(
            1,
            &format!(
                "{}\t{}\t\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{}",
                s(p, &["metadata", "namespace"]),
                s(p, &["metadata", "name"]),
                cpu_text(cr),
                pct(cr, alloc_cpu),
                cpu_text(cl),
                pct(cl, alloc_cpu),
                mem_text(mr),
                pct(mr, alloc_mem),
                mem_text(ml),
                pct(ml, alloc_mem),
                age(&p["metadata"]["creationTimestamp"], now)
            ),
        );
    }
    w.line(0, "Allocated resources:");
    w.line(
        1,
        "(Total limits may be over 100 percent, i.e., overcommitted.)",
    );
    w.line(1, "Resource\tRequests\tLimits");
    w.line(1, "--------\t--------\t------");
    w.line(
        1,
        &format!(
            "cpu\t{} ({}%)\t{} ({}%)",
            cpu_text(tot_cr),
            pct(tot_cr, alloc_cpu),
            cpu_text(tot_cl),
            pct(tot_cl, alloc_cpu)
        ),
    );
    w.line(
        1,
        &format!(
            "memory\t{} ({}%)\t{} ({}%)",
            mem_text(tot_mr),
            pct(tot_mr, alloc_mem),
            mem_text(tot_ml),
            pct(tot_ml, alloc_mem)
        ),
    );
    w.line(1, "ephemeral-storage\t0 (0%)\t0 (0%)");
}

/// A quantity in milli-units (CPU) or bytes (memory), for sums and percentages.
fn milli(q: &Value, cpu: bool) -> i128 {
    let text = quantity(q);
    if text.is_empty() || text == "null" {
        return 0;
    }
    let (number, suffix) = text.split_at(
        text.find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(text.len()),
    );
    let n: f64 = number.parse().unwrap_or(0.0);
    let factor: f64 = match suffix {
        "m" => 0.001,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        _ => 1.0,
    };
    let value = n * factor;
    if cpu {
        (value * 1000.0).round() as i128
    } else {
        value.round() as i128
    }
}

fn cpu_text(m: i128) -> String {
    if m % 1000 == 0 {
        (m / 1000).to_string()
    } else {
        format!("{m}m")
    }
}

fn mem_text(b: i128) -> String {
    for (suffix, size) in [("Gi", 1i128 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if b != 0 && b % size == 0 {
            return format!("{}{suffix}", b / size);
        }
    }
    b.to_string()
}

async fn namespace(ctx: &Context, w: &mut Writer, n: &Value) {
    let meta = &n["metadata"];
    let name = s(meta, &["name"]);
    w.line(0, &format!("Name:\t{name}"));
    map_lines(w, "Labels", &meta["labels"], "=", &[]);
    map_lines(w, "Annotations", &meta["annotations"], ": ", &[]);
    w.line(0, &format!("Status:\t{}", s(n, &["status", "phase"])));
    // Quotas and limit ranges are listed only where the server serves them.
    let quotas = get_value(ctx, &format!("/api/v1/namespaces/{name}/resourcequotas")).await;
    if let Ok(list) = quotas {
        if list["items"].as_array().is_none_or(Vec::is_empty) {
            w.line(0, "");
            w.line(0, "No resource quota.");
        }
    }
    let limits = get_value(ctx, &format!("/api/v1/namespaces/{name}/limitranges")).await;
    if let Ok(list) = limits {
        if list["items"].as_array().is_none_or(Vec::is_empty) {
            w.line(0, "");
            w.line(0, "No LimitRange resource.");
        }
    }
}

/// Kinds without their own layout: the object's fields as an indented outline.
fn generic(w: &mut Writer, v: &Value) {
    fn walk(w: &mut Writer, v: &Value, level: usize) {
        let Some(map) = v.as_object() else { return };
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for k in keys {
            let title = capitalise(k);
            match &map[k] {
                Value::Object(_) => {
                    w.line(level, &format!("{title}:"));
                    walk(w, &map[k], level + 1);
                }
                Value::Array(items) => {
                    w.line(level, &format!("{title}:"));
                    for item in items {
                        if item.is_object() {
                            walk(w, item, level + 1);
                        } else {
                            w.line(level + 1, &quantity(item));
                        }
                    }
                }
                other => w.line(level, &format!("{title}:\t{}", quantity(other))),
            }
        }
    }
    let meta = &v["metadata"];
    w.line(0, &format!("Name:\t{}", s(meta, &["name"])));
    if !s(meta, &["namespace"]).is_empty() {
        w.line(0, &format!("Namespace:\t{}", s(meta, &["namespace"])));
    }
    map_lines(w, "Labels", &meta["labels"], "=", &[]);
    map_lines(w, "Annotations", &meta["annotations"], ": ", &[]);
    w.line(0, &format!("API Version:\t{}", s(v, &["apiVersion"])));
    w.line(0, &format!("Kind:\t{}", s(v, &["kind"])));
    let mut rest = v.clone();
    if let Some(m) = rest.as_object_mut() {
        for k in ["apiVersion", "kind", "metadata"] {
            m.remove(k);
        }
    }
    walk(w, &rest, 0);
}

fn capitalise(k: &str) -> String {
    let mut out = String::new();
    for (i, c) in k.chars().enumerate() {
        if i == 0 {
            out.extend(c.to_uppercase());
        } else if c.is_uppercase() {
            out.push(' ');
            out.push(c);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_kubectl_prints_them() {
        let cases = [
            (0, "0s"),
            (119_000, "119s"),
            (123_000, "2m3s"),
            (120_000, "2m"),
            (600_000, "10m"),
            (3 * 3_600_000 + 5 * 60_000, "3h5m"),
            (10 * 3_600_000, "10h"),
            (51 * 3_600_000, "2d3h"),
            (9 * 24 * 3_600_000, "9d"),
        ];
        for (ms, want) in cases {
            assert_eq!(api::table::human_duration(ms / 1000), want, "{ms}");
        }
    }

    #[test]
    fn a_pending_pod_reads_as_kubectl_shows_it() {
        let pod = serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "labels": {"run": "web"}},
            "spec": {"priority": 0, "serviceAccountName": "default", "containers": [{"name": "web", "image": "nginx",
                "resources": {"requests": {"cpu": "64"}}}],
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]},
            "status": {"phase": "Pending", "qosClass": "Burstable", "conditions": [{"type": "PodScheduled", "status": "False"}]},
        });
        let mut w = Writer::default();
        pod_for_test(&mut w, &pod);
        write_events(&mut w, &[], Utc::now());
        let text = output::align(&w.0, 0, PADDING);
        let want = "Name:             web\nNamespace:        default\nPriority:         0\nService Account:  default\nNode:             <none>\nLabels:           run=web\nAnnotations:      <none>\nStatus:           Pending\nIP:               \nIPs:              <none>\nContainers:\n  web:\n    Image:      nginx\n    Port:       <none>\n    Host Port:  <none>\n    Requests:\n      cpu:        64\n    Environment:  <none>\n    Mounts:       <none>\nConditions:\n  Type           Status\n  PodScheduled   False \nVolumes:         <none>\nQoS Class:       Burstable\nNode-Selectors:  <none>\nTolerations:     node.kubernetes.io/not-ready:NoExecute op=Exists for 300s\nEvents:          <none>\n";
        assert_eq!(text, want);
    }

    fn pod_for_test(w: &mut Writer, p: &Value) {
        pod(w, p, Utc::now());
    }
}
