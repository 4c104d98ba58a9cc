#pragma once
// The HTTP endpoint: GET /metrics (Prometheus text), /healthz, /readyz.
// Owns a libmicrohttpd daemon: one polling thread (epoll) serves every connection, so slow or
// idle clients cannot hold up a probe. start() binds and starts it or fails; stop() stops and
// joins it, and is safe at any moment (before start, twice, right after start).

#include <expected>
#include <memory>
#include <string>

#include "metrics/metrics.h"

namespace outboxd::metrics {

class HttpServer {
public:
    explicit HttpServer(const Metrics& metrics);
    ~HttpServer();

    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // listen is "host:port"; port 0 picks a free one (see port()).
    [[nodiscard]] std::expected<void, std::string> start(const std::string& listen);
    void stop();
    [[nodiscard]] int port() const { return port_; }

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
    int port_ = 0;
};

}  // namespace outboxd::metrics
