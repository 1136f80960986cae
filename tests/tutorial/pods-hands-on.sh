#!/usr/bin/env bash
# The "Kubernetes Pods" hands-on, section by section, against a running kubelite cluster: every
# command the tutorial has a reader type, and a check that the outcome is the one it describes.
# Read it side by side with the tutorial.
#
# Needs: KUBECONFIG (the cluster's admin kubeconfig), KUBECTL (the kubectl to drive; default
# kubectl), KUBELITE (the kubelite binary), SERVER_URL and TOKEN_FILE (to join a second, fake node
# in "Pods resources"). Runs in the current directory, which it fills with the tutorial's files.
set -euo pipefail

KUBECTL=${KUBECTL:-kubectl}
k() { "$KUBECTL" "$@"; }
section() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }
# expect TEXT COMMAND...: the command succeeds and its output contains TEXT.
expect() {
  local want=$1 out; shift
  out=$("$@" 2>&1) || fail "$* exited $?: $out"
  [[ $out == *"$want"* ]] || fail "$* does not say '$want':"$'\n'"$out"
}
# eventually SECONDS TEXT COMMAND...: the command's output contains TEXT within SECONDS.
eventually() {
  local secs=$1 want=$2 out=""; shift 2
  local end=$((SECONDS + secs))
  while ((SECONDS < end)); do
    out=$("$@" 2>&1) || true
    [[ $out == *"$want"* ]] && return 0
    sleep 0.2
  done
  fail "$* did not say '$want' within ${secs}s:"$'\n'"$out"
}
background=()
cleanup() { for pid in "${background[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
# forward POD: runs `kubectl port-forward POD :8080` and sets PORT to the local port it chose.
forward() {
  k port-forward "$1" :8080 >"forward-$1.out" 2>&1 &
  background+=($!)
  eventually 20 "Forwarding from 127.0.0.1:" cat "forward-$1.out"
  PORT=$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\) .*/\1/p' "forward-$1.out" | head -n1)
}

section "Creating a pod"
expect "kubectl create -f FILENAME" k create -h
expect "KIND:" k explain pod
expect "FIELD: image <string>" k explain pod.spec.containers.image
cat > kubernetes-up-and-running-pod.yml <<'EOF'
kind: Pod
apiVersion: v1
metadata:
  name: kubernetes-up-and-running
spec:
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
EOF
expect "pod/kubernetes-up-and-running created" k create -f kubernetes-up-and-running-pod.yml

section "Listing pods"
eventually 60 "1/1     Running" k get pods
expect "kubernetes-up-and-running" k get pod kubernetes-up-and-running
expect "imagePullPolicy: IfNotPresent" k get pod kubernetes-up-and-running -o yaml
expect "restartPolicy: Always" k get pod kubernetes-up-and-running -o yaml
expect '"restartPolicy": "Always"' k get pod kubernetes-up-and-running -o json

section "Describing pods"
expect "Status:           Running" k describe pod kubernetes-up-and-running
expect "Started container kuard" k describe pod kubernetes-up-and-running

section "Accessing logs"
eventually 20 "Serving on HTTP on :8080" k logs kubernetes-up-and-running

section "Connecting to a pod"
forward kubernetes-up-and-running
expect "kuard" curl -fsS "http://127.0.0.1:$PORT/"

section "Multiple containers: duplicate-containers"
cat > duplicate-containers.yml <<'EOF'
kind: Pod
apiVersion: v1
metadata:
  name: duplicate-containers
spec:
  containers:
    - name: one
      image: gcr.io/kuar-demo/kuard-amd64:1
    - name: two
      image: gcr.io/kuar-demo/kuard-amd64:1
EOF
expect "pod/duplicate-containers created" k create -f duplicate-containers.yml
eventually 60 "Restart Count:  1" k describe pod duplicate-containers
expect "Serving on HTTP on :8080" k logs duplicate-containers -c one
eventually 30 "address already in use" k logs duplicate-containers -c two -p
# "kubectl exec -it duplicate-containers -c one sh", then `ls` and `./kuard -h`.
expect "kuard" k exec duplicate-containers -c one -- ls
expect "--address" k exec duplicate-containers -c one -- ./kuard -h

section "Editing a pod"
# The reader's editor adds `args` to container two. The API refuses; kubectl re-opens the editor
# with the reason as comments at the top, which the reader reads (here: keeps) before giving up.
cat > add-args.sh <<'EOF'
#!/bin/sh
if grep -q 'was not valid' "$1"; then cp "$1" rejected.yaml; exit 0; fi
awk '/^  - image: gcr.io\/kuar-demo\/kuard-amd64:1$/ && ++n == 2 { print "  - args: [\"--address\", \":8081\"]"; print "    image: gcr.io/kuar-demo/kuard-amd64:1"; next } { print }' "$1" > "$1.new" && cat "$1.new" > "$1"
EOF
chmod +x add-args.sh
edit_out=$(KUBE_EDITOR="$PWD/add-args.sh" k edit pod duplicate-containers 2>&1) && fail "the edit was accepted: $edit_out"
[[ $edit_out == *'pods "duplicate-containers" is invalid'* ]] || fail "$edit_out"
[ -f rejected.yaml ] || fail "kubectl did not re-open the editor with the error: $edit_out"
grep -qF 'pods "duplicate-containers" was not valid:' rejected.yaml || fail "$(head -20 rejected.yaml)"
grep -qF "spec: Forbidden: pod updates may not change fields other than" rejected.yaml || fail "$(head -20 rejected.yaml)"
expect 'pod "duplicate-containers" deleted' k delete pod duplicate-containers
cat > duplicate-containers-with-custom-port.yml <<'EOF'
kind: Pod
apiVersion: v1
metadata:
  name: duplicate-containers
