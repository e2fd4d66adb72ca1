"""The baked service's compose files and Kubernetes manifests.

Every profile and service_mesh option is baked, and every kustomize overlay of
each bake is rendered with `kubectl kustomize`. The renders are validated
against the Kubernetes API schemas of the oldest and newest supported release,
scanned by checkov and trivy with only the exceptions the service commits in
deploy/security-exceptions.yaml, and held to rules that no schema knows: probes
on routes the Go code registers, PodDisruptionBudgets that never block a drain,
selectors that pick one component, a grace period longer than the drain.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

PROFILES = ("api-worker", "api", "worker")
MESHES = ("none", "istio")
OVERLAYS = ("development", "staging", "production")
COMPONENTS = {"api-worker": ("api", "worker"), "api": ("api",), "worker": ("worker",)}

# Oldest and newest Kubernetes release the manifests support; the service
# README ("Deploying") names the same two.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")

IMAGE_REPOSITORY = "ghcr.io/example/example-service"
BASE = Path("deploy/kubernetes/base")
EXCEPTIONS = Path("deploy/security-exceptions.yaml")

# Each component's own files, which a profile without that component must not
# keep (the post-gen hook's prune table removes them).
COMPONENT_KINDS = {
    "api": ("deployment", "service", "serviceaccount", "hpa", "pdb", "networkpolicy"),
    "worker": ("deployment", "serviceaccount", "hpa", "pdb", "networkpolicy"),
}
PATCHED_OVERLAYS = ("development", "production")


def component_files(component):
    """Return the paths that exist only for the given component."""
    base = [BASE / f"{component}-{kind}.yaml" for kind in COMPONENT_KINDS[component]]
    patches = [
        Path("deploy/kubernetes/overlays", overlay, f"{component}-patch.yaml")
        for overlay in PATCHED_OVERLAYS
    ]
    return base + patches


# Ports the Istio sidecar adds: merged metrics, Envoy statistics, istiod.
ISTIO_METRICS_PORTS = {15020, 15090}
ISTIOD_PORT = 15012

BAKES = [pytest.param(p, m, id=f"{p}-{m}") for p in PROFILES for m in MESHES]
RENDERS = [
    pytest.param(p, m, o, id=f"{p}-{m}-{o}")
    for p in PROFILES
    for m in MESHES
    for o in OVERLAYS
]
PROFILE_PARAMS = [pytest.param(p, id=p) for p in PROFILES]


# ---------------------------------------------------------------------------
# Tools


def find_tool(name, env_var=None):
    """Return the path of a validator: $env_var, PATH, or beside this Python."""
    candidates = [os.environ.get(env_var)] if env_var else []
    candidates.append(shutil.which(name))
    candidates.append(shutil.which(name, path=str(Path(sys.executable).parent)))
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    hint = f"set {env_var} or " if env_var else ""
    pytest.fail(f"{name} is not installed: {hint}run scripts/setup.sh")


def run_tool(command, cwd=None, env=None):
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} failed (exit {result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


_renders = {}


def render(project, overlay):
    """Return the objects of one overlay as rendered by kubectl kustomize."""
    key = (project, overlay)
    if key not in _renders:
        overlay_dir = project / "deploy/kubernetes/overlays" / overlay
        result = run_tool([find_tool("kubectl"), "kustomize", overlay_dir])
        _renders[key] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return _renders[key]


def of_kind(objects, kind):
    return [obj for obj in objects if obj["kind"] == kind]


def component_of(obj):
    return obj["metadata"]["labels"]["app.kubernetes.io/component"]


def pod_spec(deployment):
    return deployment["spec"]["template"]["spec"]


# ---------------------------------------------------------------------------
# Facts read from the Go source and the Dockerfile of the bake


ROUTE_CALL = re.compile(r"\.(?:Handle|HandleFunc|HandleProbe)\(\s*\"([^\"]+)\"")
IMPORT_PATH = re.compile(r"\"([^\"\s]+)\"")


def module_path(project):
    return re.search(r"^module (\S+)", (project / "go.mod").read_text(), re.M)[1]


def package_imports(package_dir, module):
    """Return the in-module packages that the Go files of package_dir import."""
    imports = set()
    for source in package_dir.glob("*.go"):
        if source.name.endswith("_test.go"):
            continue
        text = source.read_text()
        blocks = re.findall(r"^import\s*\((.*?)^\)", text, re.M | re.S)
        blocks += re.findall(r"^import\s+(\"[^\"]+\")", text, re.M)
        for block in blocks:
            for path in IMPORT_PATH.findall(block):
                if path.startswith(module + "/"):
                    imports.add(path.removeprefix(module + "/"))
    return imports


def served_routes(project, component):
    """Return (method, path) of every route that cmd/<component> can register.

    It follows the command's imports inside the module and collects the
    string patterns passed to Handle, HandleFunc and HandleProbe, so a route
    renamed or dropped in the Go code fails the probe checks.

    NOTE: a route is not tied to the port that serves it; the port names are
    checked against the PORT and METRICS_PORT defaults instead.
    """
    module = module_path(project)
    seen, pending = set(), [f"cmd/{component}"]
    while pending:
        package = pending.pop()
        if package in seen:
            continue
        seen.add(package)
        pending.extend(package_imports(project / package, module))
    routes = set()
    for package in seen:
        for source in (project / package).glob("*.go"):
            if source.name.endswith("_test.go"):
                continue
            for pattern in ROUTE_CALL.findall(source.read_text()):
                method, _, path = pattern.rpartition(" ")
                routes.add((method or None, path))
    return routes


def config_default_port(project, variable):
    """Return the default of PORT or METRICS_PORT in internal/config."""
    text = (project / "internal/config/config.go").read_text()
    match = re.search(rf"\"{variable}\",\s*(\d+)\)", text)
    assert match, f"internal/config/config.go has no default for {variable}"
    return int(match[1])


def dockerfile_users(project):
    """Return the numeric (uid, gid) pairs of the Dockerfile's USER lines."""
    text = (project / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\d+)(?::(\d+))?\s*$", text, re.M)
    return {(int(uid), int(gid or uid)) for uid, gid in users}


