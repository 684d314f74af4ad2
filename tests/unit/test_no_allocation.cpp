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

TEST_CASE("BIND's two replies, UDP ASSOCIATE and the datagram codec allocate nothing") {
    using namespace leakproof;
    const std::uint8_t method[] = {0x05, 0x00};
    const std::uint8_t listening[] = {0x05, 0x00, 0x00, 0x01, 127, 0, 0, 1, 0xC3, 0x50};
    const std::uint8_t peer[] = {0x05, 0x00, 0x00, 0x03, 4, 'p', 'e', 'e', 'r', 0x9C, 0x40};
    const std::uint8_t relay[] = {0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0x2F, 0x59};
    std::uint8_t datagram[max_udp_header + 3] = {};
    // feed() takes one message piece at a time: a SOCKS5 reply is its head, then its tail.
    auto feed_all = [](handshake_machine& hs, std::span<const std::uint8_t> in) {
        while (!in.empty()) {
            const std::size_t n = hs.feed(in);
            if (n == 0) break;
            in = in.subspan(n);
        }
    };
    const long before = allocations.load();

    request bind_req;
    bind_req.cmd = command::bind;
    bind_req.target = address::host_name("ftp.example");
    client_handshake bind{bind_req};
    bind.sent();
    feed_all(bind, method);
    bind.sent();
    feed_all(bind, listening);
    const bool was_listening = bind.listening();
    const bool awaiting = bind.await_peer();
    feed_all(bind, peer);

    request udp_req;
    udp_req.cmd = command::udp_associate;
    udp_req.target = address::ipv4({});
    client_handshake udp{udp_req};
    udp.sent();
    feed_all(udp, method);
    udp.sent();
    feed_all(udp, relay);

    const auto header = encode_udp_header(address::host_name("dns.example"), 53, datagram);
    udp_datagram parsed;
    const auto parse_ec = parse_udp_datagram({datagram, header.size + 3}, parsed);
    const long after = allocations.load();

    CHECK(was_listening);
    CHECK(awaiting);
    CHECK(bind.finished());
    CHECK(bind.result().bound.name == "peer");
    CHECK(udp.finished());
    CHECK(udp.result().means_proxy_address());
    CHECK_FALSE(header.error);
    CHECK_FALSE(parse_ec);
    CHECK(parsed.payload.size() == 3);
    CHECK(after == before);
}
