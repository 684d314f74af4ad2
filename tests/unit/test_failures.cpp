// Every malformed or hostile reply and every invalid request gets its own
// error code; a refusal is acted on as soon as its byte arrives.
#include <doctest/doctest.h>

#include "exchange.hpp"
#include "leakproof/error.hpp"
#include "leakproof/handshake.hpp"

using namespace leakproof;
using namespace lp_test;

namespace {

request socks5_by_name() {
    request r;
    r.target = address::host_name("example.com");
    r.port = 80;
    return r;
}

request socks4_to_ip() {
    request r;
    r.version = socks_version::v4;
    r.target = address::ipv4({192, 0, 2, 15});
    r.port = 443;
    return r;
}

const bytes greeting = {0x05, 0x01, 0x00};
const bytes request_bytes =
    bytes{0x05, 0x01, 0x00, 0x03, 11} + text("example.com") + bytes{0x00, 0x50};

// Runs a SOCKS5 no-auth exchange where the proxy's reply to the request is
// `reply`, and returns the handshake's error.
std::error_code socks5_reply_outcome(const bytes& reply, std::size_t chunk = SIZE_MAX) {
    client_handshake hs{socks5_by_name()};
    play(hs, {{greeting, {0x05, 0x00}}, {request_bytes, reply}}, chunk);
    return hs.error();
}

std::error_code method_outcome(request req, const bytes& method_reply) {
    client_handshake hs{req};
    hs.sent();
    hs.feed(method_reply);
    return hs.error();
}

}  // namespace

TEST_CASE("SOCKS5 REP codes each map to their own error") {
    const std::pair<std::uint8_t, error> cases[] = {
        {0x01, error::general_failure},
        {0x02, error::not_allowed},
        {0x03, error::network_unreachable},
        {0x04, error::host_unreachable},
        {0x05, error::connection_refused},
        {0x06, error::ttl_expired},
        {0x07, error::command_not_supported},
        {0x08, error::address_type_not_supported},
        {0x09, error::unassigned_reply},
        {0x7F, error::unassigned_reply},
        {0xEF, error::unassigned_reply},
        {0xF0, error::onion_descriptor_not_found},
        {0xF1, error::onion_descriptor_invalid},
        {0xF2, error::onion_introduction_failed},
        {0xF3, error::onion_rendezvous_failed},
        {0xF4, error::onion_auth_missing},
        {0xF5, error::onion_auth_wrong},
        {0xF6, error::onion_address_invalid},
        {0xF7, error::onion_introduction_timeout},
        {0xF8, error::unassigned_reply},
        {0xFF, error::unassigned_reply},
    };
    for (const auto& c : cases) {
        CAPTURE(int(c.first));
        CHECK(socks5_reply_outcome({0x05, c.first, 0x00, 0x01, 0, 0, 0, 0, 0, 0}) == c.second);
    }
}

TEST_CASE("a refusal is acted on after its second byte, before the rest arrives") {
    client_handshake hs{socks5_by_name()};
    play(hs, {{greeting, {0x05, 0x00}}, {request_bytes, {0x05, 0x04}}});
    CHECK(hs.failed());
    CHECK(hs.error() == error::host_unreachable);
    hs.closed();  // the server closes right after `05 04`: the reason stays
    CHECK(hs.error() == error::host_unreachable);
}

TEST_CASE("a wrong version is caught on its first byte") {
    client_handshake hs{socks5_by_name()};
    play(hs, {{greeting, {0x05, 0x00}}, {request_bytes, {0x04}}});
    CHECK(hs.error() == error::bad_version);
}

TEST_CASE("SOCKS5 method negotiation failures") {
    CHECK(method_outcome(socks5_by_name(), {0x04, 0x00}) == error::bad_version);
    CHECK(method_outcome(socks5_by_name(), {0x05, 0xFF}) == error::no_acceptable_method);
    CHECK(method_outcome(socks5_by_name(), {0x05, 0x02}) == error::unexpected_method);
    CHECK(method_outcome(socks5_by_name(), {0x05, 0x01}) == error::unexpected_method);  // GSSAPI
    auto pipelined = socks5_by_name();
    pipelined.user = "u";
    pipelined.options.pipeline = true;
    // Pipelined credentials only make sense if the proxy picks username/password.
    CHECK(method_outcome(pipelined, {0x05, 0x00}) == error::unexpected_method);
    // Tor's RFC 1929 reply without a method reply: a refusal is still a refusal.
    CHECK(method_outcome(pipelined, {0x01, 0x01}) == error::auth_failed);
    // Without pipelining a leading 0x01 is just not SOCKS5.
    auto sequential = pipelined;
    sequential.options.pipeline = false;
    CHECK(method_outcome(sequential, {0x01, 0x00}) == error::bad_version);
}

TEST_CASE("RFC 1929 reply failures and the lenient switch") {
    auto req = socks5_by_name();
    req.user = "u";
    req.password = "p";
    const bytes auth = {0x01, 0x01, 'u', 0x01, 'p'};
    auto play_auth = [&](client_handshake& hs, const bytes& auth_reply) {
        play(hs, {{{0x05, 0x02, 0x00, 0x02}, {0x05, 0x02}}, {auth, auth_reply}});
    };
    auto outcome = [&](const bytes& auth_reply) {
        client_handshake hs{req};
        play_auth(hs, auth_reply);
        return hs.error();
    };
    CHECK(outcome({0x01, 0x01}) == error::auth_failed);
    CHECK(outcome({0x01, 0xFF}) == error::auth_failed);
    CHECK(outcome({0x05, 0x00}) == error::bad_auth_version);
    auto lenient = req;
    lenient.options.lenient_auth_reply_version = true;
    client_handshake hs{lenient};
    play_auth(hs, {0x05, 0x00});
    CHECK_FALSE(hs.failed());
    CHECK(hs.next().kind == action_kind::send);
}