def dockerfile_stage(project, name):
    """Return the text of one build stage of the Dockerfile."""
    text = (project / "Dockerfile").read_text()
    match = re.search(
        rf"^FROM\s+\S+\s+AS\s+{name}\s*$(.*?)(?=^FROM\s|\Z)", text, re.M | re.S | re.I
    )
    assert match, f"the Dockerfile has no stage named {name}"
    return match[1]


# ---------------------------------------------------------------------------
# Units


DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
DURATION_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1}
DURATION_SECONDS.update(m=60, h=3600)
BINARY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
DECIMAL_UNITS = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def go_duration_seconds(text):
    """Return the seconds of a Go duration string such as "1m30s"."""
    assert DURATION_PART.sub("", text) == "", f"not a Go duration: {text!r}"
    return sum(
        float(value) * DURATION_SECONDS[unit]
        for value, unit in DURATION_PART.findall(text)
    )


def quantity_bytes(text):
    """Return the bytes of a Kubernetes memory quantity such as "256Mi"."""
    number, unit = re.fullmatch(r"(\d+)([A-Za-z]*)", str(text)).groups()
    scale = {"": 1, **BINARY_UNITS, **DECIMAL_UNITS}[unit]
    return int(number) * scale


def gomemlimit_bytes(text):
    """Return the bytes of a GOMEMLIMIT value: plain bytes or a B/KiB/MiB/GiB size."""
    number, unit = re.fullmatch(r"(\d+)(B|KiB|MiB|GiB|TiB)?", text).groups()
    return (
        int(number)
        * {
            None: 1,
            "B": 1,
            **{f"{prefix}B": scale for prefix, scale in BINARY_UNITS.items()},
        }[unit]
    )


