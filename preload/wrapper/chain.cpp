#include "wrapper/chain.hpp"

#include <netdb.h>
#include <sys/random.h>

#include "runtime/net.hpp"
#include "wrapper/report.hpp"

namespace lp::wrapper {

std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> b(bytes);
    if (getrandom(b.data(), b.size(), 0) != static_cast<ssize_t>(b.size()))
        die(1, "cannot get random bytes");
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : b) out += {hex[c >> 4], hex[c & 15]};
    return out;
}

namespace {

std::string redacted_url(const leakproof::proxy& p) {
    char url[leakproof::max_url_size];
    return {url, leakproof::format_redacted(p, url, sizeof url)};
}

// The URL as the user wrote it, minus any password.
std::string redact(const std::string& url) {
    auto scheme = url.find("://");
    auto at = url.find('@', scheme == std::string::npos ? 0 : scheme + 3);
    if (scheme == std::string::npos || at == std::string::npos) return url;
    auto colon = url.find(':', scheme + 3);
    if (colon == std::string::npos || colon > at) return url;
    return url.substr(0, colon + 1) + "***" + url.substr(at);
}

// The interposer connects to the first hop by address, never by name.
void resolve_first_hop(leakproof::proxy& p) {
    std::string host{p.host.view()};
    lp::net::ip ip;
    if (lp::net::parse_ip(host, ip)) return;
    if (host == "localhost") {
        p.host.assign("127.0.0.1");
        return;
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0)
        die(1, "cannot resolve proxy host '" + host + "': " + gai_strerror(rc));
    char text[NI_MAXHOST];
    int rc =
        getnameinfo(res->ai_addr, res->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST);
    freeaddrinfo(res);
    if (rc != 0) die(1, "cannot resolve proxy host '" + host + "'");
    p.host.assign(text);
}

void set_credentials(leakproof::proxy& p, const options& o) {
    bool v5 = p.version == leakproof::socks_version::v5;
    if (o.have_user && !p.user.assign(o.user)) throw usage_error{"user name longer than 255 bytes"};
    if (o.have_password) {
        if (!v5 && !o.password.empty()) throw usage_error{"a SOCKS4 proxy takes no password"};
        if (!p.password.assign(o.password)) throw usage_error{"password longer than 255 bytes"};
    }
}

// Optimistic data: Tor reads the bytes behind a request (it is what Tor
// Browser relies on), so --tor turns it on; --optimistic asks it of every hop
// (only the last one's matters: earlier hops are handshakes, not data).
void set_optimistic(std::vector<leakproof::proxy>& chain, const options& o) {
    switch (o.optimistic) {
        case options::eagerness::by_url:
            if (o.tor) chain.front().options.optimistic = true;
            break;
        case options::eagerness::on:
            for (auto& p : chain) p.options.optimistic = true;
            break;
        case options::eagerness::off:
            for (auto& p : chain) {
                // The URL's optimism implied pipelining: keep the one round trip.
                if (p.options.optimistic && p.version == leakproof::socks_version::v5)
                    p.options.pipeline = true;
                p.options.optimistic = false;
            }
            break;
    }
}

// --inbound (BIND) and --udp are asked of the first proxy alone. --udp needs
// what UDP ASSOCIATE needs: one SOCKS5 proxy (the relay is the
// first hop's; a datagram cannot ride a chain's streams), and not Tor,
// which has no UDP.
void check_udp(const std::vector<leakproof::proxy>& chain, const options& o) {
    if (o.inbound && o.tor)
        throw usage_error{"--inbound cannot be used with --tor: Tor has no BIND"};
    if (o.inbound && chain.size() > 1)
        throw usage_error{
            "--inbound needs a single proxy: BIND is asked of the first proxy, "
            "which a chain's later hops would not see"};
    if (!o.udp) return;
    if (o.tor)
        throw usage_error{
            "--udp cannot be used with --tor: Tor carries no UDP (SOCKS5 UDP "
            "ASSOCIATE is refused)"};
    if (chain.size() > 1)
        throw usage_error{
            "--udp needs a single proxy: UDP ASSOCIATE relays through the first "
            "proxy only, so a chain's later hops would be skipped"};
    if (chain.front().version != leakproof::socks_version::v5)
        throw usage_error{"--udp needs a SOCKS5 proxy: SOCKS4 has no UDP ASSOCIATE"};
}

}  // namespace

