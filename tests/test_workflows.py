"""The GitHub Actions files of the baked service and of the template itself.

The fast tests parse the baked YAML and check what each answer changes: the
registry login and image names, the component matrix, the optional template
drift job, and the token permissions of every job. They also check that Jinja
left every GitHub expression (${{ ... }}) exactly as the template wrote it.

The tests marked validators run the tools GitHub users run on such files:
actionlint (with shellcheck for the run: scripts), check-jsonschema with the
SchemaStore schemas, yamllint with the service's settings, zizmor and checkov.
Each must report nothing.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import TEMPLATE_DIR, template_answers

TEMPLATE_WORKFLOW = (
    TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / ".github" / "workflows" / "ci.yaml"
)
OWN_WORKFLOW = TEMPLATE_DIR / ".github" / "workflows" / "test.yaml"

# The answer sets worth baking: every registry once with the default profile,
# every other profile once with the default registry (ghcr), and the drift check.
CASES = [
    *(
        {"registry": registry}
        for registry in ("ghcr", "ecr", "gar", "acr", "dockerhub")
    ),
    {"profile": "api"},
    {"profile": "worker"},
    {"cruft_check": "yes"},
]


def case_id(answers):
    return "-".join(f"{key}={value}" for key, value in answers.items())


# What each registry answer puts into the image job: the actions of its login
# steps (in order), the image repository that the default answers produce, the
# token permissions the job needs, and the secrets and variables it reads.
REGISTRIES = {
    "ghcr": {
        "login": ["docker/login-action"],
        "repository": "ghcr.io/example/example-service",
        "permissions": {
            "contents": "read",
            "packages": "write",
            "id-token": "write",
            "security-events": "write",
        },
        "secrets": {"GITHUB_TOKEN"},
        "vars": set(),
    },
    "ecr": {
        "login": [
            "aws-actions/configure-aws-credentials",
            "aws-actions/amazon-ecr-login",
        ],
        "repository": "123456789012.dkr.ecr.us-east-1.amazonaws.com/example-service",
        "permissions": {
            "contents": "read",
            "id-token": "write",
            "security-events": "write",
        },
        "secrets": {"AWS_ROLE_ARN"},
        "vars": {"AWS_REGION"},
    },
    "gar": {
        "login": ["google-github-actions/auth", "docker/login-action"],
        "repository": "us-docker.pkg.dev/example-project/services/example-service",
        "permissions": {
            "contents": "read",
            "id-token": "write",
            "security-events": "write",
        },
        "secrets": {"GCP_WORKLOAD_IDENTITY_PROVIDER", "GCP_SERVICE_ACCOUNT"},
        "vars": set(),
    },
    "acr": {
        "login": ["azure/login", "run: az acr login"],
        "repository": "example.azurecr.io/example-service",
        "permissions": {
            "contents": "read",
            "id-token": "write",
            "security-events": "write",
        },
        "secrets": {"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID"},
        "vars": set(),
    },
    "dockerhub": {
        "login": ["docker/login-action"],
        "repository": "docker.io/example/example-service",
        "permissions": {
            "contents": "read",
            "id-token": "write",
            "security-events": "write",
        },
        "secrets": {"DOCKERHUB_TOKEN"},
        "vars": {"DOCKERHUB_USERNAME"},
    },
}

COMPONENTS = {"api-worker": ["api", "worker"], "api": ["api"], "worker": ["worker"]}

# Jobs other than the image job need nothing but to read the repository.
READ_ONLY = {"contents": "read"}

# Steps that act on the pushed image, and so must not run on pull requests.
PUSH_ONLY_ACTIONS = (
    "aquasecurity/trivy-action",
    "anchore/sbom-action",
    "sigstore/cosign-installer",
)

EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)
PINNED_USES = re.compile(
    r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", re.MULTILINE
)


def answers_for(answers):
    """Return the full answers a bake with these overrides ends up with."""
    defaults = {
        key: value[0] if isinstance(value, list) else value
        for key, value in template_answers().items()
        if not key.startswith("_")
    }
    return defaults | answers


def load_workflow(path):
    # PyYAML reads the key "on" as the boolean True (YAML 1.1); put it back.
    workflow = yaml.safe_load(path.read_text())
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def step_action(step):
    """Return 'owner/repo' of a uses: step, or 'run: <first words>' of a script."""
    if "uses" in step:
        return step["uses"].split("@")[0]
    return "run: " + " ".join(step["run"].split()[:3])


def login_steps(job):
    """Return the steps between setting up Buildx and computing the tags."""
    actions = [step_action(step) for step in job["steps"]]
    start = actions.index("docker/setup-buildx-action") + 1
    end = actions.index("docker/metadata-action")
    return job["steps"][start:end]


def template_expressions():
    return set(EXPRESSION.findall(TEMPLATE_WORKFLOW.read_text()))


def search_path():
    """Return PATH with this Python's bin folder (the venv's tools) in front."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])


