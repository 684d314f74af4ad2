#include "supervisor/dns_responder.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "runtime/log.hpp"
#include "runtime/placeholder.hpp"
#include "supervisor/dns_message.hpp"

namespace lp::supervise::dns {
namespace {

constexpr int tcp_idle_ms = 10000;

std::uint16_t get16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

// The answer record's data for `q` into `rdata` (its length), or 0 with
// the rcode when there is none.
std::size_t rdata_for(const question& q, std::uint8_t (&rdata)[256], std::uint8_t& rcode) noexcept {
    if (q.klass != class_in || q.name_len == 0) return rcode = rcode_refused, 0;
    if (q.type == type_ptr) {
        net::ip a;
        char name[256];
        std::size_t len = 0;
        if (!reverse_address(q.view(), a) || !placeholder::name_of(a, name, len))
            return rcode = rcode_nxdomain, 0;
        std::size_t n = encode_name({name, len}, rdata);
        if (n == 0) rcode = rcode_refused;
        return n;
    }
    if (q.type != type_a && q.type != type_aaaa) return rcode = rcode_refused, 0;
    std::uint8_t b[16] = {};
    std::uint32_t index = 0;
    if (is_localhost(q.view())) {
        if (q.type == type_a)
            b[0] = 127, b[3] = 1;
        else
            b[15] = 1;
    } else if (!placeholder::assign(q.view(), index)) {
        return rcode = rcode_refused, 0;  // the map is full of fresh entries
    } else if (q.type == type_a) {
        placeholder::v4_of(index, reinterpret_cast<std::uint8_t(&)[4]>(b));
    } else {
        placeholder::v6_of(index, b);
    }
    std::size_t n = q.type == type_a ? 4 : 16;
    std::memcpy(rdata, b, n);
    return n;
}

void log_query(const question& q, std::uint8_t rcode) noexcept {
    if (!log::enabled(log::level::verbose)) return;
    auto ln = log::start();
    ln << "supervisor: dns query ";
    if (q.type == type_a)
        ln << "A";
    else if (q.type == type_aaaa)
        ln << "AAAA";
    else if (q.type == type_ptr)
        ln << "PTR";
    else
        ln << "type " << q.type;
    ln << " " << q.view() << ": ";
    // A/AAAA get placeholders, PTR the name behind one: nothing is looked up.
    ln << (rcode == 0                ? "answered from the placeholder map"
           : rcode == rcode_nxdomain ? "NXDOMAIN"
                                     : "REFUSED");
    log::emit(log::level::verbose, ln);
}

// When each local port was admitted (monotonic seconds + 1; 0: never).
std::array<std::atomic<std::uint32_t>, 65536> admitted{};
constexpr std::uint32_t admit_seconds = 600;

std::uint32_t now_seconds() noexcept {
    timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<std::uint32_t>(t.tv_sec) + 1;
}

bool is_admitted(const sockaddr_storage& from) noexcept {
    std::uint16_t port = 0;
    if (from.ss_family == AF_INET)
        port = reinterpret_cast<const sockaddr_in&>(from).sin_port;
    else if (from.ss_family == AF_INET6)
        port = reinterpret_cast<const sockaddr_in6&>(from).sin6_port;
    std::uint32_t since = admitted[ntohs(port)].load(std::memory_order_relaxed);
    return since != 0 && now_seconds() - since < admit_seconds;
}

void serve_udp(int fd) noexcept {
    std::uint8_t buf[4096], out[4096];
    for (;;) {
        sockaddr_storage from;
        socklen_t len = sizeof from;
        ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (!is_admitted(from)) continue;
        auto size = answer({buf, static_cast<std::size_t>(n)}, out);
        if (size > 0) ::sendto(fd, out, size, 0, reinterpret_cast<sockaddr*>(&from), len);
    }
}

bool read_full(int fd, std::uint8_t* p, std::size_t n) {
    while (n > 0) {
        pollfd pf{fd, POLLIN, 0};
        if (::poll(&pf, 1, tcp_idle_ms) <= 0) return false;
        ssize_t got = ::recv(fd, p, n, 0);
        if (got <= 0) return false;
        p += got;
        n -= static_cast<std::size_t>(got);
    }
    return true;
}

// TCP connections served at once; more wait in the listen queue. Each has
// a thread and 64 KiB of buffer: the program chooses how many it opens.
constexpr int max_tcp_connections = 16;
std::atomic<int> tcp_connections{0};

// One TCP connection: length-prefixed messages until EOF or idleness.
void serve_tcp_conn(int fd) noexcept {
    std::uint8_t buf[65535], out[4096 + 2];
    std::uint8_t len[2];
    while (read_full(fd, len, 2)) {
        std::size_t n = get16(len);
        if (!read_full(fd, buf, n)) break;
        auto size = answer({buf, n}, {out + 2, sizeof out - 2});
        if (size == 0) break;
        out[0] = static_cast<std::uint8_t>(size >> 8);
        out[1] = static_cast<std::uint8_t>(size);
        if (::send(fd, out, size + 2, MSG_NOSIGNAL) != static_cast<ssize_t>(size + 2)) break;
    }
    ::close(fd);
    tcp_connections.fetch_sub(1, std::memory_order_relaxed);
}

void serve_tcp(int listener) noexcept {
    for (;;) {
        // At the cap: accept nothing until a connection ends (bounded wait).
        while (tcp_connections.load(std::memory_order_relaxed) >= max_tcp_connections)
            ::usleep(10000);
        sockaddr_storage from{};
        socklen_t len = sizeof from;
        int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&from), &len, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue;
            return;
        }
        if (!is_admitted(from)) {
            ::close(fd);
            continue;
        }
        tcp_connections.fetch_add(1, std::memory_order_relaxed);
        try {
            std::thread{serve_tcp_conn, fd}.detach();
        } catch (...) {
            // No thread (no memory): this query goes unanswered, the
            // program's lookup fails; the responder goes on.
            ::close(fd);
            tcp_connections.fetch_sub(1, std::memory_order_relaxed);
        }
    }
}

