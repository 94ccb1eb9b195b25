# syntax=docker/dockerfile:1
# lapor-bridge container image.
#   docker build -t lapor-bridge .        (or: docker compose up --build, see compose.yaml)
#   docker run --rm -p 8080:8080 -e DATABASE_URL=postgres://user:pass@db/lapor_bridge \
#     -e LAPOR_BASE_URL=... -e LAPOR_API_TOKEN=... lapor-bridge
# The build needs no database: queries are checked at run time and the
# migrations are embedded into the binary from ./migrations.

FROM rust:1-bookworm AS builder
WORKDIR /src

# Dependencies first, in their own layer: rebuilt only when the manifest or
# the lock file changes.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

COPY src/ src/
COPY migrations/ migrations/
COPY config/ config/
COPY data/ data/
# COPY keeps the sources' modification times, which can be older than the
# placeholder build above: make sure cargo rebuilds the crate itself.
RUN touch src/main.rs src/lib.rs \
    && rm -rf target/release/.fingerprint/lapor-bridge-* \
    && cargo build --release --locked \
    && cp target/release/lapor-bridge /usr/local/bin/lapor-bridge

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 lapor-bridge \
    && useradd --system --uid 10001 --gid lapor-bridge --home-dir /nonexistent \
        --no-create-home --shell /usr/sbin/nologin lapor-bridge \
    && install -d -m 0750 -o lapor-bridge -g lapor-bridge /var/lib/lapor-bridge
# /var/lib/lapor-bridge: mount a volume there for the audit checkpoints
# (BRIDGE_AUDIT_CHECKPOINT_FILE); a named volume takes this owner.

COPY --from=builder /usr/local/bin/lapor-bridge /usr/local/bin/lapor-bridge
COPY --from=builder /src/config/lapor-bridge.example.toml /etc/lapor-bridge/lapor-bridge.example.toml

# Listen on every interface inside the container; publish the port to reach it.
ENV BRIDGE_LISTEN=0.0.0.0:8080
EXPOSE 8080
# GET /healthz on BRIDGE_LISTEN (an unspecified address is reached on
# loopback), by the binary itself: the image carries no HTTP client.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["lapor-bridge", "healthcheck"]

USER lapor-bridge
ENTRYPOINT ["lapor-bridge"]
CMD ["run"]
