#pragma once
// A sink that keeps records in memory, with fault injection: a capacity (QueueFull beyond it),
// acknowledgements and failures delivered when the test says, a fatal error on the next poll.

#include <deque>
#include <limits>
#include <optional>
#include <vector>

#include "sink/sink.h"

namespace outboxd::test {

class MemorySink final : public sink::Sink {
public:
    struct Produced {
        outbox::OutboxEvent event;
        std::uint64_t token = 0;
        bool reported = false;
    };

    std::vector<Produced> produced;
    std::size_t capacity = std::numeric_limits<std::size_t>::max();
    std::optional<Error> reject_next;
    std::optional<Error> fatal;

    std::expected<sink::ProduceStatus, Error> produce(const outbox::OutboxEvent& event, std::uint64_t token) override {
        if (reject_next) {
            Error e = *reject_next;
            reject_next.reset();
            return std::unexpected(e);
        }
        if (in_flight_ >= capacity) return sink::ProduceStatus::QueueFull;
        produced.push_back({event, token, false});
        ++in_flight_;
        return sink::ProduceStatus::Queued;
    }

    std::expected<void, Error> poll(std::chrono::milliseconds, std::vector<sink::Delivery>& out) override {
        if (fatal) return std::unexpected(*fatal);
        while (!ready_.empty()) {
            out.push_back(ready_.front());
            ready_.pop_front();
        }
        return {};
    }

    [[nodiscard]] std::size_t inFlight() const override { return in_flight_; }

    // Kafka acknowledges record i (index into produced); reported at the next poll.
    // A permanent failure carries `reason` and the record, as KafkaSink's do.
    void ack(std::size_t i, bool ok = true, std::string error = {}, bool permanent = false, std::string reason = {}) {
        auto& p = produced.at(i);
        if (p.reported) return;
        p.reported = true;
        --in_flight_;
        ready_.push_back(
            sink::Delivery{p.token, ok, p.event.topic, p.event.value.size(), std::move(error), permanent,
                           std::move(reason), permanent ? p.event : outbox::OutboxEvent{}});
    }
    void ackAll() {
        for (std::size_t i = 0; i < produced.size(); ++i) ack(i);
    }

private:
    std::size_t in_flight_ = 0;
    std::deque<sink::Delivery> ready_;
};

}  // namespace outboxd::test
