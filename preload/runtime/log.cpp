#include "runtime/log.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "runtime/config.hpp"
#include "runtime/real.hpp"

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

namespace {

thread_local long speaker = 0;

// Up to `cap` - 1 bytes of /proc/<tid>/<what>, NUL-terminated ("" if gone).
void read_proc(long tid, const char* what, char* out, std::size_t cap) noexcept {
    line path;
    path << "/proc/" << tid << "/" << what;
    char name[64] = {};
    std::memcpy(name, path.text().data(), std::min(path.text().size(), sizeof name - 1));
    out[0] = '\0';
    int fd = ::open(name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = real::fn().read(fd, out, cap - 1);
    real::fn().close(fd);
    out[n > 0 ? n : 0] = '\0';
}

// The process a thread belongs to: "Tgid:" in /proc/<tid>/status.
long process_of(long tid) noexcept {
    char status[512];
    read_proc(tid, "status", status, sizeof status);
    const char* at = std::strstr(status, "\nTgid:");
    return at ? std::strtol(at + 6, nullptr, 10) : tid;
}

}  // namespace

void speak_for(long tid) noexcept {
    speaker = tid;
}

line start() noexcept {
    line ln;
    if (speaker == 0) {
        ln << "leakproof: " << program_invocation_short_name << "[" << static_cast<long>(getpid())
           << "]: ";
        return ln;
    }
    char comm[32];
    read_proc(speaker, "comm", comm, sizeof comm);
    comm[std::strcspn(comm, "\n")] = '\0';
    ln << "leakproof: " << comm << "[" << process_of(speaker) << "] (supervised): ";
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
            (void)!real::fn().write(fd, text.data(), text.size());
            real::fn().close(fd);
        }
    } else {
        (void)!real::fn().write(2, text.data(), text.size());
    }
    errno = saved;
}

}  // namespace lp::log
