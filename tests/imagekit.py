"""Build and run the baked service's images with buildah and podman, without Docker.

There is no Docker engine on the test machines and no registry can be reached, so
every image is built by buildah and run by podman from a private storage root, with
the settings that work as root here (vfs storage, chroot isolation, runc, cgroupfs,
no default ulimits).

Base images other than scratch cannot be pulled. `make_golang_standin` and
`make_distroless_standin` assemble local images under the exact names that the
Dockerfile uses, from files on this machine: the Go toolchain (`go env GOROOT`),
a static busybox as /bin/sh and its applets, the CA bundle, the zone database, and
the passwd and group entries of distroless' nonroot user (65532). They stand in for
golang:<version>-bookworm and gcr.io/distroless/static-debian12:nonroot; they are
not those images, so a test here proves the Dockerfile's logic and the service, not
the upstream images' contents.

Go modules reach the build through a read-only module proxy on disk: the host's
module download cache, mounted into every RUN step and named by GOPROXY=file://...
The build then needs no network and downloads exactly what go.sum pins.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# Parts of GOROOT that building a module with CGO off never reads. vfs copies
# the whole root file system for every build step, so leaving them out of the
# stand-in halves the time a build spends copying.
GOROOT_SKIP = ("api", "doc", "misc", "test", "src/cmd")
GOTOOLS_KEPT = ("asm", "compile", "link")

PROXY_MOUNT = "/var/cache/goproxy"

STANDIN_PATH = (
    "/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
    ":/sbin:/bin"
)

NONROOT = 65532


def go_env(name: str) -> str:
    result = subprocess.run(
        ["go", "env", name], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def tools_missing() -> list[str]:
    """Return the names of the programs that the image tests need and lack."""
    needed = ("buildah", "podman", "runc", "busybox", "go")
    return [name for name in needed if shutil.which(name) is None]


@dataclass
class Engine:
    """buildah and podman sharing one private storage root."""

    root: Path

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.conf = self.root / "containers.conf"
        # podman's default ulimits fail with runc on these machines.
        self.conf.write_text("[containers]\ndefault_ulimits = []\n")
        # buildah keeps RUN --mount=type=cache directories under TMPDIR; a
        # private one makes the first build in this root a cold build.
        tmpdir = self.root / "tmp"
        tmpdir.mkdir(exist_ok=True)
        self.env = dict(os.environ, CONTAINERS_CONF=str(self.conf), TMPDIR=str(tmpdir))

    def _storage(self) -> list[str]:
        return [
            "--root",
            str(self.root / "storage"),
            "--runroot",
            str(self.root / "run"),
            "--storage-driver",
            "vfs",
        ]

    def buildah(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self._run(["buildah", *self._storage(), *args], check)

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [
            "podman",
            *self._storage(),
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            *args,
        ]
        return self._run(command, check)

    def _run(self, command: list[str], check: bool) -> subprocess.CompletedProcess:
        result = subprocess.run(
            command, env=self.env, capture_output=True, text=True, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} exited {result.returncode}\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def image_exists(self, name: str) -> bool:
        return (
            self.buildah("inspect", "--type", "image", name, check=False).returncode
            == 0
        )

    def image_size(self, name: str) -> int:
        out = self.podman("image", "inspect", "--format", "{{.Size}}", name).stdout
        return int(out.strip())

    def image_config(self, name: str) -> dict:
        out = self.buildah("inspect", "--type", "image", name).stdout
        return json.loads(out)

    def container_state(self, name: str) -> dict:
        out = self.podman("inspect", "--format", "{{json .State}}", name).stdout
        return json.loads(out)

    def remove_container(self, name: str) -> None:
        self.podman("rm", "--force", "--time", "0", name, check=False)


# --------------------------------------------------------------------------------
# Stand-in base images.


def _commit_rootfs(engine: Engine, name: str, fill, config: list[str]) -> None:
    """Create image NAME from an empty root that FILL(path) populates."""
    container = engine.buildah("from", "scratch").stdout.strip()
    try:
        mount = Path(engine.buildah("mount", container).stdout.strip())
        fill(mount)
        engine.buildah("config", *config, container)
        engine.buildah("commit", "--format", "docker", container, name)
    finally:
        engine.buildah("rm", container, check=False)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _copy_ca_bundle(root: Path) -> None:
    target = root / "etc/ssl/certs/ca-certificates.crt"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", target)


def _sticky_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o1777)


def _fill_golang(root: Path) -> None:
    goroot = go_env("GOROOT")
    skip = {Path(goroot, part) for part in GOROOT_SKIP}

    tooldir = Path(goroot, "pkg", "tool", f"linux_{go_env('GOARCH')}")

    def ignore(directory: str, names: list[str]) -> list[str]:
        def unused(name: str) -> bool:
            path = Path(directory, name)
            if path.parent == tooldir:
                return name not in GOTOOLS_KEPT
            return path in skip or name == "testdata" or name.endswith("_test.go")

        return [name for name in names if unused(name)]

    shutil.copytree(goroot, root / "usr/local/go", symlinks=True, ignore=ignore)

    busybox = shutil.which("busybox")
    bindir = root / "bin"
    bindir.mkdir(parents=True)
    shutil.copy2(busybox, bindir / "busybox")
    applets = subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        link = bindir / applet
        if not link.exists():
            link.symlink_to("busybox")
    for alias in ("usr/bin", "usr/sbin", "sbin"):
        (root / alias).mkdir(parents=True, exist_ok=True)

    _copy_ca_bundle(root)
    _write(root / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    _write(root / "etc/group", "root:x:0:\n")
    (root / "root").mkdir(mode=0o700)
    _sticky_dir(root / "tmp")
    for sub in ("go", "go/bin", "go/src"):
        _sticky_dir(root / sub)


def make_golang_standin(engine: Engine, name: str) -> None:
    """Commit a local image NAME that offers what golang:*-bookworm offers a build."""
    version = go_env("GOVERSION")
    config = [
        "--env",
        f"PATH={STANDIN_PATH}",
        "--env",
        "GOPATH=/go",
        "--env",
        "GOTOOLCHAIN=local",
        "--env",
        f"GOLANG_VERSION={version.removeprefix('go')}",
        "--workingdir",
        "/go",
        "--cmd",
        "/bin/sh",
    ]
    _commit_rootfs(engine, name, _fill_golang, config)


def _fill_distroless(root: Path) -> None:
    _write(
        root / "etc/passwd",
        "root:x:0:0:root:/root:/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
        f"nonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n",
    )
    _write(
        root / "etc/group",
        f"root:x:0:\nnobody:x:65534:\nnonroot:x:{NONROOT}:\n",
    )
    _copy_ca_bundle(root)
    shutil.copytree("/usr/share/zoneinfo", root / "usr/share/zoneinfo", symlinks=True)
    _sticky_dir(root / "tmp")
    home = root / "home/nonroot"
    home.mkdir(parents=True, mode=0o700)
    os.chown(home, NONROOT, NONROOT)


def make_distroless_standin(engine: Engine, name: str) -> None:
    """Commit a local image NAME laid out like distroless/static's nonroot tag."""
    config = [
        "--env",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--env",
        "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
        "--user",
        f"{NONROOT}:{NONROOT}",
        "--workingdir",
        "/home/nonroot",
    ]
    _commit_rootfs(engine, name, _fill_distroless, config)


