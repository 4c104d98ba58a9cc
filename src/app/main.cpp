// outboxd: carries a PostgreSQL outbox table to Kafka through logical replication.
// Command line as in spec.md: --config FILE (or OUTBOXD_CONFIG), --check-config, --version, --help.

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <limits>
#include <map>
#include <string>
#include <string_view>

#include <unistd.h>

#include <fmt/format.h>
#include <google/protobuf/stubs/common.h>
#include <spdlog/spdlog.h>

#include "app/logging.h"
#include "app/payload_set.h"
#include "app/relay.h"
#include "app/signal_watch.h"
#include "cdc/replication_stream.h"
#include "cdc/slot_monitor.h"
#include "config/config.h"
#include "migrate/debezium.h"
#include "metrics/http_server.h"
#include "metrics/metrics.h"
#include "sink/kafka_sink.h"

namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_hangups{0};
std::atomic<bool> g_reload{false};

void onSignal(int) { g_stop.store(true); }
void onHangup(int) {
    g_hangups.fetch_add(1);
    g_reload.store(true);
}

// Time allowed, after the stop request, beyond the configured drain before the process ends
// itself: closing the replication connection, stopping the monitor and the HTTP endpoint.
constexpr std::chrono::milliseconds kExitGrace{15000};

std::map<std::string, std::string> libraryVersions() {
    return {{"librdkafka", outboxd::sink::kafkaClientVersion()},
            {"libpq", outboxd::cdc::libpqVersion()},
            {"protobuf", google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION)}};
}

constexpr std::string_view kUsage = R"(usage: outboxd [--config FILE] [--check-config] [--accept-slot-loss]
       outboxd --from-debezium FILE
       outboxd --version | --help

Tails a PostgreSQL outbox table through logical replication and publishes each row to Kafka
as an outboxd.v1.Event, confirming the slot only behind Kafka's acknowledgements.

  --config FILE    configuration file (default: $OUTBOXD_CONFIG)
  --check-config   validate the configuration: print 'ok' and exit 0, or print each
                   problem as FILE:LINE:COL: message and exit 2
  --accept-slot-loss
                   once, after a lost replication slot (dropped, or lost in a failover):
                   create a new slot at the current WAL position, accepting that the
                   events the lost slot had not confirmed are not published
  --from-debezium FILE
                   print the outboxd YAML equivalent to a Debezium PostgreSQL connector
                   configuration with the Outbox Event Router (Kafka Connect JSON or Debezium
                   Server application.properties), with a comment for each option not
                   carried over; exit 2 when FILE is not such a configuration
  --version        print the version and exit
  --help           print this help and exit

Exit codes: 0 clean shutdown (SIGTERM/SIGINT), 1 fatal runtime error, 2 bad usage or configuration.
)";

int usageError(std::string_view message) {
    fmt::print(stderr, "outboxd: {}\n{}", message, kUsage);
    return 2;
}

