#include "wrapper/peer_config.hpp"

#include <arpa/inet.h>

#include <cstdint>
#include <optional>

namespace lp::wrapper::peer {
namespace {

struct line_view {
    int number;
    std::string_view text;  // trimmed, comment removed
};

std::string_view trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

// The file's non-empty lines without their '#' comments.
std::vector<line_view> lines_of(std::string_view text) {
    std::vector<line_view> out;
    int n = 0;
    for (std::size_t at = 0; at < text.size();) {
        std::size_t end = text.find('\n', at);
        if (end == std::string_view::npos) end = text.size();
        auto line = text.substr(at, end - at);
        at = end + 1;
        ++n;
        line = trim(line.substr(0, line.find('#')));
        if (!line.empty()) out.push_back({n, line});
    }
    return out;
}

std::vector<std::string_view> words(std::string_view s) {
    std::vector<std::string_view> out;
    for (std::size_t b = 0; (b = s.find_first_not_of(" \t", b)) != std::string_view::npos;) {
        std::size_t e = s.find_first_of(" \t", b);
        if (e == std::string_view::npos) e = s.size();
        out.push_back(s.substr(b, e - b));
        b = e;
    }
    return out;
}

// "key = value" (tsocks); nullopt when there is no '='.
std::optional<std::pair<std::string_view, std::string_view>> key_value(std::string_view s) {
    auto eq = s.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    return std::pair{trim(s.substr(0, eq)), trim(s.substr(eq + 1))};
}

// For the user and password of a proxy URL.
std::string percent_encode(std::string_view s) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~';
        if (plain)
            out += static_cast<char>(c);
        else
            out += {'%', hex[c >> 4], hex[c & 15]};
    }
    return out;
}

std::string host_for_url(std::string_view host) {
    std::string h{host};
    return h.find(':') != std::string::npos ? "[" + h + "]" : h;
}

std::string proxy_url(std::string_view scheme, std::string_view host, std::string_view port,
                      std::string_view user, std::string_view pass) {
    std::string url{scheme};
    url += "://";
    if (!user.empty()) {
        url += percent_encode(user);
        if (!pass.empty()) url += ":" + percent_encode(pass);
        url += "@";
    }
    return url + host_for_url(host) + ":" + std::string{port};
}

bool is_port(std::string_view s) {
    if (s.empty() || s.size() > 5) return false;
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    return v > 0 && v <= 65535;
}

// A netmask (255.255.0.0) or a prefix length as the prefix length.
std::optional<int> prefix_of(std::string_view mask) {
    if (mask.find('.') == std::string_view::npos) {
        if (mask.empty() || mask.size() > 3 || mask.find_first_not_of("0123456789") != mask.npos)
            return std::nullopt;
        int v = std::stoi(std::string{mask});
        return v <= 128 ? std::optional<int>{v} : std::nullopt;
    }
    in_addr a;
    if (inet_pton(AF_INET, std::string{mask}.c_str(), &a) != 1) return std::nullopt;
    std::uint32_t m = ntohl(a.s_addr);
    int n = 0;
    while (n < 32 && (m & (0x80000000u >> n))) ++n;
    if (n < 32 && (m << n) != 0) return std::nullopt;  // not contiguous
    return n;
}

struct network {
    std::string cidr;   // CIDR[:PORT] in leakproof's syntax
    std::string range;  // a port range leakproof cannot express ("80-100"), else empty
};

// proxychains' localnet and tsocks' local/reaches: ADDR[:PORT[-PORT]]/MASK,
// or ADDR/MASK:PORT. Throws refusal when unreadable.
network parse_network(std::string_view text, int line) {
    auto bad = [&] {
        return refusal{line, "cannot read the network '" + std::string{text} +
                                 "' (expected ADDRESS/NETMASK or ADDRESS:PORT/NETMASK)"};
    };
    auto slash = text.find('/');
    if (slash == std::string_view::npos) throw bad();
    auto addr = text.substr(0, slash), mask = text.substr(slash + 1);
    std::string_view port;
    if (auto colon = addr.find(':'); colon != addr.npos && addr.find(':', colon + 1) == addr.npos)
        port = addr.substr(colon + 1), addr = addr.substr(0, colon);
    else if (auto c2 = mask.find(':'); c2 != mask.npos)
        port = mask.substr(c2 + 1), mask = mask.substr(0, c2);
    auto prefix = prefix_of(mask);
    if (!prefix) throw bad();
    network n;
    bool v6 = addr.find(':') != addr.npos;
    n.cidr = v6 ? "[" + std::string{addr} + "/" + std::to_string(*prefix) + "]"
                : std::string{addr} + "/" + std::to_string(*prefix);
    if (port.find('-') != port.npos) {
        n.range = std::string{port};
    } else if (!port.empty()) {
        if (!is_port(port)) throw bad();
        n.cidr += ":" + std::string{port};
    }
    if (v6 && port.empty()) n.cidr = std::string{addr} + "/" + std::to_string(*prefix);
    return n;
}

