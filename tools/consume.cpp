// outboxd-consume: reads outboxd's events from Kafka and prints them decoded, for the demo, the
// benchmarks and operators checking a topic by hand. Reads every partition with assign() (no
// consumer group), from the beginning or the end.
//
//   outboxd-consume --brokers HOST:PORT --topic T [--topic T2 ...] [--count N] [--timeout-ms MS]
//                   [--idle-ms MS] [--from beginning|end] [--format text|json|latency|count|records]
//                   [--latency-from commit-time|payload-ts] [--isolation read_committed|read_uncommitted]
//
// --isolation read_committed (the default, librdkafka's) shows only records of committed Kafka
// transactions, as a consumer of outboxd's exactly-once mode must read; read_uncommitted also
// shows records of aborted ones.
//
// --format latency prints one summary line: latency percentiles, receipt wall-clock time minus
// the event's time. --latency-from commit-time (the default) takes the event's
// source.commit_time (outboxd's records only); payload-ts takes the "ts" number of the payload
// JSON (microseconds since the epoch, as outboxd-load writes it), from an outboxd.v1.Event's
// payload or from a record whose value is the JSON itself (Debezium's outbox records).
// With --from end, a topic that does not exist yet when the consumer starts is read from its
// beginning once it appears (everything in it is new). After the first look-up of the topics a
// line "outboxd-consume: started" goes to stderr, and once every topic is assigned
// "outboxd-consume: assigned".
// --format count prints one summary line for any records, outboxd's or not: how many were read and
// the earliest and latest record timestamps (milliseconds since the epoch, as the broker stores them).
// --format records prints one JSON line per record, outboxd's or not, for comparing relays byte by
// byte: {"topic","partition","offset","key","value","headers":[[name, value], ...]} where key,
// value and each header value are hex strings, or null when the record holds a null there.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string_view>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <librdkafka/rdkafka.h>

#include "outboxd/v1/event.pb.h"
#include "latency_summary.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
    std::string brokers;
    std::vector<std::string> topics;
    long count = -1;
    long timeout_ms = 60000;
    long idle_ms = -1;
    bool from_end = false;
    std::string format = "text";
    bool latency_from_payload = false;
    std::string isolation = "read_committed";
};

[[noreturn]] void usage(const std::string& message) {
    fmt::print(stderr,
               "outboxd-consume: {}\nusage: outboxd-consume --brokers HOST:PORT --topic T [--topic T ...] "
               "[--count N] [--timeout-ms MS] [--idle-ms MS] [--from beginning|end] [--format text|json|latency|count|records] "
               "[--latency-from commit-time|payload-ts] [--isolation read_committed|read_uncommitted]\n",
               message);
    std::exit(2);
}

std::string lsnText(std::uint64_t v) {
    return fmt::format("{:X}/{:X}", static_cast<std::uint32_t>(v >> 32), static_cast<std::uint32_t>(v));
}

std::string jsonString(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
            out += c;
        }
    }
    return out + "\"";
}

// Lower-case hex of the bytes, or null (JSON) when there are none because the field is null.
std::string hexOrNull(const void* data, std::size_t len) {
    if (data == nullptr) return "null";
    static constexpr char digits[] = "0123456789abcdef";
    std::string out = "\"";
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < len; ++i) {
        out += digits[p[i] >> 4];
        out += digits[p[i] & 0x0f];
    }
    return out + "\"";
}

std::int64_t unixMicros(const google::protobuf::Timestamp& ts) { return ts.seconds() * 1'000'000 + ts.nanos() / 1000; }

