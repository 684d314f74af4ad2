#include "supervisor/stand_in.hpp"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string_view>

#include "supervisor/unix_socket.hpp"

namespace lp::supervise::stand_in {
namespace {

// The kernel's protocol name of the socket (sockfs' "system.sockprotoname").
void set_protocol(pid_t tid, int fd, socket_kind& k) noexcept {
    char path[64], name[32] = {};
    std::snprintf(path, sizeof path, "/proc/%d/fd/%d", static_cast<int>(tid), fd);
    if (::getxattr(path, "system.sockprotoname", name, sizeof name - 1) <= 0) return;
    std::string_view proto{name};
    if (proto == "TCP" || proto == "TCPv6") k.type = SOCK_STREAM;
    if (proto == "UDP" || proto == "UDPv6") k.type = SOCK_DGRAM;
    if (k.type < 0) return;
    k.domain = proto.ends_with("v6") ? AF_INET6 : AF_INET;
}

// Field `i` (0-based, separated by blanks) of one line of /proc/net/tcp.
std::string_view field(std::string_view line, int i) noexcept {
    std::size_t at = 0;
    for (int n = 0;; ++n) {
        at = line.find_first_not_of(' ', at);
        if (at == std::string_view::npos) return {};
        std::size_t end = line.find(' ', at);
        if (n == i) return line.substr(at, end == std::string_view::npos ? end : end - at);
        if (end == std::string_view::npos) return {};
        at = end;
    }
}

int hex_value(std::string_view text) noexcept {
    int v = 0;
    for (char c : text) {
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return 0;
        v = v * 16 + d;
    }
    return v;
}

// The state ("st", hex) of the socket of inode `ino` in the table
// /proc/TID/net/`table`, or 0 when the table does not hold it. Read in
// pieces of a fixed buffer, whole lines at a time.
int table_state(pid_t tid, const char* table, std::uint64_t ino) noexcept {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/net/%s", static_cast<int>(tid), table);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char want[24];
    int want_len = std::snprintf(want, sizeof want, "%llu", static_cast<unsigned long long>(ino));
    std::string_view inode{want, static_cast<std::size_t>(want_len)};
    char buf[16384];
    std::size_t kept = 0;
    int state = 0;
    for (ssize_t n; state == 0 && (n = ::read(fd, buf + kept, sizeof buf - kept)) > 0;) {
        std::string_view text{buf, kept + static_cast<std::size_t>(n)};
        std::size_t eol;
        while (state == 0 && (eol = text.find('\n')) != std::string_view::npos) {
            std::string_view line = text.substr(0, eol);
            if (field(line, 9) == inode) state = hex_value(field(line, 3));
            text.remove_prefix(eol + 1);
        }
        kept = text.size() < sizeof buf ? text.size() : 0;  // a longer line is no socket's
        std::memmove(buf, text.data(), kept);
    }
    ::close(fd);
    return state;
}

// The program's O_NONBLOCK and O_CLOEXEC, from the "flags:" line of
// /proc/TID/fdinfo/N (octal); -1 when it cannot be read.
int open_flags(pid_t tid, int fd) noexcept {
    char path[64], buf[512];
    std::snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", static_cast<int>(tid), fd);
    int f = ::open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) return -1;
    ssize_t n = ::read(f, buf, sizeof buf);
    ::close(f);
    if (n <= 0) return -1;
    std::string_view text{buf, static_cast<std::size_t>(n)};
    std::size_t at = text.find("flags:");
    if (at == std::string_view::npos) return -1;
    at = text.find_first_not_of(" \t", at + 6);
    int flags = 0;
    for (; at < text.size() && text[at] >= '0' && text[at] <= '7'; ++at)
        flags = flags * 8 + (text[at] - '0');
    return flags & (O_NONBLOCK | O_CLOEXEC);
}

std::uint64_t inode_of(int fd) noexcept {
    struct stat st;
    return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

// The sockets we installed, by inode, with (UDP) or without (TCP) a
// descriptor of ours: the last `entries_.size()`, the oldest forgotten
// first. Serving and worker threads may ask.
class installed_sockets {
public:
    ~installed_sockets() {
        for (const entry& e : entries_)
            if (e.fd >= 0) ::close(e.fd);
    }
    // A new descriptor of ours for `inode` (-1: none kept), or -2 when it is
    // not known at all.
    int find(std::uint64_t inode) noexcept {
        std::lock_guard lock{mutex_};
        for (const entry& e : entries_)
            if (e.inode == inode && inode != 0)
                return e.fd < 0 ? -1 : ::fcntl(e.fd, F_DUPFD_CLOEXEC, 0);
        return -2;
    }
    void add(std::uint64_t inode, int keep_fd) noexcept {
        int mine = keep_fd < 0 ? -1 : ::fcntl(keep_fd, F_DUPFD_CLOEXEC, 0);
        std::lock_guard lock{mutex_};
        entry& slot = entries_[next_++ % entries_.size()];
        if (slot.fd >= 0) ::close(slot.fd);
        slot = {inode, mine};
    }

private:
    struct entry {
        std::uint64_t inode = 0;
        int fd = -1;
    };
    std::mutex mutex_;
    std::array<entry, 256> entries_{};
    std::size_t next_ = 0;
};

installed_sockets& streams() noexcept {
    static installed_sockets s;
    return s;
}

installed_sockets& datagrams() noexcept {
    static installed_sockets d;
    return d;
}

}  // namespace

socket_kind identify(pid_t tid, int fd) noexcept {
    socket_kind k;
    set_protocol(tid, fd, k);
    if (k.domain >= 0) k.inode = socket_inode(tid, fd);
    return k;
}

int tcp_state(pid_t tid, const socket_kind& kind) noexcept {
    return table_state(tid, kind.domain == AF_INET6 ? "tcp6" : "tcp", kind.inode);
}

bool in_udp_table(pid_t tid, const socket_kind& kind) noexcept {
    return table_state(tid, kind.domain == AF_INET6 ? "udp6" : "udp", kind.inode) != 0;
}

int install(int listener, std::uint64_t id, pid_t tid, int fd, const socket_kind& kind) noexcept {
    int flags = open_flags(tid, fd);
    if (flags < 0) return -EBADF;
    int type = kind.type | SOCK_CLOEXEC | ((flags & O_NONBLOCK) ? SOCK_NONBLOCK : 0);
    int mine = ::socket(kind.domain, type, 0);
    if (mine < 0) return -errno;
    seccomp_notif_addfd add{};
    add.id = id;
    add.flags = SECCOMP_ADDFD_FLAG_SETFD;
    add.srcfd = static_cast<__u32>(mine);
    add.newfd = static_cast<__u32>(fd);
    add.newfd_flags = (flags & O_CLOEXEC) ? O_CLOEXEC : 0;
    if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0) {
        int err = errno;
        ::close(mine);
        return -err;
    }
    if (std::uint64_t inode = inode_of(mine)) {
        if (kind.type == SOCK_DGRAM)
            datagrams().add(inode, mine);
        else
            streams().add(inode, -1);
    }
    return mine;
}

bool installed_stream(std::uint64_t inode) noexcept {
    return streams().find(inode) == -1;
}

int find_datagram(std::uint64_t inode) noexcept {
    int fd = datagrams().find(inode);
    return fd < 0 ? -1 : fd;
}

}  // namespace lp::supervise::stand_in
