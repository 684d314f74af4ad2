#include "runtime/path.hpp"

#include <stdlib.h>

#include <atomic>

#include "leakproof/error.hpp"

namespace lp::path {
namespace {

// Round-robin: one counter for the process, moved on by each connection.
std::atomic<std::uint32_t> next_start{0};

bool parse_count(std::string_view s, std::size_t& out) noexcept {
    if (s.size() != 1 || s[0] < '1' || s[0] > '8') return false;
    out = static_cast<std::size_t>(s[0] - '0');
    return true;
}

// A failure that says the destination, not the hop, is the trouble.
bool about_destination(leakproof::error e) noexcept {
    using leakproof::error;
    switch (e) {
        case error::network_unreachable:
        case error::host_unreachable:
        case error::connection_refused:
        case error::ttl_expired:
        case error::socks4_rejected:
        case error::onion_descriptor_not_found:
        case error::onion_descriptor_invalid:
        case error::onion_introduction_failed:
        case error::onion_rendezvous_failed:
        case error::onion_auth_missing:
        case error::onion_auth_wrong:
        case error::onion_address_invalid:
        case error::onion_introduction_timeout: return true;
        default: return false;
    }
}

}  // namespace

bool parse_mode(std::string_view text, settings& out) noexcept {
    auto colon = text.find(':');
    auto name = text.substr(0, colon);
    std::size_t count = 1;
    if (colon != std::string_view::npos && !parse_count(text.substr(colon + 1), count))
        return false;
    if (name == "strict" || name == "dynamic") {
        if (colon != std::string_view::npos) return false;
        out.how = name == "strict" ? mode::strict : mode::dynamic;
    } else if (name == "random") {
        out.how = mode::random;
    } else if (name == "round-robin") {
        out.how = mode::round_robin;
    } else {
        return false;
    }
    out.count = count;
    return true;
}

std::string_view mode_name(mode m) noexcept {
    switch (m) {
        case mode::strict: return "strict";
        case mode::dynamic: return "dynamic";
        case mode::random: return "random";
        case mode::round_robin: return "round-robin";
    }
    return "strict";
}

std::size_t walk::alive_count() const noexcept {
    std::size_t n = 0;
    for (std::size_t i = 0; i < c_.len; ++i) n += alive(i);
    return n;
}

bool walk::next(selection& chosen) noexcept {
    selection s;
    if (!pick(s)) return false;
    chosen = s;
    return true;
}

bool walk::pick(selection& out) noexcept {
    if (c_.len == 0 || c_.len > max_hops) return false;
    bool first = attempts_++ == 0;
    if (s_.how == mode::strict) {
        if (!first) return false;
        for (std::size_t i = 0; i < c_.len; ++i) out.hop[out.len++] = static_cast<std::uint8_t>(i);
        return true;
    }
    if (s_.how == mode::dynamic) {
        for (std::size_t i = 0; i < c_.len; ++i)
            if (alive(i)) out.hop[out.len++] = static_cast<std::uint8_t>(i);
        return out.len > 0;
    }
    std::size_t want = s_.count < c_.len ? s_.count : c_.len;
    if (alive_count() < want) return false;
    if (s_.how == mode::round_robin) {
        if (first) start_ = next_start.fetch_add(1, std::memory_order_relaxed);
        for (std::size_t k = 0; k < c_.len && out.len < want; ++k) {
            std::size_t i = (start_ + k) % c_.len;
            if (alive(i)) out.hop[out.len++] = static_cast<std::uint8_t>(i);
        }
        return true;
    }
    // random: a partial Fisher-Yates shuffle of the hops that are up.
    std::uint8_t pool[max_hops];
    std::size_t n = 0;
    for (std::size_t i = 0; i < c_.len; ++i)
        if (alive(i)) pool[n++] = static_cast<std::uint8_t>(i);
    for (std::size_t k = 0; k < want; ++k) {
        std::size_t j = k + arc4random_uniform(static_cast<std::uint32_t>(n - k));
        std::uint8_t t = pool[k];
        pool[k] = pool[j];
        pool[j] = t;
        out.hop[out.len++] = pool[k];
    }
    return true;
}

void walk::down(const selection& last, std::size_t position) noexcept {
    if (position < last.len) down_ |= 1u << last.hop[position];
}

int blame(const selection& sel, std::size_t position, std::error_code ec) noexcept {
    bool last = position + 1 >= sel.len;
    if (ec.category() != leakproof::error_category()) return static_cast<int>(position);
    auto e = static_cast<leakproof::error>(ec.value());
    if (!about_destination(e)) return static_cast<int>(position);
    return last ? -1 : static_cast<int>(position + 1);
}

}  // namespace lp::path
