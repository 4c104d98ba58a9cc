#pragma once
// The standard process_* metrics of Prometheus's client libraries (CPU seconds, resident and
// virtual memory, open and maximum file descriptors, start time), read from /proc/self on each
// scrape. Linux only; elsewhere it returns nothing. Called from the HTTP thread.

#include <vector>

#include <prometheus/metric_family.h>

namespace outboxd::metrics {

[[nodiscard]] std::vector<prometheus::MetricFamily> processMetricFamilies();

}  // namespace outboxd::metrics
