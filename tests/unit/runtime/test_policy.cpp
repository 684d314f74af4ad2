// The policy's rules as a table (runtime/policy.hpp): each row an address,
// a socket type, and the verdict, rule and errno it must get, under the
// settings main.cpp gives (first proxy 127.0.0.1:1080; excluded 10.0.0.0/8,
// 192.168.1.5:53 and [fd00::/8]:443; loopback direct).
#include <doctest/doctest.h>
#include <errno.h>

#include <set>
#include <string>
#include <vector>

#include "runtime/placeholder.hpp"
#include "runtime/policy.hpp"
#include "sockaddrs.hpp"

using lp::policy::rule;
using lp::policy::verdict;
using namespace lp::unit;

namespace {

struct row {
    const char* what;
    address to;
    int sotype;
    verdict expected;
    rule by;
    int err = 0;  // refusals only
};

constexpr int tcp = SOCK_STREAM;
constexpr int udp = SOCK_DGRAM;

// A placeholder address of `name` (assigned now), IPv4 or IPv6.
address placeholder_v4(const char* name, std::uint16_t port) {
    std::uint32_t i = 0;
    REQUIRE(lp::placeholder::assign(name, i));
    std::uint8_t b[4];
    lp::placeholder::v4_of(i, b);
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, b, text, sizeof text);
    return v4(text, port);
}

address placeholder_v6(const char* name, std::uint16_t port) {
    std::uint32_t i = 0;
    REQUIRE(lp::placeholder::assign(name, i));
    std::uint8_t b[16];
    lp::placeholder::v6_of(i, b);
    char text[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, b, text, sizeof text);
    return v6(text, port);
}

std::vector<row> connect_rows() {
    return {
        {"a Unix socket", unix_path("/tmp/x"), tcp, verdict::direct, rule::not_ip},
        {"no address (nullptr)", address{}, tcp, verdict::direct, rule::not_ip},
        {"IPv4 too short", with_len(v4("8.8.8.8", 80), 8), tcp, verdict::refuse, rule::malformed,
         EINVAL},
        {"IPv6 too short", with_len(v6("2001:db8::1", 80), 20), tcp, verdict::refuse,
         rule::malformed, EINVAL},
        {"the first proxy", v4("127.0.0.1", 1080), tcp, verdict::direct, rule::first_proxy},
        {"the first proxy, v4-mapped", v6("::ffff:127.0.0.1", 1080), tcp, verdict::direct,
         rule::first_proxy},
        {"a placeholder", placeholder_v4("web.example", 443), tcp, verdict::proxy,
         rule::placeholder},
        {"an IPv6 placeholder", placeholder_v6("six.example", 443), tcp, verdict::proxy,
         rule::placeholder},
        {"a placeholder, UDP", placeholder_v4("web.example", 443), udp, verdict::refuse,
         rule::placeholder_non_tcp, EPERM},
        {"a placeholder past the map's end, IPv6", v6("100::ffff:ff00", 80), tcp, verdict::refuse,
         rule::unknown_placeholder, EPERM},
        {"past the placeholders' end", v4("255.255.255.255", 80), tcp, verdict::refuse,
         rule::unknown_placeholder, EPERM},
        {"DNS over TCP", v4("8.8.8.8", 53), tcp, verdict::refuse, rule::dns, EPERM},
        {"DNS over UDP", v4("8.8.8.8", 53), udp, verdict::refuse, rule::dns, EPERM},
        {"DNS to systemd-resolved", v4("127.0.0.53", 53), udp, verdict::refuse, rule::dns, EPERM},
        {"DNS over IPv6", v6("2001:4860:4860::8888", 53), udp, verdict::refuse, rule::dns, EPERM},
        {"DNS in an excluded LAN", v4("10.1.2.3", 53), udp, verdict::refuse, rule::dns, EPERM},
        {"DNS excluded as ADDR:53", v4("192.168.1.5", 53), udp, verdict::direct, rule::excluded},
        {"an excluded LAN, TCP", v4("10.1.2.3", 80), tcp, verdict::direct, rule::excluded},
        {"an excluded LAN, UDP", v4("10.255.0.1", 5000), udp, verdict::direct, rule::excluded},
        {"ADDR:53 excludes port 53 only", v4("192.168.1.5", 80), tcp, verdict::proxy,
         rule::proxied},
        {"an excluded IPv6 service", v6("fd00::1", 443), tcp, verdict::direct, rule::excluded},
        {"its prefix on another port", v6("fd00::1", 80), tcp, verdict::proxy, rule::proxied},
        {"loopback, UDP", v4("127.0.0.1", 5000), udp, verdict::direct, rule::loopback},
        {"::1, UDP", v6("::1", 5000), udp, verdict::direct, rule::loopback},
        {"anywhere else, UDP", v4("8.8.8.8", 443), udp, verdict::refuse, rule::non_tcp, EPERM},
        {"anywhere else, raw", v4("8.8.8.8", 0), SOCK_RAW, verdict::refuse, rule::non_tcp, EPERM},
        {"loopback, TCP", v4("127.0.0.1", 8080), tcp, verdict::direct, rule::loopback},
        {"0.0.0.0, TCP", v4("0.0.0.0", 8080), tcp, verdict::direct, rule::loopback},
        {"::, TCP", v6("::", 8080), tcp, verdict::direct, rule::loopback},
        {"anywhere else, TCP", v4("8.8.8.8", 443), tcp, verdict::proxy, rule::proxied},
        {"v4-mapped, TCP", v6("::ffff:8.8.8.8", 443), tcp, verdict::proxy, rule::proxied},
        {"IPv6, TCP", v6("2001:db8::1", 443), tcp, verdict::proxy, rule::proxied},
        {"IPv6 without a scope id (24 bytes)", with_len(v6("2001:db8::1", 443), 24), tcp,
         verdict::proxy, rule::proxied},
    };
}

