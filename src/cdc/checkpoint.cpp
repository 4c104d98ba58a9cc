#include "cdc/checkpoint.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

namespace outboxd::cdc {

namespace {

constexpr std::array<std::byte, 4> kMagic{std::byte{'O'}, std::byte{'X'}, std::byte{'C'}, std::byte{'P'}};
constexpr std::byte kVersion{1};

void putU64(std::vector<std::byte>& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<std::byte>((v >> shift) & 0xff));
}

std::uint64_t getU64(std::span<const std::byte> bytes, std::size_t at) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | std::to_integer<std::uint64_t>(bytes[at + i]);
    return v;
}

}  // namespace

std::vector<std::byte> encodeCheckpoint(const CheckpointRecord& record) {
    std::vector<std::byte> out(kMagic.begin(), kMagic.end());
    out.reserve(kCheckpointRecordSize);
    out.push_back(kVersion);
    putU64(out, record.system_identifier);
    putU64(out, record.commit_lsn.value());
    putU64(out, record.end_lsn.value());
    return out;
}

std::expected<CheckpointRecord, std::string> decodeCheckpoint(std::span<const std::byte> bytes) {
    if (bytes.size() < kMagic.size() + 1 || !std::equal(kMagic.begin(), kMagic.end(), bytes.begin())) {
        return std::unexpected(fmt::format(
            "not an outboxd checkpoint record ({} bytes, no \"OXCP\" magic): is the checkpoint topic shared "
            "with another producer?",
            bytes.size()));
    }
    if (bytes[4] != kVersion) {
        return std::unexpected(fmt::format("checkpoint record version {} is not supported (this outboxd reads "
                                           "version 1): run the outboxd version that wrote it, or a newer one",
                                           std::to_integer<int>(bytes[4])));
    }
    if (bytes.size() != kCheckpointRecordSize) {
        return std::unexpected(fmt::format("checkpoint record of version 1 has {} bytes, expected {}",
                                           bytes.size(), kCheckpointRecordSize));
    }
    CheckpointRecord record{getU64(bytes, 5), Lsn{getU64(bytes, 13)}, Lsn{getU64(bytes, 21)}};
    if (!record.commit_lsn.isValid() || record.end_lsn <= record.commit_lsn) {
        return std::unexpected(fmt::format("checkpoint record is inconsistent: commit LSN {}, end LSN {} (the end "
                                           "must lie after the commit)",
                                           record.commit_lsn, record.end_lsn));
    }
    return record;
}

std::expected<void, std::string> SkipRule::checkServer(std::uint64_t system_identifier, Lsn server_flush) const {
    if (!checkpoint_) return {};
    if (checkpoint_->system_identifier != system_identifier) {
        return std::unexpected(fmt::format(
            "the checkpoint was written for the database system {} but this server is {}: the slot's events in "
            "Kafka come from another cluster. Use a checkpoint topic (or key) of this cluster's own, or delete the "
            "stale checkpoint if the cluster was replaced on purpose",
            checkpoint_->system_identifier, system_identifier));
    }
    if (server_flush < checkpoint_->end_lsn) {
        return std::unexpected(fmt::format(
            "Kafka holds transactions up to {} but the server's WAL ends at {}: the server lost WAL that was "
            "published (restored from a backup, or a failover to a lagging standby). Reconcile consumers before "
            "restarting, then delete the checkpoint",
            checkpoint_->end_lsn, server_flush));
    }
    return {};
}

}  // namespace outboxd::cdc
