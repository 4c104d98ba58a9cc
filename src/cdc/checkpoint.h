#pragma once
// Exactly-once mode's position (issue 10; used by app::Relay's sessions): the record each Kafka
// transaction writes to the compacted checkpoint topic, keyed by slot, and the rule that decides
// on restart which PostgreSQL transactions Kafka already holds.
//
// The record names the last PostgreSQL transaction a committed Kafka transaction carried: its
// commit LSN (Begin's final_lsn, Commit's commit_lsn) and its end LSN, with the database's
// system identifier so that a checkpoint of another cluster is never applied.
//
// Encoding (version 1, 29 bytes, integers big-endian like PostgreSQL's wire protocol):
//   offset 0  4 bytes  magic "OXCP"
//          4  1 byte   version (1)
//          5  8 bytes  system identifier (IDENTIFY_SYSTEM's systemid)
//         13  8 bytes  commit LSN of the last transaction
//         21  8 bytes  end LSN of that transaction (> commit LSN)
// Pure: no I/O. Value types.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cdc/lsn.h"

namespace outboxd::cdc {

struct CheckpointRecord {
    std::uint64_t system_identifier = 0;
    Lsn commit_lsn;
    Lsn end_lsn;
    bool operator==(const CheckpointRecord&) const = default;
};

inline constexpr std::size_t kCheckpointRecordSize = 29;

[[nodiscard]] std::vector<std::byte> encodeCheckpoint(const CheckpointRecord& record);

// Fails, saying what is wrong, on a value that is not a version-1 record or whose LSNs are
// inconsistent (zero, or end not after commit).
[[nodiscard]] std::expected<CheckpointRecord, std::string> decodeCheckpoint(std::span<const std::byte> bytes);

// The restart rule. Given the checkpoint read back (read_committed; none for a new slot):
//   - a PostgreSQL transaction whose commit LSN is at or below the checkpoint's commit LSN is
//     already in Kafka: skip it (a crash between the Kafka commit and the slot's confirmation,
//     or a server re-sending transactions the slot had confirmed);
//   - any later one is delivered. A transaction after the checkpointed one has a commit LSN at
//     or above its end LSN (commit records do not overlap), possibly equal to it: equal is
//     delivered, which is why the rule compares commit LSNs and not the end LSN.
class SkipRule {
public:
    explicit SkipRule(std::optional<CheckpointRecord> checkpoint) : checkpoint_(checkpoint) {}

    // Checks the checkpoint against the server before streaming: it must come from the same
    // cluster, and the server must have the WAL it names (flush LSN at or past its end).
    [[nodiscard]] std::expected<void, std::string> checkServer(std::uint64_t system_identifier,
                                                               Lsn server_flush) const;

    // True when the transaction committed at `commit_lsn` is already in Kafka. An invalid
    // (zero) commit LSN is never skipped.
    [[nodiscard]] bool skip(Lsn commit_lsn) const {
        return checkpoint_.has_value() && commit_lsn.isValid() && commit_lsn <= checkpoint_->commit_lsn;
    }

    // The position Kafka holds, for the slot: the checkpoint's end LSN (invalid when none).
    [[nodiscard]] Lsn position() const { return checkpoint_ ? checkpoint_->end_lsn : Lsn{}; }
    // The checkpoint's commit LSN (invalid when none).
    [[nodiscard]] Lsn commitLsn() const { return checkpoint_ ? checkpoint_->commit_lsn : Lsn{}; }

private:
    std::optional<CheckpointRecord> checkpoint_;
};

}  // namespace outboxd::cdc
