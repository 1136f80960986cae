//! `kubectl cordon`, `uncordon` and `drain`: a node's `spec.unschedulable`, and its pods evicted
//! through `pods/eviction` (so their disruption budgets hold), with kubectl's filters, warnings,
//! retries every 5 s on 429, and lines.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::args::{CordonArgs, DrainArgs};
use crate::config::Context;
use crate::get::get_value;
use crate::Error;

/// How long drain waits before asking again for an eviction its budget refused.
const RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq, Eq)]
enum DryRun {
    None,
    Server,
    Client,
}

impl DryRun {
    fn parse(flag: Option<&str>) -> Result<Self, Error> {
        match flag.unwrap_or("none") {
            "none" => Ok(DryRun::None),
            "server" => Ok(DryRun::Server),
            "client" => Ok(DryRun::Client),
            other => Err(Error::other(format!(
                "Invalid dry-run value ({other}). Must be \"none\", \"server\", or \"client\"."
            ))),
        }
    }

    /// What kubectl appends to a line it prints.
    fn suffix(self) -> &'static str {
        match self {
            DryRun::None => "",
            DryRun::Server => " (server dry run)",
            DryRun::Client => " (dry run)",
        }
    }
}

/// A whole-second duration as Go prints it: `12s`, `1m30s`, `2h0m0s`.
fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{sec}s"),
        (0, _) => format!("{m}m{sec}s"),
        _ => format!("{h}h{m}m{sec}s"),
    }
}

/// `kubectl cordon` (`unschedulable`) and `kubectl uncordon`.
pub async fn cordon(ctx: &Context, args: CordonArgs, unschedulable: bool) -> Result<(), Error> {
    let dry = DryRun::parse(args.dry_run.as_deref())?;
    set_unschedulable(ctx, &args.node, unschedulable, dry).await
}

