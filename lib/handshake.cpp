// The SOCKS client handshake as a state machine over one buffer.
//
// Wire formats: RFC 1928 (SOCKS5, its BIND and UDP ASSOCIATE, and the UDP
// datagram header), RFC 1929 (username/password), the SOCKS4 and SOCKS4a
// protocol texts (CONNECT and BIND), and Tor's socks-extensions.txt (RESOLVE
// 0xF0, RESOLVE_PTR 0xF1, extended error codes 0xF0-0xF7).
#include "leakproof/handshake.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>

namespace leakproof {
namespace {

constexpr std::uint8_t socks5_version = 0x05;
constexpr std::uint8_t socks4_version = 0x04;
constexpr std::uint8_t rfc1929_version = 0x01;
constexpr std::uint8_t method_no_auth = 0x00;
constexpr std::uint8_t method_user_pass = 0x02;
constexpr std::uint8_t method_none_acceptable = 0xFF;
constexpr std::uint8_t atyp_ipv4 = 0x01;
constexpr std::uint8_t atyp_name = 0x03;
constexpr std::uint8_t atyp_ipv6 = 0x04;
constexpr std::size_t max_field = 255;  // every SOCKS length byte
constexpr std::size_t socks4_reply_size = 8;
constexpr std::size_t socks5_reply_head = 5;  // VER REP RSV ATYP + first address byte

std::error_code make(error e) noexcept {
    return make_error_code(e);
}

// An empty view may have a null data(), which memcpy must not be given.
std::uint8_t* put(std::uint8_t* out, std::string_view s) noexcept {
    if (!s.empty()) std::memcpy(out, s.data(), s.size());
    return out + s.size();
}

std::uint8_t* put_port(std::uint8_t* out, std::uint16_t port) noexcept {
    out[0] = static_cast<std::uint8_t>(port >> 8);
    out[1] = static_cast<std::uint8_t>(port & 0xFF);
    return out + 2;
}

std::uint16_t get_port(const std::uint8_t* in) noexcept {
    return static_cast<std::uint16_t>((in[0] << 8) | in[1]);
}

bool has_nul(std::string_view s) noexcept {
    return s.find('\0') != std::string_view::npos;
}

std::error_code validate_name(std::string_view name) noexcept {
    if (name.empty()) return make(error::hostname_empty);
    if (name.size() > max_field) return make(error::hostname_too_long);
    if (has_nul(name)) return make(error::hostname_has_nul);
    return {};
}

std::error_code validate_socks4(const request& req) noexcept {
    if (req.target.type == address::kind::ipv6) return make(error::ipv6_needs_socks5);
    if (req.cmd == command::resolve_ptr || req.cmd == command::udp_associate)
        return make(error::command_needs_socks5);
    if (req.target.type == address::kind::name && req.version == socks_version::v4)
        return make(error::name_needs_socks4a);
    if (req.user.size() > max_field) return make(error::user_too_long);
    if (has_nul(req.user)) return make(error::user_id_has_nul);
    if (!req.password.empty()) return make(error::password_without_user);
    return {};
}

std::error_code validate_socks5(const request& req) noexcept {
    if (req.user.size() > max_field) return make(error::user_too_long);
    if (req.password.size() > max_field) return make(error::password_too_long);
    if (req.user.empty() && !req.password.empty()) return make(error::password_without_user);
    return {};
}

// What a reply with a wrong version byte may be instead: other servers speak
// first (an SSH banner) or answer any bytes at once (an HTTP server's
// "400 Bad Request", a TLS server's alert). Two bytes tell these apart; any
// more of the reply already in hand must match too.
struct other_protocol {
    std::string_view start;
    error answered;
};
constexpr other_protocol other_protocols[] = {
    {"HTTP/", error::answered_http},
    {"SSH-", error::answered_ssh},
    {"\x15\x03", error::answered_tls},  // a TLS record: alert
    {"\x16\x03", error::answered_tls},  // a TLS record: handshake
};

// The error for the `n` bytes in hand of a reply whose version is wrong.
// Cold, like every failure: kept out of the way of a handshake that succeeds.
[[gnu::cold]] error wrong_version_error(const std::uint8_t* in, std::size_t n) noexcept {
    if (n < 2) return error::bad_version;
    for (const auto& p : other_protocols)
        if (std::memcmp(in, p.start.data(), std::min(n, p.start.size())) == 0) return p.answered;
    return error::bad_version;
}

// The same for a reply read early, byte by byte: no error (wait) while the
// one byte in hand may begin another protocol's answer and the second would
// say which — it is still part of the reply, so it is never read past it.
[[gnu::cold]] error early_wrong_version_error(const std::uint8_t* in, std::size_t n) noexcept {
    const auto begins = [first = in[0]](const other_protocol& p) {
        return static_cast<std::uint8_t>(p.start[0]) == first;
    };
    if (n == 1 && std::any_of(std::begin(other_protocols), std::end(other_protocols), begins))
        return {};
    return wrong_version_error(in, n);
}

// Each send's size, and the largest reply kept whole: a SOCKS5 reply with an
// IPv6 address, or with a full-length name for RESOLVE_PTR, whose answer is
// that name. A CONNECT's reply names are dropped instead (see skip_reply_name).
// For a valid request only.
std::size_t bytes_needed(const request& req) noexcept {
    const std::size_t user = req.user.size(), name = req.target.name.size();
    if (req.version != socks_version::v5)
        return std::max(socks4_reply_size, 8 + user + 1 + (name ? name + 1 : 0));
    const bool pipelined = req.options.pipeline || req.options.optimistic;
    const std::size_t greeting = req.user.empty() || pipelined ? 3 : 4;
    const std::size_t auth = req.user.empty() ? 0 : 3 + user + req.password.size();
    std::size_t target = 4;
    if (req.target.type == address::kind::ipv6) target = 16;
    if (req.target.type == address::kind::name) target = 1 + name;
    const std::size_t request = 4 + target + 2;
    const std::size_t sends =
        pipelined ? greeting + auth + request : std::max({greeting, auth, request});
    const std::size_t reply = req.cmd == command::resolve_ptr ? 4 + 1 + max_field + 2 : 4 + 16 + 2;
    return std::max(sends, reply);
}

}  // namespace

// ---------------------------------------------------------------- address

address address::ipv4(std::array<std::uint8_t, 4> a) noexcept {
    address r;
    r.type = kind::ipv4;
    std::copy(a.begin(), a.end(), r.ip.begin());
    return r;
}

address address::ipv6(std::array<std::uint8_t, 16> a) noexcept {
    address r;
    r.type = kind::ipv6;
    r.ip = a;
    return r;
}

address address::host_name(std::string_view n) noexcept {
    address r;
    r.type = kind::name;
    r.name = n;
    return r;
}

bool address::unspecified() const noexcept {
    const std::size_t size = type == kind::ipv4 ? 4 : type == kind::ipv6 ? 16 : 0;
    return size != 0 &&
           std::all_of(ip.begin(), ip.begin() + long(size), [](std::uint8_t b) { return b == 0; });
}

// ---------------------------------------------------------------- validation

std::error_code validate(const request& req) noexcept {
    switch (req.target.type) {
        case address::kind::none: return make(error::hostname_empty);
        case address::kind::name:
            if (auto ec = validate_name(req.target.name)) return ec;
            if (req.cmd == command::resolve_ptr) return make(error::ptr_needs_address);
            break;
        default: break;
    }
    if (req.cmd == command::connect && req.port == 0) return make(error::port_zero);
    return req.version == socks_version::v5 ? validate_socks5(req) : validate_socks4(req);
}

// ---------------------------------------------------------------- encoding

std::size_t handshake_machine::buffer_size(const request& req) noexcept {
    return validate(req) ? 0 : bytes_needed(req);
}

handshake_machine::handshake_machine(const request& req, std::span<std::uint8_t> buffer) noexcept
    : req_(req), buf_(buffer) {
    // Early data behind a request the server has not seen whole would be
    // read as handshake bytes: optimistic means the one-write handshake.
    if (req_.options.optimistic) req_.options.pipeline = true;
    if (auto ec = validate(req_)) {
        state_ = state::failed;
        error_ = ec;
        return;
    }
    if (buf_.size() < bytes_needed(req_)) {
        state_ = state::failed;
        error_ = std::make_error_code(std::errc::no_buffer_space);
        return;
    }
    if (req_.version != socks_version::v5) {
        state_ = state::send_request;
        out_len_ = static_cast<std::uint16_t>(encode_socks4_request());
        return;
    }
    state_ = state::send_greeting;
    std::size_t len = encode_greeting(0);
    if (req_.options.pipeline) {
        if (auth_method() == method_user_pass) len = encode_auth(len);
        len = encode_socks5_request(len);
    }
    out_len_ = static_cast<std::uint16_t>(len);
}

std::uint8_t handshake_machine::auth_method() const noexcept {
    return req_.user.empty() ? method_no_auth : method_user_pass;
}

// Without credentials we offer no-auth only. With credentials we offer both,
// as curl does, except when pipelining: the auth bytes that follow the
// greeting only make sense if the proxy is bound to pick username/password.
std::size_t handshake_machine::encode_greeting(std::size_t at) noexcept {
    std::uint8_t* p = buf_.data() + at;
    *p++ = socks5_version;
    if (auth_method() == method_no_auth) {
        *p++ = 1;
        *p++ = method_no_auth;
    } else if (req_.options.pipeline) {
        *p++ = 1;
        *p++ = method_user_pass;
    } else {
        *p++ = 2;
        *p++ = method_no_auth;
        *p++ = method_user_pass;
    }
    return static_cast<std::size_t>(p - buf_.data());
}

std::size_t handshake_machine::encode_auth(std::size_t at) noexcept {
    std::uint8_t* p = buf_.data() + at;
    *p++ = rfc1929_version;
    *p++ = static_cast<std::uint8_t>(req_.user.size());
    p = put(p, req_.user);
    *p++ = static_cast<std::uint8_t>(req_.password.size());
    p = put(p, req_.password);
    return static_cast<std::size_t>(p - buf_.data());
}

std::size_t handshake_machine::encode_socks5_request(std::size_t at) noexcept {
    std::uint8_t* p = buf_.data() + at;
    *p++ = socks5_version;
    *p++ = static_cast<std::uint8_t>(req_.cmd);
    *p++ = 0x00;  // RSV
    const address& t = req_.target;
    switch (t.type) {
        case address::kind::ipv4:
            *p++ = atyp_ipv4;
            p = std::copy_n(t.ip.begin(), 4, p);
            break;
        case address::kind::ipv6:
            *p++ = atyp_ipv6;
            p = std::copy_n(t.ip.begin(), 16, p);
            break;
        default:
            *p++ = atyp_name;
            *p++ = static_cast<std::uint8_t>(t.name.size());
            p = put(p, t.name);
            break;
    }
    p = put_port(p, req_.port);
    return static_cast<std::size_t>(p - buf_.data());
}

// SOCKS4a marks "the name follows" with DSTIP 0.0.0.x, x != 0.
std::size_t handshake_machine::encode_socks4_request() noexcept {
    std::uint8_t* p = buf_.data();
    *p++ = socks4_version;
    *p++ = static_cast<std::uint8_t>(req_.cmd);
    p = put_port(p, req_.port);
    const bool by_name = req_.target.type == address::kind::name;
    if (by_name) {
        const std::uint8_t marker[4] = {0, 0, 0, 1};
        p = std::copy_n(marker, 4, p);
    } else {
        p = std::copy_n(req_.target.ip.begin(), 4, p);
    }
    p = put(p, req_.user);
    *p++ = 0x00;
    if (by_name) {
        p = put(p, req_.target.name);
        *p++ = 0x00;
    }
    return static_cast<std::size_t>(p - buf_.data());
}

// ---------------------------------------------------------------- driving

action handshake_machine::next() noexcept {
    switch (state_) {
        case state::send_greeting:
        case state::send_auth:
        case state::send_request: return {action_kind::send, {buf_.data(), out_len_}, {}, {}};
        case state::done: return {action_kind::done, {}, {}, {}};
        case state::failed: return {action_kind::failed, {}, {}, error_};
        case state::skip_reply_name: {  // every piece lands at the start, then is dropped
            const std::size_t n = std::min<std::size_t>(need_ - have_, buf_.size());
            return {action_kind::receive, {}, {buf_.data(), n}, {}};
        }
        default:
            return {
                action_kind::receive, {}, {buf_.data() + have_, std::size_t(need_ - have_)}, {}};
    }
}

void handshake_machine::expect(state s, std::size_t n) noexcept {
    state_ = s;
    need_ = static_cast<std::uint16_t>(n);
    have_ = 0;
}

void handshake_machine::fail(std::error_code ec) noexcept {
    error_ = for_command(ec);
    state_ = state::failed;
}

// "Command not supported" names the command: it is what a caller of BIND or
// UDP ASSOCIATE gets from most proxies (microsocks and Tor answer REP 7).
// OpenSSH's ssh -D answers every command but CONNECT by closing the
// connection before the first byte of its reply, which means the same.
std::error_code handshake_machine::for_command(std::error_code ec) const noexcept {
    const bool awaiting_first_reply =
        (state_ == state::recv_reply_head || state_ == state::recv_socks4_reply) && have_ == 0 &&
        bind_stage_ == 0;
    const bool bind_or_udp = req_.cmd == command::bind || req_.cmd == command::udp_associate;
    if (!bind_or_udp) return ec;
    if (ec == make(error::proxy_closed) && awaiting_first_reply)
        ec = make(error::command_not_supported);
    if (ec != make(error::command_not_supported)) return ec;
    if (req_.cmd == command::bind) return make(error::bind_not_supported);
    if (req_.cmd == command::udp_associate) return make(error::udp_not_supported);
    return ec;
}

void handshake_machine::sent() noexcept {
    switch (state_) {
        case state::send_greeting: expect(state::recv_method, 2); break;
        case state::send_auth: expect(state::recv_auth, 2); break;
        case state::send_request:
            if (req_.version == socks_version::v5)
                expect(state::recv_reply_head, socks5_reply_head);
            else
                expect(state::recv_socks4_reply, socks4_reply_size);
            break;
        default: break;  // not sending: nothing to acknowledge
    }
}

bool handshake_machine::request_sent() const noexcept {
    switch (state_) {
        case state::send_greeting:
        case state::send_auth:
        case state::send_request: return false;
        case state::recv_method:
        case state::recv_auth: return req_.options.pipeline;
        case state::failed: return false;
        default: return true;  // reading the (last) reply, or done
    }
}

void handshake_machine::received(std::size_t n) noexcept {
    if (next().kind != action_kind::receive) return;
    have_ = static_cast<std::uint16_t>(have_ + std::min<std::size_t>(n, need_ - have_));
    if (check_early_failure()) return;
    if (have_ == need_) on_complete_message();
}

void handshake_machine::closed() noexcept {
    if (next().kind != action_kind::receive) return;
    // A wrong first byte kept waiting for a second that never came.
    const bool wrong_version = have_ > 0 && reply_version_wrong();
    fail(make(wrong_version ? error::bad_version : error::proxy_closed));
}

std::size_t handshake_machine::feed(std::span<const std::uint8_t> in) noexcept {
    const action act = next();
    if (act.kind != action_kind::receive || in.empty()) return 0;
    const std::size_t n = std::min(in.size(), act.space.size());
    std::memcpy(act.space.data(), in.data(), n);
    received(n);
    return n;
}

// Out of the way (cold) so that a handshake that succeeds pays nothing for
// it (bench/core_cost.sh: as many instructions as before).
bool handshake_machine::fail_wrong_version_early() noexcept {
    if (const auto e = early_wrong_version_error(buf_.data(), have_); e != leakproof::error{})
        fail(make(e));
    return failed();
}

// For the reply being read, with at least its first byte in hand.
inline bool handshake_machine::reply_version_wrong() const noexcept {
    if (state_ == state::recv_reply_head) return buf_[0] != socks5_version;
    if (state_ != state::recv_socks4_reply) return false;
    return buf_[0] != 0 &&
           !(req_.options.lenient_socks4_reply_version && buf_[0] == socks4_version);
}

// A refusal is acted on as soon as its byte arrives: many servers send
// `05 04` and close without the rest of the reply.
bool handshake_machine::check_early_failure() noexcept {
    const bool socks5_reply = state_ == state::recv_reply_head;
    const bool socks4_reply = state_ == state::recv_socks4_reply;
    if (!(socks5_reply || socks4_reply) || have_ == 0) return false;
    if (reply_version_wrong()) return fail_wrong_version_early();
    if (have_ >= 2) {
        const auto ec = socks5_reply ? socks5_reply_error(buf_[1]) : socks4_reply_error(buf_[1]);
        if (ec) fail(ec);
    }
    return failed();
}

void handshake_machine::on_complete_message() noexcept {
    switch (state_) {
        case state::recv_method: parse_method(); break;
        case state::recv_auth: parse_auth(); break;
        case state::recv_reply_head: parse_reply_head(); break;
        case state::recv_reply_tail: parse_reply_tail(); break;
        case state::skip_reply_name: expect(state::recv_reply_port, 2); break;
        case state::recv_reply_port: parse_reply_port(); break;
        case state::recv_socks4_reply: parse_socks4_reply(); break;
        default: break;
    }
    if (state_ == state::done) on_final_reply();
}

// ---------------------------------------------------------------- parsing

void handshake_machine::parse_method() noexcept {
    // Pipelined credentials: Tor (seen with 0.4.9) answers greeting and
    // RFC 1929 request, when they arrive together, with the RFC 1929 reply
    // alone. Having offered username/password only, these two bytes can mean
    // nothing else.
    if (req_.options.pipeline && auth_method() == method_user_pass && buf_[0] == rfc1929_version)
        return parse_auth();
    if (buf_[0] != socks5_version) return fail(make(wrong_version_error(buf_.data(), 2)));
    const std::uint8_t method = buf_[1];
    if (method == method_none_acceptable) return fail(make(error::no_acceptable_method));
    const bool offered =
        method == auth_method() || (method == method_no_auth && !req_.options.pipeline);
    if (!offered) return fail(make(error::unexpected_method));
    if (method == method_user_pass) {
        if (req_.options.pipeline) return expect(state::recv_auth, 2);
        state_ = state::send_auth;
        out_len_ = static_cast<std::uint16_t>(encode_auth(0));
        return;
    }
    if (req_.options.pipeline) return expect(state::recv_reply_head, socks5_reply_head);
    state_ = state::send_request;
    out_len_ = static_cast<std::uint16_t>(encode_socks5_request(0));
}

void handshake_machine::parse_auth() noexcept {
    const bool version_ok = buf_[0] == rfc1929_version ||
                            (req_.options.lenient_auth_reply_version && buf_[0] == socks5_version);
    if (!version_ok) return fail(make(error::bad_auth_version));
    if (buf_[1] != 0) return fail(make(error::auth_failed));
    if (req_.options.pipeline) return expect(state::recv_reply_head, socks5_reply_head);
    state_ = state::send_request;
    out_len_ = static_cast<std::uint16_t>(encode_socks5_request(0));
}

// The head holds the first byte of BND.ADDR, which for a name is its length:
// that is how a domain reply is framed without reading past its end.
void handshake_machine::parse_reply_head() noexcept {
    std::size_t rest = 0;
    switch (buf_[3]) {
        case atyp_ipv4: rest = 4 - 1 + 2; break;
        case atyp_ipv6: rest = 16 - 1 + 2; break;
        case atyp_name: rest = std::size_t{buf_[4]} + 2; break;
        default: return fail(make(error::bad_address_type));
    }
    if (socks5_reply_head + rest > buf_.size()) return expect(state::skip_reply_name, buf_[4]);
    state_ = state::recv_reply_tail;
    need_ = static_cast<std::uint16_t>(socks5_reply_head + rest);
}

void handshake_machine::parse_reply_tail() noexcept {
    const std::uint8_t* addr = buf_.data() + 4;
    switch (buf_[3]) {
        case atyp_ipv4: reply_.bound = address::ipv4({addr[0], addr[1], addr[2], addr[3]}); break;
        case atyp_ipv6: {
            std::array<std::uint8_t, 16> a{};
            std::copy_n(addr, 16, a.begin());
            reply_.bound = address::ipv6(a);
            break;
        }
        default:
            reply_.bound = address::host_name({reinterpret_cast<const char*>(addr + 1), addr[0]});
            break;
    }
    reply_.port = get_port(buf_.data() + need_ - 2);
    state_ = state::done;
}

void handshake_machine::parse_reply_port() noexcept {
    reply_.bound = address::host_name({});
    reply_.port = get_port(buf_.data());
    state_ = state::done;
}

void handshake_machine::parse_socks4_reply() noexcept {
    reply_.port = get_port(buf_.data() + 2);
    reply_.bound = address::ipv4({buf_[4], buf_[5], buf_[6], buf_[7]});
    state_ = state::done;
}

// ---------------------------------------------------------------- BIND

namespace {

// The IPv4 address inside ::ffff:a.b.c.d, so that a peer reported either way
// compares equal to an IPv4 target.
address unmapped(const address& a) noexcept {
    static constexpr std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (a.type != address::kind::ipv6 || !std::equal(prefix, prefix + 12, a.ip.begin())) return a;
    return address::ipv4({a.ip[12], a.ip[13], a.ip[14], a.ip[15]});
}

// Whether the host in BIND's second reply is the one the request named. A
// name cannot be checked without resolving it, and 0.0.0.0 or :: asks for
// any host: both accept every peer.
bool peer_is_expected(const address& asked, const address& peer) noexcept {
    if (asked.type == address::kind::name || asked.unspecified()) return true;
    const address a = unmapped(asked), p = unmapped(peer);
    if (a.type != p.type) return false;
    return std::equal(a.ip.begin(), a.ip.begin() + (a.type == address::kind::ipv4 ? 4 : 16),
                      p.ip.begin());
}

}  // namespace

// A reply ended the handshake. For BIND the first one is the announcement;
// the second names the peer, checked against the request unless told not to.
void handshake_machine::on_final_reply() noexcept {
    if (req_.cmd != command::bind) return;
    ++bind_stage_;
    if (bind_stage_ == 2 && req_.options.check_bind_peer &&
        !peer_is_expected(req_.target, reply_.bound))
        fail(make(error::bind_peer_mismatch));
}

bool handshake_machine::await_peer() noexcept {
    if (!listening()) return false;
    if (req_.version == socks_version::v5)
        expect(state::recv_reply_head, socks5_reply_head);
    else
        expect(state::recv_socks4_reply, socks4_reply_size);
    return true;
}

// ---------------------------------------------------------------- UDP datagrams

std::size_t udp_header_size(const address& destination) noexcept {
    switch (destination.type) {
        case address::kind::ipv4: return 4 + 4 + 2;
        case address::kind::ipv6: return 4 + 16 + 2;
        case address::kind::name:
            return validate_name(destination.name) ? 0 : 4 + 1 + destination.name.size() + 2;
        default: return 0;
    }
}

udp_header_result encode_udp_header(const address& destination, std::uint16_t port,
                                    std::span<std::uint8_t> out) noexcept {
    if (destination.type == address::kind::none) return {0, make(error::hostname_empty)};
    if (destination.type == address::kind::name) {
        if (auto ec = validate_name(destination.name)) return {0, ec};
    }
    if (port == 0) return {0, make(error::port_zero)};
    const std::size_t size = udp_header_size(destination);
    if (out.size() < size) return {0, std::make_error_code(std::errc::no_buffer_space)};
    std::uint8_t* p = out.data();
    *p++ = 0x00;  // RSV
    *p++ = 0x00;
    *p++ = 0x00;  // FRAG: a whole datagram
    switch (destination.type) {
        case address::kind::ipv4:
            *p++ = atyp_ipv4;
            p = std::copy_n(destination.ip.begin(), 4, p);
            break;
        case address::kind::ipv6:
            *p++ = atyp_ipv6;
            p = std::copy_n(destination.ip.begin(), 16, p);
            break;
        default:
            *p++ = atyp_name;
            *p++ = static_cast<std::uint8_t>(destination.name.size());
            p = put(p, destination.name);
            break;
    }
    put_port(p, port);
    return {size, {}};
}

std::error_code parse_udp_datagram(std::span<const std::uint8_t> in, udp_datagram& out) noexcept {
    constexpr std::size_t fixed = 4;  // RSV RSV FRAG ATYP
    if (in.size() < fixed) return make(error::udp_truncated);
    if (in[2] != 0) return make(error::udp_fragmented);
    const std::uint8_t* addr = in.data() + fixed;
    std::size_t header = 0;
    switch (in[3]) {
        case atyp_ipv4: header = fixed + 4 + 2; break;
        case atyp_ipv6: header = fixed + 16 + 2; break;
        case atyp_name:
            if (in.size() < fixed + 1) return make(error::udp_truncated);
            if (addr[0] == 0) return make(error::udp_bad_address_type);
            header = fixed + 1 + addr[0] + 2;
            break;
        default: return make(error::udp_bad_address_type);
    }
    if (in.size() < header) return make(error::udp_truncated);
    switch (in[3]) {
        case atyp_ipv4: out.source = address::ipv4({addr[0], addr[1], addr[2], addr[3]}); break;
        case atyp_ipv6: {
            std::array<std::uint8_t, 16> a{};
            std::copy_n(addr, 16, a.begin());
            out.source = address::ipv6(a);
            break;
        }
        default:
            out.source = address::host_name({reinterpret_cast<const char*>(addr + 1), addr[0]});
            break;
    }
    out.port = get_port(in.data() + header - 2);
    out.payload = in.subspan(header);
    return {};
}

}  // namespace leakproof
