// The error category: distinct messages, portable conditions, errno values.
#include <doctest/doctest.h>

#include <cerrno>
#include <future>
#include <set>
#include <string>

#include "leakproof/error.hpp"

using leakproof::error;

TEST_CASE("every code has its own one-line message") {
    std::set<std::string> seen;
    for (int code = 1; code <= static_cast<int>(error::udp_association_closed); ++code) {
        const auto ec = make_error_code(static_cast<error>(code));
        const std::string msg = ec.message();
        CAPTURE(code);
        CHECK(!msg.empty());
        CHECK(msg.find('\n') == std::string::npos);
        CHECK(msg != "unknown leakproof error");
        CHECK(msg == leakproof::message_of(static_cast<error>(code)));
        CHECK(seen.insert(msg).second);
    }
    CHECK(std::string(leakproof::error_category().name()) == "leakproof");
}

TEST_CASE("codes compare equal to portable std::errc conditions") {
    CHECK(make_error_code(error::connection_refused) == std::errc::connection_refused);
    CHECK(make_error_code(error::host_unreachable) == std::errc::host_unreachable);
    CHECK(make_error_code(error::network_unreachable) == std::errc::network_unreachable);
    CHECK(make_error_code(error::ttl_expired) == std::errc::timed_out);
    CHECK(make_error_code(error::timeout) == std::errc::timed_out);
    CHECK(make_error_code(error::not_allowed) == std::errc::permission_denied);
    CHECK(make_error_code(error::auth_failed) == std::errc::permission_denied);
    CHECK(make_error_code(error::proxy_closed) == std::errc::connection_reset);
    CHECK(make_error_code(error::bad_version) == std::errc::protocol_error);
    CHECK(make_error_code(error::onion_introduction_timeout) == std::errc::timed_out);
    CHECK(make_error_code(error::connection_refused) != std::errc::host_unreachable);
}

TEST_CASE("errno for the interposer") {
    using leakproof::to_errno;
    CHECK(to_errno({}) == 0);
    CHECK(to_errno(error::connection_refused) == ECONNREFUSED);
    CHECK(to_errno(error::host_unreachable) == EHOSTUNREACH);
    CHECK(to_errno(error::network_unreachable) == ENETUNREACH);
    CHECK(to_errno(error::ttl_expired) == ETIMEDOUT);
    CHECK(to_errno(error::timeout) == ETIMEDOUT);
    CHECK(to_errno(error::not_allowed) == EACCES);
    CHECK(to_errno(error::command_not_supported) == EOPNOTSUPP);
    CHECK(to_errno(error::address_type_not_supported) == EAFNOSUPPORT);
    CHECK(to_errno(error::proxy_closed) == ECONNRESET);
    CHECK(to_errno(error::bad_version) == EPROTO);
    CHECK(to_errno(error::name_needs_socks4a) == EAFNOSUPPORT);
    CHECK(to_errno(std::error_code(EPIPE, std::system_category())) == EPIPE);
    CHECK(to_errno(std::make_error_code(std::future_errc::broken_promise)) == EPROTO);
}

TEST_CASE("REP and CD bytes map to codes") {
    CHECK_FALSE(leakproof::socks5_reply_error(0));
    CHECK_FALSE(leakproof::socks4_reply_error(90));
    CHECK(leakproof::socks5_reply_error(5) == error::connection_refused);
    CHECK(leakproof::socks5_reply_error(0xF6) == error::onion_address_invalid);
    CHECK(leakproof::socks4_reply_error(91) == error::socks4_rejected);
}
