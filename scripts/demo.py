"""Bake the default service, build it, run it, process one job and stop it.

This is what `make demo` runs. The service runs in its embedded mode (no
REDIS_URL), so the api queues the job in memory and its in-process worker
runs it. The baked project stays in build/demo for a closer look.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
OUTPUT_DIR = TEMPLATE_DIR / "build" / "demo"


def step(message):
    print(f"\n==> {message}", flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=5) as response:
        return response.status, json.loads(response.read() or b"null")


def wait_until_ready(base_url, process, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the api exited early with code {process.returncode}")
        try:
            if request("GET", f"{base_url}/ready")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"the api did not become ready within {timeout}s")


def main():
    step(f"Baking the default service into {OUTPUT_DIR}")
    shutil.rmtree(OUTPUT_DIR, ignore_errors=True)
    project = Path(
        cookiecutter(str(TEMPLATE_DIR), no_input=True, output_dir=str(OUTPUT_DIR))
    )
    print(project)

    step("Building it (make build)")
    env = {**os.environ, "VERSION": "0.1.0-demo"}
    subprocess.run(["make", "build"], cwd=project, env=env, check=True)

    port, metrics_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{port}"
    step(f"Starting bin/api on {base_url} (metrics on port {metrics_port})")
    api = subprocess.Popen(
        [str(project / "bin" / "api")],
        env={**env, "PORT": str(port), "METRICS_PORT": str(metrics_port)},
    )
    try:
        wait_until_ready(base_url, api)
        print("version:", request("GET", f"{base_url}/version")[1])

        step("Enqueueing an echo job")
        job = {"type": "echo", "payload": {"message": "hello from make demo"}}
        status, accepted = request("POST", f"{base_url}/v1/jobs", job)
        print(f"POST /v1/jobs -> {status} {accepted}")

        step("Waiting for the worker to process it")
        deadline = time.monotonic() + 15
        state = {}
        while time.monotonic() < deadline:
            state = request("GET", f"{base_url}/v1/jobs/{accepted['id']}")[1]
            if state["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        print(f"GET /v1/jobs/{accepted['id']} -> {state}")
        if state.get("status") != "done":
            sys.exit("the job was not processed")
    finally:
        step("Stopping the api with SIGTERM")
        api.send_signal(signal.SIGTERM)
        code = api.wait(timeout=30)
        print(f"the api exited with code {code}")
    if code != 0:
        sys.exit(1)
    step(f"Done. The baked service is in {project}")


if __name__ == "__main__":
    main()
