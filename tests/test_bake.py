"""Bake every profile, then build, lint, test, run and probe the Go service."""

import gzip
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from conftest import (
    TEMPLATE_DIR,
    free_port,
    full_answers,
    go_env,
    run,
    template_answers,
    wait_for_port,
)
from test_hooks import AWKWARD_ANSWERS, post_gen

PROFILES = template_answers()["profile"]
COMPONENTS = {"api-worker": ["api", "worker"], "api": ["api"], "worker": ["worker"]}
TEMPLATE_ROOT = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"

# Cookiecutter syntax that must not survive rendering. Jinja's comment marker
# "{#" is left out because bash uses it (${#array[@]}); text that other tools
# own, such as GitHub Actions' ${{ }} expressions, is checked in its own tests.
JINJA_LEFTOVERS = re.compile(r"\{%-?\s|\s-?%\}|\{\{-?\s*cookiecutter")

# Option answers whose bakes must also be consistent, one bake each.
OPTION_BAKES = {
    "distroless": {"runtime_image": "distroless"},
    "istio": {"service_mesh": "istio"},
    "no-ci": {"ci": "none"},
    "ecr": {"registry": "ecr"},
    "cruft-check": {"cruft_check": "yes"},
}

VERSION = "1.2.3-test"
COMMIT = "0123abc"


def relative_files(root):
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def expected_files(answers):
    """Return the template's files minus those the prune table removes."""
    removed = post_gen.paths_to_remove(full_answers(**answers))
    return {
        path
        for path in relative_files(TEMPLATE_ROOT)
        if not any(path == r or path.startswith(r + "/") for r in removed)
    }


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_file_set(baked, profile):
    project = baked(profile=profile)
    assert relative_files(project) == expected_files({"profile": profile})


@pytest.mark.parametrize("answers", OPTION_BAKES.values(), ids=OPTION_BAKES.keys())
def test_option_file_set(baked, answers):
    project = baked(**answers)
    assert relative_files(project) == expected_files(answers)


@pytest.mark.parametrize("profile", PROFILES)
def test_no_jinja_left(baked, profile):
    project = baked(profile=profile)
    for relative in sorted(relative_files(project)):
        text = (project / relative).read_text(encoding="utf-8")
        match = JINJA_LEFTOVERS.search(text)
        assert match is None, (
            f"{relative}: {text[match.start() : match.start() + 60]!r}"
        )


def test_go_mod_names_module_and_release(baked):
    project = baked(module_path="gitlab.example.com/team/orders", go_version="1.27")
    go_mod = (project / "go.mod").read_text()
    assert go_mod.startswith("module gitlab.example.com/team/orders\n")
    assert "\ngo 1.27.0\n" in go_mod


# The Go checks below share one bake and one build per profile.


def go_run(project, *command, go_version="1.26", timeout=900):
    return run(list(command), project, go_env(go_version), timeout=timeout)


def ldflags(project):
    module = (project / "go.mod").read_text().split("\n", 1)[0].split()[1]
    package = f"{module}/internal/buildinfo"
    return (
        f"-s -w -X {package}.Version={VERSION} -X {package}.Commit={COMMIT} "
        f"-X {package}.Date=2026-01-02T03:04:05Z"
    )


@pytest.fixture(scope="session")
def built(baked):
    """Build the binaries of a profile once: built(profile) -> {name: path}."""
    cache = {}

    def _built(profile):
        if profile not in cache:
            project = baked(profile=profile)
            binaries = {}
            for name in [*COMPONENTS[profile], "healthcheck"]:
                output = project / "bin" / name
                go_run(
                    project,
                    "go", "build", "-trimpath", "-ldflags", ldflags(project),
                    "-o", str(output), f"./cmd/{name}",
                )  # fmt: skip
                binaries[name] = output
            cache[profile] = binaries
        return cache[profile]

    return _built


