"""A real OpenSearch node (or a cluster of several on loopback) assembled from Maven Central,
for the test suite and for ``make opensearch``.

OpenSearch publishes a runnable minimal distribution (``integ-test-zip``) and its plugins as zips
on Maven Central for other plugins' integration tests. The minimal distribution carries no
modules besides transport-netty4, so ``lang-painless`` (which k-NN extends) and
``analysis-common`` (the ``english`` analyzer) are built from their published jars. Versions
live here and nowhere else: 2.19.6 is the newest release whose distribution, k-NN,
job-scheduler, ml-commons and neural-search zips all resolve (3.x lacks ml-commons and
neural-search zips on Maven Central; see the note in README's OpenSearch section).

The k-NN zip on Maven Central has no native libraries: the faiss and nmslib engines cannot
load (touching them kills the node with UnsatisfiedLinkError), so the node is used with
``knn_engine=lucene``. Where tools/build_knn_native.sh has built k-NN's faiss JNI library from
public source into its cache (`knn_native_libs`), nodes load it and the faiss engine works.

Elasticsearch publishes one too (``org.elasticsearch.distribution.integ-test-zip``, served up to
8.19.x): it runs, but carries no ``analysis-common`` module (no ``english`` analyzer) and Maven
Central has no jar to build one from, so its tests create the index with the standard analyzer
(tests/backends/test_elasticsearch_node.py).

Usage: ``python -m tests.opensearch_node start [--port N] [--nodes 3]`` (foreground; Ctrl-C
stops it),
``python -m tests.opensearch_node assemble`` (download and build the node only).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

OPENSEARCH_VERSION = "2.19.6"
PLUGIN_VERSION = f"{OPENSEARCH_VERSION}.0"
DISTRIBUTION = f"org.opensearch.distribution.integ-test-zip:opensearch:{OPENSEARCH_VERSION}:zip"
# Install order matters: each plugin's dependencies first.
PLUGINS = ["opensearch-job-scheduler", "opensearch-knn", "opensearch-ml-plugin", "neural-search"]
# Modules the minimal distribution lacks: (name, plugin class, extended plugins, its own jars).
MODULES = [
    ("lang-painless", "org.opensearch.painless.PainlessPlugin", "",
     ["lang-painless", "opensearch-scripting-painless-spi", "antlr4-runtime", "asm"]),
    ("analysis-common", "org.opensearch.analysis.common.CommonAnalysisPlugin", "lang-painless",
     ["analysis-common"]),
    # oversample, truncate_hits, filter_query, ...: the rex-search pipeline's own processors
    ("search-pipeline-common",
     "org.opensearch.search.pipeline.common.SearchPipelineCommonModulePlugin", "",
     ["search-pipeline-common"]),
]
PAINLESS_POLICY = """grant {
  permission java.lang.RuntimePermission "createClassLoader";
  permission java.lang.RuntimePermission "getClassLoader";
};
"""
ELASTICSEARCH_VERSION = "8.19.21"
ELASTICSEARCH = ("org.elasticsearch.distribution.integ-test-zip:elasticsearch:"
                 f"{ELASTICSEARCH_VERSION}:zip")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path(os.environ.get("REX_OPENSEARCH_CACHE", REPO / ".cache" / "opensearch"))
# OpenSearch refuses to run as root; as root the node runs as this unprivileged user.
UNPRIVILEGED_UID = 65534  # nobody


class NodeError(RuntimeError):
    """The node could not be assembled or started; the message says why."""


def knn_native_libs() -> Path | None:
    """The folder of k-NN's JNI libraries tools/build_knn_native.sh built, if it did."""
    folder = Path(os.environ.get("REX_KNN_NATIVE", Path.home() / ".cache" / "rex-search" /
                                 f"knn-native-{PLUGIN_VERSION}"))
    return folder if (folder / "libopensearchknn_faiss.so").exists() else None


