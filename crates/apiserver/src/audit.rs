//! The audit log (`--audit-log-path`): one JSON line per request, an `audit.k8s.io/v1` `Event` at
//! the `Metadata` level as kube-apiserver writes it — who (user, groups, source address, user
//! agent) did what (verb, object) and how it ended (the response code) — written when the
//! response is complete. `-` writes to standard output.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::auth::User;
use crate::rest::Target;

/// The address a request came from (put in each request by the TLS server).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

pub struct AuditLog {
    out: Mutex<Box<dyn Write + Send>>,
}

impl AuditLog {
    /// Appends to the file at `path` (made 0600), or writes to standard output for `-`.
    pub fn open(path: &Path) -> std::io::Result<AuditLog> {
        use std::os::unix::fs::OpenOptionsExt;
        let out: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(path)?,
            )
        };
        Ok(AuditLog {
            out: Mutex::new(out),
        })
    }

    /// Writes one event as a line; a failed write is logged, never a failed request.
    pub fn record(&self, event: &Value) {
        let mut line = event.to_string();
        line.push('\n');
        let written = self
            .out
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))
            .and_then(|mut out| out.write_all(line.as_bytes()));
        if let Err(err) = written {
            tracing::warn!(%err, "writing the audit log failed");
        }
    }
}

/// What a request was about, as the router saw it.
pub struct Request<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub user: Option<&'a User>,
    pub peer: Option<SocketAddr>,
    pub user_agent: Option<&'a str>,
    /// The metrics verb (`LIST`, `WATCH`, `POST`, …) or the HTTP method.
    pub verb: &'a str,
    pub target: Option<&'a Target>,
    pub code: u16,
    pub received: chrono::DateTime<chrono::Utc>,
}

/// The `audit.k8s.io/v1` `Event` of a completed request.
pub fn event(r: &Request) -> Value {
    let (username, groups) = crate::auth::identity(r.user);
    let mut event = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": uuid::Uuid::new_v4().to_string(),
        "stage": "ResponseComplete",
        "requestURI": r.uri,
        "verb": kube_verb(r.verb, r.method, r.target),
        "user": {"username": username, "groups": groups},
        "sourceIPs": r.peer.map(|p| vec![p.ip().to_string()]).unwrap_or_default(),
        "responseStatus": {"metadata": {}, "code": r.code},
        "requestReceivedTimestamp": micro(r.received),
        "stageTimestamp": micro(chrono::Utc::now()),
    });
    if let Some(agent) = r.user_agent {
        event["userAgent"] = json!(agent);
    }
    if let Some(t) = r.target {
        let mut object = json!({
            "resource": t.resource.plural,
            "apiGroup": t.resource.group,
            "apiVersion": t.resource.version,
        });
        for (field, value) in [
            ("namespace", &t.namespace),
            ("name", &t.name),
            ("subresource", &t.subresource),
        ] {
            if let Some(v) = value {
                object[field] = json!(v);
            }
        }
        event["objectRef"] = object;
    }
    event
}

fn micro(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Kubernetes' verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
/// `deletecollection`; for a path that is no resource, the HTTP method in lower case.
fn kube_verb(verb: &str, method: &str, target: Option<&Target>) -> String {
    let Some(target) = target else {
        return method.to_lowercase();
    };
    match verb {
        "POST" => "create".into(),
        "PUT" => "update".into(),
        "DELETE" if target.name.is_none() => "deletecollection".into(),
        other => other.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_read_as_kubernetes_names_them() {
        let pods = |name: Option<&str>| Target {
            resource: api::resource::RESOURCES
                .iter()
                .find(|r| r.plural == "pods")
                .expect("pods"),
            namespace: Some("default".into()),
            name: name.map(str::to_string),
            subresource: None,
        };
        let (one, all) = (pods(Some("p")), pods(None));
        assert_eq!(kube_verb("LIST", "GET", Some(&all)), "list");
        assert_eq!(kube_verb("POST", "POST", Some(&all)), "create");
        assert_eq!(kube_verb("PUT", "PUT", Some(&one)), "update");
        assert_eq!(kube_verb("DELETE", "DELETE", Some(&one)), "delete");
        assert_eq!(
            kube_verb("DELETE", "DELETE", Some(&all)),
            "deletecollection"
        );
        assert_eq!(kube_verb("WATCH", "GET", Some(&all)), "watch");
        assert_eq!(kube_verb("GET", "GET", None), "get");
    }
}
