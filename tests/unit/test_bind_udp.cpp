// BIND (two replies) and UDP ASSOCIATE, byte for byte as the SOCKS4 and
// SOCKS4a texts and RFC 1928 lay them out, and the UDP datagram codec: every
// strict prefix of every reply means "need more", nothing after a reply is
// read, a peer other than the one asked for is reported.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "exchange.hpp"
#include "leakproof/handshake.hpp"

using namespace leakproof;
using namespace lp_test;

namespace {

request make(socks_version v, command cmd, address target, std::uint16_t port) {
    request r;
    r.version = v;
    r.cmd = cmd;
    r.target = target;
    r.port = port;
    return r;
}

const address peer_v4 = address::ipv4({192, 0, 2, 7});
std::array<std::uint8_t, 16> v6_bytes(std::uint8_t last) {
    std::array<std::uint8_t, 16> a{0x20, 0x01, 0x0d, 0xb8};
    a[15] = last;
    return a;
}
bytes raw(const std::array<std::uint8_t, 16>& a) {
    return bytes(a.begin(), a.end());
}

// A BIND: the rounds up to the first reply, then the second reply.
struct bind_case {
    const char* name;
    request req;
    std::vector<round> first;  // ends with the first reply
    bytes second;              // the second reply
    address::kind announced_type;
    std::uint16_t announced_port;
    address::kind peer_type;
    std::uint16_t peer_port;
};

std::vector<bind_case> bind_cases() {
    std::vector<bind_case> v;
    auto s4 = make(socks_version::v4, command::bind, peer_v4, 21);
    s4.user = "bob";
    v.push_back({"SOCKS4 BIND, DSTIP the expected peer, with a user id",
                 s4,
                 {{bytes{0x04, 0x02, 0x00, 0x15, 192, 0, 2, 7} + text("bob") + bytes{0},
                   {0x00, 0x5A, 0xC3, 0x50, 198, 51, 100, 1}}},
                 {0x00, 0x5A, 0x04, 0xD2, 192, 0, 2, 7},
                 address::kind::ipv4,
                 50000,
                 address::kind::ipv4,
                 1234});
    v.push_back({"SOCKS4a BIND by name",
                 make(socks_version::v4a, command::bind, address::host_name("ftp.example"), 20),
                 {{bytes{0x04, 0x02, 0x00, 0x14, 0, 0, 0, 1, 0x00} + text("ftp.example") + bytes{0},
                   {0x00, 0x5A, 0x10, 0x00, 0, 0, 0, 0}}},
                 {0x00, 0x5A, 0x00, 0x14, 203, 0, 113, 5},
                 address::kind::ipv4,
                 4096,
                 address::kind::ipv4,
                 20});
    v.push_back({"SOCKS5 BIND to IPv4 (CMD 2), IPv4 replies",
                 make(socks_version::v5, command::bind, peer_v4, 0),
                 {{{0x05, 0x01, 0x00}, {0x05, 0x00}},
                  {{0x05, 0x02, 0x00, 0x01, 192, 0, 2, 7, 0x00, 0x00},
                   {0x05, 0x00, 0x00, 0x01, 198, 51, 100, 1, 0xC3, 0x51}}},
                 {0x05, 0x00, 0x00, 0x01, 192, 0, 2, 7, 0x9C, 0x40},
                 address::kind::ipv4,
                 50001,
                 address::kind::ipv4,
                 40000});
    v.push_back({"SOCKS5 BIND to IPv6, IPv6 replies",
                 make(socks_version::v5, command::bind, address::ipv6(v6_bytes(7)), 21),
                 {{{0x05, 0x01, 0x00}, {0x05, 0x00}},
                  {bytes{0x05, 0x02, 0x00, 0x04} + raw(v6_bytes(7)) + bytes{0x00, 0x15},
                   bytes{0x05, 0x00, 0x00, 0x04} + raw(v6_bytes(1)) + bytes{0x30, 0x39}}},
                 bytes{0x05, 0x00, 0x00, 0x04} + raw(v6_bytes(7)) + bytes{0x00, 0x14},
                 address::kind::ipv6,
                 12345,
                 address::kind::ipv6,
                 20});
    v.push_back({"SOCKS5 BIND by name, the peer reported by name",
                 make(socks_version::v5, command::bind, address::host_name("ftp.example"), 21),
                 {{{0x05, 0x01, 0x00}, {0x05, 0x00}},
                  {bytes{0x05, 0x02, 0x00, 0x03, 11} + text("ftp.example") + bytes{0x00, 0x15},
                   {0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0x27, 0x10}}},
                 bytes{0x05, 0x00, 0x00, 0x03, 4} + text("peer") + bytes{0x00, 0x14},
                 address::kind::ipv4,
                 10000,
                 address::kind::name,
                 20});
    return v;
}

// Plays the first phase, takes the announcement, then the second reply.
void play_bind(handshake_machine& hs, const bind_case& bc, std::size_t chunk = SIZE_MAX) {
    play(hs, bc.first, chunk);
    REQUIRE(hs.listening());
    REQUIRE(hs.finished());
    CHECK(hs.result().bound.type == bc.announced_type);
    CHECK(hs.result().port == bc.announced_port);
    REQUIRE(hs.await_peer());
    CHECK_FALSE(hs.listening());
    play(hs, {{{}, bc.second}}, chunk);
}

}  // namespace