def disruptions_allowed(pdb, replicas):
    """Return how many of `replicas` healthy pods the PDB lets a drain evict."""
    spec = pdb["spec"]
    if "maxUnavailable" in spec:
        return scaled(spec["maxUnavailable"], replicas)
    return replicas - scaled(spec["minAvailable"], replicas)


def scaled(value, replicas):
    """Resolve an int-or-percent PDB field the way Kubernetes does (rounding up)."""
    if isinstance(value, str) and value.endswith("%"):
        return -(-int(value[:-1]) * replicas // 100)
    return int(value)


# ---------------------------------------------------------------------------
# Files present per profile


@pytest.mark.parametrize(("profile", "mesh"), BAKES)
def test_manifests_match_profile_components(baked, profile, mesh):
    project = baked(profile=profile, service_mesh=mesh)
    for component in COMPONENT_KINDS:
        wanted = component in COMPONENTS[profile]
        for path in component_files(component):
            assert (project / path).exists() == wanted, (
                f"{path} {'missing' if wanted else 'should be pruned'} "
                f"for profile {profile}"
            )
    listed = yaml.safe_load((project / BASE / "kustomization.yaml").read_text())
    on_disk = {path.name for path in (project / BASE).glob("*.yaml")} - {
        "kustomization.yaml"
    }
    assert set(listed["resources"]) == on_disk


# ---------------------------------------------------------------------------
# Kubernetes: schemas and scanners


@pytest.mark.validators
@pytest.mark.parametrize(("profile", "mesh", "overlay"), RENDERS)
def test_overlays_match_kubernetes_schemas(baked, profile, mesh, overlay):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    objects = render(baked(profile=profile, service_mesh=mesh), overlay)

    # An unknown kind or apiVersion raises SchemaNotFoundError and fails here.
    for version in KUBERNETES_VERSIONS:
        for obj in objects:
            kubernetes_validate.validate(obj, version, strict=True)

    per_component = (
        "Deployment",
        "ServiceAccount",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    )
    components = COMPONENTS[profile]
    expected = Counter({"Namespace": 1, "ConfigMap": 1})
    expected.update({kind: len(components) for kind in per_component})
    if "api" in components:
        expected["Service"] = 1
    assert Counter(obj["kind"] for obj in objects) == expected


def scan_directory(project, tmp_path):
    """Write every overlay's render and the Dockerfile into one folder to scan."""
    scan = tmp_path / "scan"
    scan.mkdir()
    kubectl = find_tool("kubectl")
    for overlay in OVERLAYS:
        overlay_dir = project / "deploy/kubernetes/overlays" / overlay
        result = run_tool([kubectl, "kustomize", overlay_dir])
        (scan / f"{overlay}.yaml").write_text(result.stdout)
    shutil.copy(project / "Dockerfile", scan / "Dockerfile")
    return scan


def load_exceptions(project):
    exceptions = yaml.safe_load((project / EXCEPTIONS).read_text())
    for entry in exceptions["checkov"] + exceptions["misconfigurations"]:
        assert entry.get("statement", "").strip(), f"{entry['id']} has no reason"
    return exceptions


@pytest.mark.validators
@pytest.mark.parametrize(("profile", "mesh"), BAKES)
def test_checkov_passes_with_exceptions(baked, tmp_path, profile, mesh):
    project = baked(profile=profile, service_mesh=mesh)
    skipped = ",".join(entry["id"] for entry in load_exceptions(project)["checkov"])
    run_tool(
        [
            find_tool("checkov", "CHECKOV"),
            "-d",
            scan_directory(project, tmp_path),
            "--framework",
            "kubernetes,dockerfile",
            "--skip-download",
            "--quiet",
            "--compact",
            "--skip-check",
            skipped,
        ]
    )


@pytest.mark.validators
@pytest.mark.parametrize(("profile", "mesh"), BAKES)
def test_trivy_passes_with_exceptions(baked, tmp_path, tmp_path_factory, profile, mesh):
    project = baked(profile=profile, service_mesh=mesh)
    load_exceptions(project)
    run_tool(
        [
            find_tool("trivy"),
            "config",
            "--skip-check-update",
            "--cache-dir",
            tmp_path_factory.getbasetemp() / "trivy-cache",
            "--exit-code",
            "1",
            "--ignorefile",
            project / EXCEPTIONS,
            scan_directory(project, tmp_path),
        ]
    )


@pytest.mark.validators
@pytest.mark.parametrize(("profile", "mesh"), BAKES)
def test_yamllint_passes(baked, profile, mesh):
    project = baked(profile=profile, service_mesh=mesh)
    run_tool([find_tool("yamllint"), "-s", "-c", ".yamllint.yaml", "."], cwd=project)


# ---------------------------------------------------------------------------
# Kubernetes: rules the schemas do not know


@pytest.mark.validators
@pytest.mark.parametrize(("profile", "mesh", "overlay"), RENDERS)
def test_probes_hit_served_routes(baked, profile, mesh, overlay):
    project = baked(profile=profile, service_mesh=mesh)
    port_numbers = {
        "http": config_default_port(project, "PORT"),
        "metrics": config_default_port(project, "METRICS_PORT"),
    }
    for deployment in of_kind(render(project, overlay), "Deployment"):
        component = component_of(deployment)
        routes = served_routes(project, component)
        (container,) = pod_spec(deployment)["containers"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        for name, number in ports.items():
            assert port_numbers[name] == number, f"{component}: port {name}"
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = container[kind]["httpGet"]
            assert probe["port"] in ports, f"{component} {kind}: unknown port"
            assert ("GET", probe["path"]) in routes or (
                None,
                probe["path"],
            ) in routes, (
                f"{component} {kind}: {probe['path']} is not a route of cmd/{component}"
            )
        # The API serves its probes with the API, the worker beside its metrics.
        expected_port = "http" if component == "api" else "metrics"
        assert {
            container[kind]["httpGet"]["port"]
            for kind in ("startupProbe", "readinessProbe", "livenessProbe")
        } == {expected_port}


@pytest.mark.validators
@pytest.mark.parametrize(("profile", "mesh", "overlay"), RENDERS)
def test_pdbs_never_block_drains(baked, profile, mesh, overlay):
    objects = render(baked(profile=profile, service_mesh=mesh), overlay)
    hpas = {
        component_of(hpa): hpa for hpa in of_kind(objects, "HorizontalPodAutoscaler")
    }
    for pdb in of_kind(objects, "PodDisruptionBudget"):
        component = component_of(pdb)
        fewest = hpas[component]["spec"]["minReplicas"]
        assert disruptions_allowed(pdb, fewest) >= 1, (
            f"{overlay}: the {component} PDB blocks drains at {fewest} replica(s)"
        )
        assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


@pytest.mark.validators
@pytest.mark.parametrize(("profile", "mesh", "overlay"), RENDERS)
def test_hpa_targets_request_measured_resources(baked, profile, mesh, overlay):
    objects = render(baked(profile=profile, service_mesh=mesh), overlay)
    deployments = {d["metadata"]["name"]: d for d in of_kind(objects, "Deployment")}
    assert len(of_kind(objects, "HorizontalPodAutoscaler")) == len(deployments)
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment"
        deployment = deployments[target["name"]]
        assert component_of(deployment) == component_of(hpa)
        # The HPA owns the replica count (see the Deployment's comment).
        assert "replicas" not in deployment["spec"]
        spec = hpa["spec"]
        assert spec["minReplicas"] >= 1
        assert spec["minReplicas"] <= spec["maxReplicas"]
        assert "scaleUp" in spec["behavior"]
        assert "scaleDown" in spec["behavior"]
        measured = {metric["resource"]["name"] for metric in spec["metrics"]}
        assert "cpu" in measured
        for container in pod_spec(deployment)["containers"]:
            for resource in measured:
                assert resource in container["resources"]["requests"], (
                    f"{container['name']} has no {resource} request"
                )


@pytest.mark.validators
@pytest.mark.parametrize(("profile", "mesh", "overlay"), RENDERS)
def test_selectors_pick_one_component(baked, profile, mesh, overlay):
    objects = render(baked(profile=profile, service_mesh=mesh), overlay)
    pods = {
        component_of(d): d["spec"]["template"]["metadata"]["labels"]
        for d in of_kind(objects, "Deployment")
    }

    def picks(selector):
        return {
            component
            for component, labels in pods.items()
            if selector.items() <= labels.items()
        }

    selectors = []
    for deployment in of_kind(objects, "Deployment"):
        selectors.append((deployment, deployment["spec"]["selector"]["matchLabels"]))
        for spread in pod_spec(deployment)["topologySpreadConstraints"]:
            selectors.append((deployment, spread["labelSelector"]["matchLabels"]))
    selectors += [(s, s["spec"]["selector"]) for s in of_kind(objects, "Service")]
    selectors += [
        (p, p["spec"]["selector"]["matchLabels"])
        for p in of_kind(objects, "PodDisruptionBudget")
    ]
    selectors += [
        (n, n["spec"]["podSelector"]["matchLabels"])
        for n in of_kind(objects, "NetworkPolicy")
    ]
    for owner, selector in selectors:
        name = f"{owner['kind']}/{owner['metadata']['name']}"
        assert "app.kubernetes.io/component" in selector, name
        assert picks(selector) == {component_of(owner)}, name


@pytest.mark.validators
@pytest.mark.parametrize(("profile", "mesh", "overlay"), RENDERS)
def test_pods_run_hardened_as_image_user(baked, profile, mesh, overlay):
    project = baked(profile=profile, service_mesh=mesh)
    objects = render(project, overlay)
    (image_user,) = dockerfile_users(project)
    accounts = {sa["metadata"]["name"]: sa for sa in of_kind(objects, "ServiceAccount")}
    for deployment in of_kind(objects, "Deployment"):
        pod = pod_spec(deployment)
        context = pod["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"]) == image_user
        assert context["runAsNonRoot"] is True
        assert context["fsGroup"] == image_user[1]
        assert context["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        account = accounts[pod["serviceAccountName"]]
        assert account["automountServiceAccountToken"] is False
        strategy = deployment["spec"]["strategy"]["rollingUpdate"]
        assert (strategy["maxUnavailable"], strategy["maxSurge"]) == (0, 1)
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            hardening = container["securityContext"]
            assert hardening["readOnlyRootFilesystem"] is True
            assert hardening["allowPrivilegeEscalation"] is False
            assert hardening["capabilities"]["drop"] == ["ALL"]
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind])


