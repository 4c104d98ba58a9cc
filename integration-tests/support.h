#pragma once
// Helpers for integration scenarios: a PostgreSQL client, the outboxd process, a Kafka reader.
// Services come from integration-tests/env/up.sh through OUTBOXD_IT_* environment variables.

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/types.h>

struct pg_conn;
typedef struct pg_conn PGconn;

namespace itest {

struct Env {
    std::string pg_dsn;        // admin DSN (database postgres)
    std::string pg_host_port;  // "host=127.0.0.1 port=N user=postgres"
    std::string brokers;
    std::string work_dir;
    std::string outboxd_bin;
    static const Env& get();
};

// A plain SQL connection.
class Pg {
public:
    explicit Pg(const std::string& dsn);
    ~Pg();
    Pg(const Pg&) = delete;
    Pg& operator=(const Pg&) = delete;

    void exec(const std::string& sql);
    // First column of the first row, or nullopt when no row / NULL.
    std::optional<std::string> scalar(const std::string& sql);

private:
    PGconn* conn_;
};

// A fresh database with the seed's schema: users, and outbox with Debezium's column names.
struct Database {
    std::string name;
    std::string dsn;
    static Database create(const std::string& name);
};

class Daemon {
public:
    Daemon(std::string name, std::string config_yaml);
    ~Daemon();
    void start();
    // With more command-line arguments after --config FILE (e.g. --accept-slot-loss).
    void start(const std::vector<std::string>& extra_args);
    void kill9();
    // Sends `sig` (SIGHUP, SIGSTOP...) to the running process.
    void signal(int sig);
    // SIGTERM, then waits; returns the exit code (or 128+signal).
    int terminate(std::chrono::seconds timeout = std::chrono::seconds(60));
    // Waits for the process to exit on its own; nullopt on timeout.
    std::optional<int> waitExit(std::chrono::seconds timeout);
    bool running();
    std::string log() const;
    const std::string& configPath() const { return config_path_; }

private:
    std::string name_;
    std::string config_path_;
    std::string log_path_;
    pid_t pid_ = -1;
};

struct Record {
    std::string topic;
    int partition = 0;
    std::int64_t offset = 0;
    std::optional<std::string> key;
    std::string value;
    bool value_is_null = false;  // a null value (not an empty one)
    std::map<std::string, std::string> headers;
    std::set<std::string> null_headers;  // headers present with a null value (also in `headers`, as "")
    std::size_t header_count = 0;        // every header, a name given twice counted twice
};

// Reads every partition of some topics from the beginning (assign(), no consumer group).
class KafkaReader {
public:
    // brokers: the test broker unless given; conf: extra librdkafka properties (SASL...).
    explicit KafkaReader(std::vector<std::string> topics, std::string brokers = "",
                         std::map<std::string, std::string> conf = {});
    ~KafkaReader();
    // Reads until `count` records in total have been read, or the timeout.
    std::vector<Record> readUntil(std::size_t count, std::chrono::milliseconds timeout);
    // Reads whatever arrives within `quiet` of silence.
    std::vector<Record> drain(std::chrono::milliseconds quiet);

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

// A topic for createTopics: its partitions and topic-level settings (replication factor 1).
struct NewTopic {
    std::string name;
    int partitions = 1;
    std::vector<std::pair<std::string, std::string>> config;
};
// Creates the topics on the test broker with the admin API, before the first event, as a
// deployment without auto-creation does. A topic that already exists counts as created unless
// `must_be_new`. Throws, naming the topic and the broker's error, when one is refused.
void createTopics(const std::vector<NewTopic>& topics, bool must_be_new = false);

// Runs integration-tests/env/ctl.sh on the test services: kafka-stop, kafka-start, pg-restart...
void ctl(const std::string& action);

// A free TCP port on 127.0.0.1.
int freePort();

struct HttpResponse {
    int status = 0;  // 0 when the request failed
    std::string body;
};
HttpResponse httpGet(int port, const std::string& path);

// The value of an unlabelled (or exactly labelled) sample in Prometheus text, or nullopt.
std::optional<double> metricValue(const std::string& text, const std::string& series);

// YAML for a daemon reading `db` through slot/publication named after it, topics "<prefix>.{aggregatetype}".
// `extra` is appended at the top level; metrics_port 0 disables the metrics endpoint.
std::string relayConfig(const Database& db, const std::string& topic_prefix, const std::string& extra = "",
                        int metrics_port = 0);
// `yaml` with `lines` inserted after its first line that starts with `line_start` (to add keys
// to a section relayConfig already writes: routing, sink.kafka, source). Throws when no line does.
std::string withLinesAfter(std::string yaml, std::string_view line_start, std::string_view lines);

// The slot's confirmed_flush_lsn as a number (0 when absent).
std::uint64_t confirmedFlush(Pg& pg, const std::string& slot);
std::uint64_t parseLsn(const std::string& text);

// Polls `cond` every 100 ms until it is true or the timeout passes.
template <typename F>
bool eventually(F cond, std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        if (cond()) return true;
        struct timespec ts{0, 100'000'000};
        nanosleep(&ts, nullptr);
    }
    return cond();
}

}  // namespace itest
