#include "support.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

extern char** environ;

namespace itest {

namespace {

std::string need(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') {
        throw std::runtime_error(fmt::format("{} is not set: run integration tests through ctest (the "
                                             "'services' fixture starts PostgreSQL and Kafka)",
                                             name));
    }
    return v;
}

}  // namespace

const Env& Env::get() {
    static const Env env = [] {
        Env e;
        e.pg_dsn = need("OUTBOXD_IT_PG_DSN");
        e.pg_host_port = fmt::format("host=127.0.0.1 port={} user=postgres", need("OUTBOXD_IT_PG_PORT"));
        e.brokers = need("OUTBOXD_IT_KAFKA_BROKERS");
        e.work_dir = need("OUTBOXD_IT_DIR");
        e.outboxd_bin = need("OUTBOXD_BIN");
        return e;
    }();
    return env;
}

Pg::Pg(const std::string& dsn) : conn_(PQconnectdb(dsn.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
        std::string msg = PQerrorMessage(conn_);
        PQfinish(conn_);
        throw std::runtime_error("connect: " + msg);
    }
}

Pg::~Pg() { PQfinish(conn_); }

void Pg::exec(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    auto st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        std::string msg = PQresultErrorMessage(r);
        PQclear(r);
        throw std::runtime_error(fmt::format("SQL failed: {}\n{}", msg, sql.substr(0, 500)));
    }
    PQclear(r);
}

std::optional<std::string> Pg::scalar(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        std::string msg = PQresultErrorMessage(r);
        PQclear(r);
        throw std::runtime_error(fmt::format("SQL failed: {}\n{}", msg, sql));
    }
    std::optional<std::string> out;
    if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) out = PQgetvalue(r, 0, 0);
    PQclear(r);
    return out;
}

Database Database::create(const std::string& name) {
    const Env& env = Env::get();
    {
        Pg admin(env.pg_dsn);
        admin.exec(fmt::format("DROP DATABASE IF EXISTS {} WITH (FORCE)", name));
        admin.exec(fmt::format("CREATE DATABASE {}", name));
    }
    Database db{name, fmt::format("{} dbname={}", env.pg_host_port, name)};
    Pg pg(db.dsn);
    pg.exec(R"(
        CREATE TABLE users (
            id bigint PRIMARY KEY,
            name text NOT NULL,
            email text NOT NULL
        );
        CREATE TABLE outbox (
            id uuid PRIMARY KEY,
            aggregatetype varchar(255) NOT NULL,
            aggregateid varchar(255) NOT NULL,
            type varchar(255) NOT NULL,
            payload jsonb
        );
    )");
    return db;
}

Daemon::Daemon(std::string name, std::string config_yaml) : name_(std::move(name)) {
    const Env& env = Env::get();
    config_path_ = fmt::format("{}/{}.yaml", env.work_dir, name_);
    log_path_ = fmt::format("{}/{}.log", env.work_dir, name_);
    std::ofstream(config_path_) << config_yaml;
    std::ofstream(log_path_, std::ios::trunc).close();
}

Daemon::~Daemon() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
}

void Daemon::start() { start({}); }

void Daemon::start(const std::vector<std::string>& extra_args) {
    if (pid_ > 0) throw std::runtime_error("daemon already running");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_path_.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path_.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
    const std::string& bin = Env::get().outboxd_bin;
    std::string flag = "--config";
    std::vector<std::string> extra = extra_args;
    std::vector<char*> argv = {const_cast<char*>(bin.c_str()), flag.data(), config_path_.data()};
    for (auto& a : extra) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, bin.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error(fmt::format("posix_spawn {}: {}", bin, rc));
}

void Daemon::kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

void Daemon::signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
}

std::optional<int> Daemon::waitExit(std::chrono::seconds timeout) {
    if (pid_ <= 0) return std::nullopt;
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            pid_ = -1;
            if (WIFEXITED(status)) return WEXITSTATUS(status);
            if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return std::nullopt;
}

int Daemon::terminate(std::chrono::seconds timeout) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    auto code = waitExit(timeout);
    if (!code) {
        kill9();
        return -2;
    }
    return *code;
}

bool Daemon::running() {
    if (pid_ <= 0) return false;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        pid_ = -1;
        return false;
    }
    return true;
}

