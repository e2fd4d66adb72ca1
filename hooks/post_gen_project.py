"""Tailor the generated service by removing what the context variables exclude.

PRUNE_RULES is the only place that says which files each profile and option
removes. It is plain data so that every entry point reads the same table: this
hook for the cookiecutter CLI, the Backstage template's fs:delete steps (made
from it by scripts/render_backstage.py) and the tests. The hook only deletes,
so a run on its own output changes nothing, and it needs no network. It runs
git only when the git_init variable asks for it.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

# Each rule removes its paths (relative to the service root) when every context
# variable named in "when" has one of the listed values.
PRUNE_RULES = (
    {
        "name": "api-only profile has no worker or job queue",
        "when": {"profile": ["api"]},
        "remove": [
            "cmd/api/queue.go",
            "cmd/worker",
            "internal/api/jobs.go",
            "internal/api/jobs_test.go",
            "internal/config/queue.go",
            "internal/config/queue_test.go",
            "internal/jobs",
            "internal/queue",
            "internal/worker",
            "deploy/kubernetes/base/worker-deployment.yaml",
            "deploy/kubernetes/base/worker-hpa.yaml",
            "deploy/kubernetes/base/worker-networkpolicy.yaml",
            "deploy/kubernetes/base/worker-pdb.yaml",
            "deploy/kubernetes/base/worker-serviceaccount.yaml",
            "deploy/kubernetes/overlays/development/worker-patch.yaml",
            "deploy/kubernetes/overlays/production/worker-patch.yaml",
        ],
    },
    {
        "name": "worker-only profile has no HTTP API",
        "when": {"profile": ["worker"]},
        "remove": [
            "cmd/api",
            "internal/api",
            "internal/queue/memory",
            "deploy/kubernetes/base/api-deployment.yaml",
            "deploy/kubernetes/base/api-hpa.yaml",
            "deploy/kubernetes/base/api-networkpolicy.yaml",
            "deploy/kubernetes/base/api-pdb.yaml",
            "deploy/kubernetes/base/api-service.yaml",
            "deploy/kubernetes/base/api-serviceaccount.yaml",
            "deploy/kubernetes/overlays/development/api-patch.yaml",
            "deploy/kubernetes/overlays/production/api-patch.yaml",
        ],
    },
    {
        "name": "no CI workflows without GitHub Actions",
        "when": {"ci": ["none"]},
        "remove": [
            ".github",
        ],
    },
)

TRUE_WORDS = frozenset({"true", "yes", "y", "1", "on"})


def rule_applies(rule, context):
    return all(str(context.get(key)) in values for key, values in rule["when"].items())


def paths_to_remove(context):
    """Return the relative paths that the context excludes, in table order."""
    paths = []
    for rule in PRUNE_RULES:
        if rule_applies(rule, context):
            paths.extend(rule["remove"])
    return paths


def remove_path(root, relative):
    target = root / relative
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()


def wants_git(context):
    return str(context.get("git_init")).strip().lower() in TRUE_WORDS


def init_git_repository(root):
    commands = [
        ["git", "init", "--quiet", "--initial-branch=main"],
        ["git", "add", "--all"],
        ["git", "commit", "--quiet", "--message", "Generate service from template"],
    ]
    try:
        for command in commands:
            subprocess.run(command, cwd=root, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        # The service itself is complete, so a git failure (git missing, no
        # user.name configured) is reported without removing the project.
        print(f"warning: git_init failed: {error}", file=sys.stderr)
        print(f"Run 'git init' in {root} yourself.", file=sys.stderr)


def main():
    context = json.loads(r"""{{ cookiecutter | jsonify }}""")
    root = Path.cwd()
    for relative in paths_to_remove(context):
        remove_path(root, relative)
    if wants_git(context) and not (root / ".git").exists():
        if "_commit" in context:
            # cruft sets _commit and re-runs this hook in the temporary bakes
            # that its updates compare, where a .git folder would join the diff.
            print("note: git_init is skipped under cruft; run 'git init' yourself.")
        else:
            init_git_repository(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
