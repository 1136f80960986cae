//! API semantics beyond the tutorial's commands: dry run, status and binding subresources,
//! finalizers, deletecollection, namespaces, and watch start points, timeouts and 410 Gone.

mod common;

use common::*;

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

const PODS: &str = "/api/v1/namespaces/default/pods";
const CT: &str = "Content-Type: application/json";

fn create_pod(c: &Cluster, name: &str, extra_meta: &str) {
    let f = c.file(
        &format!("{name}.json"),
        &format!(r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"{extra_meta}}},"spec":{{"containers":[{{"name":"c","image":"kuard:1"}}]}}}}"#),
    );
    let (code, body) = c.curl("POST", PODS, &[CT], Some(&f), false);
    assert_eq!(code, 201, "{body}");
}

#[test]
fn dry_run_stores_nothing() {
    let c = Cluster::start();
    c.file("pod.yaml", KUARD_POD);
    let out = c.kubectl(&["create", "-f", "pod.yaml", "--dry-run=server", "-o", "json"]);
    let v = json(out.ok());
    assert_eq!(v["spec"]["restartPolicy"], "Always", "defaults are applied");
    assert!(v["metadata"]["resourceVersion"].is_null());
    let gone = c.kubectl(&["get", "pod", "kubernetes-up-and-running"]);
    assert!(gone.err().contains("not found"));
}

#[test]
fn binding_sets_the_node_once_and_status_is_separate() {
    let c = Cluster::start();
    create_pod(&c, "b", "");
    let binding = c.file("binding.json", r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"b"},"target":{"kind":"Node","name":"node-1"}}"#);
    let (code, body) = c.curl(
        "POST",
        &format!("{PODS}/b/binding"),
        &[CT],
        Some(&binding),
        false,
    );
    assert_eq!(code, 201, "{body}");
    let (_, body) = c.curl("GET", &format!("{PODS}/b"), &[], None, false);
    let pod = json(&body);
    assert_eq!(pod["spec"]["nodeName"], "node-1");
    assert_eq!(pod["status"]["conditions"][0]["type"], "PodScheduled");
    let (code, body) = c.curl(
        "POST",
        &format!("{PODS}/b/binding"),
        &[CT],
        Some(&binding),
        false,
    );
    assert_eq!(code, 409, "{body}");
    assert!(json(&body)["message"]
        .as_str()
        .unwrap()
        .contains("is already assigned to node \"node-1\""));
    // A status write changes status only; a spec write cannot change status.
    let status = c.file(
        "status.json",
        r#"{"status":{"phase":"Running","podIP":"10.42.0.9"},"spec":{"nodeName":"elsewhere"}}"#,
    );
    let (code, body) = c.curl(
        "PATCH",
        &format!("{PODS}/b/status"),
        &["Content-Type: application/merge-patch+json"],
        Some(&status),
        false,
    );
    assert_eq!(code, 200, "{body}");
    let pod = json(&body);
    assert_eq!(
        (
            pod["status"]["phase"].as_str(),
            pod["spec"]["nodeName"].as_str()
        ),
        (Some("Running"), Some("node-1"))
    );
    let wide = c.kubectl(&["get", "pod", "b", "-o", "wide", "--no-headers"]);
    let cells: Vec<&str> = wide.ok().split_whitespace().collect();
    assert_eq!(
        (cells[2], cells[5], cells[6]),
        ("Running", "10.42.0.9", "node-1")
    );
    let (_, body) = c.curl(
        "PATCH",
        &format!("{PODS}/b"),
        &["Content-Type: application/merge-patch+json"],
        Some(&c.file("s2.json", r#"{"status":{"phase":"Failed"}}"#)),
        false,
    );
    assert_eq!(
        json(&body)["status"]["phase"],
        "Running",
        "status is ignored on the main resource"
    );
    // A bound pod is deleted gracefully: it stays, Terminating, until its node finishes it.
    let out = c.kubectl(&["delete", "pod", "b", "--wait=false"]);
    out.ok();
    let row = c.kubectl(&["get", "pod", "b", "--no-headers"]);
    assert!(row.ok().contains("Terminating"), "{}", row.stdout);
    let (_, body) = c.curl("GET", &format!("{PODS}/b"), &[], None, false);
    assert_eq!(json(&body)["metadata"]["deletionGracePeriodSeconds"], 30);
    let (code, _) = c.curl(
        "DELETE",
        &format!("{PODS}/b?gracePeriodSeconds=0"),
        &[],
        None,
        false,
    );
    assert_eq!(code, 200);
    let (code, _) = c.curl("GET", &format!("{PODS}/b"), &[], None, false);
    assert_eq!(code, 404);
}

#[test]
fn finalizers_hold_deletion_until_removed() {
    let c = Cluster::start();
    create_pod(&c, "f", r#","finalizers":["example.com/hold"]"#);
    let (code, body) = c.curl("DELETE", &format!("{PODS}/f"), &[], None, false);
    assert_eq!(code, 200, "{body}");
    assert!(json(&body)["metadata"]["deletionTimestamp"].is_string());
    let (code, _) = c.curl("GET", &format!("{PODS}/f"), &[], None, false);
    assert_eq!(code, 200, "a finalizer keeps the object");
    let patch = c.file("unfinalize.json", r#"{"metadata":{"finalizers":null}}"#);
    let (code, body) = c.curl(
        "PATCH",
        &format!("{PODS}/f"),
        &["Content-Type: application/merge-patch+json"],
        Some(&patch),
        false,
    );
    assert_eq!(code, 200, "{body}");
    let (code, _) = c.curl("GET", &format!("{PODS}/f"), &[], None, false);
    assert_eq!(
        code, 404,
        "removing the last finalizer completes the deletion"
    );
}

#[test]
fn deletecollection_and_namespaces() {
    let c = Cluster::start();
    c.kubectl(&["create", "namespace", "hands-on"]).ok();
    for name in ["a", "b", "c"] {
        let f = c.file(&format!("{name}.json"), &format!(r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","labels":{{"keep":"{}"}}}},"spec":{{"containers":[{{"name":"c","image":"kuard:1"}}]}}}}"#, name == "c"));
        let (code, body) = c.curl(
            "POST",
            "/api/v1/namespaces/hands-on/pods",
            &[CT],
            Some(&f),
            false,
        );
        assert_eq!(code, 201, "{body}");
    }
    let (code, body) = c.curl(
        "DELETE",
        "/api/v1/namespaces/hands-on/pods?labelSelector=keep%3Dfalse",
        &[],
        None,
        false,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["items"].as_array().unwrap().len(), 2);
    let left = c.kubectl(&["get", "pods", "-n", "hands-on", "-o", "name"]);
    assert_eq!(left.ok().trim(), "pod/c");
    // Deleting the namespace deletes what is in it, then the namespace.
    c.kubectl(&["delete", "namespace", "hands-on"]).ok();
    let gone = eventually(10, || {
        let out = c.kubectl(&["get", "namespace", "hands-on"]);
        (out.code != 0).then_some(out.stderr)
    });
    assert!(gone.expect("the namespace goes away").contains("not found"));
    let err = c
        .kubectl(&["delete", "namespace", "default"])
        .err()
        .to_string();
    assert!(
        err.contains("forbidden: this namespace may not be deleted"),
        "{err}"
    );
}

#[test]
fn watch_start_points_timeouts_and_gone() {
    // A small watch-cache history so that an old revision is really gone after some writes.
    let c = Cluster::start_with(&["--watch-cache-size", "30"]);
    create_pod(&c, "w1", "");
    let (_, body) = c.curl("GET", PODS, &[], None, false);
    let list_rv: i64 = json(&body)["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    create_pod(&c, "w2", "");
    // From "0": synthetic ADDED for what exists; the stream ends at timeoutSeconds.
    let started = std::time::Instant::now();
    let (code, body) = c.curl(
        "GET",
        &format!("{PODS}?watch=true&resourceVersion=0&timeoutSeconds=1"),
        &[],
        None,
        false,
    );
    assert_eq!(code, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    // (The scheduler may write status meanwhile: count the synthetic ADDED events.)
    let events: Vec<serde_json::Value> = body.lines().map(json).collect();
    let added: Vec<&serde_json::Value> = events.iter().filter(|e| e["type"] == "ADDED").collect();
    assert_eq!(added.len(), 2, "{body}");
    assert_eq!(
        events[0]["type"], "ADDED",
        "synthetic events come first: {body}"
    );
    // From the list's revision: only what came after.
    let (_, body) = c.curl(
        "GET",
        &format!("{PODS}?watch=1&resourceVersion={list_rv}&timeoutSeconds=1"),
        &[],
        None,
        false,
    );
    let events: Vec<serde_json::Value> = body.lines().map(json).collect();
    let added: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "ADDED")
        .filter_map(|e| e["object"]["metadata"]["name"].as_str())
        .collect();
    assert_eq!(added, ["w2"], "{body}");
    // Selectors apply to the initial events too.
    let (_, body) = c.curl(
        "GET",
        &format!(
            "{PODS}?watch=true&resourceVersion=0&timeoutSeconds=1&fieldSelector=metadata.name%3Dw1"
        ),
        &[],
        None,
        false,
    );
    let names: std::collections::BTreeSet<String> = body
        .lines()
        .map(json)
        .filter_map(|e| e["object"]["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["w1"], "{body}");
    // A revision older than the cache's history is 410 Gone, inside the stream.
    for i in 0..40 {
        let label = c.file(
            "label.json",
            &format!(r#"{{"metadata":{{"labels":{{"n":"{i}"}}}}}}"#),
        );
        let (code, _) = c.curl(
            "PATCH",
            &format!("{PODS}/w1"),
            &["Content-Type: application/merge-patch+json"],
            Some(&label),
            false,
        );
        assert_eq!(code, 200);
    }
    let (code, body) = c.curl(
        "GET",
        &format!("{PODS}?watch=true&resourceVersion=1&timeoutSeconds=1"),
        &[],
        None,
        false,
    );
    assert_eq!(code, 200);
    let ev = json(body.lines().next().expect("an ERROR event"));
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(ev["object"]["code"], 410);
    assert_eq!(ev["object"]["reason"], "Expired");
    assert!(ev["object"]["message"]
        .as_str()
        .unwrap()
        .starts_with("too old resource version: 1 ("));
}

#[test]
fn generator_commands_that_send_protobuf_work() {
    let c = Cluster::start();
    for minor in [32, 33] {
        let k = kubectl_version(minor);
        let ns = format!("gen-{minor}");
        assert_eq!(
            c.kubectl_with(&k, &["create", "namespace", &ns])
                .ok()
                .trim(),
            format!("namespace/{ns} created")
        );
        c.kubectl_with(
            &k,
            &[
                "create",
                "configmap",
                "settings",
                "-n",
                &ns,
                "--from-literal=mode=offline",
            ],
        )
        .ok();
        c.kubectl_with(&k, &["create", "serviceaccount", "builder", "-n", &ns])
            .ok();
        let cm = c.kubectl_with(
            &k,
            &[
                "get",
                "configmap",
                "settings",
                "-n",
                &ns,
                "-o",
                "jsonpath={.data.mode}",
            ],
        );
        assert_eq!(cm.ok(), "offline");
        let sa = c.kubectl_with(
            &k,
            &["get", "serviceaccount", "builder", "-n", &ns, "-o", "name"],
        );
        assert_eq!(sa.ok().trim(), "serviceaccount/builder");
        let phase = c.kubectl_with(
            &k,
            &["get", "namespace", &ns, "-o", "jsonpath={.status.phase}"],
        );
        assert_eq!(phase.ok(), "Active");
    }
}

#[test]
fn an_update_without_a_resource_version_or_with_zero_is_unconditional() {
    let c = Cluster::start();
    create_pod(&c, "plain", "");
    let (_, body) = c.curl("GET", &format!("{PODS}/plain"), &[], None, false);
    let mut pod = json(&body);
    let stale = pod["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    // Another writer gets in first.
    c.kubectl(&["label", "pod", "plain", "first=1"]).ok();
    for (rv, label) in [(Some("0"), "zero"), (None, "none")] {
        match rv {
            Some(rv) => pod["metadata"]["resourceVersion"] = rv.into(),
            None => {
                pod["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("resourceVersion");
            }
        }
        pod["metadata"]["labels"] = serde_json::json!({ "by": label });
        let f = c.file("put.json", &pod.to_string());
        let (code, body) = c.curl("PUT", &format!("{PODS}/plain"), &[CT], Some(&f), false);
        assert_eq!(code, 200, "resourceVersion {rv:?}: {body}");
        assert_eq!(json(&body)["metadata"]["labels"]["by"], label);
    }
    // A real, stale resourceVersion is still a precondition.
    pod["metadata"]["resourceVersion"] = stale.into();
    let f = c.file("put.json", &pod.to_string());
    let (code, body) = c.curl("PUT", &format!("{PODS}/plain"), &[CT], Some(&f), false);
    assert_eq!(code, 409, "{body}");
    assert!(json(&body)["message"]
        .as_str()
        .unwrap()
        .contains("the object has been modified"));
}

/// Sends a signal to a process by pid (the test's etcd).
fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

#[test]
fn readyz_and_livez_fail_while_the_datastore_is_away_and_name_the_check() {
    let etcd = store::conformance::EtcdServer::start()
        .expect("a real etcd is needed (the project's setup installs etcd-server)");
    let c = Cluster::start_with(&["--datastore", "etcd", "--etcd-endpoints", &etcd.endpoint]);
    let (code, body) = c.curl("GET", "/readyz", &[], None, true);
    assert_eq!((code, body.as_str()), (200, "ok"));
    // etcd stops answering (paused, so it can come back; dropping the handle kills it anyway).
    signal(etcd.pid(), "-STOP");
    struct Resume(u32);
    impl Drop for Resume {
        fn drop(&mut self) {
            signal(self.0, "-CONT");
        }
    }
    let resume = Resume(etcd.pid());
    for kind in ["readyz", "livez"] {
        let (code, body) = c.curl("GET", &format!("/{kind}"), &[], None, true);
        assert_eq!(code, 500, "{body}");
        assert!(body.contains("[+]ping ok\n"), "{body}");
        assert!(body.contains("[-]etcd failed: reason withheld\n"), "{body}");
        assert!(body.ends_with(&format!("{kind} check failed\n")), "{body}");
    }
    let (code, body) = c.curl("GET", "/readyz/ping", &[], None, true);
    assert_eq!((code, body.as_str()), (200, "ok"));
    let (code, _) = c.curl("GET", "/readyz/etcd", &[], None, true);
    assert_eq!(code, 500);
    drop(resume);
    let back = eventually(20, || {
        let (code, body) = c.curl("GET", "/readyz?verbose", &[], None, true);
        (code == 200).then_some(body)
    })
    .expect("/readyz did not recover when etcd came back");
    assert!(back.contains("[+]etcd ok\n[+]informer-sync ok\n"), "{back}");
}

#[test]
fn the_server_waits_for_an_etcd_that_starts_after_it() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    // etcd comes up two seconds after the server started.
    let later = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(2));
        store::conformance::EtcdServer::start_at(port)
            .expect("a real etcd is needed (the project's setup installs etcd-server)")
    });
    let c = Cluster::start_with(&["--datastore", "etcd", "--etcd-endpoints", &endpoint]);
    let _etcd = later.join().expect("etcd thread");
    let (code, body) = c.curl("GET", "/readyz", &[], None, true);
    assert_eq!((code, body.as_str()), (200, "ok"));
    c.kubectl(&["create", "namespace", "after-etcd"]).ok();
}

#[test]
fn every_page_of_a_list_is_the_first_pages_snapshot() {
    let c = Cluster::start();
    for name in ["a", "b", "c", "d"] {
        c.kubectl(&["create", "configmap", name, "--from-literal=k=1"])
            .ok();
    }
    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, body) = c.curl("GET", &format!("{cms}?limit=2"), &[], None, false);
    assert_eq!(code, 200, "{body}");
    let first = json(&body);
    let names = |list: &serde_json::Value| -> Vec<String> {
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
            .filter(|n| n.len() == 1)
            .collect()
    };
    assert_eq!(names(&first), ["a", "b"]);
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("a continue token");
    // Between the pages: one deleted, one changed, one added.
    c.kubectl(&["delete", "configmap", "c"]).ok();
    c.kubectl(&["label", "configmap", "d", "changed=yes"]).ok();
    c.kubectl(&["create", "configmap", "e", "--from-literal=k=1"])
        .ok();
    let (code, body) = c.curl(
        "GET",
        &format!("{cms}?limit=10&continue={token}"),
        &[],
        None,
        false,
    );
    assert_eq!(code, 200, "{body}");
    let rest = json(&body);
    assert_eq!(names(&rest), ["c", "d"], "{body}");
    let d = &rest["items"].as_array().unwrap()[1];
    assert!(d["metadata"]["labels"].is_null(), "d as it was: {d}");
    assert_eq!(
        rest["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"],
        "the same revision"
    );
    // A fresh list sees the changes.
    let now = json(&c.curl("GET", cms, &[], None, false).1);
    assert_eq!(names(&now), ["a", "b", "d", "e"]);
}

#[test]
fn events_expire_after_the_event_ttl() {
    let c = Cluster::start_with(&["--event-ttl", "2s"]);
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let event = |name: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Event","metadata":{{"name":"{name}"}},"involvedObject":{{"kind":"Pod","name":"p","namespace":"default"}},"reason":"Tested","message":"m","type":"Normal","firstTimestamp":"{now}","lastTimestamp":"{now}","count":1}}"#
        )
    };
    let f = c.file("old.json", &event("old"));
    c.kubectl(&["create", "-f", f.to_str().unwrap()]).ok();
    c.kubectl(&["get", "event", "old"]).ok();
    let gone = eventually(15, || {
        (c.kubectl(&["get", "event", "old"]).code != 0).then_some(())
    });
    assert!(gone.is_some(), "the event outlived its TTL");
}

#[test]
fn the_audit_log_says_who_did_what() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let c = Cluster::start_with(&["--audit-log-path", log.to_str().unwrap()]);
    c.kubectl(&["create", "configmap", "audited", "--from-literal=k=v"])
        .ok();
    c.kubectl(&["delete", "configmap", "audited"]).ok();
    let events: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(json)
        .collect();
    let find = |verb: &str| {
        events
            .iter()
            .find(|e| e["verb"] == verb && e["objectRef"]["name"] == "audited")
            .or_else(|| {
                events.iter().find(|e| {
                    e["verb"] == verb
                        && e["objectRef"]["resource"] == "configmaps"
                        && e["userAgent"].as_str().unwrap_or("").starts_with("kubectl")
                })
            })
            .unwrap_or_else(|| panic!("no {verb} of the config map in {events:#?}"))
    };
    let created = find("create");
    assert_eq!(created["kind"], "Event");
    assert_eq!(created["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(created["stage"], "ResponseComplete");
    assert_eq!(created["objectRef"]["namespace"], "default");
    assert_eq!(created["objectRef"]["apiVersion"], "v1");
    assert_eq!(created["responseStatus"]["code"], 201);
    assert_eq!(created["sourceIPs"][0], "127.0.0.1");
    let groups = created["user"]["groups"].as_array().unwrap();
    assert!(
        groups.contains(&serde_json::json!("system:masters")),
        "{created}"
    );
    let deleted = find("delete");
    assert_eq!(deleted["responseStatus"]["code"], 200);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn priority_classes_give_pods_their_priority() {
    let c = Cluster::start();
    let table = c.kubectl(&["get", "priorityclasses"]);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    );
    let rows: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{}", table.stdout);
    assert_eq!(
        rows[0][..3],
        ["system-cluster-critical", "2000000000", "false"]
    );
    assert_eq!(
        rows[1][..3],
        ["system-node-critical", "2000001000", "false"]
    );
    assert_eq!(rows[1][4], "PreemptLowerPriority");
    // A typed create (protobuf from kubectl 1.32 on).
    let out = c.kubectl(&["create", "priorityclass", "high", "--value=1000"]);
    assert_eq!(out.ok(), "priorityclass.scheduling.k8s.io/high created\n");
    c.file(
        "urgent.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: urgent\nspec:\n  priorityClassName: high\n  containers:\n  - name: c\n    image: kuard:1\n",
    );
    c.kubectl(&["create", "-f", "urgent.yaml"]).ok();
    let priority = c.kubectl(&[
        "get",
        "pod",
        "urgent",
        "-o",
        "jsonpath={.spec.priority} {.spec.preemptionPolicy}",
    ]);
    assert_eq!(priority.ok(), "1000 PreemptLowerPriority");
    c.file(
        "lost.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: lost\nspec:\n  priorityClassName: nope\n  containers:\n  - name: c\n    image: kuard:1\n",
    );
    let refused = c.kubectl(&["create", "-f", "lost.yaml"]);
    assert!(
        refused
            .err()
            .ends_with("pods \"lost\" is forbidden: no PriorityClass with name nope was found\n"),
        "{}",
        refused.stderr
    );
    // One global default only, and the system classes stay.
    c.kubectl(&[
        "create",
        "priorityclass",
        "first",
        "--value=1",
        "--global-default",
    ])
    .ok();
    let second = c.kubectl(&[
        "create",
        "priorityclass",
        "second",
        "--value=2",
        "--global-default",
    ]);
    assert!(
        second.err().contains(
            "PriorityClass first is already marked as default. Only one default can exist"
        ),
        "{}",
        second.stderr
    );
    let defaulted = c.file(
        "plain.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: plain\nspec:\n  containers:\n  - name: c\n    image: kuard:1\n",
    );
    c.kubectl(&["create", "-f", defaulted.to_str().unwrap()])
        .ok();
    let got = c.kubectl(&[
        "get",
        "pod",
        "plain",
        "-o",
        "jsonpath={.spec.priorityClassName} {.spec.priority}",
    ]);
    assert_eq!(got.ok(), "first 1");
    let kept = c.kubectl(&["delete", "priorityclass", "system-node-critical"]);
    assert!(
        kept.err().contains(
            "priorityclasses.scheduling.k8s.io \"system-node-critical\" is forbidden: this is a system priority class and cannot be deleted"
        ),
        "{}",
        kept.stderr
    );
}

#[test]
fn reviews_answer_who_a_token_names_and_what_a_user_may_do() {
    let c = Cluster::start();
    let token = c.kubectl(&["create", "token", "default"]);
    let token = token.ok().trim().to_string();
    let review = |t: &str| {
        c.file(
            "review.json",
            &format!(
                r#"{{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{{"token":"{t}"}}}}"#
            ),
        );
        let out = c.kubectl(&[
            "create",
            "-f",
            "review.json",
            "-o",
            "jsonpath={.status.authenticated} {.status.user.username} {.status.user.groups}",
        ]);
        out.ok().to_string()
    };
    assert_eq!(
        review(&token),
        r#"true system:serviceaccount:default:default ["system:serviceaccounts","system:serviceaccounts:default","system:authenticated"]"#
    );
    assert_eq!(review("not-a-token").trim(), "false");
    // kubectl auth: the typed reviews (protobuf from kubectl 1.32 on).
    let whoami = c.kubectl(&["auth", "whoami"]);
    assert!(whoami.ok().starts_with("ATTRIBUTE"), "{}", whoami.stdout);
    assert!(
        whoami.stdout.contains("system:authenticated"),
        "{}",
        whoami.stdout
    );
    assert_eq!(
        c.kubectl(&["auth", "can-i", "delete", "namespaces"]).ok(),
        "yes\n"
    );
    let rules = c.kubectl(&["auth", "can-i", "--list"]);
    assert!(rules.ok().contains("*.*"), "{}", rules.stdout);
    let listed = c.kubectl(&["get", "tokenreviews"]);
    assert!(
        listed
            .err()
            .contains("the server does not allow this method on the requested resource"),
        "{}",
        listed.stderr
    );
}

#[test]
fn pod_templates_and_replication_controllers_are_stored_as_kubernetes_stores_them() {
    let c = Cluster::start();
    c.file(
        "template.yaml",
        "apiVersion: v1\nkind: PodTemplate\nmetadata:\n  name: web\ntemplate:\n  metadata:\n    labels:\n      app: web\n  spec:\n    containers:\n    - name: kuard\n      image: gcr.io/kuar-demo/kuard-amd64:1\n",
    );
    c.kubectl(&["create", "-f", "template.yaml"]).ok();
    let table = c.kubectl(&["get", "podtemplates"]);
    let rows: Vec<Vec<&str>> = table
        .ok()
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "CONTAINERS", "IMAGES", "POD", "LABELS"]);
    assert_eq!(
        rows[1],
        ["web", "kuard", "gcr.io/kuar-demo/kuard-amd64:1", "app=web"]
    );
    let defaulted = c.kubectl(&[
        "get",
        "podtemplate",
        "web",
        "-o",
        "jsonpath={.template.spec.restartPolicy}",
    ]);
    assert_eq!(defaulted.ok(), "Always");

    c.file(
        "rc.yaml",
        "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: web\nspec:\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: kuard\n        image: gcr.io/kuar-demo/kuard-amd64:1\n",
    );
    let created = c.kubectl(&["create", "-f", "rc.yaml"]);
    assert_eq!(created.ok(), "replicationcontroller/web created\n");
    assert!(
        created
            .stderr
            .contains("no pods will be made for this ReplicationController"),
        "{}",
        created.stderr
    );
    let row = c.kubectl(&["get", "rc", "web", "--no-headers", "-o", "wide"]);
    let cells: Vec<&str> = row.ok().split_whitespace().collect();
    assert_eq!(cells[..4], ["web", "1", "0", "0"]);
    assert_eq!(
        cells[5..],
        ["kuard", "gcr.io/kuar-demo/kuard-amd64:1", "app=web"]
    );
    c.file(
        "bad-rc.yaml",
        "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: bad\nspec:\n  selector:\n    app: db\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: kuard\n        image: gcr.io/kuar-demo/kuard-amd64:1\n",
    );
    let refused = c.kubectl(&["create", "-f", "bad-rc.yaml"]);
    assert!(
        refused
            .err()
            .contains("`selector` does not match template `labels`"),
        "{}",
        refused.stderr
    );
    let explained = c.kubectl(&["explain", "rc.spec.replicas"]);
    assert!(
        explained.ok().contains("FIELD: replicas"),
        "{}",
        explained.stdout
    );
}

#[test]
fn metadata_only_lists_gets_and_watches() {
    let c = Cluster::start();
    create_pod(&c, "meta", r#","labels":{"app":"web"}"#);
    let accept =
        "Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
    let (code, body) = c.curl("GET", PODS, &[accept], None, false);
    assert_eq!(code, 200, "{body}");
    let list = json(&body);
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    assert!(list["metadata"]["resourceVersion"].is_string());
    let item = &list["items"][0];
    assert_eq!(item["kind"], "PartialObjectMetadata");
    assert_eq!(item["metadata"]["labels"]["app"], "web");
    assert!(item.get("spec").is_none(), "{item}");
    let one = "Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
    let (code, body) = c.curl("GET", &format!("{PODS}/meta"), &[one], None, false);
    assert_eq!(code, 200, "{body}");
    let got = json(&body);
    assert_eq!(
        (got["kind"].as_str(), got["metadata"]["name"].as_str()),
        (Some("PartialObjectMetadata"), Some("meta"))
    );
    assert!(got.get("status").is_none());
    let (code, body) = c.curl(
        "GET",
        &format!("{PODS}?watch=1&timeoutSeconds=1"),
        &[accept],
        None,
        false,
    );
    assert_eq!(code, 200, "{body}");
    let first = json(body.lines().next().unwrap_or_default());
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(first["object"]["metadata"]["name"], "meta");
}

#[test]
fn services_get_cluster_ips_and_the_kubernetes_service_names_the_server() {
    let c = Cluster::start();
    let rows = |args: &[&str]| -> Vec<Vec<String>> {
        c.kubectl(args)
            .ok()
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    };
    let services = rows(&["get", "svc"]);
    assert_eq!(
        services[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    assert_eq!(
        services[1][..5],
        ["kubernetes", "ClusterIP", "10.43.0.1", "<none>", "443/TCP"]
    );
    let port = c.url().rsplit(':').next().unwrap_or_default().to_string();
    let endpoints = rows(&["get", "endpoints", "kubernetes", "--no-headers"]);
    assert_eq!(endpoints[0][1], format!("127.0.0.1:{port}"));
    let slices = rows(&["get", "endpointslices", "--no-headers"]);
    assert_eq!(
        slices[0][..4],
        ["kubernetes", "IPv4", port.as_str(), "127.0.0.1"]
    );
    // Typed creates (protobuf from kubectl 1.32 on) get the next free address and node ports.
    c.kubectl(&["create", "service", "clusterip", "web", "--tcp=80:8080"])
        .ok();
    c.kubectl(&["create", "service", "nodeport", "np", "--tcp=80"])
        .ok();
    let web = rows(&["get", "svc", "web", "--no-headers"]);
    assert_eq!(
        web[0][..5],
        ["web", "ClusterIP", "10.43.0.2", "<none>", "80/TCP"]
    );
    let np = rows(&["get", "svc", "np", "--no-headers"]);
    assert_eq!(np[0][4], "80:30000/TCP");
    c.file(
        "taken.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: taken\nspec:\n  clusterIP: 10.43.0.2\n  ports:\n  - port: 80\n",
    );
    let refused = c.kubectl(&["create", "-f", "taken.yaml"]);
    assert!(
        refused
            .err()
            .contains("failed to allocate IP 10.43.0.2: provided IP is already allocated"),
        "{}",
        refused.stderr
    );
    // An apply that leaves the address out keeps it; one that changes it is refused.
    c.file(
        "applied.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: applied\nspec:\n  selector:\n    app: web\n  ports:\n  - port: 8080\n",
    );
    c.kubectl(&["apply", "-f", "applied.yaml"]).ok();
    let ip = c.kubectl(&["get", "svc", "applied", "-o", "jsonpath={.spec.clusterIP}"]);
    let ip = ip.ok().to_string();
    c.kubectl(&["label", "svc", "applied", "tier=front"]).ok();
    c.kubectl(&["apply", "-f", "applied.yaml"]).ok();
    let again = c.kubectl(&["get", "svc", "applied", "-o", "jsonpath={.spec.clusterIP}"]);
    assert_eq!(again.ok(), ip);
    let moved = c.kubectl(&[
        "patch",
        "svc",
        "applied",
        "-p",
        r#"{"spec":{"clusterIP":"10.43.0.200","clusterIPs":["10.43.0.200"]}}"#,
    ]);
    assert!(
        moved.err().contains("field is immutable"),
        "{}",
        moved.stderr
    );
}
