// The DNS messages the supervisor's responder reads and writes
// (dns_responder.hpp), without the responder: no I/O, no allocation, no
// placeholder map. The bytes come from the supervised program, which chose
// them: every read is bounded by the message, every write by the buffer
// (the fuzz target tests/fuzz/fuzz_dns_message.cpp holds it to that).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "runtime/net.hpp"

namespace lp::supervise::dns {

inline constexpr std::uint16_t type_a = 1;
inline constexpr std::uint16_t type_ptr = 12;
inline constexpr std::uint16_t type_aaaa = 28;
inline constexpr std::uint16_t class_in = 1;
inline constexpr std::uint8_t rcode_nxdomain = 3;
inline constexpr std::uint8_t rcode_refused = 5;
inline constexpr std::size_t header_size = 12;
inline constexpr std::size_t max_name = 253;  // dotted, without the final dot
// Short: a placeholder is only promised to its name for 30 s after its last use.
inline constexpr std::uint32_t answer_ttl = 10;

struct question {
    char name[max_name + 1] = "";  // dotted, no final dot, NUL-terminated
    std::size_t name_len = 0;
    std::uint16_t type = 0;
    std::uint16_t klass = 0;
    std::size_t end = 0;  // offset just past the question in the message
    std::string_view view() const noexcept { return {name, name_len}; }
};

// Whether `msg` deserves an answer at all: a header's worth of bytes, and
// a query (a response is never answered: two responders would loop).
bool is_query(std::span<const std::uint8_t> msg) noexcept;

// The only question of query `msg` (QDCOUNT 1). False when malformed: a
// label over 63 bytes, a name over 253, a compression pointer (a query's
// first name has nothing to point to), a label holding '.' or NUL (its
// dotted form would name something else), or a question cut short.
bool parse_question(std::span<const std::uint8_t> msg, question& out) noexcept;

// "4.3.2.1.in-addr.arpa" or the 32 nibbles of an ip6.arpa name → the address.
bool reverse_address(std::string_view name, net::ip& out) noexcept;

// "localhost" and names under it (RFC 6761: always loopback).
bool is_localhost(std::string_view name) noexcept;

// `name` (dotted) in wire format into `out`: its length, or 0 when it does
// not fit or is no name (an empty label, a label over 63 bytes).
std::size_t encode_name(std::string_view name, std::span<std::uint8_t> out) noexcept;

// The response to `query` into `out`: its id, RD copied, RA, `rcode`; the
// question echoed when `q` is given; one answer record of q's type with
// `rdata` when rcode is 0 and rdata is not empty (its name a pointer to the
// question's). Its length, or 0 when `out` is too small.
std::size_t write_response(std::span<const std::uint8_t> query, const question* q,
                           std::uint8_t rcode, std::span<const std::uint8_t> rdata,
                           std::span<std::uint8_t> out) noexcept;

}  // namespace lp::supervise::dns