TEST_CASE("BIND: exact bytes, announcement, then the peer") {
    for (const auto& bc : bind_cases()) {
        CAPTURE(bc.name);
        for (std::size_t chunk : {SIZE_MAX, std::size_t{1}}) {
            CAPTURE(chunk);
            client_handshake hs{bc.req};
            play_bind(hs, bc, chunk);
            REQUIRE(hs.finished());
            CHECK_FALSE(hs.listening());
            CHECK(hs.result().bound.type == bc.peer_type);
            CHECK(hs.result().port == bc.peer_port);
            CHECK_FALSE(hs.await_peer());  // there is no third reply
        }
    }
}

TEST_CASE("BIND: each strict prefix of each reply, first and second, means 'need more'") {
    for (const auto& bc : bind_cases()) {
        CAPTURE(bc.name);
        for (std::size_t r = 0; r < bc.first.size(); ++r) {
            const bytes& answer = bc.first[r].proxy_answers;
            for (std::size_t cut = 0; cut < answer.size(); ++cut) {
                CAPTURE(cut);
                client_handshake hs{bc.req};
                std::vector<round> rounds(bc.first.begin(), bc.first.begin() + long(r));
                rounds.push_back(
                    {bc.first[r].client_sends, bytes(answer.begin(), answer.begin() + long(cut))});
                play(hs, rounds);
                CHECK(hs.next().kind == action_kind::receive);
                CHECK_FALSE(hs.listening());
            }
        }
        for (std::size_t cut = 0; cut < bc.second.size(); ++cut) {
            CAPTURE(cut);
            client_handshake hs{bc.req};
            play(hs, bc.first);
            REQUIRE(hs.await_peer());
            play(hs, {{{}, bytes(bc.second.begin(), bc.second.begin() + long(cut))}});
            const auto act = hs.next();
            CHECK(act.kind == action_kind::receive);
            CHECK(act.space.size() > 0);
        }
    }
}

TEST_CASE("BIND: the second reply is not read before await_peer, nothing after it at all") {
    const bytes application_data = text("220 ftp ready\r\n");
    for (const auto& bc : bind_cases()) {
        CAPTURE(bc.name);
        client_handshake hs{bc.req};
        auto first = bc.first;
        first.back().proxy_answers = first.back().proxy_answers + bc.second;
        std::size_t first_bytes = 0;
        for (const auto& r : bc.first) first_bytes += r.proxy_answers.size();
        CHECK(play(hs, first) == first_bytes);  // stops at the end of the first reply
        REQUIRE(hs.listening());
        CHECK(hs.feed(bc.second) == 0);
        REQUIRE(hs.await_peer());
        CHECK(play(hs, {{{}, bc.second + application_data}}) == bc.second.size());
        CHECK(hs.finished());
        CHECK(hs.feed(application_data) == 0);
    }
}