spec:
  containers:
    - name: one
      image: gcr.io/kuar-demo/kuard-amd64:1
    - name: two
      image: gcr.io/kuar-demo/kuard-amd64:1
      args:
        - --address
        - :8081
EOF
expect "pod/duplicate-containers created" k create -f duplicate-containers-with-custom-port.yml
eventually 60 "2/2     Running" k get pod duplicate-containers
expect "--address" k describe pod duplicate-containers
eventually 20 "Serving on HTTP on :8081" k logs duplicate-containers -c two

section "Deleting pods"
expect 'pod "duplicate-containers" deleted' k delete pod duplicate-containers
pods=$(k get pods -o name)
[ "$pods" = "pod/kubernetes-up-and-running" ] || fail "after the delete: $pods"

section "Creating multiple pods"
out=$(k create -f kubernetes-up-and-running-pod.yml 2>&1) && fail "a second pod of the same name was created"
grep -qF 'Error from server (AlreadyExists): error when creating "kubernetes-up-and-running-pod.yml": pods "kubernetes-up-and-running" already exists' <<<"$out" || fail "$out"
cat > kubernetes-up-and-running-generic-pod.yml <<'EOF'
kind: Pod
apiVersion: v1
metadata:
  generateName: kubernetes-up-and-running-
spec:
  containers:
    - name: kuard
      image: gcr.io/kuar-demo/kuard-amd64:1
EOF
expect "pod/kubernetes-up-and-running-" k create -f kubernetes-up-and-running-generic-pod.yml
expect "pod/kubernetes-up-and-running-" k create -f kubernetes-up-and-running-generic-pod.yml
[ "$(k get pods -o name | wc -l)" -eq 3 ] || fail "$(k get pods)"

section "Watching pods"
k get pods -w >watch.out 2>&1 &
background+=($!)
eventually 20 "kubernetes-up-and-running " cat watch.out
new=$(k create -f kubernetes-up-and-running-generic-pod.yml -o name)
eventually 60 "${new#pod/}   1/1     Running" cat watch.out

section "Pods resources: limits"
cat > kubernetes-up-and-running-pod-with-limits.yml <<'EOF'
kind: Pod
apiVersion: v1
metadata:
  generateName: kubernetes-up-and-running-with-limits-
spec:
  containers:
    - name: kuar
      image: gcr.io/kuar-demo/kuard-amd64:1
      resources:
        limits:
          memory: 256M
EOF
limited=$(k create -f kubernetes-up-and-running-pod-with-limits.yml -o name)
limited=${limited#pod/}
expect $'Limits:\n      memory:  256M\n    Requests:\n      memory:     256M' k describe pod "$limited"
expect "QoS Class:                   Burstable" k describe pod "$limited"
eventually 60 "1/1     Running" k get pod "$limited"
k get pods -w "$limited" >watch-limits.out 2>&1 &
background+=($!)
eventually 20 "$limited" cat watch-limits.out
forward "$limited"
# The memory page's "Allocate 500 MiB" link: more than the limit, so the kernel kills it.
curl -s -m 10 -X POST "http://127.0.0.1:$PORT/mem/api/alloc?size=524288000" >/dev/null || true
eventually 60 "OOMKilled" cat watch-limits.out
eventually 60 "1/1     Running   1 (" k get pod "$limited"
expect "OOMKilled" k get pod "$limited" -o 'jsonpath={.status.containerStatuses[0].lastState.terminated.reason}'

section "Pods resources: requests"
cat > kubernetes-up-and-running-pod-with-requests.yml <<'EOF'
kind: Pod
apiVersion: v1
metadata:
  generateName: kubernetes-up-and-running-with-requests-
spec:
  containers:
    - name: kuar
      image: gcr.io/kuar-demo/kuard-amd64:1
      resources:
        requests:
          cpu: 32
EOF
big=$(k create -f kubernetes-up-and-running-pod-with-requests.yml -o name)
big=${big#pod/}
eventually 20 "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod." k describe pod "$big"
expect "Warning  FailedScheduling" k describe pod "$big"
expect "Pending" k get pod "$big"
eventually 20 "FailedScheduling" k get events
# A node with room joins: the pending pod is scheduled there.
"$KUBELITE" agent --server "$SERVER_URL" --token-file "$TOKEN_FILE" --node-name big \
  --fake-nodes 1 --fake-cpus 64 --data-dir "$PWD/big-node" >big-node.log 2>&1 &
background+=($!)
eventually 60 "big-0" k get pod "$big" -o 'jsonpath={.spec.nodeName}'
eventually 20 "Running" k get pod "$big"

section "Pods events"
expect "Scheduled" k get events
expect "Started" k get events
expect "Killing" k get events

section "Cleanup"
k delete pods --all >/dev/null
eventually 60 "No resources found" k get pods
echo
echo "the pods hands-on passed"
