// The runtime's route matching (runtime/route) and hop selection
// (runtime/path), sans-IO.
#include <doctest/doctest.h>

#include <set>
#include <string_view>

#include "leakproof/error.hpp"
#include "runtime/path.hpp"
#include "runtime/route.hpp"

using namespace lp;

namespace {

route::table* parsed(std::string_view text) {
    static route::table t;
    t = route::table{};
    REQUIRE(route::parse(text, t) == nullptr);
    return &t;
}

net::endpoint ep(std::string_view ip, std::uint16_t port) {
    net::endpoint e;
    REQUIRE(net::parse_ip(ip, e.addr));
    e.port = port;
    return e;
}

std::string_view pattern(const route::rule* r) {
    return r ? r->pattern.view() : std::string_view{"(none)"};
}

}  // namespace

TEST_CASE("routes: names, suffixes, networks, ports, first match wins") {
    auto& t = *parsed(
        "example.org=refuse *.lab=socks5h://10.0.0.1:1080 .corp:443=direct "
        "10.0.0.0/8:22=direct 10.1.0.0/16=socks5://10.0.0.2:1080,socks5://10.0.0.3:1080 "
        "[fd00::/8]:443=refuse");
    CHECK(t.count == 6);
    CHECK(pattern(route::match_name(t, "example.org", 80)) == "example.org");
    CHECK(pattern(route::match_name(t, "EXAMPLE.org.", 80)) == "example.org");
    CHECK(route::match_name(t, "www.example.org", 80) == nullptr);
    CHECK(pattern(route::match_name(t, "db.lab", 5432)) == "*.lab");
    CHECK(pattern(route::match_name(t, "a.b.LAB", 1)) == "*.lab");
    CHECK(route::match_name(t, "lab", 80) == nullptr);
    CHECK(route::match_name(t, "xlab", 80) == nullptr);
    CHECK(pattern(route::match_name(t, "git.corp", 443)) == ".corp:443");
    CHECK(route::match_name(t, "git.corp", 80) == nullptr);
    // Addresses match only address patterns, first match wins.
    CHECK(pattern(route::match_address(t, ep("10.1.2.3", 22))) == "10.0.0.0/8:22");
    CHECK(pattern(route::match_address(t, ep("10.1.2.3", 80))) == "10.1.0.0/16");
    CHECK(route::match_address(t, ep("10.2.2.3", 80)) == nullptr);
    CHECK(pattern(route::match_address(t, ep("fd12::1", 443))) == "[fd00::/8]:443");
    // The chain of a route.
    auto c = route::chain_of(t, *route::match_address(t, ep("10.1.2.3", 80)));
    REQUIRE(c.len == 2);
    CHECK(c.hops[1].host.view() == "10.0.0.3");
}

TEST_CASE("routes: * matches names and addresses; .onion and tor:") {
    auto& t = *parsed("*.onion=tor:socks5h://127.0.0.1:9050 *=refuse");
    auto* r = route::match_name(t, "abcdef.onion", 80);
    REQUIRE(r != nullptr);
    CHECK(r->tor);
    CHECK(pattern(route::match_name(t, "example.org", 80)) == "*");
    CHECK(pattern(route::match_address(t, ep("192.0.2.1", 80))) == "*");
    CHECK(route::is_onion("x.ONION."));
    CHECK_FALSE(route::is_onion("onion.example"));
}

TEST_CASE("routes: what LEAKPROOF_ROUTES may not hold") {
    route::table t;
    CHECK(route::parse("example.org", t) != nullptr);
    t = {};
    CHECK(route::parse("a_b$c=refuse", t) != nullptr);
    t = {};
    CHECK(route::parse("x=socks9://h", t) != nullptr);
    t = {};
    CHECK(route::parse("x:99999=refuse", t) != nullptr);
}

TEST_CASE("routes: entry hops are the first (strict) or every hop") {
    auto& t = *parsed("*.lab=socks5://10.0.0.2:1080,socks5://10.0.0.3:1081");
    leakproof::proxy def[2];
    REQUIRE(!leakproof::parse_proxy_url("socks5://127.0.0.1:1080", def[0]));
    REQUIRE(!leakproof::parse_proxy_url("socks5://127.0.0.1:1090", def[1]));
    REQUIRE(route::index_entries(t, {def, 2}, path::mode::strict));
    CHECK(route::is_entry(t, ep("127.0.0.1", 1080)));
    CHECK_FALSE(route::is_entry(t, ep("127.0.0.1", 1090)));
    CHECK(route::is_entry(t, ep("10.0.0.2", 1080)));
    CHECK_FALSE(route::is_entry(t, ep("10.0.0.3", 1081)));
    REQUIRE(route::index_entries(t, {def, 2}, path::mode::dynamic));
    CHECK(route::is_entry(t, ep("127.0.0.1", 1090)));
    CHECK(route::is_entry(t, ep("10.0.0.3", 1081)));
    // Outside strict mode a hop given by name cannot start a connection.
    auto& named = *parsed("*.lab=socks5://10.0.0.2:1080,socks5://proxy.lab:1081");
    CHECK_FALSE(route::index_entries(named, {def, 2}, path::mode::dynamic));
}