std::string Daemon::log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct KafkaReader::Impl {
    rd_kafka_t* rk = nullptr;
    std::vector<std::string> topics;
    std::map<std::pair<std::string, int>, std::int64_t> next_offset;
    std::map<std::string, bool> assigned;

    void refreshAssignment() {
        bool changed = false;
        for (const auto& topic : topics) {
            if (assigned[topic]) continue;
            rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
            const rd_kafka_metadata_t* md = nullptr;
            if (rd_kafka_metadata(rk, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
                md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt > 0) {
                for (int p = 0; p < md->topics[0].partition_cnt; ++p) {
                    next_offset.emplace(std::make_pair(topic, md->topics[0].partitions[p].id),
                                        RD_KAFKA_OFFSET_BEGINNING);
                }
                assigned[topic] = true;
                changed = true;
            }
            if (md != nullptr) rd_kafka_metadata_destroy(md);
            rd_kafka_topic_destroy(rkt);
        }
        if (!changed) return;
        rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(next_offset.size()));
        for (const auto& [tp, offset] : next_offset) {
            rd_kafka_topic_partition_list_add(list, tp.first.c_str(), tp.second)->offset = offset;
        }
        rd_kafka_assign(rk, list);
        rd_kafka_topic_partition_list_destroy(list);
    }
};

KafkaReader::KafkaReader(std::vector<std::string> topics, std::string brokers,
                         std::map<std::string, std::string> extra)
    : impl_(std::make_unique<Impl>()) {
    impl_->topics = std::move(topics);
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    if (brokers.empty()) brokers = Env::get().brokers;
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof err);
    for (const auto& [k, v] : extra) {
        if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
            throw std::runtime_error(std::string("consumer property: ") + err);
        }
    }
    rd_kafka_conf_set(conf, "group.id", "outboxd-itest-reader", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.partition.eof", "false", err, sizeof err);
    rd_kafka_conf_set(conf, "topic.metadata.refresh.interval.ms", "1000", err, sizeof err);
    // A partition is assigned at its beginning; if librdkafka's look-up of that offset fails for
    // good (a partition just created), it falls back to auto.offset.reset (librdkafka's
    // rd_kafka_toppar_handle_Offset), whose default "largest" would skip the records already
    // there without a trace: start from the earliest instead.
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err);
    impl_->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (impl_->rk == nullptr) throw std::runtime_error(std::string("consumer: ") + err);
    rd_kafka_poll_set_consumer(impl_->rk);
}

KafkaReader::~KafkaReader() {
    if (impl_->rk != nullptr) {
        rd_kafka_assign(impl_->rk, nullptr);
        rd_kafka_destroy(impl_->rk);
    }
}

std::vector<Record> KafkaReader::readUntil(std::size_t count, std::chrono::milliseconds timeout) {
    std::vector<Record> out;
    auto until = std::chrono::steady_clock::now() + timeout;
    auto next_refresh = std::chrono::steady_clock::now();
    while (out.size() < count && std::chrono::steady_clock::now() < until) {
        if (std::chrono::steady_clock::now() >= next_refresh) {
            impl_->refreshAssignment();
            next_refresh = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
        }
        rd_kafka_message_t* m = rd_kafka_consumer_poll(impl_->rk, 100);
        if (m == nullptr) continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            Record r;
            r.topic = rd_kafka_topic_name(m->rkt);
            r.partition = m->partition;
            r.offset = m->offset;
            if (m->key != nullptr) r.key = std::string(static_cast<const char*>(m->key), m->key_len);
            r.value_is_null = m->payload == nullptr;
            if (m->payload != nullptr) r.value.assign(static_cast<const char*>(m->payload), m->len);
            rd_kafka_headers_t* hdrs = nullptr;
            if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                const char* name;
                const void* val;
                size_t size;
                for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
                     ++i) {
                    r.headers[name] = val != nullptr ? std::string(static_cast<const char*>(val), size) : std::string();
                    ++r.header_count;
                    if (val == nullptr) r.null_headers.insert(name);
                }
            }
            impl_->next_offset[{r.topic, r.partition}] = r.offset + 1;
            out.push_back(std::move(r));
        } else {
            // A consumer error (offset reset, unknown partition...) is shown, never dropped.
            std::fprintf(stderr, "KafkaReader: %s [%d]: %s\n", m->rkt != nullptr ? rd_kafka_topic_name(m->rkt) : "-",
                         m->partition, rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
    }
    return out;
}

std::vector<Record> KafkaReader::drain(std::chrono::milliseconds quiet) {
    std::vector<Record> out;
    while (true) {
        auto batch = readUntil(static_cast<std::size_t>(-1), quiet);
        if (batch.empty()) return out;
        for (auto& r : batch) out.push_back(std::move(r));
    }
}

std::string relayConfig(const Database& db, const std::string& topic_prefix, const std::string& extra,
                        int metrics_port) {
    return fmt::format(R"(source:
  postgres:
    dsn: "{}"
    slot: {}
    publication: {}
routing:
  topic: "{}.{{aggregatetype}}"
sink:
  kafka:
    brokers: "{}"
    shutdown_timeout_ms: 20000
metrics:
  listen: "{}"
log:
  level: debug
{})",
                       db.dsn, db.name, db.name, topic_prefix, Env::get().brokers,
                       metrics_port == 0 ? std::string() : fmt::format("127.0.0.1:{}", metrics_port), extra);
}