// Whether a record value is JSON text rather than a serialized outboxd.v1.Event (whose first byte
// is a field tag, never '{', '[' or '"').
bool looksLikeJson(const void* data, std::size_t len) {
    const auto* p = static_cast<const char*>(data);
    for (std::size_t i = 0; i < len; ++i) {
        if (p[i] == ' ' || p[i] == '\n' || p[i] == '\t' || p[i] == '\r') continue;
        return p[i] == '{' || p[i] == '"' || p[i] == '[';
    }
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        if (a == "--brokers") opt.brokers = value();
        else if (a == "--topic") opt.topics.push_back(value());
        else if (a == "--count") opt.count = std::stol(value());
        else if (a == "--timeout-ms") opt.timeout_ms = std::stol(value());
        else if (a == "--idle-ms") opt.idle_ms = std::stol(value());
        else if (a == "--from") opt.from_end = value() == "end";
        else if (a == "--format") opt.format = value();
        else if (a == "--isolation") {
            opt.isolation = value();
            if (opt.isolation != "read_committed" && opt.isolation != "read_uncommitted") {
                usage("--isolation is read_committed or read_uncommitted");
            }
        }
        else if (a == "--latency-from") {
            std::string from = value();
            if (from != "commit-time" && from != "payload-ts") usage("--latency-from is commit-time or payload-ts");
            opt.latency_from_payload = from == "payload-ts";
        }
        else usage("unknown argument " + a);
    }
    if (opt.brokers.empty() || opt.topics.empty()) usage("--brokers and --topic are required");

    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", opt.brokers.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "outboxd-consume", err, sizeof err);
    rd_kafka_conf_set(conf, "isolation.level", opt.isolation.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "5", err, sizeof err);
    rd_kafka_conf_set(conf, "fetch.error.backoff.ms", "10", err, sizeof err);
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (rk == nullptr) {
        fmt::print(stderr, "outboxd-consume: {}\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);

    std::map<std::string, bool> assigned;
    std::map<std::pair<std::string, int>, std::int64_t> offsets;
    bool first_refresh = true;
    bool all_assigned = false;
    auto refresh = [&] {
        bool changed = false;
        for (const auto& topic : opt.topics) {
            if (assigned[topic]) continue;
            rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
            const rd_kafka_metadata_t* md = nullptr;
            if (rd_kafka_metadata(rk, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
                md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt > 0) {
                for (int p = 0; p < md->topics[0].partition_cnt; ++p) {
                    offsets[{topic, md->topics[0].partitions[p].id}] =
                        opt.from_end && first_refresh ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
                }
                assigned[topic] = true;
                changed = true;
            }
            if (md != nullptr) rd_kafka_metadata_destroy(md);
            rd_kafka_topic_destroy(rkt);
        }
        first_refresh = false;
        if (!changed) return;
        auto* list = rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size()));
        for (const auto& [tp, off] : offsets) rd_kafka_topic_partition_list_add(list, tp.first.c_str(), tp.second)->offset = off;
        rd_kafka_assign(rk, list);
        rd_kafka_topic_partition_list_destroy(list);
        if (!all_assigned && assigned.size() == opt.topics.size() &&
            std::ranges::all_of(assigned, [](const auto& kv) { return kv.second; })) {
            all_assigned = true;
            fmt::print(stderr, "outboxd-consume: assigned\n");
        }
    };

    std::vector<double> latencies_ms;
    long received = 0;
    std::int64_t first_ts_ms = -1;
    std::int64_t last_ts_ms = -1;
    const auto deadline = Clock::now() + std::chrono::milliseconds(opt.timeout_ms);
    auto last_message = Clock::now();
    auto next_refresh = Clock::now();
    if (opt.format != "text" && opt.format != "json" && opt.format != "latency" && opt.format != "count" &&
        opt.format != "records") {
        usage("--format is text, json, latency, count or records");
    }
    if (opt.format == "latency" || opt.format == "count" || opt.format == "records" || opt.from_end) {
        refresh();
    }
    fmt::print(stderr, "outboxd-consume: started\n");
    while ((opt.count < 0 || received < opt.count) && Clock::now() < deadline) {
        if (opt.idle_ms >= 0 && received > 0 && Clock::now() - last_message > std::chrono::milliseconds(opt.idle_ms)) {
            break;
        }
        if (Clock::now() >= next_refresh) {
            refresh();
            next_refresh = Clock::now() + std::chrono::milliseconds(all_assigned ? 500 : 100);
        }
        rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 50);
        if (m == nullptr) continue;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_message_destroy(m);
            continue;
        }
        const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        last_message = Clock::now();
        ++received;
        if (opt.format == "count") {
            const std::int64_t ts = rd_kafka_message_timestamp(m, nullptr);
            if (ts >= 0 && (first_ts_ms < 0 || ts < first_ts_ms)) first_ts_ms = ts;
            if (ts > last_ts_ms) last_ts_ms = ts;
            rd_kafka_message_destroy(m);
            continue;
        }
        if (opt.format == "records") {
            std::string headers;
            rd_kafka_headers_t* hdrs = nullptr;
            if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                const char* name = nullptr;
                const void* value = nullptr;
                std::size_t size = 0;
                for (std::size_t idx = 0; rd_kafka_header_get_all(hdrs, idx, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++idx) {
                    if (!headers.empty()) headers += ',';
                    headers += fmt::format("[{},{}]", jsonString(name), hexOrNull(value, size));
                }
            }
            fmt::print("{{\"topic\":{},\"partition\":{},\"offset\":{},\"key\":{},\"value\":{},\"headers\":[{}]}}\n",
                       jsonString(rd_kafka_topic_name(m->rkt)), m->partition, m->offset, hexOrNull(m->key, m->key_len),
                       hexOrNull(m->payload, m->len), headers);
            std::fflush(stdout);
            rd_kafka_message_destroy(m);
            continue;
        }
        if (opt.format == "latency" && opt.latency_from_payload && looksLikeJson(m->payload, m->len)) {
            const std::int64_t ts = outboxd::tools::payloadTs(std::string_view(static_cast<const char*>(m->payload), m->len));
            if (ts > 0) latencies_ms.push_back(static_cast<double>(now_us - ts) / 1000.0);
            rd_kafka_message_destroy(m);
            continue;
        }
        outboxd::v1::Event ev;
        const bool parsed = ev.ParseFromArray(m->payload, static_cast<int>(m->len));
        std::string topic = rd_kafka_topic_name(m->rkt);
        std::string key = m->key != nullptr ? std::string(static_cast<const char*>(m->key), m->key_len) : "";
        if (opt.format == "latency") {
            if (parsed && opt.latency_from_payload) {
                const std::int64_t ts = outboxd::tools::payloadTs(ev.payload());
                if (ts > 0) latencies_ms.push_back(static_cast<double>(now_us - ts) / 1000.0);
            } else if (parsed) {
                latencies_ms.push_back(static_cast<double>(now_us - unixMicros(ev.source().commit_time())) / 1000.0);
            }
        } else if (!parsed) {
            fmt::print("{}[{}]@{} key={} (not an outboxd.v1.Event, {} bytes)\n", topic, m->partition, m->offset, key, m->len);
        } else if (opt.format == "json") {
            std::string event_json;
            google::protobuf::util::JsonPrintOptions jopt;
            jopt.preserve_proto_field_names = true;
            (void)google::protobuf::util::MessageToJsonString(ev, &event_json, jopt);
            fmt::print("{{\"topic\":{},\"partition\":{},\"offset\":{},\"key\":{},\"event\":{}}}\n", jsonString(topic),
                       m->partition, m->offset, jsonString(key), event_json);
        } else {
            bool textual = ev.content_type().starts_with("application/json") || ev.content_type().starts_with("text/");
            fmt::print("{}[{}]@{} key={} id={} type={} aggregate={}/{}\n    payload ({}): {}\n    source: {}.{} lsn={} "
                       "commit_lsn={} xid={}\n",
                       topic, m->partition, m->offset, key, ev.id(), ev.type(), ev.aggregate_type(), ev.aggregate_id(),
                       ev.content_type(), textual ? ev.payload() : fmt::format("<{} bytes>", ev.payload().size()),
                       ev.source().schema(), ev.source().table(), lsnText(ev.source().lsn()),
                       lsnText(ev.source().commit_lsn()), ev.source().xid());
        }
        std::fflush(stdout);
        rd_kafka_message_destroy(m);
    }
    if (opt.format == "latency") outboxd::tools::printLatencySummary(latencies_ms);
    if (opt.format == "count") {
        fmt::print("received={} first_ts_ms={} last_ts_ms={}\n", received, first_ts_ms, last_ts_ms);
    }
    rd_kafka_assign(rk, nullptr);
    rd_kafka_destroy(rk);
    if (opt.count >= 0 && received < opt.count) {
        fmt::print(stderr, "outboxd-consume: received {} of {} records before the timeout\n", received, opt.count);
        return 1;
    }
    return 0;
}
