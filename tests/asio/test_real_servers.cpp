// The Asio layer against real SOCKS servers: dante, microsocks and OpenSSH's
// ssh -D, each protocol × authentication × address type that the server
// supports. The destination is this process's own server; by name it is
// web.only-proxy.test, which only the proxies can resolve.
#include "support.hpp"

namespace {

using leakproof::error;

enum class target { name, ipv4, ipv6 };

const char* describe(target t) {
    switch (t) {
        case target::name: return "by name";
        case target::ipv4: return "to 127.0.0.1";
        case target::ipv6: return "to ::1";
    }
    return "";
}

lptest::outcome fetch_via(const std::string& url, target t) {
    auto& dest = lptest::destination::instance();
    switch (t) {
        case target::name:
            return lptest::fetch(lptest::proxy(url), lptest::only_proxy_name, dest.v4_port());
        case target::ipv4: return lptest::fetch(lptest::proxy(url), "127.0.0.1", dest.v4_port());
        case target::ipv6: return lptest::fetch(lptest::proxy(url), "::1", dest.v6_port());
    }
    return {};
}

void expect_connects(const std::string& url, std::initializer_list<target> targets) {
    for (target t : targets) {
        INFO(url << " " << describe(t));
        lptest::outcome out = fetch_via(url, t);
        CHECK_MESSAGE(!out.error, out.error.message());
        CHECK(out.data == lptest::banner);
    }
}

void expect_error(const std::string& url, target t, leakproof::error expected) {
    INFO(url << " " << describe(t));
    lptest::outcome out = fetch_via(url, t);
    CHECK_MESSAGE(out.error == expected, out.error.message());
}

std::string with_user(const char* scheme, const std::string& user, const std::string& password,
                      const std::string& server) {
    return std::string(scheme) + user + ":" + password + "@" + server;
}

}  // namespace

TEST_SUITE("dante") {
    TEST_CASE("SOCKS5 and SOCKS4 without authentication") {
        std::string server = lptest::server("LP_DANTE");
        expect_connects("socks5h://" + server, {target::name, target::ipv4});
        expect_connects("socks5://" + server,
                        {target::name});  // socks5:// never resolves locally either
        expect_connects("socks4://" + server, {target::ipv4});
    }

    TEST_CASE("SOCKS4 refuses a name before connecting: never resolved locally") {
        std::string server = lptest::server("LP_DANTE");
        expect_error("socks4://" + server, target::name, error::name_needs_socks4a);
        expect_error("socks4://" + server, target::ipv6, error::ipv6_needs_socks5);
    }

    TEST_CASE("RFC 1929 username/password") {
        std::string server = lptest::server("LP_DANTE_AUTH");
        std::string user = lptest::env("LP_DANTE_USER"), pass = lptest::env("LP_DANTE_PASS");
        expect_connects(with_user("socks5h://", user, pass, server), {target::name, target::ipv4});
        expect_connects(with_user("socks5h://", user, pass, server) + "?pipeline=1",
                        {target::name});
        expect_error(with_user("socks5h://", user, pass + "x", server), target::name,
                     error::auth_failed);
        expect_error("socks5h://" + server, target::name, error::no_acceptable_method);
    }

    TEST_CASE("a name the proxy cannot resolve is the proxy's error") {
        std::string server = lptest::server("LP_DANTE");
        auto out = lptest::fetch(lptest::proxy("socks5h://" + server), "nowhere.invalid", 80);
        CHECK(out.error);
        CHECK(leakproof::to_std_error_code(out.error).category() == leakproof::error_category());
    }
}

TEST_SUITE("microsocks") {
    TEST_CASE("SOCKS5 by name, IPv4 and IPv6") {
        expect_connects("socks5h://" + lptest::server("LP_MICROSOCKS"),
                        {target::name, target::ipv4, target::ipv6});
    }

    TEST_CASE("RFC 1929 username/password") {
        std::string server = lptest::server("LP_MICROSOCKS_AUTH");
        std::string user = lptest::env("LP_MICROSOCKS_USER");
        std::string pass = lptest::env("LP_MICROSOCKS_PASS");
        expect_connects(with_user("socks5h://", user, pass, server),
                        {target::name, target::ipv4, target::ipv6});
        expect_error(with_user("socks5h://", user, pass + "x", server), target::name,
                     error::auth_failed);
        expect_error("socks5h://" + server, target::name, error::no_acceptable_method);
    }
}

TEST_SUITE("ssh") {
    TEST_CASE("ssh -D: SOCKS5 by name, IPv4, IPv6 and SOCKS4") {
        std::string server = lptest::server("LP_SSH_SOCKS");
        expect_connects("socks5h://" + server, {target::name, target::ipv4, target::ipv6});
        expect_connects("socks4://" + server, {target::ipv4});
    }

    TEST_CASE("the sshd itself given as the proxy: the error says an SSH server answered") {
        const std::string sshd = lptest::server("LP_SSHD");
        for (const char* scheme : {"socks5h://", "socks4a://"}) {
            expect_error(scheme + sshd, target::name, error::answered_ssh);
            lptest::outcome out = fetch_via(scheme + sshd, target::name);
            CHECK(out.error == std::errc::protocol_error);  // what checks for bad_version see
            CHECK(out.error.message() == "proxy: answered like an SSH server, not SOCKS");
        }
    }
}