TEST_CASE("chain modes parse") {
    path::settings s;
    CHECK(path::parse_mode("dynamic", s));
    CHECK(s.how == path::mode::dynamic);
    CHECK(path::parse_mode("random:3", s));
    CHECK((s.how == path::mode::random && s.count == 3));
    CHECK(path::parse_mode("round-robin", s));
    CHECK((s.how == path::mode::round_robin && s.count == 1));
    CHECK_FALSE(path::parse_mode("strict:2", s));
    CHECK_FALSE(path::parse_mode("random:9", s));
    CHECK_FALSE(path::parse_mode("random:0", s));
    CHECK_FALSE(path::parse_mode("fastest", s));
}

namespace {

leakproof::proxy hops[4];
const path::chain four{hops, 4};

path::selection sel_of(std::initializer_list<int> h) {
    path::selection s;
    for (int x : h) s.hop[s.len++] = static_cast<std::uint8_t>(x);
    return s;
}

bool same(const path::selection& a, const path::selection& b) {
    if (a.len != b.len) return false;
    for (std::size_t i = 0; i < a.len; ++i)
        if (a.hop[i] != b.hop[i]) return false;
    return true;
}

}  // namespace

TEST_CASE("strict: one attempt through every hop") {
    path::walk w{four, {path::mode::strict, 1, 0}};
    path::selection s;
    REQUIRE(w.next(s));
    CHECK(same(s, sel_of({0, 1, 2, 3})));
    w.down(s, 1);
    CHECK_FALSE(w.next(s));
}

TEST_CASE("dynamic: a hop that is down is left out, until none is left") {
    path::walk w{four, {path::mode::dynamic, 1, 0}};
    path::selection s;
    REQUIRE(w.next(s));
    CHECK(same(s, sel_of({0, 1, 2, 3})));
    w.down(s, 0);
    REQUIRE(w.next(s));
    CHECK(same(s, sel_of({1, 2, 3})));
    w.down(s, 1);  // hop 2
    REQUIRE(w.next(s));
    CHECK(same(s, sel_of({1, 3})));
    w.down(s, 0);
    w.down(s, 1);
    path::selection last = s;
    CHECK_FALSE(w.next(s));
    CHECK(same(s, last));  // unchanged: the report names the last attempt
}

TEST_CASE("random: N distinct hops, replaced when down") {
    std::set<int> firsts;
    for (int round = 0; round < 64; ++round) {
        path::walk w{four, {path::mode::random, 2, 0}};
        path::selection s;
        REQUIRE(w.next(s));
        REQUIRE(s.len == 2);
        CHECK(s.hop[0] != s.hop[1]);
        firsts.insert(s.hop[0]);
        int dead = s.hop[0];
        w.down(s, 0);
        REQUIRE(w.next(s));
        CHECK((s.hop[0] != dead && s.hop[1] != dead));
    }
    CHECK(firsts.size() > 1);  // 64 draws of 4: all the same has odds 4^-63
    path::walk w{four, {path::mode::random, 4, 0}};
    path::selection s;
    REQUIRE(w.next(s));
    w.down(s, 2);
    CHECK_FALSE(w.next(s));  // 3 left, 4 wanted
}

TEST_CASE("round-robin: consecutive hops, one further each connection") {
    path::walk a{four, {path::mode::round_robin, 2, 0}}, b{four, {path::mode::round_robin, 2, 0}};
    path::selection sa, sb;
    REQUIRE(a.next(sa));
    REQUIRE(b.next(sb));
    CHECK(sa.len == 2);
    CHECK(sa.hop[1] == (sa.hop[0] + 1) % 4);
    CHECK(sb.hop[0] == (sa.hop[0] + 1) % 4);
    a.down(sa, 1);
    REQUIRE(a.next(sa));
    CHECK(sa.hop[1] == (sa.hop[0] + 2) % 4);  // the dead one skipped
}

TEST_CASE("blame: the hop, the next hop, or the destination") {
    auto s = sel_of({0, 1, 2});
    std::error_code refused{ECONNREFUSED, std::generic_category()};
    CHECK(path::blame(s, 0, refused) == 0);  // could not reach the first hop
    CHECK(path::blame(s, 1, leakproof::error::auth_failed) == 1);
    CHECK(path::blame(s, 1, leakproof::error::proxy_closed) == 1);
    CHECK(path::blame(s, 1, leakproof::error::general_failure) == 1);
    // Hop 0 could not reach hop 1: hop 1 is down.
    CHECK(path::blame(s, 0, leakproof::error::connection_refused) == 1);
    CHECK(path::blame(s, 0, leakproof::error::host_unreachable) == 1);
    // The last hop about the destination: no other hop would do better.
    CHECK(path::blame(s, 2, leakproof::error::connection_refused) == -1);
    CHECK(path::blame(s, 2, leakproof::error::onion_descriptor_not_found) == -1);
    CHECK(path::blame(s, 2, leakproof::error::not_allowed) == 2);
}
