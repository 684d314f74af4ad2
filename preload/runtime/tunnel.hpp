// Drives the core handshake on the application's own
// socket: connect it to the first proxy, then CONNECT each next hop over the
// previous one, the last one to the real destination. No SOCKS byte is
// built or parsed here: that is client_handshake's job. This module only
// moves bytes with the real send/recv/poll, bounded by one deadline.
#pragma once

#include <errno.h>
#include <sys/socket.h>
#include <time.h>

#include <cstddef>
#include <system_error>

#include "leakproof/handshake.hpp"
#include "runtime/log.hpp"
#include "runtime/marker.hpp"
#include "runtime/path.hpp"
#include "runtime/policy.hpp"

namespace lp::tunnel {

// Runs the whole connect for a "proxy" decision: the chain its route takes
// (route.hpp), walked in the configured chain mode (path.hpp), trying again
// without a hop that is down while the mode allows. `used` gets the hops
// of the last attempt and `at` the position in it the connect got to (on a
// failure, the hop that failed), for report(). `family` is the socket's
// domain (the family of the address the program connects to: the kernel
// refuses any other), `flags` its F_GETFL (the caller has them already).
// The socket's mode is the program's again on return, whatever happens. A
// system error comes back in std::generic_category (leakproof::to_errno
// passes it through).
std::error_code establish(int fd, int family, int flags, const policy::decision& d,
                          path::selection& used, std::size_t& at) noexcept;
// The same for a caller without the flags: reads them first.
std::error_code establish(int fd, int family, const policy::decision& d, path::selection& used,
                          std::size_t& at) noexcept;

// The pieces the non-blocking path (pending.hpp), the reverse lookups
// (reverse.hpp) and the supervisor share with establish():

// One monotonic deadline for a whole operation.
class deadline {
public:
    explicit deadline(int ms) noexcept {
        clock_gettime(CLOCK_MONOTONIC, &end_);
        end_.tv_sec += ms / 1000;
        end_.tv_nsec += static_cast<long>(ms % 1000) * 1000000L;
        if (end_.tv_nsec >= 1000000000L) {
            end_.tv_sec += 1;
            end_.tv_nsec -= 1000000000L;
        }
    }
    // Rounded up: 0 only once the deadline has passed, so that a poll()
    // given this never spins on a zero timeout before it.
    int remaining_ms() const noexcept {
        timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms =
            (end_.tv_sec - now.tv_sec) * 1000L + (end_.tv_nsec - now.tv_nsec + 999999L) / 1000000L;
        return ms < 0 ? 0 : static_cast<int>(ms);
    }

private:
    timespec end_;
};

// Connects a non-blocking `fd` to the first proxy: done or under way (the
// first send waits for it), or the error.
std::error_code connect_first_hop(int fd, int family) noexcept;
// Runs `hs` to its end on `fd`, connected (or connecting) to the proxy:
// reads only what the core asks for, so bytes after the reply stay unread.
// The blocking loop around step(): it waits with poll() bounded by `dl`.
std::error_code drive(int fd, leakproof::client_handshake& hs, const deadline& dl) noexcept;

// ONE non-blocking step of a handshake on `fd`, shared by every driver:
// drive() above (blocking connects, the supervisor, reverse lookups) and the
// helper thread of non-blocking connects (interposer/pending.cpp). It does
// at most one send or one receive (MSG_DONTWAIT, whatever the socket's
// mode; MSG_NOSIGNAL: a proxy hanging up must not kill the program with
// SIGPIPE) and says what the handshake waits for.
enum class step_result {
    more,        // call step() again
    want_read,   // wait until fd is readable, then step()
    want_write,  // wait until fd is writable (also: the connect to the proxy)
    done,        // hs.next() is done
    failed,      // `ec` says why
};
struct step_state {
    std::size_t sent = 0;    // bytes of the current send action already written
    bool just_sent = false;  // the answer to a send cannot be there yet: the
                             // first receive after it waits before its recv
};
step_result step(int fd, leakproof::client_handshake& hs, step_state& st,
                 std::error_code& ec) noexcept;

// "The proxy hung up" for every driver, the Asio layer included
// (include/leakproof/asio.hpp): end of stream, or ECONNRESET / EPIPE from a
// receive or a send. Inside a handshake it is error::proxy_closed.
constexpr bool hung_up(int err) noexcept {
    return err == ECONNRESET || err == EPIPE;
}
// Undoes a connect on `fd` the way the kernel's own failed connect leaves a
// socket: unconnected (connect(AF_UNSPEC)), so that a later connect() is a
// new attempt. The kernel records that as ECONNRESET in SO_ERROR; with
// `keep_error` it stays there (poll() then reports POLLERR, as after a
// failed non-blocking connect), otherwise it is read away (a blocking
// connect() returned the error itself).
void disconnect(int fd, bool keep_error) noexcept;
// A one-line description of a handshake or system error, without allocating.
const char* describe(std::error_code ec) noexcept;
// Writes describe(ec), or for a hop that is not a SOCKS server the sentence
// naming it ("proxy 127.0.0.1:8080 answered like an HTTP server, not SOCKS").
// `hop`: the proxy that answered, or null when none did.
void put_error(log::line& ln, std::error_code ec, const leakproof::proxy* hop) noexcept;

// Connects a non-blocking `fd` to `hop` (an IP address: path.hpp), like
// connect_first_hop.
std::error_code connect_hop(int fd, int family, const leakproof::proxy& hop) noexcept;
// Dissolves a failed attempt's connection (connect AF_UNSPEC) so that the
// same socket, with the program's options and binding, can try the next.
std::error_code disconnect(int fd) noexcept;
// The attempt's deadline: the connect's, or sooner outside strict mode when
// a hop timeout is set (each hop of `sel` gets that long).
deadline attempt_deadline(const deadline& whole, const path::selection& sel) noexcept;

// The CONNECT request for the hop at `position` of `sel`: to the next hop,
// or for the last one to the program's destination. Views point into the
// configuration and into `target`.
leakproof::request hop_request(const path::chain& c, const path::selection& sel,
                               std::size_t position, const leakproof::address& target,
                               std::uint16_t port) noexcept;
// At -v: the hop at `position` of `sel` is down, the walk goes on without it.
void report_down(const policy::decision& d, const path::chain& c, const path::selection& sel,
                 std::size_t position, std::error_code ec) noexcept;
// The destination the proxy gets for a "proxy" decision (a view into `d`).
leakproof::address target_of(const policy::decision& d) noexcept;
// Logs the outcome of a proxied connect, with the hops that carried it (or
// failed it) and the route it took: failures always, successes at -v. `at`:
// the position in `used` of the hop whose handshake gave `ec`, which a
// failure names when it is not a SOCKS server.
void report(const policy::decision& d, const path::selection& used, std::error_code ec,
            std::size_t at) noexcept;

}  // namespace lp::tunnel
