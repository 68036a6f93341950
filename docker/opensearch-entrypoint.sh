#!/bin/sh
# Starts one node of the compose cluster from its environment (the plain distribution reads
# settings from -E flags only, not from the environment as the official image does).
set -eu
export OPENSEARCH_JAVA_OPTS="-Xms${HEAP:-512m} -Xmx${HEAP:-512m} -Dai.djl.offline=true -Dai.djl.onnx.disable_alternative=true"
exec /opt/opensearch/bin/opensearch \
  -E cluster.name="${CLUSTER_NAME:-rex-compose}" \
  -E node.name="${NODE_NAME:?NODE_NAME is required}" \
  -E network.host="${NETWORK_HOST:-127.0.0.1}" \
  -E http.port="${HTTP_PORT:-9200}" \
  -E transport.port="${TRANSPORT_PORT:-9300}" \
  -E discovery.seed_hosts="${SEED_HOSTS:?SEED_HOSTS is required}" \
  -E cluster.initial_cluster_manager_nodes="${MANAGER_NODES:?MANAGER_NODES is required}" \
  -E cluster.routing.allocation.disk.threshold_enabled=false \
  -E plugins.ml_commons.only_run_on_ml_node=false \
  -E plugins.ml_commons.native_memory_threshold=100 \
  -E plugins.ml_commons.jvm_heap_memory_threshold=100 \
  "$@"
