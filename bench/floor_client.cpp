// The floor: the cheapest SOCKS5 client there is, in process. N sequential
// connects by name through the proxy (the name goes in the request, nothing
// is resolved), one echoed byte each, timed like bench/connect_loop.c
// ("median_us p90_us connect_median_us"; connected = handshake done).
// `deadline`: the same client bounding its connect and every wait for an
// answer, as any client with a timeout must (and leakproof does): the
// socket is non-blocking during the handshake and each answer is polled
// for. Not the goal's comparator; it shows what a deadline costs.
// Usage: floor_client N PROXY_PORT HOST PORT [pipeline] [deadline]
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "leakproof/handshake.hpp"

namespace {

using namespace leakproof;

constexpr int timeout_ms = 120000;

bool wait_for(int fd, short events) {
    pollfd p{fd, events, 0};
    return poll(&p, 1, timeout_ms) == 1;
}

// Blocking calls; with `deadline`, non-blocking ones after a poll (the
// first send waits for the connect under way, as a TCP send does).
ssize_t send_all(int fd, const unsigned char* p, std::size_t n, bool deadline) {
    if (!deadline) return write(fd, p, n);
    ssize_t r;
    while ((r = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL)) < 0 && errno == EAGAIN)
        if (!wait_for(fd, POLLOUT)) return -1;
    return r;
}

ssize_t receive(int fd, unsigned char* p, std::size_t n, bool deadline) {
    if (!deadline) return read(fd, p, n);
    return wait_for(fd, POLLIN) ? recv(fd, p, n, MSG_DONTWAIT) : -1;
}

bool run_handshake(int fd, const request& req, bool deadline) {
    client_handshake hs{req};
    for (;;) {
        const action act = hs.next();
        if (act.kind == action_kind::send) {
            if (send_all(fd, act.bytes.data(), act.bytes.size(), deadline) !=
                ssize_t(act.bytes.size()))
                return false;
            hs.sent();
        } else if (act.kind == action_kind::receive) {
            const ssize_t n = receive(fd, act.space.data(), act.space.size(), deadline);
            if (n <= 0) return false;
            hs.received(std::size_t(n));
        } else {
            return act.kind == action_kind::done;
        }
    }
}

bool connect_and_handshake(int fd, const sockaddr_in& sa, const request& req, bool deadline) {
    const auto* to = reinterpret_cast<const sockaddr*>(&sa);
    if (!deadline) return connect(fd, to, sizeof sa) == 0 && run_handshake(fd, req, false);
    const int mode = fcntl(fd, F_GETFL);
    if (mode < 0 || fcntl(fd, F_SETFL, mode | O_NONBLOCK) != 0) return false;
    bool ok =
        (connect(fd, to, sizeof sa) == 0 || errno == EINPROGRESS) && run_handshake(fd, req, true);
    return fcntl(fd, F_SETFL, mode) == 0 && ok;
}

bool one_round(std::uint16_t proxy_port, const request& req, bool deadline,
               std::chrono::steady_clock::time_point& connected) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(proxy_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char c = 'x';
    bool ok = fd >= 0 && connect_and_handshake(fd, sa, req, deadline);
    connected = std::chrono::steady_clock::now();
    ok = ok && write(fd, &c, 1) == 1 && read(fd, &c, 1) == 1;
    if (fd >= 0) close(fd);
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: floor_client N PROXY_PORT HOST PORT [pipeline] [deadline]\n");
        return 2;
    }
    const int n = std::atoi(argv[1]);
    const std::string host = argv[3];
    request req;
    req.target = address::host_name(host);
    req.port = static_cast<std::uint16_t>(std::atoi(argv[4]));
    bool deadline = false;
    for (int i = 5; i < argc; ++i) {
        const std::string opt = argv[i];
        if (opt == "pipeline") {
            req.options.pipeline = true;
        } else if (opt == "deadline") {
            deadline = true;
        } else {
            std::fprintf(stderr, "floor_client: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    std::vector<double> times, connects;
    using us = std::chrono::duration<double, std::micro>;
    for (int i = 0; i < n; ++i) {
        const auto start = std::chrono::steady_clock::now();
        auto connected = start;
        if (!one_round(static_cast<std::uint16_t>(std::atoi(argv[2])), req, deadline, connected)) {
            std::fprintf(stderr, "floor_client: round %d failed\n", i);
            return 1;
        }
        times.push_back(us(std::chrono::steady_clock::now() - start).count());
        connects.push_back(us(connected - start).count());
    }
    std::sort(times.begin(), times.end());
    std::sort(connects.begin(), connects.end());
    std::printf("%.1f %.1f %.1f\n", n ? times[std::size_t(n) / 2] : 0.0,
                n ? times[std::size_t(n) * 9 / 10] : 0.0, n ? connects[std::size_t(n) / 2] : 0.0);
    return 0;
}
