#!/usr/bin/env bash
# Builds the images docker/compose.yml runs, with no image registry: a Debian base made with
# debootstrap from the machine's apt mirror and `docker import`ed (rex-base:bookworm),
# OpenSearch from the node tests/opensearch_node.py assembles from Maven Central
# (rex-opensearch:2.19.6) and rex-search from its wheel (rex-search:local).
# Needs root (debootstrap), a running Docker engine and the project's .venv. Idempotent: the
# base is made once; the other two are rebuilt (cached layers make that quick).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if ! docker image inspect rex-base:bookworm >/dev/null 2>&1; then
  rootfs=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >/dev/null
  tar -C "$rootfs" -c . | docker import - rex-base:bookworm >/dev/null
  rm -rf "$rootfs"
fi
home=$($PY -c 'from tests.opensearch_node import assemble; print(assemble())')
ctx=.cache/docker-context
rm -rf "$ctx" && mkdir -p "$ctx/opensearch" "$ctx/rex-search/wheels"
cp -al "$home" "$ctx/opensearch/node" 2>/dev/null || cp -a "$home" "$ctx/opensearch/node"
cp docker/opensearch-entrypoint.sh "$ctx/opensearch/"
docker build -q --network host -t rex-opensearch:2.19.6 -f docker/opensearch.Dockerfile \
  "$ctx/opensearch"
$PY -m pip wheel -q --no-deps --no-build-isolation -w "$ctx/rex-search/wheels" . 2>/dev/null
cp /etc/ssl/certs/ca-certificates.crt "$ctx/rex-search/"
docker build -q --network host -t rex-search:local -f docker/Dockerfile "$ctx/rex-search"
rm -rf "$ctx"
