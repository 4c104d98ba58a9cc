#pragma once
// RelationCache: the latest Relation message seen for each relation id.
//
// Owns copies of the Relation messages it is given (Relation owns its strings, so nothing
// points into a decoder input buffer). The server sends a Relation before the first change
// to a table in a decoding session and again whenever the table's definition may have
// changed (ALTER TABLE, TRUNCATE, ...); put() then replaces the previous entry. Pointers
// returned by find() stay valid until the next put() of the same id or clear(). clear() is
// for a new replication session (after a reconnect the server sends every Relation again).
// Single-threaded: owned and used by the thread that decodes the stream.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "cdc/pgoutput/messages.h"

namespace outboxd::cdc::pgoutput {

class RelationCache {
public:
    // Stores relation, replacing any entry with the same id.
    void put(Relation relation);

    [[nodiscard]] const Relation* find(RelationId id) const;

    // Index of the column called column_name in the cached relation (exact, case-sensitive
    // match, as the server sends the names); nullopt when the relation or column is unknown.
    [[nodiscard]] std::optional<std::size_t> columnIndex(RelationId id, std::string_view column_name) const;

    void clear();

    [[nodiscard]] std::size_t size() const { return relations_.size(); }

private:
    std::unordered_map<std::uint32_t, Relation> relations_;  // keyed by RelationId::value
};

}  // namespace outboxd::cdc::pgoutput
