#!/usr/bin/env bash
# Install everything the template's tests, demo and benchmark need, on a fresh
# Debian 12 machine with Go and Python 3.11: Debian packages (as root, or with
# sudo), two Python venvs and the pinned Go tools. Each step is skipped when
# its result is already there, so a second run takes a few seconds.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# buildah, podman and runc build and run images without a Docker engine.
# busybox-static is the shell of the stand-in builder image that the image
# tests assemble, and redis-server backs the queue tests.
debian_packages=(buildah podman runc busybox-static redis-server shellcheck git)

golangci_lint_version=v2.15.0
tools_bin="$root/.tools/bin"

log() { printf '==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_debian_packages() {
  local missing=()
  for package in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
      || missing+=("$package")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return
  fi
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}

# Create a venv and install a requirements file, unless the venv was last
# installed from exactly that file.
install_venv() {
  local venv=$1 requirements=$2
  if [ -f "$venv/.requirements" ] && cmp -s "$requirements" "$venv/.requirements"; then
    return
  fi
  log "installing $requirements into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/.requirements"
}

install_go_tools() {
  mkdir -p "$tools_bin"
  if ! "$tools_bin/golangci-lint" version 2>/dev/null | grep -q "${golangci_lint_version#v}"; then
    log "building golangci-lint $golangci_lint_version (takes a few minutes)"
    GOBIN="$tools_bin" GOTOOLCHAIN=local \
      go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$golangci_lint_version"
  fi
}

install_debian_packages
install_venv "$root/.venv" "$root/requirements.txt"
install_venv "$root/.venv-checkov" "$root/requirements-checkov.txt"
install_go_tools
log "setup complete"
