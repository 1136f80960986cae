//! Volumes and environment on a real node, driven with the real kubectl: an emptyDir two
//! containers share, a hostPath, configMap and secret volumes that follow their objects while the
//! pod runs, variables from the pod, ConfigMaps and Secrets, a
//! missing ConfigMap holding the pod back with Kubernetes' event, the service-account volume and
//! its token (bound to the pod), and a pod asking for what the node cannot do refused in plain
//! sight. A client inside a pod using that volume is in `python_client.rs`.

mod common;

use common::*;

fn exec(c: &Cluster, pod: &str, container: &str, script: &str) -> Out {
    c.kubectl(&["exec", pod, "-c", container, "--", "sh", "-c", script])
}

#[test]
fn empty_dir_host_path_config_map_and_secret_volumes_and_env() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    let host_dir = c.dir.path().join("host-data");
    let pod = format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: vols
spec:
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
      env:
        - {{name: MY_POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
        - {{name: MY_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
        - {{name: GREETING, valueFrom: {{configMapKeyRef: {{name: app, key: greeting}}}}}}
        - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: app-creds, key: password}}}}}}
        - {{name: SAID, value: '$(GREETING), $(MY_POD)'}}
      envFrom:
        - {{configMapRef: {{name: app}}, prefix: CFG_}}
      volumeMounts:
        - {{name: shared, mountPath: /shared}}
        - {{name: host, mountPath: /host}}
        - {{name: config, mountPath: /etc/config}}
        - {{name: creds, mountPath: /etc/creds, readOnly: true}}
        - {{name: config, mountPath: /etc/greeting.txt, subPath: greeting}}
    - name: writer
      image: gcr.io/kuar-demo/kuard-amd64:1
      command: [sh, -c, 'echo from-writer > /out/note; exec sleep 3600']
      volumeMounts:
        - {{name: shared, mountPath: /out}}
        - {{name: scratch, mountPath: /scratch}}
  volumes:
    - {{name: shared, emptyDir: {{}}}}
    - {{name: scratch, emptyDir: {{medium: Memory, sizeLimit: 16Mi}}}}
    - name: host
      hostPath: {{path: {}, type: DirectoryOrCreate}}
    - {{name: config, configMap: {{name: app}}}}
    - {{name: creds, secret: {{secretName: app-creds, defaultMode: 0400}}}}
",
        host_dir.display()
    );
    c.file("vols.yaml", &pod);
    c.kubectl(&["apply", "-f", "vols.yaml"]).ok();
    // The ConfigMap does not exist yet: the pod waits, saying why.
    let waiting = eventually(30, || {
        c.events()
            .contains(
                "MountVolume.SetUp failed for volume \"config\" : configmap \"app\" not found",
            )
            .then_some(())
    });
    assert!(waiting.is_some(), "{}", c.events());
    let status = c.kubectl(&["get", "pod", "vols", "--no-headers"]).stdout;
    assert!(status.contains("ContainerCreating"), "{status}");
    c.kubectl(&[
        "create",
        "configmap",
        "app",
        "--from-literal=greeting=hello",
    ])
    .ok();
    c.kubectl(&[
        "create",
        "secret",
        "generic",
        "app-creds",
        "--from-literal=password=s3cret",
    ])
    .ok();
    wait_running(&c, "vols");
    wait_for(&c, "vols", 30, "true", || {
        c.pod_field("vols", "{.status.containerStatuses[1].ready}")
    });

    assert_eq!(
        exec(&c, "vols", "kuard", "cat /shared/note").ok().trim(),
        "from-writer"
    );
    exec(&c, "vols", "kuard", "echo from-pod > /host/out").ok();
    assert_eq!(
        std::fs::read_to_string(host_dir.join("out"))
            .expect("hostPath file")
            .trim(),
        "from-pod"
    );
    let scratch = exec(&c, "vols", "writer", "grep ' /scratch ' /proc/mounts")
        .ok()
        .to_string();
    assert!(
        scratch.contains("tmpfs") && scratch.contains("size=16384k"),
        "{scratch}"
    );
    assert_eq!(
        exec(&c, "vols", "kuard", "cat /etc/config/greeting").ok(),
        "hello"
    );
    assert_eq!(
        exec(&c, "vols", "kuard", "cat /etc/greeting.txt").ok(),
        "hello"
    );
    assert_eq!(
        exec(&c, "vols", "kuard", "cat /etc/creds/password").ok(),
        "s3cret"
    );
    let mode = exec(&c, "vols", "kuard", "stat -L -c %a /etc/creds/password")
        .ok()
        .to_string();
    assert_eq!(mode.trim(), "400");
    let refused = exec(&c, "vols", "kuard", "echo x > /etc/config/new")
        .err()
        .to_string();
    assert!(refused.contains("Read-only file system"), "{refused}");

    // Updates reach the running pod; the subPath copy keeps what it had, as in Kubernetes.
    c.kubectl(&[
        "patch",
        "configmap",
        "app",
        "-p",
        r#"{"data":{"greeting":"bonjour"}}"#,
    ])
    .ok();
    let updated = eventually(40, || {
        (exec(&c, "vols", "kuard", "cat /etc/config/greeting").stdout == "bonjour").then_some(())
    });
    assert!(updated.is_some(), "the config map update never arrived");
    assert_eq!(
        exec(&c, "vols", "kuard", "cat /etc/greeting.txt").ok(),
        "hello"
    );
    assert_eq!(
        c.pod_field("vols", "{.status.containerStatuses[0].restartCount}"),
        "0"
    );
}