@pytest.mark.go
@pytest.mark.slow
@pytest.mark.parametrize("profile", PROFILES)
def test_go_checks(baked, profile):
    project = baked(profile=profile)
    gofmt = go_run(project, "gofmt", "-l", ".")
    assert gofmt.stdout.strip() == ""
    go_run(project, "go", "vet", "./...")
    go_run(project, "go", "build", "./...")
    before = {name: (project / name).read_bytes() for name in ("go.mod", "go.sum")}
    go_run(project, "go", "mod", "tidy")
    after = {name: (project / name).read_bytes() for name in ("go.mod", "go.sum")}
    assert after == before, "go mod tidy changed go.mod or go.sum"


@pytest.mark.go
@pytest.mark.slow
@pytest.mark.parametrize("profile", PROFILES)
def test_go_test_race(baked, profile):
    project = baked(profile=profile)
    result = go_run(project, "go", "test", "-race", "-count=1", "./...")
    assert "ok " in result.stdout
    assert "FAIL" not in result.stdout


@pytest.mark.go
@pytest.mark.slow
@pytest.mark.parametrize("profile", PROFILES)
def test_golangci_lint(baked, profile):
    project = baked(profile=profile)
    result = go_run(project, "golangci-lint", "run", "./...")
    assert "0 issues" in result.stdout


@pytest.mark.go
@pytest.mark.slow
@pytest.mark.parametrize(
    "answers", AWKWARD_ANSWERS.values(), ids=AWKWARD_ANSWERS.keys()
)
def test_awkward_answers_build_and_test(bake, answers):
    project = bake(**answers)
    go_run(project, "go", "vet", "./...")
    result = go_run(project, "go", "test", "-count=1", "./...")
    assert "FAIL" not in result.stdout
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert answers["description"] in readme


@pytest.mark.go
@pytest.mark.slow
def test_go_127_builds(baked):
    project = baked(go_version="1.27")
    go_run(project, "go", "build", "./...", go_version="1.27")
    go_run(project, "go", "vet", "./...", go_version="1.27")


# Running the service for real.


class Service:
    """A baked binary started on loopback ports, its JSON logs kept in a file."""

    def __init__(self, binary, env, log_path):
        self.binary = binary
        self.env = env
        self.log_path = log_path
        self.process = None

    def start(self, wait_port):
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(self.binary)], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for_port(wait_port)
        return self

    def stop(self, timeout=30):
        """Send SIGTERM and return the exit code and the seconds it took."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - started

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_lines(self):
        lines = []
        for raw in self.log_path.read_text(encoding="utf-8").splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                lines.append({"raw": raw})
        return lines


def http(method, url, body=None, headers=None, timeout=5):
    """Send a request; return (status, headers, body bytes) for any status."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def wait_for_status(url, expected=200, timeout=10.0):
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        try:
            status = http("GET", url)[0]
        except OSError:
            status = None
        if status == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"{url} answered {status}, not {expected}, within {timeout}s")


def service_env(**extra):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LOG_LEVEL": "debug",
        "SHUTDOWN_TIMEOUT": "10s",
    }
    env.update({key: str(value) for key, value in extra.items()})
    return env


def wait_for_job(base_url, job_id, timeout=20.0):
    deadline = time.monotonic() + timeout
    job = {}
    while time.monotonic() < deadline:
        status, _, body = http("GET", f"{base_url}/v1/jobs/{job_id}")
        assert status == 200, body
        job = json.loads(body)
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job.get('status')} after {timeout}s")


@pytest.fixture
def start_service(tmp_path):
    started = []

    def _start(binary, wait_port, **env):
        service = Service(binary, service_env(**env), tmp_path / f"{binary.name}.log")
        started.append(service)
        return service.start(wait_port)

    yield _start
    for service in started:
        service.kill()


