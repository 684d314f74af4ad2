#include "runtime/config.hpp"

#include <arpa/inet.h>
#include <pthread.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

namespace lp::config {
namespace {

constinit settings cfg{};  // no code at load time: a page fault each counts
pthread_once_t once = PTHREAD_ONCE_INIT;

std::string_view env(const char* name) noexcept {
    const char* v = std::getenv(name);
    return v ? std::string_view{v} : std::string_view{};
}

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
    std::memcpy(dst, s.data(), n);
    dst[n] = '\0';
}

void load_chain() noexcept {
    auto urls = env("LEAKPROOF_PROXIES");
    if (urls.empty()) urls = "socks5h://127.0.0.1:9050";
    bool ok = each_token(urls, false, [](std::string_view url) {
        if (cfg.chain_len == max_chain) return false;
        if (leakproof::parse_proxy_url(url, cfg.chain[cfg.chain_len])) return false;
        ++cfg.chain_len;
        return true;
    });
    if (!ok || cfg.chain_len == 0) {
        cfg.error = "bad LEAKPROOF_PROXIES (run programs through the leakproof wrapper)";
        return;
    }
    auto host = cfg.chain[0].host.view();
    if (host == "localhost") host = "127.0.0.1";
    if (!net::parse_ip(host, cfg.first_hop_ep.addr)) {
        cfg.error = "the first proxy must be given as an IP address";
        return;
    }
    cfg.first_hop_ep.port = cfg.chain[0].port;
    cfg.first_hop.sin6_family = AF_INET6;
    cfg.first_hop.sin6_port = htons(cfg.chain[0].port);
    std::memcpy(&cfg.first_hop.sin6_addr, cfg.first_hop_ep.addr.b.data(), 16);
}

void load_excludes() noexcept {
    bool ok = each_token(env("LEAKPROOF_EXCLUDE"), true, [](std::string_view item) {
        if (cfg.exclude_count == max_excludes) return false;
        if (!net::parse_cidr(item, cfg.excludes[cfg.exclude_count])) return false;
        ++cfg.exclude_count;
        return true;
    });
    if (!ok) cfg.error = "bad LEAKPROOF_EXCLUDE";
}

// LEAKPROOF_ISOLATE (config.hpp). The hops it applies to, and their base.
bool isolated[max_chain];
leakproof::short_string isolate_base;

// "BASE-<pid>" for the isolated hops. Runs at load and in a forked child,
// which is single-threaded then: nothing reads the settings meanwhile.
void derive_isolated_users() noexcept {
    char pid[16];
    auto end = std::to_chars(pid, pid + sizeof pid, static_cast<long>(getpid())).ptr;
    for (std::size_t i = 0; i < cfg.chain_len; ++i) {
        if (!isolated[i]) continue;
        auto& user = cfg.chain[i].user;
        user.assign(isolate_base.view());
        user.push_back('-');
        for (const char* c = pid; c != end; ++c) user.push_back(*c);
    }
}

void load_isolation() noexcept {
    auto v = env("LEAKPROOF_ISOLATE");
    if (v.empty() || cfg.error != nullptr) return;
    std::string_view base = "leakproof";
    if (v.starts_with("process:")) {
        base = v.substr(8);
    } else if (v != "process") {
        cfg.error = "bad LEAKPROOF_ISOLATE (expected process[:BASE])";
        return;
    }
    // Room for "-<pid>" after it: a user name holds 255 bytes.
    if (base.empty() || base.size() > 200 || !isolate_base.assign(base)) {
        cfg.error = "bad LEAKPROOF_ISOLATE base (1 to 200 bytes)";
        return;
    }
    for (std::size_t i = 0; i < cfg.chain_len; ++i) {
        auto& hop = cfg.chain[i];
        isolated[i] = hop.version == leakproof::socks_version::v5 && hop.user.empty();
        if (isolated[i]) hop.password.assign(base);
    }
    derive_isolated_users();
    // The pid changes in a child of fork(); after exec() this runs anew.
    pthread_atfork(nullptr, nullptr, derive_isolated_users);
}

// The chain mode and the routes; every hop a connect may start with must
// be an address (the wrapper resolves them).
void load_routes() noexcept {
    auto mode = env("LEAKPROOF_CHAIN");
    if (!mode.empty() && !path::parse_mode(mode, cfg.path)) cfg.error = "bad LEAKPROOF_CHAIN";
    cfg.path.hop_timeout_ms = parse_int(env("LEAKPROOF_HOP_TIMEOUT_MS"), 0);
    if (const char* err = route::parse(env("LEAKPROOF_ROUTES"), cfg.routes)) cfg.error = err;
    if (cfg.error == nullptr &&
        !route::index_entries(cfg.routes, {cfg.chain, cfg.chain_len}, cfg.path.how))
        cfg.error = "every proxy a connection may start with must be given as an IP address";
}

void load() noexcept {
    load_chain();
    load_routes();
    load_excludes();
    load_isolation();
    int t = parse_int(env("LEAKPROOF_TIMEOUT_MS"), 120000);
    cfg.timeout_ms = t > 0 ? t : 120000;
    cfg.proxy_loopback = env("LEAKPROOF_PROXY_LOOPBACK") == "1";
    cfg.log_level = parse_int(env("LEAKPROOF_LOG_LEVEL"), 1);
    copy(cfg.log_file, sizeof cfg.log_file, env("LEAKPROOF_LOG_FILE"));
    copy(cfg.map_path, sizeof cfg.map_path, env("LEAKPROOF_MAP"));
}

}  // namespace

const settings& get() noexcept {
    pthread_once(&once, load);
    return cfg;
}

}  // namespace lp::config
