// Cost of the sans-IO core: one SOCKS5 CONNECT by name (greeting, method
// reply, request, reply), encoded and parsed in memory, N times.
// `core_cost N` prints nanoseconds per handshake; bench/core_cost.sh runs it
// under callgrind for an instruction count that does not depend on the noise
// of the machine.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "leakproof/handshake.hpp"

namespace {

using namespace leakproof;

// Returns whether it finished (with the expected port) so the compiler cannot
// drop the work.
bool one_handshake(const request& req) {
    static constexpr std::uint8_t method_reply[] = {0x05, 0x00};
    static constexpr std::uint8_t connect_reply[] = {0x05, 0x00, 0x00, 0x01, 127,
                                                     0,    0,    1,    0x1F, 0x90};
    client_handshake hs{req};
    hs.sent();  // greeting
    hs.feed(method_reply);
    hs.sent();  // request
    hs.feed(connect_reply);
    hs.feed({connect_reply + 5, sizeof connect_reply - 5});
    return hs.finished() && hs.result().port == 8080;
}

}  // namespace

int main(int argc, char** argv) {
    const long n = argc > 1 ? std::atol(argv[1]) : 1'000'000;
    request req;
    req.target = address::host_name("web.only-proxy.test");
    req.port = 443;
    long ok = 0;
    const auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < n; ++i) ok += one_handshake(req);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    const double ns = std::chrono::duration<double, std::nano>(elapsed).count();
    std::printf("core: %ld SOCKS5 handshakes, %.1f ns each\n", n, n ? ns / double(n) : 0.0);
    return ok == n ? 0 : 1;
}
