"""The three-node cluster and rex-search serve of docker/compose.yml, as containers, for the
tests that kill a node: the same interface as `OpenSearchCluster` (nodes, kill, restart,
wait_for, hosts), on free loopback ports and a project name of its own.

Needs a Docker engine, docker-compose and the images docker/build-images.sh builds (.ci/run
starts an engine and builds them where it can); `unavailable()` says what is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from tests.opensearch_node import NodeError, OpenSearchCluster, free_port, json_request

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker" / "compose.yml"
IMAGES = ("rex-opensearch:2.19.6", "rex-search:local")
SERVICE = "rex-search"


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def unavailable() -> str | None:
    """Why the container tests cannot run here, or None."""
    if not shutil.which("docker") or not shutil.which("docker-compose"):
        return "docker and docker-compose are not installed"
    try:
        if _docker("info").returncode != 0:
            return f"no Docker engine answers (DOCKER_HOST={os.environ.get('DOCKER_HOST')})"
    except subprocess.TimeoutExpired:
        return "the Docker engine does not answer"
    missing = [i for i in IMAGES if _docker("image", "inspect", i).returncode != 0]
    if missing:
        return f"images {', '.join(missing)} are not built (run docker/build-images.sh)"
    return None


class ComposeNode:
    """One OpenSearch container of the project."""

    def __init__(self, compose: ComposeCluster, name: str, port: int) -> None:
        self.compose, self.name, self.port = compose, name, port
        self.killed = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        state = _docker("inspect", "-f", "{{.State.Running}}", self.compose.container(self.name))
        return state.stdout.strip() == "true"

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        return json_request(self.url, method, path, body)

    def launch(self) -> None:
        self.killed = False
        self.compose.run("start", self.name)

    def kill(self) -> None:
        """SIGKILL the container's node, as a crash would."""
        self.killed = True
        self.compose.run("kill", "-s", "SIGKILL", self.name)

    def stop(self) -> None:
        self.compose.run("stop", self.name)

    def log_tail(self, lines: int = 15) -> str:
        return self.compose.run("logs", "--no-color", "--tail", str(lines), self.name,
                                check=False)


class ComposeCluster(OpenSearchCluster):
    """docker/compose.yml's os1..os3 and rex-search, each on a free port."""

    def __init__(self, heap: str = "512m") -> None:
        self.project = f"rex-test-{uuid.uuid4().hex[:8]}"
        ports = {f"REX_OS_PORT_{i}": free_port() for i in (1, 2, 3)}
        ports |= {f"REX_OS_TRANSPORT_{i}": free_port() for i in (1, 2, 3)}
        self.service_port = free_port()
        self.env = dict(os.environ, **{k: str(v) for k, v in ports.items()},
                        REX_SERVICE_PORT=str(self.service_port), REX_OS_HEAP=heap,
                        REX_CLUSTER_NAME=self.project)
        self.nodes = [ComposeNode(self, f"os{i}", ports[f"REX_OS_PORT_{i}"]) for i in (1, 2, 3)]

    @property
    def service_url(self) -> str:
        """rex-search serve in its container (/v1/embed answers before any index exists)."""
        return f"http://127.0.0.1:{self.service_port}"

    def container(self, service: str) -> str:
        return self.run("ps", "-q", service).strip()

    def run(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["docker-compose", "-f", str(COMPOSE_FILE), "-p", self.project,
                               *args], capture_output=True, text=True, env=self.env,
                              timeout=300)
        if check and done.returncode != 0:
            raise NodeError(f"docker-compose {' '.join(args)}: {done.stderr[-1500:]}")
        return done.stdout + done.stderr

    def start(self, timeout: float = 300.0) -> None:
        self.run("up", "-d", *[n.name for n in self.nodes], SERVICE)
        self.wait_for(len(self.nodes), "green", timeout)
        self._wait_for_service(timeout)

    def _wait_for_service(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.service_url}/health", timeout=5)
                return
            except urllib.error.HTTPError as exc:  # 503 "waiting for the index": embeds
                if json.load(exc).get("embed") == "ready":
                    return
            except OSError:
                pass
            time.sleep(1)
        raise NodeError(f"rex-search serve did not answer in {timeout:.0f} s: "
                        f"{self.run('logs', '--no-color', '--tail', '15', SERVICE, check=False)}")

    def stop(self) -> None:
        self.run("down", "-v", "--timeout", "20", check=False)
