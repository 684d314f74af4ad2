// libFuzzer target over the supervisor's DNS message codec
// (preload/supervisor/dns_message.hpp): any bytes a supervised program may
// send to the responder. Parsing must stay inside the message, the dotted
// name inside its buffer and free of '.'-in-label ambiguity, and every
// response must fit the buffer it was given, echo the question exactly,
// and parse back as a response.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "supervisor/dns_message.hpp"

namespace {

using namespace lp::supervise::dns;

void check(bool ok) {
    if (!ok) std::abort();
}

// The response to `msg` in buffers of every interesting size: too small
// ones must get 0, never a partial write past their end.
void respond(std::span<const std::uint8_t> msg, const question* q, std::uint8_t rcode,
             std::span<const std::uint8_t> rdata) {
    static std::uint8_t out[4096 + 64];
    std::size_t full = write_response(msg, q, rcode, rdata, {out, sizeof out - 64});
    if (full == 0) return;
    check(full <= sizeof out - 64);
    check(!is_query({out, full}));
    check((out[0] == msg[0]) && (out[1] == msg[1]));
    if (q != nullptr) check(std::memcmp(out + header_size, &msg[header_size], q->end - 12) == 0);
    // One byte short of what it needs: nothing.
    std::memset(out, 0xAA, sizeof out);
    check(write_response(msg, q, rcode, rdata, {out, full - 1}) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::uint8_t> msg{data, size};
    if (!is_query(msg)) {
        check(write_response(msg, nullptr, rcode_refused, {}, {}) == 0);
        return 0;
    }
    question q;
    if (!parse_question(msg, q)) {
        respond(msg, nullptr, rcode_refused, {});
        return 0;
    }
    check(q.name_len <= max_name && q.name[q.name_len] == '\0');
    check(std::strlen(q.name) == q.name_len);
    check(q.end >= header_size + 5 && q.end <= size);
    // The dotted name encodes back to the question's wire form.
    std::uint8_t wire[max_name + 2];
    std::size_t n = encode_name(q.view(), wire);
    check(n == q.end - 4 - header_size);
    check(std::memcmp(wire, &msg[header_size], n) == 0);
    lp::net::ip a;
    if (reverse_address(q.view(), a)) check(q.view().size() >= 13);
    (void)is_localhost(q.view());
    // As the responder answers: an address, a name (PTR), or an rcode.
    const std::uint8_t v4[4] = {240, 0, 0, 1};
    respond(msg, &q, 0, v4);
    respond(msg, &q, 0, {wire, n});
    respond(msg, &q, rcode_nxdomain, {});
    return 0;
}
