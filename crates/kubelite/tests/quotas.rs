//! LimitRanges and ResourceQuotas through the real binary and the real kubectl: a range gives
//! pods their default requests and limits and refuses what is out of bounds, a quota's status is
//! kept current and a create that would exceed it is refused in Kubernetes' words.

mod common;

use common::*;

fn quota_cells(c: &Cluster, name: &str) -> String {
    let out = c.kubectl(&[
        "get",
        "quota",
        name,
        "-o",
        "custom-columns=R:.status.used",
        "--no-headers",
    ]);
    out.stdout.trim().to_string()
}

fn wait_for_row(c: &Cluster, name: &str, wanted: &[&str]) {
    let seen = eventually(30, || {
        let row = c.kubectl(&["get", "quota", name, "--no-headers"]).stdout;
        wanted.iter().all(|w| row.contains(w)).then_some(())
    });
    assert!(
        seen.is_some(),
        "{wanted:?}:\n{}\n{}",
        c.kubectl(&["get", "quota", name]).stdout,
        quota_cells(c, name)
    );
}

fn pod(name: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    image: gcr.io/kuar-demo/kuard-amd64:1\n{resources}"
    )
}

#[test]
fn limit_ranges_and_quotas_bound_pods() {
    let c = Cluster::start();
    c.file(
        "limits.yaml",
        "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: limits\nspec:\n  limits:\n  - type: Container\n    default:\n      cpu: 500m\n      memory: 128Mi\n    defaultRequest:\n      cpu: 250m\n      memory: 64Mi\n    max:\n      cpu: \"1\"\n",
    );
    c.kubectl(&["create", "-f", "limits.yaml"]).ok();
    let out = c.kubectl(&[
        "create",
        "quota",
        "compute",
        "--hard=requests.cpu=1,limits.memory=512Mi,pods=3",
    ]);
    assert_eq!(out.ok(), "resourcequota/compute created\n");
    wait_for_row(
        &c,
        "compute",
        &["pods: 0/3, requests.cpu: 0/1", "limits.memory: 0/512Mi"],
    );
    let header = c.kubectl(&["get", "quota"]);
    assert!(
        header.ok().starts_with("NAME      AGE   REQUEST"),
        "{}",
        header.stdout
    );

    // The range fills in what the pod leaves out, and says so.
    c.file("plain.yaml", &pod("plain", ""));
    c.kubectl(&["create", "-f", "plain.yaml"]).ok();
    let got = c.kubectl(&[
        "get",
        "pod",
        "plain",
        "-o",
        "jsonpath={.spec.containers[0].resources.requests.cpu} {.spec.containers[0].resources.limits.memory}",
    ]);
    assert_eq!(got.ok(), "250m 128Mi");
    let note = c.kubectl(&[
        "get",
        "pod",
        "plain",
        "-o",
        "jsonpath={.metadata.annotations.kubernetes\\.io/limit-ranger}",
    ]);
    assert!(
        note.ok().starts_with("LimitRanger plugin set: "),
        "{}",
        note.stdout
    );
    wait_for_row(
        &c,
        "compute",
        &[
            "pods: 1/3, requests.cpu: 250m/1",
            "limits.memory: 128Mi/512Mi",
        ],
    );

    // Out of the range's bounds, then past the quota.
    c.file(
        "greedy.yaml",
        &pod(
            "greedy",
            "    resources:\n      limits:\n        cpu: \"2\"\n",
        ),
    );
    let refused = c.kubectl(&["create", "-f", "greedy.yaml"]);
    assert!(
        refused.err().contains(
            "pods \"greedy\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
        ),
        "{}",
        refused.stderr
    );
    c.file(
        "big.yaml",
        &pod(
            "big",
            "    resources:\n      requests:\n        cpu: 900m\n      limits:\n        cpu: \"1\"\n",
        ),
    );
    let refused = c.kubectl(&["create", "-f", "big.yaml"]);
    assert!(
        refused.err().contains(
            "pods \"big\" is forbidden: exceeded quota: compute, requested: requests.cpu=900m, used: requests.cpu=250m, limited: requests.cpu=1"
        ),
        "{}",
        refused.stderr
    );
    // A deleted pod gives its share back.
    c.kubectl(&["delete", "pod", "plain"]).ok();
    wait_for_row(&c, "compute", &["pods: 0/3, requests.cpu: 0/1"]);
    c.kubectl(&["create", "-f", "big.yaml"]).ok();

    // Object counts: the namespace holds its root CA config map already.
    c.kubectl(&["create", "quota", "objects", "--hard=configmaps=1"])
        .ok();
    wait_for_row(&c, "objects", &["configmaps: 1/1"]);
    let refused = c.kubectl(&["create", "configmap", "extra", "--from-literal=a=b"]);
    assert!(
        refused.err().contains(
            "configmaps \"extra\" is forbidden: exceeded quota: objects, requested: configmaps=1, used: configmaps=1, limited: configmaps=1"
        ),
        "{}",
        refused.stderr
    );
    // What kubelite would not enforce is refused, not ignored.
    let refused = c.kubectl(&["create", "quota", "storage", "--hard=requests.storage=1Gi"]);
    assert!(
        refused
            .err()
            .contains("kubelite does not enforce a quota on this resource"),
        "{}",
        refused.stderr
    );
}
