"""Validate the context variables before any file of the service is written.

Every answer that ends up in a file name, an image name, a Kubernetes object
or Go source is checked here. All problems are reported together, each with
the answer's name, the rejected value, the rule and a way to fix it, and the
hook exits 1 so that cookiecutter removes the half-made project folder.

Free text (project_name, description, owner) is not restricted beyond what a
single line of text needs: the template escapes it where it lands.
"""

import contextlib
import json
import os
import re
import shlex
import signal
import sys
from pathlib import Path

# Go releases the template builds and tests with. go.mod gets "go <release>.0".
SUPPORTED_GO_RELEASES = ("1.26", "1.27")

# The choices of cookiecutter.json. Answers from --replay, --config-file or a
# developer portal bypass cookiecutter's own choice check, so they are checked
# again here. tests/test_hooks.py fails when this table and cookiecutter.json
# disagree.
CHOICES = {
    "go_version": SUPPORTED_GO_RELEASES,
    "profile": ("api-worker", "api", "worker"),
    "runtime_image": ("scratch", "distroless"),
    "registry": ("ghcr", "ecr", "gar", "acr", "dockerhub"),
    "service_mesh": ("none", "istio"),
    "ci": ("github-actions", "none"),
    "license": ("Apache-2.0", "MIT", "proprietary"),
}

BOOLEAN_ANSWERS = ("cruft_check", "git_init")

# A valid value per answer, shown in the error message as the fix.
EXAMPLES = {
    "project_slug": "order-service",
    "module_path": "github.com/acme/order-service",
    "project_name": "Order Service",
    "description": "Takes and tracks orders.",
    "owner": "team-payments",
    "image_repository": "ghcr.io/acme/order-service",
    "go_version": "1.26",
    "cruft_check": "false",
    "git_init": "false",
}
TRUE_WORDS = frozenset({"true", "yes", "y", "1", "on"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "off"})

# Kubernetes names such as "<slug>-worker" must stay DNS-1123 labels of at most
# 63 characters, so the slug leaves room for the longest suffix.
LONGEST_NAME_SUFFIX = "-worker"
SLUG_MAX_LENGTH = 63 - len(LONGEST_NAME_SUFFIX)
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")

# Go keywords (The Go Programming Language Specification, "Keywords").
GO_KEYWORDS = frozenset(
    [
        "break",
        "case",
        "chan",
        "const",
        "continue",
        "default",
        "defer",
        "else",
        "fallthrough",
        "for",
        "func",
        "go",
        "goto",
        "if",
        "import",
        "interface",
        "map",
        "package",
        "range",
        "return",
        "select",
        "struct",
        "switch",
        "type",
        "var",
    ]
)

# Windows device names, rejected as path elements by golang.org/x/mod/module.
WINDOWS_RESERVED_NAMES = frozenset(
    ["con", "prn", "aux", "nul"]
    + [f"com{n}" for n in range(1, 10)]
    + [f"lpt{n}" for n in range(1, 10)]
)

# Image references as the OCI distribution spec names them: a lowercase
# registry host with an optional port, then lowercase path components.
IMAGE_REPOSITORY = re.compile(
    r"[a-z0-9]+([.-][a-z0-9]+)*(:[0-9]+)?"
    r"(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)+"
)


def parse_boolean(value):
    """Return the boolean an answer means, or None if it means neither."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def check_slug(slug):
    if len(slug) > SLUG_MAX_LENGTH:
        return (
            f"must be at most {SLUG_MAX_LENGTH} characters (it has {len(slug)}), "
            f"so that Kubernetes names such as '{slug[:8]}...{LONGEST_NAME_SUFFIX}' "
            "stay within the 63-character DNS label limit"
        )
    if not DNS_LABEL.fullmatch(slug):
        return (
            "must be a DNS-1123 label: lowercase letters, digits and '-', starting "
            "with a letter and ending with a letter or digit, for example "
            "'order-service'"
        )
    return None


def check_module_element(element):
    """Apply golang.org/x/mod/module's rules for one module path element."""
    if element == "":
        return "has an empty path element (a double or trailing '/')"
    if element.strip(".") == "":
        return f"has an invalid path element {element!r}"
    if element[0] == ".":
        return f"has a leading dot in path element {element!r}"
    if element[-1] == ".":
        return f"has a trailing dot in path element {element!r}"
    bad = [c for c in element if not (c.isascii() and (c.isalnum() or c in "-._~"))]
    if bad:
        return (
            f"has the character {bad[0]!r} in {element!r}; path elements may "
            "contain only ASCII letters, digits and '-._~'"
        )
    short = element.split(".", 1)[0]
    if short.lower() in WINDOWS_RESERVED_NAMES:
        return f"uses {element!r}, a name Windows reserves for devices"
    tilde = short.rfind("~")
    if 0 <= tilde < len(short) - 1 and short[tilde + 1 :].isdigit():
        return f"ends {element!r} with '~' and digits, like a Windows short name"
    return None


def check_major_version(path):
    """Reject the major version suffixes that Go modules do not allow."""
    if path.startswith("gopkg.in/"):
        if not re.search(r"\.v(0|[1-9][0-9]*)(-unstable)?$", path):
            return "is a gopkg.in path without a '.vN' version suffix"
        return None
    suffix = re.search(r"/v([0-9]+)$", path)
    if suffix and (suffix.group(1) in ("0", "1") or suffix.group(1).startswith("0")):
        return f"ends in '/v{suffix.group(1)}'; a major version suffix starts at /v2"
    return None


