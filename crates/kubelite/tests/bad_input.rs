//! Bad input gets the Status Kubernetes gives, and the server keeps serving.

mod common;

use common::*;

fn status(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not a Status ({e}): {body}"))
}

const PODS: &str = "/api/v1/namespaces/default/pods";
const JSON: &str = "Content-Type: application/json";

#[test]
fn malformed_and_wrong_bodies_are_rejected_with_statuses() {
    let c = Cluster::start();
    let post = |name: &str, body: &str, query: &str| {
        let f = c.file(name, body);
        c.curl("POST", &format!("{PODS}{query}"), &[JSON], Some(&f), false)
    };

    let (code, body) = post(
        "truncated.json",
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"#,
        "",
    );
    let s = status(&body);
    assert_eq!(
        (code, s["reason"].as_str()),
        (400, Some("BadRequest")),
        "{body}"
    );
    assert!(s["message"].as_str().unwrap().starts_with("the object provided is unrecognized (must be of type Pod): couldn't get version/kind; json parse error: unexpected end of JSON input"), "{body}");

    let (code, body) = post(
        "unknown.json",
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"u"},"spec":{"foo":1,"containers":[{"name":"c","image":"i"}]}}"#,
        "?fieldValidation=Strict",
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(status(&body)["message"], "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.foo\"");

    let (code, body) = post(
        "dup.json",
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"d","name":"e"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#,
        "?fieldValidation=Strict",
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(status(&body)["message"], "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: duplicate field \"metadata.name\"");

    // Warn (the default without the parameter) accepts and drops the field.
    let (code, body) = post(
        "warned.json",
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"w"},"spec":{"foo":1,"containers":[{"name":"c","image":"i"}]}}"#,
        "",
    );
    assert_eq!(code, 201, "{body}");
    assert!(status(&body)["spec"].get("foo").is_none());

    let (code, body) = post(
        "kind.json",
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"k"}}"#,
        "",
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = post(
        "version.json",
        r#"{"apiVersion":"apps/v1","kind":"Pod","metadata":{"name":"k"}}"#,
        "",
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        status(&body)["message"],
        "the API version in the data (apps/v1) does not match the expected API version (v1)"
    );

    let (code, body) = post(
        "quantity.json",
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"q"},"spec":{"containers":[{"name":"c","image":"i","resources":{"limits":{"cpu":"lots"}}}]}}"#,
        "",
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        status(&body)["message"]
            .as_str()
            .unwrap()
            .contains("quantities must match the regular expression"),
        "{body}"
    );

    let big = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"big","annotations":{{"a":"{}"}}}}}}"#,
        "x".repeat(4 << 20)
    );
    let (code, body) = post("big.json", &big, "");
    assert_eq!(code, 413, "{body}");
    assert_eq!(status(&body)["reason"], "RequestEntityTooLarge");

    let yaml = c.file(
        "bad.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: [unclosed\n",
    );
    let (code, body) = c.curl(
        "POST",
        PODS,
        &["Content-Type: application/yaml"],
        Some(&yaml),
        false,
    );
    assert_eq!(code, 400, "{body}");

    let proto = c.file("proto.bin", "k8s\0garbage");
    let (code, _) = c.curl(
        "POST",
        PODS,
        &["Content-Type: application/x-unknown"],
        Some(&proto),
        false,
    );
    assert_eq!(code, 415);

    // Still serving.
    let ns = c.kubectl(&["get", "namespaces", "-o", "name"]);
    assert!(ns.ok().contains("namespace/default"));
}

