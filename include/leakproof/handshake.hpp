// leakproof — the sans-IO SOCKS client handshake.
//
// A client_handshake turns one request (CONNECT, BIND, UDP ASSOCIATE, or Tor's
// RESOLVE/RESOLVE_PTR) into the bytes to write to a proxy and reads the
// proxy's answer, without doing any I/O itself. The caller loops:
//
//     leakproof::client_handshake hs{req};
//     for (;;) {
//         auto act = hs.next();
//         if (act.kind == action_kind::send)    { write_all(fd, act.bytes); hs.sent(); }
//         else if (act.kind == action_kind::receive) {
//             auto n = read(fd, act.space.data(), act.space.size());
//             n > 0 ? hs.received(n) : hs.closed();
//         } else break;                         // done: hs.result(); failed: act.error
//     }
//
// `receive` asks for at most the bytes the proxy still owes, never more, so the
// handshake can run on an application's own socket: the first byte after the
// reply is left unread for the application. The core allocates nothing, throws
// nothing and calls no libc I/O, so the LD_PRELOAD interposer can use it too.
//
// BIND has two replies. The first `done` means the proxy listens: result() is
// the address and port it announced (listening() is true). The caller passes
// them on to the peer, then calls await_peer(), and loops again: the next
// `done` means the peer connected, and result() is the host and port it came
// from. Nothing after the second reply is read. A caller that wants only the
// announcement stops after the first `done`.
//
// UDP ASSOCIATE has one reply, the relay's address; datagrams then go through
// encode_udp_header() and parse_udp_datagram() (below), also without I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

#include "leakproof/error.hpp"

namespace leakproof {

enum class socks_version : std::uint8_t { v4, v4a, v5 };

enum class command : std::uint8_t {
    connect = 0x01,
    bind = 0x02,           // SOCKS4 CD 2, SOCKS5 CMD 2: two replies (see above)
    udp_associate = 0x03,  // SOCKS5 only
    resolve = 0xF0,        // Tor: name → address, answered in BND.ADDR
    resolve_ptr = 0xF1,    // Tor: address → name, SOCKS5 only
};

// A host as SOCKS carries it: an IPv4 or IPv6 address in network byte order,
// or a name. A name is a view: the caller's storage for requests, the
// handshake's own buffer for replies.
struct address {
    enum class kind : std::uint8_t { none, ipv4, ipv6, name };

    kind type = kind::none;
    std::array<std::uint8_t, 16> ip{};  // the first 4 bytes for ipv4
    std::string_view name;

    static address ipv4(std::array<std::uint8_t, 4> a) noexcept;
    static address ipv6(std::array<std::uint8_t, 16> a) noexcept;
    static address host_name(std::string_view n) noexcept;
    // An IPv4/IPv6 literal becomes an address, anything else a name. Pure
    // parsing: no lookup ever happens here.
    static address parse(std::string_view host) noexcept;

    // 0.0.0.0 or :: (a name never is).
    bool unspecified() const noexcept;
};

struct handshake_options {
    // Send greeting, RFC 1929 sub-negotiation and request in one write (one
    // round trip). Off by default: some servers (microsocks) drop bytes that
    // arrive before they asked for them.
    bool pipeline = false;
    // Optimistic data: the caller may treat the connection as established,
    // and send the application's first bytes behind the request, once
    // request_sent() is true, and read the reply later (before any of the
    // application's reads). Implies `pipeline`: the whole handshake is then
    // one write. Only for servers that read early data (Tor does; the man
    // page lists the ones tested); a server that drops it loses those bytes.
    bool optimistic = false;
    // Accept a SOCKS4 reply whose VN is 4 instead of 0 (seen in the wild).
    bool lenient_socks4_reply_version = false;
    // Accept an RFC 1929 reply whose version is 5 instead of 1 (seen in the wild).
    bool lenient_auth_reply_version = false;
    // BIND: fail with error::bind_peer_mismatch when the second reply names a
    // host other than the request's target. Only an IP target can be
    // checked (a name is never resolved here) and 0.0.0.0 or :: means "any
    // host"; ports are not compared (the peer's source port is its own).
    // Off: any peer is accepted and the caller checks result() itself.
    bool check_bind_peer = true;
};

struct request {
    socks_version version = socks_version::v5;
    command cmd = command::connect;
    // CONNECT: the destination. BIND: the host expected to connect (SOCKS4's
    // DSTIP; the proxy may restrict the peer to it). UDP ASSOCIATE: the
    // address and port the client will send datagrams from, or 0.0.0.0:0
    // when it does not know them (RFC 1928 section 6).
    address target;
    std::uint16_t port = 0;
    // SOCKS5: RFC 1929 credentials, offered when `user` is not empty.
    // SOCKS4/4a: `user` is the user id, `password` must be empty.
    std::string_view user;
    std::string_view password;
    handshake_options options;
};

// What the proxy answered once the handshake is done. For CONNECT, `bound`
// is the proxy's BND.ADDR; for RESOLVE the resolved address; for RESOLVE_PTR
// the name; for BIND the address the proxy listens on (first reply), then the
// peer's (second reply); for UDP ASSOCIATE the relay's.
struct reply {
    address bound;
    std::uint16_t port = 0;

