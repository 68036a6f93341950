# One OpenSearch node: the distribution and plugins tests/opensearch_node.py assembles from Maven
# Central (build context: .cache/opensearch), on the Debian base docker/build-images.sh makes.
FROM rex-base:bookworm
RUN apt-get update -q && apt-get install -y -q --no-install-recommends \
        openjdk-17-jre-headless curl && rm -rf /var/lib/apt/lists/*
COPY node /opt/opensearch
COPY opensearch-entrypoint.sh /usr/local/bin/opensearch-entrypoint
RUN useradd --system --uid 1000 --home /opt/opensearch opensearch \
    && mkdir -p /opt/opensearch/data /opt/opensearch/logs \
    && chown -R opensearch /opt/opensearch && chmod 755 /usr/local/bin/opensearch-entrypoint
USER opensearch
WORKDIR /opt/opensearch
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
ENTRYPOINT ["/usr/local/bin/opensearch-entrypoint"]