TEST_CASE("BIND in a buffer of exactly buffer_size(req) bytes") {
    for (const auto& bc : bind_cases()) {
        CAPTURE(bc.name);
        std::vector<std::uint8_t> buffer(handshake_machine::buffer_size(bc.req));
        handshake_machine hs{bc.req, buffer};
        play_bind(hs, bc, 1);
        REQUIRE(hs.finished());
        CHECK(hs.result().port == bc.peer_port);
    }
}

TEST_CASE("BIND: announced and peer addresses") {
    const auto cases = bind_cases();
    SUBCASE("SOCKS4a announcing 0.0.0.0 means the proxy's own address") {
        client_handshake hs{cases[1].req};
        play(hs, cases[1].first);
        REQUIRE(hs.listening());
        CHECK(hs.result().means_proxy_address());
    }
    SUBCASE("a real announced address is taken as it is") {
        client_handshake hs{cases[0].req};
        play(hs, cases[0].first);
        REQUIRE(hs.listening());
        CHECK_FALSE(hs.result().means_proxy_address());
        CHECK(hs.result().bound.ip[0] == 198);
        CHECK(hs.result().bound.ip[3] == 1);
    }
    SUBCASE("the peer's name") {
        client_handshake hs{cases[4].req};
        play_bind(hs, cases[4]);
        REQUIRE(hs.finished());
        CHECK(hs.result().bound.name == "peer");
    }
}

TEST_CASE("BIND: a peer other than the one asked for is reported") {
    const bytes socks4_first = {0x04, 0x02, 0x00, 0x15, 192, 0, 2, 7, 0x00};
    const bytes listening = {0x00, 0x5A, 0xC3, 0x50, 198, 51, 100, 1};
    const bytes stranger = {0x00, 0x5A, 0x04, 0xD2, 203, 0, 113, 66};
    SUBCASE("by default: bind_peer_mismatch, result() holds the stranger") {
        client_handshake hs{make(socks_version::v4, command::bind, peer_v4, 21)};
        play(hs, {{socks4_first, listening}});
        REQUIRE(hs.await_peer());
        play(hs, {{{}, stranger}});
        REQUIRE(hs.failed());
        CHECK(hs.error() == error::bind_peer_mismatch);
        CHECK(hs.error() == std::errc::permission_denied);
        CHECK(hs.result().bound.ip[3] == 66);
    }
    SUBCASE("check_bind_peer off: accepted, the caller decides") {
        auto req = make(socks_version::v4, command::bind, peer_v4, 21);
        req.options.check_bind_peer = false;
        client_handshake hs{req};
        play(hs, {{socks4_first, listening}});
        REQUIRE(hs.await_peer());
        play(hs, {{{}, stranger}});
        REQUIRE(hs.finished());
        CHECK(hs.result().bound.ip[3] == 66);
    }
    SUBCASE("0.0.0.0 asks for any peer") {
        client_handshake hs{make(socks_version::v4, command::bind, address::ipv4({0, 0, 0, 0}), 0)};
        play(hs, {{{0x04, 0x02, 0x00, 0x00, 0, 0, 0, 0, 0x00}, listening}});
        REQUIRE(hs.await_peer());
        play(hs, {{{}, stranger}});
        CHECK(hs.finished());
    }
    SUBCASE("an IPv4 peer reported as ::ffff:a.b.c.d is the same host") {
        client_handshake hs{make(socks_version::v5, command::bind, peer_v4, 0)};
        std::array<std::uint8_t, 16> mapped{};
        mapped[10] = mapped[11] = 0xFF;
        mapped[12] = 192, mapped[13] = 0, mapped[14] = 2, mapped[15] = 7;
        play(hs, {{{0x05, 0x01, 0x00}, {0x05, 0x00}},
                  {{0x05, 0x02, 0x00, 0x01, 192, 0, 2, 7, 0x00, 0x00},
                   {0x05, 0x00, 0x00, 0x01, 198, 51, 100, 1, 0xC3, 0x51}}});
        REQUIRE(hs.await_peer());
        play(hs, {{{}, bytes{0x05, 0x00, 0x00, 0x04} + raw(mapped) + bytes{0x9C, 0x40}}});
        CHECK(hs.finished());
    }
    SUBCASE("an IPv6 peer that differs in its last byte") {
        client_handshake hs{make(socks_version::v5, command::bind, address::ipv6(v6_bytes(7)), 0)};
        play(hs, {{{0x05, 0x01, 0x00}, {0x05, 0x00}},
                  {bytes{0x05, 0x02, 0x00, 0x04} + raw(v6_bytes(7)) + bytes{0, 0},
                   {0x05, 0x00, 0x00, 0x01, 198, 51, 100, 1, 0xC3, 0x51}}});
        REQUIRE(hs.await_peer());
        play(hs, {{{}, bytes{0x05, 0x00, 0x00, 0x04} + raw(v6_bytes(8)) + bytes{0x9C, 0x40}}});
        CHECK(hs.error() == error::bind_peer_mismatch);
    }
    SUBCASE("a peer given by name when an address was asked for") {
        client_handshake hs{make(socks_version::v5, command::bind, peer_v4, 0)};
        play(hs, {{{0x05, 0x01, 0x00}, {0x05, 0x00}},
                  {{0x05, 0x02, 0x00, 0x01, 192, 0, 2, 7, 0x00, 0x00},
                   {0x05, 0x00, 0x00, 0x01, 198, 51, 100, 1, 0xC3, 0x51}}});
        REQUIRE(hs.await_peer());
        play(hs, {{{}, bytes{0x05, 0x00, 0x00, 0x03, 4} + text("peer") + bytes{0x9C, 0x40}}});
        CHECK(hs.error() == error::bind_peer_mismatch);
    }
}

