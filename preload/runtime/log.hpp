// One line per event, without allocating.
//
// A line is built in a stack buffer and written with a single write(2) to
// stderr, or appended to LEAKPROOF_LOG_FILE (opened and closed per line: the
// application may close or reuse any descriptor we would keep open).
// Credentials never reach this module: proxies are printed with
// format_redacted().
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "leakproof/proxy.hpp"

namespace lp::log {

enum class level : int { quiet = 0, normal = 1, verbose = 2, debug = 3 };

// A fixed-size line; text past the end is cut, never overflowed.
class line {
public:
    line& operator<<(std::string_view s) noexcept;
    line& operator<<(const char* s) noexcept { return *this << std::string_view{s ? s : ""}; }
    line& operator<<(unsigned long v) noexcept;
    line& operator<<(long v) noexcept;
    line& operator<<(int v) noexcept { return *this << static_cast<long>(v); }
    line& operator<<(unsigned v) noexcept { return *this << static_cast<unsigned long>(v); }
    line& operator<<(std::uint16_t v) noexcept { return *this << static_cast<unsigned long>(v); }
    line& proxy(const leakproof::proxy& p) noexcept;
    // An IPv4/IPv6 socket address as host:port ([v6]:port).
    line& endpoint(const sockaddr* sa) noexcept;
    std::string_view text() const noexcept { return {buf_, len_}; }

private:
    char buf_[1024];
    std::size_t len_ = 0;
};

// Starts a line with "leakproof: prog[pid]: ", or, on a thread that speaks
// for a supervised process (speak_for), "leakproof: its-name[its-pid]
// (supervised): " so that the log says which mode each process runs in.
line start() noexcept;
// The supervisor's workers: lines on this thread are about thread `tid` of
// a supervised program (0: about this process again).
void speak_for(long tid) noexcept;
bool enabled(level l) noexcept;
// Writes the line (plus '\n') if `l` is enabled. Keeps errno.
void emit(level l, line& ln) noexcept;

}  // namespace lp::log
