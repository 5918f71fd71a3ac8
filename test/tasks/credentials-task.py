# Sample task: prints the access key its container credentials give at start and at the end, counting in between.
# usage: python3 -c "$(cat credentials-task.py)" [STEPS] [STEP_SECONDS]; exits 1 when the last fetch fails, as an upload would.
# The task image has python3-minimal (no urllib, no http.client), so the request is written on a plain socket.
import json
import os
import socket
import sys
import time


def http_get(uri, token):
    """GET an http:// URI with HTTP/1.0 (the server closes the connection: no socket stays open while the task counts)."""
    if not uri.startswith("http://"):
        raise ValueError(f"expected an http:// URI, got {uri!r}")
    authority, _, path = uri[len("http://"):].partition("/")
    host, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "80")
    lines = [f"GET /{path} HTTP/1.0", f"Host: {authority}"] + ([f"Authorization: {token}"] if token else [])
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


def access_key():
    """What an SDK does: GET AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN."""
    uri = os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if not uri:
        return None, "no AWS_CONTAINER_CREDENTIALS_FULL_URI"
    try:
        status, body = http_get(uri, os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"))
        if status != 200:
            return None, f"HTTP {status}: {body[:200].decode(errors='replace')}"
        return json.loads(body)["AccessKeyId"], None
    except Exception as error:  # noqa: BLE001 - the task reports any failure and goes on
        return None, f"{type(error).__name__}: {error}"


steps = int(sys.argv[1]) if len(sys.argv) > 1 else 60
step_seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
print("task started", flush=True)
print(f"credentials endpoint: {os.environ.get('AWS_CONTAINER_CREDENTIALS_FULL_URI')}", flush=True)
key, error = access_key()
print(f"credentials at start: {key or 'error ' + error}", flush=True)
for step in range(steps):
    time.sleep(step_seconds)
    print(f"step {step + 1}/{steps}", flush=True)
key, error = access_key()
print(f"credentials at end: {key or 'error ' + error}", flush=True)
sys.exit(0 if key else 1)