// proxychains' localnet and tsocks' local (`key`): the network becomes an
// --exclude, or a warning when its port range cannot be expressed (the
// network then stays proxied: never a wider exclusion than asked for).
void exclude_network(translation& t, std::string_view key, std::string_view text, int line) {
    auto n = parse_network(text, line);
    if (n.range.empty())
        t.settings.push_back({line, "exclude", n.cidr});
    else
        t.warnings.push_back({line, std::string{key} + " port range " + n.range +
                                        " cannot be expressed: that network stays proxied"});
}

bool one_of(std::string_view s, std::initializer_list<std::string_view> set) {
    for (auto x : set)
        if (s == x) return true;
    return false;
}

// ---- proxychains -------------------------------------------------------------

class proxychains_reader {
public:
    explicit proxychains_reader(translation& t) : t_{t} {}

    void line(const line_view& l) {
        if (l.text.front() == '[') return section(l);
        if (in_list_) return entry(l);
        directive(l);
    }

    void finish() {
        check_count();
        if (!seen_list_)
            warn(0, "no [ProxyList] in this file: " + std::string{proxies_elsewhere});
        else if (proxies_.empty())
            warn(list_line_, "[ProxyList] names no proxy: " + std::string{proxies_elsewhere});
        if (chain_line_ != 0) {
            std::string mode = chain_;
            if (chain_ == "random" || chain_ == "round-robin") mode += ":" + count_;
            t_.settings.push_back({chain_line_, "chain", mode});
        }
        if (count_line_ != 0 && chain_ != "random" && chain_ != "round-robin")
            warn(count_line_,
                 "chain_len applies to random_chain and round_robin_chain only: "
                 "ignored with " +
                     (chain_.empty() ? std::string{"strict"} : chain_) + " chaining");
        if (timeout_line_ != 0)
            t_.settings.push_back({timeout_line_, "hop_timeout", seconds(timeout_ms_)});
        if (!proxy_dns_)
            warn(0,
                 "proxy_dns is off in this file: leakproof sends every name to the proxy "
                 "anyway and never looks one up locally");
        for (auto& p : proxies_) t_.settings.push_back(std::move(p));
    }

private:
    static constexpr const char* proxies_elsewhere =
        "the proxies come from -p, $LEAKPROOF_PROXY or the default socks5h://127.0.0.1:9050";

    void warn(int line, std::string text) { t_.warnings.push_back({line, std::move(text)}); }

    // chain_len: a number of hops leakproof can pick (1 to 8), at most as
    // many as the list has (more would silently mean fewer).
    void check_count() {
        if (count_line_ == 0) return;
        std::size_t n = is_number(count_) ? std::stoul(count_) : 0;
        if (n < 1 || n > 8)
            throw refusal{count_line_, "chain_len needs a number of proxies from 1 to 8"};
        bool picks = chain_ == "random" || chain_ == "round-robin";
        if (picks && !proxies_.empty() && n > proxies_.size())
            warn(count_line_, "chain_len " + count_ + " is more than the " +
                                  std::to_string(proxies_.size()) +
                                  " proxies of [ProxyList]: each connection goes through " +
                                  std::to_string(proxies_.size()));
    }

    static std::string seconds(long ms) {
        std::string s = std::to_string(ms / 1000);
        if (ms % 1000) {
            std::string frac = std::to_string(1000 + ms % 1000).substr(1);
            while (frac.back() == '0') frac.pop_back();
            s += "." + frac;
        }
        return s;
    }