TEST_CASE("BIND and UDP ASSOCIATE refusals name the command") {
    const auto bind5 = make(socks_version::v5, command::bind, peer_v4, 0);
    const auto udp = make(socks_version::v5, command::udp_associate, address::ipv4({}), 0);
    const auto connect5 = make(socks_version::v5, command::connect, peer_v4, 80);
    for (const auto& [req, expected] :
         {std::pair{bind5, error::bind_not_supported}, std::pair{udp, error::udp_not_supported},
          std::pair{connect5, error::command_not_supported}}) {
        CAPTURE(static_cast<int>(req.cmd));
        client_handshake hs{req};
        auto act = hs.next();
        hs.sent();
        hs.feed(bytes{0x05, 0x00});
        act = hs.next();
        REQUIRE(act.kind == action_kind::send);
        hs.sent();
        hs.feed(bytes{0x05, 0x07});  // REP 7, and the proxy closes
        REQUIRE(hs.failed());
        CHECK(hs.error() == expected);
        CHECK(hs.error() == std::errc::operation_not_supported);
    }
    CHECK(make_error_code(error::udp_not_supported).message() ==
          "proxy does not support UDP ASSOCIATE");
    CHECK(make_error_code(error::bind_not_supported).message() == "proxy does not support BIND");
}

TEST_CASE("a proxy that closes instead of answering BIND or UDP ASSOCIATE does not support it") {
    const auto bind4 = make(socks_version::v4, command::bind, peer_v4, 0);
    const auto bind5 = make(socks_version::v5, command::bind, peer_v4, 0);
    const auto udp = make(socks_version::v5, command::udp_associate, address::ipv4({}), 0);
    const auto connect5 = make(socks_version::v5, command::connect, peer_v4, 80);
    for (const auto& [req, expected] :
         {std::pair{bind4, error::bind_not_supported}, std::pair{bind5, error::bind_not_supported},
          std::pair{udp, error::udp_not_supported}, std::pair{connect5, error::proxy_closed}}) {
        CAPTURE(static_cast<int>(req.cmd));
        client_handshake hs{req};
        if (req.version == socks_version::v5) {
            hs.sent();
            hs.feed(bytes{0x05, 0x00});
        }
        REQUIRE(hs.next().kind == action_kind::send);
        hs.sent();
        hs.closed();  // ssh -D: no reply at all
        CHECK(hs.error() == expected);
    }
    SUBCASE("a close inside the reply, or before the second one, is a close") {
        client_handshake inside{bind5};
        inside.sent();
        inside.feed(bytes{0x05, 0x00});
        inside.sent();
        inside.feed(bytes{0x05});
        inside.closed();
        CHECK(inside.error() == error::proxy_closed);
        client_handshake second{bind4};
        play(second,
             {{{0x04, 0x02, 0x00, 0x00, 192, 0, 2, 7, 0x00}, {0x00, 0x5A, 0, 0, 0, 0, 0, 0}}});
        REQUIRE(second.await_peer());
        second.closed();
        CHECK(second.error() == error::proxy_closed);
    }
}

