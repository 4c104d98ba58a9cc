# outboxd container image: built and installed with the same scripts the README and CI use.
#   podman build --format docker -t outboxd .   (or docker build -t outboxd .)
# podman/buildah need --format docker: the OCI image format has no HEALTHCHECK and buildah drops
# it. scripts/container-test.sh builds this image and runs the integration scenario through it.
FROM debian:bookworm-slim AS build
LABEL org.opencontainers.image.title=outboxd
WORKDIR /src
# The packages first, in a layer of their own, so that a source change rebuilds only the binary.
# --build also builds Debian 13's librdkafka 2.8.0 into /opt/outboxd/deps (docs/dependencies.md).
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh --build
COPY . .
RUN BUILD_DIR=/src/build-image scripts/build.sh --release --no-tests \
 && cmake --install /src/build-image --prefix /opt/outboxd --strip

FROM debian:bookworm-slim
LABEL org.opencontainers.image.title=outboxd
COPY scripts/install-deps.sh /usr/local/share/outboxd/install-deps.sh
RUN /usr/local/share/outboxd/install-deps.sh --runtime \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin outboxd
# The librdkafka the binary was built and tested against, where its RUNPATH looks for it.
COPY --from=build /opt/outboxd/deps/lib/librdkafka.so.1 /opt/outboxd/deps/lib/librdkafka.so.1
COPY --from=build /opt/outboxd/bin/outboxd /usr/local/bin/outboxd
COPY config/example.yaml /etc/outboxd/config.yaml
USER 10001
EXPOSE 9898
ENV OUTBOXD_CONFIG=/etc/outboxd/config.yaml
# The check follows metrics.listen's default port; when the config moves it, pass the URL, e.g.
# -e OUTBOXD_HEALTHZ_URL=http://127.0.0.1:9100/healthz (expanded by the shell at check time).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS "${OUTBOXD_HEALTHZ_URL:-http://127.0.0.1:9898/healthz}" || exit 1
ENTRYPOINT ["/usr/local/bin/outboxd"]