TEST_CASE("SOCKS5 reply with an unknown address type") {
    CHECK(socks5_reply_outcome({0x05, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0}) ==
          error::bad_address_type);
    CHECK(socks5_reply_outcome({0x05, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0}) ==
          error::bad_address_type);
}

TEST_CASE("truncated streams end in proxy_closed at every point") {
    const bytes full_reply = {0x05, 0x00, 0x00, 0x01, 192, 0, 2, 1, 0x1F, 0x90};
    for (std::size_t cut = 0; cut < full_reply.size(); ++cut) {
        CAPTURE(cut);
        client_handshake hs{socks5_by_name()};
        play(hs, {{greeting, {0x05, 0x00}},
                  {request_bytes, bytes(full_reply.begin(), full_reply.begin() + long(cut))}});
        hs.closed();
        CHECK(hs.error() == error::proxy_closed);
    }
    client_handshake before_method{socks5_by_name()};
    before_method.sent();
    before_method.feed(bytes{0x05});
    before_method.closed();
    CHECK(before_method.error() == error::proxy_closed);
}

TEST_CASE("closed() while sending or after done changes nothing") {
    client_handshake hs{socks5_by_name()};
    hs.closed();
    CHECK(hs.next().kind == action_kind::send);
}

TEST_CASE("SOCKS4 reply codes and version") {
    auto outcome = [](const bytes& reply, bool lenient = false) {
        auto req = socks4_to_ip();
        req.options.lenient_socks4_reply_version = lenient;
        client_handshake hs{req};
        play(hs, {{{0x04, 0x01, 0x01, 0xBB, 192, 0, 2, 15, 0x00}, reply}});
        return hs.finished() ? std::error_code{} : hs.error();
    };
    CHECK(outcome({0x00, 91, 0, 0, 0, 0, 0, 0}) == error::socks4_rejected);
    CHECK(outcome({0x00, 92, 0, 0, 0, 0, 0, 0}) == error::socks4_no_identd);
    CHECK(outcome({0x00, 93, 0, 0, 0, 0, 0, 0}) == error::socks4_identd_mismatch);
    CHECK(outcome({0x00, 0x00, 0, 0, 0, 0, 0, 0}) == error::socks4_unassigned_reply);
    CHECK(outcome({0x04, 90, 0, 0, 0, 0, 0, 0}) == error::bad_version);
    CHECK(outcome({0x05, 90, 0, 0, 0, 0, 0, 0}) == error::bad_version);
    CHECK(outcome({0x04, 90, 0, 0, 0, 0, 0, 0}, true) == std::error_code{});
    CHECK(outcome({0x00, 91}) == error::socks4_rejected);  // acted on early
}

TEST_CASE("requests are validated before any byte is produced") {
    auto outcome = [](request r) {
        client_handshake hs{r};
        const auto act = hs.next();
        CHECK(act.kind == action_kind::failed);
        CHECK(act.bytes.empty());
        CHECK(validate(r) == act.error);
        return act.error;
    };
    const std::string n255(255, 'a');
    const std::string n256(256, 'a');
    auto r = socks5_by_name();

    r.target = address::host_name(n256);
    CHECK(outcome(r) == error::hostname_too_long);
    r.target = address::host_name(n255);
    CHECK_FALSE(validate(r));
    r.target = address::host_name("");
    CHECK(outcome(r) == error::hostname_empty);
    r.target = address{};
    CHECK(outcome(r) == error::hostname_empty);
    r.target = address::host_name(std::string_view("evil\0.com", 9));
    CHECK(outcome(r) == error::hostname_has_nul);

    r = socks5_by_name();
    r.user = n256;
    CHECK(outcome(r) == error::user_too_long);
    r.user = "u";
    r.password = n256;
    CHECK(outcome(r) == error::password_too_long);
    r.user = "";
    r.password = "p";
    CHECK(outcome(r) == error::password_without_user);

    r = socks5_by_name();
    r.port = 0;
    CHECK(outcome(r) == error::port_zero);
    r.cmd = command::resolve;  // RESOLVE carries no meaningful port
    CHECK_FALSE(validate(r));

    r = socks5_by_name();
    r.cmd = command::resolve_ptr;
    CHECK(outcome(r) == error::ptr_needs_address);

    auto s4 = socks4_to_ip();
    s4.target = address::host_name("example.com");
    CHECK(outcome(s4) == error::name_needs_socks4a);
    s4.version = socks_version::v4a;
    CHECK_FALSE(validate(s4));
    s4.user = std::string_view("a\0b", 3);
    CHECK(outcome(s4) == error::user_id_has_nul);
    s4.user = "id";
    s4.password = "p";
    CHECK(outcome(s4) == error::password_without_user);
    s4 = socks4_to_ip();
    s4.target = address::ipv6({0x20, 0x01});
    CHECK(outcome(s4) == error::ipv6_needs_socks5);
    s4 = socks4_to_ip();
    s4.version = socks_version::v4a;
    s4.cmd = command::resolve_ptr;
    CHECK(outcome(s4) == error::command_needs_socks5);
}

TEST_CASE("actions after failure stay failed and take no bytes") {
    client_handshake hs{socks5_by_name()};
    hs.sent();
    hs.feed(bytes{0x05, 0xFF});
    REQUIRE(hs.failed());
    CHECK(hs.feed(bytes{0x05, 0x00}) == 0);
    hs.sent();
    hs.received(3);
    CHECK(hs.error() == error::no_acceptable_method);
}
