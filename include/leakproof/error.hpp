// leakproof — error codes.
//
// One std::error_category for everything leakproof can report: what the proxy
// answered (SOCKS5 REP codes, SOCKS4 CD codes, Tor's extended codes), what was
// wrong with its answer, what was wrong with the request before a byte was
// sent, and what was wrong with a proxy URL. Each code has a one-line message
// and maps to a portable std::errc condition and to the errno that the
// interposer hands back to an unmodified program.
#pragma once

#include <cstdint>
#include <system_error>

namespace leakproof {

enum class error : int {
    // 0 is success, as for every error_code enum.

    // The proxy's answer to a SOCKS5 request (REP field).
    general_failure = 1,         // REP 0x01
    not_allowed,                 // REP 0x02, connection not allowed by ruleset
    network_unreachable,         // REP 0x03
    host_unreachable,            // REP 0x04
    connection_refused,          // REP 0x05
    ttl_expired,                 // REP 0x06
    command_not_supported,       // REP 0x07
    address_type_not_supported,  // REP 0x08
    unassigned_reply,            // any other REP value

    // The proxy's answer to a SOCKS4/4a request (CD field).
    socks4_rejected,          // CD 91
    socks4_no_identd,         // CD 92
    socks4_identd_mismatch,   // CD 93
    socks4_unassigned_reply,  // any other CD value

    // Tor's extended SOCKS5 codes (ExtendedErrors on the SocksPort).
    onion_descriptor_not_found,  // 0xF0
    onion_descriptor_invalid,    // 0xF1
    onion_introduction_failed,   // 0xF2
    onion_rendezvous_failed,     // 0xF3
    onion_auth_missing,          // 0xF4
    onion_auth_wrong,            // 0xF5
    onion_address_invalid,       // 0xF6
    onion_introduction_timeout,  // 0xF7

    // The proxy's bytes did not follow the protocol.
    bad_version,           // reply version is not the one the protocol requires
    no_acceptable_method,  // SOCKS5 method 0xFF: none of ours accepted
    unexpected_method,     // the proxy picked a method we did not offer
    bad_auth_version,      // RFC 1929 reply version is not 1
    auth_failed,           // RFC 1929 status is not 0
    bad_address_type,      // SOCKS5 reply ATYP is not 1, 3 or 4
    proxy_closed,          // the stream ended inside the handshake

    // Raised by the I/O layers around the core.
    timeout,   // the handshake (or the whole connect) took too long
    no_proxy,  // a connect through an empty chain: never a direct connection

    // The request was refused before any byte was produced.
    hostname_empty,
    hostname_too_long,  // more than 255 bytes
    hostname_has_nul,
    user_too_long,          // more than 255 bytes
    password_too_long,      // more than 255 bytes
    password_without_user,  // RFC 1929 needs a user name of 1-255 bytes
    user_id_has_nul,        // SOCKS4 user id
    port_zero,              // CONNECT to port 0
    name_needs_socks4a,     // a name given to a plain SOCKS4 proxy: never resolved locally
    ipv6_needs_socks5,      // SOCKS4/4a cannot carry IPv6
    command_needs_socks5,   // RESOLVE_PTR exists only in SOCKS5
    ptr_needs_address,      // RESOLVE_PTR takes an IP address, not a name

    // Proxy URLs.
    url_bad_scheme,  // not socks4, socks4a, socks5 or socks5h
    url_bad_syntax,
    url_bad_port,
    url_bad_escape,      // a malformed %XX escape
    url_field_too_long,  // host, user or password longer than 255 bytes
    url_bad_option,      // an unknown ?option

    // What answered instead of a SOCKS server, told from the bytes of a reply
    // whose version byte is wrong (bad_version when they match nothing known).
    answered_http,  // "HTTP/…": a web server or an HTTP proxy
    answered_ssh,   // "SSH-…": an SSH server's banner
    answered_tls,   // a TLS record: an alert (0x15 0x03) or a handshake (0x16 0x03)
    // BIND and UDP ASSOCIATE.
    bind_not_supported,       // REP 7 to a BIND (microsocks, ssh -D, Tor)
    udp_not_supported,        // REP 7 to a UDP ASSOCIATE
    bind_peer_mismatch,       // BIND's second reply names another host than the one asked for
    udp_fragmented,           // a relay datagram with FRAG != 0 (never reassembled)
    udp_truncated,            // a relay datagram shorter than its header
    udp_bad_address_type,     // a relay datagram's ATYP is not 1, 3 or 4, or its name is empty
    udp_chain_not_supported,  // UDP ASSOCIATE through more than one proxy
    udp_association_closed,   // the UDP association's control connection ended
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), error_category()};
}

// The one-line message of a leakproof error, without allocating (for the
// interposer's log); `ec.message()` gives the same text.
const char* message_of(error e) noexcept;

// The errno an interposed connect() returns for a leakproof error (or for any
// error_code: a system error passes through, anything else becomes EPROTO).
int to_errno(std::error_code ec) noexcept;

// True for answered_http, answered_ssh and answered_tls: the proxy at that
// address is another kind of server, and a message for people names it
// (format_not_socks in proxy.hpp).
bool answered_other_protocol(std::error_code ec) noexcept;

// The leakproof error for a SOCKS5 REP byte (0 → success, an empty code).
std::error_code socks5_reply_error(std::uint8_t rep) noexcept;
// The leakproof error for a SOCKS4 CD byte (90 → success).
std::error_code socks4_reply_error(std::uint8_t cd) noexcept;

}  // namespace leakproof

template <>
struct std::is_error_code_enum<leakproof::error> : std::true_type {};