std::vector<leakproof::proxy> build_chain(const options& o) {
    std::vector<leakproof::proxy> chain(o.proxies.size());
    for (std::size_t i = 0; i < chain.size(); ++i) {
        if (auto ec = leakproof::parse_proxy_url(o.proxies[i], chain[i]))
            throw usage_error{"bad proxy URL '" + redact(o.proxies[i]) + "': " + ec.message()};
    }
    set_credentials(chain.front(), o);
    // Tor reads a pipelined greeting + request (one round trip instead of
    // two); other proxies of the chain keep what their URL says, unless
    // --pipeline asks it of every SOCKS5 hop (SOCKS4 sends one message anyway).
    if (o.tor) chain.front().options.pipeline = true;
    if (o.pipeline)
        for (auto& p : chain)
            if (p.version == leakproof::socks_version::v5) p.options.pipeline = true;
    set_optimistic(chain, o);
    if (o.isolate && !o.isolate_process) {
        // A fresh identity per invocation: Tor (IsolateSOCKSAuth) puts
        // streams with different credentials on different circuits.
        std::string token = "leakproof-" + random_hex(8);
        for (auto& p : chain)
            if (p.version == leakproof::socks_version::v5 && p.user.empty())
                p.user.assign(token), p.password.assign(token);
    }
    for (auto& p : chain) {
        auto req = p.make_request(leakproof::address::host_name("example.org"), 80);
        if (auto ec = leakproof::validate(req))
            throw usage_error{"bad proxy URL '" + redacted_url(p) + "': " + ec.message()};
    }
    check_udp(chain, o);
    // Outside strict mode any hop may be the one a connection starts with.
    if (o.chain_mode == "strict")
        resolve_first_hop(chain.front());
    else
        for (auto& p : chain) resolve_first_hop(p);
    return chain;
}

namespace {

std::string proxy_url(const leakproof::proxy& p) {
    char url[leakproof::max_url_size];
    return {url, leakproof::format_proxy_url(p, url, sizeof url)};
}

// A route's target with its entry hops resolved; --pipeline applies to its
// SOCKS5 hops as to the chain's.
std::string resolved_target(const std::string& target, bool strict, bool pipeline) {
    if (target == "direct" || target == "refuse") return target;
    std::string_view urls{target};
    std::string out;
    if (urls.starts_with("tor:")) urls.remove_prefix(4), out = "tor:";
    for (std::size_t b = 0, n = 0; b <= urls.size(); ++n) {
        std::size_t e = std::min(urls.find(',', b), urls.size());
        leakproof::proxy p;
        if (auto ec = leakproof::parse_proxy_url(urls.substr(b, e - b), p))
            throw usage_error{"bad proxy URL in route target '" + redact(target) +
                              "': " + ec.message()};
        // The routes reach the tree in its environment (LEAKPROOF_ROUTES),
        // where no secret may go; only the chain's credentials have a place
        // in the placeholder map.
        if (!p.user.empty() || !p.password.empty())
            throw usage_error{"route target '" + redact(target) +
                              "': a route's proxy cannot have credentials (user or password) "
                              "yet, they would travel in the environment; give that proxy "
                              "with -p instead"};
        if (n == 0 || !strict) resolve_first_hop(p);
        if (pipeline && p.version == leakproof::socks_version::v5) p.options.pipeline = true;
        out += (n ? "," : "") + proxy_url(p);
        b = e + 1;
    }
    return out;
}

}  // namespace

std::string build_routes(const options& o) {
    std::string words;
    for (const auto& r : o.routes) {
        auto eq = r.find('=');
        words += (words.empty() ? "" : " ") + r.substr(0, eq) + "=" +
                 resolved_target(r.substr(eq + 1), o.chain_mode == "strict", o.pipeline);
    }
    return words;
}

}  // namespace lp::wrapper
