#include "metrics/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace outboxd::metrics {

namespace {

prometheus::MetricFamily gauge(std::string name, std::string help, double value,
                               prometheus::MetricType type = prometheus::MetricType::Gauge) {
    prometheus::MetricFamily family{std::move(name), std::move(help), type, {}};
    prometheus::ClientMetric metric;
    if (type == prometheus::MetricType::Counter) {
        metric.counter.value = value;
    } else {
        metric.gauge.value = value;
    }
    family.metric.push_back(std::move(metric));
    return family;
}

// Seconds since the epoch at which the system booted (/proc/stat "btime").
double bootTime() {
    std::ifstream in("/proc/stat");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with("btime ")) return std::stod(line.substr(6));
    }
    return 0;
}

}  // namespace

std::vector<prometheus::MetricFamily> processMetricFamilies() {
    std::vector<prometheus::MetricFamily> out;
    // proc(5): /proc/self/stat; field 2 (comm) is in parentheses and may hold spaces.
    std::ifstream in("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto close = stat.rfind(')');
    if (close == std::string::npos) return out;
    std::istringstream fields(stat.substr(close + 2));
    std::vector<std::string> f;  // f[0] is field 3 (state)
    for (std::string v; fields >> v;) f.push_back(v);
    if (f.size() < 22) return out;
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
    const double utime = std::stod(f[11]);      // field 14
    const double stime = std::stod(f[12]);      // field 15
    const double starttime = std::stod(f[19]);  // field 22, in clock ticks after boot
    const double vsize = std::stod(f[20]);      // field 23, bytes
    const double rss = std::stod(f[21]);        // field 24, pages
    out.push_back(gauge("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                        (utime + stime) / ticks, prometheus::MetricType::Counter));
    out.push_back(gauge("process_resident_memory_bytes", "Resident memory size in bytes.", rss * page));
    out.push_back(gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", vsize));
    out.push_back(gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                        bootTime() + starttime / ticks));
    std::error_code ec;
    double fds = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        ++fds;
    }
    out.push_back(gauge("process_open_fds", "Number of open file descriptors.", fds));
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        out.push_back(gauge("process_max_fds", "Maximum number of open file descriptors.",
                            static_cast<double>(limit.rlim_cur)));
    }
    return out;
}

}  // namespace outboxd::metrics
