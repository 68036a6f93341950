"""Cluster URLs: parsing, credentials and redaction.

    opensearch://[user:pass@]host:9200/products          plain HTTP (local clusters)
    opensearch+https://user:pass@host:9200/products      TLS, certificates verified by default
    elasticsearch+https://host:9200/products?api_key_env=ES_API_KEY

Query options: ``ca_certs=PATH`` (CA bundle), ``verify_certs=false`` (disables verification,
with a warning), ``timeout=SECONDS`` (default 30), ``dense=knn|faiss-local``,
``faiss_dir=PATH`` (where faiss-local keeps its file; default ./rex-vectors/<index>),
``api_key_env=NAME`` (read an API key from that environment variable, never from the URL),
``knn_engine=faiss|lucene`` (OpenSearch's k-NN engine for new indexes; default faiss, lucene
where the k-NN plugin has no native libraries, e.g. a node assembled from Maven Central).
Credentials are never logged or printed: use `redact` on anything that shows a URL.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from rex_search.errors import ConfigError

logger = logging.getLogger(__name__)
ENGINES = ("opensearch", "elasticsearch")
_OPTIONS = ("ca_certs", "verify_certs", "timeout", "dense", "faiss_dir", "api_key_env",
            "knn_engine", "embed", "embed_pipeline", "hosts",
            "shards", "replicas")
KNN_ENGINES = ("faiss", "lucene")


@dataclass(frozen=True)
class ClusterTarget:
    engine: str
    url: str  # scheme://host:port, no credentials
    index: str
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    timeout: float = 30.0
    dense: str = "knn"
    faiss_dir: str | None = None
    knn_engine: str = "faiss"
    # ``?embed=cluster``: the ingest pipeline that embeds documents inside the cluster
    # (`rex-search opensearch install-pipeline --embed`); None: rex-search embeds them.
    embed_pipeline: str | None = None
    # ``?hosts=h2:9200,h3:9200``: more nodes of the same cluster (same scheme and credentials);
    # the client spreads requests over all and a retry goes to another when one is down.
    more_urls: tuple[str, ...] = ()
    # A new index's primary shards and replicas (None: the cluster's default, 1 replica).
    shards: int = 1
    replicas: int | None = None

    @property
    def urls(self) -> list[str]:
        return [self.url, *self.more_urls]

    def __repr__(self) -> str:  # never show secrets, even in tracebacks
        return f"ClusterTarget({self.engine}, {self.url}/{self.index})"

    @property
    def display(self) -> str:
        return f"{self.engine}://{self.url.split('://', 1)[1]}/{self.index}"


def is_cluster_url(target: str) -> bool:
    return target.split("://", 1)[0].split("+", 1)[0] in ENGINES and "://" in target


def redact(text: str) -> str:
    """Replace the user:password@ of every URL inside ``text`` with ***@. Everything up to the
    token's *last* ``@`` is hidden, so a password holding an unencoded ``@`` or ``/`` is hidden
    whole (a path with an ``@`` is over-redacted, never under-redacted)."""
    return re.sub(r"(\w[\w+.-]*://)[^\s'\"]*@", r"\1***@", text)


def _split_userinfo(target: str) -> tuple[str, str | None, str | None]:
    """(URL without credentials, user, password); the credentials end at the last ``@`` before
    the query string, so unencoded ``@`` and ``/`` in a password are read correctly."""
    scheme, _, rest = target.partition("://")
    head, mark, query = rest.partition("?")
    if "@" not in head:
        return target, None, None
    userinfo, _, host = head.rpartition("@")
    user, _, password = userinfo.partition(":")
    return f"{scheme}://{host}{mark}{query}", unquote(user) or None, unquote(password) or None


def parse_target(target: str) -> ClusterTarget:
    bare, username, password = _split_userinfo(target)
    try:
        parts = urlsplit(bare)
    except ValueError as exc:  # "[::1" (an unclosed IPv6 bracket) and the like
        raise ConfigError(f"backend URL {redact(target)!r} cannot be parsed ({exc}); e.g. "
                          "opensearch://[::1]:9200/products") from None
    engine, _, tls = parts.scheme.partition("+")
    if engine not in ENGINES or tls not in ("", "https", "http"):
        raise ConfigError(f"unsupported backend URL {redact(target)!r}; expected "
                          "opensearch[+https]://host:port/index or elasticsearch[+https]://...")
    index = parts.path.strip("/")
    if not index or "/" in index or index.lower() != index:
        raise ConfigError(f"backend URL {redact(target)!r} needs one lower-case index name as its "
                          "path, e.g. opensearch://localhost:9200/products")
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown backend URL option(s) {', '.join(unknown)}; valid: "
                          f"{', '.join(_OPTIONS)}")
    verify = options.get("verify_certs", "true").lower() not in ("false", "0", "no")
    if not verify:
        logger.warning("TLS certificate verification is DISABLED for %s (verify_certs=false)",
                       parts.hostname)
    api_key = None
    if "api_key_env" in options:
        api_key = os.environ.get(options["api_key_env"])
        if not api_key:
            raise ConfigError(f"api_key_env={options['api_key_env']} names an unset variable")
    dense = options.get("dense", "knn")
    if dense not in ("knn", "faiss-local"):
        raise ConfigError(f"dense must be 'knn' or 'faiss-local', got {dense!r}")
    knn_engine = options.get("knn_engine", "faiss")
    if knn_engine not in KNN_ENGINES:
        raise ConfigError(f"knn_engine must be one of {', '.join(KNN_ENGINES)}, got "
                          f"{knn_engine!r}")
    embed = options.get("embed", "client")
    if embed not in ("client", "cluster"):
        raise ConfigError(f"embed must be 'client' or 'cluster', got {embed!r}")
    if embed == "cluster" and (engine != "opensearch" or dense != "knn"):
        raise ConfigError("embed=cluster needs an opensearch:// URL with dense=knn: the "
                          "cluster's ingest pipeline writes the vectors into its own index")
    if "embed_pipeline" in options and embed != "cluster":
        raise ConfigError("embed_pipeline is the ingest pipeline of embed=cluster; add "
                          "embed=cluster or drop it")
    embed_pipeline = options.get("embed_pipeline", "rex-rerank-embed") \
        if embed == "cluster" else None
    scheme = "https" if tls == "https" else "http"
    try:
        port = parts.port or 9200
    except ValueError:
        raise ConfigError(f"backend URL {redact(target)!r} has an invalid port: expected a "
                          "number from 1 to 65535, e.g. host:9200") from None
    try:
        timeout = float(options.get("timeout", 30))
    except ValueError:
        timeout = -1.0
    if not 0 < timeout <= 3600:
        raise ConfigError(f"timeout must be a number of seconds in (0, 3600], got "
                          f"{options.get('timeout')!r}")
    if not parts.hostname:
        raise ConfigError(f"backend URL {redact(target)!r} has no host")
    more_urls = tuple(f"{scheme}://{host}" for host in _more_hosts(options.get("hosts", "")))
    shards = _count_option(options, "shards", 1, 1, 1024)
    replicas = _count_option(options, "replicas", None, 0, 16)
    return ClusterTarget(
        engine=engine, url=f"{scheme}://{parts.hostname}:{port}", index=index,
        username=username, password=password, api_key=api_key,
        ca_certs=options.get("ca_certs"), verify_certs=verify,
        timeout=timeout, dense=dense, faiss_dir=options.get("faiss_dir"),
        knn_engine=knn_engine, embed_pipeline=embed_pipeline, more_urls=more_urls,
        shards=shards or 1, replicas=replicas,
    )


def _count_option(options: dict[str, str], name: str, default: int | None, low: int,
                  high: int) -> int | None:
    if name not in options:
        return default
    value = options[name]
    if not value.isdigit() or not low <= int(value) <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return int(value)


def _more_hosts(value: str) -> list[str]:
    """``hosts=a:9200,b:9201`` -> ["a:9200", "b:9201"]; each needs a host and a valid port."""
    out = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in item:
            raise ConfigError(f"hosts: {item!r} is not host:port (e.g. hosts=node2:9200,"
                              "node3:9200)")
        out.append(item)
    return out
