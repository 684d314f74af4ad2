// libFuzzer target over the reply parser: any bytes a hostile proxy may send,
// in any chunking, against every kind of request, BIND's second reply
// included. The handshake must never take more bytes than it asked for, never
// overrun its buffer, and end in exactly one of done/failed/still-receiving.
// The same bytes also go to the UDP datagram parser, as a relay would send
// them.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "leakproof/handshake.hpp"

namespace {

using namespace leakproof;

// `shape` picks version, command, target and options; `mode` (the high bits
// of the second byte) turns some of them into BIND or UDP ASSOCIATE.
request request_for(std::uint8_t shape, std::uint8_t mode) {
    static const char name[] = "fuzz.example";
    request r;
    r.version = static_cast<socks_version>(shape % 3);
    r.cmd = (shape & 0x08) ? command::resolve : command::connect;
    if ((shape & 0x30) == 0x30 && r.version == socks_version::v5) r.cmd = command::resolve_ptr;
    if (mode >= 12) r.cmd = command::bind;
    if (mode >= 14 && r.version == socks_version::v5) r.cmd = command::udp_associate;
    r.target = (shape & 0x04) || r.cmd == command::resolve_ptr ? address::ipv4({192, 0, 2, 1})
                                                               : address::host_name(name);
    r.port = 443;
    if (shape & 0x40) r.user = "user";
    if ((shape & 0x40) && r.version == socks_version::v5) r.password = "pass";
    r.options.pipeline = (shape & 0x80) != 0;
    r.options.lenient_socks4_reply_version = (shape & 0x10) != 0;
    r.options.lenient_auth_reply_version = (shape & 0x20) != 0;
    r.options.check_bind_peer = (mode & 1) == 0;
    return r;
}

void check(bool ok) {
    if (!ok) std::abort();
}

// Plays the proxy's bytes against `hs`; returns how many it took.
std::size_t drive(handshake_machine& hs, const std::uint8_t* data, std::size_t size,
                  std::size_t chunk, std::size_t buffer) {
    std::size_t at = 0;
    for (int steps = 0; steps < 4096; ++steps) {
        const action act = hs.next();
        if (act.kind == action_kind::send) {
            check(!act.bytes.empty() && act.bytes.size() <= buffer);
            hs.sent();
            continue;
        }
        // BIND: after the announcement, the second reply from the same bytes.
        if (act.kind == action_kind::done && hs.listening()) {
            check(hs.await_peer() && !hs.listening());
            continue;
        }
        if (act.kind != action_kind::receive) break;
        check(!act.space.empty() && act.space.size() <= buffer);
        if (at == size) {
            hs.closed();
            check(hs.failed());
            break;
        }
        const std::size_t offered = std::min(chunk, size - at);
        const std::size_t taken = hs.feed({data + at, offered});
        check(taken > 0 && taken <= offered && taken <= act.space.size());
        at += taken;
    }
    if (hs.finished()) {
        check(hs.result().bound.name.size() <= 255);
        check(hs.feed({data, size}) == 0);
    }
    check(hs.finished() || hs.failed() || hs.next().kind == action_kind::receive);
    check(!hs.listening());  // the loop always asked for the second reply
    return at;
}

// A relay's datagram: the header is within the bytes, the payload is what follows it.
void parse_datagram(const std::uint8_t* data, std::size_t size) {
    udp_datagram d;
    if (parse_udp_datagram({data, size}, d)) return;
    const std::size_t header = size - d.payload.size();
    check(header >= 4 + 1 + 1 + 2 && header <= max_udp_header);
    check(d.payload.data() == data + header);
    check(d.source.type != address::kind::name || !d.source.name.empty());
    // Written back, the header is the same from ATYP on (RSV is not checked).
    const bool encodable = d.port != 0 && d.source.name.find('\0') == std::string_view::npos;
    if (!encodable) return;
    std::uint8_t again[max_udp_header];
    const udp_header_result r = encode_udp_header(d.source, d.port, again);
    check(!r.error && r.size == header && again[2] == 0);
    check(std::memcmp(again + 3, data + 3, header - 3) == 0);
}

}  // namespace

// The same bytes against a handshake with the worst-case buffer and one with
// exactly buffer_size(req) on the heap (where ASan sees an overrun): they
// take the same bytes and agree, except that the tight one may drop a name.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    parse_datagram(data + 2, size - 2);
    const request req = request_for(data[0], data[1] >> 4);
    const std::size_t chunk = data[1] % 16 + 1;
    client_handshake roomy{req};
    const std::size_t tight_size = handshake_machine::buffer_size(req);
    std::unique_ptr<std::uint8_t[]> buffer(new std::uint8_t[tight_size]);
    handshake_machine tight{req, {buffer.get(), tight_size}};
    const std::size_t took = drive(roomy, data + 2, size - 2, chunk, client_handshake::buffer_size);
    check(drive(tight, data + 2, size - 2, chunk, tight_size) == took);
    check(roomy.finished() == tight.finished() && roomy.error() == tight.error());
    if (roomy.finished()) {
        const address& a = roomy.result().bound;
        const address& b = tight.result().bound;
        check(a.type == b.type && a.ip == b.ip && roomy.result().port == tight.result().port);
        check(a.name == b.name || b.name.empty());
    }
    return 0;
}
