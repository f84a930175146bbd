# The sagemaker-flight image: the server (`serve`, the default), and the
# `emulator` and `query` subcommands of the same binary (docker-compose.yml
# runs all three). Not built in CI, which has no Docker engine;
# tests/python/test_compose.py checks this file's ENTRYPOINT, CMD, ENV,
# EXPOSE and USER against the binary instead (README: Docker, for what was
# built and run by hand).
#
#   docker build -t sagemaker-flight .
#   docker run --rm -p 127.0.0.1:50051:50051 \
#       -e SAGEMAKER_FLIGHT_AUTH_TOKENS=change-me -e AWS_REGION=eu-west-1 sagemaker-flight

# Build: a release binary. build.rs compiles proto/ without protoc, and the
# TLS and AWS crates build with the compiler this image has.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin sagemaker-flight \
    && install -m 0755 target/release/sagemaker-flight /usr/local/bin/sagemaker-flight

# Run: a slim Debian with the CA certificates (AWS endpoints, grpc+tls://)
# and an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin sagemaker-flight
COPY --from=build /usr/local/bin/sagemaker-flight /usr/local/bin/sagemaker-flight
USER 10001
# A container is reached through its network interface, not loopback. The
# server still refuses to start there without authentication: set
# SAGEMAKER_FLIGHT_AUTH_TOKENS (or the other --auth-* options), or pass
# --allow-unauthenticated on a private network.
ENV SAGEMAKER_FLIGHT_LISTEN=0.0.0.0:50051
# Prometheus metrics (no authentication: publish this port to the scraper only).
ENV SAGEMAKER_FLIGHT_METRICS_LISTEN=0.0.0.0:9090
# 50051: Arrow Flight and Flight SQL, and grpc.health.v1 on the same port.
# 9090: Prometheus metrics.
EXPOSE 50051 9090
ENTRYPOINT ["sagemaker-flight"]
CMD ["serve"]