    // BIND's first reply and UDP ASSOCIATE's reply may give 0.0.0.0 or ::,
    // which means "the proxy's own address" (the SOCKS4 text says so, and
    // SOCKS5 servers do the same): the caller substitutes the address it
    // reached the proxy at. Never a reason to guess or resolve anything.
    bool means_proxy_address() const noexcept { return bound.unspecified(); }
};

enum class action_kind : std::uint8_t { send, receive, done, failed };

struct action {
    action_kind kind;
    std::span<const std::uint8_t> bytes;  // send: write all of these, then sent()
    std::span<std::uint8_t> space;        // receive: read at most this many bytes into it
    std::error_code error;                // failed: why
};

// Checks a request without building anything: the same verdict the
// handshake's first next() gives.
std::error_code validate(const request& req) noexcept;

// The largest message a handshake ever sends or receives at once: greeting
// (one method when pipelined) + RFC 1929 + request with a 255-byte name and
// credentials, pipelined.
inline constexpr std::size_t max_handshake_buffer = 3 + 513 + 262;

// The handshake itself, working in a buffer the caller provides. It needs
// buffer_size(req) bytes, which is what this request sends at once (a few
// dozen bytes for most) and at least a SOCKS5 reply with an IPv6 address; a
// RESOLVE_PTR keeps a 255-byte name and needs room for it. A reply that names
// its bound address with a name that does not fit is read and dropped
// (result().bound is then a name with no text): a CONNECT has no use for it.
// This is what lets an asynchronous connect stay small while it waits.
class handshake_machine {
public:
    // Views in `req` (name, user, password) must stay valid until the last
    // send action has been taken; `buffer` until the handshake ends, and for
    // as long as result() is used.
    handshake_machine(const request& req, std::span<std::uint8_t> buffer) noexcept;
    handshake_machine(const handshake_machine&) = delete;  // would share the buffer
    handshake_machine& operator=(const handshake_machine&) = delete;

    // The buffer `req` needs; max_handshake_buffer at most.
    static std::size_t buffer_size(const request& req) noexcept;

    // The next thing to do. Calling it again without sent()/received()/closed()
    // in between returns the same action.
    action next() noexcept;
    // All bytes of the last send action were written.
    void sent() noexcept;
    // `n` bytes (1 ≤ n ≤ space.size()) were read into the last receive space.
    void received(std::size_t n) noexcept;
    // The stream ended (EOF or reset) while a receive was pending.
    void closed() noexcept;
    // Copies as much of `in` as the handshake wants and calls received();
    // returns how many bytes were taken. Bytes beyond the reply are not taken.
    std::size_t feed(std::span<const std::uint8_t> in) noexcept;

    // Every byte this handshake sends has been sent: only replies are left
    // to read. With options.optimistic, the application's bytes may follow.
    bool request_sent() const noexcept;

    bool finished() const noexcept { return state_ == state::done; }
    bool failed() const noexcept { return state_ == state::failed; }
    std::error_code error() const noexcept { return error_; }
    // Valid when finished(); a name in it points into the buffer. After a
    // failed BIND peer check (error::bind_peer_mismatch) it holds the peer.
    const reply& result() const noexcept { return reply_; }

