// libFuzzer target: one pgoutput message through the decoder, and what decodes through the
// router (Relation resolution, Insert -> event), as the relay would.
// Input: byte 0 selects the context (protocol version 1-4, in_stream, parallel streaming);
// the rest is the message.
#include <cstddef>
#include <cstdint>
#include <span>

#include "cdc/pgoutput/decoder.h"
#include "cdc/pgoutput/relation_cache.h"
#include "config/config.h"
#include "outbox/router.h"

namespace {

const outboxd::config::Config& fuzzConfig() {
    static const outboxd::config::Config config = [] {
        outboxd::config::Config c;
        c.routing.topic = *outboxd::config::parseTemplate("outbox.event.{aggregatetype}");
        c.routing.key = *outboxd::config::parseTemplate("{aggregateid}");
        return c;
    }();
    return config;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    namespace pg = outboxd::cdc::pgoutput;
    pg::DecodeContext ctx;
    ctx.proto_version = 1 + (data[0] & 3);
    ctx.in_stream = (data[0] & 4) != 0;
    ctx.parallel_streaming = (data[0] & 8) != 0;
    ctx.lsn = outboxd::cdc::Lsn{0x1234};
    std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data + 1), size - 1);
    auto message = pg::decode(bytes, ctx);
    if (!message) return 0;

    static outboxd::outbox::Router router(fuzzConfig());
    static pg::RelationCache cache;
    if (auto* relation = std::get_if<pg::Relation>(&*message)) {
        (void)router.onRelation(*relation);
        cache.put(*relation);
    } else if (auto* insert = std::get_if<pg::Insert>(&*message)) {
        if (router.isOutbox(insert->relation)) {
            outboxd::outbox::OutboxEvent event;
            (void)router.route(*insert, outboxd::outbox::ChangeContext{}, event);
        }
    }
    return 0;
}
