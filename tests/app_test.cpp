// Secrets stay out of logs, and JSON log lines stay valid.
#include <catch2/catch.hpp>

#include "app/logging.h"
#include "cdc/replication_stream.h"
#include "config/config.h"
#include "sink/kafka_sink.h"

using outboxd::app::jsonEscape;
using outboxd::cdc::redactDsn;

TEST_CASE("passwords are removed from connection strings before they are logged", "[app]") {
    CHECK(redactDsn("host=db user=u password=hunter2 dbname=x") == "host=db user=u password=*** dbname=x");
    CHECK(redactDsn("host=db password = 'a b\\' c' dbname=x") == "host=db password = *** dbname=x");
    CHECK(redactDsn("PASSWORD=hunter2") == "PASSWORD=***");
    CHECK(redactDsn("postgresql://outboxd:hunter2@db:5432/auth") == "postgresql://outboxd:***@db:5432/auth");
    CHECK(redactDsn("postgres://db/auth?sslmode=verify-full") == "postgres://db/auth?sslmode=verify-full");
    CHECK(redactDsn("host=db dbname=x") == "host=db dbname=x");
    for (const char* dsn : {"host=db password=hunter2", "postgresql://u:hunter2@h/d", "password='hunter2' host=h"}) {
        CHECK(redactDsn(dsn).find("hunter2") == std::string::npos);
    }
}

TEST_CASE("secret keys are recognised in the configuration and in librdkafka properties", "[app]") {
    CHECK(outboxd::config::isSecretKey("sasl.password"));
    CHECK(outboxd::config::isSecretKey("ssl.key.password"));
    CHECK(outboxd::sink::isSecretProperty("sasl.oauthbearer.client.secret"));
    CHECK_FALSE(outboxd::sink::isSecretProperty("bootstrap.servers"));
}

TEST_CASE("log messages are escaped for JSON lines", "[app]") {
    CHECK(jsonEscape("plain") == "plain");
    CHECK(jsonEscape("a \"quoted\" \\ path") == "a \\\"quoted\\\" \\\\ path");
    CHECK(jsonEscape("line\nbreak\ttab\r") == "line\\nbreak\\ttab\\r");
    CHECK(jsonEscape(std::string("nul\0x", 5)) == "nul\\u0000x");
    CHECK(jsonEscape("\x1b[1m") == "\\u001b[1m");
    CHECK(jsonEscape("héllo") == "héllo");
}
