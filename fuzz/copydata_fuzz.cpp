// libFuzzer target: a sequence of CopyData frames through the relay's pipeline (wire parsing,
// decoding, routing, checkpointing) with an in-memory sink that acknowledges everything.
// Input: frames, each a 2-byte big-endian length and that many bytes.
#include <cstddef>
#include <cstdint>
#include <span>

#include <spdlog/spdlog.h>

#include "app/pipeline.h"
#include "cdc/wire/copy_data.h"
#include "support/memory_sink.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const bool quiet = [] {
        spdlog::set_level(spdlog::level::off);
        return true;
    }();
    (void)quiet;
    static outboxd::metrics::Metrics metrics;
    static const outboxd::config::Config config = [] {
        outboxd::config::Config c;
        c.routing.topic = *outboxd::config::parseTemplate("outbox.event.{aggregatetype}");
        c.routing.key = *outboxd::config::parseTemplate("{aggregateid}");
        return c;
    }();
    outboxd::test::MemorySink sink;
    outboxd::app::Pipeline pipeline(config, sink, metrics, 1 + (size > 0 ? data[0] & 3 : 0),
                                    outboxd::cdc::Lsn{0x100});
    std::size_t pos = size > 0 ? 1 : 0;
    auto previous = pipeline.confirmed();
    while (pos + 2 <= size) {
        std::size_t len = (static_cast<std::size_t>(data[pos]) << 8) | data[pos + 1];
        pos += 2;
        if (len > size - pos) len = size - pos;
        std::span<const std::byte> frame(reinterpret_cast<const std::byte*>(data + pos), len);
        pos += len;
        (void)outboxd::cdc::wire::parseServerMessage(frame);
        if (!pipeline.handleFrame(frame)) break;
        sink.ackAll();
        if (!pipeline.serveDeliveries(std::chrono::milliseconds(0))) break;
        // The confirmed LSN never goes backwards.
        if (pipeline.confirmed() < previous) __builtin_trap();
        previous = pipeline.confirmed();
    }
    return 0;
}
