// outboxd-load: inserts outbox rows at a steady rate, for the latency benchmarks (bench/steady.sh).
//
//   outboxd-load --dsn DSN [--rate EVENTS_PER_S] [--duration S] [--per-txn N] [--table NAME]
//
// Each transaction is one multi-row INSERT (an implicit transaction) of --per-txn rows into a table
// with the Debezium outbox columns (id, aggregatetype, aggregateid, type, payload). Transaction k
// is sent at start + k * per_txn / rate on a steady clock, in libpq's pipeline mode: sending does
// not wait for the previous commit's round trip, results are read while waiting for the next due
// time. When the client falls behind (it cannot send as fast), the next transaction is sent at
// once (no skipping), and the achieved rate and max_behind_ms say so; max_in_flight is the
// largest number of transactions sent and not yet committed.
// The payload is JSON whose "ts" is the client's wall-clock time in microseconds since the epoch
// just before the INSERT is sent, and "seq" the event's number: a consumer can measure latency
// from the payload whatever relay carried it. Prints one summary line at the end:
//   sent=N txns=T seconds=S rate=R max_behind_ms=B max_in_flight=F

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <libpq-fe.h>

namespace {

[[noreturn]] void usage(const std::string& message) {
    fmt::print(stderr,
               "outboxd-load: {}\nusage: outboxd-load --dsn DSN [--rate EVENTS_PER_S] [--duration S] [--per-txn N] "
               "[--table NAME]\n",
               message);
    std::exit(2);
}

std::int64_t unixMicrosNow() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

int main(int argc, char** argv) {
    std::string dsn;
    std::string table = "outbox";
    double rate = 1000;
    double duration_s = 60;
    int per_txn = 1;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        if (a == "--dsn") dsn = value();
        else if (a == "--rate") rate = std::stod(value());
        else if (a == "--duration") duration_s = std::stod(value());
        else if (a == "--per-txn") per_txn = std::stoi(value());
        else if (a == "--table") table = value();
        else usage("unknown argument " + a);
    }
    if (dsn.empty()) usage("--dsn is required");
    if (rate <= 0 || duration_s <= 0 || per_txn < 1 || per_txn > 1000) usage("bad --rate, --duration or --per-txn");

    PGconn* conn = PQconnectdb(dsn.c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
        fmt::print(stderr, "outboxd-load: {}", PQerrorMessage(conn));
        return 1;
    }
    // One prepared statement of per_txn rows: $1 the first seq, $2 the send time. The row values
    // are computed by the server from those two, so each transaction is one short round trip.
    std::string sql = fmt::format(
        "INSERT INTO {} (id, aggregatetype, aggregateid, type, payload) "
        "SELECT gen_random_uuid(), (ARRAY['user','group','membership'])[1 + (s % 3)], (s % 1000)::text, "
        "'UserUpdated', jsonb_build_object('ts', $2::bigint, 'seq', s, 'name', 'user-' || s, "
        "'email', 'user' || s || '@example.org') "
        "FROM generate_series($1::bigint, $1::bigint + {}) AS s",
        table, per_txn - 1);
    PGresult* prepared = PQprepare(conn, "ins", sql.c_str(), 2, nullptr);
    if (PQresultStatus(prepared) != PGRES_COMMAND_OK) {
        fmt::print(stderr, "outboxd-load: {}", PQerrorMessage(conn));
        return 1;
    }
    PQclear(prepared);

    if (PQenterPipelineMode(conn) != 1) {
        fmt::print(stderr, "outboxd-load: cannot enter pipeline mode: {}", PQerrorMessage(conn));
        return 1;
    }
    long in_flight = 0;
    long max_in_flight = 0;
    // Reads the results that arrived; fails on an error. Each transaction ends with PIPELINE_SYNC.
    auto drain = [&](bool wait) -> bool {
        while (in_flight > 0) {
            if (!wait) {
                if (PQconsumeInput(conn) != 1) return false;
                if (PQisBusy(conn)) return true;
            }
            PGresult* r = PQgetResult(conn);
            if (r == nullptr) continue;  // end of one query's results
            const auto status = PQresultStatus(r);
            PQclear(r);
            if (status == PGRES_PIPELINE_SYNC) {
                --in_flight;
            } else if (status != PGRES_COMMAND_OK) {
                fmt::print(stderr, "outboxd-load: insert failed: {}", PQerrorMessage(conn));
                return false;
            }
        }
        return true;
    };
    auto fail = [&] {
        PQfinish(conn);
        return 1;
    };

    using Clock = std::chrono::steady_clock;
    const auto interval = std::chrono::duration<double>(per_txn / rate);
    const auto total_txns = static_cast<long>(duration_s * rate / per_txn);
    const auto start = Clock::now();
    double max_behind_ms = 0;
    long seq = 0;
    long txns = 0;
    for (; txns < total_txns; ++txns) {
        const auto due = start + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(txns));
        auto now = Clock::now();
        if (now < due) {
            while ((now = Clock::now()) < due) {
                const auto left = std::chrono::duration_cast<std::chrono::microseconds>(due - now).count();
                if (in_flight == 0 || left < 1000) {
                    std::this_thread::sleep_until(due);
                    break;
                }
                pollfd pfd{PQsocket(conn), POLLIN, 0};
                if (::poll(&pfd, 1, static_cast<int>(left / 1000)) > 0 && !drain(false)) return fail();
            }
        } else {
            max_behind_ms = std::max(max_behind_ms, std::chrono::duration<double, std::milli>(now - due).count());
        }
        const std::string first = std::to_string(seq);
        const std::string ts = std::to_string(unixMicrosNow());
        const char* params[2] = {first.c_str(), ts.c_str()};
        if (PQsendQueryPrepared(conn, "ins", 2, params, nullptr, nullptr, 0) != 1 || PQpipelineSync(conn) != 1) {
            fmt::print(stderr, "outboxd-load: send failed: {}", PQerrorMessage(conn));
            return fail();
        }
        max_in_flight = std::max(max_in_flight, ++in_flight);
        seq += per_txn;
        if (!drain(false)) return fail();
    }
    if (!drain(true)) return fail();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    PQfinish(conn);
    fmt::print("sent={} txns={} seconds={:.3f} rate={:.0f} max_behind_ms={:.1f} max_in_flight={}\n", seq, txns,
               seconds, static_cast<double>(seq) / seconds, max_behind_ms, max_in_flight);
    return 0;
}
