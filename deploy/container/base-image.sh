#!/bin/sh
# Makes the base image `debian:bookworm-slim` locally with debootstrap, for machines with a
# container engine but no registry in reach (deploy/Dockerfile starts FROM it). Slimmed the way
# the official image is: no docs, man pages or locales, no apt lists or caches, an empty
# machine-id and resolv.conf; apt's sources are this host's (/etc/apt/sources.list.d/debian.sources).
#   deploy/base-image.sh TAR            # make TAR (35-75 s, ~75 MB) unless it exists
#   docker import --change 'CMD ["bash"]' TAR debian:bookworm-slim
# Needs root and debootstrap (scripts/install-deps.sh test).
set -eu
tar_out=$1
[ -s "$tar_out" ] && exit 0
sources=/etc/apt/sources.list.d/debian.sources
mirror=$(sed -n 's/^URIs:[[:space:]]*//p' "$sources" 2>/dev/null | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}
rootfs=$(mktemp -d "${TMPDIR:-/tmp}/outpost-rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
  { tail -n 20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
echo 'APT::Install-Recommends "false";' >"$rootfs/etc/apt/apt.conf.d/docker-no-recommends"
find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
  "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
  "$rootfs"/var/log/*.log "$rootfs"/etc/apt/sources.list
if [ -s "$sources" ]; then
  cp "$sources" "$rootfs/etc/apt/sources.list.d/debian.sources"
else
  printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" >"$rootfs/etc/apt/sources.list.d/debian.sources"
fi
: >"$rootfs/etc/machine-id"
: >"$rootfs/etc/resolv.conf"
echo localhost >"$rootfs/etc/hostname"
tar --numeric-owner -C "$rootfs" -cf "$tar_out.tmp" .
mv "$tar_out.tmp" "$tar_out"
