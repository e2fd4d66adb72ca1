"""Measure the baked service's production images: size, start-up and build times.

    python scripts/bench_images.py [--starts N] [--write]

It bakes the default profile once per runtime image, builds the production target
of each component with buildah into a fresh storage root (so the first build is
cold: no layers, no module or build cache), and runs the images with podman, as
tests/test_images.py does and with the same local stand-ins for base images.

Reported per image: its size; the time from `podman run` to the first 200 from
/ready and the time from the container's start (podman's StartedAt) to it, each
the median of N starts; and for the api image of the first runtime image, the
cold build time and the rebuild time after a one-line change to cmd/api/main.go.
--write replaces the "## Container images" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import imagekit  # noqa: E402

RUNTIMES = ("scratch", "distroless")
COMPONENTS = ("api", "worker")
PORT = 18250
REDIS_PORT = 18290
HEADING = "## Container images"


def bake(output: Path, runtime: str) -> Path:
    return Path(
        cookiecutter(
            str(ROOT),
            no_input=True,
            output_dir=str(output / runtime),
            extra_context={"runtime_image": runtime},
        )
    )


def container_env(component: str, redis_url: str) -> tuple[dict[str, str], int]:
    if component == "api":
        return {"PORT": str(PORT), "METRICS_PORT": str(PORT + 1)}, PORT
    env = {"METRICS_PORT": str(PORT), "HEALTHCHECK_PORT": str(PORT)}
    return env | {"REDIS_URL": redis_url}, PORT


def started_at(engine: imagekit.Engine, name: str) -> float:
    """Return podman's StartedAt of the container as a Unix time."""
    text = engine.container_state(name)["StartedAt"]
    # Python parses at most microseconds: cut podman's nanoseconds.
    text = re.sub(r"(\.\d{6})\d*", r"\1", text)
    return dt.datetime.fromisoformat(text).timestamp()


def time_start(engine, image, component, redis_url) -> tuple[float, float]:
    """Start IMAGE once; return seconds to /ready from `podman run` and from start."""
    env, port = container_env(component, redis_url)
    name = f"cng-bench-{component}"
    engine.remove_container(name)
    command = ["run", "--detach", "--name", name, "--network", "host", "--read-only"]
    for key, value in env.items():
        command += ["--env", f"{key}={value}"]
    launched = time.time()
    engine.podman(*command, image)
    try:
        imagekit.wait_for_status(f"http://127.0.0.1:{port}/ready", timeout=30)
        ready = time.time()
        return ready - launched, ready - started_at(engine, name)
    finally:
        engine.remove_container(name)


def build(engine, project, image, component, proxy) -> float:
    return imagekit.build_image(
        engine, project, image, component=component, proxy=proxy
    ).seconds


def measure(workdir: Path, starts: int, redis_url: str) -> dict:
    engine = imagekit.Engine(workdir / "containers")
    results: dict = {"images": [], "builds": {}}
    for index, runtime in enumerate(RUNTIMES):
        project = bake(workdir, runtime)
        imagekit.ensure_standins(engine, project / "Dockerfile")
        proxy = imagekit.fill_module_cache(project)
        for component in COMPONENTS:
            image = f"localhost/bench-{component}:{runtime}"
            seconds = build(engine, project, image, component, proxy)
            if index == 0 and component == "api":
                results["builds"]["cold"] = seconds
                main = project / "cmd" / "api" / "main.go"
                main.write_text(main.read_text() + "\n// One more line.\n")
                results["builds"]["rebuild"] = build(
                    engine, project, image, component, proxy
                )
            runs = [
                time_start(engine, image, component, redis_url) for _ in range(starts)
            ]
            results["images"].append(
                {
                    "runtime": runtime,
                    "component": component,
                    "bytes": engine.image_size(image),
                    "from_run": statistics.median(r[0] for r in runs),
                    "from_start": statistics.median(r[1] for r in runs),
                }
            )
    return results


def render(results: dict, starts: int) -> str:
    rows = [
        "| image | size | `podman run` to ready | container start to ready |",
        "|---|---:|---:|---:|",
    ]
    for item in results["images"]:
        rows.append(
            f"| {item['component']} on {item['runtime']} "
            f"| {item['bytes'] / 1e6:.1f} MB "
            f"| {item['from_run'] * 1000:.0f} ms "
            f"| {item['from_start'] * 1000:.0f} ms |"
        )
    builds = results["builds"]
    cpus = os.cpu_count()
    today = dt.date.today().isoformat()
    return "\n".join(
        [
            HEADING,
            "",
            f"Measured {today} on {platform.machine()} Linux with {cpus} cores by",
            "`python scripts/bench_images.py --write`: buildah 1.28 (vfs storage,",
            "chroot isolation) builds the production target, podman 4.3 with runc",
            "runs it `--read-only` on the host network. Base images other than",
            "scratch are the local stand-ins of tests/imagekit.py. Start times are",
            f"medians of {starts} starts until the first 200 from /ready; the",
            "worker's /ready also waits for its Redis, on the same machine.",
            "",
            *rows,
            "",
            f"- Cold build of the api image (no layers, no module or build cache): "
            f"{builds['cold']:.0f} s.",
            f"- Rebuild after a one-line change to cmd/api/main.go: "
            f"{builds['rebuild']:.0f} s.",
            "",
        ]
    )


def replace_section(document: str, section: str) -> str:
    """Replace the Container images section of DOCUMENT, or append SECTION."""
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(document):
        return pattern.sub(lambda _: section + "\n", document, count=1)
    return document.rstrip("\n") + "\n\n" + section if document else section


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    missing = imagekit.tools_missing()
    if missing or shutil.which("redis-server") is None:
        sys.exit(f"needs {', '.join([*missing, 'redis-server'])}")

    with tempfile.TemporaryDirectory(prefix="cng-bench-") as tmp:
        command = ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1"]
        redis = subprocess.Popen([*command, "--save", ""], stdout=subprocess.DEVNULL)
        try:
            redis_url = f"redis://127.0.0.1:{REDIS_PORT}/0"
            results = measure(Path(tmp), args.starts, redis_url)
        finally:
            redis.terminate()
            redis.wait()

    section = render(results, args.starts)
    print(section)
    if args.write:
        path = ROOT / "docs" / "benchmarks.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        document = path.read_text() if path.exists() else "# Benchmarks\n"
        path.write_text(replace_section(document, section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
