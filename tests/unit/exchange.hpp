// Test helpers: byte vectors and a driver that plays a scripted proxy against
// a handshake, checking every byte the client sends.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "leakproof/handshake.hpp"

namespace lp_test {

using bytes = std::vector<std::uint8_t>;

inline bytes operator+(bytes a, const bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

inline bytes text(std::string_view s) {
    return bytes(s.begin(), s.end());
}

inline std::string hex(std::span<const std::uint8_t> b) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (auto c : b) {
        out += digits[c >> 4];
        out += digits[c & 15];
        out += ' ';
    }
    return out;
}

// One round of a conversation: what the client must send (empty: nothing
// this round) and what the proxy answers.
struct round {
    bytes client_sends;
    bytes proxy_answers;
};

// Plays the rounds, feeding each answer `chunk` bytes at a time. Returns the
// number of answer bytes the handshake consumed in total.
inline std::size_t play(leakproof::handshake_machine& hs, const std::vector<round>& rounds,
                        std::size_t chunk = SIZE_MAX) {
    std::size_t consumed = 0;
    for (const auto& r : rounds) {
        if (!r.client_sends.empty()) {
            auto act = hs.next();
            REQUIRE(act.kind == leakproof::action_kind::send);
            CHECK(hex(act.bytes) == hex(r.client_sends));
            hs.sent();
        }
        std::size_t at = 0;
        while (at < r.proxy_answers.size() && hs.next().kind == leakproof::action_kind::receive) {
            const std::size_t n = std::min(chunk, r.proxy_answers.size() - at);
            const std::size_t took = hs.feed({r.proxy_answers.data() + at, n});
            REQUIRE(took > 0);
            at += took;
        }
        consumed += at;
    }
    return consumed;
}

// Two handshakes that played the same rounds reached the same result.
inline void check_same_result(const leakproof::handshake_machine& a,
                              const leakproof::handshake_machine& b) {
    CHECK(a.result().bound.type == b.result().bound.type);
    CHECK(a.result().bound.ip == b.result().bound.ip);
    CHECK(a.result().bound.name == b.result().bound.name);
    CHECK(a.result().port == b.result().port);
}

}  // namespace lp_test
