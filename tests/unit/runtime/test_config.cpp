// The configuration from the environment (runtime/config.hpp): each
// variable set, parsed and checked with config::read() and a table in
// place of getenv(), so that one process tries many environments.
#include <doctest/doctest.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>

#include "runtime/config.hpp"
#include "runtime/environment.hpp"
#include "unit_env.hpp"

using lp::config::settings;

namespace {

std::map<std::string, std::string> vars;
std::set<std::string> asked;

const char* from_table(const char* name) {
    asked.insert(name);
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
}

// The settings for exactly these variables (the others unset).
settings with(std::map<std::string, std::string> env) {
    vars = std::move(env);
    asked.clear();
    settings s;
    lp::config::read(s, from_table);
    return s;
}

std::string error_of(std::map<std::string, std::string> env) {
    auto s = with(std::move(env));
    return s.error ? s.error : "";
}

std::string pid_text() {
    return std::to_string(static_cast<long>(getpid()));
}

}  // namespace

TEST_CASE("config: nothing set") {
    auto s = with({});
    CHECK(s.error == nullptr);
    REQUIRE(s.chain_len == 1);
    CHECK(s.chain[0].host.view() == "127.0.0.1");
    CHECK(s.chain[0].port == 9050);
    CHECK(s.timeout_ms == 120000);
    CHECK(s.exclude_count == 0);
    CHECK_FALSE(s.proxy_loopback);
    CHECK_FALSE(s.tor);
    CHECK(s.async);
    CHECK(s.log_level == 1);
    CHECK(std::string{s.log_file}.empty());
    CHECK(std::string{s.map_path}.empty());
}

TEST_CASE("config: the DNS responder's port, when the tree has one") {
    CHECK(with({}).dns_port == 0);
    CHECK(with({{lp::env::dns, ""}}).dns_port == 0);
    CHECK(with({{lp::env::dns, "40153"}}).dns_port == 40153);
    for (const char* bad : {"0", "-5", "65536", "53x", "port"}) {
        CAPTURE(std::string{bad});
        CHECK(with({{lp::env::dns, bad}}).dns_port == 0);
    }
}

TEST_CASE("config: every variable environment.hpp names is read here") {
    with({});
    namespace e = lp::env;
    for (const char* name :
         {e::proxies, e::timeout_ms, e::exclude, e::proxy_loopback, e::tor, e::log_level,
          e::log_file, e::isolate, e::map, e::async, e::credentials, e::unsupervised,
          e::supervisor_pid, e::optimistic, e::dns, e::udp, e::inbound}) {
        CAPTURE(std::string{name});
        CHECK(asked.count(name) == 1);
    }
    CHECK(asked.count(e::user_proxy) == 0);  // the wrapper's input, not the runtime's
}

TEST_CASE("config: each setting") {
    namespace e = lp::env;
    auto s = with({{e::proxies, "socks5h://u:p@192.0.2.1:1081 socks4a://proxy.example:1082"},
                   {e::timeout_ms, "2500"},
                   {e::exclude, "10.0.0.0/8, 192.168.1.5:53,[fd00::/8]:443"},
                   {e::proxy_loopback, "1"},
                   {e::tor, "1"},
                   {e::async, "0"},
                   {e::log_level, "2"},
                   {e::log_file, "/tmp/leakproof.log"},
                   {e::map, "/dev/shm/leakproof-map"}});
    REQUIRE(s.error == nullptr);
    REQUIRE(s.chain_len == 2);
    CHECK(s.chain[0].user.view() == "u");
    CHECK(s.chain[1].host.view() == "proxy.example");  // later hops may be names
    CHECK(s.first_hop_ep.addr.v4() == 0xC0000201);
    CHECK(s.first_hop_ep.port == 1081);
    CHECK(s.first_hop.sin6_family == AF_INET6);
    CHECK(ntohs(s.first_hop.sin6_port) == 1081);
    CHECK(s.timeout_ms == 2500);
    CHECK(s.exclude_count == 3);
    CHECK(s.excludes[1].port == 53);
    CHECK(s.proxy_loopback);
    CHECK(s.tor);
    CHECK_FALSE(s.async);
    CHECK(s.log_level == 2);
    CHECK(std::string{s.log_file} == "/tmp/leakproof.log");
    CHECK(std::string{s.map_path} == "/dev/shm/leakproof-map");
}

TEST_CASE("config: optimistic data, from the URLs, and LEAKPROOF_OPTIMISTIC=0 against it") {
    namespace e = lp::env;
    const std::string urls = "socks5h://192.0.2.1:9050?optimistic=1 socks4a://p.test?optimistic=1";
    auto s = with({{e::proxies, urls}});
    REQUIRE(s.chain_len == 2);
    CHECK(s.chain[0].options.optimistic);
    CHECK(s.chain[1].options.optimistic);
    s = with({{e::proxies, urls}, {e::optimistic, "0"}});
    REQUIRE(s.chain_len == 2);
    CHECK_FALSE(s.chain[0].options.optimistic);
    CHECK(s.chain[0].options.pipeline);  // still the one round trip it implied
    CHECK_FALSE(s.chain[1].options.optimistic);
    s = with({{e::proxies, "socks5h://192.0.2.1:9050"}, {e::optimistic, "1"}});
    CHECK_FALSE(s.chain[0].options.optimistic);  // only a URL turns it on
}

