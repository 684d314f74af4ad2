// The wrapper's config readers on real files of proxychains4, torsocks and
// tsocks (copies of what their Debian packages install) and variants.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "wrapper/options.hpp"
#include "wrapper/peer_config.hpp"

using namespace lp::wrapper;

namespace {

std::string fixture(const std::string& name) {
    std::ifstream f{std::string{LEAKPROOF_FIXTURES} + "/" + name};
    REQUIRE(f.good());
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

options read(const std::string& name) {
    options o;
    apply_file(o, name, fixture(name), true);
    return o;
}

bool has(const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
}

bool warned(const options& o, const std::string& where, const std::string& words) {
    for (const auto& w : o.warnings)
        if (w.starts_with(where + ": warning: ") && w.find(words) != std::string::npos) return true;
    return false;
}

std::string refusal_of(const std::string& name) {
    options o;
    try {
        apply_file(o, name, fixture(name), true);
    } catch (const usage_error& e) {
        return e.what;
    }
    return "";
}

}  // namespace

TEST_CASE("the format is told by the content") {
    CHECK(peer::detect(fixture("proxychains4.conf")) == peer::format::proxychains);
    CHECK(peer::detect(fixture("torsocks.conf")) == peer::format::torsocks);
    CHECK(peer::detect(fixture("tsocks.conf")) == peer::format::tsocks);
    CHECK(peer::detect("proxy = socks5h://127.0.0.1:1080\n") == peer::format::leakproof);
    CHECK(peer::detect("# nothing\n\n") == peer::format::leakproof);
}

TEST_CASE("Debian's /etc/proxychains4.conf") {
    auto o = read("proxychains4.conf");
    CHECK(o.config_format == "proxychains");
    // socks4 entries become socks4a: names go to the proxy (proxy_dns).
    CHECK(o.proxies == std::vector<std::string>{"socks4a://127.0.0.1:9050"});
    CHECK(o.chain_mode == "strict");
    CHECK(o.hop_timeout == doctest::Approx(23));  // 15000 + 8000 ms
    // remote_dns_subnet: one warning, with its line; proxy_dns takes effect.
    REQUIRE(o.warnings.size() == 1);
    CHECK(warned(o, "proxychains4.conf:89", "placeholder"));
}

TEST_CASE("a dynamic proxychains chain with logins, localnet, quiet_mode") {
    auto o = read("proxychains-dynamic.conf");
    CHECK(o.chain_mode == "dynamic");
    CHECK(o.verbosity == 0);
    CHECK(o.hop_timeout == doctest::Approx(5.5));
    CHECK(o.excludes == std::vector<std::string>{"192.168.1.0/24", "10.0.0.0/8:8080"});
    CHECK(o.proxies == std::vector<std::string>{"socks5h://alice:s3cr%3At%40x@127.0.0.1:1081",
                                                "socks4a://bob@10.1.1.1:1080"});
    CHECK(warned(o, "proxychains-dynamic.conf:3", "chain_len applies to random_chain"));
    // No proxy_dns line: proxychains would resolve locally; leakproof never does.
    CHECK(warned(o, "proxychains-dynamic.conf", "proxy_dns is off"));
    CHECK(o.warnings.size() == 2);
}

TEST_CASE("round_robin_chain with chain_len") {
    auto o = read("proxychains-round-robin.conf");
    CHECK(o.chain_mode == "round-robin:2");
    CHECK(o.proxies.size() == 3);
    CHECK(o.warnings.empty());
}

TEST_CASE("http proxies and dnat are refused with a sentence naming the line") {
    auto http = refusal_of("proxychains-http.conf");
    CHECK(http.starts_with("proxychains-http.conf:5: http proxy"));
    CHECK(http.find("SOCKS only") != std::string::npos);
    auto dnat = refusal_of("proxychains-dnat.conf");
    CHECK(dnat.starts_with("proxychains-dnat.conf:3: dnat is not supported"));
}

TEST_CASE("Debian's /etc/tor/torsocks.conf") {
    auto o = read("torsocks.conf");
    CHECK(o.config_format == "torsocks");
    CHECK(o.proxies == std::vector<std::string>{"socks5h://127.0.0.1:9050"});
    CHECK(o.tor);
    REQUIRE(o.warnings.size() == 1);
    CHECK(warned(o, "torsocks.conf:19", "OnionAddrRange"));
}

TEST_CASE("every torsocks directive") {
    auto o = read("torsocks-all.conf");
    CHECK(o.proxies == std::vector<std::string>{"socks5h://10.9.8.7:9150"});
    CHECK(o.tor);
    CHECK(o.isolate);
    CHECK(o.isolate_process);
    CHECK(o.user == "tor-user");
    CHECK(o.password == "tor-pass");
    // AllowOutboundLocalhost 0: loopback refused, as torsocks does.
    CHECK(o.routes == std::vector<std::string>{"127.0.0.0/8=refuse", "::1=refuse"});
    CHECK(o.warnings.size() == 1);  // OnionAddrRange
}

TEST_CASE("Debian's /etc/tsocks.conf: local networks, a path, the default server") {
    auto o = read("tsocks.conf");
    CHECK(o.config_format == "tsocks");
    CHECK(o.proxies == std::vector<std::string>{"socks5h://192.168.0.1:1080"});
    CHECK(o.excludes == std::vector<std::string>{"192.168.0.0/24", "10.0.0.0/8"});
    CHECK(o.routes ==
          std::vector<std::string>{"150.0.0.0/16=socks5h://delius:hello@10.1.7.25:1080",
                                   "150.1.0.0/16:80=socks5h://delius:hello@10.1.7.25:1080"});
    CHECK(o.warnings.empty());
}

TEST_CASE("tsocks: a port range, fallback, a SOCKS4 default server") {
    auto o = read("tsocks-paths.conf");
    CHECK(o.proxies == std::vector<std::string>{"socks4a://carol@192.168.0.1:1080"});
    CHECK(has(o.routes, "172.16.0.0/12=socks5h://10.1.7.26:1081"));
    CHECK(has(o.routes, "150.1.0.0/16=socks5h://10.1.7.26:1081"));
    CHECK(warned(o, "tsocks-paths.conf:4", "port range 80-100"));
    // fallback = yes would connect directly: never.
    CHECK(warned(o, "tsocks-paths.conf:9", "never connects directly"));
    CHECK(o.warnings.size() == 2);
}

TEST_CASE("nothing in a peer's file is silently ignored") {
    options o;
    apply_file(o, "p.conf",
               "strict_chain\nproxy_dns\nfrobnicate 3\n[ProxyList]\nsocks5 1.2.3.4 1080\n", true);
    CHECK(warned(o, "p.conf:3", "unknown proxychains directive 'frobnicate'"));
    options t;
    apply_file(t, "t.conf", "TorPort 9050\nUseTls 1\nAllowInbound 0\n", true);
    CHECK(warned(t, "t.conf:2", "unknown torsocks directive"));
    CHECK(warned(t, "t.conf:3", "does not refuse inbound"));
}

TEST_CASE("leakproof's own format: chain, hop_timeout, routes, and back with format_config") {
    options o;
    apply_file(o, "own.conf",
               "proxy = socks5h://127.0.0.1:1080\nchain = random:2\nhop_timeout = 3\n"
               "route *.lab socks5h://10.0.0.1:1080\nroute = 10.0.0.0/8:22 direct\n"
               "route example.org refuse\n",
               true);
    CHECK(o.chain_mode == "random:2");
    CHECK(o.hop_timeout == doctest::Approx(3));
    CHECK(o.routes == std::vector<std::string>{"*.lab=socks5h://10.0.0.1:1080",
                                               "10.0.0.0/8:22=direct", "example.org=refuse"});
    options again;
    apply_file(again, "printed.conf", format_config(o), true);
    CHECK(format_config(again) == format_config(o));
    // A peer's file migrates the same way.
    auto peer = read("tsocks.conf");
    options migrated;
    apply_file(migrated, "migrated.conf", format_config(peer), true);
    CHECK(migrated.routes == peer.routes);
    CHECK(migrated.excludes == peer.excludes);
    CHECK(migrated.proxies == peer.proxies);
}

TEST_CASE("routes the wrapper refuses") {
    CHECK_NOTHROW(check_route("*.lab=socks5h://127.0.0.1:1080,socks5://10.0.0.2:1080"));
    CHECK_NOTHROW(check_route("*.onion=tor:socks5h://127.0.0.1:9050"));
    CHECK_NOTHROW(check_route("[::1]:8080=direct"));
    CHECK_THROWS_AS(check_route("example.org"), usage_error);
    CHECK_THROWS_AS(check_route("*.lab=direct"), usage_error);  // would need local DNS
    CHECK_THROWS_AS(check_route("*.onion=socks5h://127.0.0.1:1080"), usage_error);
    CHECK_THROWS_AS(check_route("x.onion=direct"), usage_error);
    CHECK_THROWS_AS(check_route("a b=refuse"), usage_error);
    CHECK_THROWS_AS(check_route("10.0.0.0/8=http://proxy:3128"), usage_error);
}

namespace {

const char* const peer_fixtures[] = {
    "proxychains4.conf",
    "proxychains-dynamic.conf",
    "proxychains-round-robin.conf",
    "proxychains-careless.conf",
    "torsocks.conf",
    "torsocks-all.conf",
    "torsocks-careless.conf",
    "tsocks.conf",
    "tsocks-paths.conf",
    "tsocks-careless.conf",
};

// A proxy URL that sends names to the proxy (socks5h, socks4a) rather than
// looking them up locally first (socks5, socks4).
bool names_go_to_the_proxy(const std::string& url) {
    return url.starts_with("socks5h://") || url.starts_with("socks4a://");
}

std::size_t count_warnings(const options& o, const std::string& where) {
    return static_cast<std::size_t>(
        std::count_if(o.warnings.begin(), o.warnings.end(),
                      [&](const std::string& w) { return w.starts_with(where + ": warning: "); }));
}

}  // namespace

TEST_CASE("nothing in a peer's file turns on a local lookup or a direct fallback") {
    for (const char* name : peer_fixtures) {
        CAPTURE(name);
        auto o = read(name);
        CHECK_FALSE(o.proxy_loopback);
        for (const auto& p : o.proxies) CHECK(names_go_to_the_proxy(p));
        for (const auto& r : o.routes) {
            auto target = r.substr(r.find('=') + 1);
            CHECK(target != "direct");
            if (target != "refuse") CHECK(names_go_to_the_proxy(target));
        }
        // What the file becomes, once migrated, says so too.
        auto printed = format_config(o);
        CHECK(printed.find("direct") == std::string::npos);
        CHECK(printed.find("socks5://") == std::string::npos);
        CHECK(printed.find("socks4://") == std::string::npos);
        // Every warning but the one about a missing proxy_dns names its line.
        for (const auto& w : o.warnings)
            if (w.find("proxy_dns is off") == std::string::npos)
                CHECK(w.starts_with(name + std::string{":"}));
    }
}

TEST_CASE("a careless proxychains file: one warning per directive, with its line") {
    auto o = read("proxychains-careless.conf");
    CHECK(o.chain_mode == "random:3");
    CHECK(o.proxies ==
          std::vector<std::string>{"socks4a://dave@127.0.0.1:1080", "socks5h://127.0.0.1:1081"});
    CHECK(o.excludes == std::vector<std::string>{"127.0.0.0/8"});
    CHECK(warned(o, "proxychains-careless.conf:4", "chain_len 3 is more than the 2 proxies"));
    CHECK(warned(o, "proxychains-careless.conf:7", "takes no password"));
    CHECK(warned(o, "proxychains-careless.conf", "proxy_dns is off"));
    CHECK(count_warnings(o, "proxychains-careless.conf:4") == 1);
    CHECK(count_warnings(o, "proxychains-careless.conf:7") == 1);
    CHECK(o.warnings.size() == 3);
}

TEST_CASE("a proxychains chain_len that is not a number is refused at its own line") {
    options o;
    try {
        apply_file(o, "n.conf", "random_chain\nchain_len = many\n[ProxyList]\nsocks5 1.2.3.4 1\n",
                   true);
        FAIL("accepted");
    } catch (const usage_error& e) {
        CHECK(e.what.starts_with("n.conf:2: chain_len"));
    }
}

TEST_CASE("a proxychains file without a proxy says so") {
    options o;
    apply_file(o, "e.conf", "strict_chain\nproxy_dns\n[ProxyList]\n", true);
    CHECK(warned(o, "e.conf:3", "no proxy"));
    options none;
    apply_file(none, "n.conf", "strict_chain\nproxy_dns\n", true);
    CHECK(warned(none, "n.conf", "no [ProxyList]"));
}

TEST_CASE("torsocks values it does not know get a warning with their line") {
    auto o = read("torsocks-careless.conf");
    CHECK(o.proxies == std::vector<std::string>{"socks5h://127.0.0.1:9050"});
    CHECK(o.routes.empty());  // AllowOutboundLocalhost 1: loopback direct, like torsocks
    CHECK_FALSE(o.isolate);
    CHECK(warned(o, "torsocks-careless.conf:5", "IsolatePID expects 0 or 1"));
    CHECK(warned(o, "torsocks-careless.conf:6", "AllowInbound expects 0 or 1"));
    CHECK(o.warnings.size() == 2);
}

TEST_CASE("a peer's directive without its value is refused at its line") {
    for (const char* text : {"TorAddress\n", "TorPort\n", "SOCKS5Username\n", "SOCKS5Password\n"}) {
        CAPTURE(text);
        options o;
        try {
            apply_file(o, "v.conf", std::string{"IsolatePID 0\n"} + text, true);
            FAIL("accepted");
        } catch (const usage_error& e) {
            CHECK(e.what.starts_with("v.conf:2: "));
        }
    }
    options p;
    CHECK_THROWS_AS(apply_file(p, "l.conf", "proxy_dns\nlocalnet\n[ProxyList]\n", true),
                    usage_error);
}

TEST_CASE("tsocks directives out of place, a fallback, no server") {
    auto o = read("tsocks-careless.conf");
    CHECK(o.proxies.empty());
    CHECK(o.excludes == std::vector<std::string>{"192.168.0.0/16"});
    CHECK(o.routes.empty());
    CHECK(warned(o, "tsocks-careless.conf:2", "never connects directly"));
    CHECK(warned(o, "tsocks-careless.conf:3", "reaches belongs in a path"));
    CHECK(warned(o, "tsocks-careless.conf:5", "local belongs outside"));
    CHECK(warned(o, "tsocks-careless.conf:7", "a path without a server"));
    CHECK(warned(o, "tsocks-careless.conf", "no default server"));
    CHECK(o.warnings.size() == 5);
}
