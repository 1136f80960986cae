"""Lists the pods of its namespace as a client inside a pod does: configured by the official
client's in-cluster loader from the pod's KUBERNETES_SERVICE_* variables, service-account token
and CA (paths given, since the test reads them out of the pod), verifying the server's
certificate for the service address.

usage: in_cluster.py HOST PORT TOKEN_FILE CA_FILE NAMESPACE_FILE
"""

import sys

from kubernetes import client
from kubernetes.config.incluster_config import InClusterConfigLoader


def main():
    host, port, token_file, ca_file, namespace_file = sys.argv[1:6]
    environ = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}
    InClusterConfigLoader(
        token_filename=token_file, cert_filename=ca_file, environ=environ
    ).load_and_set()
    with open(namespace_file) as f:
        namespace = f.read()
    pods = client.CoreV1Api().list_namespaced_pod(namespace)
    print(" ".join(sorted(p.metadata.name for p in pods.items)))


if __name__ == "__main__":
    main()
