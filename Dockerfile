# cbcore's images, built from Debian 12 (docker build / podman build):
#   docker build -t cbcore .                    the daemons and cb (the default target)
#   docker build --target nats -t cbcore-nats .          nats-server with JetStream
#   docker build --target rabbitmq -t cbcore-rabbitmq .  rabbitmq-server
# docker-compose.yml builds all three. The brokers are Debian's packages, the
# versions the tests run against (nats-server 2.9, RabbitMQ 3.10), so the
# stack needs no registry but Debian's mirror.

# ---- build: the -dev packages and the compiler, then make
FROM debian:12 AS build
WORKDIR /src
COPY tools/deps.sh tools/deps.sh
RUN tools/deps.sh --build && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make -j"$(nproc)" build/bin/cb build/bin/cb-engine build/bin/cb-projector \
        build/bin/cb-adapter build/bin/cb-api build/bin/cb-sla \
    && strip build/bin/*

# ---- nats: nats-server as the user nats (the package's), JetStream data in /data
FROM debian:12 AS nats
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends nats-server curl ca-certificates \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && install -d -o nats -g nats /data
COPY deploy/nats.conf /etc/nats/nats.conf
USER nats
EXPOSE 4222 8222
HEALTHCHECK --interval=5s --timeout=5s --retries=12 \
    CMD curl -sf http://127.0.0.1:8222/healthz || exit 1
ENTRYPOINT ["nats-server", "-c", "/etc/nats/nats.conf"]

# ---- rabbitmq: rabbitmq-server as the user rabbitmq (the package's),
# data in /var/lib/rabbitmq
FROM debian:12 AS rabbitmq
# (policy-rc.d: the package must not try to start a service while it installs)
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
    && apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends rabbitmq-server \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d
COPY deploy/rabbitmq.conf /etc/rabbitmq/rabbitmq.conf
RUN echo "[rabbitmq_management]." >/etc/rabbitmq/enabled_plugins
USER rabbitmq
EXPOSE 5672 15672
HEALTHCHECK --interval=5s --timeout=10s --retries=24 \
    CMD rabbitmq-diagnostics -q check_port_connectivity || exit 1
CMD ["rabbitmq-server"]

# ---- cbcore (default): the libraries only, the binaries, run as cbcore
FROM debian:12 AS cbcore
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        libjansson4 librabbitmq4 libnats3.4 libevent-2.1-7 libevent-openssl-2.1-7 \
        libevent-pthreads-2.1-7 liblmdb0 libssl3 python3 ca-certificates util-linux passwd \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/cbcore --create-home cbcore
# The schemas and the Python runtime are read at run time from these paths.
COPY --from=build /src/schemas /opt/cbcore/schemas
COPY --from=build /src/adapters/runtimes /opt/cbcore/runtimes
# runtimes/cbcore is a link to the toolkit's package in the tree: the package itself
RUN rm -f /opt/cbcore/runtimes/cbcore
COPY --from=build /src/toolkit/python/cbcore /opt/cbcore/runtimes/cbcore
COPY --from=build /src/examples /opt/cbcore/examples
COPY --from=build /src/build/bin/ /usr/local/bin/
ENV CB_SCHEMA_DIR=/opt/cbcore/schemas CB_RUNTIME_DIR=/opt/cbcore/runtimes
# the store (a named volume in docker-compose.yml starts as this, owned by cbcore)
RUN mkdir -p /var/lib/cbcore/store && chown -R cbcore:cbcore /var/lib/cbcore
USER cbcore
WORKDIR /opt/cbcore
CMD ["cb", "help"]
