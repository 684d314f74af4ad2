// leakproof — proxy descriptions and their URLs.
//
//   socks4://host[:port]              SOCKS4, IPv4 destinations only
//   socks4a://[userid@]host[:port]    SOCKS4a, names sent to the proxy
//   socks5://[user[:pass]@]host[:port]
//   socks5h://[user[:pass]@]host[:port]
//
// leakproof never resolves a destination name locally, so socks5:// and
// socks5h:// mean the same thing: the name goes to the proxy. User and
// password are %-decoded; an IPv6 host is written in brackets; the port
// defaults to 1080. `?pipeline=1` turns on the one-round-trip handshake,
// `?optimistic=1` optimistic data (handshake_options::optimistic); options
// are joined with `&`.
//
// A proxy keeps its strings inline (no heap), so the interposer can parse its
// configuration without allocating.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <system_error>

#include "leakproof/handshake.hpp"

namespace leakproof {

// A string of at most 255 bytes stored inline: every SOCKS field fits.
class short_string {
public:
    static constexpr std::size_t capacity = 255;

    std::string_view view() const noexcept { return {data_, size_}; }
    bool empty() const noexcept { return size_ == 0; }
    void clear() noexcept { size_ = 0; }
    // False (and unchanged) when the byte would not fit.
    bool push_back(char c) noexcept;
    bool assign(std::string_view s) noexcept;

private:
    std::uint8_t size_ = 0;
    char data_[capacity]{};  // zeroed, so that a proxy can be constant-initialized
};

struct proxy {
    socks_version version = socks_version::v5;
    short_string host;  // a name or an IP literal (IPv6 without brackets)
    std::uint16_t port = 1080;
    short_string user;
    short_string password;
    handshake_options options;

    // The handshake request for reaching `target:port` through this proxy.
    request make_request(address target, std::uint16_t port,
                         command cmd = command::connect) const noexcept;
};

// Parses a proxy URL into `out`. On error `out` is unspecified.
std::error_code parse_proxy_url(std::string_view url, proxy& out) noexcept;

// Writes `p` as a URL with the password replaced by "***" (for logs and error
// messages: credentials are never printed). Returns the length written, at
// most `size - 1`; the text is NUL-terminated.
std::size_t format_redacted(const proxy& p, char* out, std::size_t size) noexcept;

// Writes `p` as a URL that parse_proxy_url reads back to the same proxy
// (credentials %-encoded, `?pipeline=1`, `optimistic=1` when set); the same length rules as
// format_redacted. The buffer needs max_url_size bytes for any proxy.
std::size_t format_proxy_url(const proxy& p, char* out, std::size_t size) noexcept;
inline constexpr std::size_t max_url_size =
    10 + 3 * 255 + 1 + 3 * 255 + 1 + 2 + 255 + 6 + 11 + 13 + 1;

// For an error that says another kind of server answered (answered_http,
// answered_ssh, answered_tls), the sentence that names it, as the message
// alone cannot: "proxy 127.0.0.1:8080 answered like an HTTP server, not
// SOCKS". Written and returned as format_redacted does; 0, and nothing
// written, for any other error.
std::size_t format_not_socks(std::error_code ec, const proxy& p, char* out,
                             std::size_t size) noexcept;

}  // namespace leakproof
