// What the supervisor reads of a program's socket without taking it
// (supervisor/stand_in.hpp), read here of this process's own sockets, with
// the kernel's real /proc: the protocol, the inode, the TCP state and the
// UDP table. install() needs a seccomp notification; the restricted_getfd
// tests run it.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/stand_in.hpp"
#include "supervisor/unix_socket.hpp"

namespace st = lp::supervise::stand_in;

namespace {

// A socket closed with the test.
struct owned {
    int fd;
    explicit owned(int f) : fd(f) { REQUIRE(fd >= 0); }
    ~owned() { ::close(fd); }
};

st::socket_kind seen(int fd) {
    return st::identify(::getpid(), fd);
}

std::uint64_t inode_of(int fd) {
    struct stat s {};
    REQUIRE(::fstat(fd, &s) == 0);
    return s.st_ino;
}

sockaddr_in loopback_any_port() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

}  // namespace

TEST_CASE("stand_in: the protocol and inode of TCP and UDP sockets, IPv4 and IPv6") {
    struct {
        int domain, type;
    } cases[] = {{AF_INET, SOCK_STREAM},
                 {AF_INET6, SOCK_STREAM},
                 {AF_INET, SOCK_DGRAM},
                 {AF_INET6, SOCK_DGRAM}};
    for (auto c : cases) {
        owned s{::socket(c.domain, c.type | SOCK_CLOEXEC, 0)};
        auto k = seen(s.fd);
        CHECK(k.domain == c.domain);
        CHECK(k.type == c.type);
        CHECK(k.inode == inode_of(s.fd));
        CHECK(lp::supervise::socket_inode(::getpid(), s.fd) == k.inode);
    }
}

TEST_CASE("stand_in: what is no TCP or UDP socket is not stood in for") {
    owned unix_socket{::socket(AF_UNIX, SOCK_STREAM, 0)};
    CHECK(seen(unix_socket.fd).domain == -1);
    int pipe_ends[2];
    REQUIRE(::pipe(pipe_ends) == 0);
    CHECK(seen(pipe_ends[0]).domain == -1);
    ::close(pipe_ends[0]);
    ::close(pipe_ends[1]);
    CHECK(seen(1 << 20).domain == -1);  // no such descriptor
}

TEST_CASE("stand_in: a fresh TCP socket is in no table; listening and connected ones are") {
    owned fresh{::socket(AF_INET, SOCK_STREAM, 0)};
    CHECK(st::tcp_state(::getpid(), seen(fresh.fd)) == 0);

    owned listener{::socket(AF_INET, SOCK_STREAM, 0)};
    auto a = loopback_any_port();
    REQUIRE(::bind(listener.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listener.fd, 1) == 0);
    constexpr int tcp_listen = 10, tcp_established = 1;
    CHECK(st::tcp_state(::getpid(), seen(listener.fd)) == tcp_listen);

    socklen_t len = sizeof a;
    REQUIRE(::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    owned client{::socket(AF_INET, SOCK_STREAM, 0)};
    REQUIRE(::connect(client.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    CHECK(st::tcp_state(::getpid(), seen(client.fd)) == tcp_established);
    CHECK_FALSE(st::installed_stream(seen(client.fd).inode));  // made here, not by install()
}

TEST_CASE("stand_in: a UDP socket is in the UDP table once bound") {
    owned udp{::socket(AF_INET, SOCK_DGRAM, 0)};
    CHECK_FALSE(st::in_udp_table(::getpid(), seen(udp.fd)));
    auto a = loopback_any_port();
    REQUIRE(::bind(udp.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    CHECK(st::in_udp_table(::getpid(), seen(udp.fd)));
    CHECK(st::find_datagram(seen(udp.fd).inode) == -1);  // not installed here
}
