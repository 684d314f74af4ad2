// The supervisor's DNS message codec (preload/supervisor/dns_message.hpp)
// against queries as dig and glibc send them, and the malformed ones a
// program may send instead.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "supervisor/dns_message.hpp"

using namespace lp::supervise::dns;

namespace {

using bytes = std::vector<std::uint8_t>;

// A query for `name`, as glibc's res_mkquery builds it (id 0x1234, RD).
bytes query(const std::string& name, std::uint16_t type, std::uint16_t qdcount = 1) {
    bytes m = {0x12, 0x34, 0x01, 0x00, 0, static_cast<std::uint8_t>(qdcount), 0, 0, 0, 0, 0, 0};
    std::size_t start = 0;
    while (start <= name.size() && !name.empty()) {
        auto dot = name.find('.', start);
        if (dot == std::string::npos) dot = name.size();
        m.push_back(static_cast<std::uint8_t>(dot - start));
        m.insert(m.end(), name.begin() + static_cast<long>(start),
                 name.begin() + static_cast<long>(dot));
        start = dot + 1;
    }
    m.push_back(0);
    m.insert(m.end(),
             {static_cast<std::uint8_t>(type >> 8), static_cast<std::uint8_t>(type), 0, 1});
    return m;
}

}  // namespace

TEST_CASE("dns_message: dig's query for example.org A, with its EDNS OPT record and cookie") {
    // Captured from `dig @127.0.0.1 example.org A` (bind9-dnsutils 9.18) by
    // tests/fuzz/capture_dns_queries.py: dns_corpus/2a3e8bac...
    const bytes dig = {0x78, 0xe9, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
                       0x01, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x6f,
                       0x72, 0x67, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x29, 0x04,
                       0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x0a, 0x00, 0x08,
                       0xff, 0x3e, 0x4d, 0x75, 0xa8, 0xf6, 0xa8, 0x50};
    question q;
    REQUIRE(is_query(dig));
    REQUIRE(parse_question(dig, q));
    CHECK(q.view() == "example.org");
    CHECK(q.type == type_a);
    CHECK(q.klass == class_in);
    CHECK(q.end == 29);
    std::uint8_t out[512];
    const std::uint8_t addr[4] = {240, 0, 0, 9};
    std::size_t n = write_response(dig, &q, 0, addr, out);
    REQUIRE(n == 29 + 16);
    CHECK(out[0] == 0x78);
    CHECK(out[1] == 0xe9);
    CHECK(out[2] == 0x81);  // QR, RD copied
    CHECK(out[3] == 0x80);  // RA, rcode 0
    CHECK(out[5] == 1);     // one question
    CHECK(out[7] == 1);     // one answer
    CHECK(out[11] == 0);    // the query's OPT record is not echoed
    CHECK(std::memcmp(out + 12, dig.data() + 12, 17) == 0);
    CHECK(out[29] == 0xc0);
    CHECK(out[30] == 0x0c);
    CHECK(std::memcmp(out + n - 4, addr, 4) == 0);
    CHECK(!is_query({out, n}));
}

TEST_CASE("dns_message: names are copied dotted, case kept, at most 253 bytes") {
    question q;
    REQUIRE(parse_question(query("WWW.Debian.ORG", type_aaaa), q));
    CHECK(q.view() == "WWW.Debian.ORG");
    CHECK(q.type == type_aaaa);
    std::string longest = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                          std::string(63, 'c') + "." + std::string(61, 'd');
    REQUIRE(longest.size() == 253);
    REQUIRE(parse_question(query(longest, type_a), q));
    CHECK(q.view() == longest);
    CHECK(!parse_question(query(longest + "e", type_a), q));
    CHECK(!parse_question(query(std::string(64, 'x') + ".org", type_a), q));
}

TEST_CASE("dns_message: malformed queries are refused") {
    question q;
    auto good = query("example.org", type_a);
    CHECK(!parse_question(query("example.org", type_a, 2), q));  // two questions
    CHECK(!parse_question(query("example.org", type_a, 0), q));
    for (std::size_t cut = 0; cut < good.size(); ++cut)
        CHECK(!parse_question({good.data(), cut}, q));
    auto response = good;
    response[2] |= 0x80;
    CHECK(!is_query(response));
    CHECK(!parse_question(response, q));
    auto pointer = good;
    pointer[12] = 0xc0;  // a compression pointer where the name starts
    CHECK(!parse_question(pointer, q));
    auto dotted = good;
    dotted[14] = '.';  // "e.ample": one label holding a dot
    CHECK(!parse_question(dotted, q));
    auto nul = good;
    nul[14] = 0;
    CHECK(!parse_question(nul, q));
    std::uint8_t out[512];
    std::size_t n = write_response(good, nullptr, rcode_refused, {}, out);
    REQUIRE(n == header_size);
    CHECK((out[3] & 0x0f) == rcode_refused);
    CHECK(out[5] == 0);  // no question echoed
}

TEST_CASE("dns_message: reverse names of placeholders") {
    lp::net::ip a;
    REQUIRE(reverse_address("7.0.0.240.in-addr.arpa", a));
    CHECK(a.is_v4());
    CHECK(a.v4() == 0xF0000007);
    std::string zeros;
    for (int i = 0; i < 29; ++i) zeros += "0.";
    const std::string v6 = "5." + zeros + "1.0.IP6.ARPA";  // 100::5, least significant first
    REQUIRE(reverse_address(v6, a));
    CHECK(a.b[0] == 0x01);
    CHECK(a.b[15] == 0x05);
    CHECK(!reverse_address("0.0.240.in-addr.arpa", a));
    CHECK(!reverse_address("1.7.0.0.240.in-addr.arpa", a));
    CHECK(!reverse_address("x.0.0.240.in-addr.arpa", a));
    CHECK(!reverse_address("5.0." + zeros + "1.0.ip6.arpa", a));  // 33 nibbles
    CHECK(!reverse_address("5." + zeros + "1..ip6.arpa", a));
    CHECK(!reverse_address("g." + zeros + "1.0.ip6.arpa", a));
    CHECK(!reverse_address("example.org", a));
}

TEST_CASE("dns_message: localhost, and names encoded for PTR answers") {
    CHECK(is_localhost("localhost"));
    CHECK(is_localhost("LocalHost"));
    CHECK(is_localhost("a.localhost"));
    CHECK(!is_localhost("notlocalhost"));
    CHECK(!is_localhost("localhost.org"));
    std::uint8_t out[32];
    CHECK(encode_name("a.bc", out) == 6);
    CHECK(std::memcmp(out,
                      "\x01"
                      "a"
                      "\x02"
                      "bc"
                      "\x00",
                      6) == 0);
    CHECK(encode_name("a..b", out) == 0);
    CHECK(encode_name(std::string(40, 'x'), out) == 0);  // does not fit
    CHECK(encode_name("abc", {out, 4}) == 0);            // the final 0 does not fit
    CHECK(encode_name("abc", {out, 5}) == 5);
}

TEST_CASE("dns_message: a response never overruns its buffer") {
    auto m = query("example.org", type_a);
    question q;
    REQUIRE(parse_question(m, q));
    const std::uint8_t addr[4] = {240, 0, 0, 1};
    std::uint8_t out[64];
    std::size_t need = write_response(m, &q, 0, addr, out);
    REQUIRE(need == 45);
    for (std::size_t size = 0; size < need; ++size) {
        std::memset(out, 0xEE, sizeof out);
        CHECK(write_response(m, &q, 0, addr, {out, size}) == 0);
        CHECK(out[size] == 0xEE);
    }
}
