#include "cdc/replication_stream.h"

#include "cdc/dsn_check.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <regex>

#include <poll.h>

#include <fmt/format.h>
#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include "cdc/source_checks.h"
#include "cdc/server_version.h"

namespace outboxd::cdc {

namespace {

struct ResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

std::string trimmed(const char* message) {
    std::string s = message != nullptr ? message : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

std::string sqlState(const PGresult* r) {
    const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    return state != nullptr ? state : "";
}

// Maps a failed command to an error kind by its SQLSTATE (PostgreSQL Appendix A).
ErrorKind classify(const std::string& state, ErrorKind fallback) {
    if (state == "55006") return ErrorKind::SlotInUse;           // object_in_use
    if (state == "42501") return ErrorKind::SourcePermission;    // insufficient_privilege
    if (state == "28000" || state == "28P01") return ErrorKind::SourcePermission;
    if (state.starts_with("08") || state.starts_with("57") || state == "53300") return ErrorKind::SourceConnect;
    return fallback;
}

}  // namespace

std::string redactDsn(std::string_view dsn) {
    std::string s(dsn);
    static const std::regex kv(R"((password\s*=\s*)('([^'\\]|\\.)*'|[^\s]*))", std::regex::icase);
    s = std::regex_replace(s, kv, "$1***");
    static const std::regex uri(R"(^([a-z]+://[^:/@]*):[^@/]*@)", std::regex::icase);
    s = std::regex_replace(s, uri, "$1:***@");
    return s;
}

struct ReplicationStream::Impl {
    PGconn* conn = nullptr;
    char* frame = nullptr;

    ~Impl() {
        if (frame != nullptr) PQfreemem(frame);
        if (conn != nullptr) PQfinish(conn);
    }

    std::string lastError() const { return trimmed(PQerrorMessage(conn)); }

    std::expected<Result, Error> exec(const std::string& sql, ExecStatusType expected, ErrorKind fallback,
                                      std::string_view what) {
        Result r(PQexec(conn, sql.c_str()));
        if (r == nullptr || PQresultStatus(r.get()) != expected) {
            std::string state = sqlState(r.get());
            std::string message =
                r != nullptr ? trimmed(PQresultErrorMessage(r.get())) : lastError();
            return std::unexpected(Error{classify(state, fallback), fmt::format("{}: {}{}", what, message,
                                                                                 state.empty() ? "" : " (SQLSTATE " + state + ")")});
        }
        return r;
    }

    std::string literal(std::string_view s) const {
        char* q = PQescapeLiteral(conn, s.data(), s.size());
        std::string out = q != nullptr ? q : "''";
        PQfreemem(q);
        return out;
    }