    void section(const line_view& l) {
        in_list_ = l.text == "[ProxyList]";
        if (in_list_) seen_list_ = true, list_line_ = l.number;
        if (!in_list_) warn(l.number, "unknown section " + std::string{l.text} + ": ignored");
    }

    void directive(const line_view& l) {
        // "chain_len = 2" and "remote_dns_subnet 224" alike.
        auto kv = key_value(l.text);
        auto w = words(kv ? kv->first : l.text);
        auto key = w[0];
        auto arg = kv ? kv->second : w.size() > 1 ? w[1] : std::string_view{};
        if (one_of(key, {"strict_chain", "dynamic_chain", "random_chain", "round_robin_chain"})) {
            chain_ = key == "strict_chain"    ? "strict"
                     : key == "dynamic_chain" ? "dynamic"
                     : key == "random_chain"  ? "random"
                                              : "round-robin";
            chain_line_ = l.number;
        } else if (key == "chain_len") {
            count_ = std::string{arg};
            count_line_ = l.number;
        } else if (key == "proxy_dns" || key == "proxy_dns_old") {
            proxy_dns_ = true;  // what leakproof always does
        } else if (key == "proxy_dns_daemon") {
            proxy_dns_ = true;
            warn(l.number,
                 "proxy_dns_daemon: no daemon is needed, leakproof answers lookups "
                 "with placeholder addresses itself");
        } else if (key == "remote_dns_subnet") {
            warn(l.number,
                 "remote_dns_subnet: leakproof's own placeholder addresses are used "
                 "instead (names still go to the proxy)");
        } else if (key == "tcp_read_time_out" || key == "tcp_connect_time_out") {
            if (!is_number(arg)) throw refusal{l.number, std::string{key} + " needs milliseconds"};
            timeout_ms_ += std::stol(std::string{arg});
            timeout_line_ = l.number;  // both are one hop's budget in leakproof
        } else if (key == "localnet") {
            exclude_network(t_, "localnet", arg, l.number);
        } else if (key == "dnat") {
            throw refusal{l.number,
                          "dnat is not supported: leakproof does not rewrite "
                          "destinations (remove the line, or route that destination "
                          "with --route)"};
        } else if (key == "quiet_mode") {
            t_.settings.push_back({l.number, "quiet", "on"});
        } else {
            warn(l.number, "unknown proxychains directive '" + std::string{key} + "': ignored");
        }
    }

    static bool is_number(std::string_view s) {
        return !s.empty() && s.size() < 10 && s.find_first_not_of("0123456789") == s.npos;
    }

    void entry(const line_view& l) {
        auto w = words(l.text);
        auto type = w[0];
        if (type == "http" || type == "raw")
            throw refusal{l.number, std::string{type} + " proxy '" + std::string{l.text} +
                                        "' refused: leakproof speaks SOCKS only (socks4, socks5)"};
        if (type != "socks4" && type != "socks5")
            throw refusal{l.number, "unknown proxy type '" + std::string{type} + "'"};
        if (w.size() < 3 || w.size() > 5 || !is_port(w[2]))
            throw refusal{l.number, "expected 'TYPE HOST PORT [USER [PASSWORD]]'"};
        auto user = w.size() > 3 ? w[3] : std::string_view{};
        auto pass = w.size() > 4 ? w[4] : std::string_view{};
        // socks4 entries become socks4a: names go to the proxy (proxy_dns).
        std::string scheme = type == "socks4" ? "socks4a" : "socks5h";
        if (type == "socks4" && !pass.empty()) {
            warn(l.number, "a SOCKS4 proxy takes no password: the password is ignored");
            pass = {};
        }
        proxies_.push_back({l.number, "proxy", proxy_url(scheme, w[1], w[2], user, pass)});
    }

    translation& t_;
    bool in_list_ = false;
    bool seen_list_ = false;
    int list_line_ = 0;
    bool proxy_dns_ = false;
    std::string chain_;
    int chain_line_ = 0;
    std::string count_ = "1";
    int count_line_ = 0;
    long timeout_ms_ = 0;
    int timeout_line_ = 0;
    std::vector<setting> proxies_;
};

// ---- torsocks ----------------------------------------------------------------

