"""The benchmark's baselines and its worker clock, run for real on a small scale.

scripts/bench.py reports the service as a ratio of baselines that must do the
same work per request and per job. These tests build the baselines, give them
work on loopback and check that the work was done, so that a baseline that
quietly does less, and so flatters nothing but itself, fails here.
"""

import http.client
import importlib.util
import json
import subprocess
import time
from pathlib import Path

import pytest

from conftest import free_port, go_env, wait_for_port

pytestmark = pytest.mark.go

ROOT = Path(__file__).resolve().parents[1]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench", ROOT / "scripts/bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_bench()


def request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {"Content-Type": "application/json"} if body else {}
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        return response.status, response.getheader("Location"), response.read()
    finally:
        conn.close()


def log_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def wait_for_lines(path, predicate, count, timeout=10.0):
    """Wait until count JSON lines of path satisfy predicate; return them."""
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in log_lines(path) if predicate(line)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_bareservice_runs_each_job(bake, tmp_path):
    project = bake()
    binary = bench.build_bareservice(project, tmp_path)
    port = free_port()
    health = '{"status":"ok","checks":{}}'
    log = tmp_path / "bare.log"
    env = {**go_env(), "LOG_LEVEL": "info"}
    command = [binary, "-addr", f"127.0.0.1:{port}", "-health-body", health]
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    try:
        wait_for_port(port)
        assert request(port, "GET", "/health")[2].decode() == health

        job_ids = []
        for _ in range(3):
            status, location, body = request(port, "POST", "/v1/jobs", bench.JOB_BODY)
            assert status == 202, body
            job_ids.append(json.loads(body)["id"])
            assert location == f"/v1/jobs/{job_ids[-1]}"
        unknown = request(port, "POST", "/v1/jobs", '{"type":"nope"}')
        assert unknown[0] == 400

        for job_id in job_ids:
            ran = wait_for_lines(
                log, lambda line, job_id=job_id: line.get("job_id") == job_id, count=2
            )
            assert {line["msg"] for line in ran} == {"echo", "job done"}, ran
            echo = next(line for line in ran if line["msg"] == "echo")
            assert echo["payload"] == json.loads(bench.JOB_BODY)["payload"]
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.redis
def test_worker_baselines_count_every_job(bake, tmp_path, redis_server):
    project = bake()
    binaries = bench.build(project, tmp_path)
    tools = bench.build_tools(tmp_path, project)
    count = 200

    bench.enqueue_jobs(binaries, tools, redis_server.url, "bench-test", count)
    with bench.RedisConnection(redis_server.url) as redis:
        assert redis.integer("XLEN", "bench-test:stream") == count
        with pytest.raises(RuntimeError, match="PONG"):
            redis.integer("PING")
    # time_worker raises unless the worker ran every job by the time the
    # stream is empty.
    assert 0 < bench.time_worker(binaries, redis_server.url, "bench-test", count) < 60

    log = tmp_path / "bareworker.log"
    bare = [tools["bareworker"], "-redis", redis_server.url, "-stream", "bare-test"]
    bench.run([*bare, "-fill", str(count)], ROOT)
    started_ns = time.time_ns()
    result = bench.run([*bare, "-expect", str(count), "-log", str(log)], ROOT)
    report = json.loads(result.stdout)
    assert report["acked"] == count
    assert started_ns < report["done_unix_ns"] < time.time_ns()
    echoes = [line for line in log_lines(log) if line["msg"] == "echo"]
    assert len(echoes) == count
    assert len({line["job_id"] for line in echoes}) == count
    assert all(line["payload"] == {"message": "hello"} for line in echoes)
