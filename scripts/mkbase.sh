#!/usr/bin/env bash
# Makes the base image the Dockerfiles start FROM (debian:bookworm-slim) on a machine where no image registry is
# reachable: debootstrap --variant=minbase from the Debian mirror this machine's apt already uses, trimmed (no docs,
# man pages, locales, apt lists), then `docker import`ed under that tag. Does nothing when the tag already exists
# (SL_BASE_REBUILD=1 forces it). The image's apt sources are the machine's, so `apt-get install` inside image builds
# reaches the same mirror. Needs root (debootstrap), docker and debootstrap (installed when missing). ~2-4 min.
set -euo pipefail
TAG=${SL_BASE_IMAGE:-debian:bookworm-slim}
SUITE=bookworm
say() { echo "mkbase: $*" >&2; }

if [ "${SL_BASE_REBUILD:-0}" != 1 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  say "$TAG already present"; exit 0
fi
[ "$(id -u)" -eq 0 ] || { say "debootstrap needs root"; exit 1; }
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null

# The mirror: the first URIs of a deb822 source for the main archive, else the first `deb` line of sources.list.
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  mirror=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' "$f")
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
           awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; exit}}')
fi
[ -n "$mirror" ] || { say "no Debian mirror found in /etc/apt sources"; exit 1; }

work=$(mktemp -d /tmp/sluice-mkbase.XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/root"
say "debootstrap $SUITE from the machine's mirror into $root"
t0=$SECONDS
debootstrap --variant=minbase "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; say "debootstrap failed"; exit 1; }

# apt inside the image: the machine's own sources (same mirror, security updates included).
rm -f "$root/etc/apt/sources.list"
if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
  for f in /etc/apt/sources.list.d/*.sources; do
    grep -q "^URIs:.*debian" "$f" && cp "$f" "$root/etc/apt/sources.list.d/"
  done
else
  echo "deb $mirror $SUITE main" > "$root/etc/apt/sources.list"
fi
# Slim like the official -slim images: no docs, man pages or locales now or later; no recommends; no apt caches.
cat > "$root/etc/dpkg/dpkg.cfg.d/01-sluice-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > "$root/etc/apt/apt.conf.d/01-sluice-norecommends"
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
       "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
       "$root"/var/log/* "$root"/tmp/* 2>/dev/null || true
: > "$root/etc/machine-id" 2>/dev/null || true

tar --numeric-owner -C "$root" -c . | docker import \
  -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' -m "debootstrap --variant=minbase $SUITE (scripts/mkbase.sh)" - "$TAG" >/dev/null
say "$TAG imported in $((SECONDS - t0)) s: $(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}')"
