# syntax=docker/dockerfile:1
# trworker in a container: built with the official Rust image, run from a distroless image that holds the
# C runtime and nothing else (no shell, no package manager), as an unprivileged user.
#
#   docker build -t trworker .
#   docker run -p 8080:8080 -v trworker-data:/data trworker                 # local mode, demo workspace
#   docker run -p 8080:8080 --env-file twilio.env trworker                  # twilio mode
#
# Other commands run the same way: docker run --rm -v trworker-data:/data trworker workers

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target caches make rebuilds fast; the binary is copied out of the cache mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p trworker \
    && install -D -m 0755 target/release/trworker /out/trworker \
    && mkdir -p /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/trworker /usr/local/bin/trworker
# The data directory belongs to the image's unprivileged user (nonroot, uid 65532), so a new named volume
# mounted here is writable by it.
COPY --from=build --chown=65532:65532 /out/data /data
ENV TRWORKER_BIND=0.0.0.0 \
    PORT=8080 \
    TRWORKER_DATA_DIR=/data
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
USER nonroot
# Readiness of the server in this container (GET /readyz on PORT), without curl: the binary checks itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["trworker", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["trworker"]
CMD ["serve"]