void check_row(const row& r, const lp::policy::decision& d) {
    std::string what = r.what;
    CAPTURE(what);
    CHECK(d.what == r.expected);
    CHECK(d.rule == r.by);
    if (r.expected == verdict::refuse) {
        CHECK(d.error == r.err);
        CHECK(std::string{d.reason} != "");
    }
}

}  // namespace

TEST_CASE("policy: every rule, its verdict, errno and tag") {
    std::set<rule> seen;
    for (const auto& r : connect_rows()) {
        const sockaddr* sa = r.to.len == 0 ? nullptr : r.to.sa();
        auto d = lp::policy::decide(sa, r.to.len, r.sotype);
        check_row(r, d);
        seen.insert(d.rule);
    }
    // The table names every rule there is (rule::proxied is the last).
    CHECK(seen.size() == static_cast<std::size_t>(rule::proxied) + 1);
}

TEST_CASE("policy: a placeholder's decision carries its name and port") {
    auto d =
        lp::policy::decide(placeholder_v4("Spelled.Example", 8443).sa(), sizeof(sockaddr_in), tcp);
    REQUIRE(d.rule == rule::placeholder);
    CHECK(d.by_name);
    CHECK(std::string{d.name, d.name_len} == "Spelled.Example");
    CHECK(d.target.port == 8443);
    auto by_ip = lp::policy::decide(v4("8.8.8.8", 443).sa(), sizeof(sockaddr_in), tcp);
    CHECK_FALSE(by_ip.by_name);
    CHECK(by_ip.target.addr.is_v4());
    CHECK(by_ip.target.addr.v4() == 0x08080808);
}

TEST_CASE("policy: a datagram's address is read as the kernel reads it") {
    struct send_row {
        row r;
        int domain;
    };
    const std::vector<send_row> rows = {
        {{"AF_UNSPEC on AF_INET: DNS", with_family(v4("8.8.8.8", 53), AF_UNSPEC), udp,
          verdict::refuse, rule::dns, EPERM},
         AF_INET},
        {{"AF_UNSPEC on AF_INET: anywhere", with_family(v4("8.8.8.8", 9), AF_UNSPEC), udp,
          verdict::refuse, rule::non_tcp, EPERM},
         AF_INET},
        {{"AF_UNSPEC on AF_INET: loopback", with_family(v4("127.0.0.1", 9), AF_UNSPEC), udp,
          verdict::direct, rule::loopback},
         AF_INET},
        {{"AF_UNSPEC on AF_INET: excluded", with_family(v4("10.0.0.1", 9), AF_UNSPEC), udp,
          verdict::direct, rule::excluded},
         AF_INET},
        {{"AF_UNSPEC on AF_INET, too short to name one",
          with_len(with_family(v4("8.8.8.8", 9), AF_UNSPEC), 8), udp, verdict::direct,
          rule::not_ip},
         AF_INET},
        {{"AF_UNSPEC on AF_INET6: anywhere", with_family(v6("2001:db8::1", 9), AF_UNSPEC), udp,
          verdict::refuse, rule::non_tcp, EPERM},
         AF_INET6},
        {{"AF_UNSPEC on AF_INET6: ::1", with_family(v6("::1", 9), AF_UNSPEC), udp, verdict::direct,
          rule::loopback},
         AF_INET6},
        {{"AF_UNSPEC on AF_INET6, too short to name one",
          with_len(with_family(v6("2001:db8::1", 9), AF_UNSPEC), 16), udp, verdict::direct,
          rule::not_ip},
         AF_INET6},
        {{"AF_INET on AF_INET6 (dual stack)", v4("8.8.8.8", 9), udp, verdict::refuse, rule::non_tcp,
          EPERM},
         AF_INET6},
        {{"AF_INET6 on AF_INET", v6("::1", 9), udp, verdict::direct, rule::loopback}, AF_INET},
        {{"a Unix address on AF_INET (the kernel refuses it)", unix_path("/x"), udp,
          verdict::direct, rule::not_ip},
         AF_INET},
    };
    for (const auto& [r, domain] : rows) {
        CAPTURE(domain);
        check_row(r, lp::policy::decide_send(r.to.sa(), r.to.len, domain, r.sotype));
    }
    // connect() reads AF_UNSPEC as "dissolve the association": no destination.
    auto d = lp::policy::decide(with_family(v4("8.8.8.8", 53), AF_UNSPEC).sa(), sizeof(sockaddr_in),
                                udp);
    CHECK(d.rule == rule::not_ip);
}