@pytest.mark.go
@pytest.mark.slow
def test_api_runs_embedded(built, start_service):
    binaries = built("api-worker")
    port, metrics_port = free_port(), free_port()
    api = start_service(binaries["api"], port, PORT=port, METRICS_PORT=metrics_port)
    base = f"http://127.0.0.1:{port}"

    assert http("GET", f"{base}/health")[0] == 200
    wait_for_status(f"{base}/ready")
    assert http("GET", f"{base}/startup")[0] == 200
    status, _, body = http("GET", f"{base}/version")
    assert status == 200
    version = json.loads(body)
    assert version["version"] == VERSION
    assert version["commit"] == COMMIT

    status, _, body = http(
        "POST", f"{base}/v1/jobs", {"type": "echo", "payload": {"greeting": "hej"}}
    )
    assert status == 202, body
    job_id = json.loads(body)["id"]
    assert job_id
    job = wait_for_job(base, job_id)
    assert job["status"] == "done"
    assert job["type"] == "echo"

    status, _, body = http("POST", f"{base}/v1/jobs", {"type": "nope", "payload": 1})
    assert status == 400
    assert "error" in json.loads(body)
    assert http("GET", f"{base}/v1/jobs/does-not-exist")[0] == 404

    status, _, body = http("GET", f"http://127.0.0.1:{metrics_port}/metrics")
    metrics = body.decode()
    assert status == 200
    assert "build_info{" in metrics
    assert f'version="{VERSION}"' in metrics
    assert "http_requests_total{" in metrics
    assert 'jobs_processed_total{type="echo"} 1' in metrics

    code, seconds = api.stop()
    assert code == 0
    assert seconds < 10
    job_lines = [line for line in api.log_lines() if job_id in json.dumps(line)]
    assert any("hej" in json.dumps(line) for line in job_lines)


@pytest.mark.go
@pytest.mark.slow
def test_request_id_echoed_and_logged(built, start_service):
    binaries = built("api")
    port, metrics_port = free_port(), free_port()
    api = start_service(binaries["api"], port, PORT=port, METRICS_PORT=metrics_port)
    status, headers, _ = http(
        "GET", f"http://127.0.0.1:{port}/version", headers={"X-Request-ID": "req-4242"}
    )
    assert status == 200
    assert headers["X-Request-ID"] == "req-4242"
    generated = http("GET", f"http://127.0.0.1:{port}/version")[1]["X-Request-ID"]
    assert generated
    api.stop()
    logged = [line for line in api.log_lines() if line.get("request_id") == "req-4242"]
    assert len(logged) == 1


@pytest.mark.go
@pytest.mark.slow
def test_healthcheck_binary(built, start_service):
    binaries = built("api")
    port, metrics_port = free_port(), free_port()
    start_service(binaries["api"], port, PORT=port, METRICS_PORT=metrics_port)
    probe = [str(binaries["healthcheck"])]
    ok = subprocess.run(probe, env={"PORT": str(port)}, check=False, timeout=10)
    assert ok.returncode == 0
    ready = subprocess.run([*probe, "--ready"], env={"PORT": str(port)}, check=False)
    assert ready.returncode == 0
    closed = subprocess.run(probe, env={"PORT": str(free_port())}, check=False)
    assert closed.returncode == 1


