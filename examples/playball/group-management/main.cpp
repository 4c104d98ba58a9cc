// playball-group-management: the group management service of the PlayBall example, reduced to
// what the story needs. Two commands:
//
//   playball-group-management consume --db DSN --brokers HOST:PORT [--topic outbox.event.user]
//       [--group group-management] [--instance group-management-1] [--from-beginning] [--max-batch N] [--verbose]
//   playball-group-management create-group --db DSN --owner USER_ID --name NAME
//
// consume reads the auth service's user events (outboxd.v1.Event, key = the user's id, so one
// user's events share a partition and arrive in the order the auth service committed them) with
// a consumer group, and applies them to group management's view of users. Per poll it takes the
// records already fetched (up to --max-batch), and in ONE database transaction calls
// receive_event() for each: the inbox row keyed by the event id and the change to the view go in
// together (schema.sql). The batch goes to PostgreSQL as one libpq pipeline (one round trip). Only after that transaction has committed does it commit the records'
// offsets to Kafka (synchronously). A crash between the two re-delivers the records; the inbox
// recognises them and counts them as duplicates. Any database error stops the process with exit
// code 1 before the offsets are committed: started again, it resumes from the last committed
// offset. --from-beginning resets the group's offsets to the start of every partition it is
// assigned (a replay). SIGTERM or SIGINT: finish the batch, commit, leave the group, exit 0.
//
// The payload is JSON, or (content_type application/x-protobuf; messageType=playball.auth.v1.*)
// the typed message, decoded with the classes generated from examples/playball/proto.
//
// create-group asks group management to create a group owned by a user: it fails with
// "unknown user" until the user's UserRegistered event has been applied.

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include <google/protobuf/util/json_util.h>

#include "outboxd/v1/event.pb.h"
#include "playball/auth/v1/user_events.pb.h"

namespace {

volatile std::sig_atomic_t stop_requested = 0;
void onSignal(int) { stop_requested = 1; }

struct Options {
    std::string command;
    std::string db;
    std::string brokers;
    std::string topic = "outbox.event.user";
    std::string group = "group-management";
    std::string instance = "group-management-1";
    bool from_beginning = false;
    bool verbose = false;
    int max_batch = 500;
    std::string owner;
    std::string name;
};

[[noreturn]] void usage(const std::string& message) {
    fmt::print(stderr,
               "playball-group-management: {}\n"
               "usage: playball-group-management consume --db DSN --brokers HOST:PORT [--topic T] [--group G]\n"
               "                                 [--instance ID]\n"
               "                                 [--from-beginning] [--max-batch N] [--verbose]\n"
               "       playball-group-management create-group --db DSN --owner USER_ID --name NAME\n",
               message);
    std::exit(2);
}

Options parse(int argc, char** argv) {
    if (argc < 2) usage("a command is required");
    Options o;
    o.command = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        if (a == "--db") o.db = value();
        else if (a == "--brokers") o.brokers = value();
        else if (a == "--topic") o.topic = value();
        else if (a == "--group") o.group = value();
        else if (a == "--instance") o.instance = value();
        else if (a == "--from-beginning") o.from_beginning = true;
        else if (a == "--verbose") o.verbose = true;
        else if (a == "--max-batch") o.max_batch = std::atoi(value().c_str());
        else if (a == "--owner") o.owner = value();
        else if (a == "--name") o.name = value();
        else usage("unknown option " + a);
    }
    if (o.db.empty()) usage("--db is required");
    if (o.command == "consume") {
        if (o.brokers.empty()) usage("--brokers is required");
        if (o.max_batch < 1) usage("--max-batch must be at least 1");
    } else if (o.command == "create-group") {
        if (o.owner.empty() || o.name.empty()) usage("--owner and --name are required");
    } else {
        usage("unknown command " + o.command);
    }
    return o;
}

// Owns one libpq connection; used by the main thread only.
class Db {
public:
    explicit Db(const std::string& dsn) : conn_(PQconnectdb(dsn.c_str())) {
        if (PQstatus(conn_) != CONNECTION_OK) {
            fmt::print(stderr, "playball-group-management: cannot connect to group management's database: {}",
                       PQerrorMessage(conn_));
            std::exit(1);
        }
    }
    ~Db() { PQfinish(conn_); }
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;
    PGconn* get() { return conn_; }

    // Pipeline mode: queues a statement without parameters.
    void send(const char* sql) {
        if (!PQsendQueryParams(conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 0)) fail(sql, nullptr);
    }

    // Pipeline mode: the next statement's result, which must have status `expect` (and the NULL
    // that ends it). The caller clears the result.
    PGresult* result(const char* what, ExecStatusType expect) {
        PGresult* r = PQgetResult(conn_);
        if (PQresultStatus(r) != expect) fail(what, r);
        if (PGresult* end = PQgetResult(conn_)) {
            PQclear(end);
            fail(what, nullptr);
        }
        return r;
    }

