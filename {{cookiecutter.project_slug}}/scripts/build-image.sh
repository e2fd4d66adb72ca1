#!/usr/bin/env bash
# Build the service's container images from the one Dockerfile: every target of
# every component by default, or those chosen. Used by `make image` and by CI.
#
#   scripts/build-image.sh [--target T]... [--component C]... [--secret SPEC]...
#                          [--platform P] [--image REPO] [--tag TAG] [-- BUILD-ARGS...]
#
#   --target     production, staging or development (repeatable; default: all)
#   --component  {{ "api or worker" if cookiecutter.profile == "api-worker" else ("api" if cookiecutter.profile == "api" else "worker") }} (repeatable; default: every component)
#   --secret     a build secret, for example id=netrc,src=$HOME/.netrc for a
#                private module proxy or git over HTTPS (never a build argument)
#   --platform   target platform, for example linux/arm64 (cross-compiles)
#   --image      image repository; the component is appended ("REPO-api")
#   --tag        tag of the production image (default: VERSION)
#
# Environment: BUILDER=docker|podman|buildah (default: the first one found),
# VERSION (default: git describe), COMMIT, BUILD_DATE (RFC 3339, UTC).
# Image names: REPO-COMPONENT:TAG, REPO-COMPONENT:TAG-staging, REPO-COMPONENT:dev.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

IMAGE_REPOSITORY='{{ cookiecutter.image_repository }}'
ALL_TARGETS=(production staging development)
ALL_COMPONENTS=({% if cookiecutter.profile != "worker" %}api{% endif %}{% if cookiecutter.profile == "api-worker" %} {% endif %}{% if cookiecutter.profile != "api" %}worker{% endif %}){% raw %}

usage() {
  # The header comment, without its comment marks.
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit "${1:-0}"
}

die() {
  echo "build-image.sh: $*" >&2
  exit 2
}

targets=()
components=()
secrets=()
platform=""
tag=""
extra=()

while (($# > 0)); do
  case "$1" in
    --target) targets+=("${2:?--target needs a value}"); shift 2 ;;
    --component) components+=("${2:?--component needs a value}"); shift 2 ;;
    --secret) secrets+=("${2:?--secret needs a value}"); shift 2 ;;
    --platform) platform="${2:?--platform needs a value}"; shift 2 ;;
    --image) IMAGE_REPOSITORY="${2:?--image needs a value}"; shift 2 ;;
    --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
    -h | --help) usage 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
done

((${#targets[@]} > 0)) || targets=("${ALL_TARGETS[@]}")
((${#components[@]} > 0)) || components=("${ALL_COMPONENTS[@]}")
for target in "${targets[@]}"; do
  [[ " ${ALL_TARGETS[*]} " == *" $target "* ]] || die "unknown target: $target"
done
for component in "${components[@]}"; do
  [[ " ${ALL_COMPONENTS[*]} " == *" $component "* ]] || die "unknown component: $component"
done

# ------------------------------------------------------------------------------
# Build stamp

VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
COMMIT="${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
BUILD_DATE="${BUILD_DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"
tag="${tag:-$VERSION}"

# ------------------------------------------------------------------------------
# Builder

if [[ -z "${BUILDER:-}" ]]; then
  if docker buildx version >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    BUILDER=docker
  elif command -v podman >/dev/null 2>&1; then
    BUILDER=podman
  elif command -v buildah >/dev/null 2>&1; then
    BUILDER=buildah
  else
    die "no docker (with buildx and a running engine), podman or buildah found"
  fi
fi

build_command() {
  case "$BUILDER" in
    docker) echo docker buildx build --load ;;
    # --format docker keeps HEALTHCHECK, which the OCI image format cannot hold.
    podman) echo podman build --layers --format docker ;;
    buildah) echo buildah bud --layers --format docker ;;
    *) die "BUILDER must be docker, podman or buildah, not $BUILDER" ;;
  esac
}

# The Go architecture name of this machine, which uname spells differently.
host_arch() {
  case "$(uname -m)" in
    x86_64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) uname -m ;;
  esac
}

# Print an image's uncompressed size in MB (10^6 bytes), as buildah does.
image_size() {
  local bytes
  case "$BUILDER" in
    docker) bytes=$(docker image inspect --format '{{.Size}}' "$1") ;;
    podman) bytes=$(podman image inspect --format '{{.Size}}' "$1") ;;
    buildah)
      buildah images --format '{{.Size}}' "$1"
      return
      ;;
  esac
  awk -v bytes="$bytes" 'BEGIN { printf "%.1f MB\n", bytes / 1000000 }'
}

image_name() {
  local component="$1" target="$2"
  case "$target" in
    production) echo "$IMAGE_REPOSITORY-$component:$tag" ;;
    staging) echo "$IMAGE_REPOSITORY-$component:$tag-staging" ;;
    development) echo "$IMAGE_REPOSITORY-$component:dev" ;;
  esac
}

read -r -a builder <<<"$(build_command)"
common=(
  --build-arg "VERSION=$VERSION"
  --build-arg "COMMIT=$COMMIT"
  --build-arg "BUILD_DATE=$BUILD_DATE"
)
if [[ -n "$platform" ]]; then
  common+=(--platform "$platform")
elif [[ "$BUILDER" != docker ]]; then
  # Older buildah and podman set TARGETOS and TARGETARCH only with --platform.
  common+=(--build-arg "TARGETOS=linux" --build-arg "TARGETARCH=$(host_arch)")
fi
for secret in "${secrets[@]}"; do
  common+=(--secret "$secret")
done

# ------------------------------------------------------------------------------
# Build

built=()
for component in "${components[@]}"; do
  for target in "${targets[@]}"; do
    name="$(image_name "$component" "$target")"
    args=("${common[@]}" --target "$target" --tag "$name")
    # COMPONENT is passed even when it is the default: buildah decides which
    # stages a target needs from the build arguments, not from ARG defaults.
    args+=(--build-arg "COMPONENT=$component")
    if [[ "$target" == development ]]; then
      args+=(--build-arg "UID=$(id -u)" --build-arg "GID=$(id -g)")
    fi
    echo "==> $name"
    "${builder[@]}" "${args[@]}" "${extra[@]}" .
    built+=("$name")
  done
done

echo
printf '%-60s %12s\n' IMAGE SIZE
for name in "${built[@]}"; do
  printf '%-60s %12s\n' "$name" "$(image_size "$name")"
done
{% endraw %}