"""Fault injection against the default baked service, built once per session.

Each test starts the real binaries, sends traffic only to 127.0.0.1 and
breaks something: a SIGTERM under load, a SIGKILLed worker, a Redis restart,
hostile requests or a read-only root filesystem. It then checks what the
service promises. No accepted request or job is lost, the probes report the
real state, and the process keeps serving or exits cleanly. Every load and
wait is bounded in count and time.

FAULT_FUZZTIME sets how long each Go fuzz target runs (default 10s).
"""

import contextlib
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import RedisServer, go_env, run

pytestmark = [pytest.mark.fault, pytest.mark.go]

ROOT = Path(__file__).resolve().parents[1]
BENCHTOOLS = ROOT / "scripts" / "benchtools"

# Loopback ports this suite listens on; each test takes the next free ones.
PORT_RANGE = range(18600, 18800)
_port_cursor = itertools.cycle(PORT_RANGE)


def fault_port():
    """Return the next port of PORT_RANGE that nothing listens on."""
    for _ in PORT_RANGE:
        port = next(_port_cursor)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port in {PORT_RANGE}")


# ---------------------------------------------------------------------------
# Building and running the service


@dataclass
class Binaries:
    project: Path
    api: Path
    worker: Path
    healthcheck: Path
    loadgen: Path


@pytest.fixture(scope="session")
def binaries(baked, tmp_path_factory):
    """Build the default bake's commands (race detector off) and the loadgen.

    FAULT_PROJECT names an existing bake to test instead, for working on the
    service's Go code without re-baking.
    """
    project = Path(os.environ.get("FAULT_PROJECT") or baked())
    out = tmp_path_factory.mktemp("fault-bin")
    env = go_env()
    env["CGO_ENABLED"] = "0"
    for name in ("api", "worker", "healthcheck"):
        run(["go", "build", "-o", str(out / name), f"./cmd/{name}"], project, env)
    run(["go", "build", "-o", str(out / "loadgen"), "./loadgen"], BENCHTOOLS, go_env())
    return Binaries(
        project=project,
        api=out / "api",
        worker=out / "worker",
        healthcheck=out / "healthcheck",
        loadgen=out / "loadgen",
    )


def service_env(**extra):
    """Return the environment of one service process on fresh loopback ports."""
    env = go_env()
    env.update(
        PORT=str(fault_port()),
        METRICS_PORT=str(fault_port()),
        LOG_LEVEL="debug",
        SHUTDOWN_TIMEOUT="10s",
    )
    env.update({key: str(value) for key, value in extra.items()})
    return env


