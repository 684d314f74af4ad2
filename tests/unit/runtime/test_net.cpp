// Addresses and CIDRs (runtime/net.hpp): the forms --exclude accepts and
// refuses, what a CIDR contains, sockaddr reading and loopback.
#include <doctest/doctest.h>

#include <string>

#include "runtime/net.hpp"
#include "sockaddrs.hpp"

using namespace lp::net;
using namespace lp::unit;

namespace {

ip parsed(const char* text) {
    ip a;
    CAPTURE(std::string{text});
    REQUIRE(parse_ip(text, a));
    return a;
}

endpoint at(const char* text, std::uint16_t port) {
    return endpoint{parsed(text), port};
}

cidr range(const char* text) {
    cidr c;
    CAPTURE(std::string{text});
    REQUIRE(parse_cidr(text, c));
    return c;
}

}  // namespace

TEST_CASE("net: IP literals, IPv4 kept v4-mapped") {
    auto a = parsed("192.0.2.7");
    CHECK(a.is_v4());
    CHECK(a.v4() == 0xC0000207);
    CHECK(parsed("::ffff:192.0.2.7").b == a.b);
    CHECK_FALSE(parsed("2001:db8::1").is_v4());
    ip out;
    for (const char* bad :
         {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "example.org", "[::1]", "::1%eth0", "1.2.3.4 "}) {
        CAPTURE(std::string{bad});
        CHECK_FALSE(parse_ip(bad, out));
    }
}

TEST_CASE("net: loopback is 127/8, 0/8, ::1 and ::") {
    for (const char* l :
         {"127.0.0.1", "127.255.255.254", "0.0.0.0", "0.1.2.3", "::1", "::", "::ffff:127.0.0.1"}) {
        CAPTURE(std::string{l});
        CHECK(parsed(l).is_loopback());
    }
    for (const char* n : {"128.0.0.1", "1.0.0.0", "::2", "fe80::1", "::ffff:10.0.0.1"}) {
        CAPTURE(std::string{n});
        CHECK_FALSE(parsed(n).is_loopback());
    }
}

TEST_CASE("net: sockaddr reading") {
    endpoint e;
    auto a4 = v4("192.0.2.1", 8080);
    REQUIRE(from_sockaddr(a4.sa(), a4.len, e));
    CHECK(e.port == 8080);
    CHECK(e.addr.v4() == 0xC0000201);
    CHECK_FALSE(from_sockaddr(a4.sa(), a4.len - 1, e));
    auto a6 = v6("2001:db8::5", 443);
    REQUIRE(from_sockaddr(a6.sa(), a6.len, e));
    CHECK(e.port == 443);
    CHECK(e.addr.b == parsed("2001:db8::5").b);
    // RFC 2133's sockaddr_in6 (no scope id, 24 bytes): the kernel takes it.
    CHECK(from_sockaddr(a6.sa(), 24, e));
    CHECK_FALSE(from_sockaddr(a6.sa(), 23, e));
    CHECK_FALSE(from_sockaddr(with_family(a4, AF_UNSPEC).sa(), a4.len, e));
    CHECK_FALSE(from_sockaddr(unix_path("/x").sa(), sizeof(sockaddr_un), e));
    CHECK_FALSE(from_sockaddr(nullptr, 16, e));
}

TEST_CASE("net: CIDR[:PORT] forms") {
    struct form {
        const char* text;
        int prefix;  // over the 128-bit form
        std::uint16_t port;
    };
    for (auto f : {form{"10.0.0.0/8", 104, 0}, form{"192.168.1.5", 128, 0},
                   form{"192.168.1.5:8080", 128, 8080}, form{"172.16.0.0/12:443", 108, 443},
                   form{"0.0.0.0/0", 96, 0}, form{"::1", 128, 0}, form{"fd00::/8", 8, 0},
                   form{"[fd00::/8]:443", 8, 443}, form{"[::1]", 128, 0}, form{"::/0", 0, 0}}) {
        CAPTURE(std::string{f.text});
        auto c = range(f.text);
        CHECK(c.prefix == f.prefix);
        CHECK(c.port == f.port);
    }
    cidr out;
    for (const char* bad :
         {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "1.2.3.4:0",
          "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:http", "[::1", "[::1]443", "[::1]:", "[fd00::/8]:0",
          "example.org", "example.org:80", "10.0.0.0/8/8", "/8"}) {
        CAPTURE(std::string{bad});
        CHECK_FALSE(parse_cidr(bad, out));
    }
}

TEST_CASE("net: what a CIDR contains") {
    auto lan = range("172.16.0.0/12");  // not on a byte boundary
    CHECK(lan.contains(at("172.16.0.1", 1)));
    CHECK(lan.contains(at("172.31.255.255", 1)));
    CHECK_FALSE(lan.contains(at("172.32.0.0", 1)));
    CHECK_FALSE(lan.contains(at("172.15.255.255", 1)));
    CHECK(lan.contains(at("::ffff:172.20.1.1", 1)));  // a dual-stack socket's spelling
    auto one = range("192.168.1.5:53");
    CHECK(one.contains(at("192.168.1.5", 53)));
    CHECK_FALSE(one.contains(at("192.168.1.5", 54)));
    CHECK_FALSE(one.contains(at("192.168.1.6", 53)));
    auto all4 = range("0.0.0.0/0");
    CHECK(all4.contains(at("203.0.113.9", 80)));
    CHECK_FALSE(all4.contains(at("2001:db8::1", 80)));  // IPv4's /0 is not IPv6's
    auto all = range("::/0");
    CHECK(all.contains(at("2001:db8::1", 80)));
    CHECK(all.contains(at("203.0.113.9", 80)));
    auto v6 = range("[2001:db8::/33]:443");
    CHECK(v6.contains(at("2001:db8:7fff::1", 443)));
    CHECK_FALSE(v6.contains(at("2001:db8:8000::1", 443)));
    CHECK_FALSE(v6.contains(at("2001:db8::1", 80)));
}
