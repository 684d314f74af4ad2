#include "log.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "config.hpp"
#include "real.hpp"

extern char* program_invocation_short_name;  // glibc

namespace lp::log {

line& line::operator<<(std::string_view s) noexcept {
    std::size_t n = s.size();
    if (n > sizeof buf_ - 1 - len_) n = sizeof buf_ - 1 - len_;
    std::memcpy(buf_ + len_, s.data(), n);
    len_ += n;
    return *this;
}

line& line::operator<<(unsigned long v) noexcept {
    char tmp[24];
    std::size_t i = sizeof tmp;
    do {
        tmp[--i] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return *this << std::string_view{tmp + i, sizeof tmp - i};
}

line& line::operator<<(long v) noexcept {
    if (v < 0) {
        *this << "-";
        return *this << static_cast<unsigned long>(-(v + 1)) + 1UL;
    }
    return *this << static_cast<unsigned long>(v);
}

line& line::proxy(const leakproof::proxy& p) noexcept {
    char tmp[700];
    std::size_t n = leakproof::format_redacted(p, tmp, sizeof tmp);
    return *this << std::string_view{tmp, n};
}

line& line::endpoint(const sockaddr* sa) noexcept {
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        return *this << host << ":" << port;
    }
    if (sa->sa_family == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        return *this << "[" << host << "]:" << port;
    }
    return *this << "family " << static_cast<int>(sa->sa_family);
}

line start() noexcept {
    line ln;
    ln << "leakproof: " << program_invocation_short_name << "[" << static_cast<long>(getpid())
       << "]: ";
    return ln;
}

bool enabled(level l) noexcept {
    return static_cast<int>(l) <= config::get().log_level;
}

void emit(level l, line& ln) noexcept {
    if (!enabled(l)) return;
    int saved = errno;
    ln << "\n";
    auto text = ln.text();
    const char* file = config::get().log_file;
    if (file[0] != '\0') {
        int fd = ::open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
            (void)!::write(fd, text.data(), text.size());
            real::fn().close(fd);
        }
    } else {
        (void)!::write(2, text.data(), text.size());
    }
    errno = saved;
}

}  // namespace lp::log