#[test]
fn invalid_objects_get_field_errors() {
    let c = Cluster::start();
    c.file(
        "invalid.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Invalid_Name\nspec:\n  containers: []\n",
    );
    let out = c.kubectl(&["create", "-f", "invalid.yaml"]);
    let err = out.err();
    assert!(err.starts_with("The Pod \"Invalid_Name\" is invalid: \n* metadata.name: Invalid value: \"Invalid_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')\n* spec.containers: Required value"), "{err}");

    c.file(
        "dups.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: dups\nspec:\n  containers:\n  - name: one\n    image: kuard:1\n  - name: one\n    image: kuard:1\n    resources:\n      requests: {cpu: \"2\"}\n      limits: {cpu: \"1\"}\n",
    );
    let err = c.kubectl(&["create", "-f", "dups.yaml"]).err().to_string();
    assert!(
        err.contains("* spec.containers[1].name: Duplicate value: \"one\""),
        "{err}"
    );
    assert!(err.contains("* spec.containers[1].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"), "{err}");

    c.file("unknown.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: u\nspec:\n  foo: 1\n  containers:\n  - name: c\n    image: kuard:1\n");
    let err = c
        .kubectl(&["create", "-f", "unknown.yaml"])
        .err()
        .to_string();
    assert!(
        err.contains("strict decoding error: unknown field \"spec.foo\""),
        "{err}"
    );

    c.file("ns.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: nowhere\nspec:\n  containers:\n  - name: c\n    image: kuard:1\n");
    let err = c.kubectl(&["create", "-f", "ns.yaml"]).err().to_string();
    assert_eq!(err.trim(), "Error from server (NotFound): error when creating \"ns.yaml\": namespaces \"nowhere\" not found");

    // A patch that breaks validation.
    c.file("pod.yaml", KUARD_POD);
    c.kubectl(&["create", "-f", "pod.yaml"]).ok();
    let err = c
        .kubectl(&[
            "patch",
            "pod",
            "kubernetes-up-and-running",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/containers/0/image","value":""}]"#,
        ])
        .err()
        .to_string();
    assert!(
        err.contains("spec.containers[0].image: Required value"),
        "{err}"
    );
    let image = c.kubectl(&[
        "get",
        "pod",
        "kubernetes-up-and-running",
        "-o",
        "jsonpath={.spec.containers[0].image}",
    ]);
    assert_eq!(
        image.ok(),
        "gcr.io/kuar-demo/kuard-amd64:1",
        "a rejected patch changes nothing"
    );
}

#[test]
fn stale_updates_conflict() {
    let c = Cluster::start();
    c.file("pod.yaml", KUARD_POD);
    c.kubectl(&["create", "-f", "pod.yaml"]).ok();
    let json = c
        .kubectl(&["get", "pod", "kubernetes-up-and-running", "-o", "json"])
        .ok()
        .to_string();
    c.kubectl(&["label", "pod", "kubernetes-up-and-running", "a=b"])
        .ok();
    let stale = c.file("stale.json", &json);
    let replace = c.kubectl(&["replace", "-f", stale.to_str().unwrap()]);
    assert_eq!(
        replace.err().trim(),
        format!("Error from server (Conflict): error when replacing \"{}\": Operation cannot be fulfilled on pods \"kubernetes-up-and-running\": the object has been modified; please apply your changes to the latest version and try again", stale.display())
    );
}

#[test]
fn requests_without_credentials_are_unauthorized() {
    let c = Cluster::start();
    let (code, body) = c.curl("GET", PODS, &[], None, true);
    assert_eq!(code, 401);
    assert_eq!(status(&body)["message"], "Unauthorized");
    let (code, _) = c.curl("GET", PODS, &["Authorization: Bearer wrong"], None, true);
    assert_eq!(code, 401);
    let (code, body) = c.curl("GET", "/readyz", &[], None, true);
    assert_eq!((code, body.as_str()), (200, "ok"));
    let (code, body) = c.curl("GET", "/livez?verbose", &[], None, true);
    assert_eq!(code, 200);
    assert!(body.ends_with("livez check passed\n"), "{body}");
    // The node join token is a valid bearer token.
    let token = std::fs::read_to_string(c.data_dir().join("server/tls/node-token")).unwrap();
    let (code, _) = c.curl(
        "GET",
        PODS,
        &[&format!("Authorization: Bearer {}", token.trim())],
        None,
        true,
    );
    assert_eq!(code, 200);
    let (code, body) = c.curl("GET", "/metrics", &[], None, false);
    assert_eq!(code, 200);
    assert!(body.contains("apiserver_request_total{"), "{body}");
}

