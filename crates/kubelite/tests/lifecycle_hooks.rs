//! Lifecycle hooks and termination messages on a real node, driven with the real kubectl:
//! `postStart` runs in the container, `preStop` before it is stopped, a failing `postStart`
//! kills it with Kubernetes' event, and how a container ended reaches `state.terminated.message`
//! from its message file or, when asked, from its log.

mod common;

use common::*;

#[test]
fn post_start_and_pre_stop_hooks_run_in_the_container() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    let host_dir = c.dir.path().join("hook-out");
    c.file(
        "hooks.yaml",
        &format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: hooks
spec:
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
      lifecycle:
        postStart:
          exec: {{command: [sh, -c, 'echo started > /tmp/post-start']}}
        preStop:
          exec: {{command: [sh, -c, 'echo stopping > /out/pre-stop']}}
      volumeMounts: [{{name: out, mountPath: /out}}]
  volumes:
    - name: out
      hostPath: {{path: {}, type: DirectoryOrCreate}}
",
            host_dir.display()
        ),
    );
    c.kubectl(&["apply", "-f", "hooks.yaml"]).ok();
    wait_running(&c, "hooks");
    let seen = eventually(20, || {
        let out = c.kubectl(&["exec", "hooks", "--", "cat", "/tmp/post-start"]);
        (out.stdout == "started\n").then_some(())
    });
    assert!(seen.is_some(), "postStart did not run");
    c.kubectl(&["delete", "pod", "hooks", "--wait=true"]).ok();
    assert_eq!(
        std::fs::read_to_string(host_dir.join("pre-stop")).expect("preStop wrote its file"),
        "stopping\n"
    );
}

#[test]
fn failing_hooks_and_termination_messages_are_reported() {
    require_container_host();
    let c = Cluster::start_with_agent(&[]);
    c.file(
        "ends.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: message
spec:
  restartPolicy: Never
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
      command: [sh, -c, 'echo database unreachable > /dev/termination-log; exit 1']
---
apiVersion: v1
kind: Pod
metadata:
  name: fallback
spec:
  restartPolicy: Never
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
      terminationMessagePolicy: FallbackToLogsOnError
      command: [sh, -c, 'echo first; echo last words; exit 2']
---
apiVersion: v1
kind: Pod
metadata:
  name: badhook
spec:
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
      lifecycle:
        postStart:
          exec: {command: [sh, -c, 'exit 7']}
",
    );
    c.kubectl(&["apply", "-f", "ends.yaml"]).ok();
    let message = |pod: &str| {
        c.pod_field(
            pod,
            "{.status.containerStatuses[0].state.terminated.message}",
        )
    };
    wait_for(&c, "message", 60, "database unreachable", || {
        message("message")
    });
    wait_for(&c, "fallback", 60, "first\nlast words", || {
        message("fallback")
    });
    let uid = c.pod_field("badhook", "{.metadata.uid}");
    let expected = format!(
        "Exec lifecycle hook ([sh -c exit 7]) for Container \"kuard\" in Pod \"badhook_default({uid})\" failed - error: command 'sh -c exit 7' exited with 7: , message: \"\""
    );
    let seen = eventually(60, || c.events().contains(&expected).then_some(()));
    assert!(seen.is_some(), "{}", c.events());
    let killed = eventually(30, || {
        c.events().contains("FailedPostStartHook").then_some(())
    });
    assert!(killed.is_some());
}