    [[noreturn]] void fail(const char* what, PGresult* r) {
        fmt::print(stderr, "playball-group-management: {}: {}", what, r ? PQresultErrorMessage(r) : PQerrorMessage(conn_));
        fmt::print(stderr, "playball-group-management: nothing of this batch was applied and no offset was committed; "
                           "start the consumer again to resume from the last committed offset\n");
        std::exit(1);
    }

private:
    PGconn* conn_;
};

std::string lsnText(std::uint64_t v) { return fmt::format("{:X}/{:X}", v >> 32, v & 0xffffffffu); }

std::string timestampText(const google::protobuf::Timestamp& t) {
    std::time_t secs = static_cast<std::time_t>(t.seconds());
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, t.nanos() / 1000);
}

// The payload as the JSON receive_event() reads. A JSON payload (the outbox column as the auth
// service wrote it) is used as it is. A typed payload (content_type "application/x-protobuf;
// messageType=playball.auth.v1.X", payload.protobuf in outboxd's configuration) is decoded with
// the classes generated from examples/playball/proto and written as JSON with the proto field
// names. Returns false, with the reason in `error`, for a typed payload it cannot decode.
bool payloadJson(const outboxd::v1::Event& event, std::string& json, std::string& error) {
    const std::string& ct = event.content_type();
    if (!ct.starts_with("application/x-protobuf")) {
        json = event.payload();
        return true;
    }
    const std::string marker = "messageType=";
    auto at = ct.find(marker);
    std::string name = at == std::string::npos ? std::string() : ct.substr(at + marker.size());
    if (auto end = name.find_first_of("; "); end != std::string::npos) name.resize(end);
    playball::auth::v1::UserRegistered registered;
    playball::auth::v1::UserUpdated updated;
    playball::auth::v1::UserDeleted deleted;
    google::protobuf::Message* message = nullptr;
    if (name == registered.GetDescriptor()->full_name()) message = &registered;
    else if (name == updated.GetDescriptor()->full_name()) message = &updated;
    else if (name == deleted.GetDescriptor()->full_name()) message = &deleted;
    if (!message) {
        error = fmt::format("typed payload of unknown message type \"{}\" (content_type \"{}\")", name, ct);
        return false;
    }
    if (!message->ParseFromString(event.payload())) {
        error = fmt::format("payload is not a valid {}", name);
        return false;
    }
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    options.always_print_primitive_fields = true;
    json.clear();
    if (auto st = google::protobuf::util::MessageToJsonString(*message, &json, options); !st.ok()) {
        error = fmt::format("{} as JSON: {}", name, st.ToString());
        return false;
    }
    return true;
}

// Partitions already reset to their beginning by --from-beginning (once each, not on every rebalance).
std::set<std::pair<std::string, int>> replayed_partitions;
bool replay_requested = false;

std::string partitionNames(const rd_kafka_topic_partition_list_t* parts) {
    std::string out;
    for (int i = 0; i < parts->cnt; ++i) {
        out += fmt::format("{}{} [{}]", i == 0 ? "" : ", ", parts->elems[i].topic, parts->elems[i].partition);
    }
    return out.empty() ? "nothing" : out;
}

// Said on stderr: which partitions this member holds is the first thing to know about a consumer
// that applies nothing.
void onRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void*) {
    fmt::print(stderr, "playball-group-management: {} {}\n",
               err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assigned" : "revoked", partitionNames(parts));
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; ++i) {
            auto& p = parts->elems[i];
            if (replay_requested && replayed_partitions.emplace(p.topic, p.partition).second) {
                p.offset = RD_KAFKA_OFFSET_BEGINNING;
                fmt::print(stderr, "playball-group-management: replaying {} [{}] from its beginning\n", p.topic,
                           p.partition);
            }
        }
        rd_kafka_assign(rk, parts);
    } else {
        rd_kafka_assign(rk, nullptr);
    }
}

