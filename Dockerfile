# The sagemaker-flight server. Untested here: this machine has no Docker engine.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin sagemaker-flight

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/sagemaker-flight /usr/local/bin/sagemaker-flight
EXPOSE 50051
ENTRYPOINT ["sagemaker-flight"]
CMD ["serve", "--listen", "0.0.0.0:50051"]
