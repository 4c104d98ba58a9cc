// Configuration-side scenarios (issue 8): an outbox made by EF Core with quoted PascalCase
// names, and a ${ENV} value that tries to add an option to the DSN.
#include <catch2/catch.hpp>

#include <cstdlib>

#include <fmt/format.h>

#include "support.h"
#include "workload.h"

using namespace itest;
using namespace std::chrono_literals;

TEST_CASE("ef_core_quoted_names_are_streamed", "[integration]") {
    // GIVEN an outbox table as EF Core with Npgsql makes it: quoted PascalCase names
    auto db = Database::create("it_efcore");
    Pg pg(db.dsn);
    pg.exec(R"(CREATE TABLE "OutboxMessages" (
                   "Id" uuid PRIMARY KEY,
                   "AggregateType" text NOT NULL,
                   "AggregateId" text NOT NULL,
                   "Type" text NOT NULL,
                   "Payload" jsonb))");
    const std::string yaml = fmt::format(R"(source:
  postgres:
    dsn: "{}"
    slot: it_efcore
    publication: it_efcore
  outbox:
    tables: ['public."OutboxMessages"']
    columns: {{id: '"Id"', aggregate_type: '"AggregateType"', aggregate_id: '"AggregateId"', type: '"Type"',
              payload: '"Payload"'}}
routing:
  topic: 'it_efcore.{{"AggregateType"}}'
  key: '{{"AggregateId"}}'
sink:
  kafka:
    brokers: "{}"
metrics:
  listen: ""
)",
                                         db.dsn, Env::get().brokers);
    Daemon daemon("it_efcore", yaml);
    daemon.start();
    waitStreaming(pg, db.name, daemon);

    // WHEN rows are written
    for (int i = 0; i < 3; ++i) {
        pg.exec(fmt::format(R"(INSERT INTO "OutboxMessages" ("Id", "AggregateType", "AggregateId", "Type", "Payload")
                               VALUES (gen_random_uuid(), 'Order', 'o-{}', 'OrderPlaced', '{{"n": {}}}'))",
                            i, i));
    }

    // THEN the publication outboxd created holds the table by its exact name, and every row
    // arrives with the quoted columns' values as topic, key and headers
    CHECK(pg.scalar("SELECT tablename FROM pg_publication_tables WHERE pubname = 'it_efcore'") ==
          std::optional<std::string>("OutboxMessages"));
    KafkaReader reader({"it_efcore.Order"});
    auto records = reader.readUntil(3, 60s);
    INFO(daemon.log());
    REQUIRE(records.size() == 3);
    for (int i = 0; i < 3; ++i) {
        CHECK(records[static_cast<std::size_t>(i)].key == std::optional<std::string>(fmt::format("o-{}", i)));
        CHECK(records[static_cast<std::size_t>(i)].headers["type"] == "OrderPlaced");
        CHECK(records[static_cast<std::size_t>(i)].headers["aggregate_type"] == "Order");
    }
    CHECK(daemon.terminate() == 0);
}

TEST_CASE("env_value_cannot_add_dsn_options", "[integration]") {
    // GIVEN a DSN whose password comes from the environment, and a value that carries an option
    auto db = Database::create("it_envdsn");
    Pg pg(db.dsn);
    std::string yaml = relayConfig(db, "it_envdsn");
    yaml.replace(yaml.find(db.dsn), db.dsn.size(), db.dsn + " password=${IT_ENVDSN_PASSWORD}");
    Daemon daemon("it_envdsn", yaml);

    // WHEN outboxd starts with that value in its environment
    ::setenv("IT_ENVDSN_PASSWORD", "x dbname=postgres", 1);
    daemon.start();
    ::unsetenv("IT_ENVDSN_PASSWORD");

    // THEN it streams from the configured database, not from the one the value named
    waitStreaming(pg, db.name, daemon);
    CHECK(pg.scalar("SELECT database FROM pg_replication_slots WHERE slot_name = 'it_envdsn'") ==
          std::optional<std::string>("it_envdsn"));
    CHECK(daemon.terminate() == 0);
}
