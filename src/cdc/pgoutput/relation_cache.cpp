#include "cdc/pgoutput/relation_cache.h"

#include <utility>

namespace outboxd::cdc::pgoutput {

void RelationCache::put(Relation relation) {
    const auto key = relation.id.value;
    relations_.insert_or_assign(key, std::move(relation));
}

const Relation* RelationCache::find(RelationId id) const {
    auto it = relations_.find(id.value);
    return it == relations_.end() ? nullptr : &it->second;
}

std::optional<std::size_t> RelationCache::columnIndex(RelationId id, std::string_view column_name) const {
    const Relation* relation = find(id);
    if (relation == nullptr) {
        return std::nullopt;
    }
    for (std::size_t i = 0; i < relation->columns.size(); ++i) {
        if (relation->columns[i].name == column_name) {
            return i;
        }
    }
    return std::nullopt;
}

void RelationCache::clear() { relations_.clear(); }

}  // namespace outboxd::cdc::pgoutput