TEST_CASE("BIND: a refused second reply fails with its code") {
    client_handshake hs{make(socks_version::v4, command::bind, peer_v4, 21)};
    play(hs, {{{0x04, 0x02, 0x00, 0x15, 192, 0, 2, 7, 0x00}, {0x00, 0x5A, 0, 0, 0, 0, 0, 0}}});
    REQUIRE(hs.await_peer());
    play(hs, {{{}, {0x00, 0x5B}}});
    CHECK(hs.error() == error::socks4_rejected);
}

TEST_CASE("await_peer is only for a BIND that listens") {
    client_handshake before{make(socks_version::v5, command::bind, peer_v4, 0)};
    CHECK_FALSE(before.await_peer());
    CHECK(before.next().kind == action_kind::send);
    client_handshake connect{make(socks_version::v4, command::connect, peer_v4, 80)};
    play(connect, {{{0x04, 0x01, 0x00, 0x50, 192, 0, 2, 7, 0x00}, {0x00, 0x5A, 0, 0, 0, 0, 0, 0}}});
    REQUIRE(connect.finished());
    CHECK_FALSE(connect.listening());
    CHECK_FALSE(connect.await_peer());
    CHECK(connect.finished());
}

// ---------------------------------------------------------------- UDP ASSOCIATE

TEST_CASE("UDP ASSOCIATE: exact bytes and the relay's address") {
    struct udp_case {
        const char* name;
        request req;
        bytes request_bytes;
        bytes reply;
        address::kind relay_type;
        std::uint16_t relay_port;
        bool means_proxy;
    };
    auto with_port =
        make(socks_version::v5, command::udp_associate, address::ipv4({192, 0, 2, 9}), 40000);
    const std::vector<udp_case> cases = {
        {"zeros: the client does not know its address yet, relay on IPv4",
         make(socks_version::v5, command::udp_associate, address::ipv4({}), 0),
         {0x05, 0x03, 0x00, 0x01, 0, 0, 0, 0, 0x00, 0x00},
         {0x05, 0x00, 0x00, 0x01, 127, 0, 0, 1, 0x2F, 0x59},
         address::kind::ipv4,
         12121,
         false},
        {"the client's address and port, relay 0.0.0.0: the proxy's own address",
         with_port,
         {0x05, 0x03, 0x00, 0x01, 192, 0, 2, 9, 0x9C, 0x40},
         {0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0x2F, 0x59},
         address::kind::ipv4,
         12121,
         true},
        {"IPv6 zeros, relay ::",
         make(socks_version::v5, command::udp_associate, address::ipv6({}), 0),
         bytes{0x05, 0x03, 0x00, 0x04} + bytes(16, 0) + bytes{0x00, 0x00},
         bytes{0x05, 0x00, 0x00, 0x04} + bytes(16, 0) + bytes{0x2F, 0x59}, address::kind::ipv6,
         12121, true},
        {"relay on IPv6",
         make(socks_version::v5, command::udp_associate, address::ipv4({}), 0),
         {0x05, 0x03, 0x00, 0x01, 0, 0, 0, 0, 0x00, 0x00},
         bytes{0x05, 0x00, 0x00, 0x04} + raw(v6_bytes(1)) + bytes{0x2F, 0x59},
         address::kind::ipv6,
         12121,
         false},
    };
    for (const auto& uc : cases) {
        CAPTURE(uc.name);
        const std::vector<round> rounds = {{{0x05, 0x01, 0x00}, {0x05, 0x00}},
                                           {uc.request_bytes, uc.reply}};
        for (std::size_t chunk : {SIZE_MAX, std::size_t{1}}) {
            client_handshake hs{uc.req};
            CHECK(play(hs, rounds, chunk) == 2 + uc.reply.size());
            REQUIRE(hs.finished());
            CHECK_FALSE(hs.listening());
            CHECK(hs.result().bound.type == uc.relay_type);
            CHECK(hs.result().port == uc.relay_port);
            CHECK(hs.result().means_proxy_address() == uc.means_proxy);
        }
        for (std::size_t cut = 0; cut < uc.reply.size(); ++cut) {
            CAPTURE(cut);
            client_handshake hs{uc.req};
            play(hs, {rounds[0],
                      {uc.request_bytes, bytes(uc.reply.begin(), uc.reply.begin() + long(cut))}});
            CHECK(hs.next().kind == action_kind::receive);
        }
    }
}

