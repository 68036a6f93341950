#!/usr/bin/env bash
# Starts a Docker engine of the project's own (as root, on Debian): installs docker.io,
# docker-compose and debootstrap from the machine's apt sources where missing, then runs
# dockerd on its own socket and data root. Prints the DOCKER_HOST to use; exits 1 (saying
# why) where no engine can start. Stop it with: kill "$(cat /run/rex-docker.pid)"
set -euo pipefail
SOCK=${REX_DOCKER_SOCK:-/run/rex-docker.sock}
PACKAGES="docker.io docker-compose debootstrap"
if ! command -v dockerd >/dev/null || ! command -v docker-compose >/dev/null \
    || ! command -v debootstrap >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q $PACKAGES >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q $PACKAGES >/dev/null; }
fi
if DOCKER_HOST="unix://$SOCK" docker info >/dev/null 2>&1; then
  echo "unix://$SOCK"
  exit 0
fi
mkdir -p /var/lib/rex-docker
nohup dockerd --host "unix://$SOCK" --data-root /var/lib/rex-docker \
  --pidfile /run/rex-docker.pid >/var/log/rex-dockerd.log 2>&1 &
for _ in $(seq 60); do
  if DOCKER_HOST="unix://$SOCK" docker info >/dev/null 2>&1; then
    echo "unix://$SOCK"
    exit 0
  fi
  sleep 1
done
echo "dockerd did not start: $(tail -5 /var/log/rex-dockerd.log)" >&2
exit 1
