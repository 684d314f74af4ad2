// The floor: the cheapest SOCKS5 client there is, in process. N sequential
// connects by name through the proxy (the name goes in the request, nothing
// is resolved), one echoed byte each, timed like bench/connect_loop.c
// ("median_us p90_us connect_median_us"; connected = handshake done).
// Usage: floor_client N PROXY_PORT HOST PORT [pipeline]
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "leakproof/handshake.hpp"

namespace {

using namespace leakproof;

bool run_handshake(int fd, const request& req) {
    client_handshake hs{req};
    for (;;) {
        const action act = hs.next();
        if (act.kind == action_kind::send) {
            if (write(fd, act.bytes.data(), act.bytes.size()) != ssize_t(act.bytes.size()))
                return false;
            hs.sent();
        } else if (act.kind == action_kind::receive) {
            const ssize_t n = read(fd, act.space.data(), act.space.size());
            if (n <= 0) return false;
            hs.received(std::size_t(n));
        } else {
            return act.kind == action_kind::done;
        }
    }
}

bool one_round(std::uint16_t proxy_port, const request& req,
               std::chrono::steady_clock::time_point& connected) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(proxy_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char c = 'x';
    bool ok = fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
              run_handshake(fd, req);
    connected = std::chrono::steady_clock::now();
    ok = ok && write(fd, &c, 1) == 1 && read(fd, &c, 1) == 1;
    if (fd >= 0) close(fd);
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: floor_client N PROXY_PORT HOST PORT [pipeline]\n");
        return 2;
    }
    const int n = std::atoi(argv[1]);
    const std::string host = argv[3];
    request req;
    req.target = address::host_name(host);
    req.port = static_cast<std::uint16_t>(std::atoi(argv[4]));
    req.options.pipeline = argc > 5 && std::string(argv[5]) == "pipeline";
    std::vector<double> times, connects;
    using us = std::chrono::duration<double, std::micro>;
    for (int i = 0; i < n; ++i) {
        const auto start = std::chrono::steady_clock::now();
        auto connected = start;
        if (!one_round(static_cast<std::uint16_t>(std::atoi(argv[2])), req, connected)) {
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
