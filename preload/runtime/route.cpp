#include "runtime/route.hpp"

#include "runtime/config.hpp"
#include "runtime/log.hpp"
#include "runtime/policy.hpp"
#include "runtime/refuse.hpp"

namespace lp::route {
namespace {

char lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool same_name(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

bool ends_with_name(std::string_view name, std::string_view suffix) noexcept {
    return name.size() > suffix.size() &&
           same_name(name.substr(name.size() - suffix.size()), suffix);
}

// The name without a final dot ("example.org." is example.org).
std::string_view bare(std::string_view name) noexcept {
    return !name.empty() && name.back() == '.' ? name.substr(0, name.size() - 1) : name;
}

bool name_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

bool parse_port(std::string_view s, std::uint16_t& out) noexcept {
    if (s.empty() || s.size() > 5) return false;
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v == 0 || v > 65535) return false;
    out = static_cast<std::uint16_t>(v);
    return true;
}

bool assign_lower(leakproof::short_string& s, std::string_view text) noexcept {
    s.clear();
    for (char c : text)
        if (!s.push_back(lower(c))) return false;
    return true;
}

const char* parse_target(std::string_view text, rule& r, table& t) noexcept {
    if (text == "direct" || text == "refuse") {
        r.what = text == "direct" ? action::direct : action::refuse;
        return nullptr;
    }
    r.what = action::chain;
    if (text.starts_with("tor:")) {
        r.tor = true;
        text.remove_prefix(4);
    }
    r.first_hop = static_cast<std::uint8_t>(t.hop_count);
    for (std::size_t b = 0; b <= text.size();) {
        std::size_t e = text.find(',', b);
        if (e == std::string_view::npos) e = text.size();
        if (t.hop_count == max_route_hops || r.hop_count == path::max_hops)
            return "too many proxies in routes";
        if (leakproof::parse_proxy_url(text.substr(b, e - b), t.hops[t.hop_count]))
            return "bad proxy URL in a route";
        ++t.hop_count;
        ++r.hop_count;
        b = e + 1;
    }
    return nullptr;
}

bool add_entry(table& t, const leakproof::proxy& p) noexcept {
    auto host = p.host.view();
    if (host == "localhost") host = "127.0.0.1";
    if (t.entry_count == max_entries) return false;
    auto& e = t.entries[t.entry_count];
    if (!net::parse_ip(host, e.addr)) return false;
    e.port = p.port;
    ++t.entry_count;
    return true;
}

bool add_entries(table& t, const path::chain& c, path::mode m) noexcept {
    std::size_t n = m == path::mode::strict ? (c.len > 0 ? 1 : 0) : c.len;
    for (std::size_t i = 0; i < n; ++i)
        if (!add_entry(t, c.hops[i])) return false;
    return true;
}

bool port_matches(std::uint16_t want, std::uint16_t port) noexcept {
    return want == 0 || want == port;
}

policy::decision& refuse(policy::decision& d, const char* why) noexcept {
    d.what = policy::verdict::refuse;
    d.reason = why;
    d.error = EPERM;
    return d;
}

// A matched route applied to a decision for a name.
void apply_to_name(policy::decision& d, const rule& r) noexcept {
    std::string_view name{d.name, d.name_len};
    if (r.what == action::refuse) {
        refuse(d, "refused by a route");
    } else if (r.what == action::direct) {
        refuse(d, is_onion(name) ? "a .onion name cannot go direct"
                                 : "a name routed direct would need a local DNS lookup "
                                   "(route its addresses instead)");
    } else if (is_onion(name) && !r.tor) {
        refuse(d,
               "a .onion name routed to a proxy not marked as Tor (write the target "
               "as tor:URL if it is Tor)");
    } else {
        d.what = policy::verdict::proxy;
    }
}

// The one route verdict no connect line reports later: at -v, here.
void log_direct(const policy::decision& d, const rule& r) noexcept {
    if (!log::enabled(log::level::verbose)) return;
    auto ln = log::start();
    ln << "connect ";
    refuse::put_target(ln, d);
    ln << ": direct (route " << r.pattern.view() << ")";
    log::emit(log::level::verbose, ln);
}

void apply_to_address(policy::decision& d, const rule& r, bool stream) noexcept {
    if (r.what == action::refuse) {
        refuse(d, "refused by a route");
    } else if (r.what == action::direct) {
        d.what = policy::verdict::direct;
        if (stream) log_direct(d, r);
    } else if (!stream) {
        refuse(d, "non-TCP socket refused (only TCP can go through the proxy)");
    } else {
        d.what = policy::verdict::proxy;
    }
}

}  // namespace

bool parse_pattern(std::string_view text, rule& r) noexcept {
    if (text.empty() || !r.pattern.assign(text)) return false;
    if (text == "*") {
        r.kind = pattern_kind::any;
        return true;
    }
    if (net::parse_cidr(text, r.network)) {
        r.kind = pattern_kind::network;
        return true;
    }
    std::string_view name = text;
    if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
        if (!parse_port(text.substr(colon + 1), r.port)) return false;
        name = text.substr(0, colon);
    }
    r.kind = pattern_kind::name;
    if (name.starts_with("*.")) name.remove_prefix(1);
    if (name.starts_with(".")) r.kind = pattern_kind::suffix;
    name = bare(name);
    if (name.size() < (r.kind == pattern_kind::suffix ? 2u : 1u)) return false;
    for (char c : name)
        if (!name_char(c)) return false;
    return assign_lower(r.name, name);
}

