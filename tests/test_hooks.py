"""The hooks: input validation before generation, tailoring after it."""

import importlib.util
import subprocess
import sys
import textwrap

import pytest
import yaml

from conftest import TEMPLATE_DIR, go_env, run, template_answers

COOKIECUTTER = [sys.executable, "-m", "cookiecutter"]


def load_hook(name):
    """Import a hook as a module; its Jinja context is only read in main()."""
    spec = importlib.util.spec_from_file_location(name, TEMPLATE_DIR / "hooks" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pre_gen = load_hook("pre_gen_project.py")
post_gen = load_hook("post_gen_project.py")


def bake_cli(output_dir, *answers):
    return subprocess.run(
        [
            *COOKIECUTTER,
            "--no-input",
            "-o",
            str(output_dir),
            str(TEMPLATE_DIR),
            *answers,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


# Each case: answers given on the command line, then text the error must show.
# The pre-gen hook reports these; choice and yes/no answers outside their
# lists are rejected by cookiecutter itself before the hook runs.
INVALID_ANSWERS = {
    "slug-uppercase": (
        ["project_slug=Order_Service"],
        ["project_slug", "Order_Service"],
    ),
    "slug-leading-digit": (["project_slug=9lives"], ["project_slug", "'9lives'"]),
    "slug-trailing-dash": (["project_slug=orders-"], ["project_slug", "DNS-1123"]),
    "slug-too-long": (["project_slug=" + "a" * 57], ["project_slug", "at most 56"]),
    "slug-with-dot": (["project_slug=orders.v2"], ["project_slug", "'orders.v2'"]),
    "module-no-dot": (["module_path=example/orders"], ["module_path", "needs a dot"]),
    "module-keyword": (
        ["module_path=github.com/acme/type"],
        ["module_path", "keyword"],
    ),
    "module-space": (
        ["module_path=github.com/acme/my service"],
        ["module_path", "' '"],
    ),
    "module-v1": (["module_path=github.com/acme/orders/v1"], ["module_path", "/v1"]),
    "module-double-slash": (
        ["module_path=github.com//orders"],
        ["module_path", "empty"],
    ),
    "module-uppercase-host": (
        ["module_path=GitHub.com/acme/x"],
        ["module_path", "host"],
    ),
    "module-digit-package": (
        ["module_path=github.com/acme/9x"],
        ["module_path", "'9x'"],
    ),
    "module-windows-name": (
        ["module_path=github.com/acme/con"],
        ["module_path", "con"],
    ),
    "image-uppercase": (
        ["image_repository=ghcr.io/Acme/x"],
        ["image_repository", "lowercase"],
    ),
    "image-with-tag": (
        ["image_repository=ghcr.io/acme/x:1"],
        ["image_repository", "no tag"],
    ),
    "owner-empty": (["owner= "], ["owner", "empty"]),
    "owner-punctuation": (["owner=#!?"], ["owner", "letter or digit"]),
    "name-newline": (
        ["project_name=Two\nlines", "project_slug=two"],
        ["project_name", "control"],
    ),
    "go-unsupported": (["go_version=1.22"], ["go_version", "1.22"]),
    "profile-unknown": (["profile=cron"], ["profile", "cron"]),
    "boolean-unknown": (["git_init=maybe"], ["git_init", "maybe"]),
}


@pytest.mark.parametrize(
    ("answers", "expected"), INVALID_ANSWERS.values(), ids=INVALID_ANSWERS.keys()
)
def test_invalid_answer_rejected(tmp_path, answers, expected):
    output = tmp_path / "out"
    result = bake_cli(output, *answers)
    assert result.returncode != 0
    for text in expected:
        assert text in result.stderr
    assert not output.exists() or list(output.iterdir()) == []


@pytest.mark.parametrize("slug", ["..", "../..", "a/b", "."])
def test_path_slug_touches_nothing_outside(tmp_path, slug):
    # cookiecutter deletes <output>/<slug> when the pre-gen hook fails; for
    # ".." that is the output folder's parent, with this file in it.
    parent = tmp_path / "parent"
    parent.mkdir()
    keep = parent / "keep.txt"
    keep.write_text("keep")
    output = parent / "new"
    result = bake_cli(output, f"project_slug={slug}")
    assert result.returncode != 0
    assert "project_slug" in result.stderr
    assert keep.read_text() == "keep"
    leftovers = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert leftovers in (
        ["parent", "parent/keep.txt"],
        ["parent", "parent/keep.txt", "parent/new"],
    )
    assert not output.exists() or list(output.iterdir()) == []


def test_error_example_names_first_invalid_answer(tmp_path):
    result = bake_cli(tmp_path / "out", "module_path=nodot/x")
    assert "module_path=github.com/acme/order-service" in result.stderr


def test_every_problem_reported_at_once(tmp_path):
    result = bake_cli(tmp_path, "project_slug=Bad", "module_path=nodot/x", "owner= ")
    assert result.returncode != 0
    assert "project_slug='Bad'" in result.stderr
    assert "module_path='nodot/x'" in result.stderr
    assert "owner=' '" in result.stderr


# Text that is legal in answers but hard to escape: each case must bake, and
# tests/test_bake.py builds and tests the same cases.
AWKWARD_ANSWERS = {
    "quotes-and-backslashes": {
        "project_name": 'Billing "Core" \\ Ledger',
        "project_slug": "billing-core",
        "description": 'Says "hi" \\n, costs 100%: #1 $HOME ${HOME} `id`',
        "owner": "team: payments #7",
    },
    "non-ascii": {
        "project_name": "Zürich Größen Ω",
        "description": "Überweisungen — 日本語 — émoji 🚀",
        "owner": "Équipe Paiements",
    },
}


def yaml_strings(node):
    """Yield every string value in a parsed YAML document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from yaml_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from yaml_strings(value)


@pytest.mark.parametrize(
    "answers", AWKWARD_ANSWERS.values(), ids=AWKWARD_ANSWERS.keys()
)
def test_awkward_answers_bake(bake, answers):
    project = bake(**answers)
    yaml_files = [
        path
        for path in project.rglob("*")
        if path.suffix in (".yaml", ".yml") and path.is_file()
    ]
    assert yaml_files
    strings = set()
    for path in yaml_files:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            strings.update(yaml_strings(document))
    # The description reaches at least one YAML file (the catalog entry) intact.
    assert answers["description"] in strings


def test_slug_derived_from_name(bake):
    project = bake(project_name="Zürich Größen Ω")
    assert project.name == "zurich-grossen-o"


def test_long_name_gives_valid_slug(bake):
    project = bake(project_name=" ".join(["Long"] * 20))
    assert len(project.name) <= 56
    assert not project.name.endswith("-")


def test_choices_match_cookiecutter_json():
    answers = template_answers()
    for name, allowed in pre_gen.CHOICES.items():
        assert tuple(answers[name]) == allowed, name
    for name in pre_gen.BOOLEAN_ANSWERS:
        assert isinstance(answers[name], bool), name


BOOLEAN_WORDS = [
    *[("true", True), ("yes", True), ("1", True), ("Y", True), (True, True)],
    *[("false", False), ("no", False), ("0", False), ("off", False), (False, False)],
    *[("maybe", None), ("", None), ("2", None)],
]


@pytest.mark.parametrize(("word", "expected"), BOOLEAN_WORDS)
def test_parse_boolean(word, expected):
    assert pre_gen.parse_boolean(word) is expected


@pytest.mark.parametrize("word", ["no", "false", "0"])
def test_git_init_false_words(bake, word):
    project = bake(git_init=word)
    assert not (project / ".git").exists()


def test_git_init_true_makes_repository(bake, monkeypatch):
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Template Test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Template Test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.invalid")
    project = bake(git_init="yes")
    log = subprocess.run(
        ["git", "log", "--oneline"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(log.stdout.splitlines()) == 1


def test_prune_rules_name_answers_and_values():
    answers = template_answers()
    for rule in post_gen.PRUNE_RULES:
        for name, values in rule["when"].items():
            assert name in answers, rule["name"]
            for value in values:
                assert value in answers[name], (rule["name"], value)
        assert rule["remove"], rule["name"]


def test_prune_paths_exist_in_template():
    template = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
    for rule in post_gen.PRUNE_RULES:
        for relative in rule["remove"]:
            assert (template / relative).exists(), (rule["name"], relative)


# Module paths on which the pre-gen hook and golang.org/x/mod/module.CheckPath
# must agree. The hook may be stricter only where CHECK_STRICTER says why.
MODULE_PATHS = [
    "github.com/acme/orders",
    "github.com/acme/orders/v2",
    "github.com/acme/orders/v1",
    "github.com/acme/orders/v0",
    "github.com/acme/orders/v02",
    "gitlab.example.com/group/sub/orders",
    "example.com/a_b/c~d/e.f",
    "example.com/.hidden",
    "example.com/trailing.",
    "example.com/x//y",
    "example.com/x/",
    "/example.com/x",
    "-example.com/x",
    "nodot/x",
    "Example.com/x",
    "example.com/con",
    "example.com/aux.txt",
    "example.com/abc~1",
    "example.com/héllo",
    "example.com/with space",
    "example.com/x@y",
    "gopkg.in/yaml.v3",
    "gopkg.in/yaml",
    "example.com/...",
    "github.com/acme/type",
    "github.com/acme/9x",
    "github.com/acme/go-func/v3",
]

# Paths that CheckPath accepts but that the hook rejects, with the reason.
CHECK_STRICTER = {
    "github.com/acme/type": "goimports would name the package 'type', a keyword",
    "github.com/acme/9x": "goimports would name the package '9x', not an identifier",
    "github.com/acme/go-func/v3": "goimports would name the package 'func'",
}

CHECKPATH_PROGRAM = textwrap.dedent(
    """\
    package main

    import (
    \t"bufio"
    \t"fmt"
    \t"os"

    \t"golang.org/x/mod/module"
    )

    func main() {
    \tscanner := bufio.NewScanner(os.Stdin)
    \tfor scanner.Scan() {
    \t\tif err := module.CheckPath(scanner.Text()); err != nil {
    \t\t\tfmt.Println("invalid")
    \t\t} else {
    \t\t\tfmt.Println("valid")
    \t\t}
    \t}
    }
    """
)


@pytest.mark.go
def test_module_path_rules_match_go(tmp_path):
    (tmp_path / "main.go").write_text(CHECKPATH_PROGRAM)
    env = go_env()
    run(["go", "mod", "init", "example.com/checkpath"], tmp_path, env)
    run(["go", "get", "golang.org/x/mod@v0.43.0"], tmp_path, env)
    result = subprocess.run(
        ["go", "run", "."],
        cwd=tmp_path,
        env=env,
        input="\n".join(MODULE_PATHS) + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    verdicts = result.stdout.split()
    assert len(verdicts) == len(MODULE_PATHS)
    for path, verdict in zip(MODULE_PATHS, verdicts, strict=True):
        hook_accepts = pre_gen.check_module_path(path) is None
        if path in CHECK_STRICTER:
            assert verdict == "valid" and not hook_accepts, path
        else:
            assert hook_accepts == (verdict == "valid"), (path, verdict)
