// outboxd-pg-floor: the source's own latency, for bench/steady.sh's floor. A bare logical
// replication client (libpq only: no decoder, no Kafka) streams pgoutput from an existing slot and
// measures, for each inserted row whose tuple holds outboxd-load's payload JSON, the receipt
// wall-clock time minus its "ts" (the load generator's clock just before its INSERT).
//
//   outboxd-pg-floor --dsn DSN --slot SLOT --publication PUB [--count N] [--idle-ms MS] [--timeout-ms MS]
//
// DSN is an ordinary connection string; the tool adds replication=database. It confirms what it
// received once a second (and when the server asks), so the slot does not hold WAL back. After
// START_REPLICATION is accepted "outboxd-pg-floor: started" goes to stderr. It stops after N
// timed rows, after MS of silence once a row arrived, or at the timeout, and prints one line:
//   received=N p50_ms=.. p99_ms=.. max_ms=..

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <libpq-fe.h>

#include "latency_summary.h"

namespace {

[[noreturn]] void usage(const std::string& message) {
    fmt::print(stderr,
               "outboxd-pg-floor: {}\nusage: outboxd-pg-floor --dsn DSN --slot SLOT --publication PUB [--count N] "
               "[--idle-ms MS] [--timeout-ms MS]\n",
               message);
    std::exit(2);
}

std::int64_t unixMicrosNow() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::uint64_t readU64(const char* p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

void writeU64(char* p, std::uint64_t v) {
    for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}

// Microseconds since 2000-01-01, the replication protocol's clock.
std::uint64_t pgNowMicros() { return static_cast<std::uint64_t>(unixMicrosNow() - 946'684'800'000'000LL); }

bool sendStatus(PGconn* conn, std::uint64_t lsn) {
    char msg[34];
    msg[0] = 'r';
    writeU64(msg + 1, lsn);
    writeU64(msg + 9, lsn);
    writeU64(msg + 17, lsn);
    writeU64(msg + 25, pgNowMicros());
    msg[33] = 0;
    return PQputCopyData(conn, msg, sizeof msg) == 1 && PQflush(conn) == 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string dsn, slot, publication;
    long count = -1;
    long idle_ms = 5000;
    long timeout_ms = 600'000;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        if (a == "--dsn") dsn = value();
        else if (a == "--slot") slot = value();
        else if (a == "--publication") publication = value();
        else if (a == "--count") count = std::stol(value());
        else if (a == "--idle-ms") idle_ms = std::stol(value());
        else if (a == "--timeout-ms") timeout_ms = std::stol(value());
        else usage("unknown argument " + a);
    }
    if (dsn.empty() || slot.empty() || publication.empty()) usage("--dsn, --slot and --publication are required");

    PGconn* conn = PQconnectdb((dsn + " replication=database").c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
        fmt::print(stderr, "outboxd-pg-floor: {}", PQerrorMessage(conn));
        return 1;
    }
    const std::string start = fmt::format("START_REPLICATION SLOT \"{}\" LOGICAL 0/0 (proto_version '1', "
                                          "publication_names '{}')",
                                          slot, publication);
    PGresult* r = PQexec(conn, start.c_str());
    if (PQresultStatus(r) != PGRES_COPY_BOTH) {
        fmt::print(stderr, "outboxd-pg-floor: {}", PQerrorMessage(conn));
        return 1;
    }
    PQclear(r);
    fmt::print(stderr, "outboxd-pg-floor: started\n");

    using Clock = std::chrono::steady_clock;
    const auto began = Clock::now();
    auto last_row = Clock::time_point{};
    auto last_status = Clock::now();
    std::uint64_t received_lsn = 0;
    std::vector<double> latencies_ms;
    for (;;) {
        const auto now = Clock::now();
        if (count >= 0 && static_cast<long>(latencies_ms.size()) >= count) break;
        if (now - began >= std::chrono::milliseconds(timeout_ms)) break;
        if (last_row != Clock::time_point{} && now - last_row >= std::chrono::milliseconds(idle_ms)) break;
        if (now - last_status >= std::chrono::seconds(1)) {
            if (!sendStatus(conn, received_lsn)) break;
            last_status = now;
        }
        char* buf = nullptr;
        const int len = PQgetCopyData(conn, &buf, 1);
        if (len == 0) {
            pollfd pfd{PQsocket(conn), POLLIN, 0};
            (void)::poll(&pfd, 1, 100);
            if (PQconsumeInput(conn) != 1) break;
            continue;
        }
        if (len < 0) break;  // the stream ended (-1) or failed (-2)
        const std::int64_t now_us = unixMicrosNow();
        if (buf[0] == 'w' && len > 25) {
            received_lsn = std::max(received_lsn, readU64(buf + 9));  // walEnd of the frame
            if (buf[25] == 'I') {
                const std::int64_t ts = outboxd::tools::payloadTs(std::string_view(buf + 26, len - 26));
                if (ts > 0) {
                    latencies_ms.push_back(static_cast<double>(now_us - ts) / 1000.0);
                    last_row = Clock::now();
                }
            }
        } else if (buf[0] == 'k' && len >= 18) {
            received_lsn = std::max(received_lsn, readU64(buf + 1));
            if (buf[17] != 0 && !sendStatus(conn, received_lsn)) {
                PQfreemem(buf);
                break;
            }
        }
        PQfreemem(buf);
    }
    (void)sendStatus(conn, received_lsn);
    PQfinish(conn);
    outboxd::tools::printLatencySummary(latencies_ms);
    if (count >= 0 && static_cast<long>(latencies_ms.size()) < count) {
        fmt::print(stderr, "outboxd-pg-floor: received {} of {} rows\n", latencies_ms.size(), count);
        return 1;
    }
    return 0;
}