const char* parse(std::string_view text, table& out) noexcept {
    for (std::size_t b = 0; b < text.size();) {
        b = text.find_first_not_of(" \t\n", b);
        if (b == std::string_view::npos) break;
        std::size_t e = text.find_first_of(" \t\n", b);
        if (e == std::string_view::npos) e = text.size();
        auto item = text.substr(b, e - b);
        b = e;
        if (out.count == max_routes) return "too many routes";
        auto eq = item.find('=');
        if (eq == std::string_view::npos) return "a route without '='";
        rule& r = out.rules[out.count];
        if (!parse_pattern(item.substr(0, eq), r)) return "a bad route pattern";
        if (const char* err = parse_target(item.substr(eq + 1), r, out)) return err;
        ++out.count;
    }
    return nullptr;
}

bool index_entries(table& t, const path::chain& default_chain, path::mode m) noexcept {
    t.entry_count = 0;
    if (!add_entries(t, default_chain, m)) return false;
    for (std::size_t i = 0; i < t.count; ++i)
        if (t.rules[i].what == action::chain && !add_entries(t, chain_of(t, t.rules[i]), m))
            return false;
    return true;
}

bool is_entry(const table& t, const net::endpoint& e) noexcept {
    for (std::size_t i = 0; i < t.entry_count; ++i)
        if (t.entries[i].port == e.port && t.entries[i].addr.b == e.addr.b) return true;
    return false;
}

const rule* match_name(const table& t, std::string_view name, std::uint16_t port) noexcept {
    name = bare(name);
    for (std::size_t i = 0; i < t.count; ++i) {
        const rule& r = t.rules[i];
        bool hit = false;
        switch (r.kind) {
            case pattern_kind::any: hit = true; break;
            case pattern_kind::name: hit = same_name(name, r.name.view()); break;
            case pattern_kind::suffix: hit = ends_with_name(name, r.name.view()); break;
            case pattern_kind::network: break;
        }
        if (hit && port_matches(r.port, port)) return &r;
    }
    return nullptr;
}

const rule* match_address(const table& t, const net::endpoint& e) noexcept {
    for (std::size_t i = 0; i < t.count; ++i) {
        const rule& r = t.rules[i];
        if (r.kind == pattern_kind::any ||
            (r.kind == pattern_kind::network && r.network.contains(e)))
            return &r;
    }
    return nullptr;
}

bool is_onion(std::string_view name) noexcept {
    name = bare(name);
    return ends_with_name(name, ".onion") || same_name(name, "onion");
}

path::chain chain_of(const table& t, const rule& r) noexcept {
    return {t.hops + r.first_hop, r.hop_count};
}

bool apply(policy::decision& d, bool stream) noexcept {
    const auto& t = config::get().routes;
    if (t.count == 0) return false;
    const rule* r =
        d.by_name ? match_name(t, {d.name, d.name_len}, d.target.port) : match_address(t, d.target);
    if (r == nullptr) return false;
    d.route = static_cast<std::uint8_t>(r - t.rules + 1);
    d.rule = policy::rule::routed;
    if (d.by_name)
        apply_to_name(d, *r);
    else
        apply_to_address(d, *r, stream);
    return true;
}

path::chain chain_for(const policy::decision& d) noexcept {
    const auto& cfg = config::get();
    if (d.route == 0 || d.route > cfg.routes.count) return {cfg.chain, cfg.chain_len};
    const rule& r = cfg.routes.rules[d.route - 1];
    if (r.what != action::chain) return {cfg.chain, cfg.chain_len};
    return chain_of(cfg.routes, r);
}

std::string_view pattern_of(const policy::decision& d) noexcept {
    const auto& t = config::get().routes;
    if (d.route == 0 || d.route > t.count) return {};
    return t.rules[d.route - 1].pattern.view();
}

}  // namespace lp::route
