// libFuzzer target over the reply parser: any bytes a hostile proxy may send,
// in any chunking, against every kind of request. The handshake must never
// take more bytes than it asked for, never overrun its buffer, and end in
// exactly one of done/failed/still-receiving.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "leakproof/handshake.hpp"

namespace {

using namespace leakproof;

request request_for(std::uint8_t shape) {
    static const char name[] = "fuzz.example";
    request r;
    r.version = static_cast<socks_version>(shape % 3);
    r.cmd = (shape & 0x08) ? command::resolve : command::connect;
    if ((shape & 0x30) == 0x30 && r.version == socks_version::v5) r.cmd = command::resolve_ptr;
    r.target = (shape & 0x04) || r.cmd == command::resolve_ptr ? address::ipv4({192, 0, 2, 1})
                                                               : address::host_name(name);
    r.port = 443;
    if (shape & 0x40) r.user = "user";
    if ((shape & 0x40) && r.version == socks_version::v5) r.password = "pass";
    r.options.pipeline = (shape & 0x80) != 0;
    r.options.lenient_socks4_reply_version = (shape & 0x10) != 0;
    r.options.lenient_auth_reply_version = (shape & 0x20) != 0;
    return r;
}

void check(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    client_handshake hs{request_for(data[0])};
    const std::size_t chunk = data[1] % 16 + 1;
    std::size_t at = 2;
    for (int steps = 0; steps < 4096; ++steps) {
        const action act = hs.next();
        if (act.kind == action_kind::send) {
            check(!act.bytes.empty() && act.bytes.size() <= client_handshake::buffer_size);
            hs.sent();
            continue;
        }
        if (act.kind != action_kind::receive) break;
        check(!act.space.empty() && act.space.size() <= client_handshake::buffer_size);
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
    return 0;
}