int fromDebezium(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    if (in) text << in.rdbuf();
    if (!in || in.bad()) {
        fmt::print(stderr, "outboxd: --from-debezium: cannot read {}: {}\n", path, std::strerror(errno));
        return 2;
    }
    auto converted = outboxd::migrate::fromDebezium(text.str(), path);
    if (!converted) {
        fmt::print(stderr,
                   "outboxd: --from-debezium: {} is not a Debezium PostgreSQL connector configuration with the "
                   "Outbox Event Router: {}\n",
                   path, converted.error());
        return 2;
    }
    fmt::print("{}", converted->yaml);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // First of all: a SIGTERM that comes while the configuration loads is a stop request too (the
    // relay then exits 0 before connecting), not the default action's death by signal.
    struct sigaction sa {};
    sa.sa_handler = onSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    struct sigaction hup {};
    hup.sa_handler = onHangup;
    sigemptyset(&hup.sa_mask);
    hup.sa_flags = SA_RESTART;  // a reload request does not interrupt reading the configuration
    sigaction(SIGHUP, &hup, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    std::string config_path;
    bool check_only = false;
    bool accept_slot_loss = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            fmt::print("{}", kUsage);
            return 0;
        }
        if (arg == "--version") {
            fmt::print("outboxd {} (librdkafka {}) (commit {})\n", OUTBOXD_VERSION, outboxd::sink::kafkaClientVersion(),
                       OUTBOXD_COMMIT);
            for (const auto& [name, version] : libraryVersions()) fmt::print("{} {}\n", name, version);
            return 0;
        }
        if (arg == "--from-debezium") {
            if (i + 1 >= argc) return usageError("--from-debezium needs a file name");
            return fromDebezium(argv[i + 1]);
        }
        if (arg == "--check-config") {
            check_only = true;
        } else if (arg == "--accept-slot-loss") {
            accept_slot_loss = true;
        } else if (arg == "--config") {
            if (i + 1 >= argc) return usageError("--config needs a file name");
            config_path = argv[++i];
        } else if (arg.starts_with("--config=")) {
            config_path = std::string(arg.substr(9));
        } else {
            return usageError(fmt::format("unknown argument '{}'", arg));
        }
    }
    if (config_path.empty()) {
        if (const char* env = std::getenv("OUTBOXD_CONFIG"); env != nullptr && *env != '\0') {
            config_path = env;
        } else {
            return usageError("no configuration: give --config FILE or set OUTBOXD_CONFIG");
        }
    }

    auto loaded = outboxd::config::loadConfig(config_path, outboxd::config::processEnv());
    if (!loaded && g_stop.load()) {
        // The signal interrupted the read (a configuration on a pipe, a slow volume): the
        // operator asked for a stop, which is what happens.
        fmt::print(stderr, "outboxd: stop requested while the configuration was read; exiting\n");
        return 0;
    }
    if (!loaded) {
        for (const auto& error : loaded.error()) {
            fmt::print(stderr, "{}\n", error.toString());
        }
        return 2;
    }
    // The checks the runtime makes when it connects, made here too so that --check-config refuses
    // exactly what the start would refuse.
    bool refused = false;
    if (auto invalid = outboxd::cdc::validateDsn(loaded->postgres.dsn)) {
        fmt::print(stderr, "{}\n", loaded->errorAt("source.postgres.dsn", *invalid).toString());
        refused = true;
    }
    if (auto invalid = outboxd::sink::checkProducerProperties(loaded->kafka)) {
        const std::string path = invalid->property.empty() ? std::string("sink.kafka.properties")
                                                           : "sink.kafka.properties." + invalid->property;
        fmt::print(stderr, "{}\n", loaded->errorAt(path, invalid->message).toString());
        refused = true;
    }
    if (refused) {
        return 2;
    }
    auto payloads = outboxd::app::PayloadSet::load(*loaded, config_path);
    if (!payloads) {
        fmt::print(stderr, "{}\n", payloads.error());
        return 2;
    }
    if (check_only) {
        fmt::print("ok\n");
        return 0;
    }
    const outboxd::config::Config& config = *loaded;
    outboxd::app::setupLogging(config.log);
    outboxd::app::setProcessLogField("slot", config.postgres.slot);
    if (g_stop.load()) {
        spdlog::info("outboxd: stop requested during start-up; exiting before connecting");
        return 0;
    }

    outboxd::app::SignalWatch signal_watch(g_stop, g_hangups, config.kafka.shutdown_timeout + kExitGrace,
                                           [] { ::_exit(1); });

    outboxd::metrics::Metrics metrics;
    metrics.setLibraryVersions(libraryVersions());
    outboxd::metrics::HttpServer http(metrics);
    if (!config.metrics.listen.empty()) {
        if (auto started = http.start(config.metrics.listen); !started) {
            spdlog::error("{}", started.error());
            return 1;
        }
    }
    spdlog::info("outboxd {} (librdkafka {}, commit {}) starting: slot {}, publication {}, tables {}, brokers {}",
                 OUTBOXD_VERSION, outboxd::sink::kafkaClientVersion(), OUTBOXD_COMMIT, config.postgres.slot,
                 config.postgres.publication, config.outbox.tables.size(), config.kafka.brokers);
    outboxd::cdc::SlotMonitor monitor(
        {config.postgres.dsn, config.postgres.slot, config.postgres.slot_check_interval,
         config.postgres.heartbeat_interval},
        [&metrics](const outboxd::cdc::SlotState& s) {
            metrics.slotState(s.exists, s.active, s.wal_status,
                              s.safe_wal_size ? static_cast<double>(*s.safe_wal_size)
                                              : std::numeric_limits<double>::quiet_NaN(),
                              s.retained_bytes);
        },
        [&metrics](bool ok) { metrics.heartbeat(ok); });
    monitor.start();
    outboxd::app::Relay relay(config, metrics, g_stop);
    relay.setPayloadSet(payloads->get(), &g_reload);
    if (accept_slot_loss) relay.acceptSlotLoss();
    int code = relay.run();
    monitor.stop();
    http.stop();
    spdlog::info("outboxd exiting with code {}", code);
    return code;
}