TEST_CASE("config: the first hop's address") {
    namespace e = lp::env;
    auto s = with({{e::proxies, "socks5h://[2001:db8::9]:1080"}});
    REQUIRE(s.error == nullptr);
    CHECK_FALSE(s.first_hop_ep.addr.is_v4());
    s = with({{e::proxies, "socks5h://localhost:1080"}});
    REQUIRE(s.error == nullptr);
    CHECK(s.first_hop_ep.addr.v4() == 0x7F000001);
    CHECK(error_of({{e::proxies, "socks5h://proxy.example:1080"}}) ==
          "the first proxy must be given as an IP address");
}

TEST_CASE("config: values that are refused, not guessed") {
    namespace e = lp::env;
    std::string nine;
    for (int i = 0; i < 9; ++i) nine += "socks5h://127.0.0.1:1080 ";
    for (const auto& bad : {"http://127.0.0.1:8080", "socks5h://", nine.c_str()}) {
        CAPTURE(std::string{bad});
        CHECK(error_of({{e::proxies, bad}}).starts_with("bad LEAKPROOF_PROXIES"));
    }
    std::string many;
    for (int i = 0; i < 33; ++i) many += "10.0.0." + std::to_string(i) + ",";
    for (const auto& bad : {"10.0.0.0/33", "example.org", many.c_str()}) {
        CAPTURE(std::string{bad});
        CHECK(error_of({{e::exclude, bad}}) == "bad LEAKPROOF_EXCLUDE");
    }
    CHECK(error_of({{e::isolate, "invocation"}}).starts_with("bad LEAKPROOF_ISOLATE"));
    CHECK(error_of({{e::isolate, "process:"}}).starts_with("bad LEAKPROOF_ISOLATE base"));
    CHECK(error_of({{e::isolate, "process:" + std::string(201, 'b')}})
              .starts_with("bad LEAKPROOF_ISOLATE base"));
    // Numbers fall back to their defaults rather than failing.
    for (const auto& t : {"", "0", "-5", "abc", "1234567890"}) {
        CAPTURE(std::string{t});
        CHECK(with({{e::timeout_ms, t}}).timeout_ms == 120000);
    }
    CHECK(with({{e::log_level, "x"}}).log_level == 1);
    CHECK(with({{e::async, ""}}).async);
    CHECK_FALSE(with({{e::tor, "yes"}}).tor);
}

TEST_CASE("config: per-process isolation") {
    namespace e = lp::env;
    auto s = with({{e::proxies,
                    "socks5h://127.0.0.1:9050 socks5h://alice:pw@192.0.2.1:1080 "
                    "socks4a://192.0.2.2:1080"},
                   {e::isolate, "process:run42"}});
    REQUIRE(s.error == nullptr);
    CHECK(s.isolated[0]);
    CHECK(s.chain[0].user.view() == "run42-" + pid_text());
    CHECK(s.chain[0].password.view() == "run42");
    CHECK_FALSE(s.isolated[1]);  // it has its own user
    CHECK(s.chain[1].user.view() == "alice");
    CHECK_FALSE(s.isolated[2]);  // SOCKS4a has no password authentication
    s = with({{e::isolate, "process"}});
    CHECK(s.chain[0].user.view() == "leakproof-" + pid_text());
    s = with({{e::isolate, ""}});
    CHECK(s.chain[0].user.empty());
}

TEST_CASE("config: credentials from the map, not the environment") {
    namespace e = lp::env;
    const std::string map = lp::unit::map_path;  // holds hop 0's (main.cpp)
    auto s = with({{e::proxies, "socks5h://127.0.0.1:1080 socks5h://192.0.2.1:1081"},
                   {e::credentials, "0"},
                   {e::map, map}});
    REQUIRE(s.error == nullptr);
    CHECK(s.chain[0].user.view() == lp::unit::stored_user);
    CHECK(s.chain[0].password.view() == lp::unit::stored_password);
    CHECK(s.chain[1].user.empty());
    // A hop with credentials is not isolated: it keeps its own user.
    s = with({{e::credentials, "0"}, {e::map, map}, {e::isolate, "process"}});
    REQUIRE(s.error == nullptr);
    CHECK_FALSE(s.isolated[0]);
    CHECK(s.chain[0].user.view() == lp::unit::stored_user);
    // None listed: the map is not read, and nothing is taken from it.
    CHECK(with({{e::map, map}}).chain[0].user.empty());
    CHECK(error_of({{e::credentials, "1"}, {e::map, map}})
              .starts_with("bad LEAKPROOF_CREDENTIALS"));  // no such hop
    CHECK(error_of({{e::proxies, "socks5h://127.0.0.1:1080 socks5h://192.0.2.1:1081"},
                    {e::credentials, "1"},
                    {e::map, map}})
              .starts_with("bad LEAKPROOF_CREDENTIALS"));  // a hop the map has none for
    CHECK(
        error_of({{e::credentials, "x"}, {e::map, map}}).starts_with("bad LEAKPROOF_CREDENTIALS"));
    CHECK(error_of({{e::credentials, "0"}}).find("cannot open") != std::string::npos);
    CHECK(error_of({{e::credentials, "0"}, {e::map, "/proc/self/fd/999999"}}).find("cannot open") !=
          std::string::npos);
}
