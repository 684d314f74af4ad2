#include "supervisor/dns_responder.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "runtime/log.hpp"
#include "runtime/placeholder.hpp"

namespace lp::supervise::dns {
namespace {

constexpr std::uint16_t type_a = 1;
constexpr std::uint16_t type_ptr = 12;
constexpr std::uint16_t type_aaaa = 28;
constexpr std::uint16_t class_in = 1;
constexpr std::uint8_t rcode_nxdomain = 3;
constexpr std::uint8_t rcode_refused = 5;
// Short: a placeholder is only promised to its name for 30 s after its last use.
constexpr std::uint32_t ttl = 10;
constexpr int tcp_idle_ms = 10000;

std::uint16_t get16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

void put16(std::string& out, unsigned v) {
    out += static_cast<char>((v >> 8) & 0xff);
    out += static_cast<char>(v & 0xff);
}

struct question {
    std::string name;  // dotted, no final dot
    std::uint16_t type = 0;
    std::uint16_t klass = 0;
    std::size_t end = 0;  // offset just past the question
};

// The first question; false when malformed (compression is not allowed
// there in practice, so it is not followed).
bool parse_question(std::span<const std::uint8_t> q, question& out) {
    std::size_t i = 12;
    while (i < q.size() && q[i] != 0) {
        std::size_t len = q[i];
        if (len > 63 || i + 1 + len >= q.size()) return false;
        if (!out.name.empty()) out.name += '.';
        out.name.append(reinterpret_cast<const char*>(&q[i + 1]), len);
        i += 1 + len;
    }
    if (i + 5 > q.size() || out.name.size() > 253) return false;
    out.type = get16(&q[i + 1]);
    out.klass = get16(&q[i + 3]);
    out.end = i + 5;
    return true;
}

bool ends_with(const std::string& s, const char* suffix) {
    std::size_t n = std::strlen(suffix);
    return s.size() >= n && strcasecmp(s.c_str() + s.size() - n, suffix) == 0;
}

bool is_localhost(const std::string& n) {
    return strcasecmp(n.c_str(), "localhost") == 0 || ends_with(n, ".localhost");
}

// "4.3.2.1.in-addr.arpa" or the 32 nibbles of ip6.arpa → the address.
bool reverse_address(const std::string& name, net::ip& out) {
    std::string text;
    if (ends_with(name, ".in-addr.arpa")) {
        std::string rev = name.substr(0, name.size() - 13);
        std::string parts[4];
        int n = 0;
        for (char ch : rev) {
            if (ch == '.') {
                if (++n > 3) return false;
            } else {
                parts[n] += ch;
            }
        }
        if (n != 3) return false;
        text = parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0];
    } else if (ends_with(name, ".ip6.arpa") && name.size() == 64 + 8) {
        for (int i = 62; i >= 0; i -= 2) {
            text += name[static_cast<std::size_t>(i)];
            if (i % 8 == 0 && i > 0) text += ':';
        }
    } else {
        return false;
    }
    return net::parse_ip(text, out);
}

void put_name(std::string& out, std::string_view name) {
    while (!name.empty()) {
        auto dot = name.find('.');
        auto label = name.substr(0, dot);
        out += static_cast<char>(label.size());
        out += label;
        name = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
    }
    out += '\0';
}

// The answer record's data for `q`, or an rcode when there is none.
bool rdata_for(const question& q, std::string& rdata, std::uint8_t& rcode) {
    if (q.klass != class_in || q.name.empty()) return rcode = rcode_refused, false;
    if (q.type == type_ptr) {
        net::ip a;
        char name[256];
        std::size_t len = 0;
        if (!reverse_address(q.name, a) || !placeholder::name_of(a, name, len))
            return rcode = rcode_nxdomain, false;
        put_name(rdata, {name, len});
        return true;
    }
    if (q.type != type_a && q.type != type_aaaa) return rcode = rcode_refused, false;
    std::uint8_t b[16] = {};
    std::uint32_t index = 0;
    if (is_localhost(q.name)) {
        if (q.type == type_a)
            b[0] = 127, b[3] = 1;
        else
            b[15] = 1;
    } else if (!placeholder::assign(q.name, index)) {
        return rcode = rcode_refused, false;  // the map is full of fresh entries
    } else if (q.type == type_a) {
        placeholder::v4_of(index, reinterpret_cast<std::uint8_t(&)[4]>(b));
    } else {
        placeholder::v6_of(index, b);
    }
    rdata.assign(reinterpret_cast<const char*>(b), q.type == type_a ? 4 : 16);
    return true;
}

void log_query(const question& q, std::uint8_t rcode) {
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
    ln << " " << q.name << ": ";
    // A/AAAA get placeholders, PTR the name behind one: nothing is looked up.
    ln << (rcode == 0                ? "answered from the placeholder map"
           : rcode == rcode_nxdomain ? "NXDOMAIN"
                                     : "REFUSED");
    log::emit(log::level::verbose, ln);
}

std::string respond(std::span<const std::uint8_t> query) {
    question q;
    std::uint8_t rcode = 0;
    std::string rdata;
    bool parsed = get16(&query[4]) == 1 && parse_question(query, q);
    bool answered = parsed && rdata_for(q, rdata, rcode);
    if (!parsed) rcode = rcode_refused;
    if (parsed) log_query(q, rcode);
    std::string out;
    put16(out, get16(&query[0]));  // id
    // QR, opcode 0, RD copied, RA, rcode.
    put16(out, 0x8000u | (query[2] & 0x01u) << 8 | 0x80u | rcode);
    put16(out, parsed ? 1 : 0);
    put16(out, answered ? 1 : 0);
    put16(out, 0);
    put16(out, 0);
    if (parsed) out.append(reinterpret_cast<const char*>(&query[12]), q.end - 12);
    if (!answered) return out;
    put16(out, 0xc00c);  // the name: a pointer to the question's
    put16(out, q.type);
    put16(out, class_in);
    put16(out, ttl >> 16);
    put16(out, ttl & 0xffff);
    put16(out, static_cast<unsigned>(rdata.size()));
    return out + rdata;
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

void serve_udp(int fd) {
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

// One TCP connection: length-prefixed messages until EOF or idleness.
void serve_tcp_conn(int fd) {
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
}

void serve_tcp(int listener) {
    for (;;) {
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
        std::thread{serve_tcp_conn, fd}.detach();
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
    if (query.size() < 12 || (query[2] & 0x80) != 0) return 0;  // short, or a response
    try {
        auto r = respond(query);
        if (r.size() > out.size()) return 0;
        std::memcpy(out.data(), r.data(), r.size());
        return r.size();
    } catch (...) {
        return 0;  // out of memory: the client times out, nothing leaks
    }
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