def java_home(engine: str = "opensearch") -> Path:
    """A JDK: Java 17 for OpenSearch 2.19 (11-21 supported), 21+ for Elasticsearch 8.19."""
    jvm = Path("/usr/lib/jvm")
    candidates = [os.environ.get("REX_OPENSEARCH_JAVA_HOME"), os.environ.get("JAVA_HOME"),
                  jvm / "java-17-openjdk-amd64", jvm / "temurin-21-jdk-amd64"]
    if engine == "elasticsearch":
        candidates = [os.environ.get("REX_ELASTICSEARCH_JAVA_HOME"),
                      jvm / "temurin-25-jdk-amd64", jvm / "temurin-21-jdk-amd64",
                      jvm / "java-21-openjdk-amd64"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "bin" / "java").exists():
            return Path(candidate)
    raise NodeError(f"no JDK found for {engine}: set REX_{engine.upper()}_JAVA_HOME")


def _maven(args: list[str], cwd: Path) -> None:
    if shutil.which("mvn") is None:
        raise NodeError("Maven (mvn) is not installed: it fetches OpenSearch from Maven Central")
    done = subprocess.run(["mvn", "-q", "-B", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise NodeError(f"mvn {' '.join(args)} failed:\n" + "\n".join(tail))


def _fetch(downloads: Path) -> None:
    """The distribution and plugin zips (no transitive deps), and the modules' jars."""
    artifacts = [DISTRIBUTION] + [f"org.opensearch.plugin:{p}:{PLUGIN_VERSION}:zip"
                                  for p in PLUGINS]
    for artifact in artifacts:
        _maven(["dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={downloads}"],
               downloads)
    deps = "".join(f"<dependency><groupId>org.opensearch.plugin</groupId><artifactId>{name}"
                   f"</artifactId><version>{OPENSEARCH_VERSION}</version></dependency>"
                   for name, *_ in MODULES)
    (downloads / "pom.xml").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>rex-search</groupId><artifactId>opensearch-modules</artifactId>"
        f"<version>1</version><dependencies>{deps}</dependencies></project>")
    _maven(["dependency:copy-dependencies", f"-DoutputDirectory={downloads / 'jars'}",
            "-DincludeScope=runtime"], downloads)


def _build_modules(home: Path, jars: Path) -> None:
    for name, classname, extended, prefixes in MODULES:
        folder = home / "modules" / name
        folder.mkdir(parents=True)
        for jar in jars.glob("*.jar"):
            if any(jar.name.startswith(f"{prefix}-") for prefix in prefixes):
                shutil.copy2(jar, folder)
        (folder / "plugin-descriptor.properties").write_text(
            f"description={name} (assembled from its Maven Central jar)\n"
            f"version={OPENSEARCH_VERSION}\nname={name}\nclassname={classname}\n"
            f"java.version=11\nopensearch.version={OPENSEARCH_VERSION}\n"
            f"extended.plugins={extended}\nhas.native.controller=false\n")
        if name == "lang-painless":
            (folder / "plugin-security.policy").write_text(PAINLESS_POLICY)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _build_once(home: Path, build: Callable[[Path], Path], stamp: dict) -> Path:
    """``home``, built by ``build(work folder)`` unless already there: under a lock, built
    aside and moved into place last, so a killed build leaves nothing half-made."""
    with _locked(home.parent / ".lock"):
        marker = home / ".assembled"
        if marker.exists() and json.loads(marker.read_text()) == stamp:
            return home
        work = Path(tempfile.mkdtemp(prefix="assemble-", dir=home.parent))
        try:
            built = build(work)
            (built / ".assembled").write_text(json.dumps(stamp))
            shutil.rmtree(home, ignore_errors=True)
            built.rename(home)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return home


def _unzip(archive: Path, into: Path, name: str) -> Path:
    with zipfile.ZipFile(archive) as z:
        z.extractall(into)
    built = into / name
    for script in (built / "bin").iterdir():
        script.chmod(0o755)
    return built


def _build_opensearch(work: Path) -> Path:
    downloads = work / "downloads"
    downloads.mkdir()
    _fetch(downloads)
    built = _unzip(downloads / f"opensearch-{OPENSEARCH_VERSION}.zip", work,
                   f"opensearch-{OPENSEARCH_VERSION}")
    _build_modules(built, downloads / "jars")
    env = dict(os.environ, JAVA_HOME=str(java_home()))
    for plugin in PLUGINS:
        zip_path = downloads / f"{plugin}-{PLUGIN_VERSION}.zip"
        done = subprocess.run([str(built / "bin" / "opensearch-plugin"), "install", "--batch",
                               zip_path.as_uri()], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise NodeError(f"installing {plugin} failed: {done.stdout[-800:]}"
                            f"{done.stderr[-800:]}")
    return built


def _build_elasticsearch(work: Path) -> Path:
    _maven(["dependency:copy", f"-Dartifact={ELASTICSEARCH}", f"-DoutputDirectory={work}"],
           work)
    return _unzip(work / f"elasticsearch-{ELASTICSEARCH_VERSION}.zip", work,
                  f"elasticsearch-{ELASTICSEARCH_VERSION}")


def assemble(cache: Path = DEFAULT_CACHE) -> Path:
    """OpenSearch with its plugins and modules, built once per version."""
    return _build_once(cache / f"opensearch-{OPENSEARCH_VERSION}", _build_opensearch,
                       {"opensearch": OPENSEARCH_VERSION, "plugins": PLUGINS,
                        "modules": [name for name, *_ in MODULES]})


def assemble_elasticsearch(cache: Path = DEFAULT_CACHE) -> Path:
    """Elasticsearch's minimal distribution, unpacked once per version."""
    return _build_once(cache / f"elasticsearch-{ELASTICSEARCH_VERSION}", _build_elasticsearch,
                       {"elasticsearch": ELASTICSEARCH_VERSION})


def json_request(url: str, method: str, path: str, body: dict | None = None) -> dict:
    """One JSON request to a node at ``url``."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free loopback port, never one this process handed out before: the kernel may offer
    a just-released port again, and two nodes (or a node and a service) must not share one."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


class OpenSearchNode:
    """One running node (OpenSearch, or Elasticsearch with ``engine="elasticsearch"``): its
    own config copy, data and logs under ``run_dir``."""

    def __init__(self, home: Path, run_dir: Path, port: int | None = None,
                 heap: str = "1g", engine: str = "opensearch",
                 knn_libs: Path | None = None) -> None:
        self.home, self.run_dir, self.engine = home, run_dir, engine
        # k-NN's JNI libraries (`knn_native_libs`): with them the faiss engine works
        self.knn_libs = knn_libs
        self.port = port or free_port()
        self.transport_port = free_port()
        self.heap = heap
        # A member of a multi-node cluster (`OpenSearchCluster` sets its discovery settings);
        # None: a single node.
        self.discovery: dict[str, object] | None = None
        self.killed = False  # by `kill`: its exit is expected
        self.process: subprocess.Popen | None = None
        self._prepare()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _prepare(self) -> None:
        config = self.run_dir / "config"
        shutil.copytree(self.home / "config", config)
        for sub in ("data", "logs"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        # jvm.options writes GC logs, error files and heap dumps relative to the working
        # folder; point them into this run's folders.
        options = (config / "jvm.options").read_text()
        for old, new in (("logs/gc.log", f"{self.run_dir}/logs/gc.log"),
                         ("logs/hs_err", f"{self.run_dir}/logs/hs_err"),
                         ("file=gc.log", f"file={self.run_dir}/logs/gc.log"),
                         ("ErrorFile=hs_err", f"ErrorFile={self.run_dir}/logs/hs_err"),
                         ("HeapDumpPath=data", f"HeapDumpPath={self.run_dir}/data")):
            options = options.replace(old, new)
        (config / "jvm.options").write_text(options)
        if self.knn_libs is not None:  # a copy the node's user can read (the cache may be
            # under root's home, which `nobody` cannot enter)
            self.knn_libs = Path(shutil.copytree(self.knn_libs, self.run_dir / "knn-native"))
        if os.geteuid() == 0:
            for path in [self.run_dir, *self.run_dir.rglob("*")]:
                os.chown(path, UNPRIVILEGED_UID, UNPRIVILEGED_UID)

    def start(self, timeout: float = 180.0) -> None:
        self.launch()
        self.wait_green(timeout)
        # One node: a replica could never be assigned and health would stay yellow, so every
        # index created here gets none (a template, kept in the cluster state across restarts).
        self.request("PUT", "/_index_template/rex-single-node", {
            "index_patterns": ["*"], "priority": 0,
            "template": {"settings": {"number_of_replicas": 0}}})

    def launch(self) -> None:
        """Start the process and return (`start` also waits for it and sets it up)."""
        self.killed = False
        discovery = self.discovery or {"discovery.type": "single-node"}
        settings: dict[str, object] = {
            **discovery, "network.host": "127.0.0.1",
            "http.port": self.port, "transport.port": self.transport_port,
            "path.data": self.run_dir / "data", "path.logs": self.run_dir / "logs",
            "cluster.routing.allocation.disk.threshold_enabled": "false",
        }
        java = str(java_home(self.engine))
        heap = f"-Xms{self.heap} -Xmx{self.heap}"
        if self.engine == "elasticsearch":
            settings["xpack.security.enabled"] = "false"  # plain HTTP on loopback, as osmem
            env = dict(os.environ, ES_JAVA_HOME=java, ES_JAVA_OPTS=heap,
                       ES_PATH_CONF=str(self.run_dir / "config"))
        else:
            settings.update({"plugins.ml_commons.only_run_on_ml_node": "false",
                             "plugins.ml_commons.native_memory_threshold": "100",
                             "plugins.ml_commons.jvm_heap_memory_threshold": "100"})
            # ml-commons runs ONNX models through DJL, which would fetch libtorch from the
            # internet for its helper engine; ONNX Runtime alone is enough (and offline).
            djl = "-Dai.djl.offline=true -Dai.djl.onnx.disable_alternative=true"
            if self.knn_libs is not None:  # the generic build: no AVX2/AVX-512 variants
                djl += f" -Djava.library.path={self.knn_libs}"
                settings.update({f"knn.faiss.{v}.disabled": "true"
                                 for v in ("avx2", "avx512", "avx512_spr")})
            env = dict(os.environ, JAVA_HOME=java, OPENSEARCH_JAVA_OPTS=f"{heap} {djl}",
                       OPENSEARCH_PATH_CONF=str(self.run_dir / "config"))
        env["HOME"] = str(self.run_dir)
        if self.knn_libs is not None:  # the faiss library links the util one by name
            env["LD_LIBRARY_PATH"] = str(self.knn_libs)
        args = [str(self.home / "bin" / self.engine)]
        for key, value in settings.items():
            args += ["-E", f"{key}={value}"]
        user = {"user": UNPRIVILEGED_UID, "group": UNPRIVILEGED_UID, "extra_groups": []} \
            if os.geteuid() == 0 else {}
        with open(self.run_dir / "logs" / "console.log", "ab") as log:
            self.process = subprocess.Popen(args, env=env, cwd=self.run_dir, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            **user)

    @property
    def name(self) -> str:
        """Its ``node.name`` in a cluster; its run folder's name alone."""
        return str((self.discovery or {}).get("node.name", self.run_dir.name))

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        """One JSON request to the node (for the fixture's own setup)."""
        return json_request(self.url, method, path, body)

    def wait_green(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise NodeError(f"{self.engine} exited with {self.process.returncode}: "
                                f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_cluster/health?wait_for_status="
                                            "green&timeout=2s", timeout=5) as response:
                    if json.load(response).get("status") == "green":
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(1)
        raise NodeError(f"{self.engine} did not turn green in {timeout:.0f} s: "
                        f"{self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        path = self.run_dir / "logs" / "console.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM (OpenSearch flushes and exits), SIGKILL if it does not within ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would: no flush, no goodbye."""
        self.killed = True
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class OpenSearchCluster:
    """``size`` nodes on loopback forming one cluster: each holds data and may be elected
    cluster manager, so any one can be killed and the others carry on."""

    def __init__(self, home: Path, run_dir: Path, size: int = 3, heap: str = "512m",
                 port: int | None = None) -> None:
        self.nodes = [OpenSearchNode(home, run_dir / f"node-{i}", port and port + i, heap=heap)
                      for i in range(size)]
        names = [f"node-{i}" for i in range(size)]
        seeds = ",".join(f"127.0.0.1:{n.transport_port}" for n in self.nodes)
        for name, node in zip(names, self.nodes, strict=True):
            node.discovery = {"cluster.name": f"rex-test-{run_dir.name}", "node.name": name,
                              "discovery.seed_hosts": seeds,
                              "cluster.initial_cluster_manager_nodes": ",".join(names)}

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def hosts(self, besides: int = 0) -> str:
        """The other nodes as a backend URL's ``hosts=`` value."""
        return ",".join(f"127.0.0.1:{n.port}" for i, n in enumerate(self.nodes) if i != besides)

    def start(self, timeout: float = 300.0) -> None:
        for node in self.nodes:
            node.launch()
        self.wait_for(len(self.nodes), "green", timeout)

    def live(self) -> Any:
        return next(n for n in self.nodes if n.running())

    def wait_for(self, nodes: int, status: str, timeout: float) -> dict:
        """Until the cluster has ``nodes`` nodes and is at least ``status``; its health."""
        deadline = time.monotonic() + timeout
        health: dict = {}
        while time.monotonic() < deadline:
            for node in self.nodes:
                if not node.running() and not node.killed:
                    raise NodeError(f"{node.name} stopped: {node.log_tail()}")
            try:
                health = self.live().request(
                    "GET", f"/_cluster/health?wait_for_nodes={nodes}&wait_for_status={status}"
                    "&timeout=2s")
                if not health.get("timed_out") and health.get("number_of_nodes") == nodes:
                    return health
            except (urllib.error.URLError, OSError, ValueError, StopIteration):
                pass
            time.sleep(1)
        raise NodeError(f"the cluster did not reach {nodes} nodes and {status} in "
                        f"{timeout:.0f} s (last health: {health}): {self.nodes[0].log_tail()}")

    def kill(self, index: int) -> None:
        """SIGKILL one node, as a crash would."""
        self.nodes[index].kill()

    def restart(self, index: int, timeout: float = 300.0) -> None:
        """Start a killed node again on its data; until the cluster is whole and green."""
        self.nodes[index].launch()
        self.wait_for(len(self.nodes), "green", timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["assemble", "start"])
    parser.add_argument("--port", type=int, default=9200,
                        help="the first node's HTTP port (the next nodes take the next ports)")
    parser.add_argument("--nodes", type=int, default=1, help="1, or a cluster of N nodes")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    started = time.monotonic()
    home = assemble(args.cache)
    print(f"OpenSearch {OPENSEARCH_VERSION} with {', '.join(PLUGINS)} at {home} "
          f"({time.monotonic() - started:.0f} s)")
    if args.command == "start":
        run_dir = Path(tempfile.mkdtemp(prefix="opensearch-run-"))
        os.chmod(run_dir, 0o755)  # as root the nodes run unprivileged and must reach it
        running: OpenSearchNode | OpenSearchCluster = \
            OpenSearchNode(home, run_dir, args.port) if args.nodes == 1 else \
            OpenSearchCluster(home, run_dir, args.nodes, heap="1g", port=args.port)
        started = time.monotonic()
        running.start()
        ports = [args.port + i for i in range(args.nodes)]
        hosts = f"&hosts={','.join(f'127.0.0.1:{p}' for p in ports[1:])}&shards=" \
                f"{args.nodes}&replicas=1" if args.nodes > 1 else ""
        print(f"green: {args.nodes} node(s) on ports {', '.join(map(str, ports))} after "
              f"{time.monotonic() - started:.0f} s (data in {run_dir}); use "
              f"'opensearch://127.0.0.1:{args.port}/products?knn_engine=lucene{hosts}'. "
              "Ctrl-C stops.")
        # SIGTERM (kill, a supervisor) stops the nodes too, not only Ctrl-C.
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            running.stop()
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