def base_images(dockerfile: Path) -> list[str]:
    """Return the external images that the Dockerfile's FROM lines name."""
    stages: set[str] = set()
    images: list[str] = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if not words or words[0].upper() != "FROM":
            continue
        words = [w for w in words[1:] if not w.startswith("--")]
        image = words[0]
        if len(words) >= 3 and words[1].upper() == "AS":
            stages.add(words[2])
        external = image != "scratch" and image not in stages and "$" not in image
        if external and image not in images:
            images.append(image)
    return images


def qualify(image: str) -> str:
    """Return the fully qualified name that a Docker Hub short name resolves to."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if rest else f"docker.io/library/{image}"


def ensure_standins(engine: Engine, dockerfile: Path) -> list[str]:
    """Create a stand-in for each base image of DOCKERFILE that storage lacks."""
    made = []
    for image in base_images(dockerfile):
        name = qualify(image)
        if engine.image_exists(name):
            continue
        if name.startswith("docker.io/library/golang:"):
            make_golang_standin(engine, name)
        elif name.startswith("gcr.io/distroless/static"):
            make_distroless_standin(engine, name)
        else:
            raise LookupError(f"no stand-in recipe for base image {image}")
        made.append(name)
    return made


# --------------------------------------------------------------------------------
# Modules, builds and runs.


def fill_module_cache(project: Path) -> Path:
    """Download the project's modules on the host; return the proxy directory."""
    env = dict(os.environ, GOFLAGS="-mod=mod")
    for command in (["go", "mod", "download"], ["go", "list", "-deps", "./..."]):
        subprocess.run(
            command, cwd=project, env=env, capture_output=True, text=True, check=True
        )
    return Path(go_env("GOMODCACHE")) / "cache" / "download"


@dataclass
class Build:
    image: str
    seconds: float
    output: str


def build_image(
    engine: Engine,
    context: Path,
    image: str,
    *,
    target: str = "production",
    component: str = "api",
    proxy: Path | None = None,
    build_args: dict[str, str] | None = None,
) -> Build:
    """Build one target of the context's Dockerfile into IMAGE and time it."""
    args = {
        "COMPONENT": component,
        "VERSION": "v0.0.0-test",
        "COMMIT": "0" * 40,
        "BUILD_DATE": "2026-01-01T00:00:00Z",
        # buildah 1.28 sets TARGETOS and TARGETARCH only for --platform builds.
        "TARGETOS": "linux",
        "TARGETARCH": go_env("GOARCH"),
    }
    args.update(build_args or {})
    command = [
        "bud",
        "--layers",
        "--isolation",
        "chroot",
        "--pull=never",
        "--format",
        "docker",
        "--target",
        target,
        "--tag",
        image,
    ]
    if proxy is not None:
        command += ["--volume", f"{proxy}:{PROXY_MOUNT}:ro"]
        args.setdefault("GOPROXY", f"file://{PROXY_MOUNT}")
    for key, value in args.items():
        command += ["--build-arg", f"{key}={value}"]
    command.append(str(context))
    started = time.monotonic()
    result = engine.buildah(*command)
    return Build(image, time.monotonic() - started, result.stdout + result.stderr)


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """Return the HTTP status of GET URL, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def wait_for_status(url: str, want: int = 200, timeout: float = 20.0) -> float:
    """Poll URL until it answers WANT; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if http_status(url, timeout=0.5) == want:
            return time.monotonic() - started
        time.sleep(0.002)
    raise TimeoutError(f"{url} did not answer {want} within {timeout} s")