int consume(const Options& o) {
    Db db(o.db);
    PGresult* check = PQexec(db.get(), "SELECT to_regproc('receive_event') IS NOT NULL");
    if (PQresultStatus(check) != PGRES_TUPLES_OK || std::string(PQgetvalue(check, 0, 0)) != "t") {
        fmt::print(stderr, "playball-group-management: the database has no receive_event(): load "
                           "examples/playball/group-management/schema.sql into it first\n");
        return 1;
    }
    PQclear(check);
    PGresult* prep = PQprepare(db.get(), "receive",
                               "SELECT receive_event($1, $2, $3, $4, $5::pg_lsn, $6::pg_lsn, $7::timestamptz, $8, "
                               "$9::int, $10::bigint)",
                               10, nullptr);
    if (PQresultStatus(prep) != PGRES_COMMAND_OK) db.fail("preparing receive_event", prep);
    PQclear(prep);
    if (!PQenterPipelineMode(db.get())) db.fail("entering libpq pipeline mode", nullptr);

    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    auto set = [&](const char* k, const std::string& v) {
        if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
            fmt::print(stderr, "playball-group-management: {}={}: {}\n", k, v, err);
            std::exit(2);
        }
    };
    set("bootstrap.servers", o.brokers);
    set("group.id", o.group);
    set("client.id", "playball-group-management");
    // Static membership: a consumer started again after a crash takes its place in the group at
    // once instead of waiting for the dead member's session to time out.
    set("group.instance.id", o.instance);
    set("session.timeout.ms", "10000");
    // Also the rebalance timeout: a join interrupted by a crash resolves within 30 s, not 300 s.
    set("max.poll.interval.ms", "30000");
    set("enable.auto.commit", "false");
    set("enable.auto.offset.store", "false");
    set("auto.offset.reset", "earliest");
    set("partition.assignment.strategy", "range");
    set("topic.metadata.refresh.interval.ms", "1000");
    set("allow.auto.create.topics", "false");
    replay_requested = o.from_beginning;
    rd_kafka_conf_set_rebalance_cb(conf, onRebalance);
    // Client errors (a coordinator that cannot be reached, a group join refused) are said, not dropped.
    rd_kafka_conf_set_error_cb(conf, [](rd_kafka_t*, int code, const char* reason, void*) {
        fmt::print(stderr, "playball-group-management: kafka: {}: {}\n",
                   rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(code)), reason);
    });
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fmt::print(stderr, "playball-group-management: {}\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, o.topic.c_str(), RD_KAFKA_PARTITION_UA);
    if (rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics)) {
        fmt::print(stderr, "playball-group-management: subscribe {}: {}\n", o.topic, rd_kafka_err2str(e));
        return 1;
    }
    rd_kafka_topic_partition_list_destroy(topics);
    fmt::print(stderr, "playball-group-management: consuming {} as group {}\n", o.topic, o.group);

    // Test hook: PLAYBALL_GM_TEST_EXIT_AFTER_DB_COMMIT=N ends the process (exit code 3) right after
    // the Nth batch's database commit, before its offsets are committed: the crash the inbox is for.
    const char* exit_after = std::getenv("PLAYBALL_GM_TEST_EXIT_AFTER_DB_COMMIT");
    long exit_after_batches = exit_after ? std::atol(exit_after) : 0;
    long batches = 0;
    std::map<std::string, long> outcomes;
    std::vector<rd_kafka_message_t*> batch;
    std::vector<std::string> lines;
    outboxd::v1::Event event;
    bool warned_missing_topic = false;
    long typed_payloads = 0;
    while (!stop_requested) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 250);
        while (m) {
            if (m->err) {
                if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                    if (!warned_missing_topic)
                        fmt::print(stderr, "playball-group-management: topic {} does not exist yet; waiting\n", o.topic);
                    warned_missing_topic = true;
                } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    fmt::print(stderr, "playball-group-management: kafka: {}\n", rd_kafka_message_errstr(m));
                    if (rd_kafka_fatal_error(rk, err, sizeof err)) {
                        fmt::print(stderr, "playball-group-management: fatal: {}\n", err);
                        return 1;
                    }
                }
                rd_kafka_message_destroy(m);
            } else {
                batch.push_back(m);
            }
            if (static_cast<int>(batch.size()) >= o.max_batch) break;
            m = rd_kafka_consumer_poll(rk, 0);
        }
        if (batch.empty()) continue;

        // The batch in one transaction, sent as one libpq pipeline (BEGIN, one receive_event per
        // record, COMMIT, sync): one round trip for the batch instead of one per event.
        db.send("BEGIN");
        std::vector<std::string> ids;
        for (rd_kafka_message_t* msg : batch) {
            std::string topic = rd_kafka_topic_name(msg->rkt);
            std::string partition = std::to_string(msg->partition);
            std::string offset = std::to_string(msg->offset);
            std::string id, type, aggregate_id, payload, commit_lsn, lsn, committed_at;
            const char* values[10];
            if (!event.ParseFromArray(msg->payload, static_cast<int>(msg->len)) || event.id().empty()) {
                // Not an outboxd.v1.Event: recorded in the inbox as rejected (and said), never skipped in silence.
                id = fmt::format("undecodable:{}/{}/{}", topic, partition, offset);
                type = "?";
                if (msg->key) aggregate_id.assign(static_cast<const char*>(msg->key), msg->key_len);
                values[4] = values[5] = values[6] = nullptr;
            } else {
                id = event.id();
                type = event.type();
                aggregate_id = event.aggregate_id();
                std::string why;
                bool decoded = payloadJson(event, payload, why);
                if (decoded && event.content_type().starts_with("application/x-protobuf")) ++typed_payloads;
                if (!decoded) {
                    // Recorded as rejected by receive_event (the empty payload is not a user), and said.
                    fmt::print(stderr, "playball-group-management: event {}: {}\n", event.id(), why);
                    payload.clear();
                }
                commit_lsn = lsnText(event.source().commit_lsn());
                lsn = lsnText(event.source().lsn());
                committed_at = timestampText(event.source().commit_time());
                values[4] = commit_lsn.c_str();
                values[5] = lsn.c_str();
                values[6] = committed_at.c_str();
            }
            values[0] = id.c_str();
            values[1] = type.c_str();
            values[2] = aggregate_id.c_str();
            values[3] = payload.c_str();
            values[7] = topic.c_str();
            values[8] = partition.c_str();
            values[9] = offset.c_str();
            if (!PQsendQueryPrepared(db.get(), "receive", 10, values, nullptr, nullptr, 0))
                db.fail("sending receive_event", nullptr);
            ids.push_back(id);
            if (o.verbose)
                lines.push_back(fmt::format("{:<15} user {}  {}  -> ", type, aggregate_id,
                                            type == "UserDeleted" ? std::string() : payload));
        }
        db.send("COMMIT");
        if (!PQpipelineSync(db.get())) db.fail("sending the batch", nullptr);
        PQclear(db.result("BEGIN", PGRES_COMMAND_OK));
        for (std::size_t i = 0; i < ids.size(); ++i) {
            PGresult* r = db.result("receive_event", PGRES_TUPLES_OK);
            std::string outcome = PQgetvalue(r, 0, 0);
            PQclear(r);
            if (ids[i].starts_with("undecodable:")) outcome = "rejected: not an outboxd.v1.Event";
            ++outcomes[outcome];
            if (outcome.starts_with("rejected")) {
                rd_kafka_message_t* msg = batch[i];
                fmt::print(stderr, "playball-group-management: event {} ({} [{}] offset {}) {}\n", ids[i],
                           rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset, outcome);
            }
            if (o.verbose) lines[i] += outcome;
        }
        PQclear(db.result("COMMIT", PGRES_COMMAND_OK));
        PGresult* sync = PQgetResult(db.get());
        if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC) db.fail("the batch's sync", sync);
        PQclear(sync);
        for (const auto& l : lines) fmt::print("{}\n", l);
        lines.clear();
        std::fflush(stdout);
        if (++batches == exit_after_batches) {
            fmt::print(stderr, "playball-group-management: test hook: exiting after the database commit of batch {}, "
                               "before its offsets are committed\n", batches);
            std::_Exit(3);
        }

        rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(static_cast<int>(batch.size()));
        for (rd_kafka_message_t* msg : batch) {
            rd_kafka_topic_partition_t* p =
                rd_kafka_topic_partition_list_find(offsets, rd_kafka_topic_name(msg->rkt), msg->partition);
            if (!p) p = rd_kafka_topic_partition_list_add(offsets, rd_kafka_topic_name(msg->rkt), msg->partition);
            p->offset = msg->offset + 1;
            rd_kafka_message_destroy(msg);
        }
        batch.clear();
        if (rd_kafka_resp_err_t e = rd_kafka_commit(rk, offsets, 0))
            fmt::print(stderr,
                       "playball-group-management: committing offsets: {} (the events are applied; if they are "
                       "delivered again the inbox skips them)\n",
                       rd_kafka_err2str(e));
        rd_kafka_topic_partition_list_destroy(offsets);
    }

    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    std::string summary;
    for (const auto& [k, v] : outcomes) summary += fmt::format("{}{}: {}", summary.empty() ? "" : ", ", k, v);
    fmt::print(stderr, "playball-group-management: stopped; events this run: {}; typed payloads decoded: {}\n",
               summary.empty() ? "none" : summary, typed_payloads);
    return 0;
}

int createGroup(const Options& o) {
    Db db(o.db);
    const char* values[2] = {o.owner.c_str(), o.name.c_str()};
    PGresult* r = PQexecParams(db.get(), "SELECT create_group($1::uuid, $2)", 2, nullptr, values, nullptr, nullptr, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        const char* hint = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT);
        fmt::print(stderr, "group management: cannot create group \"{}\": {}\n", o.name,
                   primary ? primary : PQresultErrorMessage(r));
        if (hint) fmt::print(stderr, "group management: {}\n", hint);
        PQclear(r);
        return 1;
    }
    fmt::print("group management: created group \"{}\" ({}) owned by user {}\n", o.name, PQgetvalue(r, 0, 0), o.owner);
    PQclear(r);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    std::signal(SIGTERM, onSignal);
    std::signal(SIGINT, onSignal);
    if (o.command == "consume") return consume(o);
    return createGroup(o);
}
