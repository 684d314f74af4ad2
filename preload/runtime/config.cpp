#include "runtime/config.hpp"

#include <arpa/inet.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "runtime/environment.hpp"
#include "runtime/placeholder.hpp"

namespace lp::config {
namespace {

static_assert(placeholder::max_credentials == max_chain, "the map has room for each hop's");

constinit settings cfg{};  // no code at load time: a page fault each counts
pthread_once_t once = PTHREAD_ONCE_INIT;
std::atomic<bool> loaded{false};  // cfg is complete (after_fork_child may use it)

// One parse: the settings being filled and where the variables come from.
struct reader {
    settings& out;
    lookup source;

    std::string_view operator()(const char* name) const noexcept {
        const char* v = source(name);
        return v ? std::string_view{v} : std::string_view{};
    }
};

bool is_separator(char c) noexcept {
    return c == ' ' || c == ',' || c == '\t' || c == '\n';
}

// Calls f(token) for each separated token; stops and returns false when f does.
template <typename F>
bool each_token(std::string_view s, bool commas, F f) noexcept {
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (is_separator(s[i]) && (commas || s[i] != ','))) ++i;
        std::size_t j = i;
        while (j < s.size() && !(is_separator(s[j]) && (commas || s[j] != ','))) ++j;
        if (j > i && !f(s.substr(i, j - i))) return false;
        i = j;
    }
    return true;
}

int parse_int(std::string_view s, int fallback) noexcept {
    if (s.empty() || s.size() > 9) return fallback;
    int v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return fallback;
        v = v * 10 + (c - '0');
    }
    return v;
}

void copy(char* dst, std::size_t size, std::string_view s) noexcept {
    std::size_t n = s.size() < size - 1 ? s.size() : size - 1;
    if (n > 0) std::memcpy(dst, s.data(), n);  // an unset variable's data() is null
    dst[n] = '\0';
}

void load_chain(const reader& r) noexcept {
    settings& c = r.out;
    auto urls = r(env::proxies);
    if (urls.empty()) urls = "socks5h://127.0.0.1:9050";
    bool ok = each_token(urls, false, [&c](std::string_view url) {
        if (c.chain_len == max_chain) return false;
        if (leakproof::parse_proxy_url(url, c.chain[c.chain_len])) return false;
        ++c.chain_len;
        return true;
    });
    if (!ok || c.chain_len == 0) {
        c.error = "bad LEAKPROOF_PROXIES (run programs through the leakproof wrapper)";
        return;
    }
    if (r(env::optimistic) == "0")
        for (std::size_t i = 0; i < c.chain_len; ++i) {
            auto& options = c.chain[i].options;
            // Optimism implied pipelining: the handshake keeps its one round trip.
            options.pipeline = options.pipeline || options.optimistic;
            options.optimistic = false;
        }
    auto host = c.chain[0].host.view();
    if (host == "localhost") host = "127.0.0.1";
    if (!net::parse_ip(host, c.first_hop_ep.addr)) {
        c.error = "the first proxy must be given as an IP address";
        return;
    }
    c.first_hop_ep.port = c.chain[0].port;
    c.first_hop.sin6_family = AF_INET6;
    c.first_hop.sin6_port = htons(c.chain[0].port);
    std::memcpy(&c.first_hop.sin6_addr, c.first_hop_ep.addr.b.data(), 16);
}

void load_excludes(const reader& r) noexcept {
    settings& c = r.out;
    bool ok = each_token(r(env::exclude), true, [&c](std::string_view item) {
        if (c.exclude_count == max_excludes) return false;
        if (!net::parse_cidr(item, c.excludes[c.exclude_count])) return false;
        ++c.exclude_count;
        return true;
    });
    if (!ok) c.error = "bad LEAKPROOF_EXCLUDE";
}

// LEAKPROOF_CREDENTIALS (environment.hpp): the hops whose user and password
// the wrapper left in the placeholder map rather than in the environment.
// Read from the map `out.map_path` names, which must be set by now.
void load_credentials(const reader& r) noexcept {
    settings& c = r.out;
    auto hops = r(env::credentials);
    if (hops.empty() || c.error != nullptr) return;
    placeholder::credentials stored[placeholder::max_credentials];
    if (!placeholder::read_credentials(c.map_path, stored)) {
        c.error =
            "the proxy credentials are in the placeholder map, which this process cannot open "
            "(is the supervisor gone?)";
        return;
    }
    bool ok = each_token(hops, true, [&c, &stored](std::string_view item) {
        int hop = parse_int(item, -1);
        if (hop < 0 || static_cast<std::size_t>(hop) >= c.chain_len || !stored[hop].present)
            return false;
        c.chain[hop].user = stored[hop].user;
        c.chain[hop].password = stored[hop].password;
        return true;
    });
    if (!ok) c.error = "bad LEAKPROOF_CREDENTIALS (run programs through the leakproof wrapper)";
}

