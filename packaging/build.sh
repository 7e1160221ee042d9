#!/usr/bin/env bash
# Build the sallyport .deb and .rpm for Linux:
#
#   packaging/build.sh VERSION OUTDIR
#
# VERSION is a semantic version (1.2.3, 1.2.3-rc.1); GOARCH (default: this
# machine's) picks the architecture. It writes OUTDIR/sallyport_VERSION_ARCH.deb
# and OUTDIR/sallyport-VERSION-1.RPMARCH.rpm (x86_64, aarch64), prints nothing when it succeeds
# and can run again (it overwrites the packages). nfpm runs as a Go tool of
# the separate module packaging/tools, so its dependencies stay out of the
# main module.
set -euo pipefail

if [ $# -ne 2 ] || [ -z "$1" ] || [ -z "$2" ]; then
	echo "usage: packaging/build.sh VERSION OUTDIR" >&2
	exit 2
fi
version=${1#v}
mkdir -p "$2"
out=$(cd "$2" && pwd)
cd "$(dirname "$0")/.."

arch=${GOARCH:-$(go env GOARCH)}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# The commit's date, not now: the same commit builds the same binary.
date=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo unknown)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

pkg=github.com/sallyport/sallyport/internal/version
CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath \
	-ldflags "-s -w -X $pkg.Version=$version -X $pkg.Commit=$commit -X $pkg.Date=$date" \
	-o "$work/sallyport" ./cmd/sallyport

# sallyport_VERSION_ARCH.deb (Debian's architecture names are Go's for
# amd64 and arm64); the .rpm keeps nfpm's name, NAME-VERSION-RELEASE.ARCH.rpm.
target() {
	if [ "$1" = deb ]; then
		echo "sallyport_${version}_${arch}.deb"
	fi
}

export SALLYPORT_BINARY=$work/sallyport SALLYPORT_VERSION=$version SALLYPORT_ARCH=$arch
for packager in deb rpm; do
	go tool -modfile=packaging/tools/go.mod nfpm package --config packaging/nfpm.yaml \
		--packager "$packager" --target "$out/$(target "$packager")" >"$work/nfpm.log" 2>&1 ||
		{ cat "$work/nfpm.log" >&2; exit 1; }
done