TEST_CASE("UDP ASSOCIATE exists only in SOCKS5; BIND and UDP take port 0") {
    CHECK(validate(make(socks_version::v4, command::udp_associate, address::ipv4({}), 0)) ==
          error::command_needs_socks5);
    CHECK(validate(make(socks_version::v4a, command::udp_associate, address::ipv4({}), 0)) ==
          error::command_needs_socks5);
    CHECK_FALSE(validate(make(socks_version::v5, command::udp_associate, address::ipv4({}), 0)));
    CHECK_FALSE(validate(make(socks_version::v4, command::bind, peer_v4, 0)));
    CHECK(validate(make(socks_version::v4, command::bind, address::host_name("a.test"), 0)) ==
          error::name_needs_socks4a);
    CHECK(validate(make(socks_version::v5, command::connect, peer_v4, 0)) == error::port_zero);
}

// ---------------------------------------------------------------- datagrams

TEST_CASE("UDP header: exact bytes for IPv4, IPv6 and a name, in front of the payload") {
    std::array<std::uint8_t, max_udp_header + 4> out{};
    auto written = [&](std::size_t n) { return bytes(out.begin(), out.begin() + long(n)); };

    auto r = encode_udp_header(address::ipv4({192, 0, 2, 1}), 53, out);
    CHECK_FALSE(r.error);
    CHECK(hex(written(r.size)) == hex(bytes{0, 0, 0, 0x01, 192, 0, 2, 1, 0x00, 0x35}));
    CHECK(udp_header_size(address::ipv4({192, 0, 2, 1})) == r.size);

    r = encode_udp_header(address::ipv6(v6_bytes(1)), 443, out);
    CHECK_FALSE(r.error);
    CHECK(hex(written(r.size)) == hex(bytes{0, 0, 0, 0x04} + raw(v6_bytes(1)) + bytes{0x01, 0xBB}));
    CHECK(r.size == 22);

    r = encode_udp_header(address::host_name("dns.only-proxy.test"), 53, out);
    CHECK_FALSE(r.error);
    CHECK(hex(written(r.size)) ==
          hex(bytes{0, 0, 0, 0x03, 19} + text("dns.only-proxy.test") + bytes{0x00, 0x35}));

    const std::string longest(255, 'n');
    r = encode_udp_header(address::host_name(longest), 1, out);
    CHECK(r.size == max_udp_header);
}

TEST_CASE("UDP header: invalid destinations and short buffers write nothing") {
    std::array<std::uint8_t, max_udp_header> out{};
    out.fill(0xEE);
    const std::string too_long(256, 'n');
    CHECK(encode_udp_header(address{}, 53, out).error == error::hostname_empty);
    CHECK(encode_udp_header(address::host_name(""), 53, out).error == error::hostname_empty);
    CHECK(encode_udp_header(address::host_name(too_long), 53, out).error ==
          error::hostname_too_long);
    CHECK(encode_udp_header(address::host_name(std::string_view("a\0b", 3)), 53, out).error ==
          error::hostname_has_nul);
    CHECK(encode_udp_header(address::ipv4({192, 0, 2, 1}), 0, out).error == error::port_zero);
    CHECK(encode_udp_header(address::ipv4({192, 0, 2, 1}), 53, std::span(out).first(9)).error ==
          std::errc::no_buffer_space);
    CHECK(std::all_of(out.begin(), out.end(), [](std::uint8_t b) { return b == 0xEE; }));
    CHECK(udp_header_size(address{}) == 0);
    CHECK(udp_header_size(address::host_name(too_long)) == 0);
}

