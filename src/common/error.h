#pragma once
// The one error type of outboxd's runtime, and the one place that decides what is retried.
// Transient errors end the current session: the relay reconnects with backoff and resumes
// from the last LSN confirmed to the slot. Definite errors stop the process with exit code 1
// and a message saying what to do.

#include <string>
#include <string_view>

namespace outboxd {

enum class ErrorKind {
    SourceConnect,        // could not connect to PostgreSQL / replication command failed transiently
    SourceStream,         // the replication connection broke or the server ended the stream
    SourceWire,           // a CopyData frame could not be parsed (truncated, unknown kind)
    SlotInUse,            // another process streams from the slot
    SlotMissing,          // slot absent and create_slot is false, or dropped under us
    SlotInvalidated,      // wal_status = lost: WAL needed by the slot was removed
    SlotMismatch,         // slot exists with another plugin, type or database
    PublicationMissing,   // publication absent (create_publication false), or it does not publish every insert
    SourcePermission,     // the role lacks REPLICATION or ownership
    SourceUnsupported,    // server too old, wal_level not logical, ...
    SourceSetting,        // the DSN names a database or an option value that cannot work (bad sslmode, port)
    Decode,               // a pgoutput message could not be decoded
    MappedColumnMissing,  // an outbox column named in the configuration is not in the table
    InvalidRow,           // an outbox row cannot be turned into an event (NULL topic part, bad topic)
    SinkCreate,           // the Kafka producer could not be created (bad property)
    SinkDelivery,         // Kafka reported a delivery failure after its retries
    SinkFatal,            // librdkafka raised a fatal error (idempotence state lost)
    SinkRejected,         // Kafka refused a message for good (too large, invalid topic)
    SinkAuthentication,   // the broker refused outboxd's credentials (SASL)
    SinkFenced,           // exactly-once: another producer with the same transactional.id took over
    SinkTransactionTooLong,  // exactly-once: one PostgreSQL transaction outlives transaction.timeout.ms
    CheckpointInvalid,    // exactly-once: the checkpoint record cannot be read or is another cluster's
    InvariantViolated,    // an LSN went backwards where it must not
};

[[nodiscard]] constexpr bool isRetriable(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::SourceConnect:
        case ErrorKind::SourceStream:
        case ErrorKind::SourceWire:
        case ErrorKind::SlotInUse:
        case ErrorKind::SinkDelivery:
        case ErrorKind::SinkFatal:
            return true;
        case ErrorKind::SlotMissing:
        case ErrorKind::SlotInvalidated:
        case ErrorKind::SlotMismatch:
        case ErrorKind::PublicationMissing:
        case ErrorKind::SourcePermission:
        case ErrorKind::SourceUnsupported:
        case ErrorKind::SourceSetting:
        case ErrorKind::Decode:
        case ErrorKind::MappedColumnMissing:
        case ErrorKind::InvalidRow:
        case ErrorKind::SinkCreate:
        case ErrorKind::SinkRejected:
        case ErrorKind::SinkAuthentication:
        case ErrorKind::SinkFenced:
        case ErrorKind::SinkTransactionTooLong:
        case ErrorKind::CheckpointInvalid:
        case ErrorKind::InvariantViolated:
            return false;
    }
    return false;
}

[[nodiscard]] constexpr std::string_view toString(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::SourceConnect: return "source_connect";
        case ErrorKind::SourceStream: return "source_stream";
        case ErrorKind::SourceWire: return "source_wire";
        case ErrorKind::SlotInUse: return "slot_in_use";
        case ErrorKind::SlotMissing: return "slot_missing";
        case ErrorKind::SlotInvalidated: return "slot_invalidated";
        case ErrorKind::SlotMismatch: return "slot_mismatch";
        case ErrorKind::PublicationMissing: return "publication_missing";
        case ErrorKind::SourcePermission: return "source_permission";
        case ErrorKind::SourceUnsupported: return "source_unsupported";
        case ErrorKind::SourceSetting: return "source_setting";
        case ErrorKind::Decode: return "decode";
        case ErrorKind::MappedColumnMissing: return "mapped_column_missing";
        case ErrorKind::InvalidRow: return "invalid_row";
        case ErrorKind::SinkCreate: return "sink_create";
        case ErrorKind::SinkDelivery: return "sink_delivery";
        case ErrorKind::SinkFatal: return "sink_fatal";
        case ErrorKind::SinkRejected: return "sink_rejected";
        case ErrorKind::SinkAuthentication: return "sink_authentication";
        case ErrorKind::SinkFenced: return "sink_fenced";
        case ErrorKind::SinkTransactionTooLong: return "sink_transaction_too_long";
        case ErrorKind::CheckpointInvalid: return "checkpoint_invalid";
        case ErrorKind::InvariantViolated: return "invariant_violated";
    }
    return "unknown";
}

struct Error {
    ErrorKind kind;
    std::string message;  // says what happened and, for definite errors, what to do
    // Where known, for the structured fields of JSON log lines (the message says them too).
    std::string table{};  // schema.table of the change
    std::string lsn{};    // LSN of the change
};

}  // namespace outboxd
