#!/usr/bin/env bash
# Installs the S3 server the tests run against (MinIO) with `go install`, into
# $(go env GOBIN) or $(go env GOPATH)/bin, unless a working one is already there.
#   --with-tusd   also install tusd, the reference tus server (benchmark peer only)
# A build takes minutes; if one is already running (same module), wait for it
# instead of starting a second that would race it for the same binary.
set -euo pipefail

usage() { echo "usage: $0 [--with-tusd]"; }

with_tusd=false
for arg in "$@"; do
  case "$arg" in
    --with-tusd) with_tusd=true ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

if ! command -v go >/dev/null 2>&1; then
  echo "install-minio: go is not installed; it is needed to build MinIO (go install)" >&2
  exit 1
fi

gobin="$(go env GOBIN)"
if [[ -z "$gobin" ]]; then
  gopath="$(go env GOPATH)"
  gobin="${gopath%%:*}/bin" # go install writes to the first GOPATH entry
fi

# Longest we wait for someone else's build before giving up.
readonly WAIT_LIMIT_SECONDS=1800

works() { "$1" --version >/dev/null 2>&1; }

version_of() { "$1" --version 2>/dev/null | head -n 1 || true; }

# install_tool NAME MODULE: NAME is the binary go install produces from MODULE.
install_tool() {
  local name="$1" module="$2" bin="$gobin/$1" started waited

  if [[ -x "$bin" ]] && works "$bin"; then
    echo "$name: already installed at $bin ($(version_of "$bin"))"
    return
  fi

  started=$SECONDS
  if pgrep -f "go install $module" >/dev/null; then
    echo "$name: a 'go install $module' is already running; waiting for it (up to ${WAIT_LIMIT_SECONDS}s)"
    while pgrep -f "go install $module" >/dev/null; do
      if ((SECONDS - started > WAIT_LIMIT_SECONDS)); then
        echo "$name: gave up after ${WAIT_LIMIT_SECONDS}s waiting for the running build" >&2
        exit 1
      fi
      sleep 5
    done
    waited=$((SECONDS - started))
    if [[ -x "$bin" ]] && works "$bin"; then
      echo "$name: installed at $bin by the build that was already running (waited ${waited}s; $(version_of "$bin"))"
      return
    fi
    echo "$name: the running build ended without a working $bin; building it now"
  fi

  started=$SECONDS
  go install "$module@latest"
  if ! works "$bin"; then
    echo "$name: go install $module@latest finished but $bin does not run" >&2
    exit 1
  fi
  echo "$name: built $module@latest into $bin in $((SECONDS - started))s ($(version_of "$bin"))"
}

install_tool minio github.com/minio/minio
if $with_tusd; then
  install_tool tusd github.com/tus/tusd/v2/cmd/tusd
fi