@pytest.mark.go
@pytest.mark.slow
def test_invalid_config_names_variable(built):
    binaries = built("api")
    result = subprocess.run(
        [str(binaries["api"])],
        env=service_env(PORT="eighty", METRICS_PORT=free_port()),
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    assert result.returncode != 0
    assert "PORT" in result.stdout + result.stderr
    assert "eighty" in result.stdout + result.stderr


@pytest.mark.go
@pytest.mark.slow
def test_worker_without_redis_exits(built):
    binaries = built("worker")
    result = subprocess.run(
        [str(binaries["worker"])],
        env=service_env(METRICS_PORT=free_port()),
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    assert result.returncode != 0
    assert "REDIS_URL" in result.stdout + result.stderr


@pytest.mark.go
@pytest.mark.redis
@pytest.mark.slow
def test_api_and_worker_with_redis(built, start_service, redis_server):
    binaries = built("api-worker")
    port, api_metrics, worker_metrics = free_port(), free_port(), free_port()
    shared = {"REDIS_URL": redis_server.url, "QUEUE_NAME": f"bake-{port}"}
    api = start_service(
        binaries["api"], port, PORT=port, METRICS_PORT=api_metrics, **shared
    )
    worker = start_service(
        binaries["worker"], worker_metrics, METRICS_PORT=worker_metrics, **shared
    )
    base = f"http://127.0.0.1:{port}"
    wait_for_status(f"{base}/ready")
    wait_for_status(f"http://127.0.0.1:{worker_metrics}/ready")

    ids = []
    for number in range(20):
        status, _, body = http(
            "POST", f"{base}/v1/jobs", {"type": "echo", "payload": {"n": number}}
        )
        assert status == 202, body
        ids.append(json.loads(body)["id"])
    jobs = [wait_for_job(base, job_id) for job_id in ids]
    assert [job["status"] for job in jobs] == ["done"] * 20

    _, _, body = http("GET", f"http://127.0.0.1:{worker_metrics}/metrics")
    assert 'jobs_processed_total{type="echo"} 20' in body.decode()
    _, _, body = http("GET", f"http://127.0.0.1:{api_metrics}/metrics")
    assert "jobs_processed_total{" not in body.decode()

    assert worker.stop()[0] == 0
    assert api.stop()[0] == 0


@pytest.mark.go
@pytest.mark.redis
@pytest.mark.slow
def test_redis_integration_tests_run(baked, redis_server):
    project = baked()
    env = go_env()
    env["REDIS_URL"] = redis_server.url
    result = run(
        ["go", "test", "-race", "-count=1", "-v", "./internal/queue/..."],
        project,
        env,
        timeout=900,
    )
    passed = re.findall(r"^\s*--- PASS: (\S+)", result.stdout, re.MULTILINE)
    skipped = re.findall(r"^\s*--- SKIP: (\S+)", result.stdout, re.MULTILINE)
    assert skipped == []
    assert len(passed) >= 4


# Tracing: a minimal OTLP/HTTP receiver that decodes just enough protobuf to
# read span trace ids (opentelemetry-proto: ExportTraceServiceRequest field 1
# resource_spans, ResourceSpans field 2 scope_spans, ScopeSpans field 2 spans,
# Span field 1 trace_id and field 5 name).


def read_varint(data, offset):
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, offset
        shift += 7


def protobuf_fields(data):
    """Yield (field number, value) for the length-delimited fields of a message."""
    offset = 0
    while offset < len(data):
        key, offset = read_varint(data, offset)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, offset = read_varint(data, offset)
        elif wire_type == 1:
            offset += 8
        elif wire_type == 5:
            offset += 4
        elif wire_type == 2:
            length, offset = read_varint(data, offset)
            yield number, data[offset : offset + length]
            offset += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")


def submessages(data, wanted):
    return [value for number, value in protobuf_fields(data) if number == wanted]


def decode_spans(body):
    spans = []
    for resource_spans in submessages(body, 1):
        for scope_spans in submessages(resource_spans, 2):
            for span in submessages(scope_spans, 2):
                fields = dict(protobuf_fields(span))
                spans.append(
                    {"trace_id": fields[1].hex(), "name": fields.get(5, b"").decode()}
                )
    return spans


class OTLPReceiver(BaseHTTPRequestHandler):
    spans: ClassVar[list] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path == "/v1/traces":
            OTLPReceiver.spans.extend(decode_spans(body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def otlp_receiver():
    OTLPReceiver.spans = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), OTLPReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", OTLPReceiver.spans
    server.shutdown()


@pytest.mark.go
@pytest.mark.slow
def test_span_reaches_otlp_receiver(built, start_service, otlp_receiver):
    endpoint, spans = otlp_receiver
    binaries = built("api")
    port, metrics_port = free_port(), free_port()
    api = start_service(
        binaries["api"],
        port,
        PORT=port,
        METRICS_PORT=metrics_port,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_SERVICE_NAME="bake-test",
    )
    status, _, _ = http(
        "GET", f"http://127.0.0.1:{port}/version", headers={"X-Request-ID": "traced-1"}
    )
    assert status == 200
    assert api.stop()[0] == 0  # shutdown flushes the batch of spans

    logged = [line for line in api.log_lines() if line.get("request_id") == "traced-1"]
    assert len(logged) == 1
    trace_id = logged[0].get("trace_id")
    assert trace_id and re.fullmatch(r"[0-9a-f]{32}", trace_id)
    assert trace_id in {span["trace_id"] for span in spans}


def test_template_file_tree_has_no_stray_files():
    stray = [
        path
        for path in relative_files(TEMPLATE_ROOT)
        if Path(path).name in (".DS_Store",) or "__pycache__" in path
    ]
    assert stray == []
