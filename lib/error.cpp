#include "leakproof/error.hpp"

#include <cerrno>

namespace leakproof {
namespace {

struct error_info {
    const char* message;
    std::errc condition;
    int errno_value;
};

// One row per code, in enum order, so the three views of an error cannot drift.
constexpr error_info table[] = {
    /* 0 */ {"success", std::errc{}, 0},
    {"proxy: general SOCKS server failure", std::errc::connection_refused, ECONNREFUSED},
    {"proxy: connection not allowed by ruleset", std::errc::permission_denied, EACCES},
    {"proxy: network unreachable", std::errc::network_unreachable, ENETUNREACH},
    {"proxy: host unreachable", std::errc::host_unreachable, EHOSTUNREACH},
    {"proxy: connection refused by the destination", std::errc::connection_refused, ECONNREFUSED},
    {"proxy: TTL expired", std::errc::timed_out, ETIMEDOUT},
    {"proxy: command not supported", std::errc::operation_not_supported, EOPNOTSUPP},
    {"proxy: address type not supported", std::errc::address_family_not_supported, EAFNOSUPPORT},
    {"proxy: unassigned SOCKS5 reply code", std::errc::protocol_error, EPROTO},

    {"SOCKS4 proxy: request rejected or failed", std::errc::connection_refused, ECONNREFUSED},
    {"SOCKS4 proxy: cannot reach the client's identd", std::errc::permission_denied, EACCES},
    {"SOCKS4 proxy: identd reports a different user id", std::errc::permission_denied, EACCES},
    {"SOCKS4 proxy: unassigned reply code", std::errc::protocol_error, EPROTO},

    {"Tor: onion service descriptor not found (service offline or address unknown)",
     std::errc::host_unreachable, EHOSTUNREACH},
    {"Tor: onion service descriptor is invalid", std::errc::host_unreachable, EHOSTUNREACH},
    {"Tor: onion service introduction failed", std::errc::connection_refused, ECONNREFUSED},
    {"Tor: onion service rendezvous failed", std::errc::connection_refused, ECONNREFUSED},
    {"Tor: onion service needs client authorization", std::errc::permission_denied, EACCES},
    {"Tor: onion service rejected the client authorization", std::errc::permission_denied, EACCES},
    {"Tor: invalid onion address", std::errc::host_unreachable, EHOSTUNREACH},
    {"Tor: onion service introduction timed out", std::errc::timed_out, ETIMEDOUT},

    {"proxy: reply has the wrong protocol version (not a SOCKS proxy?)", std::errc::protocol_error,
     EPROTO},
    {"proxy: no acceptable authentication method (credentials required or refused)",
     std::errc::permission_denied, EACCES},
    {"proxy: chose an authentication method that was not offered", std::errc::protocol_error,
     EPROTO},
    {"proxy: username/password reply has the wrong version", std::errc::protocol_error, EPROTO},
    {"proxy: username/password authentication failed", std::errc::permission_denied, EACCES},
    {"proxy: reply has an unknown address type", std::errc::protocol_error, EPROTO},
    {"proxy: closed the connection during the SOCKS handshake", std::errc::connection_reset,
     ECONNRESET},

    {"timed out", std::errc::timed_out, ETIMEDOUT},
    {"no proxy given (leakproof never connects directly)", std::errc::invalid_argument, EINVAL},

    {"host name is empty", std::errc::invalid_argument, EINVAL},
    {"host name is longer than 255 bytes", std::errc::filename_too_long, ENAMETOOLONG},
    {"host name contains a NUL byte", std::errc::invalid_argument, EINVAL},
    {"user name is longer than 255 bytes", std::errc::invalid_argument, EINVAL},
    {"password is longer than 255 bytes", std::errc::invalid_argument, EINVAL},
    {"a password needs a user name (SOCKS4 takes no password)", std::errc::invalid_argument,
     EINVAL},
    {"SOCKS4 user id contains a NUL byte", std::errc::invalid_argument, EINVAL},
    {"port 0 is not a destination", std::errc::invalid_argument, EINVAL},
    {"a SOCKS4 proxy cannot take a host name and leakproof never resolves one locally: "
     "use socks4a:// or socks5h://",
     std::errc::address_family_not_supported, EAFNOSUPPORT},
    {"SOCKS4 cannot carry an IPv6 address: use socks5h://", std::errc::address_family_not_supported,
     EAFNOSUPPORT},
    {"this command exists only in SOCKS5", std::errc::operation_not_supported, EOPNOTSUPP},
    {"a reverse lookup (RESOLVE_PTR) needs an IP address, not a name", std::errc::invalid_argument,
     EINVAL},

    {"proxy URL: unsupported scheme (use socks4://, socks4a://, socks5:// or socks5h://)",
     std::errc::invalid_argument, EINVAL},
    {"proxy URL: malformed (expected scheme://[user[:password]@]host[:port])",
     std::errc::invalid_argument, EINVAL},
    {"proxy URL: port is not a number from 1 to 65535", std::errc::invalid_argument, EINVAL},
    {"proxy URL: malformed %-escape", std::errc::invalid_argument, EINVAL},
    {"proxy URL: host, user or password longer than 255 bytes", std::errc::invalid_argument,
     EINVAL},
    {"proxy URL: unknown option (known: pipeline=0|1, optimistic=0|1)", std::errc::invalid_argument,
     EINVAL},

    // protocol_error, as bad_version is: checks for that condition still hold.
    {"proxy: answered like an HTTP server, not SOCKS", std::errc::protocol_error, EPROTO},
    {"proxy: answered like an SSH server, not SOCKS", std::errc::protocol_error, EPROTO},
    {"proxy: answered like a TLS server, not SOCKS", std::errc::protocol_error, EPROTO},
    {"proxy does not support BIND", std::errc::operation_not_supported, EOPNOTSUPP},
    {"proxy does not support UDP ASSOCIATE", std::errc::operation_not_supported, EOPNOTSUPP},
    {"proxy: the host that connected to the bound port is not the one asked for",
     std::errc::permission_denied, EACCES},
    {"UDP relay: fragmented datagram (FRAG is not 0; fragments are not reassembled)",
     std::errc::protocol_error, EPROTO},
    {"UDP relay: datagram shorter than its header", std::errc::protocol_error, EPROTO},
    {"UDP relay: datagram has an unknown address type", std::errc::protocol_error, EPROTO},
    {"UDP ASSOCIATE needs a single proxy (the relay must be reachable from this host)",
     std::errc::operation_not_supported, EOPNOTSUPP},
    {"the proxy ended the UDP association (its control connection closed)",
     std::errc::connection_reset, ECONNRESET},
};

constexpr int table_size = static_cast<int>(sizeof table / sizeof table[0]);
static_assert(table_size == static_cast<int>(error::udp_association_closed) + 1,
              "every leakproof::error needs a row in the table");

const error_info* lookup(int code) noexcept {
    return code > 0 && code < table_size ? &table[code] : nullptr;
}

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "leakproof"; }