    std::string identifier(std::string_view s) const {
        char* q = PQescapeIdentifier(conn, s.data(), s.size());
        std::string out = q != nullptr ? q : "\"\"";
        PQfreemem(q);
        return out;
    }
};

namespace {

// PG15+ row filters and column lists narrow what a publication sends of a table: a filtered row
// or a dropped column would vanish while keepalives confirm past it. outboxd needs every row.
std::expected<void, Error> checkPublishedRows(ReplicationStream::Impl& impl, const StreamOptions& options,
                                              int server_version) {
    if (server_version < 150000 || options.tables.empty()) return {};
    std::string conds;
    for (const auto& t : options.tables) {
        if (!conds.empty()) conds += " OR ";
        conds += "(n.nspname = " + impl.literal(t.schema) + " AND c.relname = " + impl.literal(t.name) + ")";
    }
    auto narrowed = impl.exec(
        "SELECT n.nspname, c.relname, pr.prqual IS NOT NULL, pr.prattrs IS NOT NULL FROM pg_catalog.pg_publication_rel "
        "pr JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE p.pubname = " +
            impl.literal(options.publication) + " AND (pr.prqual IS NOT NULL OR pr.prattrs IS NOT NULL) AND (" + conds +
            ")",
        PGRES_TUPLES_OK, ErrorKind::SourceConnect, "reading the publication's row filters and column lists");
    if (!narrowed) return std::unexpected(narrowed.error());
    if (PQntuples(narrowed->get()) == 0) return {};
    PGresult* r = narrowed->get();
    std::string table = impl.identifier(PQgetvalue(r, 0, 0)) + "." + impl.identifier(PQgetvalue(r, 0, 1));
    bool filter = std::string(PQgetvalue(r, 0, 2)) == "t";
    std::string pub = impl.identifier(options.publication);
    return std::unexpected(Error{
        ErrorKind::PublicationMissing,
        fmt::format("publication '{}' publishes outbox table {} with a {}, so some of its rows or columns would never "
                    "reach outboxd; outboxd needs every row and column: run BEGIN; ALTER PUBLICATION {} DROP TABLE {}; "
                    "ALTER PUBLICATION {} ADD TABLE {}; COMMIT; then restart outboxd",
                    options.publication, table, filter ? "row filter (WHERE)" : "column list", pub, table, pub,
                    table)});
}

// The columns the configuration names (mapped columns and routing templates) must exist in each
// outbox table: checked at connect, before any event is published, rather than at its first row.
std::expected<void, Error> checkRequiredColumns(ReplicationStream::Impl& impl, const StreamOptions& options) {
    if (options.required_columns.empty()) return {};
    for (const auto& t : options.tables) {
        auto cols = impl.exec(
            "SELECT a.attname FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN "
            "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = " +
                impl.literal(t.schema) + " AND c.relname = " + impl.literal(t.name) +
                " AND a.attnum > 0 AND NOT a.attisdropped",
            PGRES_TUPLES_OK, ErrorKind::SourceConnect, "reading the outbox table's columns");
        if (!cols) return std::unexpected(cols.error());
        if (PQntuples(cols->get()) == 0) continue;  // not visible here; the Relation message is checked too
        for (const auto& want : options.required_columns) {
            if (want.table && *want.table != t) continue;
            bool found = false;
            for (int i = 0; i < PQntuples(cols->get()) && !found; ++i) found = want.column == PQgetvalue(cols->get(), i, 0);
            if (found) continue;
            return std::unexpected(Error{
                ErrorKind::MappedColumnMissing,
                fmt::format("outbox table {}.{} has no column '{}', which {} names; fix the configuration or add the "
                            "column, then restart. Nothing was published",
                            t.schema, t.name, want.column, want.key)});
        }
    }
    return {};
}

// Records in the publication's comment that this slot streamed from it, and from where, so that
// a later start can tell a lost slot from a first install. Needs ownership of the publication;
// without it outboxd warns and goes on (a lost slot is then not recognised).
void recordSlot(ReplicationStream::Impl& impl, const StreamOptions& options, const std::string& pub_ident,
                const std::string& comment, Lsn confirmed) {
    std::string updated = withSlotRecord(comment, SlotRecord{options.slot, confirmed});
    if (updated == comment) return;
    auto done = impl.exec("COMMENT ON PUBLICATION " + pub_ident + " IS " + impl.literal(updated), PGRES_COMMAND_OK,
                          ErrorKind::SourceConnect, "COMMENT ON PUBLICATION");
    if (!done) {
        spdlog::warn("could not record slot {} in the comment of publication {} ({}): if the slot is ever lost, the "
                     "next start cannot tell it from a first install and would create a new slot; make outboxd's role "
                     "the publication's owner",
                     options.slot, options.publication, done.error().message);
    }
}

}  // namespace

ReplicationStream::ReplicationStream(std::unique_ptr<Impl> impl, StreamInfo info)
    : impl_(std::move(impl)), info_(std::move(info)) {}

ReplicationStream::~ReplicationStream() = default;

int ReplicationStream::socket() const { return PQsocket(impl_->conn); }

std::expected<std::unique_ptr<ReplicationStream>, Error> ReplicationStream::open(const StreamOptions& options) {
    auto impl = std::make_unique<Impl>();
    if (auto invalid = validateDsn(options.dsn)) {
        return std::unexpected(Error{ErrorKind::SourceUnsupported, *invalid});
    }
    // Defaults come before dbname, so that the user's DSN overrides them; replication comes
    // after, so that it cannot be. TCP keepalives and tcp_user_timeout bound how long a silent
    // network partition goes unnoticed; ISO dates keep the timestamp column parseable.
    const char* keys[] = {"connect_timeout",    "keepalives",     "keepalives_idle", "keepalives_interval",
                          "keepalives_count",   "tcp_user_timeout", "options",       "fallback_application_name",
                          "dbname",             "replication",    nullptr};
    const char* values[] = {"10",  "1",  "10", "5", "3", "30000", "-c datestyle=ISO,YMD -c timezone=UTC",
                            "outboxd", options.dsn.c_str(), "database", nullptr};
    impl->conn = PQconnectdbParams(keys, values, 1);
    if (impl->conn == nullptr) {
        return std::unexpected(Error{ErrorKind::SourceConnect, "could not allocate a PostgreSQL connection"});
    }
    if (PQstatus(impl->conn) != CONNECTION_OK) {
        std::string message = impl->lastError();
        if (message.find("certificate") != std::string::npos ||
            message.find("does not match host name") != std::string::npos) {
            return std::unexpected(Error{
                ErrorKind::SourcePermission,
                fmt::format("TLS verification of PostgreSQL failed ({}): {}; check sslrootcert (the CA that signed "
                            "the server's certificate) and that the host in source.postgres.dsn is a name the "
                            "certificate carries",
                            redactDsn(options.dsn), message)});
        }
        ConnectFailure failure = classifyConnectFailure(message);
        return std::unexpected(Error{failure.kind, fmt::format("could not connect to PostgreSQL ({}): {}{}{}",
                                                               redactDsn(options.dsn), message,
                                                               failure.hint.empty() ? "" : "; ", failure.hint)});
    }
    StreamInfo info;
    info.server_version = PQserverVersion(impl->conn);
    auto text = [](const char* v) { return v != nullptr ? std::string(v) : std::string(); };
    info.host = text(PQhost(impl->conn));
    info.hostaddr = text(PQhostaddr(impl->conn));
    info.port = text(PQport(impl->conn));
    if (info.server_version < 100000) {
        return std::unexpected(Error{ErrorKind::SourceUnsupported,
                                     fmt::format("PostgreSQL {} is too old: outboxd needs 10 or later (pgoutput)",
                                                 info.server_version)});
    }

    if (options.failover && !hasFailoverSlots(info.server_version)) {
        return std::unexpected(Error{
            ErrorKind::SourceUnsupported,
            fmt::format("source.postgres.failover is true, but PostgreSQL {} has no failover slots (they are new in "
                        "PostgreSQL 17); set failover: false, or upgrade the server",
                        majorVersionName(info.server_version))});
    }

    auto ident = impl->exec("IDENTIFY_SYSTEM", PGRES_TUPLES_OK, ErrorKind::SourceConnect, "IDENTIFY_SYSTEM");
    if (!ident) return std::unexpected(ident.error());
    if (PQntuples(ident->get()) != 1 || PQnfields(ident->get()) < 4) {
        return std::unexpected(Error{ErrorKind::SourceConnect, "IDENTIFY_SYSTEM returned an unexpected shape"});
    }
    info.system_id = PQgetvalue(ident->get(), 0, 0);
    info.timeline = static_cast<std::uint32_t>(std::strtoul(PQgetvalue(ident->get(), 0, 1), nullptr, 10));
    info.server_flush = Lsn::parse(PQgetvalue(ident->get(), 0, 2)).value_or(Lsn{});
    if (auto other = checkSameSystem(options.expected_system_id, info.system_id)) {
        return std::unexpected(Error{ErrorKind::SlotMismatch, *other});
    }
    std::string dbname = PQgetisnull(ident->get(), 0, 3) ? "" : PQgetvalue(ident->get(), 0, 3);
    if (dbname.empty()) {
        return std::unexpected(Error{ErrorKind::SourceUnsupported,
                                     "the connection is not bound to a database; give dbname in source.postgres.dsn"});
    }

    auto wal = impl->exec("SHOW wal_level", PGRES_TUPLES_OK, ErrorKind::SourceConnect, "SHOW wal_level");
    if (!wal) return std::unexpected(wal.error());
    if (std::string(PQgetvalue(wal->get(), 0, 0)) != "logical") {
        return std::unexpected(Error{
            ErrorKind::SourceUnsupported,
            fmt::format("wal_level is '{}': logical decoding needs wal_level=logical; set it in postgresql.conf "
                        "and restart PostgreSQL",
                        PQgetvalue(wal->get(), 0, 0))});
    }

    // --- publication ---------------------------------------------------------------------
    const std::string pub_lit = impl->literal(options.publication);
    const std::string pub_ident = impl->identifier(options.publication);
    auto pub = impl->exec("SELECT pubinsert, obj_description(oid, 'pg_publication') FROM pg_catalog.pg_publication "
                          "WHERE pubname = " + pub_lit,
                          PGRES_TUPLES_OK, ErrorKind::SourceConnect, "looking up the publication");
    if (!pub) return std::unexpected(pub.error());
    // The publication's comment, where outboxd records the slots that streamed from it.
    std::string pub_comment;
    if (PQntuples(pub->get()) == 1 && !PQgetisnull(pub->get(), 0, 1)) pub_comment = PQgetvalue(pub->get(), 0, 1);
    if (PQntuples(pub->get()) == 1 && std::string(PQgetvalue(pub->get(), 0, 0)) != "t") {
        return std::unexpected(Error{
            ErrorKind::PublicationMissing,
            fmt::format("publication '{}' does not publish inserts (created WITH (publish = ...) without 'insert'), so "
                        "no outbox row would reach outboxd; run ALTER PUBLICATION {} SET (publish = 'insert'), then "
                        "restart outboxd",
                        options.publication, pub_ident)});
    }
    auto tableList = [&](const std::vector<config::TableName>& tables) {
        std::string list;
        for (const auto& t : tables) {
            if (!list.empty()) list += ", ";
            list += impl->identifier(t.schema) + "." + impl->identifier(t.name);
        }
        return list;
    };
    // A partitioned outbox table in a publication without publish_via_partition_root would be
    // published under its partitions' names, which no configured table matches: refuse. Checked
    // before membership, since pg_publication_tables then lists the partitions, not the table.
    auto checkPartitions = [&]() -> std::expected<void, Error> {
        std::string conds;
        for (const auto& t : options.tables) {
            if (!conds.empty()) conds += " OR ";
            conds += "(n.nspname = " + impl->literal(t.schema) + " AND c.relname = " + impl->literal(t.name) + ")";
        }
        auto parts = impl->exec(
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
            "c.relnamespace WHERE c.relkind = 'p' AND (" + conds + ")",
            PGRES_TUPLES_OK, ErrorKind::SourceConnect, "looking for partitioned outbox tables");
        if (!parts) return std::unexpected(parts.error());
        if (PQntuples(parts->get()) > 0) {
            bool via_root = false;
            if (info.server_version >= 130000) {
                auto root = impl->exec("SELECT pubviaroot FROM pg_catalog.pg_publication WHERE pubname = " + pub_lit,
                                       PGRES_TUPLES_OK, ErrorKind::SourceConnect, "reading the publication");
                if (!root) return std::unexpected(root.error());
                via_root = PQntuples(root->get()) == 1 && std::string(PQgetvalue(root->get(), 0, 0)) == "t";
            }
            if (!via_root) {
                return std::unexpected(Error{
                    ErrorKind::PublicationMissing,
                    fmt::format("outbox table {}.{} is partitioned, and publication '{}' would publish its rows under "
                                "the partitions' names; run ALTER PUBLICATION {} SET (publish_via_partition_root = "
                                "true) (PostgreSQL 13 or later)",
                                PQgetvalue(parts->get(), 0, 0), PQgetvalue(parts->get(), 0, 1), options.publication,
                                pub_ident)});
            }
        }
        return {};
    };
    auto tableErrorKind = [](const Error& e) {
        return e.message.find("42P01") != std::string::npos ? ErrorKind::PublicationMissing : e.kind;
    };
    if (PQntuples(pub->get()) == 0) {
        if (!options.create_publication) {
            return std::unexpected(Error{
                ErrorKind::PublicationMissing,
                fmt::format("publication '{}' does not exist and source.postgres.create_publication is false; create "
                            "it with CREATE PUBLICATION {} FOR TABLE {}, or allow outboxd to create it",
                            options.publication, pub_ident, tableList(options.tables))});
        }
        // publish_via_partition_root (PG13+): a partitioned outbox publishes its rows under its own
        // name, not under each partition's, so the router recognises them.
        // publish = 'insert': outboxd needs nothing else, and a DELETE on an outbox table without a
        // primary key (the usual clean-up) needs no replica identity then.
        auto created = impl->exec("CREATE PUBLICATION " + pub_ident + " FOR TABLE " + tableList(options.tables) +
                                      (info.server_version >= 130000
                                           ? " WITH (publish = 'insert', publish_via_partition_root = true)"
                                           : " WITH (publish = 'insert')"),
                                  PGRES_COMMAND_OK, ErrorKind::SourceUnsupported, "CREATE PUBLICATION");
        if (!created) {
            Error e = created.error();
            e.kind = tableErrorKind(e);
            e.message += "; check that every table in source.outbox.tables exists";
            return std::unexpected(e);
        }
        spdlog::info("created publication {} for {}", options.publication, tableList(options.tables));
        if (auto ok = checkPartitions(); !ok) return std::unexpected(ok.error());
    } else {
        if (auto ok = checkPartitions(); !ok) return std::unexpected(ok.error());
        auto have = impl->exec("SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = " +
                                   pub_lit,
                               PGRES_TUPLES_OK, ErrorKind::SourceConnect, "listing the publication's tables");
        if (!have) return std::unexpected(have.error());
        std::vector<config::TableName> missing;
        for (const auto& t : options.tables) {
            bool found = false;
            for (int i = 0; i < PQntuples(have->get()); ++i) {
                if (t.schema == PQgetvalue(have->get(), i, 0) && t.name == PQgetvalue(have->get(), i, 1)) found = true;
            }
            if (!found) missing.push_back(t);
        }
        if (!missing.empty()) {
            if (!options.create_publication) {
                return std::unexpected(Error{
                    ErrorKind::PublicationMissing,
                    fmt::format("publication '{}' does not include {}; run ALTER PUBLICATION {} ADD TABLE {}",
                                options.publication, tableList(missing), pub_ident, tableList(missing))});
            }
            // outboxd streamed from this publication before: a configured table missing now was
            // dropped from it (ALTER PUBLICATION ... DROP TABLE), and its rows inserted since were
            // never sent. Adding it back in silence would hide that; the operator decides.
            if (findSlotRecord(pub_comment, options.slot)) {
                return std::unexpected(Error{
                    ErrorKind::PublicationMissing,
                    fmt::format("publication '{0}' does not include {1}, although slot '{2}' streamed from it before: "
                                "if the table was dropped from the publication, rows inserted into it since were not "
                                "published (reconcile them from the outbox table); if it is new in the configuration, "
                                "nothing was missed. Then run ALTER PUBLICATION {3} ADD TABLE {1} and restart outboxd",
                                options.publication, tableList(missing), options.slot, pub_ident)});
            }
            auto altered = impl->exec("ALTER PUBLICATION " + pub_ident + " ADD TABLE " + tableList(missing),
                                      PGRES_COMMAND_OK, ErrorKind::SourceUnsupported, "ALTER PUBLICATION");
            if (!altered) {
                Error e = altered.error();
                e.kind = tableErrorKind(e);
                return std::unexpected(e);
            }
            spdlog::info("added {} to publication {}", tableList(missing), options.publication);
        }
    }
    if (auto ok = checkPublishedRows(*impl, options, info.server_version); !ok) return std::unexpected(ok.error());
    if (auto ok = checkRequiredColumns(*impl, options); !ok) return std::unexpected(ok.error());

    // The walsender drops a standby silent for wal_sender_timeout; outboxd gives up on a server
    // silent for twice that (keepalives come at half of it).
    if (auto wst = impl->exec("SHOW wal_sender_timeout", PGRES_TUPLES_OK, ErrorKind::SourceConnect,
                              "SHOW wal_sender_timeout")) {
        std::string v = PQgetvalue(wst->get(), 0, 0);
        auto timeout = parseDurationSetting(v);
        if (!timeout) {
            spdlog::warn("could not read wal_sender_timeout '{}'; assuming PostgreSQL's default of 60 s", v);
            timeout = std::chrono::milliseconds(60'000);
        }
        std::int64_t ms = timeout->count();
        info.server_silence_limit = std::chrono::milliseconds(ms <= 0 ? 0 : std::max<std::int64_t>(2 * ms, 10000));
    }

    // --- slot ------------------------------------------------------------------------------
    const std::string slot_lit = impl->literal(options.slot);
    const std::string slot_ident = impl->identifier(options.slot);
    const std::string slot_query =
        fmt::format("SELECT plugin, slot_type, database, active_pid, confirmed_flush_lsn, {}, {}, {}, {} FROM "
                    "pg_catalog.pg_replication_slots WHERE slot_name = {}",
                    slotStateColumns(info.server_version),
                    hasFailoverSlots(info.server_version) ? "failover" : "NULL::boolean",
                    info.server_version >= 140000 ? "two_phase" : "false",
                    hasFailoverSlots(info.server_version) ? "synced" : "NULL::boolean", slot_lit);
    auto slot = impl->exec(slot_query, PGRES_TUPLES_OK, ErrorKind::SourceConnect, "looking up the slot");
    if (!slot) return std::unexpected(slot.error());
    {
        PGresult* r = slot->get();
        PromotedSlot found;
        found.exists = PQntuples(r) == 1;
        auto flag = [r](int col) -> std::optional<bool> {
            if (PQgetisnull(r, 0, col)) return std::nullopt;
            return std::string(PQgetvalue(r, 0, col)) == "t";
        };
        if (found.exists) {
            found.failover = flag(5 + kSlotStateColumnCount);
            found.synced = flag(7 + kSlotStateColumnCount);
            if (!PQgetisnull(r, 0, 4)) found.confirmed_flush = Lsn::parse(PQgetvalue(r, 0, 4)).value_or(Lsn{});
        }
        if (auto refused = checkPromotedSlot(options.slot, options.expected_timeline, info.timeline, found,
                                             options.confirmed_here)) {
            return std::unexpected(Error{found.exists ? ErrorKind::SlotMismatch : ErrorKind::SlotMissing, *refused});
        }
        if (options.expected_timeline != 0 && info.timeline > options.expected_timeline) {
            spdlog::info("the server was promoted (timeline {}, before {}): resuming from the slot {} synchronized "
                         "from the old primary, at {} (outboxd had confirmed {})",
                         info.timeline, options.expected_timeline, options.slot, found.confirmed_flush,
                         options.confirmed_here);
        }
    }
    const auto record = findSlotRecord(pub_comment, options.slot);
    if (PQntuples(slot->get()) == 0 && record && !options.accept_slot_loss) {
        std::string since = record->confirmed.isValid()
                                ? fmt::format("{} or later (its confirmed LSN when outboxd last connected)",
                                              record->confirmed)
                                : std::string("not recorded");
        return std::unexpected(Error{
            ErrorKind::SlotMissing,
            fmt::format("replication slot '{0}' does not exist, but publication '{1}' records that outboxd streamed "
                        "from it: the slot was dropped, or lost in a database failover. Events committed after its "
                        "last confirmed LSN ({2}) cannot be read any more, and a new slot would start at the current "
                        "WAL position and skip them in silence, so outboxd does not create one. Reconcile consumers "
                        "from the outbox table (the rows committed since), then accept the loss once with: outboxd "
                        "--accept-slot-loss --config <file> (or run COMMENT ON PUBLICATION {3} IS NULL)",
                        options.slot, options.publication, since, pub_ident)});
    }
    if (PQntuples(slot->get()) == 0) {
        if (!options.create_slot) {
            return std::unexpected(Error{
                ErrorKind::SlotMissing,
                fmt::format("replication slot '{}' does not exist and source.postgres.create_slot is false; create it "
                            "with SELECT pg_create_logical_replication_slot({}, 'pgoutput'), or allow outboxd to",
                            options.slot, slot_lit)});
        }
        auto created = impl->exec("CREATE_REPLICATION_SLOT " + slot_ident + " LOGICAL pgoutput " +
                                      (options.failover ? "(SNAPSHOT 'nothing', FAILOVER true)" : "NOEXPORT_SNAPSHOT"),
                                  PGRES_TUPLES_OK, ErrorKind::SourceUnsupported, "CREATE_REPLICATION_SLOT");
        if (!created) return std::unexpected(created.error());
        info.slot_created = true;
        if (record) {
            spdlog::warn("created replication slot {} at {}, accepting (--accept-slot-loss) that events committed "
                         "after {} and before it were not published",
                         options.slot, PQgetvalue(created->get(), 0, 1),
                         record->confirmed.isValid() ? record->confirmed.toString() : "the lost slot's confirmed LSN");
        } else {
            spdlog::info("created replication slot {} at {}: events committed from now on are published",
                         options.slot, PQgetvalue(created->get(), 0, 1));
        }
        slot = impl->exec(slot_query, PGRES_TUPLES_OK, ErrorKind::SourceConnect, "looking up the slot");
        if (!slot) return std::unexpected(slot.error());
        if (PQntuples(slot->get()) == 0) {
            return std::unexpected(Error{ErrorKind::SlotMissing, "the slot vanished right after it was created"});
        }
    }
    {
        PGresult* r = slot->get();
        std::string plugin = PQgetvalue(r, 0, 0);
        std::string type = PQgetvalue(r, 0, 1);
        std::string database = PQgetvalue(r, 0, 2);
        if (type != "logical" || plugin != "pgoutput" || database != dbname) {
            return std::unexpected(Error{
                ErrorKind::SlotMismatch,
                fmt::format("replication slot '{}' is a {} slot with plugin '{}' on database '{}'; outboxd needs a "
                            "logical pgoutput slot on '{}': choose another source.postgres.slot",
                            options.slot, type, plugin, database, dbname)});
        }
        auto text = [r](int col) -> std::optional<std::string> {
            if (PQgetisnull(r, 0, col)) return std::nullopt;
            return std::string(PQgetvalue(r, 0, col));
        };
        SlotInvalidation inval;
        inval.wal_status = text(5).value_or("");
        if (auto c = text(6)) inval.conflicting = *c == "t";
        inval.invalidation_reason = text(7);
        inval.inactive_since = text(8);
        if (isInvalidated(inval)) {
            return std::unexpected(Error{ErrorKind::SlotInvalidated, invalidationMessage(options.slot, inval)});
        }
        if (auto failover = text(5 + kSlotStateColumnCount); failover && (*failover == "t") != options.failover) {
            return std::unexpected(Error{
                ErrorKind::SlotMismatch,
                fmt::format("replication slot '{}' has failover = {}, but source.postgres.failover is {}; make them "
                            "agree: set failover: {}, or change the slot on a replication connection (psql "
                            "\"dbname=... replication=database\" -c 'ALTER_REPLICATION_SLOT {} (FAILOVER {})') while "
                            "no relay streams from it",
                            options.slot, *failover == "t" ? "true" : "false", options.failover ? "true" : "false",
                            *failover == "t" ? "true" : "false", slot_ident, options.failover ? "true" : "false")});
        }
        if (auto two_phase = text(6 + kSlotStateColumnCount); two_phase && *two_phase == "t") {
            return std::unexpected(Error{
                ErrorKind::SlotMismatch,
                fmt::format("replication slot '{}' was created with two_phase, so PostgreSQL would send prepared "
                            "transactions at PREPARE time, which outboxd does not handle. Use a slot created without "
                            "it: give another source.postgres.slot (outboxd creates it), or drop this one "
                            "(SELECT pg_drop_replication_slot({})) after its events are delivered; a new slot starts "
                            "at the current WAL position",
                            options.slot, slot_lit)});
        }
        if (!PQgetisnull(r, 0, 3)) {
            return std::unexpected(Error{ErrorKind::SlotInUse,
                                         fmt::format("replication slot '{}' is in use by process {}; waiting for it "
                                                     "to be released",
                                                     options.slot, PQgetvalue(r, 0, 3))});
        }
        if (!PQgetisnull(r, 0, 4)) {
            info.start_lsn = Lsn::parse(PQgetvalue(r, 0, 4)).value_or(Lsn{});
        }
    }
    recordSlot(*impl, options, pub_ident, pub_comment, info.start_lsn);

    // --- start streaming -------------------------------------------------------------------
    info.proto_version = sharedProtocol(info.server_version, options.max_proto_version);
    info.messages = sendsMessages(info.server_version);
    std::string pubnames = impl->identifier(options.publication);
    std::string start = fmt::format("START_REPLICATION SLOT {} LOGICAL 0/0 (proto_version '{}', publication_names {}{})",
                                    slot_ident, info.proto_version, impl->literal(pubnames),
                                    info.messages ? ", messages 'true'" : "");
    Result started(PQexec(impl->conn, start.c_str()));
    if (started == nullptr || PQresultStatus(started.get()) != PGRES_COPY_BOTH) {
        std::string state = sqlState(started.get());
        std::string message = started != nullptr ? trimmed(PQresultErrorMessage(started.get())) : impl->lastError();
        ErrorKind kind = classify(state, ErrorKind::SourceStream);
        if (message.find("can no longer get changes") != std::string::npos ||
            message.find("has been invalidated") != std::string::npos) {
            kind = ErrorKind::SlotInvalidated;
        } else if (state == "42704") {
            kind = message.find("publication") != std::string::npos ? ErrorKind::PublicationMissing
                                                                      : ErrorKind::SlotMissing;
        }
        return std::unexpected(Error{kind, fmt::format("START_REPLICATION failed: {}", message)});
    }
    if (PQsetnonblocking(impl->conn, 1) != 0) {
        return std::unexpected(Error{ErrorKind::SourceConnect, "could not make the replication connection non-blocking"});
    }
    return std::unique_ptr<ReplicationStream>(new ReplicationStream(std::move(impl), std::move(info)));
}

std::expected<std::optional<std::span<const std::byte>>, Error> ReplicationStream::next(bool may_read) {
    if (impl_->frame != nullptr) {
        PQfreemem(impl_->frame);
        impl_->frame = nullptr;
    }
    for (int attempt = 0; attempt < (may_read ? 2 : 1); ++attempt) {
        int n = PQgetCopyData(impl_->conn, &impl_->frame, 1);
        if (n > 0) {
            return std::span<const std::byte>(reinterpret_cast<const std::byte*>(impl_->frame),
                                              static_cast<std::size_t>(n));
        }
        if (n == 0) {
            if (attempt == 0 && PQconsumeInput(impl_->conn) == 0) {
                return std::unexpected(
                    Error{ErrorKind::SourceStream, fmt::format("replication connection lost: {}", impl_->lastError())});
            }
            continue;
        }
        if (n == -1) {
            Result r(PQgetResult(impl_->conn));
            std::string state = sqlState(r.get());
            std::string message = r != nullptr ? trimmed(PQresultErrorMessage(r.get())) : "";
            ErrorKind kind = classify(state, ErrorKind::SourceStream);
            if (message.find("publication") != std::string::npos &&
                (state == "42704" || message.find("does not exist") != std::string::npos)) {
                kind = ErrorKind::PublicationMissing;
            } else if (message.find("replication slot") != std::string::npos &&
                       (state == "42704" || message.find("does not exist") != std::string::npos)) {
                kind = ErrorKind::SlotMissing;
            }
            if (message.find("can no longer get changes") != std::string::npos ||
                message.find("has been invalidated") != std::string::npos) {
                kind = ErrorKind::SlotInvalidated;
            }
            return std::unexpected(Error{kind, fmt::format("the server ended the replication stream{}{}",
                                                           message.empty() ? "" : ": ", message)});
        }
        return std::unexpected(
            Error{ErrorKind::SourceStream, fmt::format("replication stream error: {}", impl_->lastError())});
    }
    return std::optional<std::span<const std::byte>>{};
}

std::expected<void, Error> ReplicationStream::sendStatus(const wire::StandbyStatusUpdate& update) {
    auto bytes = wire::encode(update);
    int rc = PQputCopyData(impl_->conn, reinterpret_cast<const char*>(bytes.data()), static_cast<int>(bytes.size()));
    if (rc < 0) {
        return std::unexpected(
            Error{ErrorKind::SourceStream, fmt::format("could not send a status update: {}", impl_->lastError())});
    }
    if (auto flushed = flush(); !flushed) return std::unexpected(flushed.error());
    return {};
}

std::expected<bool, Error> ReplicationStream::flush() {
    int rc = PQflush(impl_->conn);
    if (rc < 0) {
        return std::unexpected(
            Error{ErrorKind::SourceStream, fmt::format("could not flush to the server: {}", impl_->lastError())});
    }
    return rc == 0;
}

void ReplicationStream::close() {
    if (impl_->conn == nullptr) return;
    // Non-blocking, bounded: a server that stopped reading must not hold up the shutdown.
    PQputCopyEnd(impl_->conn, nullptr);
    for (int i = 0; i < 20 && PQflush(impl_->conn) == 1; ++i) {
        pollfd pfd{PQsocket(impl_->conn), POLLOUT, 0};
        ::poll(&pfd, 1, 100);
    }
    PQfinish(impl_->conn);
    impl_->conn = nullptr;
}

std::optional<std::string> validateDsn(const std::string& dsn) { return checkDsn(dsn); }

std::string libpqVersion() {
    const int v = PQlibVersion();
    return fmt::format("{}.{}", v / 10000, v % 10000);
}

}  // namespace outboxd::cdc
