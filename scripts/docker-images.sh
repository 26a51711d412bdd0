#!/usr/bin/env bash
# Builds the images of the compose stack with nothing pulled: docker-images.sh [sluice] [kafka] [cassandra] (all three
# when none is named). Starts Docker when needed (scripts/dockerd.sh), makes the base image when it is not there
# (scripts/mkbase.sh), prepares the Kafka and Cassandra build contexts under build/docker/ from the jars that
# tests/services resolves with Maven (resolving them first when the cache lacks them), and writes deploy/.env with
# fresh random secrets when it does not exist. Tags: sluice:<version> and sluice:latest, sluice-kafka:<version>,
# sluice-cassandra:<version>, each also :latest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
say() { echo "images: $*" >&2; }
CACHE="$ROOT/.cache/services"
MVN=${MVN:-mvn}
want=("$@"); [ ${#want[@]} -gt 0 ] || want=(sluice kafka cassandra)

bash scripts/dockerd.sh
bash scripts/mkbase.sh
export DOCKER_BUILDKIT=0   # the classic builder: docker.io 20.10 has no buildx; it reads the local base image

pomver() { sed -n "s|.*<$2>\(.*\)</$2>.*|\1|p" "tests/services/$1/pom.xml" | head -n1; }

jars() { # set: the jars of tests/services/<set>/pom.xml in $CACHE/<set>/lib, as tests/services/run resolves them
  local set=$1 dir="$CACHE/$1" pom="tests/services/$1/pom.xml" sum
  sum=$(sha256sum "$pom" | cut -d' ' -f1)
  if [ -f "$dir/lib.complete" ] && [ "$(cat "$dir/lib.complete")" = "$sum" ]; then return 0; fi
  command -v "$MVN" >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq --no-install-recommends maven >/dev/null; }
  mkdir -p "$dir"
  (
    flock -w 900 9 || { say "timed out waiting for $dir/lib.lock"; exit 1; }
    [ -f "$dir/lib.complete" ] && [ "$(cat "$dir/lib.complete")" = "$sum" ] && exit 0
    say "$set: resolving jars with maven into $dir/lib"
    rm -rf "$dir/lib.tmp" "$dir/lib" "$dir/lib.complete"
    timeout 900 "$MVN" -B -q -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$dir/lib.tmp" >"$dir/mvn.log" 2>&1 || { tail -n 30 "$dir/mvn.log" >&2; exit 1; }
    mv "$dir/lib.tmp" "$dir/lib"
    echo "$sum" > "$dir/lib.complete"
  ) 9>"$dir/lib.lock"
}

context() { # set: build/docker/<set> = the jars + tests/services/<set>'s configs + deploy/<set>'s files
  local set=$1 ctx="$ROOT/build/docker/$1"
  jars "$set"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp -r "$CACHE/$set/lib" "$ctx/lib"
  cp tests/services/"$set"/*.properties tests/services/"$set"/*.yaml tests/services/"$set"/jvm.options "$ctx/" 2>/dev/null || true
  cp deploy/"$set"/* "$ctx/"
}

version=$(sed -n 's/^project(sluice VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || revision="$revision-dirty"
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)

for img in "${want[@]}"; do
  t0=$SECONDS
  case "$img" in
    sluice)
      docker build -q -f deploy/sluice/Dockerfile -t "sluice:$version" -t sluice:latest \
        --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg CREATED="$created" . >/dev/null
      tag="sluice:$version" ;;
    kafka|cassandra)
      context "$img"
      v=$(pomver "$img" "$img.version")
      docker build -q -t "sluice-$img:$v" -t "sluice-$img:latest" --build-arg VERSION="$v" "build/docker/$img" >/dev/null
      tag="sluice-$img:$v" ;;
    *) say "unknown image $img (sluice, kafka, cassandra)"; exit 2 ;;
  esac
  say "$tag built in $((SECONDS - t0)) s, $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1e6}')"
done

if [ ! -f deploy/.env ]; then
  umask 077
  gen() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
  cat > deploy/.env <<ENV
# Secrets and settings of deploy/compose.yaml, made by scripts/docker-images.sh (not in git). See docs/deploy.md.
COMPOSE_PROJECT_NAME=sluice
SLUICE_CONSOLE_TOKEN=$(gen)
SLUICE_REGISTRY_TOKEN=$(gen)
SLUICE_SCHEDULER_TOKEN=$(gen)
KAFKA_CLUSTER_ID=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)
ENV
  say "wrote deploy/.env (random tokens for the console, registry and scheduler)"
fi