@pytest.mark.validators
@pytest.mark.parametrize(("profile", "mesh", "overlay"), RENDERS)
def test_settings_fit_limits_and_drain(baked, profile, mesh, overlay):
    objects = render(baked(profile=profile, service_mesh=mesh), overlay)
    (config_map,) = of_kind(objects, "ConfigMap")
    settings = config_map["data"]
    drain = go_duration_seconds(settings["SHUTDOWN_DELAY"]) + go_duration_seconds(
        settings["SHUTDOWN_TIMEOUT"]
    )
    assert go_duration_seconds(settings["SHUTDOWN_DELAY"]) == 5
    assert settings["LOG_LEVEL"] == ("debug" if overlay == "development" else "info")
    for deployment in of_kind(objects, "Deployment"):
        pod = pod_spec(deployment)
        assert pod["terminationGracePeriodSeconds"] > drain
        for container in pod["containers"]:
            env = {e["name"]: e for e in container["env"]}
            limit = quantity_bytes(container["resources"]["limits"]["memory"])
            ratio = gomemlimit_bytes(env["GOMEMLIMIT"]["value"]) / limit
            assert 0.8 <= ratio <= 0.95, f"GOMEMLIMIT is {ratio:.0%} of the limit"
            (source,) = container["envFrom"]
            assert source["configMapRef"]["name"] == config_map["metadata"]["name"]
            needs_redis = profile != "api"
            assert ("REDIS_URL" in env) == needs_redis
            if needs_redis:
                assert "secretKeyRef" in env["REDIS_URL"]["valueFrom"]