void read_torsocks(const std::vector<line_view>& lines, translation& t) {
    std::string address = "127.0.0.1", port = "9050", user, pass;
    int proxy_line = 0, user_line = 0;
    auto warn = [&](int line, std::string text) { t.warnings.push_back({line, std::move(text)}); };
    for (const auto& l : lines) {
        auto w = words(l.text);
        auto key = w[0];
        auto arg = w.size() > 1 ? std::string{w[1]} : std::string{};
        if (arg.empty() &&
            one_of(key, {"TorAddress", "TorPort", "SOCKS5Username", "SOCKS5Password"}))
            throw refusal{l.number, std::string{key} + " needs a value"};
        if (key == "TorAddress") {
            address = arg, proxy_line = l.number;
        } else if (key == "TorPort") {
            if (!is_port(arg)) throw refusal{l.number, "TorPort needs a port number"};
            port = arg, proxy_line = l.number;
        } else if (key == "OnionAddrRange") {
            warn(l.number,
                 "OnionAddrRange: leakproof's own placeholder addresses are used "
                 "instead (.onion names still go to Tor)");
        } else if (key == "AllowOutboundLocalhost") {
            if (arg == "0") {
                // torsocks refuses loopback unless told otherwise; so do these routes
                // (the Tor proxy itself stays reachable).
                t.settings.push_back({l.number, "route", "127.0.0.0/8 refuse"});
                t.settings.push_back({l.number, "route", "::1 refuse"});
            } else if (arg != "1" && arg != "2") {
                warn(l.number, "AllowOutboundLocalhost expects 0, 1 or 2: ignored");
            }  // 1 and 2: loopback goes direct, leakproof's default
        } else if (key == "IsolatePID") {
            if (arg == "1")
                t.settings.push_back({l.number, "isolate", "process"});
            else if (arg != "0")
                warn(l.number, "IsolatePID expects 0 or 1: ignored");
        } else if (key == "SOCKS5Username") {
            user = arg, user_line = l.number;
        } else if (key == "SOCKS5Password") {
            pass = arg, user_line = l.number;
        } else if (key == "AllowInbound") {
            if (arg == "0")
                warn(l.number,
                     "AllowInbound 0: leakproof does not refuse inbound connections "
                     "(listening sockets are left alone)");
            else if (arg != "1")
                warn(l.number, "AllowInbound expects 0 or 1: ignored");
        } else {
            warn(l.number, "unknown torsocks directive '" + std::string{key} + "': ignored");
        }
    }
    int line = proxy_line != 0 ? proxy_line : 0;
    t.settings.push_back({line, "proxy", proxy_url("socks5h", address, port, {}, {})});
    t.settings.push_back({line, "tor", "on"});
    if (!user.empty()) t.settings.push_back({user_line, "user", user});
    if (!pass.empty()) t.settings.push_back({user_line, "password", pass});
}

// ---- tsocks ------------------------------------------------------------------

struct tsocks_server {
    std::string host, port = "1080", type = "4", user, pass;
    int line = 0;
    bool set = false;
};

class tsocks_reader {
public:
    explicit tsocks_reader(translation& t) : t_{t} {}

    void line(const line_view& l) {
        if (l.text == "}") return close_path(l);
        if (l.text.starts_with("path")) {
            auto rest = trim(l.text.substr(4));
            if (rest != "{") throw refusal{l.number, "expected 'path {'"};
            if (in_path_) throw refusal{l.number, "a path inside a path"};
            in_path_ = true;
            path_ = {};
            reaches_.clear();
            return;
        }
        auto kv = key_value(l.text);
        if (!kv) throw refusal{l.number, "expected 'key = value'"};
        auto [key, value] = *kv;
        auto& server = in_path_ ? path_ : default_;
        if (key == "server") {
            server.host = value, server.set = true, server.line = l.number;
        } else if (key == "server_port") {
            if (!is_port(value)) throw refusal{l.number, "server_port needs a port number"};
            server.port = value;
        } else if (key == "server_type") {
            if (value != "4" && value != "5") throw refusal{l.number, "server_type is 4 or 5"};
            server.type = value;
        } else if (key == "default_user") {
            server.user = value;
        } else if (key == "default_pass") {
            server.pass = value;
        } else if (key == "reaches") {
            if (in_path_)
                reaches_.push_back({l.number, std::string{value}});
            else
                warn(l.number, "reaches belongs in a path { } block: ignored");
        } else if (key == "local" && in_path_) {
            warn(l.number, "local belongs outside path { } blocks: ignored");
        } else if (key == "local") {
            exclude_network(t_, "local", value, l.number);
        } else if (key == "fallback") {
            if (value != "no")
                warn(l.number,
                     "fallback: leakproof never connects directly when no proxy "
                     "applies; ignored");
        } else {
            warn(l.number, "unknown tsocks directive '" + std::string{key} + "': ignored");
        }
    }

