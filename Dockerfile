# The gateway for the hosted setup (deploy/compose.yaml): a build stage with the Rust
# toolchain, then a slim runtime image with the binary, its default configuration for
# replicas (deploy/arbiter.toml) and the replay datasets. Tenants upload their plugins
# through the API, so the runtime image needs no toolchain.
#
#   docker build -t arbiter .
#
# Not built on the machine this repository is developed on (it has no container
# registry to pull the base images from); see the README.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p arbiter --locked \
 && cp target/release/arbiter /arbiter

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/arbiter --create-home arbiter
COPY --from=build /arbiter /usr/local/bin/arbiter
COPY deploy/arbiter.toml /etc/arbiter/arbiter.toml
COPY data/ /usr/share/arbiter/data/
USER arbiter
WORKDIR /var/lib/arbiter
EXPOSE 8080
# The store is PostgreSQL (ARBITER_STORE_URL); the data folder keeps only the compiled
# plugin cache, which each replica rebuilds on its own.
ENTRYPOINT ["arbiter", "serve", "--config", "/etc/arbiter/arbiter.toml", "--listen", "0.0.0.0:8080", "--data-dir", "/var/lib/arbiter"]
