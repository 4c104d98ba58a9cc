#include "cdc/checkpointer.h"

#include <fmt/format.h>

namespace outboxd::cdc {

void Checkpointer::reset(Lsn confirmed) {
    confirmed_ = confirmed;
    last_commit_end_ = confirmed;
    txns_.clear();
    front_serial_ = next_serial_;
    in_flight_ = 0;
}

Checkpointer::TxnSerial Checkpointer::begin(PgTimestamp commit_time) {
    if (txns_.empty()) {
        front_serial_ = next_serial_;
    }
    txns_.push_back(Txn{commit_time, Lsn{}, 0, false});
    return next_serial_++;
}

Checkpointer::Txn* Checkpointer::find(TxnSerial serial) {
    if (serial < front_serial_ || serial - front_serial_ >= txns_.size()) {
        return nullptr;
    }
    return &txns_[serial - front_serial_];
}

void Checkpointer::addEvent(TxnSerial serial) {
    if (Txn* txn = find(serial)) {
        ++txn->pending;
        ++in_flight_;
    }
}

std::expected<void, std::string> Checkpointer::commit(TxnSerial serial, Lsn end_lsn) {
    Txn* txn = find(serial);
    if (txn == nullptr || txn->committed) {
        return std::unexpected(fmt::format("commit at {} for a transaction that is not open", end_lsn));
    }
    if (end_lsn < last_commit_end_) {
        return std::unexpected(fmt::format("transaction end LSN went backwards: {} after {}", end_lsn,
                                           last_commit_end_));
    }
    txn->end_lsn = end_lsn;
    txn->committed = true;
    last_commit_end_ = end_lsn;
    advance();
    return {};
}

std::expected<void, std::string> Checkpointer::acknowledge(TxnSerial serial) {
    Txn* txn = find(serial);
    if (txn == nullptr || txn->pending == 0) {
        return std::unexpected(fmt::format("acknowledgement for transaction #{} which has no event in flight",
                                           serial));
    }
    --txn->pending;
    --in_flight_;
    advance();
    return {};
}

void Checkpointer::advance() {
    while (!txns_.empty() && txns_.front().committed && txns_.front().pending == 0) {
        if (txns_.front().end_lsn > confirmed_) {
            confirmed_ = txns_.front().end_lsn;
        }
        txns_.pop_front();
        ++front_serial_;
    }
}

void Checkpointer::observeServerPosition(Lsn wal_end) {
    if (txns_.empty() && wal_end > confirmed_) {
        confirmed_ = wal_end;
    }
}

PgTimestamp Checkpointer::commitTime(TxnSerial serial) const {
    if (serial < front_serial_ || serial - front_serial_ >= txns_.size()) {
        return PgTimestamp{};
    }
    return txns_[serial - front_serial_].commit_time;
}

}  // namespace outboxd::cdc