@pytest.mark.validators
@pytest.mark.parametrize(("profile", "mesh", "overlay"), RENDERS)
def test_overlay_labels_images_namespace(baked, profile, mesh, overlay):
    objects = render(baked(profile=profile, service_mesh=mesh), overlay)
    (namespace,) = of_kind(objects, "Namespace")
    name = namespace["metadata"]["name"]
    assert name.startswith("example-service-")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "restricted"
    )
    recommended = {
        f"app.kubernetes.io/{key}"
        for key in ("name", "component", "part-of", "instance", "version", "managed-by")
    }
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == name
    for deployment in of_kind(objects, "Deployment"):
        template = deployment["spec"]["template"]["metadata"]
        for labels in (deployment["metadata"]["labels"], template["labels"]):
            assert recommended <= set(labels)
        version = template["labels"]["app.kubernetes.io/version"]
        (container,) = pod_spec(deployment)["containers"]
        component = component_of(deployment)
        assert container["image"] == f"{IMAGE_REPOSITORY}-{component}:{version}"
        assert container["imagePullPolicy"] == "IfNotPresent"
        annotations = template["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert int(annotations["prometheus.io/port"]) == ports["metrics"]


@pytest.mark.validators
@pytest.mark.parametrize(("profile", "mesh", "overlay"), RENDERS)
def test_network_policies_admit_needed_ports(baked, profile, mesh, overlay):
    objects = render(baked(profile=profile, service_mesh=mesh), overlay)
    deployments = {component_of(d): d for d in of_kind(objects, "Deployment")}
    for policy in of_kind(objects, "NetworkPolicy"):
        component = component_of(policy)
        (container,) = pod_spec(deployments[component])["containers"]
        served = {p["containerPort"] for p in container["ports"]}
        if mesh == "istio":
            served |= ISTIO_METRICS_PORTS | {15021}
        ingress = {
            port["port"] for rule in policy["spec"]["ingress"] for port in rule["ports"]
        }
        egress = {
            port["port"] for rule in policy["spec"]["egress"] for port in rule["ports"]
        }
        assert ingress <= served, f"{component} admits ports it does not serve"
        assert {p["containerPort"] for p in container["ports"]} <= ingress
        assert {53, 4318} <= egress
        assert (6379 in egress) == (profile != "api")
        assert (ISTIOD_PORT in egress) == (mesh == "istio")
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}


