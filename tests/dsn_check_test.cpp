// cdc::checkDsn: libpq's parser and the option values libpq refuses only when it connects;
// and config::expandDsn read back by libpq itself.

#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include <map>
#include <string>

#include "cdc/dsn_check.h"
#include "config/config.h"

using outboxd::cdc::checkDsn;

namespace {

std::map<std::string, std::string> libpqReads(const std::string& dsn) {
    char* err = nullptr;
    PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &err);
    if (err != nullptr) PQfreemem(err);
    REQUIRE(options != nullptr);
    std::map<std::string, std::string> out;
    for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
        if (o->val != nullptr) out[o->keyword] = o->val;
    }
    PQconninfoFree(options);
    return out;
}

}  // namespace

TEST_CASE("checkDsn accepts what libpq accepts", "[dsn]") {
    for (const auto* ok : {"host=db dbname=auth", "host=a,b port=5432,5433 sslmode=verify-full",
                           "postgresql://u@db:5432/auth?sslmode=require", "port='' connect_timeout=10",
                           "target_session_attrs=read-write keepalives=1"}) {
        INFO(ok);
        CHECK_FALSE(checkDsn(ok).has_value());
    }
}

TEST_CASE("checkDsn names the bad option, never its value", "[dsn]") {
    const auto check = [](const std::string& dsn, const std::string& expected) {
        INFO(dsn);
        const auto problem = checkDsn(dsn);
        REQUIRE(problem.has_value());
        CHECK_THAT(*problem, Catch::Contains(expected));
        CHECK_THAT(*problem, !Catch::Contains("zzsecret"));
    };
    check("host=db sslmode=zzsecret", "option 'sslmode' must be one of disable, allow, prefer, require, verify-ca, "
                                      "verify-full");
    check("postgresql://db/auth?sslmode=zzsecret", "option 'sslmode'");
    check("host=db port=zzsecret", "option 'port' must be a number from 1 to 65535");
    check("host=db port=99999", "option 'port'");
    check("host=db port= connect_timeout=10", "option 'port'");  // libpq reads the next word as the port
    check("host=db port=5432,zzsecret", "option 'port'");
    check("host=db connect_timeout=zzsecret", "option 'connect_timeout' must be an integer");
    check("host=db gssencmode=zzsecret", "option 'gssencmode'");
    check("host=db passwrd=zzsecret", "libpq has no option 'passwrd'");
    check("host=db password='zzsecret", "a quoted value is not closed");
    check("host=db password=a zzsecret", "a word has no '='");
    check("postgresql://u:pa ss%zzsecret@db/auth", "not a valid libpq connection string");
}

TEST_CASE("an ${ENV} value expanded into a DSN reaches libpq as one value", "[dsn]") {
    const outboxd::config::EnvLookup env = [](std::string_view name) -> std::optional<std::string> {
        if (name == "PGPASSWORD") return std::string("x dbname=postgres");
        if (name == "TRICKY") return std::string("a' dbname='postgres");
        return std::nullopt;
    };
    for (const auto* text : {"host=db dbname=auth password=${PGPASSWORD}", "host=db password=${PGPASSWORD} dbname=auth",
                             "host=db dbname=auth password='${PGPASSWORD}'", "host=db dbname=auth password=${TRICKY}",
                             "host=db dbname=auth password='${TRICKY}'"}) {
        INFO(text);
        const auto dsn = outboxd::config::expandDsn(text, env);
        REQUIRE(dsn.has_value());
        CHECK_FALSE(checkDsn(*dsn).has_value());
        const auto options = libpqReads(*dsn);
        CHECK(options.at("dbname") == "auth");
        CHECK(options.at("host") == "db");
        CHECK(options.at("password") == *env(std::string_view(text).find("TRICKY") != std::string_view::npos
                                                 ? "TRICKY"
                                                 : "PGPASSWORD"));
    }
}