async fn set_unschedulable(
    ctx: &Context,
    node: &str,
    unschedulable: bool,
    dry: DryRun,
) -> Result<(), Error> {
    let path = format!("/api/v1/nodes/{node}");
    let current = get_value(ctx, &path).await?;
    let verb = if unschedulable {
        "cordoned"
    } else {
        "uncordoned"
    };
    if current["spec"]["unschedulable"].as_bool().unwrap_or(false) == unschedulable {
        println!("node/{node} already {verb}");
        return Ok(());
    }
    if dry != DryRun::Client {
        let value = if unschedulable {
            json!(true)
        } else {
            Value::Null
        };
        let query = if dry == DryRun::Server {
            "?dryRun=All"
        } else {
            ""
        };
        let req = http::Request::patch(format!("{path}{query}"))
            .header(
                http::header::CONTENT_TYPE,
                "application/strategic-merge-patch+json",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(
                serde_json::to_vec(&json!({"spec": {"unschedulable": value}}))
                    .map_err(Error::other)?,
            )
            .map_err(Error::other)?;
        ctx.client.request::<Value>(req).await?;
    }
    println!("node/{node} {verb}{}", dry.suffix());
    Ok(())
}

/// `kubectl drain`: cordons, evicts what the filters let go, waits for it to be gone.
pub async fn drain(ctx: &Context, args: DrainArgs) -> Result<i32, Error> {
    let dry = DryRun::parse(args.dry_run.as_deref())?;
    let timeout = crate::config::parse_duration(&args.timeout)?;
    set_unschedulable(ctx, &args.node, true, dry).await?;
    let pods = pods_on(ctx, &args).await?;
    let (doomed, errors, warnings) = filter(&pods, &args);
    if !errors.is_empty() {
        return Ok(not_drained(&args.node, &errors.join(", ")));
    }
    if !warnings.is_empty() {
        eprintln!("Warning: {}", warnings.join("; "));
    }
    let deadline = (!timeout.is_zero()).then(|| Instant::now() + timeout);
    let evictions = doomed
        .iter()
        .map(|pod| evict(ctx, pod, &args, dry, deadline, timeout));
    let results = futures::future::join_all(evictions).await;
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if !failures.is_empty() {
        let err = failures.join(", ");
        eprintln!(
            "There are pending pods in node {:?} when an error occurred: {err}",
            args.node
        );
        return Ok(not_drained(&args.node, &err));
    }
    println!("node/{} drained{}", args.node, dry.suffix());
    Ok(0)
}

/// kubectl's closing lines for a node it could not drain; the exit code.
fn not_drained(node: &str, err: &str) -> i32 {
    eprintln!("error: unable to drain node {node:?} due to error: {err}, continuing command...");
    eprintln!("There are pending nodes to be drained:\n {node}");
    eprintln!("error: {err}");
    1
}

async fn pods_on(ctx: &Context, args: &DrainArgs) -> Result<Vec<Value>, Error> {
    let mut path = format!(
        "/api/v1/pods?fieldSelector={}",
        crate::get::encode_query(&format!("spec.nodeName={}", args.node))
    );
    if let Some(selector) = &args.pod_selector {
        path.push_str(&format!(
            "&labelSelector={}",
            crate::get::encode_query(selector)
        ));
    }
    let list = get_value(ctx, &path).await?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

fn ns_name(pod: &Value) -> String {
    format!(
        "{}/{}",
        pod["metadata"]["namespace"].as_str().unwrap_or(""),
        pod["metadata"]["name"].as_str().unwrap_or("")
    )
}

/// kubectl's filters in its order: DaemonSet-managed, mirror, local storage, no controller.
/// The pods to evict, the errors (`MESSAGE: ns/a, ns/b`) and the warnings.
fn filter<'a>(pods: &'a [Value], args: &DrainArgs) -> (Vec<&'a Value>, Vec<String>, Vec<String>) {
    let mut doomed = Vec::new();
    let mut errors: Vec<(&str, Vec<String>)> = Vec::new();
    let mut warnings: Vec<(&str, Vec<String>)> = Vec::new();
    let note = |groups: &mut Vec<(&'static str, Vec<String>)>, text: &'static str, pod: &Value| {
        match groups.iter_mut().find(|(t, _)| *t == text) {
            Some((_, pods)) => pods.push(ns_name(pod)),
            None => groups.push((text, vec![ns_name(pod)])),
        }
    };
    for pod in pods {
        let phase = pod["status"]["phase"].as_str().unwrap_or("");
        let finished = phase == "Succeeded" || phase == "Failed";
        let controller = pod["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["controller"] == json!(true));
        if controller.is_some_and(|c| c["kind"] == "DaemonSet") && !finished {
            if args.ignore_daemonsets {
                note(&mut warnings, "ignoring DaemonSet-managed Pods", pod);
            } else {
                note(
                    &mut errors,
                    "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)",
                    pod,
                );
            }
            continue;
        }
        if pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string() {
            continue;
        }
        let local = pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v.get("emptyDir").is_some());
        if local && !finished {
            if !args.delete_emptydir_data {
                note(&mut errors, "cannot delete Pods with local storage (use --delete-emptydir-data to override)", pod);
                continue;
            }
            note(&mut warnings, "deleting Pods with local storage", pod);
        }
        if controller.is_none() && !finished {
            if !args.force {
                note(
                    &mut errors,
                    "cannot delete Pods that declare no controller (use --force to override)",
                    pod,
                );
                continue;
            }
            note(
                &mut warnings,
                "deleting Pods that declare no controller",
                pod,
            );
        }
        doomed.push(pod);
    }
    let show = |groups: Vec<(&str, Vec<String>)>| {
        groups
            .into_iter()
            .map(|(text, pods)| format!("{text}: {}", pods.join(", ")))
            .collect()
    };
    (doomed, show(errors), show(warnings))
}

/// Evicts one pod, again every 5 s while its budget says no, then waits for it to be gone.
async fn evict(
    ctx: &Context,
    pod: &Value,
    args: &DrainArgs,
    dry: DryRun,
    deadline: Option<Instant>,
    timeout: Duration,
) -> Result<(), String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let uid = pod["metadata"]["uid"].clone();
    let timed_out = || deadline.is_some_and(|d| Instant::now() >= d);
    let gave_up = || {
        format!(
            "error when evicting pods/{name:?} -n {ns:?}: global timeout reached: {}",
            go_duration(timeout)
        )
    };
    let mut options = json!({});
    if args.grace_period >= 0 {
        options["gracePeriodSeconds"] = json!(args.grace_period);
    }
    if dry == DryRun::Server {
        options["dryRun"] = json!(["All"]);
    }
    let body = json!({"apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": name, "namespace": ns}, "deleteOptions": options});
    loop {
        println!("evicting pod {ns}/{name}{}", dry.suffix());
        if dry == DryRun::Client {
            return Ok(());
        }
        let req = http::Request::post(format!("/api/v1/namespaces/{ns}/pods/{name}/eviction"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(serde_json::to_vec(&body).unwrap_or_default())
            .map_err(|e| e.to_string())?;
        match ctx.client.request::<Value>(req).await {
            Ok(_) => break,
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 429 => {
                eprintln!(
                    "error when evicting pods/{name:?} -n {ns:?} (will retry after 5s): {}",
                    s.message
                );
                if timed_out() {
                    return Err(gave_up());
                }
                tokio::time::sleep(RETRY_AFTER).await;
                if timed_out() {
                    return Err(gave_up());
                }
            }
            Err(kube::Error::Api(s)) => {
                return Err(format!(
                    "error when evicting pods/{name:?} -n {ns:?}: {}",
                    s.message
                ))
            }
            Err(e) => return Err(format!("error when evicting pods/{name:?} -n {ns:?}: {e}")),
        }
    }
    if dry == DryRun::Server {
        return Ok(());
    }
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
    loop {
        match get_value(ctx, &path).await {
            Ok(current) if current["metadata"]["uid"] == uid => {}
            Ok(_) => break,
            Err(e) if e.is_not_found() => break,
            Err(e) => return Err(e.to_string()),
        }
        if timed_out() {
            return Err(format!("error when waiting for pod {name:?} in namespace {ns:?} to terminate: global timeout reached: {}", go_duration(timeout)));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!("pod/{name} evicted");
    Ok(())
}