def tool(name):
    """Return the path of a validator, looked up next to this Python first."""
    found = shutil.which(name, path=search_path())
    if found is None:
        pytest.fail(f"{name} is not installed; run scripts/setup.sh")
    return found


def checkov():
    found = os.environ.get("CHECKOV") or shutil.which("checkov")
    if not found or not Path(found).exists():
        pytest.fail("checkov is not installed; run scripts/setup.sh (sets $CHECKOV)")
    return found


def run_tool(command, cwd):
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=dict(os.environ, PATH=search_path()),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(params=CASES, ids=case_id)
def case(request, baked):
    """(answers, project folder) for each answer set of CASES, baked once."""
    return answers_for(request.param), baked(**request.param)


# ---------------------------------------------------------------------------
# Shape of the baked files


def test_ci_none_leaves_no_github_folder(baked):
    project = baked(ci="none")
    assert not (project / ".github").exists()


def test_job_timeouts_and_permissions(case):
    _, project = case
    workflow = load_workflow(project / ".github/workflows/ci.yaml")
    assert workflow["permissions"] == READ_ONLY
    for name, job in workflow["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), name
        assert "permissions" in job, name
        if name != "image":
            assert job["permissions"] == READ_ONLY, name


def test_registry_changes_only_login_image_and_permissions(case):
    answers, project = case
    expected = REGISTRIES[answers["registry"]]
    text = (project / ".github/workflows/ci.yaml").read_text()
    image_job = load_workflow(project / ".github/workflows/ci.yaml")["jobs"]["image"]

    logins = login_steps(image_job)
    assert [step_action(step) for step in logins] == expected["login"]
    for step in logins:
        assert step["if"] == "env.PUSH == 'true'", step
    assert image_job["env"]["IMAGE"] == (
        expected["repository"] + "-${{ matrix.component }}"
    )
    assert image_job["permissions"] == expected["permissions"]
    assert set(re.findall(r"secrets\.(\w+)", text)) == expected["secrets"]
    assert set(re.findall(r"vars\.(\w+)", text)) == expected["vars"]


def test_matrix_builds_the_profile_components(case):
    answers, project = case
    image_job = load_workflow(project / ".github/workflows/ci.yaml")["jobs"]["image"]
    assert (
        image_job["strategy"]["matrix"]["component"] == COMPONENTS[answers["profile"]]
    )


def test_image_push_skipped_on_pull_requests(case):
    _, project = case
    image_job = load_workflow(project / ".github/workflows/ci.yaml")["jobs"]["image"]
    push = image_job["env"]["PUSH"]
    assert "github.event_name == 'push'" in push
    steps = {step_action(step): step for step in image_job["steps"]}

    build = steps["docker/build-push-action"]["with"]
    assert build["push"] == "${{ env.PUSH == 'true' }}"
    assert build["target"] == "production"
    assert build["platforms"] == "linux/amd64,linux/arm64"
    assert "COMPONENT=${{ matrix.component }}" in build["build-args"]
    assert "env.PUSH == 'true'" in build["cache-to"]
    for action in PUSH_ONLY_ACTIONS:
        assert steps[action]["if"] == "env.PUSH == 'true'", action
    sign = next(s for s in image_job["steps"] if "cosign sign" in s.get("run", ""))
    assert sign["if"] == "env.PUSH == 'true'"
    assert 'cosign sign --yes "${IMAGE}@${DIGEST}"' in sign["run"]
    assert "--type spdxjson --predicate sbom.spdx.json" in sign["run"]

    tags = steps["docker/metadata-action"]["with"]["tags"]
    assert "type=semver,pattern={{version}}" in tags
    assert "type=semver,pattern={{major}}.{{minor}}" in tags


def test_drift_job_follows_the_cruft_check_answer(case):
    answers, project = case
    jobs = load_workflow(project / ".github/workflows/ci.yaml")["jobs"]
    expected = str(answers["cruft_check"]).lower() in {"true", "yes", "y", "1", "on"}
    assert ("template-drift" in jobs) == expected


@pytest.mark.parametrize("answer", ["no", "false", "0", "False"])
def test_false_words_leave_out_the_drift_job(baked, answer):
    project = baked(cruft_check=answer)
    jobs = load_workflow(project / ".github/workflows/ci.yaml")["jobs"]
    assert "template-drift" not in jobs


def test_actions_pinned_to_commit_shas(case):
    _, project = case
    for path in [project / ".github/workflows/ci.yaml", OWN_WORKFLOW]:
        lines = [line.strip() for line in path.read_text().splitlines()]
        uses = [line.removeprefix("- ") for line in lines if "uses:" in line]
        assert uses, path
        for line in uses:
            assert PINNED_USES.fullmatch(line), f"{path.name}: {line}"


def test_dependabot_covers_actions_modules_and_base_images(case):
    _, project = case
    config = yaml.safe_load((project / ".github/dependabot.yml").read_text())
    ecosystems = {update["package-ecosystem"] for update in config["updates"]}
    assert ecosystems == {"github-actions", "gomod", "docker"}
    for update in config["updates"]:
        assert update["schedule"]["interval"] == "weekly"
        assert update["groups"]


# ---------------------------------------------------------------------------
# Jinja must not touch GitHub's own ${{ }} expressions


def test_github_expressions_survive_rendering(case):
    _, project = case
    text = (project / ".github/workflows/ci.yaml").read_text()
    baked_expressions = EXPRESSION.findall(text)
    assert baked_expressions
    # A ${{ whose closing braces Jinja removed would not be matched above.
    assert text.count("${{") == len(baked_expressions)
    # Every expression appears in the template source as it is: an expression
    # that Jinja rendered or altered would not.
    assert set(baked_expressions) <= template_expressions()
    for leftover in ("{%", "%}", "{#", "#}", "{{ cookiecutter", "cookiecutter."):
        assert leftover not in text


def test_every_template_expression_reaches_some_bake(baked):
    found = set()
    for answers in CASES:
        project = baked(**answers)
        found |= set(
            EXPRESSION.findall((project / ".github/workflows/ci.yaml").read_text())
        )
    assert template_expressions() == found


def test_user_text_cannot_break_the_yaml(bake):
    project = bake(
        project_name='Quote "and" colon: # hash',
        description="Backslash \\ percent % ${ dollar } été",
        owner="team: #1",
    )
    workflow = load_workflow(project / ".github/workflows/ci.yaml")
    assert workflow["permissions"] == READ_ONLY
    yaml.safe_load((project / ".github/dependabot.yml").read_text())


# ---------------------------------------------------------------------------
# External validators


def workflow_files(project):
    return [project / ".github/workflows/ci.yaml", OWN_WORKFLOW]


@pytest.mark.validators
def test_actionlint_with_shellcheck(case):
    _, project = case
    shellcheck = tool("shellcheck")
    result = run_tool(
        [
            tool("actionlint"),
            "-no-color",
            f"-shellcheck={shellcheck}",
            "-pyflakes=",
            *workflow_files(project),
        ],
        cwd=project,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.validators
def test_schemastore_schemas(case):
    _, project = case
    check = tool("check-jsonschema")
    workflows = run_tool(
        [
            check,
            "--builtin-schema",
            "vendor.github-workflows",
            *workflow_files(project),
        ],
        cwd=project,
    )
    assert workflows.returncode == 0, workflows.stdout + workflows.stderr
    dependabot = run_tool(
        [check, "--builtin-schema", "vendor.dependabot", ".github/dependabot.yml"],
        cwd=project,
    )
    assert dependabot.returncode == 0, dependabot.stdout + dependabot.stderr


@pytest.mark.validators
def test_yamllint_with_the_service_settings(case):
    _, project = case
    result = run_tool(
        [tool("yamllint"), "-s", "-c", ".yamllint.yaml", ".github", OWN_WORKFLOW],
        cwd=project,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.validators
def test_zizmor_finds_nothing(case):
    _, project = case
    # The service's .github folder contains its workflows and dependabot.yml.
    for target in (project / ".github", OWN_WORKFLOW):
        result = run_tool(
            [tool("zizmor"), "--offline", "--no-progress", target], project
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.validators
def test_checkov_finds_nothing(case, tmp_path):
    _, project = case
    # checkov silently skips workflows its own bundled schema rejects, so the
    # test also requires that it ran some checks.
    own = tmp_path / "template"
    shutil.copytree(TEMPLATE_DIR / ".github", own / ".github")
    for folder in (project, own):
        result = run_tool(
            [
                checkov(),
                "--directory",
                folder,
                "--framework",
                "github_actions",
                "--skip-download",
                "--output",
                "json",
            ],
            cwd=folder,
        )
        report = json.loads(result.stdout)
        assert report["summary"]["failed"] == 0, result.stdout
        assert report["summary"]["passed"] > 0, result.stdout
