# cbcore on Debian 12: builds the binaries with the same package list as a
# developer machine (tools/deps.sh) and runs any of the daemons.
#   docker build -t cbcore .
FROM debian:12 AS build
WORKDIR /src
COPY tools/deps.sh tools/deps.sh
RUN tools/deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make -j"$(nproc)" build/bin/cb build/bin/cb-engine build/bin/cb-projector build/bin/cb-adapter build/bin/cb-api build/bin/cb-sla

FROM debian:12
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        libjansson4 librabbitmq4 libnats3.4 libevent-2.1-7 libevent-openssl-2.1-7 \
        libevent-pthreads-2.1-7 liblmdb0 libssl3 python3 ca-certificates util-linux \
    && rm -rf /var/lib/apt/lists/*
# The schemas and the Python runtime are read at run time from these paths.
COPY --from=build /src/schemas /opt/cbcore/schemas
COPY --from=build /src/adapters/runtimes /opt/cbcore/runtimes
# runtimes/cbcore is a link to the toolkit's package in the tree: the package itself
RUN rm -f /opt/cbcore/runtimes/cbcore
COPY --from=build /src/toolkit/python/cbcore /opt/cbcore/runtimes/cbcore
COPY --from=build /src/examples /opt/cbcore/examples
COPY --from=build /src/build/bin/ /usr/local/bin/
ENV CB_SCHEMA_DIR=/opt/cbcore/schemas CB_RUNTIME_DIR=/opt/cbcore/runtimes
WORKDIR /opt/cbcore
CMD ["cb", "help"]
