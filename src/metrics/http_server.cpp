#include "metrics/http_server.h"

#include <netdb.h>
#include <sys/socket.h>

#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>
#include <microhttpd.h>
#include <spdlog/spdlog.h>

namespace outboxd::metrics {

namespace {

// Bounds that keep probes answering while slow or idle clients hold connections: one polling
// thread (epoll) serves every connection, so a client that sends half a request costs a file
// descriptor, not a worker; it is dropped after kIdleTimeoutSeconds without a byte, and past
// kMaxConnections new connections are refused at once.
constexpr unsigned kMaxConnections = 1024;
constexpr unsigned kIdleTimeoutSeconds = 10;

// libmicrohttpd's own messages (a client that hung up mid-request, ...) are for debugging.
void onDaemonLog(void* /*cls*/, const char* format, va_list args) {
    std::array<char, 512> buf{};
    std::vsnprintf(buf.data(), buf.size(), format, args);
    std::string_view text(buf.data());
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    spdlog::debug("metrics endpoint: {}", text);
}

MHD_Result reply(MHD_Connection* connection, unsigned status, std::string_view body, const char* content_type) {
    MHD_Response* response =
        MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_Result queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return queued;
}

MHD_Result handle(void* cls, MHD_Connection* connection, const char* url, const char* method,
                  const char* /*version*/, const char* /*upload_data*/, size_t* upload_data_size, void** req_cls) {
    const auto& metrics = *static_cast<const Metrics*>(cls);
    static int first_call_marker;
    if (*req_cls == nullptr) {
        // Called once with the headers; the answer comes on the next call.
        *req_cls = &first_call_marker;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;  // a GET with a body: ignore the body
        return MHD_YES;
    }
    std::string_view m(method);
    if (m != MHD_HTTP_METHOD_GET && m != MHD_HTTP_METHOD_HEAD) {
        return reply(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n", "text/plain");
    }
    std::string_view path(url);
    if (path == "/metrics") {
        return reply(connection, MHD_HTTP_OK, metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
    }
    if (path == "/healthz") {
        bool ok = metrics.healthy();
        return reply(connection, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, ok ? "ok\n" : "event loop stalled\n",
                     "text/plain");
    }
    if (path == "/readyz") {
        auto why = metrics.notReadyReason();
        return reply(connection, why.empty() ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                     why.empty() ? std::string("streaming\n") : fmt::format("not ready: {}\n", why), "text/plain");
    }
    return reply(connection, MHD_HTTP_NOT_FOUND, "not found: try /metrics, /healthz or /readyz\n", "text/plain");
}

}  // namespace

struct HttpServer::Impl {
    explicit Impl(const Metrics& m) : metrics(m) {}
    const Metrics& metrics;
    MHD_Daemon* daemon = nullptr;
};

HttpServer::HttpServer(const Metrics& metrics) : impl_(std::make_unique<Impl>(metrics)) {}

HttpServer::~HttpServer() { stop(); }

std::expected<void, std::string> HttpServer::start(const std::string& listen) {
    if (impl_->daemon != nullptr) return std::unexpected(std::string("the metrics endpoint is already started"));
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
        return std::unexpected(fmt::format("metrics.listen '{}' is not host:port", listen));
    }
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    std::string port = listen.substr(colon + 1);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found); rc != 0) {
        return std::unexpected(
            fmt::format("metrics.listen '{}': cannot resolve the address ({}); change metrics.listen", listen,
                        ::gai_strerror(rc)));
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY | MHD_USE_ERROR_LOG;
    if (found->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    impl_->daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &handle, const_cast<Metrics*>(&impl_->metrics),
                                     MHD_OPTION_SOCK_ADDR, found->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
                                     kMaxConnections, MHD_OPTION_CONNECTION_TIMEOUT, kIdleTimeoutSeconds,
                                     MHD_OPTION_EXTERNAL_LOGGER, &onDaemonLog, nullptr, MHD_OPTION_END);
    ::freeaddrinfo(found);
    if (impl_->daemon == nullptr) {
        return std::unexpected(fmt::format("could not listen on {} (address in use, or not permitted); change "
                                           "metrics.listen",
                                           listen));
    }
    const MHD_DaemonInfo* info = MHD_get_daemon_info(impl_->daemon, MHD_DAEMON_INFO_BIND_PORT);
    port_ = info != nullptr ? info->port : 0;
    spdlog::info("metrics on http://{}:{}/metrics", host, port_);
    return {};
}

void HttpServer::stop() {
    if (impl_ && impl_->daemon != nullptr) {
        MHD_stop_daemon(impl_->daemon);
        impl_->daemon = nullptr;
    }
}

}  // namespace outboxd::metrics