def assumed_package_name(path):
    """Guess the package name Go tools give an import path, as goimports does.

    The last element is used, skipping a major version suffix, without a
    "go-" prefix and cut at the first character that cannot be in a Go
    identifier.
    """
    elements = path.split("/")
    base = elements[-1]
    if re.fullmatch(r"v[0-9]+", base) and len(elements) > 1:
        base = elements[-2]
    base = base.removeprefix("go-")
    return re.match(r"[A-Za-z0-9_]*", base).group(0)


def check_module_path(path):
    if path == "":
        return "is empty; use a path such as 'github.com/acme/order-service'"
    if not path.isascii():
        return "contains non-ASCII characters; module paths are ASCII only"
    if path.startswith(("/", "-")):
        return f"starts with {path[0]!r}"
    for element in path.split("/"):
        problem = check_module_element(element)
        if problem:
            return problem
    host = path.split("/", 1)[0]
    if "." not in host:
        return f"needs a dot in its first element {host!r}, like 'github.com'"
    if not re.fullmatch(r"[a-z0-9.-]+", host):
        return f"has a first element {host!r} that is not a lowercase host name"
    problem = check_major_version(path)
    if problem:
        return problem
    name = assumed_package_name(path)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return (
            f"gives the package name {name!r}, which is not a Go identifier; "
            "end the path with an element that starts with a letter"
        )
    if name in GO_KEYWORDS:
        return f"gives the package name {name!r}, which is a Go keyword"
    return None


def check_free_text(value):
    if value.strip() == "":
        return "must not be empty"
    control = [c for c in value if ord(c) < 32 or ord(c) == 127]
    if control:
        return f"contains the control character {control[0]!r}; use one line of text"
    return None


def check_owner(value):
    problem = check_free_text(value)
    if problem:
        return problem
    if not re.search(r"[A-Za-z0-9]", value):
        return (
            "needs at least one ASCII letter or digit, because the catalog entry's "
            "owner reference is made from them"
        )
    return None


def check_image_repository(value):
    if value != value.lower():
        return "must be lowercase, as image references are"
    if not IMAGE_REPOSITORY.fullmatch(value):
        return (
            "must be a registry host followed by a repository path, for example "
            "'ghcr.io/acme/order-service', with no tag"
        )
    return None


def find_problems(context):
    """Return (answer name, message) for each invalid answer, in question order."""
    checks = [("project_slug", check_slug), ("module_path", check_module_path)]
    checks += [("project_name", check_free_text), ("description", check_free_text)]
    checks += [("owner", check_owner)]
    checks += [("image_repository", check_image_repository)]
    problems = []
    for name, check in checks:
        value = context.get(name)
        if not isinstance(value, str):
            problems.append((name, f"{name}: missing or not a string (got {value!r})"))
            continue
        problem = check(value)
        if problem:
            problems.append((name, f"{name}={value!r} {problem}"))
    for name, allowed in CHOICES.items():
        value = str(context.get(name))
        if value not in allowed:
            message = (
                f"{name}={value!r} is not one of the choices: {', '.join(allowed)}"
            )
            problems.append((name, message))
    for name in BOOLEAN_ANSWERS:
        if parse_boolean(context.get(name)) is None:
            message = (
                f"{name}={context.get(name)!r} is not a yes/no answer; "
                "use true/false, yes/no or 1/0"
            )
            problems.append((name, message))
    return problems


def slug_escapes_output(slug, project, output):
    """Report whether the project folder cookiecutter made lies outside -o.

    cookiecutter 2.7 creates <output dir>/<slug> before this hook runs and
    deletes that path when the hook fails. For a slug such as ".." the path is
    the output folder's parent, and for "a/b" the cleanup leaves "a" behind.
    """
    return output not in project.parents or "/" in slug or "\\" in slug


def remove_folders_made_for(project, output):
    """Remove the empty folders cookiecutter made for a slug that is a path."""
    folders = [project]
    if output in project.parents:
        folders += [folder for folder in project.parents if output in folder.parents]
    else:
        folders.append(output)
    for folder in folders:
        # A folder that is not empty contains more than cookiecutter put there.
        with contextlib.suppress(OSError):
            folder.rmdir()


def report(problems):
    print(
        "The service was not generated, because some answers are invalid:",
        file=sys.stderr,
    )
    for _, message in problems:
        print(f"  - {message}", file=sys.stderr)
    name = problems[0][0]
    print(
        f"Give a corrected value, for example: cookiecutter --no-input TEMPLATE "
        f"{name}={shlex.quote(EXAMPLES.get(name, '...'))}",
        file=sys.stderr,
    )


def main():
    context = json.loads(r"""{{ cookiecutter | jsonify }}""")
    problems = find_problems(context)
    if not problems:
        return 0
    report(problems)
    slug = str(context.get("project_slug", ""))
    project = Path.cwd().resolve()
    output = Path(context.get("_output_dir", ".")).resolve()
    if slug_escapes_output(slug, project, output):
        # Exiting non-zero would let cookiecutter delete the folder it made
        # for the slug, which here is not a folder it made. Stop it instead.
        remove_folders_made_for(project, output)
        sys.stderr.flush()
        os.kill(os.getppid(), signal.SIGKILL)
    return 1


if __name__ == "__main__":
    sys.exit(main())
