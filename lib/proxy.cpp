#include "leakproof/proxy.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace leakproof {
namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return (x | 0x20) == (y | 0x20);
           });
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::error_code percent_decode(std::string_view in, short_string& out) noexcept {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return error::url_bad_escape;
            const int hi = hex_value(in[i + 1]);
            const int lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) return error::url_bad_escape;
            c = static_cast<char>(hi * 16 + lo);
            i += 2;
        }
        if (!out.push_back(c)) return error::url_field_too_long;
    }
    return {};
}

std::error_code parse_scheme(std::string_view scheme, proxy& out) noexcept {
    if (iequals(scheme, "socks4"))
        out.version = socks_version::v4;
    else if (iequals(scheme, "socks4a"))
        out.version = socks_version::v4a;
    else if (iequals(scheme, "socks5") || iequals(scheme, "socks5h"))
        out.version = socks_version::v5;
    else
        return error::url_bad_scheme;
    return {};
}

std::error_code parse_userinfo(std::string_view info, proxy& out) noexcept {
    const auto colon = info.find(':');
    if (auto ec = percent_decode(info.substr(0, colon), out.user)) return ec;
    if (colon != std::string_view::npos)
        if (auto ec = percent_decode(info.substr(colon + 1), out.password)) return ec;
    if (out.user.empty() && !out.password.empty()) return error::password_without_user;
    if (out.version != socks_version::v5 && !out.password.empty())
        return error::password_without_user;
    return {};
}

std::error_code parse_port(std::string_view digits, std::uint16_t& port) noexcept {
    if (digits.empty() || digits.size() > 5) return error::url_bad_port;
    unsigned value = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return error::url_bad_port;
        value = value * 10 + unsigned(c - '0');
    }
    if (value == 0 || value > 65535) return error::url_bad_port;
    port = static_cast<std::uint16_t>(value);
    return {};
}

std::error_code parse_host_port(std::string_view hp, proxy& out) noexcept {
    std::string_view host;
    std::string_view rest;
    if (!hp.empty() && hp.front() == '[') {
        const auto close = hp.find(']');
        if (close == std::string_view::npos) return error::url_bad_syntax;
        host = hp.substr(1, close - 1);
        if (address::parse(host).type != address::kind::ipv6) return error::url_bad_syntax;
        rest = hp.substr(close + 1);
    } else {
        const auto colon = hp.find(':');
        host = hp.substr(0, colon);
        rest = colon == std::string_view::npos ? std::string_view{} : hp.substr(colon);
    }
    if (host.empty()) return error::url_bad_syntax;
    if (!out.host.assign(host)) return error::url_field_too_long;
    if (rest.empty()) return {};
    if (rest.front() != ':') return error::url_bad_syntax;
    return parse_port(rest.substr(1), out.port);
}

std::error_code parse_options(std::string_view query, proxy& out) noexcept {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view opt = query.substr(0, amp);
        if (opt == "pipeline" || opt == "pipeline=1")
            out.options.pipeline = true;
        else if (opt == "pipeline=0")
            out.options.pipeline = false;
        else if (opt == "optimistic" || opt == "optimistic=1")
            out.options.optimistic = true;
        else if (opt == "optimistic=0")
            out.options.optimistic = false;
        else if (!opt.empty())
            return error::url_bad_option;
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    }
    return {};
}

// Appends to a bounded buffer, always leaving room for the NUL.
struct bounded_writer {
    char* out;
    std::size_t size;
    std::size_t len = 0;

    void put(std::string_view s) noexcept {
        for (char c : s)
            if (len + 1 < size) out[len++] = c;
        if (size) out[len] = '\0';
    }
};

// host:port, an IPv6 host in brackets.
void put_host_port(bounded_writer& w, const proxy& p) noexcept {
    const bool bracket = address::parse(p.host.view()).type == address::kind::ipv6;
    if (bracket) w.put("[");
    w.put(p.host.view());
    if (bracket) w.put("]");
    char port[8];
    std::size_t n = sizeof port;
    port[--n] = '\0';
    unsigned v = p.port;
    do {
        port[--n] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v);
    w.put(":");
    w.put(port + n);
}

const char* scheme_name(socks_version v) noexcept {
    switch (v) {
        case socks_version::v4: return "socks4";
        case socks_version::v4a: return "socks4a";
        default: return "socks5h";
    }
}

}  // namespace

bool short_string::push_back(char c) noexcept {
    if (size_ == capacity) return false;
    data_[size_++] = c;
    return true;
}