@pytest.mark.validators
@pytest.mark.parametrize(("profile", "mesh", "overlay"), RENDERS)
def test_mesh_settings_follow_option(baked, profile, mesh, overlay):
    objects = render(baked(profile=profile, service_mesh=mesh), overlay)
    if mesh == "none":
        assert "istio" not in json.dumps(objects)
        return
    for deployment in of_kind(objects, "Deployment"):
        template = deployment["spec"]["template"]["metadata"]
        assert template["labels"]["sidecar.istio.io/inject"] == "true"
        proxy = yaml.safe_load(template["annotations"]["proxy.istio.io/config"])
        assert proxy["holdApplicationUntilProxyStarts"] is True
        drain = go_duration_seconds(proxy["terminationDrainDuration"])
        assert drain < pod_spec(deployment)["terminationGracePeriodSeconds"]
    for service in of_kind(objects, "Service"):
        assert {p["appProtocol"] for p in service["spec"]["ports"]} == {"http"}


# ---------------------------------------------------------------------------
# Compose


def compose(project, *args, registry=True, **variables):
    """Run docker-compose in the bake with REGISTRY and VERSION set or unset."""
    env = {k: v for k, v in os.environ.items() if k not in ("REGISTRY", "VERSION")}
    if registry:
        env.update(REGISTRY="registry.example.com/team", VERSION="1.2.3")
    env.update(variables)
    return subprocess.run(
        [find_tool("docker-compose"), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def compose_config(project, filename):
    result = compose(project, "-f", filename, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]


def expected_services(profile):
    services = set(COMPONENTS[profile])
    return services | {"redis"} if profile != "api" else services


@pytest.mark.validators
@pytest.mark.parametrize("profile", PROFILE_PARAMS)
@pytest.mark.parametrize("filename", ["compose.yaml", "compose.prod.yaml"])
def test_compose_file_is_valid(baked, profile, filename):
    project = baked(profile=profile)
    result = compose(project, "-f", filename, "config", "--quiet")
    assert result.returncode == 0, result.stderr
    services = compose_config(project, filename)
    assert set(services) == expected_services(profile)
    for name, service in services.items():
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD", f"{name}: healthcheck not in exec form"
        expected = "redis-cli" if name == "redis" else "/healthcheck"
        assert test[1] == expected
        if name == "worker":
            assert test[2:] == ["--port", "9090"]
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", f"{name} publishes beyond loopback"
        for dependency in service.get("depends_on", {}).values():
            assert dependency["condition"] == "service_healthy"


@pytest.mark.validators
@pytest.mark.parametrize("profile", PROFILE_PARAMS)
def test_dev_compose_builds_development_target(baked, profile):
    project = baked(profile=profile)
    for name, service in compose_config(project, "compose.yaml").items():
        if name == "redis":
            continue
        build = service["build"]
        assert build["target"] == "development"
        assert build["args"]["COMPONENT"] == name
        assert {"UID", "GID"} <= set(build["args"])
        assert any(v["target"] == "/src" for v in service["volumes"])


@pytest.mark.validators
@pytest.mark.parametrize("profile", PROFILE_PARAMS)
def test_prod_compose_runs_hardened_images(baked, profile):
    project = baked(profile=profile)
    (image_user,) = dockerfile_users(project)
    for name, service in compose_config(project, "compose.prod.yaml").items():
        if name == "redis":
            assert "--appendonly" in service["command"]
            assert service["volumes"][0]["type"] == "volume"
            continue
        assert service["image"] == (
            f"registry.example.com/team/example-service-{name}:1.2.3"
        )
        assert service["user"] == "{}:{}".format(*image_user)
        assert service["read_only"] is True
        assert "/tmp" in service["tmpfs"]
        assert service["restart"] == "unless-stopped"
        assert service["labels"]["prometheus.io/scrape"] == "true"
        deploy = service["deploy"]
        assert deploy["replicas"] >= 1
        assert {"cpus", "memory"} <= set(deploy["resources"]["limits"])
        assert go_duration_seconds(service["stop_grace_period"]) > 25


@pytest.mark.validators
@pytest.mark.parametrize("profile", PROFILE_PARAMS)
def test_prod_compose_names_missing_variable(baked, profile):
    project = baked(profile=profile)
    unset = compose(project, "-f", "compose.prod.yaml", "config", registry=False)
    assert unset.returncode != 0
    assert "set REGISTRY to the registry path" in unset.stderr
    assert "ghcr.io/example" in unset.stderr

    no_version = compose(
        project,
        *("-f", "compose.prod.yaml", "config"),
        registry=False,
        REGISTRY="registry.example.com",
    )
    assert no_version.returncode != 0
    assert "set VERSION to the image tag" in no_version.stderr


@pytest.mark.parametrize("profile", PROFILE_PARAMS)
def test_development_image_has_healthcheck(baked, profile):
    # compose.yaml probes with /healthcheck, so the development target must
    # carry the probe binary as the runtime images do.
    stage = dockerfile_stage(baked(profile=profile), "development")
    assert "/healthcheck" in stage
