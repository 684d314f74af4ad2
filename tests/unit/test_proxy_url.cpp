// Proxy URLs: schemes, credentials, IPv6 literals, ports, options, errors.
#include <doctest/doctest.h>

#include <string>

#include "leakproof/proxy.hpp"

using namespace leakproof;

namespace {
proxy parsed(std::string_view url) {
    proxy p;
    const auto ec = parse_proxy_url(url, p);
    CAPTURE(url);
    REQUIRE_FALSE(ec);
    return p;
}

std::error_code failure(std::string_view url) {
    proxy p;
    return parse_proxy_url(url, p);
}

std::string redacted(const proxy& p) {
    char buf[1024];
    format_redacted(p, buf, sizeof buf);
    return buf;
}
}  // namespace

TEST_CASE("schemes and defaults") {
    CHECK(parsed("socks4://10.0.0.1").version == socks_version::v4);
    CHECK(parsed("socks4a://proxy.test").version == socks_version::v4a);
    CHECK(parsed("socks5://proxy.test").version == socks_version::v5);
    CHECK(parsed("SOCKS5H://proxy.test").version == socks_version::v5);
    const auto p = parsed("socks5h://127.0.0.1");
    CHECK(p.host.view() == "127.0.0.1");
    CHECK(p.port == 1080);
    CHECK(p.user.empty());
    CHECK_FALSE(p.options.pipeline);
}

TEST_CASE("host, port, credentials") {
    auto p = parsed("socks5h://alice:pa%3Ass%40word@proxy.test:9050/");
    CHECK(p.host.view() == "proxy.test");
    CHECK(p.port == 9050);
    CHECK(p.user.view() == "alice");
    CHECK(p.password.view() == "pa:ss@word");

    p = parsed("socks5h://[::1]:1081");
    CHECK(p.host.view() == "::1");
    CHECK(p.port == 1081);
    p = parsed("socks5://[2001:db8::7]");
    CHECK(p.host.view() == "2001:db8::7");
    CHECK(p.port == 1080);

    p = parsed("socks4a://userid@proxy.test:1080");
    CHECK(p.user.view() == "userid");
    p = parsed("socks5h://127.0.0.1:9050?pipeline=1");
    CHECK(p.options.pipeline);
    p = parsed("socks5h://127.0.0.1:9050/?pipeline");
    CHECK(p.options.pipeline);
    p = parsed("socks5h://127.0.0.1:9050?optimistic=1");
    CHECK(p.options.optimistic);
    CHECK_FALSE(p.options.pipeline);  // the handshake implies it, the URL keeps what it says
    p = parsed("socks5h://127.0.0.1:9050?pipeline=1&optimistic");
    CHECK(p.options.optimistic);
    CHECK(p.options.pipeline);
    p = parsed("socks4a://h.test?optimistic=1&optimistic=0");
    CHECK_FALSE(p.options.optimistic);
}

TEST_CASE("the request built from a proxy carries its credentials and options") {
    const auto p = parsed("socks5h://u:p@127.0.0.1?pipeline=1");
    const auto req = p.make_request(address::host_name("x.test"), 80);
    CHECK(req.user == "u");
    CHECK(req.password == "p");
    CHECK(req.options.pipeline);
    CHECK(req.target.name == "x.test");
    CHECK_FALSE(validate(req));
}

TEST_CASE("malformed URLs get specific errors") {
    CHECK(failure("http://proxy.test") == error::url_bad_scheme);
    CHECK(failure("socks6://proxy.test") == error::url_bad_scheme);
    CHECK(failure("proxy.test:1080") == error::url_bad_syntax);
    CHECK(failure("socks5://") == error::url_bad_syntax);
    CHECK(failure("socks5://user@") == error::url_bad_syntax);
    CHECK(failure("socks5://[::1") == error::url_bad_syntax);
    CHECK(failure("socks5://[not-v6]:1") == error::url_bad_syntax);
    CHECK(failure("socks5://proxy.test/path") == error::url_bad_syntax);
    CHECK(failure("socks5://proxy.test:") == error::url_bad_port);
    CHECK(failure("socks5://proxy.test:0") == error::url_bad_port);
    CHECK(failure("socks5://proxy.test:65536") == error::url_bad_port);
    CHECK(failure("socks5://proxy.test:12ab") == error::url_bad_port);
    CHECK(failure("socks5://proxy.test:-1") == error::url_bad_port);
    CHECK(failure("socks5://a%zz:b@proxy.test") == error::url_bad_escape);
    CHECK(failure("socks5://a%4:b@proxy.test") == error::url_bad_escape);
    CHECK(failure("socks5://:secret@proxy.test") == error::password_without_user);
    CHECK(failure("socks4a://id:secret@proxy.test") == error::password_without_user);
    CHECK(failure("socks5://" + std::string(256, 'h')) == error::url_field_too_long);
    CHECK(failure("socks5://" + std::string(256, 'u') + "@h") == error::url_field_too_long);
    CHECK(failure("socks5://proxy.test?fast=1") == error::url_bad_option);
}