const IN_CLUSTER_POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
";

#[test]
fn the_service_account_volume_holds_a_token_bound_to_the_pod() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file("client.yaml", IN_CLUSTER_POD);
    c.kubectl(&["apply", "-f", "client.yaml"]).ok();
    wait_running(&c, "client");
    let dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    let ca = exec(&c, "client", "kuard", &format!("cat {dir}/ca.crt"))
        .ok()
        .to_string();
    let (cluster_ca, _, _) = c.tls_files();
    assert_eq!(ca, std::fs::read_to_string(cluster_ca).expect("ca"));
    assert_eq!(
        exec(&c, "client", "kuard", &format!("cat {dir}/namespace")).ok(),
        "default"
    );
    // The token names the service account, and dies with the pod it is bound to.
    let token = exec(&c, "client", "kuard", &format!("cat {dir}/token"))
        .ok()
        .to_string();
    let bearer = format!("Authorization: Bearer {token}");
    let (code, _) = c.curl(
        "GET",
        "/api/v1/namespaces/default/pods",
        &[&bearer],
        None,
        true,
    );
    assert_eq!(code, 200);
    c.kubectl(&["delete", "pod", "client", "--wait=true"]).ok();
    let (code, body) = c.curl(
        "GET",
        "/api/v1/namespaces/default/pods",
        &[&bearer],
        None,
        true,
    );
    assert_eq!(code, 401, "{body}");
    // kubectl create token issues one too.
    let made = c.kubectl(&["create", "token", "default", "--duration=10m"]);
    assert_eq!(made.ok().split('.').count(), 3, "a JWT");
    let short = c.kubectl(&["create", "token", "default", "--duration=1m"]);
    assert!(
        short
            .stderr
            .contains("may not specify a duration less than 10 minutes"),
        "{}",
        short.stderr
    );
}

#[test]
fn a_pod_asking_for_what_the_node_cannot_do_is_refused_visibly() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file(
        "host.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: hostnet
spec:
  hostAliases: [{ip: 10.0.0.1, hostnames: [db]}]
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
",
    );
    c.kubectl(&["apply", "-f", "host.yaml"]).ok();
    wait_for(&c, "hostnet", 30, "Failed", || {
        c.pod_field("hostnet", "{.status.phase}")
    });
    let table = c.kubectl(&["get", "pod", "hostnet", "--no-headers"]).stdout;
    assert!(table.contains("UnsupportedPodSpec"), "{table}");
    let message = c.pod_field("hostnet", "{.status.message}");
    assert_eq!(
        message,
        "Pod was rejected: this node does not support spec.hostAliases"
    );
    assert!(c.events().contains(&message), "{}", c.events());
}

#[test]
fn kubectl_cp_copies_into_and_out_of_a_pod() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file("kuard.yaml", KUARD_POD);
    c.kubectl(&["apply", "-f", "kuard.yaml"]).ok();
    wait_running(&c, "kubernetes-up-and-running");
    let local = c.file("notes.txt", "written on the host\n");
    let pod = "kubernetes-up-and-running";
    c.kubectl(&[
        "cp",
        local.to_str().expect("path"),
        &format!("{pod}:/tmp/notes.txt"),
    ])
    .ok();
    let inside = c.kubectl(&["exec", pod, "--", "cat", "/tmp/notes.txt"]);
    assert_eq!(inside.ok(), "written on the host\n");
    c.kubectl(&[
        "exec",
        pod,
        "--",
        "sh",
        "-c",
        "mkdir -p /tmp/out && echo made in the pod > /tmp/out/result",
    ])
    .ok();
    let back = c.dir.path().join("back");
    c.kubectl(&[
        "cp",
        &format!("{pod}:/tmp/out"),
        back.to_str().expect("path"),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(back.join("result")).expect("copied out"),
        "made in the pod\n"
    );
}