bool short_string::assign(std::string_view s) noexcept {
    if (s.size() > capacity) return false;
    if (!s.empty()) std::memcpy(data_, s.data(), s.size());  // data() may be null
    size_ = static_cast<std::uint8_t>(s.size());
    return true;
}

address address::parse(std::string_view host) noexcept {
    char text[INET6_ADDRSTRLEN];
    if (host.empty() || host.size() >= sizeof text) return host_name(host);
    std::memcpy(text, host.data(), host.size());
    text[host.size()] = '\0';
    std::array<std::uint8_t, 16> bytes{};
    if (inet_pton(AF_INET, text, bytes.data()) == 1)
        return ipv4({bytes[0], bytes[1], bytes[2], bytes[3]});
    if (inet_pton(AF_INET6, text, bytes.data()) == 1) return ipv6(bytes);
    return host_name(host);
}

request proxy::make_request(address target, std::uint16_t target_port, command cmd) const noexcept {
    request r;
    r.version = version;
    r.cmd = cmd;
    r.target = target;
    r.port = target_port;
    r.user = user.view();
    r.password = password.view();
    r.options = options;
    return r;
}

std::error_code parse_proxy_url(std::string_view url, proxy& out) noexcept {
    out = proxy{};
    const auto sep = url.find("://");
    if (sep == std::string_view::npos) return error::url_bad_syntax;
    if (auto ec = parse_scheme(url.substr(0, sep), out)) return ec;
    std::string_view rest = url.substr(sep + 3);

    const auto query_at = rest.find('?');
    const std::string_view query =
        query_at == std::string_view::npos ? std::string_view{} : rest.substr(query_at + 1);
    rest = rest.substr(0, query_at);
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    if (rest.find('/') != std::string_view::npos) return error::url_bad_syntax;

    const auto at = rest.rfind('@');
    if (at != std::string_view::npos) {
        if (auto ec = parse_userinfo(rest.substr(0, at), out)) return ec;
        rest = rest.substr(at + 1);
    }
    if (auto ec = parse_host_port(rest, out)) return ec;
    return parse_options(query, out);
}

namespace {

// What a URL's userinfo cannot hold as it is: the delimiters and anything
// outside printable ASCII, %-encoded so that parse_proxy_url reads it back.
void put_encoded(bounded_writer& w, std::string_view s) noexcept {
    static constexpr char hex[] = "0123456789ABCDEF";
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        const bool plain = c > 0x20 && c < 0x7f && c != '%' && c != ':' && c != '@' && c != '/' &&
                           c != '?' && c != '[' && c != ']';
        if (plain) {
            w.put(std::string_view{&ch, 1});
        } else {
            const char escaped[3] = {'%', hex[c >> 4], hex[c & 15]};
            w.put(std::string_view{escaped, 3});
        }
    }
}

enum class secrets : bool { redacted, kept };

std::size_t format_url(const proxy& p, char* out, std::size_t size, secrets what) noexcept {
    bounded_writer w{out, size};
    w.put(scheme_name(p.version));
    w.put("://");
    if (!p.user.empty()) {
        put_encoded(w, p.user.view());
        if (!p.password.empty()) {
            w.put(":");
            if (what == secrets::kept)
                put_encoded(w, p.password.view());
            else
                w.put("***");
        }
        w.put("@");
    }
    put_host_port(w, p);
    if (what == secrets::kept) {
        if (p.options.pipeline) w.put("?pipeline=1");
        if (p.options.optimistic) w.put(p.options.pipeline ? "&optimistic=1" : "?optimistic=1");
    }
    return w.len;
}

}  // namespace

std::size_t format_redacted(const proxy& p, char* out, std::size_t size) noexcept {
    return format_url(p, out, size, secrets::redacted);
}

std::size_t format_proxy_url(const proxy& p, char* out, std::size_t size) noexcept {
    return format_url(p, out, size, secrets::kept);
}

std::size_t format_not_socks(std::error_code ec, const proxy& p, char* out,
                             std::size_t size) noexcept {
    if (!answered_other_protocol(ec)) return 0;
    // The message reads "proxy: answered like …": the address takes the colon's place.
    constexpr std::string_view prefix = "proxy: ";
    const std::string_view message = message_of(static_cast<error>(ec.value()));
    bounded_writer w{out, size};
    w.put("proxy ");
    put_host_port(w, p);
    w.put(" ");
    w.put(message.substr(message.starts_with(prefix) ? prefix.size() : 0));
    return w.len;
}

}  // namespace leakproof
