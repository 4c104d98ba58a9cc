// outboxd-kafka-floor: Kafka's own latency, for bench/steady.sh's floor. A bare librdkafka
// producer with outboxd's default producer properties sends records of --size bytes at a steady
// --rate for --duration seconds, and measures produce-to-acknowledgement latency
// from its delivery reports. Each value is JSON whose "ts" is the wall clock in microseconds just
// before the produce call, so `outboxd-consume --format latency --latency-from payload-ts` on the
// topic measures produce-to-consumer latency with the same consumer as the relays' runs.
//
//   outboxd-kafka-floor --brokers HOST:PORT --topic T [--topic T2 ...] [--rate EVENTS_PER_S]
//                       [--duration S | --count N] [--size BYTES] [--keys N] [--outbox-headers]
//                       [-X key=value ...]
//
// Records are keyed by "0".."N-1" (default 1000, like outboxd-load's aggregate ids) and go to the
// topics in turn, the way bench_fill spreads its aggregate types. -X overrides a producer
// property. --outbox-headers gives each record the headers outboxd gives an event by default (id,
// a 36-character value; type; aggregate_type), so that the broker parses the same records.
// --count N sends N records as fast as Kafka takes them (no pacing; the produce loop
// waits whenever librdkafka's queue is full): Kafka's own throughput. Prints one line at the end:
//   sent=N rate=R acked_rate=R ack_received=N ack_p50_ms=.. ack_p99_ms=.. ack_max_ms=..
// where rate counts the produce calls and acked_rate the time from the first acknowledgement to
// the last (as bench/catchup.sh times outboxd from its first acknowledged event).

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>

#include "latency_summary.h"
#include "sink/kafka_sink.h"

namespace {

[[noreturn]] void usage(const std::string& message) {
    fmt::print(stderr,
               "outboxd-kafka-floor: {}\nusage: outboxd-kafka-floor --brokers HOST:PORT --topic T [--topic T2 ...] [--rate EVENTS_PER_S] "
               "[--duration S | --count N] [--size BYTES] [--keys N] [--outbox-headers] [-X key=value ...]\n",
               message);
    std::exit(2);
}

using Clock = std::chrono::steady_clock;

struct Acks {
    std::vector<double> ms;
    long failed = 0;
    std::optional<Clock::time_point> first;
};

void onDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* acks = static_cast<Acks*>(opaque);
    auto* sent_at = static_cast<Clock::time_point*>(m->_private);
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++acks->failed;
    } else {
        if (!acks->first) acks->first = Clock::now();
        acks->ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - *sent_at).count());
    }
    delete sent_at;
}

std::int64_t unixMicrosNow() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

int main(int argc, char** argv) {
    std::string brokers;
    std::vector<std::string> topics;
    double rate = 1000;
    double duration_s = 60;
    std::size_t size = 256;
    long keys = 1000;
    long count = 0;
    bool outbox_headers = false;
    std::vector<std::pair<std::string, std::string>> overrides;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        if (a == "--brokers") brokers = value();
        else if (a == "--topic") topics.push_back(value());
        else if (a == "--rate") rate = std::stod(value());
        else if (a == "--duration") duration_s = std::stod(value());
        else if (a == "--size") size = std::stoul(value());
        else if (a == "--keys") keys = std::stol(value());
        else if (a == "--count") count = std::stol(value());
        else if (a == "--outbox-headers") outbox_headers = true;
        else if (a == "-X") {
            const std::string kv = value();
            const auto eq = kv.find('=');
            if (eq == std::string::npos) usage("-X takes key=value");
            overrides.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
        } else usage("unknown argument " + a);
    }
    if (brokers.empty() || topics.empty()) usage("--brokers and --topic are required");
    if (rate <= 0 || duration_s <= 0 || keys < 1 || count < 0) usage("bad --rate, --duration, --count or --keys");

    Acks acks;
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    auto props = outboxd::sink::defaultProducerProperties();
    props.emplace_back("bootstrap.servers", brokers);
    props.emplace_back("client.id", "outboxd-kafka-floor");
    props.emplace_back("statistics.interval.ms", "0");
    for (const auto& o : overrides) props.push_back(o);
    for (const auto& [k, v] : props) {
        if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
            fmt::print(stderr, "outboxd-kafka-floor: {}={}: {}\n", k, v, err);
            return 2;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, onDelivery);
    rd_kafka_conf_set_opaque(conf, &acks);
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (rk == nullptr) {
        fmt::print(stderr, "outboxd-kafka-floor: {}\n", err);
        return 1;
    }

    const auto interval = std::chrono::duration<double>(1.0 / rate);
    const auto total = count > 0 ? count : static_cast<long>(duration_s * rate);
    const auto start = Clock::now();
    std::string value;
    long sent = 0;
    for (; sent < total; ++sent) {
        const auto due = start + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(sent));
        for (auto now = Clock::now(); count == 0 && now < due; now = Clock::now()) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(due - now).count();
            if (left < 1) {
                std::this_thread::sleep_until(due);
                break;
            }
            rd_kafka_poll(rk, static_cast<int>(left));
        }
        value = fmt::format("{{\"ts\": {}, \"seq\": {}, \"pad\": \"", unixMicrosNow(), sent);
        if (value.size() + 2 < size) value.append(size - value.size() - 2, 'x');
        value += "\"}";
        const std::string key = std::to_string(sent % keys);
        auto* sent_at = new Clock::time_point(Clock::now());
        rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
        const std::string& topic = topics[static_cast<std::size_t>(sent) % topics.size()];
        const std::string id = outbox_headers ? fmt::format("{:036d}", sent) : std::string();
        do {
            // librdkafka owns the headers once the produce call succeeds; a refused call leaves them to us.
            rd_kafka_headers_t* headers = nullptr;
            if (outbox_headers) {
                headers = rd_kafka_headers_new(3);
                rd_kafka_header_add(headers, "id", -1, id.data(), static_cast<ssize_t>(id.size()));
                rd_kafka_header_add(headers, "type", -1, "UserUpdated", -1);
                rd_kafka_header_add(headers, "aggregate_type", -1, "user", -1);
            }
            e = headers != nullptr
                    ? rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_KEY(key.data(), key.size()),
                                        RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_HEADERS(headers),
                                        RD_KAFKA_V_OPAQUE(sent_at), RD_KAFKA_V_END)
                    : rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_KEY(key.data(), key.size()),
                                        RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_OPAQUE(sent_at),
                                        RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) rd_kafka_headers_destroy(headers);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(rk, 10);
        } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fmt::print(stderr, "outboxd-kafka-floor: produce failed: {}\n", rd_kafka_err2str(e));
            delete sent_at;
            return 1;
        }
        rd_kafka_poll(rk, 0);
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (rd_kafka_flush(rk, 120'000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fmt::print(stderr, "outboxd-kafka-floor: not every record was acknowledged within 120 s\n");
    }
    const double acked_seconds = std::chrono::duration<double>(Clock::now() - acks.first.value_or(start)).count();
    rd_kafka_destroy(rk);
    fmt::print("sent={} rate={:.0f} acked_rate={:.0f} ", sent, static_cast<double>(sent) / seconds,
               static_cast<double>(sent) / acked_seconds);
    outboxd::tools::printLatencySummary(acks.ms, "ack_");
    if (acks.failed > 0 || static_cast<long>(acks.ms.size()) != sent) {
        fmt::print(stderr, "outboxd-kafka-floor: {} of {} records failed\n", sent - static_cast<long>(acks.ms.size()),
                   sent);
        return 1;
    }
    return 0;
}