#[test]
fn patches_and_objects_are_bounded_in_size() {
    let c = Cluster::start();
    c.file(
        "args.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: args\nspec:\n  containers:\n  - name: c\n    image: demo\n    args: [x]\n",
    );
    c.kubectl(&["create", "-f", "args.yaml"]).ok();
    let patch = "Content-Type: application/json-patch+json";
    let pod = format!("{PODS}/args");
    // Forty copies that each double the list would need a terabyte.
    let doubling: Vec<serde_json::Value> = (0..40)
        .map(|_| serde_json::json!({"op": "copy", "from": "/spec/containers/0/args", "path": "/spec/containers/0/args/-"}))
        .collect();
    let f = c.file("doubling.json", &serde_json::to_string(&doubling).unwrap());
    let (code, body) = c.curl("PATCH", &pod, &[patch], Some(&f), false);
    assert_eq!(code, 422, "{body}");
    assert!(status(&body)["message"]
        .as_str()
        .unwrap_or("")
        .contains("the accumulated size increase of copy is"));
    let many: Vec<serde_json::Value> = (0..10_001)
        .map(|_| serde_json::json!({"op": "test", "path": "/metadata/name", "value": "args"}))
        .collect();
    let f = c.file("many.json", &serde_json::to_string(&many).unwrap());
    let (code, body) = c.curl("PATCH", &pod, &[patch], Some(&f), false);
    assert_eq!(code, 413, "{body}");
    assert_eq!(
        status(&body)["message"],
        "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
    // An object larger than etcd takes is refused on SQLite too.
    let big = "x".repeat(1_600_000);
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "binaryData": {}, "data": {"k": big}});
    let f = c.file("big.json", &cm.to_string());
    let (code, body) = c.curl(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &[JSON],
        Some(&f),
        false,
    );
    assert_eq!(
        (code, status(&body)["message"].as_str()),
        (500, Some("etcdserver: request is too large"))
    );
    assert_eq!(c.curl("GET", "/readyz", &[], None, true).0, 200);
}

#[test]
fn a_connection_that_never_finishes_its_handshake_is_closed() {
    use std::io::Read;
    let c = Cluster::start();
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", c.port)).unwrap();
    silent
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let read = silent.read(&mut buf);
    let waited = started.elapsed();
    assert!(
        matches!(read, Ok(0) | Err(_)) && waited < std::time::Duration::from_secs(20),
        "still open after {waited:?}: {read:?}"
    );
    assert!(
        waited >= std::time::Duration::from_secs(9),
        "closed too soon: {waited:?}"
    );
    assert_eq!(c.curl("GET", "/readyz", &[], None, true).0, 200);
}

#[test]
fn values_past_what_a_clock_or_a_number_holds_get_statuses_not_panics() {
    let c = Cluster::start();
    // Bound to a node (no agent here), so its deletion is graceful, for as long as it asks.
    c.file(
        "forever.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: forever\nspec:\n  nodeName: elsewhere\n  terminationGracePeriodSeconds: 9223372036854775807\n  containers:\n  - name: c\n    image: demo\n    resources:\n      requests:\n        cpu: 170141183460469231731687303715884105727n\n        memory: 170141183460469231731687303715884105727n\n",
    );
    c.kubectl(&["create", "-f", "forever.yaml"]).ok();
    let pod = format!("{PODS}/forever");
    let (code, body) = c.curl(
        "DELETE",
        &format!("{pod}?gracePeriodSeconds=9223372036854775807"),
        &[],
        None,
        false,
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        status(&body)["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("invalid gracePeriodSeconds: 9223372036854775807"),
        "{body}"
    );
    // The spec's own period is kept as long as a timestamp can say.
    let (code, body) = c.curl("DELETE", &pod, &[], None, false);
    assert_eq!(code, 200, "{body}");
    let deleting = c.pod_field("forever", "{.metadata.deletionTimestamp}");
    assert!(deleting.starts_with("9999-12-31T"), "{deleting}");
    let log = |query: &str| c.curl("GET", &format!("{pod}/log?{query}"), &[], None, false);
    let (code, body) = log("sinceSeconds=-1");
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        status(&body)["message"],
        "PodLogOptions \"forever\" is invalid: sinceSeconds: Invalid value: -1: must be greater than 0"
    );
    let (code, body) = log("sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z&tailLines=-2");
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        status(&body)["message"],
        "PodLogOptions \"forever\" is invalid: [tailLines: Invalid value: -2: must be greater than or equal to 0, []: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified]"
    );
    let (code, _) = c.curl(
        "DELETE",
        &format!("{pod}?gracePeriodSeconds=0"),
        &[],
        None,
        false,
    );
    assert_eq!(code, 200);
    assert_eq!(c.curl("GET", "/readyz", &[], None, true).0, 200);
}

#[test]
fn the_node_server_closes_a_connection_that_never_finishes_its_handshake() {
    use std::io::Read;
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    let port = eventually(30, || {
        let p = c
            .kubectl(&[
                "get",
                "nodes",
                "-o",
                "jsonpath={.items[0].status.daemonEndpoints.kubeletEndpoint.Port}",
            ])
            .stdout;
        p.trim().parse::<u16>().ok()
    })
    .expect("the node's port");
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    silent
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let started = std::time::Instant::now();
    let read = silent.read(&mut [0u8; 16]);
    let waited = started.elapsed();
    assert!(
        matches!(read, Ok(0) | Err(_)) && waited < std::time::Duration::from_secs(20),
        "still open after {waited:?}: {read:?}"
    );
}