std::string withLinesAfter(std::string yaml, std::string_view line_start, std::string_view lines) {
    for (std::size_t at = 0; at < yaml.size();) {
        const auto end = yaml.find('\n', at);
        if (std::string_view(yaml).substr(at).starts_with(line_start)) {
            yaml.insert(end == std::string::npos ? yaml.size() : end + 1, lines);
            return yaml;
        }
        if (end == std::string::npos) break;
        at = end + 1;
    }
    throw std::runtime_error(fmt::format("no line starts with '{}' in the configuration", line_start));
}

void createTopics(const std::vector<NewTopic>& topics, bool must_be_new) {
    std::array<char, 512> errstr{};
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", Env::get().brokers.c_str(), errstr.data(), errstr.size()) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        throw std::runtime_error(std::string("admin client: ") + errstr.data());
    }
    std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)> rk(
        rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr.data(), errstr.size()), &rd_kafka_destroy);
    if (rk == nullptr) throw std::runtime_error(std::string("admin client: ") + errstr.data());
    std::vector<std::unique_ptr<rd_kafka_NewTopic_t, decltype(&rd_kafka_NewTopic_destroy)>> specs;
    std::vector<rd_kafka_NewTopic_t*> raw;
    for (const auto& t : topics) {
        specs.emplace_back(rd_kafka_NewTopic_new(t.name.c_str(), t.partitions, 1, errstr.data(), errstr.size()),
                           &rd_kafka_NewTopic_destroy);
        if (specs.back() == nullptr) throw std::runtime_error(fmt::format("topic {}: {}", t.name, errstr.data()));
        for (const auto& [key, value] : t.config) {
            if (rd_kafka_NewTopic_set_config(specs.back().get(), key.c_str(), value.c_str()) !=
                RD_KAFKA_RESP_ERR_NO_ERROR) {
                throw std::runtime_error(fmt::format("topic {}: setting {}={} refused", t.name, key, value));
            }
        }
        raw.push_back(specs.back().get());
    }
    std::unique_ptr<rd_kafka_queue_t, decltype(&rd_kafka_queue_destroy)> queue(rd_kafka_queue_new(rk.get()),
                                                                               &rd_kafka_queue_destroy);
    rd_kafka_CreateTopics(rk.get(), raw.data(), raw.size(), nullptr, queue.get());
    std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> ev(rd_kafka_queue_poll(queue.get(), 60000),
                                                                            &rd_kafka_event_destroy);
    if (ev == nullptr) throw std::runtime_error("CreateTopics: no answer from the broker within 60 s");
    const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev.get());
    if (res == nullptr) {
        throw std::runtime_error(fmt::format("CreateTopics: {}", rd_kafka_event_error_string(ev.get())));
    }
    std::size_t n = 0;
    const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto err = rd_kafka_topic_result_error(results[i]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
        if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS && !must_be_new) continue;
        const char* detail = rd_kafka_topic_result_error_string(results[i]);
        throw std::runtime_error(fmt::format("topic {}: {} {}", rd_kafka_topic_result_name(results[i]),
                                             rd_kafka_err2str(err), detail != nullptr ? detail : ""));
    }
    if (n != topics.size()) {
        throw std::runtime_error(fmt::format("CreateTopics answered for {} of {} topics", n, topics.size()));
    }
}

void ctl(const std::string& action) {
    std::string cmd = fmt::format("'{}/ctl.sh' '{}' {}", OUTBOXD_IT_ENV_SCRIPTS, Env::get().work_dir, action);
    int rc = std::system(cmd.c_str());
    if (rc != 0) throw std::runtime_error(fmt::format("{} failed ({})", cmd, rc));
}

int freePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    int port = ntohs(addr.sin_port);
    ::close(fd);
    return port;
}

HttpResponse httpGet(int port, const std::string& path) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(2);
    client.set_read_timeout(5);
    auto res = client.Get(path.c_str());
    if (!res) return {};
    return {res->status, res->body};
}

std::optional<double> metricValue(const std::string& text, const std::string& series) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ') {
            return std::stod(line.substr(series.size() + 1));
        }
    }
    return std::nullopt;
}

std::uint64_t parseLsn(const std::string& text) {
    auto slash = text.find('/');
    if (slash == std::string::npos) return 0;
    return (std::stoull(text.substr(0, slash), nullptr, 16) << 32) | std::stoull(text.substr(slash + 1), nullptr, 16);
}

std::uint64_t confirmedFlush(Pg& pg, const std::string& slot) {
    auto v = pg.scalar(fmt::format("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{}'", slot));
    return v ? parseLsn(*v) : 0;
}

}  // namespace itest
