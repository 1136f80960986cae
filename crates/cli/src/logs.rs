//! `kubectl logs`: the container's log as the node keeps it, streamed as it arrives with `-f`.

use futures::AsyncReadExt;

use crate::args::LogsArgs;
use crate::config::Context;
use crate::get::{self, get_value};
use crate::Error;

/// The container a command means when none is named: the one the
/// `kubectl.kubernetes.io/default-container` annotation names, else the first (saying so, as
/// kubectl does, when the pod has several and `quiet` is false).
pub fn default_container(pod: &serde_json::Value, quiet: bool) -> Option<String> {
    let named = pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"].as_str();
    if let Some(name) = named {
        return Some(name.to_string());
    }
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let first = names.first()?.to_string();
    if names.len() > 1 && !quiet {
        eprintln!(
            "Defaulted container \"{first}\" out of: {}",
            names.join(", ")
        );
    }
    Some(first)
}

/// `POD` or `pod/POD`.
pub fn pod_name(arg: &str) -> Result<&str, Error> {
    match arg.split_once('/') {
        None => Ok(arg),
        Some(("pod" | "pods" | "po", name)) => Ok(name),
        Some((kind, _)) => Err(Error::other(format!(
            "cannot attach to {kind}: only pods are supported"
        ))),
    }
}

pub async fn run(ctx: &Context, args: LogsArgs) -> Result<(), Error> {
    let (pod_arg, container_arg) = match args.args.as_slice() {
        [pod] => (pod.as_str(), None),
        [pod, container] => (pod.as_str(), Some(container.clone())),
        [] => {
            return Err(Error::other(
                "expected POD_NAME or TYPE/NAME as an argument",
            ))
        }
        _ => {
            return Err(Error::other(
                "expected at most two arguments: POD and CONTAINER",
            ))
        }
    };
    let name = pod_name(pod_arg)?;
    let pod_path = format!("/api/v1/namespaces/{}/pods/{name}", ctx.namespace);
    let pod = get_value(ctx, &pod_path).await.map_err(|err| match err {
        Error::Server { status, .. } if status.code == 404 => Error::other(format!(
            "error from server (NotFound): pods \"{name}\" not found in namespace \"{}\"",
            ctx.namespace
        )),
        other => other,
    })?;
    let container = match args.container.clone().or(container_arg) {
        Some(c) => Some(c),
        None => default_container(&pod, false),
    };
    let mut query = Vec::new();
    if let Some(c) = &container {
        query.push(format!("container={}", get::encode_query(c)));
    }
    if args.follow {
        query.push("follow=true".into());
    }
    if args.previous {
        query.push("previous=true".into());
    }
    if let Some(since) = &args.since {
        let secs = crate::config::parse_duration(since)?.as_secs().max(1);
        query.push(format!("sinceSeconds={secs}"));
    }
    if let Some(t) = &args.since_time {
        query.push(format!("sinceTime={}", get::encode_query(t)));
    }
    if let Some(n) = args.tail.filter(|n| *n >= 0) {
        query.push(format!("tailLines={n}"));
    }
    if args.timestamps {
        query.push("timestamps=true".into());
    }
    if let Some(n) = args.limit_bytes {
        query.push(format!("limitBytes={n}"));
    }
    let path = format!("{pod_path}/log?{}", query.join("&"));
    let mut stream = ctx
        .client
        .request_stream(get::request(&path, "*/*")?)
        .await?;
    let mut buf = vec![0u8; 64 * 1024];
    use std::io::Write;
    let mut out = std::io::stdout();
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        out.flush()?;
    }
    Ok(())
}
