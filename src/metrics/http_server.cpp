#include "metrics/http_server.h"

#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

namespace outboxd::metrics {

struct HttpServer::Impl {
    explicit Impl(const Metrics& m) : metrics(m) {}
    const Metrics& metrics;
    httplib::Server server;
    std::thread thread;
};

HttpServer::HttpServer(const Metrics& metrics) : impl_(std::make_unique<Impl>(metrics)) {
    auto& server = impl_->server;
    const Metrics* m = &metrics;
    server.new_task_queue = [] { return new httplib::ThreadPool(2); };
    server.Get("/metrics", [m](const httplib::Request&, httplib::Response& res) {
        res.set_content(m->render(), "text/plain; version=0.0.4; charset=utf-8");
    });
    server.Get("/healthz", [m](const httplib::Request&, httplib::Response& res) {
        bool ok = m->healthy();
        res.status = ok ? 200 : 503;
        res.set_content(ok ? "ok\n" : "event loop stalled\n", "text/plain");
    });
    server.Get("/readyz", [m](const httplib::Request&, httplib::Response& res) {
        bool ok = m->streaming();
        res.status = ok ? 200 : 503;
        res.set_content(ok ? "streaming\n" : "not streaming\n", "text/plain");
    });
}

HttpServer::~HttpServer() { stop(); }

std::expected<void, std::string> HttpServer::start(const std::string& listen) {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
        return std::unexpected(fmt::format("metrics.listen '{}' is not host:port", listen));
    }
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    int port = std::atoi(listen.c_str() + colon + 1);
    if (port == 0) {
        port = impl_->server.bind_to_any_port(host.c_str());
        if (port < 0) return std::unexpected(fmt::format("could not listen on {}", listen));
    } else if (!impl_->server.bind_to_port(host.c_str(), port)) {
        return std::unexpected(fmt::format("could not listen on {} (address in use, or not permitted); change "
                                           "metrics.listen",
                                           listen));
    }
    port_ = port;
    impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
    spdlog::info("metrics on http://{}:{}/metrics", host, port_);
    return {};
}

void HttpServer::stop() {
    if (impl_ && impl_->thread.joinable()) {
        impl_->server.stop();
        impl_->thread.join();
    }
}

}  // namespace outboxd::metrics
