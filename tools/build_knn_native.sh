#!/usr/bin/env bash
# Builds OpenSearch k-NN's JNI libraries for the faiss engine (libopensearchknn_{util,common,
# faiss}.so; generic x86-64, no AVX2/AVX-512 variants) from public source, into a cache outside
# the repository. The k-NN zip on Maven Central has no native libraries; with these the test
# node (tests/opensearch_node.py) loads them and the suite runs the faiss engine too.
#
#   tools/build_knn_native.sh K_NN_SOURCE FAISS_SOURCE
#
# K_NN_SOURCE: github.com/opensearch-project/k-NN at tag 2.19.6.0 (only its jni/ is used).
# FAISS_SOURCE: github.com/facebookresearch/faiss at the commit that tag pins as its
#   jni/external/faiss submodule (0cbc2a885cde923d80c4bf9c9d6f4d81665f3f64).
# Output: $REX_KNN_NATIVE (default ~/.cache/rex-search/knn-native-2.19.6.0). Needs cmake >= 3.24,
# g++ with OpenMP, and Debian's libopenblas-dev, liblapack-dev and gfortran (installed when
# missing, as root). About 2-3 minutes on 2 cores.
set -euo pipefail
KNN=${1:?usage: $0 K_NN_SOURCE FAISS_SOURCE}
FAISS=${2:?usage: $0 K_NN_SOURCE FAISS_SOURCE}
OUT=${REX_KNN_NATIVE:-$HOME/.cache/rex-search/knn-native-2.19.6.0}
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
export JAVA_HOME
if ! dpkg -s libopenblas-dev liblapack-dev gfortran >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q libopenblas-dev liblapack-dev gfortran \
    >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$KNN/jni" "$work/jni"
rm -rf "$work/jni/external/faiss" && cp -r "$FAISS" "$work/jni/external/faiss"
rm -rf "$work/jni/external/faiss/.git"
# k-NN's patches to faiss (multi-vector, shared IVF-PQ tables, range search, binary vectors);
# its CMake applies them with git, which needs a checkout: patch(1) with fuzz does the same.
for patch in "$work"/jni/patches/faiss/*.patch; do
  patch -d "$work/jni/external/faiss" -p1 -F3 -s --no-backup-if-mismatch < "$patch"
done
cmake -S "$work/jni" -B "$work/build" -DCONFIG_FAISS=ON -DAPPLY_LIB_PATCHES=false \
  -DAVX2_ENABLED=false -DAVX512_ENABLED=false -DAVX512_SPR_ENABLED=false \
  -DCMAKE_BUILD_TYPE=Release -DKNN_PLUGIN_VERSION=2.19.6.0 >"$work/cmake.log"
cmake --build "$work/build" -j"$(nproc)" --target opensearchknn_faiss opensearchknn_common \
  >"$work/build.log" || { tail -30 "$work/build.log" >&2; exit 1; }
mkdir -p "$OUT"
cp "$work"/jni/release/libopensearchknn_*.so "$OUT/"
echo "$OUT: $(cd "$OUT" && ls)"
