# kbridge container image: plaintext Kafka in, verified TLS out.
#
#   docker build -t kbridge:latest .
#   docker run --rm -p 127.0.0.1:9092-9192:9092-9192 \
#       -v "$PWD/my.ini:/etc/kbridge/kbridge.ini:ro" kbridge:latest
#   docker run --rm -p 127.0.0.1:9092-9192:9092-9192 kbridge:latest \
#       --bootstrap-servers b-1.X.kafka.REGION.amazonaws.com:9094 --listen 0.0.0.0:9092 \
#       --advertised-host 127.0.0.1          (flags instead of a file: they replace CMD)
#
# Two stages: a full Debian 12 toolchain builds the binary with the Makefile's -Werror flags;
# the runtime stage is bookworm-slim with only the shared libraries kbridge links and the CA
# bundle, and runs as the unprivileged user kbridge (uid/gid 10001).
#
# tests/deploy/docker_check.sh (`make docker-check`) executes this file's RUN/COPY/USER steps
# in debootstrap roots, without a container engine. It understands FROM, ARG, ENV, WORKDIR,
# RUN, COPY [--from] [--chown] [--chmod], USER, EXPOSE, LABEL, HEALTHCHECK, STOPSIGNAL,
# ENTRYPOINT and CMD, and only the base images debian:bookworm and debian:bookworm-slim:
# keep to those, or teach the checker first.

# ---- build ------------------------------------------------------------------------------------
FROM debian:bookworm AS build

WORKDIR /src
# The build packages come from the project's one list (scripts/deps.list, group build), copied
# on its own first so this layer stays cached while the sources change.
COPY scripts/deps.sh scripts/deps.list scripts/
RUN set -eux; \
    DEBIAN_FRONTEND=noninteractive sh scripts/deps.sh build; \
    rm -rf /var/lib/apt/lists/*

# The context is an allow-list (.dockerignore): sources and deploy/docker/ only, never build
# directories, certificates or .git.
COPY . .

# `make` builds with -Wall -Wextra -Wshadow -Werror; the smoke run proves the binary links and
# starts. The stripped copy in /out is what the runtime stage takes.
RUN set -eux; \
    make -j"$(nproc)" BUILD=build; \
    build/kbridge --version; \
    install -D -m 0755 -s build/kbridge /out/kbridge; \
    /out/kbridge --version

# ---- runtime ----------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

LABEL org.opencontainers.image.title="kbridge" \
      org.opencontainers.image.description="Kafka TLS bridge: plaintext clients in, verified TLS to AWS MSK out"

# Runtime libraries only (what `ldd kbridge` lists; librdkafka is for `kbridge check
# --produce-test`) plus the CA bundle that verifies MSK's certificates. The user gets a fixed
# numeric id so Kubernetes' runAsNonRoot can check it.
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libevent-2.1-7 libevent-openssl-2.1-7 libssl3 libinih1 librdkafka1 libcurl4 ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 kbridge; \
    useradd --system --uid 10001 --gid kbridge --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin kbridge

COPY --from=build /out/kbridge /usr/local/bin/kbridge
# Container defaults: listen on every interface (published ports need it), advertise
# 127.0.0.1, admin HTTP on 0.0.0.0:9644 for HEALTHCHECK and kubelet probes. Mount your own
# file over it: -v ./kbridge.ini:/etc/kbridge/kbridge.ini:ro, or a ConfigMap.
COPY deploy/docker/kbridge.ini /etc/kbridge/kbridge.ini

# Numeric, not "kbridge": kubelet can only prove runAsNonRoot for a numeric USER.
USER 10001:10001

# 9092 bootstrap, 9093-9192 broker node ids 0..99 (broker_port_base 9093, max_node_id 99),
# 9644 admin HTTP.
EXPOSE 9092 9093-9192 9644

# slim has no curl or wget. curl would add 15 packages (5.5 MB: Kerberos, LDAP, SASL, SSH, RTMP
# libraries) to a 93 MB image for one GET. bash, already in the base image, opens the TCP
# connection itself via /dev/tcp and reads the status line; --timeout bounds it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9644 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && IFS= read -r -t 4 status <&3 && case $status in 'HTTP/1.'[01]' 200'*) exit 0 ;; *) exit 1 ;; esac"]

STOPSIGNAL SIGTERM
# The command is kbridge's arguments: the default file, or flags that replace it
# (`docker run kbridge:latest --bootstrap-servers HOST:PORT ...`, see docs/config.md), or
# `check ...` / `--check-config`.
ENTRYPOINT ["/usr/local/bin/kbridge"]
CMD ["-c", "/etc/kbridge/kbridge.ini"]
