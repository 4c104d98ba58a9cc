# outboxd container image: built and installed with the same scripts the README and CI use.
#   podman build -t outboxd .   (or docker build)
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY . .
RUN scripts/install-deps.sh --build \
 && BUILD_DIR=/src/build-image scripts/build.sh --release --no-tests \
 && cmake --install /src/build-image --prefix /opt/outboxd --strip

FROM debian:bookworm-slim
COPY scripts/install-deps.sh /usr/local/share/outboxd/install-deps.sh
RUN /usr/local/share/outboxd/install-deps.sh --runtime \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin outboxd
COPY --from=build /opt/outboxd/bin/outboxd /usr/local/bin/outboxd
COPY config/example.yaml /etc/outboxd/config.yaml
USER 10001
EXPOSE 9898
ENV OUTBOXD_CONFIG=/etc/outboxd/config.yaml
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:9898/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/outboxd"]