// "BASE-<pid>" for the isolated hops. Runs at load and in a forked child,
// which is single-threaded then: nothing reads the settings meanwhile.
void derive_isolated_users(settings& c) noexcept {
    char pid[16];
    auto end = std::to_chars(pid, pid + sizeof pid, static_cast<long>(getpid())).ptr;
    for (std::size_t i = 0; i < c.chain_len; ++i) {
        if (!c.isolated[i]) continue;
        auto& user = c.chain[i].user;
        user.assign(c.isolate_base.view());
        user.push_back('-');
        for (const char* p = pid; p != end; ++p) user.push_back(*p);
    }
}

// LEAKPROOF_ISOLATE (environment.hpp).
void load_isolation(const reader& r) noexcept {
    settings& c = r.out;
    auto v = r(env::isolate);
    if (v.empty() || c.error != nullptr) return;
    std::string_view base = "leakproof";
    if (v.starts_with("process:")) {
        base = v.substr(8);
    } else if (v != "process") {
        c.error = "bad LEAKPROOF_ISOLATE (expected process[:BASE])";
        return;
    }
    // Room for "-<pid>" after it: a user name holds 255 bytes.
    if (base.empty() || base.size() > 200 || !c.isolate_base.assign(base)) {
        c.error = "bad LEAKPROOF_ISOLATE base (1 to 200 bytes)";
        return;
    }
    for (std::size_t i = 0; i < c.chain_len; ++i) {
        auto& hop = c.chain[i];
        c.isolated[i] = hop.version == leakproof::socks_version::v5 && hop.user.empty();
        if (c.isolated[i]) hop.password.assign(base);
    }
    derive_isolated_users(c);
}

const char* from_getenv(const char* name) {
    return std::getenv(name);
}

// The chain mode and the routes (LEAKPROOF_CHAIN, LEAKPROOF_HOP_TIMEOUT_MS,
// LEAKPROOF_ROUTES); every hop a connect may start with must be an address
// (the wrapper resolves them).
void load_routes(const reader& r) noexcept {
    settings& c = r.out;
    auto mode = r(env::chain);
    if (!mode.empty() && !path::parse_mode(mode, c.path)) c.error = "bad LEAKPROOF_CHAIN";
    c.path.hop_timeout_ms = parse_int(r(env::hop_timeout_ms), 0);
    if (const char* err = route::parse(r(env::routes), c.routes)) c.error = err;
    if (c.error == nullptr && !route::index_entries(c.routes, {c.chain, c.chain_len}, c.path.how))
        c.error = "every proxy a connection may start with must be given as an IP address";
}

void load() noexcept {
    read(cfg, from_getenv);
    loaded.store(true, std::memory_order_release);
}

}  // namespace

void read(settings& out, lookup source) noexcept {
    reader r{out, source};
    copy(out.map_path, sizeof out.map_path, r(env::map));
    load_chain(r);
    load_credentials(r);
    load_routes(r);
    load_excludes(r);
    load_isolation(r);
    int t = parse_int(r(env::timeout_ms), 120000);
    out.timeout_ms = t > 0 ? t : 120000;
    out.proxy_loopback = r(env::proxy_loopback) == "1";
    out.tor = r(env::tor) == "1";
    out.async = r(env::async) != "0";
    out.unsupervised = r(env::unsupervised) == "1";
    out.supervisor_pid = parse_int(r(env::supervisor_pid), 0);
    int dns = parse_int(r(env::dns), 0);
    out.dns_port = dns > 0 && dns < 65536 ? dns : 0;
    out.udp = r(env::udp) == "1";
    out.inbound = r(env::inbound) == "1";
    out.log_level = parse_int(r(env::log_level), 1);
    copy(out.log_file, sizeof out.log_file, r(env::log_file));
}

const settings& get() noexcept {
    pthread_once(&once, load);
    return cfg;
}

const char* search_path() noexcept {
    return std::getenv("PATH");
}

void after_fork_child() noexcept {
    if (loaded.load(std::memory_order_acquire)) derive_isolated_users(cfg);
}

}  // namespace lp::config
