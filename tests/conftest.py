"""Shared fixtures: baking the template, free loopback ports and a Redis server."""

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from cookiecutter.generate import generate_context
from cookiecutter.main import cookiecutter
from cookiecutter.prompt import prompt_for_config

TEMPLATE_DIR = Path(__file__).resolve().parents[1]

# The Go toolchain that builds a bake of each go_version answer. This machine
# runs Go 1.26; the go command fetches a 1.27 toolchain from the module proxy
# when GOTOOLCHAIN names it.
GO_TOOLCHAINS = {"1.26": "local", "1.27": "go1.27.3"}


def template_answers():
    """Return cookiecutter.json as a dict."""
    return json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())


def full_answers(**answers):
    """Return every answer as the CLI computes it with --no-input."""
    context = generate_context(
        context_file=str(TEMPLATE_DIR / "cookiecutter.json"), extra_context=answers
    )
    return dict(prompt_for_config(context, no_input=True))


def bake_into(output_dir, accept_hooks=True, **answers):
    """Bake the template with the given answers and return the project folder."""
    project = cookiecutter(
        str(TEMPLATE_DIR),
        no_input=True,
        extra_context=answers,
        output_dir=str(output_dir),
        accept_hooks=accept_hooks,
    )
    return Path(project)


def go_env(go_version="1.26"):
    """Return an environment for running the go command in a bake."""
    env = dict(os.environ)
    env["GOTOOLCHAIN"] = GO_TOOLCHAINS[go_version]
    env.setdefault("GOFLAGS", "-buildvcs=false")
    env.pop("REDIS_URL", None)
    return env


def run(command, cwd, env=None, timeout=600):
    """Run a command, and fail the test with its output if it fails."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} failed in {cwd} "
            f"(exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def free_port():
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


@pytest.fixture
def bake(tmp_path):
    """Bake into a fresh folder per call: bake(profile="api") -> project path."""
    count = 0

    def _bake(**answers):
        nonlocal count
        count += 1
        return bake_into(tmp_path / f"bake-{count}", **answers)

    return _bake


@pytest.fixture(scope="session")
def baked(tmp_path_factory):
    """Bake once per distinct answers for the whole run; callers must not edit it.

    baked(profile="api") returns the same folder to every test that asks for
    the same answers, so the slow Go builds happen once.
    """
    cache = {}

    def _baked(**answers):
        key = json.dumps(answers, sort_keys=True)
        if key not in cache:
            folder = tmp_path_factory.mktemp("baked")
            cache[key] = bake_into(folder, **answers)
        return cache[key]

    return _baked


class RedisServer:
    """A throwaway redis-server on a loopback port, with AOF persistence."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.port = free_port()
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed; run scripts/setup.sh")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.workdir),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One redis-server for the session; tests use their own queue names."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
