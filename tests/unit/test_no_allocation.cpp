// The core allocates nothing: count every operator new while handshakes and
// URL parsing run.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "exchange.hpp"
#include "leakproof/proxy.hpp"

namespace {
std::atomic<long> allocations{0};
}

void* operator new(std::size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

TEST_CASE("a full pipelined SOCKS5 exchange and a URL parse allocate nothing") {
    using namespace leakproof;
    const std::uint8_t answer[] = {0x05, 0x02, 0x01, 0x00, 0x05, 0x00, 0x00,
                                   0x03, 3,    'b',  'n',  'd',  0,    80};
    const long before = allocations.load();
    proxy p;
    const auto url_ec = parse_proxy_url("socks5h://user:pass@127.0.0.1:9050?pipeline=1", p);
    client_handshake hs{p.make_request(address::host_name("example.com"), 443)};
    const auto act = hs.next();
    hs.sent();
    const std::size_t taken = hs.feed(answer) + hs.feed({answer + 2, sizeof answer - 2}) +
                              hs.feed({answer + 4, sizeof answer - 4}) +
                              hs.feed({answer + 9, sizeof answer - 9});
    const long after = allocations.load();
    CHECK_FALSE(url_ec);
    CHECK(act.kind == action_kind::send);
    CHECK(taken == sizeof answer);
    CHECK(hs.finished());
    CHECK(after == before);
}