TEST_CASE("UDP datagram from the relay: source and payload") {
    udp_datagram d;
    const bytes v4 = bytes{0, 0, 0, 0x01, 203, 0, 113, 5, 0x00, 0x35} + text("answer");
    REQUIRE_FALSE(parse_udp_datagram(v4, d));
    CHECK(d.source.type == address::kind::ipv4);
    CHECK(d.source.ip[0] == 203);
    CHECK(d.source.ip[3] == 5);
    CHECK(d.port == 53);
    CHECK(bytes(d.payload.begin(), d.payload.end()) == text("answer"));
    CHECK(d.payload.data() == v4.data() + 10);  // a view, not a copy

    const bytes v6 = bytes{0, 0, 0, 0x04} + raw(v6_bytes(9)) + bytes{0x01, 0xBB};
    REQUIRE_FALSE(parse_udp_datagram(v6, d));
    CHECK(d.source.type == address::kind::ipv6);
    CHECK(d.source.ip[15] == 9);
    CHECK(d.port == 443);
    CHECK(d.payload.empty());

    const bytes by_name = bytes{0, 0, 0, 0x03, 6} + text("a.test") + bytes{0x30, 0x39, 'x'};
    REQUIRE_FALSE(parse_udp_datagram(by_name, d));
    CHECK(d.source.type == address::kind::name);
    CHECK(d.source.name == "a.test");
    CHECK(d.port == 12345);
    CHECK(d.payload.size() == 1);
}

TEST_CASE("UDP datagram: every strict prefix of a header is truncated") {
    const std::vector<bytes> headers = {
        {0, 0, 0, 0x01, 203, 0, 113, 5, 0x00, 0x35},
        bytes{0, 0, 0, 0x04} + raw(v6_bytes(9)) + bytes{0x01, 0xBB},
        bytes{0, 0, 0, 0x03, 6} + text("a.test") + bytes{0x30, 0x39},
    };
    for (const auto& h : headers) {
        for (std::size_t cut = 0; cut < h.size(); ++cut) {
            CAPTURE(cut);
            udp_datagram d;
            CHECK(parse_udp_datagram(std::span(h).first(cut), d) == error::udp_truncated);
        }
        udp_datagram d;
        CHECK_FALSE(parse_udp_datagram(h, d));  // the whole header, an empty payload
    }
}

TEST_CASE("UDP datagram: fragments and unknown address types are rejected") {
    udp_datagram d;
    for (int frag : {0x01, 0x7F, 0x80, 0xFF}) {
        CAPTURE(frag);
        CHECK(parse_udp_datagram(bytes{0, 0, std::uint8_t(frag), 0x01, 1, 2, 3, 4, 0, 53, 'x'},
                                 d) == error::udp_fragmented);
    }
    for (int atyp : {0x00, 0x02, 0x05, 0xFF}) {
        CAPTURE(atyp);
        CHECK(parse_udp_datagram(bytes{0, 0, 0, std::uint8_t(atyp), 1, 2, 3, 4, 0, 53, 'x'}, d) ==
              error::udp_bad_address_type);
    }
    CHECK(parse_udp_datagram(bytes{0, 0, 0, 0x03, 0, 0, 53}, d) == error::udp_bad_address_type);
}

TEST_CASE("UDP: what encode writes, parse reads back") {
    std::array<std::uint8_t, max_udp_header + 5> buf{};
    for (const address& a :
         {address::ipv4({10, 1, 2, 3}), address::ipv6(v6_bytes(3)), address::host_name("x.test")}) {
        const auto r = encode_udp_header(a, 4242, buf);
        REQUIRE_FALSE(r.error);
        std::copy_n("hello", 5, buf.begin() + long(r.size));
        udp_datagram d;
        REQUIRE_FALSE(parse_udp_datagram(std::span(buf).first(r.size + 5), d));
        CHECK(d.source.type == a.type);
        CHECK(d.source.ip == a.ip);
        CHECK(d.source.name == a.name);
        CHECK(d.port == 4242);
        CHECK(d.payload.size() == 5);
    }
}
