#include "supervisor/dns_message.hpp"

#include <cstring>

namespace lp::supervise::dns {
namespace {

std::uint16_t get16(const std::uint8_t* p) noexcept {
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

char lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

bool ends_with(std::string_view s, std::string_view suffix) noexcept {
    if (s.size() < suffix.size()) return false;
    auto tail = s.substr(s.size() - suffix.size());
    for (std::size_t i = 0; i < suffix.size(); ++i)
        if (lower(tail[i]) != suffix[i]) return false;
    return true;
}

bool is_hex(char c) noexcept {
    return (c >= '0' && c <= '9') || (lower(c) >= 'a' && lower(c) <= 'f');
}

// "d.c.b.a" → "a.b.c.d" into `text` (room for max_name + 1).
bool reversed_v4(std::string_view rev, char* text, std::size_t& len) noexcept {
    std::string_view parts[4];
    int n = 0;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= rev.size(); ++i) {
        if (i < rev.size() && rev[i] != '.') continue;
        if (n == 4) return false;
        parts[n++] = rev.substr(start, i - start);
        start = i + 1;
    }
    if (n != 4) return false;
    len = 0;
    for (int k = 3; k >= 0; --k) {
        std::memcpy(text + len, parts[k].data(), parts[k].size());
        len += parts[k].size();
        if (k > 0) text[len++] = '.';
    }
    return true;
}

// 32 nibbles, least significant first, each followed by '.' → the
// address's text, in groups of four.
bool reversed_v6(std::string_view rev, char* text, std::size_t& len) noexcept {
    if (rev.size() != 63) return false;
    len = 0;
    for (std::size_t i = 0; i < 64; i += 2) {
        if (!is_hex(rev[i]) || (i + 1 < 63 && rev[i + 1] != '.')) return false;
    }
    for (int i = 62; i >= 0; i -= 2) {
        text[len++] = rev[static_cast<std::size_t>(i)];
        if (i % 8 == 0 && i > 0) text[len++] = ':';
    }
    return true;
}

std::uint8_t* put16(std::uint8_t* p, unsigned v) noexcept {
    p[0] = static_cast<std::uint8_t>((v >> 8) & 0xff);
    p[1] = static_cast<std::uint8_t>(v & 0xff);
    return p + 2;
}

}  // namespace

bool is_query(std::span<const std::uint8_t> msg) noexcept {
    return msg.size() >= header_size && (msg[2] & 0x80) == 0;
}

bool parse_question(std::span<const std::uint8_t> msg, question& out) noexcept {
    out = {};
    if (!is_query(msg) || get16(&msg[4]) != 1) return false;
    std::size_t i = header_size;
    while (i < msg.size() && msg[i] != 0) {
        std::size_t len = msg[i];
        if (len > 63 || i + 1 + len >= msg.size()) return false;  // 0xc0: a pointer
        std::size_t dot = out.name_len == 0 ? 0 : 1;
        if (out.name_len + dot + len > max_name) return false;
        const auto* label = &msg[i + 1];
        if (std::memchr(label, '.', len) != nullptr || std::memchr(label, '\0', len) != nullptr)
            return false;
        if (dot) out.name[out.name_len++] = '.';
        std::memcpy(out.name + out.name_len, label, len);
        out.name_len += len;
        i += 1 + len;
    }
    if (i + 5 > msg.size()) return false;
    out.name[out.name_len] = '\0';
    out.type = get16(&msg[i + 1]);
    out.klass = get16(&msg[i + 3]);
    out.end = i + 5;
    return true;
}

bool reverse_address(std::string_view name, net::ip& out) noexcept {
    char text[max_name + 1];
    std::size_t len = 0;
    if (name.size() > max_name) return false;
    bool ok = false;
    if (ends_with(name, ".in-addr.arpa"))
        ok = reversed_v4(name.substr(0, name.size() - 13), text, len);
    else if (ends_with(name, ".ip6.arpa"))
        ok = reversed_v6(name.substr(0, name.size() - 9), text, len);
    return ok && net::parse_ip({text, len}, out);
}

bool is_localhost(std::string_view name) noexcept {
    return (name.size() == 9 && ends_with(name, "localhost")) || ends_with(name, ".localhost");
}

std::size_t encode_name(std::string_view name, std::span<std::uint8_t> out) noexcept {
    std::size_t at = 0;
    while (!name.empty()) {
        auto dot = name.find('.');
        auto label = name.substr(0, dot);
        if (label.empty() || label.size() > 63 || at + 1 + label.size() >= out.size()) return 0;
        out[at++] = static_cast<std::uint8_t>(label.size());
        std::memcpy(&out[at], label.data(), label.size());
        at += label.size();
        name = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
    }
    if (at >= out.size()) return 0;
    out[at++] = 0;
    return at;
}

std::size_t write_response(std::span<const std::uint8_t> query, const question* q,
                           std::uint8_t rcode, std::span<const std::uint8_t> rdata,
                           std::span<std::uint8_t> out) noexcept {
    if (query.size() < header_size || (q != nullptr && q->end > query.size())) return 0;
    bool answered = q != nullptr && rcode == 0 && !rdata.empty();
    std::size_t question_len = q != nullptr ? q->end - header_size : 0;
    std::size_t record_len = answered ? 12 + rdata.size() : 0;
    if (rdata.size() > 0xffff || out.size() < header_size + question_len + record_len) return 0;
    std::uint8_t* p = out.data();
    p = put16(p, get16(&query[0]));  // id
    // QR, opcode 0, RD copied, RA, rcode.
    p = put16(p, 0x8000u | (query[2] & 0x01u) << 8 | 0x80u | (rcode & 0x0fu));
    p = put16(p, q != nullptr ? 1 : 0);
    p = put16(p, answered ? 1 : 0);
    p = put16(p, 0);
    p = put16(p, 0);
    if (question_len > 0) std::memcpy(p, &query[header_size], question_len);
    p += question_len;
    if (answered) {
        p = put16(p, 0xc00c);  // the name: a pointer to the question's
        p = put16(p, q->type);
        p = put16(p, class_in);
        p = put16(p, answer_ttl >> 16);
        p = put16(p, answer_ttl & 0xffff);
        p = put16(p, static_cast<unsigned>(rdata.size()));
        std::memcpy(p, rdata.data(), rdata.size());
        p += rdata.size();
    }
    return static_cast<std::size_t>(p - out.data());
}

}  // namespace lp::supervise::dns