int bound_socket(int type, sockaddr_in& where) {
    int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&where), sizeof where) != 0 ||
        (type == SOCK_STREAM && ::listen(fd, 64) != 0)) {
        int err = errno;
        ::close(fd);
        errno = err;
        return -1;
    }
    socklen_t len = sizeof where;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&where), &len);
    return fd;
}

}  // namespace

std::size_t answer(std::span<const std::uint8_t> query, std::span<std::uint8_t> out) noexcept {
    if (!is_query(query)) return 0;  // short, or a response
    question q;
    if (!parse_question(query, q)) return write_response(query, nullptr, rcode_refused, {}, out);
    std::uint8_t rdata[256];
    std::uint8_t rcode = 0;
    std::size_t n = rdata_for(q, rdata, rcode);
    log_query(q, rcode);
    return write_response(query, &q, rcode, {rdata, n}, out);
}

namespace {

// The sockets start() bound; their threads start with the first admit():
// most programs (every dynamic one) never send us a query.
int udp_socket = -1, tcp_socket = -1;
std::once_flag threads_started;

}  // namespace

void admit(std::uint16_t port) noexcept {
    admitted[port].store(now_seconds(), std::memory_order_relaxed);
    try {
        std::call_once(threads_started, [] {
            std::thread{serve_udp, udp_socket}.detach();
            std::thread{serve_tcp, tcp_socket}.detach();
        });
    } catch (...) {
        // No thread: queries go unanswered and the program's lookup times
        // out; nothing is sent anywhere else.
    }
}

void stop() noexcept {
    for (int* fd : {&udp_socket, &tcp_socket})
        if (*fd >= 0) ::close(std::exchange(*fd, -1));
}

std::pair<int, int> descriptors() noexcept {
    return {udp_socket, tcp_socket};
}

bool start(sockaddr_in& where) noexcept {
    where = {};
    where.sin_family = AF_INET;
    where.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // UDP picks the port, TCP takes the same one (retry if it is taken).
    for (int attempt = 0; attempt < 20; ++attempt) {
        where.sin_port = 0;
        int udp = bound_socket(SOCK_DGRAM, where);
        if (udp < 0) return false;
        int tcp = bound_socket(SOCK_STREAM, where);
        if (tcp < 0) {
            ::close(udp);
            continue;
        }
        udp_socket = udp;
        tcp_socket = tcp;
        return true;
    }
    errno = EADDRINUSE;
    return false;
}

}  // namespace lp::supervise::dns