TEST_CASE("redacted form never shows the password") {
    CHECK(redacted(parsed("socks5h://alice:hunter2@proxy.test:9050")) ==
          "socks5h://alice:***@proxy.test:9050");
    CHECK(redacted(parsed("socks5://[::1]")) == "socks5h://[::1]:1080");
    CHECK(redacted(parsed("socks4://10.0.0.1:1")) == "socks4://10.0.0.1:1");
    char tiny[8];
    CHECK(format_redacted(parsed("socks5h://proxy.test"), tiny, sizeof tiny) == 7);
    CHECK(std::string(tiny) == "socks5h");
}

namespace {

// format_proxy_url, then parse_proxy_url: the proxy must come back whole.
proxy round_trip(const proxy& p, std::string* url_out = nullptr) {
    char url[max_url_size];
    const std::size_t n = format_proxy_url(p, url, sizeof url);
    REQUIRE(n < sizeof url);
    CHECK(url[n] == '\0');
    if (url_out) *url_out = std::string{url, n};
    return parsed(std::string_view{url, n});
}

void same(const proxy& a, const proxy& b) {
    CHECK(a.version == b.version);
    CHECK(a.host.view() == b.host.view());
    CHECK(a.port == b.port);
    CHECK(a.user.view() == b.user.view());
    CHECK(a.password.view() == b.password.view());
    CHECK(a.options.pipeline == b.options.pipeline);
    CHECK(a.options.optimistic == b.options.optimistic);
}

proxy make(socks_version v, std::string_view host, std::uint16_t port, std::string_view user = {},
           std::string_view password = {}, bool pipeline = false) {
    proxy p;
    p.version = v;
    REQUIRE(p.host.assign(host));
    p.port = port;
    REQUIRE(p.user.assign(user));
    REQUIRE(p.password.assign(password));
    p.options.pipeline = pipeline;
    return p;
}

}  // namespace

TEST_CASE("format_proxy_url: what it writes") {
    std::string url;
    round_trip(make(socks_version::v4, "10.0.0.1", 1080), &url);
    CHECK(url == "socks4://10.0.0.1:1080");
    round_trip(make(socks_version::v4a, "proxy.test", 1081, "ident"), &url);
    CHECK(url == "socks4a://ident@proxy.test:1081");
    round_trip(make(socks_version::v5, "2001:db8::1", 9050, "a b", "p:w@d", true), &url);
    CHECK(url == "socks5h://a%20b:p%3Aw%40d@[2001:db8::1]:9050?pipeline=1");
    auto eager = make(socks_version::v5, "127.0.0.1", 9050);
    eager.options.optimistic = true;
    round_trip(eager, &url);
    CHECK(url == "socks5h://127.0.0.1:9050?optimistic=1");
    eager.options.pipeline = true;
    round_trip(eager, &url);
    CHECK(url == "socks5h://127.0.0.1:9050?pipeline=1&optimistic=1");
    // Never in a log line: options are not secrets, but redacted URLs name the proxy only.
    char shown[max_url_size];
    format_redacted(eager, shown, sizeof shown);
    CHECK(std::string{shown} == "socks5h://127.0.0.1:9050");
    // socks5:// is read as socks5h:// (names go to the proxy either way).
    same(round_trip(parsed("socks5://u:p@proxy.test")), parsed("socks5h://u:p@proxy.test:1080"));
}

TEST_CASE("format_proxy_url round trip: hosts, ports, options") {
    for (const char* url :
         {"socks4://192.0.2.1:1", "socks4a://proxy.test:65535", "socks5h://[::1]:1080",
          "socks5h://[fe80::1]:1080?pipeline=1", "socks5h://[::ffff:192.0.2.1]:9050",
          "socks5h://u@h.test", "socks5h://u:p@127.0.0.1:9050/", "socks5h://h.test?pipeline=0",
          "socks5h://h.test?optimistic=1", "socks4a://h.test?optimistic",
          "socks5h://h.test?optimistic=1&pipeline=1", "socks5h://h.test?pipeline&optimistic=0"}) {
        CAPTURE(url);
        same(round_trip(parsed(url)), parsed(url));
    }
}

TEST_CASE("format_proxy_url round trip: every byte in user and password") {
    for (int c = 0; c < 256; ++c) {
        CAPTURE(c);
        const char ch = static_cast<char>(c);
        const std::string user = std::string{"u"} + ch + "x";
        const std::string pass = std::string{ch} + "pw" + ch;
        auto p = make(socks_version::v5, "proxy.test", 1080, user, pass);
        same(round_trip(p), p);
    }
}

TEST_CASE("format_proxy_url round trip: the longest fields fit max_url_size") {
    const std::string odd(255, '@');  // every byte escaped: three characters each
    const std::string host(255, 'h');
    auto p = make(socks_version::v5, host, 65535, odd, odd, true);
    p.options.optimistic = true;
    std::string url;
    same(round_trip(p, &url), p);
    CHECK(url.size() + 1 <= max_url_size);
    auto v6 = make(socks_version::v5, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 1, odd, odd);
    same(round_trip(v6), v6);
}

TEST_CASE("format_proxy_url: a short buffer is cut and terminated") {
    char small[12];
    const auto p = make(socks_version::v5, "proxy.test", 1080, "user", "secret");
    CHECK(format_proxy_url(p, small, sizeof small) == sizeof small - 1);
    CHECK(std::string{small} == "socks5h://u");
}