    std::string message(int code) const override {
        const error_info* info = lookup(code);
        return info ? info->message : "unknown leakproof error";
    }

    std::error_condition default_error_condition(int code) const noexcept override {
        const error_info* info = lookup(code);
        return info ? std::make_error_condition(info->condition)
                    : std::error_condition(code, *this);
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const category instance;
    return instance;
}

const char* message_of(error e) noexcept {
    const error_info* info = lookup(static_cast<int>(e));
    return info ? info->message : "unknown leakproof error";
}

int to_errno(std::error_code ec) noexcept {
    if (!ec) return 0;
    if (ec.category() == error_category()) {
        const error_info* info = lookup(ec.value());
        return info ? info->errno_value : EPROTO;
    }
    if (ec.category() == std::system_category() || ec.category() == std::generic_category())
        return ec.value();
    return EPROTO;
}

bool answered_other_protocol(std::error_code ec) noexcept {
    return ec == error::answered_http || ec == error::answered_ssh || ec == error::answered_tls;
}

std::error_code socks5_reply_error(std::uint8_t rep) noexcept {
    if (rep == 0) return {};
    if (rep <= 8) return make_error_code(static_cast<error>(rep));
    if (rep >= 0xF0 && rep <= 0xF7)
        return make_error_code(
            static_cast<error>(static_cast<int>(error::onion_descriptor_not_found) + (rep - 0xF0)));
    return make_error_code(error::unassigned_reply);
}

std::error_code socks4_reply_error(std::uint8_t cd) noexcept {
    switch (cd) {
        case 90: return {};
        case 91: return make_error_code(error::socks4_rejected);
        case 92: return make_error_code(error::socks4_no_identd);
        case 93: return make_error_code(error::socks4_identd_mismatch);
        default: return make_error_code(error::socks4_unassigned_reply);
    }
}

}  // namespace leakproof