    void finish() {
        if (in_path_) throw refusal{0, "a path { block is not closed"};
        for (auto& r : routes_) t_.settings.push_back(std::move(r));
        if (!default_.set)
            warn(0,
                 "no default server in this file: the proxies come from -p, "
                 "$LEAKPROOF_PROXY or the default socks5h://127.0.0.1:9050");
        if (default_.set) t_.settings.push_back({default_.line, "proxy", url(default_)});
    }

private:
    void warn(int line, std::string text) { t_.warnings.push_back({line, std::move(text)}); }

    std::string url(tsocks_server& s) {
        // Type 4 becomes socks4a: names go to the proxy, never to local DNS.
        if (s.type == "4" && !s.pass.empty()) {
            warn(s.line, "a SOCKS4 server takes no password: default_pass is ignored");
            s.pass.clear();
        }
        return proxy_url(s.type == "4" ? "socks4a" : "socks5h", s.host, s.port, s.user, s.pass);
    }

    void close_path(const line_view& l) {
        if (!in_path_) throw refusal{l.number, "'}' without 'path {'"};
        in_path_ = false;
        if (!path_.set) {
            warn(l.number, "a path without a server: its networks go through the default server");
            return;
        }
        std::string target = url(path_);
        for (const auto& [line, text] : reaches_) {
            auto n = parse_network(text, line);
            if (!n.range.empty())
                warn(line, "port range " + n.range +
                               " cannot be expressed: the route covers "
                               "every port of " +
                               n.cidr);
            routes_.push_back({line, "route", n.cidr + " " + target});
        }
    }

    translation& t_;
    tsocks_server default_;
    tsocks_server path_;
    bool in_path_ = false;
    std::vector<std::pair<int, std::string>> reaches_;
    std::vector<setting> routes_;
};

}  // namespace

std::string_view name_of(format f) noexcept {
    switch (f) {
        case format::leakproof: return "leakproof";
        case format::proxychains: return "proxychains";
        case format::torsocks: return "torsocks";
        case format::tsocks: return "tsocks";
    }
    return "leakproof";
}

format detect(std::string_view text) {
    for (const auto& l : lines_of(text)) {
        auto first = words(l.text)[0];
        if (one_of(first, {"[ProxyList]", "strict_chain", "dynamic_chain", "random_chain",
                           "round_robin_chain", "proxy_dns", "remote_dns_subnet", "localnet",
                           "tcp_read_time_out", "tcp_connect_time_out", "quiet_mode"}))
            return format::proxychains;
        if (one_of(first, {"TorAddress", "TorPort", "OnionAddrRange", "AllowOutboundLocalhost",
                           "IsolatePID", "SOCKS5Username", "SOCKS5Password", "AllowInbound"}))
            return format::torsocks;
        auto kv = key_value(l.text);
        auto key = kv ? kv->first : first;
        if (one_of(key, {"server", "server_port", "server_type", "default_user", "default_pass",
                         "local", "path"}))
            return format::tsocks;
    }
    return format::leakproof;
}

translation translate(std::string_view text, format f) {
    translation t;
    t.from = f;
    auto lines = lines_of(text);
    if (f == format::proxychains) {
        proxychains_reader r{t};
        for (const auto& l : lines) r.line(l);
        r.finish();
    } else if (f == format::torsocks) {
        read_torsocks(lines, t);
    } else if (f == format::tsocks) {
        tsocks_reader r{t};
        for (const auto& l : lines) r.line(l);
        r.finish();
    }
    return t;
}

}  // namespace lp::wrapper::peer
