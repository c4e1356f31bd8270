#!/usr/bin/env bash
# Checks the Kubernetes manifests in deploy/k8s/ with kubeconform (strict: an
# unknown or misspelt field fails), against schemas made here from the
# Kubernetes OpenAPI document, not fetched from the web (no such access on the
# build machines).
#
# kubeconform: `go install`ed into $(go env GOBIN) or $(go env GOPATH)/bin and
# kept there, as scripts/install-minio.sh does for MinIO. Schemas: the
# Kubernetes swagger.json that the k8s.io/kube-openapi Go module (a dependency
# of kubeconform itself) ships as test data, converted by scripts/k8s-schemas.ts.
# Without go, or when either download fails, the check is skipped with a
# message and exit 0: it guards manifests, not the service.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly KUBECONFORM_VERSION=v0.8.0
# The kube-openapi that kubeconform $KUBECONFORM_VERSION requires; its
# pkg/schemaconv/testdata/swagger.json is Kubernetes v1.27.0's API.
readonly KUBE_OPENAPI_VERSION=v0.0.0-20260603220949-865597e52e25

skip() {
  echo "check-k8s: SKIPPED: $*"
  exit 0
}

command -v go >/dev/null 2>&1 || skip "go is not installed (needed to build kubeconform)"
gobin="$(go env GOBIN)"
if [[ -z "$gobin" ]]; then
  gopath="$(go env GOPATH)"
  gobin="${gopath%%:*}/bin"
fi
kubeconform="$gobin/kubeconform"

if [[ -x "$kubeconform" ]] && "$kubeconform" -h >/dev/null 2>&1; then
  echo "check-k8s: kubeconform already installed at $kubeconform"
else
  echo "check-k8s: installing kubeconform $KUBECONFORM_VERSION"
  go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" || skip "go install of kubeconform failed"
fi

openapi_dir="$(go mod download -json "k8s.io/kube-openapi@$KUBE_OPENAPI_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" ||
  skip "go mod download of k8s.io/kube-openapi failed"
swagger="$openapi_dir/pkg/schemaconv/testdata/swagger.json"
[[ -f "$swagger" ]] || skip "no swagger.json in $openapi_dir"

schemas="$(mktemp -d)"
trap 'rm -rf "$schemas"' EXIT
npx --no-install node scripts/k8s-schemas.ts "$swagger" "$schemas"

"$kubeconform" -strict -summary -output text \
  -schema-location "$schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
  deploy/k8s/*.yaml
