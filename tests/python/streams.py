"""The official Python client's exec and port-forward against a kubelite pod. Usage:
streams.py KUBECONFIG POD. Exits non-zero on the first failure."""

import sys

from kubernetes import client, config
from kubernetes.stream import portforward, stream

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
NS, POD = "default", sys.argv[2]

# A command's output, all at once.
out = stream(v1.connect_get_namespaced_pod_exec, POD, NS, command=["ls", "/"],
             stderr=True, stdin=False, stdout=True, tty=False)
assert "kuard" in out.split(), out

# An interactive session: stdin in, stdout and stderr out, stdin closed, the exit code.
resp = stream(v1.connect_get_namespaced_pod_exec, POD, NS,
              command=["sh", "-c", "read line; echo got $line; echo oops >&2; cat; exit 7"],
              stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
resp.write_stdin("hello\n")
resp.write_stdin("more\n")
stdout, stderr = "", ""
deadline = 0
while resp.is_open() and "got hello" not in stdout:
    resp.update(timeout=1)
    stdout += resp.read_stdout() or ""
    stderr += resp.read_stderr() or ""
    deadline += 1
    assert deadline < 20, (stdout, stderr)
# Closing stdin (the v5 CLOSE frame) ends `cat`, then the shell exits 7.
assert resp.subprotocol == "v5.channel.k8s.io", resp.subprotocol
resp.close_channel(0)
resp.run_forever(timeout=20)
stdout += resp.read_stdout() or ""
stderr += resp.read_stderr() or ""
assert "more" in stdout, stdout
assert resp.returncode == 7, resp.returncode
assert "got hello" in stdout, stdout
assert "oops" in stderr, stderr

# A successful command's return code.
ok = stream(v1.connect_get_namespaced_pod_exec, POD, NS, command=["true"],
            stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
ok.run_forever(timeout=20)
assert ok.returncode == 0, ok.returncode

# The same over v4, which has no CLOSE frame: the exit code still arrives.
v1.api_client.default_headers["sec-websocket-protocol"] = "v4.channel.k8s.io"
v4 = stream(v1.connect_get_namespaced_pod_exec, POD, NS, command=["sh", "-c", "echo four; exit 4"],
            stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
v4.run_forever(timeout=20)
assert v4.subprotocol == "v4.channel.k8s.io", v4.subprotocol
assert "four" in (v4.read_stdout() or ""), "v4 output"
assert v4.returncode == 4, v4.returncode
del v1.api_client.default_headers["sec-websocket-protocol"]

# Port-forward: an HTTP request to the app through the forwarded port.
pf = portforward(v1.connect_get_namespaced_pod_portforward, POD, NS, ports="8080")
sock = pf.socket(8080)
sock.setblocking(True)
sock.settimeout(20)
sock.sendall(b"GET /healthy HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
data = b""
while True:
    chunk = sock.recv(4096)
    if not chunk:
        break
    data += chunk
sock.close()
assert data.startswith(b"HTTP/1.1 200"), data
assert pf.error(8080) is None, pf.error(8080)
print("python streams passed")
