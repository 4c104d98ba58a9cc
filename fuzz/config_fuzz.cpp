// libFuzzer target: YAML text through the configuration loader; it must answer with a Config
// or positioned errors, never crash or throw.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto env = [](std::string_view name) -> std::optional<std::string> {
        if (name == "SET") return std::string("value");
        return std::nullopt;
    };
    auto result = outboxd::config::parseConfig(text, "fuzz.yaml", env);
    if (!result) {
        for (const auto& e : result.error()) {
            if (e.line < 0 || e.column < 0) __builtin_trap();
            (void)e.toString();
        }
    }
    return 0;
}