class Process:
    """A service binary started with its JSON log going to a file."""

    def __init__(self, command, env, log_path):
        self.command = [str(part) for part in command]
        self.env = env
        self.log_path = Path(log_path)
        self.process = None

    @property
    def port(self):
        return int(self.env["PORT"])

    @property
    def metrics_port(self):
        return int(self.env["METRICS_PORT"])

    def start(self):
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def stop(self, timeout=15):
        """Send SIGTERM, wait for the exit and return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self):
        self.process.kill()
        self.process.wait()

    def logs(self):
        """Return the JSON log lines written so far, as dicts."""
        entries = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
        return entries

    def non_json_lines(self):
        """Return the output lines that are not JSON log records."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [line for line in lines if not line.startswith("{")]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def http_call(port, method, path, body=None, *, headers=None, timeout=5.0):
    """Send one request on a new connection; return (status, headers, body).

    Returns status 0 when the connection fails, so pollers can record it.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    except OSError:
        return 0, {}, b""
    finally:
        conn.close()


def wait_for(port, path, status=200, timeout=15.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = http_call(port, "GET", path, timeout=1.0)[0]
        if last == status:
            return
        time.sleep(0.02)
    pytest.fail(f"GET 127.0.0.1:{port}{path} returned {last}, not {status}")


def enqueue(port, payload, job_type="echo"):
    """POST one job and return (status, job id or None)."""
    body = json.dumps({"type": job_type, "payload": payload})
    headers = {"Content-Type": "application/json"}
    status, _, raw = http_call(port, "POST", "/v1/jobs", body, headers=headers)
    if status != 202:
        return status, None
    return status, json.loads(raw)["id"]


def job_states(port, ids):
    """Return {id: status} from GET /v1/jobs/{id} (None when it failed)."""
    states = {}
    for job_id in ids:
        status, _, raw = http_call(port, "GET", f"/v1/jobs/{job_id}")
        states[job_id] = json.loads(raw)["status"] if status == 200 else None
    return states


def wait_until_settled(port, ids, timeout=40.0):
    """Poll until every job is done or failed; return the last states."""
    deadline = time.monotonic() + timeout
    states = {}
    while time.monotonic() < deadline:
        states = job_states(port, ids)
        if all(state in {"done", "failed"} for state in states.values()):
            return states
        time.sleep(0.2)
    return states


def metric_sum(port, name):
    """Return the sum of every sample of a Prometheus metric on /metrics."""
    status, _, body = http_call(port, "GET", "/metrics")
    assert status == 200, f"GET /metrics on {port} returned {status}"
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith((name + "{", name + " ")):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Poller(threading.Thread):
    """Poll GET path on a port every interval and record (time, status)."""

    def __init__(self, port, path, interval=0.02, limit=60.0):
        super().__init__(daemon=True)
        self.port, self.path, self.interval, self.limit = port, path, interval, limit
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        end = time.monotonic() + self.limit
        while not self.halt.is_set() and time.monotonic() < end:
            status = http_call(self.port, "GET", self.path, timeout=1.0)[0]
            self.samples.append((time.monotonic(), status))
            self.halt.wait(self.interval)

    def stop(self):
        self.halt.set()
        self.join(timeout=5)
        return self.samples


def start_loadgen(binaries, url, duration="8s", **flags):
    """Start the load generator; it stops after 500 errors or the duration."""
    command = [str(binaries.loadgen), "-url", url, "-duration", duration]
    flags.setdefault("max_errors", 500)
    flags.setdefault("expect", 202 if flags.get("method") == "POST" else 200)
    for flag, value in flags.items():
        command += [f"-{flag.replace('_', '-')}", str(value)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def loadgen_report(process):
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, f"loadgen failed: {out}"
    return json.loads(out)


def handled_requests(entries, route, statuses):
    """Count access log lines of route whose status is in statuses."""
    return sum(
        1
        for entry in entries
        if entry.get("msg") == "request"
        and entry.get("route") == route
        and entry.get("status") in statuses
    )


# ---------------------------------------------------------------------------
# Shutdown under load


class SlowUpload(threading.Thread):
    """POST a job whose body arrives in two parts, the second once resume is set.

    The server has read the headers and runs the handler before the body is
    complete, so the request is in flight from before resume is set until after.
    """

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.headers_sent = threading.Event()
        self.resume = threading.Event()
        self.reply = b""

    def run(self):
        body = json.dumps({"type": "echo", "payload": {"slow": True}}).encode()
        head = (
            f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", self.port), timeout=20) as sock:
            sock.sendall(head + body[:10])
            self.headers_sent.set()
            self.resume.wait(timeout=20)
            with contextlib.suppress(OSError):
                sock.sendall(body[10:])
                while chunk := sock.recv(4096):
                    self.reply += chunk


@dataclass
class ShutdownRun:
    exit_code: int
    exit_seconds: float
    term_at: float
    readiness: list  # (time, status) of GET /ready
    reports: dict  # route -> loadgen report
    uploads: list  # raw replies of the slow uploads
    entries: list  # the api's log lines


def run_shutdown_under_load(binaries, tmp_path):
    """SIGTERM the api while it is under load and record what every side saw."""
    env = service_env(SHUTDOWN_DELAY="1s", SHUTDOWN_TIMEOUT="10s")
    api = Process([binaries.api], env, tmp_path / "api.log").start()
    wait_for(api.port, "/ready")

    readiness = Poller(api.port, "/ready")
    readiness.start()
    base = f"http://127.0.0.1:{api.port}"
    job = json.dumps({"type": "echo", "payload": {"n": 1}})
    loads = {
        "/health": start_loadgen(binaries, base + "/health", connections=8),
        "/v1/jobs": start_loadgen(
            binaries, base + "/v1/jobs", connections=8, method="POST", body=job
        ),
    }
    uploads = [SlowUpload(api.port) for _ in range(3)]
    for upload in uploads:
        upload.start()
        upload.headers_sent.wait(timeout=5)
    time.sleep(1.5)

    term_at = time.monotonic()
    api.process.send_signal(signal.SIGTERM)
    # Finish the uploads after SHUTDOWN_DELAY, when the listener has closed
    # and the server is draining.
    time.sleep(1.5)
    for upload in uploads:
        upload.resume.set()
        upload.join(timeout=20)
    exit_code = api.process.wait(timeout=20)
    return ShutdownRun(
        exit_code=exit_code,
        exit_seconds=time.monotonic() - term_at,
        term_at=term_at,
        readiness=readiness.stop(),
        reports={route: loadgen_report(process) for route, process in loads.items()},
        uploads=[upload.reply for upload in uploads],
        entries=api.logs(),
    )


def test_shutdown_under_load_loses_nothing(binaries, tmp_path):
    result = run_shutdown_under_load(binaries, tmp_path)

    assert result.exit_code == 0
    assert result.exit_seconds < 10, f"exit took {result.exit_seconds:.1f} s"

    before = [status for at, status in result.readiness if at < result.term_at]
    after = [status for at, status in result.readiness if at >= result.term_at]
    assert 200 in before
    assert 503 in after, f"/ready never returned 503 after SIGTERM: {after[:20]}"
    first_refused = after.index(0) if 0 in after else len(after)
    assert after.index(503) < first_refused, "/ready stopped answering before 503"
    assert 200 not in after[after.index(503) :], "/ready went back to 200"

    # Requests whose headers the server read before SIGTERM finish during the
    # drain, even though the listener has closed by the time they complete.
    for reply in result.uploads:
        assert reply.startswith(b"HTTP/1.1 202"), f"in-flight upload got {reply!r}"

    for route, report in result.reports.items():
        errors = report["errors"]
        assert report["ok"] > 100, f"{route}: too few requests to judge: {report}"
        assert "status_5xx" not in errors, f"{route}: {report}"
        assert "status_unexpected" not in errors, f"{route}: {report}"
        assert "timeout" not in errors, f"{route}: {report}"
        assert errors.get("refused", 0) > 0, f"{route}: the load never saw the close"
        # The server logs every request it read. Each one must have reached
        # the client as a success: a response lost after the server accepted
        # the request makes the two counts differ. Errors on requests the
        # server never read (refused, or a keep-alive connection closed
        # before its next request was read) are allowed.
        status = 202 if route == "/v1/jobs" else 200
        handled = handled_requests(result.entries, route, {status})
        if route == "/v1/jobs":
            handled -= len(result.uploads)
        assert handled == report["ok"], (
            f"{route}: server handled {handled} requests, client got {report['ok']} "
            f"successes; errors {errors} {report['error_samples']}"
        )


# ---------------------------------------------------------------------------
# Worker killed in the middle of jobs


def echo_runs(entries):
    """Return {job id: number of completed echo handler runs} from log lines."""
    runs = {}
    for entry in entries:
        if entry.get("msg") == "echo" and "job_id" in entry:
            runs[entry["job_id"]] = runs.get(entry["job_id"], 0) + 1
    return runs


def redis_cli(server, *args):
    """Run one redis-cli command against server and return its raw output."""
    result = subprocess.run(
        ["redis-cli", "-p", str(server.port), "--raw", *args],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.redis
def test_worker_sigkill_redelivers_every_job(binaries, redis_server, tmp_path):
    queue = f"fault-kill-{os.getpid()}"
    common = {"REDIS_URL": redis_server.url, "QUEUE_NAME": queue}
    job_count, concurrency = 200, 4
    with Process([binaries.api], service_env(**common), tmp_path / "api.log") as api:
        wait_for(api.port, "/ready")
        accepted = [
            enqueue(api.port, {"sleep": "60ms", "seq": i}) for i in range(job_count)
        ]
        ids = [job_id for status, job_id in accepted if status == 202]
        assert len(ids) == job_count, f"only {len(ids)} of {job_count} jobs accepted"

        first = Process(
            [binaries.worker],
            service_env(**common, WORKER_CONCURRENCY=concurrency),
            tmp_path / "worker-1.log",
        ).start()
        wait_for(first.metrics_port, "/ready")
        # 200 jobs of 60 ms on 4 slots take about 3 s: kill a third of the way.
        time.sleep(1.0)
        first.kill()
        before = job_states(api.port, ids)
        done_before = sum(state == "done" for state in before.values())
        running_before = [
            job_id for job_id, state in before.items() if state == "running"
        ]
        assert 0 < done_before < job_count, f"the kill was not mid-run: {done_before}"
        assert running_before, (
            f"no job was running at the kill: {Counter(before.values())}"
        )

        second = Process(
            [binaries.worker],
            service_env(**common, WORKER_CONCURRENCY=concurrency, JOB_CLAIM_IDLE="1s"),
            tmp_path / "worker-2.log",
        )
        with second:
            states = wait_until_settled(api.port, ids)
            processed = metric_sum(second.metrics_port, "jobs_processed_total")
            dead = metric_sum(second.metrics_port, "jobs_dead_lettered_total")

    unsettled = {job_id: state for job_id, state in states.items() if state != "done"}
    assert not unsettled, (
        f"{len(unsettled)} jobs not done: {list(unsettled.items())[:5]}"
    )
    assert dead == 0
    # The second worker runs exactly the jobs the first did not finish, so
    # each job reaches done once. A job finished twice, or one left behind,
    # makes this sum differ from the job count.
    assert done_before + processed == job_count, (
        f"{done_before} done before the kill + {processed} by the second worker "
        f"!= {job_count}"
    )

    # Finished entries are deleted from the stream, so a settled queue has no
    # entries, nothing pending, no retries due and nothing dead-lettered.
    assert redis_cli(redis_server, "XLEN", f"{queue}:stream") == "0"
    assert redis_cli(redis_server, "ZCARD", f"{queue}:delayed") == "0"
    assert redis_cli(redis_server, "XLEN", f"{queue}:dead") == "0"
    pending = redis_cli(redis_server, "XPENDING", f"{queue}:stream", queue)
    assert pending.splitlines()[0] == "0", pending

    runs = echo_runs(first.logs())
    for job_id, count in echo_runs(second.logs()).items():
        runs[job_id] = runs.get(job_id, 0) + count
    assert set(runs) == set(ids), "some jobs never ran their handler"
    # Delivery is at least once: only a job cut off by the kill may run twice.
    repeated = {job_id for job_id, count in runs.items() if count > 1}
    assert repeated <= set(running_before), f"ran twice: {repeated}"
    assert len(repeated) <= concurrency


@pytest.mark.redis
def test_worker_sigterm_finishes_or_hands_back_jobs(binaries, redis_server, tmp_path):
    queue = f"fault-term-{os.getpid()}"
    common = {"REDIS_URL": redis_server.url, "QUEUE_NAME": queue}
    worker_settings = {**common, "WORKER_CONCURRENCY": 4}
    with Process([binaries.api], service_env(**common), tmp_path / "api.log") as api:
        wait_for(api.port, "/ready")
        ids = [enqueue(api.port, {"sleep": "2s"})[1] for _ in range(8)]

        # A drain budget longer than the jobs: the four running jobs finish,
        # the worker exits 0 and leaves the other four queued.
        env = service_env(**worker_settings, SHUTDOWN_TIMEOUT="10s")
        patient = Process([binaries.worker], env, tmp_path / "worker-1.log").start()
        wait_for(patient.metrics_port, "/ready")
        time.sleep(0.4)
        assert patient.stop() == 0
        states = Counter(job_states(api.port, ids).values())
        assert states == {"done": 4, "queued": 4}, states

        # A drain budget shorter than the jobs: the worker takes the other
        # four, abandons them unacknowledged and exits soon after the budget.
        env = service_env(**worker_settings, SHUTDOWN_TIMEOUT="500ms")
        hasty = Process([binaries.worker], env, tmp_path / "worker-2.log").start()
        wait_for(hasty.metrics_port, "/ready")
        time.sleep(0.4)
        term_at = time.monotonic()
        hasty.stop()
        assert time.monotonic() - term_at < 2.5, "the worker overran SHUTDOWN_TIMEOUT"
        abandoned = [e for e in hasty.logs() if "abandoned" in e.get("msg", "")]
        assert len(abandoned) == 4, f"{len(abandoned)} of 4 running jobs abandoned"
        states = Counter(job_states(api.port, ids).values())
        assert states == {"done": 4, "running": 4}, states

        # A new worker claims the abandoned jobs and finishes them.
        env = service_env(**worker_settings, JOB_CLAIM_IDLE="1s")
        with Process([binaries.worker], env, tmp_path / "worker-3.log"):
            states = wait_until_settled(api.port, ids)
    assert set(states.values()) == {"done"}, Counter(states.values())


# ---------------------------------------------------------------------------
# Redis stopped and restarted


class Producer(threading.Thread):
    """Enqueue an echo job every interval and record (status, id) of each."""

    def __init__(self, port, interval=0.025, limit=60.0):
        super().__init__(daemon=True)
        self.port, self.interval, self.limit = port, interval, limit
        self.results = []
        self.halt = threading.Event()

    def run(self):
        end = time.monotonic() + self.limit
        seq = 0
        while not self.halt.is_set() and time.monotonic() < end:
            self.results.append(enqueue(self.port, {"seq": seq}))
            seq += 1
            self.halt.wait(self.interval)

    def stop(self):
        self.halt.set()
        self.join(timeout=10)
        return self.results


def statuses_between(samples, start, end):
    return [status for at, status in samples if start <= at <= end]


@dataclass
class RestartRun:
    down_at: float
    up_at: float
    probes: dict  # probe name -> [(time, status)]
    results: list  # (status, job id) of every enqueue
    states: dict  # job id -> final status, for accepted jobs
    worker_logs: list
    exit_codes: tuple
    stray_lines: list  # output lines of either process that are not JSON


def run_redis_restart(binaries, tmp_path, crash):
    """Stop Redis for 4 s under a steady trickle of jobs, then start it again.

    crash=True kills Redis with SIGKILL, so that only what appendfsync always
    wrote to the AOF survives; otherwise SIGTERM lets it shut down cleanly.
    """
    redis = RedisServer(tmp_path / "redis")
    redis.workdir.mkdir()
    redis.port = fault_port()
    redis.start()
    common = {"REDIS_URL": redis.url, "QUEUE_NAME": "fault-restart"}
    api = Process([binaries.api], service_env(**common), tmp_path / "api.log")
    # A job whose acknowledgement failed during the outage is redelivered
    # after JOB_CLAIM_IDLE; 2 s keeps the wait for it short.
    worker_env = service_env(**common, JOB_CLAIM_IDLE="2s")
    worker = Process([binaries.worker], worker_env, tmp_path / "worker.log")
    try:
        api.start()
        worker.start()
        wait_for(api.port, "/ready")
        wait_for(worker.metrics_port, "/ready")
        pollers = {
            "api /health": Poller(api.port, "/health", interval=0.05),
            "api /ready": Poller(api.port, "/ready", interval=0.05),
            "worker /health": Poller(worker.metrics_port, "/health", interval=0.05),
            "worker /ready": Poller(worker.metrics_port, "/ready", interval=0.05),
        }
        for poller in pollers.values():
            poller.start()
        producer = Producer(api.port)
        producer.start()

        time.sleep(1.5)
        down_at = time.monotonic()
        if crash:
            redis.process.kill()
            redis.process.wait()
        redis.stop()
        time.sleep(4)
        up_at = time.monotonic()
        redis.start()
        wait_for(api.port, "/ready", timeout=15)
        wait_for(worker.metrics_port, "/ready", timeout=15)
        time.sleep(1.5)
        results = producer.stop()
        probes = {name: poller.stop() for name, poller in pollers.items()}

        ids = [job_id for status, job_id in results if status == 202]
        states = wait_until_settled(api.port, ids)
        return RestartRun(
            down_at=down_at,
            up_at=up_at,
            probes=probes,
            results=results,
            states=states,
            worker_logs=worker.logs(),
            exit_codes=(api.stop(), worker.stop()),
            stray_lines=api.non_json_lines() + worker.non_json_lines(),
        )
    finally:
        api.stop()
        worker.stop()
        redis.stop()


@pytest.mark.redis
@pytest.mark.parametrize("crash", [False, True], ids=["sigterm", "sigkill"])
def test_redis_restart_loses_no_accepted_job(binaries, tmp_path, crash):
    result = run_redis_restart(binaries, tmp_path, crash)

    assert result.exit_codes == (0, 0)
    for name in ("api /health", "worker /health"):
        statuses = [status for _, status in result.probes[name]]
        assert statuses, f"{name} was never probed"
        assert set(statuses) == {200}, f"{name} failed while Redis was down"
    for name in ("api /ready", "worker /ready"):
        # Readiness caches a dependency check for up to a second.
        outage = statuses_between(
            result.probes[name], result.down_at + 1.5, result.up_at
        )
        assert outage, f"{name} was not probed during the outage"
        assert set(outage) == {503}, f"{name} during the outage: {outage}"

    codes = [status for status, _ in result.results]
    assert codes.count(202) > 50, "too few jobs accepted to judge"
    assert codes.count(503) > 0, "no enqueue failed while Redis was down"
    assert set(codes) <= {202, 503}, f"unexpected statuses: {set(codes)}"
    lost = {job: state for job, state in result.states.items() if state != "done"}
    assert not lost, f"{len(lost)} accepted jobs not done: {list(lost.items())[:5]}"

    # The worker logs the first fetch error and, on recovery, how many fetches
    # failed in a row. The worker's exponential backoff and the Redis client's
    # own dial retries keep that count small; a fetch loop that spins without
    # waiting would count hundreds.
    logs = result.worker_logs
    failed = [entry for entry in logs if entry.get("msg") == "queue fetch failed"]
    recovered = [e for e in logs if e.get("msg") == "queue fetch recovered"]
    assert failed, "the worker logged no fetch error while Redis was down"
    assert recovered, "the worker never logged that fetching recovered"
    failures = [entry["failures"] for entry in recovered]
    # Log collectors parse each line as JSON, including the Redis client's
    # own messages about failed dials.
    assert not result.stray_lines, f"non-JSON output: {result.stray_lines[:3]}"
    assert max(failures) >= 2, f"no retry after the first failure: {failures}"
    assert max(failures) <= 20, f"fetch retried without backoff: {failures}"


# ---------------------------------------------------------------------------
# Hostile and malformed requests

JSON_HEADERS = {"Content-Type": "application/json"}

# (name, method, path, body, expected status)
BAD_REQUESTS = [
    ("malformed JSON", "POST", "/v1/jobs", '{"type": "echo",', 400),
    ("not an object", "POST", "/v1/jobs", "[1, 2]", 400),
    ("unknown field", "POST", "/v1/jobs", '{"type": "echo", "extra": 1}', 400),
    ("missing type", "POST", "/v1/jobs", '{"payload": {}}', 400),
    ("unknown type", "POST", "/v1/jobs", '{"type": "no-such-job"}', 400),
    ("trailing data", "POST", "/v1/jobs", '{"type": "echo"} {"type": "echo"}', 400),
    ("empty body", "POST", "/v1/jobs", "", 400),
    ("oversize body", "POST", "/v1/jobs", '{"type": "echo",' + " " * 4096 + "}", 413),
    (
        "oversize JSON",
        "POST",
        "/v1/jobs",
        json.dumps({"type": "echo", "payload": "x" * 4096}),
        413,
    ),
    ("wrong method on jobs", "DELETE", "/v1/jobs", None, 405),
    ("wrong method on health", "POST", "/health", "{}", 405),
    ("unknown path", "GET", "/no/such/path", None, 404),
    ("unknown job id", "GET", "/v1/jobs/does-not-exist", None, 404),
]


@pytest.fixture(scope="module")
def strict_api(binaries, tmp_path_factory):
    """One api with a 1 KiB body limit and a 500 ms header timeout."""
    env = service_env(MAX_BODY_BYTES=1024, READ_HEADER_TIMEOUT="500ms")
    log = tmp_path_factory.mktemp("strict-api") / "api.log"
    with Process([binaries.api], env, log) as api:
        wait_for(api.port, "/ready")
        yield api
        assert api.process.poll() is None, "the api exited during the bad requests"


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_request_gets_json_error(strict_api, method, path, body, expected):
    status, headers, raw = http_call(
        strict_api.port, method, path, body, headers=JSON_HEADERS
    )
    assert status == expected, raw
    assert headers.get("Content-Type", "").startswith("application/json")
    assert "error" in json.loads(raw), raw
    if expected == 405:
        assert headers.get("Allow"), "405 without an Allow header"
    assert http_call(strict_api.port, "GET", "/health")[0] == 200


def test_slow_headers_are_cut_off(strict_api):
    """A client that dribbles its headers is disconnected after the timeout."""
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 40
    cut_off_after = None
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", strict_api.port)) as sock:
        # One byte every 150 ms: the whole header would take over 10 s.
        sock.settimeout(0.15)
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
                reply = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                reply = b""
            assert not reply.startswith(b"HTTP/1.1 200"), "a partial header was served"
            cut_off_after = time.monotonic() - start
            break
    assert cut_off_after is not None, "the server waited for the whole header"
    assert cut_off_after < 2.0, f"cut off only after {cut_off_after:.1f} s"
    assert http_call(strict_api.port, "GET", "/health")[0] == 200


def test_many_bad_requests_keep_serving(strict_api):
    """After a burst of every bad case, the process still serves and counts."""
    for _ in range(20):
        for _, method, path, body, _ in BAD_REQUESTS:
            http_call(strict_api.port, method, path, body, headers=JSON_HEADERS)
    assert http_call(strict_api.port, "GET", "/health")[0] == 200
    status, job_id = enqueue(strict_api.port, {"after": "bad requests"})
    assert status == 202
    assert job_id
    assert metric_sum(strict_api.metrics_port, "http_requests_total") > 20 * len(
        BAD_REQUESTS
    )


# ---------------------------------------------------------------------------
# Read-only root filesystem

# Runs a command in a new mount namespace whose root is an empty tmpfs that
# holds only the files to run, remounted read-only, with a writable tmpfs on
# /tmp and the host's /proc (which the Prometheus process collector reads).
# This is what a scratch image with readOnlyRootFilesystem: true gives the
# service; the mounts vanish with the namespace when the command exits.
READ_ONLY_ROOT_SCRIPT = """
set -eu
root=$1; shift
mount -t tmpfs -o size=64m,mode=0755 tmpfs "$root"
for file in $FILES; do cp "$file" "$root/"; done
mkdir "$root/tmp" "$root/proc"
mount -o remount,ro "$root"
mount -t tmpfs -o size=16m,mode=1777 tmpfs "$root/tmp"
mount --rbind /proc "$root/proc"
exec chroot --userspec=65532:65532 "$root" "$@"
"""


def read_only_root(root, files, *command):
    """Return a command that runs command in a read-only root holding files."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("a read-only root needs root and unshare(1)")
    root.mkdir()
    script = root.parent / "read-only-root.sh"
    script.write_text(READ_ONLY_ROOT_SCRIPT)
    return [
        "env",
        "FILES=" + " ".join(str(path) for path in files),
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        str(script),
        str(root),
        *map(str, command),
    ]


def test_read_only_root_is_enforced(tmp_path):
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox is not installed; run scripts/setup.sh")
    command = read_only_root(
        tmp_path / "root",
        [busybox],
        "/busybox",
        "sh",
        "-c",
        "touch /written; echo root=$?; touch /tmp/written; echo tmp=$?",
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert "root=1" in result.stdout, result.stdout + result.stderr
    assert "tmp=0" in result.stdout, result.stdout + result.stderr


def test_api_serves_from_read_only_root(binaries, tmp_path):
    env = service_env()
    command = read_only_root(tmp_path / "root", [binaries.api], "/api")
    api = Process(command, env, tmp_path / "api.log")
    with api:
        wait_for(api.port, "/ready")
        # The mount namespace is the api's own, so its view of the mounts
        # shows whether the root really is read-only.
        pid = api_pid(api.process.pid)
        options = {}
        for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
            fields = line.split()
            options[fields[4]] = set(fields[5].split(","))
        assert "ro" in options["/"], options
        writable = {point for point, opts in options.items() if "rw" in opts}
        assert writable <= {"/tmp", "/proc"}, writable

        assert http_call(api.port, "GET", "/health")[0] == 200
        assert http_call(api.port, "GET", "/version")[0] == 200
        status, job_id = enqueue(api.port, {"read_only": True})
        assert status == 202
        states = wait_until_settled(api.port, [job_id], timeout=10)
        assert states[job_id] == "done"
        assert http_call(api.metrics_port, "GET", "/metrics")[0] == 200

        # The container probe binary runs in the same kind of root.
        for name, flags in (("liveness", []), ("readiness", ["--ready"])):
            probe = read_only_root(
                tmp_path / name,
                [binaries.healthcheck],
                *("/healthcheck", "--port", str(api.port), *flags),
            )
            result = subprocess.run(probe, capture_output=True, timeout=10)
            assert result.returncode == 0, f"{name} probe: {result.stderr!r}"
    assert api.process.returncode == 0, api.log_path.read_text()[-2000:]

    probe = read_only_root(
        tmp_path / "stopped", [binaries.healthcheck], "/healthcheck", "--port", api.port
    )
    result = subprocess.run(probe, capture_output=True, timeout=10)
    assert result.returncode == 1, "the probe passed against a stopped api"


def api_pid(wrapper_pid):
    """Return the pid of the api under the env/unshare/sh/chroot chain.

    env, unshare, sh and chroot each exec the next program, so the wrapper's
    pid is the api's pid once the chain has finished exec-ing.
    """
    exe = Path(f"/proc/{wrapper_pid}/exe")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if exe.resolve().name == "api":
                return wrapper_pid
        time.sleep(0.05)
    pytest.fail(f"pid {wrapper_pid} never became the api")


# ---------------------------------------------------------------------------
# Go fuzz targets

FUZZ_TIME = os.environ.get("FAULT_FUZZTIME", "10s")


def fuzz_targets(project):
    """Return (package dir, target name) for every Fuzz function in the bake."""
    targets = []
    for test_file in sorted(project.rglob("*_test.go")):
        for name in re.findall(r"^func (Fuzz\w+)\(", test_file.read_text(), re.M):
            package = "./" + str(test_file.parent.relative_to(project))
            targets.append((package, name))
    return targets


@pytest.mark.slow
def test_fuzz_targets_find_no_crash(binaries):
    targets = fuzz_targets(binaries.project)
    assert targets, "the baked service has no Fuzz targets"
    env = go_env()
    for package, name in targets:
        # -fuzz needs a single package and a pattern matching one target.
        result = subprocess.run(
            [
                "go",
                "test",
                "-run=^$",
                f"-fuzz=^{name}$",
                f"-fuzztime={FUZZ_TIME}",
                # Minimizing each new input may take 60 s by default, which
                # would use up a short run without fuzzing.
                "-fuzzminimizetime=2s",
                package,
            ],
            cwd=binaries.project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{package} {name} failed:\n{output[-4000:]}"
        execs = [int(n) for n in re.findall(r"execs: (\d+)", output)]
        assert execs, f"{package} {name} did not fuzz:\n{output}"
        assert max(execs) >= 100, f"{package} {name} ran few inputs:\n{output}"