    // BIND: the first reply has arrived and the proxy listens (finished() is
    // true, result() is the announcement).
    bool listening() const noexcept { return state_ == state::done && bind_stage_ == 1; }
    // BIND: go on to the second reply. Copy what you need of result() first:
    // the second reply overwrites it. False (nothing changes) unless listening().
    bool await_peer() noexcept;

private:
    enum class state : std::uint8_t {
        send_greeting,
        recv_method,
        send_auth,
        recv_auth,
        send_request,
        recv_reply_head,  // SOCKS5: VER REP RSV ATYP + first address byte
        recv_reply_tail,  // SOCKS5: rest of BND.ADDR and BND.PORT
        skip_reply_name,  // SOCKS5: a BND.ADDR name too long to keep, read and dropped
        recv_reply_port,  // SOCKS5: BND.PORT after a dropped name
        recv_socks4_reply,
        done,
        failed,
    };

    void fail(std::error_code ec) noexcept;
    void expect(state s, std::size_t n) noexcept;
    void on_complete_message() noexcept;
    bool check_early_failure() noexcept;
    bool reply_version_wrong() const noexcept;
    [[gnu::cold]] bool fail_wrong_version_early() noexcept;
    void parse_method() noexcept;
    void parse_auth() noexcept;
    void parse_reply_head() noexcept;
    void parse_reply_tail() noexcept;
    void parse_reply_port() noexcept;
    void parse_socks4_reply() noexcept;
    void on_final_reply() noexcept;
    std::error_code for_command(std::error_code ec) const noexcept;
    std::size_t encode_greeting(std::size_t at) noexcept;
    std::size_t encode_auth(std::size_t at) noexcept;
    std::size_t encode_socks5_request(std::size_t at) noexcept;
    std::size_t encode_socks4_request() noexcept;
    std::uint8_t auth_method() const noexcept;

    request req_;
    reply reply_;
    std::error_code error_;
    state state_;
    std::uint16_t out_len_ = 0;    // bytes of the pending send
    std::uint16_t need_ = 0;       // bytes the current message needs in total
    std::uint16_t have_ = 0;       // bytes of it received so far
    std::uint8_t bind_stage_ = 0;  // BIND: 0 before the first reply, 1 listening, 2 peer
    // One buffer serves every message: a send is always complete before the
    // next receive starts, and a reply's name stays here for result().
    std::span<std::uint8_t> buf_;
};

namespace detail {
// A base, so that the buffer exists before the machine that writes into it.
struct handshake_storage {
    std::array<std::uint8_t, max_handshake_buffer> bytes;
};
}  // namespace detail

// A handshake with a buffer of its own, big enough for any request: the
// simple choice on a stack.
class client_handshake : private detail::handshake_storage, public handshake_machine {
public:
    explicit client_handshake(const request& req) noexcept : handshake_machine(req, bytes) {}

    static constexpr std::size_t buffer_size = max_handshake_buffer;
};

// ---------------------------------------------------------------- UDP datagrams
//
// RFC 1928 section 7: every datagram to and from the relay starts with
//   RSV(2) FRAG(1) ATYP(1) DST.ADDR DST.PORT
// and then the payload. Fragments (FRAG != 0) are neither sent nor accepted.

// The largest header: a 255-byte name.
inline constexpr std::size_t max_udp_header = 4 + 1 + 255 + 2;

// The header's size for a destination; 0 when the destination is invalid
// (no address, a name empty, too long or with a NUL).
std::size_t udp_header_size(const address& destination) noexcept;

struct udp_header_result {
    std::size_t size = 0;  // bytes written at the start of `out`
    std::error_code error;
};

// Writes the header for destination:port at the start of `out`; the payload
// goes right after it (or in a second buffer of a gather write). A name is
// written as a name (ATYP 3) for the proxy to resolve: never resolved here.
// Errors: the name checks of a request, port_zero, std::errc::no_buffer_space.
udp_header_result encode_udp_header(const address& destination, std::uint16_t port,
                                    std::span<std::uint8_t> out) noexcept;

// A datagram from the relay: where it came from and its payload. The name of
// a name source and the payload are views into the parsed bytes.
struct udp_datagram {
    address source;
    std::uint16_t port = 0;
    std::span<const std::uint8_t> payload;
};

// Parses a datagram from the relay. Errors: udp_fragmented (FRAG != 0),
// udp_truncated (shorter than its header), udp_bad_address_type (ATYP not 1,
// 3 or 4, or an empty name); `out` is then unspecified.
std::error_code parse_udp_datagram(std::span<const std::uint8_t> in, udp_datagram& out) noexcept;

}  // namespace leakproof
