#!/usr/bin/env bash
# Builds the pinned btcd, btcctl, lnd, lncli, loopd and loop binaries used by tests/regtest/ from the Go module proxy
# (loopd/loop: Lightning Loop's own client, the reference peer of the loop-in interop test).
#
# Binaries go to a cache outside the checkout, keyed by version, so a fresh clone, CI and the demo share
# one build:   ${LOOPKIT_REGTEST_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/loopkit/bin}/{btcd,btcctl,lnd,lncli,loopd,loop}-<version>
# Idempotent: a binary that is already there is reused. Each binary is built into a temporary name and
# moved into place only when the build succeeded, so a half-built file is never reused.
# Versions and build tags: tests/regtest/versions.env.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../tests/regtest/versions.env
source "$here/tests/regtest/versions.env"

bin_dir="${LOOPKIT_REGTEST_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/loopkit/bin}"

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
  else
    echo "install-regtest: the Go toolchain (go) is not on PATH nor at /usr/local/go/bin/go; install Go >= 1.25" >&2
    exit 1
  fi
fi

export GOFLAGS="-buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# `--no-loop`: only btcd and lnd (what `deno task demo` needs); loopd/loop are for the interop test.
with_loop=1
if [ "${1:-}" = "--no-loop" ]; then with_loop=0; fi

want=(btcd btcctl lnd lncli)
if [ "$with_loop" = 1 ]; then want+=(loopd loop); fi
missing=0
for name in "${want[@]}"; do
  case "$name" in btcd | btcctl) v="$BTCD_VERSION" ;; loopd | loop) v="$LOOP_VERSION" ;; *) v="$LND_VERSION" ;; esac
  [ -x "$bin_dir/$name-$v" ] || missing=1
done
if [ "$missing" = 0 ]; then
  echo "install-regtest: binaries present in $bin_dir (lnd $LND_VERSION, btcd $BTCD_VERSION, loop $LOOP_VERSION)"
  exit 0
fi

mkdir -p "$bin_dir"
start=$(date +%s)

# Prints the module directory of module@version after downloading it (module cache, read-only).
module_dir() {
  local dir
  dir="$(go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    echo "install-regtest: go mod download $1 gave no module directory" >&2
    exit 1
  fi
  printf '%s\n' "$dir"
}

lnd_dir="$(module_dir "github.com/lightningnetwork/lnd@$LND_VERSION")"
required_btcd="$(cd "$lnd_dir" && go list -m -f '{{.Version}}' github.com/btcsuite/btcd)"
if [ "$required_btcd" != "$BTCD_VERSION" ]; then
  echo "install-regtest: lnd $LND_VERSION requires btcd $required_btcd but versions.env pins $BTCD_VERSION" >&2
  exit 1
fi
btcd_dir="$(module_dir "github.com/btcsuite/btcd@$BTCD_VERSION")"
if [ "$with_loop" = 1 ]; then loop_dir="$(module_dir "github.com/lightninglabs/loop@$LOOP_VERSION")"; fi

tmp="$(mktemp -d "$bin_dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# build <module dir> <package> <name> <version> [tags]
build() {
  local dir="$1" pkg="$2" name="$3" version="$4" tags="${5:-}"
  local out="$bin_dir/$name-$version"
  if [ -x "$out" ]; then
    echo "install-regtest: reusing $out"
    return
  fi
  echo "install-regtest: building $name $version (go $(go env GOVERSION))"
  (cd "$dir" && go build -tags "$tags" -ldflags "-s -w" -o "$tmp/$name" "$pkg")
  mv -f "$tmp/$name" "$out"
}

build "$btcd_dir" . btcd "$BTCD_VERSION"
build "$btcd_dir" ./cmd/btcctl btcctl "$BTCD_VERSION"
build "$lnd_dir" ./cmd/lnd lnd "$LND_VERSION" "$LND_TAGS"
build "$lnd_dir" ./cmd/lncli lncli "$LND_VERSION" "$LND_TAGS"
# loopd and loop build with their own go.mod, no build tags (the release build). Loop's go.mod replaces its two
# nested modules (swapserverrpc, looprpc) with ./ directories that a module zip does not carry, so the build runs
# in a writable copy of the module with those two modules placed where the replace lines point. The versions its
# go.mod requires are older than its tree (the release does not compile against them), so versions.env pins the
# newest ones the proxy serves.
if [ "$with_loop" = 1 ] && { [ ! -x "$bin_dir/loopd-$LOOP_VERSION" ] || [ ! -x "$bin_dir/loop-$LOOP_VERSION" ]; }; then
  loop_src="$tmp/loop-src"
  cp -r "$loop_dir" "$loop_src"
  for sub in swapserverrpc looprpc; do
    case "$sub" in swapserverrpc) sub_version="$LOOP_SWAPSERVERRPC_VERSION" ;; *) sub_version="$LOOP_LOOPRPC_VERSION" ;; esac
    cp -r "$(module_dir "github.com/lightninglabs/loop/$sub@$sub_version")" "$loop_src/$sub"
  done
  chmod -R u+w "$loop_src"
  # Two of Loop's replace targets are not served by the module proxy: dario.cat/mergo's GitHub path (the vanity
  # path itself serves the same v1.0.1) and a pre-release lnd/sqldb revision (it only drops a pgx v4 dependency;
  # the required v1.0.13 is served). Build against the served versions; go.sum gets their hashes from the
  # checksum database.
  (cd "$loop_src" && go mod edit -dropreplace=dario.cat/mergo -dropreplace=github.com/lightningnetwork/lnd/sqldb@v1.0.13 &&
    GOFLAGS="$GOFLAGS -mod=mod" go mod tidy -e >/dev/null 2>&1 || true)
  GOFLAGS="$GOFLAGS -mod=mod" build "$loop_src" ./cmd/loopd loopd "$LOOP_VERSION"
  GOFLAGS="$GOFLAGS -mod=mod" build "$loop_src" ./cmd/loop loop "$LOOP_VERSION"
fi

echo "install-regtest: built into $bin_dir in $(($(date +%s) - start)) s"
