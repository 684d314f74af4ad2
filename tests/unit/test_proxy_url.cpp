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
