"""Drives a kubelite server with the official Kubernetes Python client: create, list, watch,
patch and delete pods. Usage: client_flow.py KUBECONFIG. Exits non-zero on the first failure."""

import json
import sys
import threading

from kubernetes import client, config, watch

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
NS = "default"


def pod(name):
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "py"}),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="kuard", image="gcr.io/kuar-demo/kuard-amd64:1")]
        ),
    )


events = []
ready = threading.Event()


def watch_pods():
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_pod, NS, label_selector="app=py", timeout_seconds=20):
        name = ev["object"].metadata.name
        events.append((ev["type"], name))
        # A watch without a resourceVersion starts with the objects that exist: once the sentinel
        # arrives, the stream is open and every later change reaches it.
        if name == "py-sentinel":
            ready.set()
        if ev["type"] == "DELETED" and name == "py-one":
            w.stop()


v1.create_namespaced_pod(NS, pod("py-sentinel"))
t = threading.Thread(target=watch_pods)
t.start()
assert ready.wait(timeout=20), "the watch never delivered the existing pod"

created = v1.create_namespaced_pod(NS, pod("py-one"))
assert created.spec.restart_policy == "Always", created.spec
assert created.status.phase == "Pending", created.status
assert created.spec.containers[0].image_pull_policy == "IfNotPresent"

names = sorted(p.metadata.name for p in v1.list_namespaced_pod(NS).items)
assert names == ["py-one", "py-sentinel"], names

patched = v1.patch_namespaced_pod("py-one", NS, {"metadata": {"labels": {"tier": "web"}}})
assert patched.metadata.labels == {"app": "py", "tier": "web"}, patched.metadata.labels
json_patched = v1.patch_namespaced_pod(
    "py-one", NS, [{"op": "replace", "path": "/spec/containers/0/image", "value": "gcr.io/kuar-demo/kuard-amd64:2"}]
)
assert json_patched.spec.containers[0].image.endswith(":2")

# Metadata alone, as clients that need only names and labels ask for it (through the client's
# own connection, whose call API differs between client versions).
rest = v1.api_client.rest_client
resp = rest.request(
    "GET",
    v1.api_client.configuration.host + f"/api/v1/namespaces/{NS}/pods",
    headers={"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"},
)
partial = json.loads(resp.data if resp.data is not None else resp.read())
assert partial["kind"] == "PartialObjectMetadataList", partial
assert sorted(i["metadata"]["name"] for i in partial["items"]) == ["py-one", "py-sentinel"], partial
assert all(i["kind"] == "PartialObjectMetadata" and "spec" not in i for i in partial["items"]), partial

try:
    v1.create_namespaced_pod(NS, pod("py-one"))
    raise SystemExit("a second create must fail")
except client.ApiException as e:
    assert e.status == 409, e

v1.delete_namespaced_pod("py-one", NS)
t.join(timeout=30)
kinds = [k for k, n in events if n == "py-one"]
assert kinds[0] == "ADDED" and "MODIFIED" in kinds and kinds[-1] == "DELETED", events

try:
    v1.read_namespaced_pod("py-one", NS)
    raise SystemExit("the pod must be gone")
except client.ApiException as e:
    assert e.status == 404, e
print("python client flow passed")
