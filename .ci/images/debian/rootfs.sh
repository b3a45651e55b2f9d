#!/usr/bin/env bash
# Builds a minimal Debian root filesystem for the local stand-in base image.
# usage: rootfs.sh <dir> <suite> <mirror> [<security-mirror>]
# The mirrors come from the machine's own apt sources (images.sh reads them); none is written here.
set -euo pipefail
dir=$1 suite=$2 mirror=$3 security=${4:-}

debootstrap --variant=minbase --include=ca-certificates "$suite" "$dir" "$mirror"

# apt sources inside the image: the same mirrors as the machine that built it
rm -f "$dir/etc/apt/sources.list"
mkdir -p "$dir/etc/apt/sources.list.d"
{
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" "$suite" "$suite"
  if [ -n "$security" ]; then
    printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$security" "$suite"
  fi
} > "$dir/etc/apt/sources.list.d/debian.sources"

# container-friendly apt/dpkg defaults (like the official debian image: no recommends, no docs)
cat > "$dir/etc/apt/apt.conf.d/90shop-standin" <<'CONF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Retries "3";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
CONF
cat > "$dir/etc/dpkg/dpkg.cfg.d/90shop-standin-nodoc" <<'CONF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
CONF
# no service may start while packages are installed during an image build
printf '#!/bin/sh\nexit 101\n' > "$dir/usr/sbin/policy-rc.d"
chmod 0755 "$dir/usr/sbin/policy-rc.d"

# the engine provides these at run time
: > "$dir/etc/resolv.conf"
echo localhost > "$dir/etc/hostname"

rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin "$dir"/var/lib/apt/lists/* \
       "$dir"/var/log/*.log "$dir"/var/log/apt/* "$dir"/tmp/*
