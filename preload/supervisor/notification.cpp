#include "supervisor/notification.hpp"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

#include "leakproof/error.hpp"
#include "runtime/config.hpp"
#include "runtime/log.hpp"
#include "runtime/placeholder.hpp"
#include "runtime/policy.hpp"
#include "runtime/refuse.hpp"
#include "runtime/tunnel.hpp"
#include "supervisor/dns_responder.hpp"
#include "supervisor/stand_in.hpp"
#include "supervisor/unix_socket.hpp"

namespace lp::supervise {
namespace {

constexpr unsigned pidfd_thread = O_EXCL;         // PIDFD_THREAD (Linux 6.9): pidfd of any thread
constexpr std::size_t max_datagram = 256 * 1024;  // UDP GSO sends reach 64 KiB × segments
constexpr std::size_t max_control = 64 * 1024;
constexpr unsigned max_mmsg = 1024;  // UIO_MAXIOV, the kernel's own cap for sendmmsg

// What the program's call returns: a value, an error, or "let the kernel
// run it" (only where the kernel cannot reach the network with it).
struct answer {
    long val = 0;
    int err = 0;
    bool pass = false;
    bool later = false;  // handle_quick: this one may wait, leave it to a worker
};

answer ok(long v) {
    return {v, 0, false};
}
answer fail(int e) {
    return {0, e, false};
}
answer pass() {
    return {0, 0, true};
}
answer from_sys(long rc) {
    return rc < 0 ? fail(errno) : ok(rc);
}

// The program's socket, duplicated into this process, and what it is.
struct call {
    const context& ctx;
    const seccomp_notif& n;
    int fd;
    int domain;
    int type;
    bool quick;  // handle_quick: nothing that can wait on the network
    std::uint64_t arg(int i) const { return n.data.args[i]; }
    // An argument the kernel reads as a 32-bit int: the lower half only.
    std::uint32_t arg32(int i) const { return static_cast<std::uint32_t>(n.data.args[i]); }
};

// Once a seccomp profile has refused process_vm_readv/writev, memory is
// read and written through /proc/PID/mem instead: the same ptrace check by
// the kernel, and no system call a profile filters.
std::atomic<bool> vm_calls_refused{false};

bool through_proc_mem(pid_t pid, std::uint64_t addr, void* buf, std::size_t len,
                      bool write) noexcept {
    char path[32];
    std::snprintf(path, sizeof path, "/proc/%d/mem", static_cast<int>(pid));
    int fd = ::open(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) return false;
    auto off = static_cast<off_t>(addr);
    ssize_t n = write ? ::pwrite(fd, buf, len, off) : ::pread(fd, buf, len, off);
    ::close(fd);
    return n == static_cast<ssize_t>(len);
}

bool vm_call_refused(ssize_t rc) noexcept {
    if (rc >= 0 || (errno != EPERM && errno != ENOSYS)) return false;
    vm_calls_refused.store(true, std::memory_order_relaxed);
    return true;
}

bool read_mem(pid_t pid, std::uint64_t addr, void* buf, std::size_t len) noexcept {
    if (len == 0) return true;
    if (vm_calls_refused.load(std::memory_order_relaxed))
        return through_proc_mem(pid, addr, buf, len, false);
    iovec local{buf, len};
    iovec remote{reinterpret_cast<void*>(addr), len};
    ssize_t rc = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (vm_call_refused(rc)) return through_proc_mem(pid, addr, buf, len, false);
    return rc == static_cast<ssize_t>(len);
}

bool write_mem(pid_t pid, std::uint64_t addr, const void* buf, std::size_t len) noexcept {
    auto* bytes = const_cast<void*>(buf);
    if (vm_calls_refused.load(std::memory_order_relaxed))
        return through_proc_mem(pid, addr, bytes, len, true);
    iovec local{bytes, len};
    iovec remote{reinterpret_cast<void*>(addr), len};
    ssize_t rc = ::process_vm_writev(pid, &local, 1, &remote, 1, 0);
    if (vm_call_refused(rc)) return through_proc_mem(pid, addr, bytes, len, true);
    return rc == static_cast<ssize_t>(len);
}

// Whether the kernel lets us read `pid`'s memory at all (the ptrace
// "attach" check /proc/PID/mem makes, as process_vm_readv does).
bool memory_readable(pid_t pid) noexcept {
    char path[32];
    std::snprintf(path, sizeof path, "/proc/%d/mem", static_cast<int>(pid));
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) ::close(fd);
    return fd >= 0;
}

// Whether the caller is still waiting: after reading its memory by pid,
// this proves the pid was not reused by another process meanwhile.
bool still_waiting(const call& c) noexcept {
    std::uint64_t id = c.n.id;
    return ::ioctl(c.ctx.listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

int sock_opt(int fd, int opt) noexcept {
    int v = -1;
    socklen_t len = sizeof v;
    return ::getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 ? v : -1;
}

// The policy refuses DNS (port 53, placeholders aside); we hand it to our
// responder instead.
bool is_dns(const policy::decision& d) noexcept {
    return d.rule == policy::rule::dns;
}

// Our responder as an address of the socket's family.
socklen_t responder_for(const call& c, sockaddr_storage& out) noexcept {
    std::memset(&out, 0, sizeof out);
    if (c.domain == AF_INET) {
        std::memcpy(&out, &c.ctx.dns, sizeof c.ctx.dns);
        return sizeof c.ctx.dns;
    }
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&out);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = c.ctx.dns.sin_port;
    in6->sin6_addr.s6_addr[10] = in6->sin6_addr.s6_addr[11] = 0xff;  // ::ffff:127.0.0.1
    std::memcpy(&in6->sin6_addr.s6_addr[12], &c.ctx.dns.sin_addr, 4);
    return sizeof *in6;
}

std::uint16_t local_port(int fd) noexcept {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in&>(ss).sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6&>(ss).sin6_port);
    return 0;
}

// Before the program's socket reaches the responder: binds it if it is not
// yet (its connect or send would pick a port anyway) and admits that port
// (supervisor/dns_responder.hpp). 0 or the errno.
int admit_to_responder(const call& c) noexcept {
    if (c.ctx.dns.sin_port == 0) return ECONNREFUSED;  // no responder (start_responder)
    std::uint16_t port = local_port(c.fd);
    if (port == 0) {
        sockaddr_storage any{};
        any.ss_family = static_cast<sa_family_t>(c.domain);
        socklen_t len = c.domain == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
        if (::bind(c.fd, reinterpret_cast<sockaddr*>(&any), len) != 0) return errno;
        port = local_port(c.fd);
    }
    if (port == 0) return EADDRNOTAVAIL;
    dns::admit(port);
    return 0;
}

void log_redirect(const char* what, const policy::decision& d) noexcept {
    if (!log::enabled(log::level::verbose)) return;
    auto ln = log::start();
    ln << what << " ";
    refuse::put_target(ln, d);
    ln << ": DNS answered by the supervisor (placeholders), not sent";
    log::emit(log::level::verbose, ln);
}

answer refused(const char* what, const policy::decision& d) noexcept {
    refuse::by_policy(what, d);
    return fail(d.error);
}

// --udp relays datagrams in dynamic programs only (interposer/udp_relay.hpp).
answer relay_refused(const char* what, const policy::decision& d) noexcept {
    auto r = d;
    r.reason =
        "UDP through the proxy's relay (--udp) is not done under the supervisor (static "
        "programs, --supervise)";
    r.error = EPERM;
    return refused(what, r);
}

// Go (like glibc's RFC 6724 sorting) connects a UDP socket to each address
// it resolved to learn its source address, and sends nothing: for a
// placeholder that is refused as usual, but logged only at -v, or every Go
// program would print two refusals per name.
answer probe_refused(const policy::decision& d) noexcept {
    if (!log::enabled(log::level::verbose)) return fail(d.error);
    auto ln = log::start();
    ln << "connect ";
    refuse::put_target(ln, d);
    ln << ": refused: " << d.reason << " (a UDP address-selection probe)";
    log::emit(log::level::verbose, ln);
    return fail(d.error);
}

// Whether the socket has a peer: one getsockname-sized call per proxied
// connect, next to the handshake's dozen.
bool connected(int fd) noexcept {
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    return ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0;
}

answer proxied(const call& c, const policy::decision& d) noexcept {
    if (const char* err = config::get().error) {
        auto r = d;
        r.reason = err;
        return refused("connect", r);
    }
    // Connected already (a proxied connect answered 0 earlier): the kernel
    // says EISCONN. Our own connect to the proxy would say 0 instead (its
    // non-blocking connect was never collected) and a second SOCKS greeting
    // would go down the established stream to the destination.
    if (connected(c.fd)) return fail(EISCONN);
    path::selection used;
    std::size_t at = 0;
    auto ec = tunnel::establish(c.fd, c.domain, d, used, at);
    tunnel::report(d, used, ec, at);
    return ec ? fail(leakproof::to_errno(ec)) : ok(0);
}

// A connect that can wait on the network: through the proxy, or a TCP
// connect on a blocking socket to anything but loopback.
bool may_wait(const call& c, const policy::decision& d) noexcept {
    if (d.what == policy::verdict::proxy) return true;
    if (d.what != policy::verdict::direct || c.type != SOCK_STREAM) return false;
    if (d.target.addr.is_loopback()) return false;
    int flags = ::fcntl(c.fd, F_GETFL);
    return flags >= 0 && !(flags & O_NONBLOCK);
}

answer on_connect(const call& c) noexcept {
    sockaddr_storage ss{};
    std::uint32_t len = c.arg32(2);
    if (len > sizeof ss) return fail(EINVAL);
    if (c.arg(1) == 0) return from_sys(::connect(c.fd, nullptr, static_cast<socklen_t>(len)));
    if (!read_mem(static_cast<pid_t>(c.n.pid), c.arg(1), &ss, len)) return fail(EFAULT);
    if (!still_waiting(c)) return fail(EINTR);
    auto* sa = reinterpret_cast<const sockaddr*>(&ss);
    auto d = policy::decide(sa, static_cast<socklen_t>(len), c.type);
    if (c.quick && may_wait(c, d)) return answer{.later = true};
    if (is_dns(d)) {
        log_redirect("connect", d);
        if (int err = admit_to_responder(c)) return fail(err);
        sockaddr_storage to;
        socklen_t to_len = responder_for(c, to);
        return from_sys(::connect(c.fd, reinterpret_cast<sockaddr*>(&to), to_len));
    }
    switch (d.what) {
        case policy::verdict::direct:
            return from_sys(::connect(c.fd, sa, static_cast<socklen_t>(len)));
        case policy::verdict::refuse:
            if (c.type != SOCK_STREAM && placeholder::in_range(d.target.addr))
                return probe_refused(d);
            return refused("connect", d);
        case policy::verdict::proxy:
            if (c.type != SOCK_STREAM) return relay_refused("connect", d);
            return proxied(c, d);
    }
    return fail(EPERM);
}

// A datagram read out of the program: payload, ancillary data, address.
// Fixed buffers, never sized by what the program passed: nothing the
// program sends can make the supervisor allocate (and a failed allocation
// there would end it, and with it every call of the tree). One per
// process: sends are answered on the serving thread only (handle_quick
// never leaves one to a worker).
struct datagram {
    std::uint8_t data[max_datagram];
    std::size_t data_len = 0;
    std::uint8_t control[max_control];
    std::size_t control_len = 0;
    iovec pieces[IOV_MAX];
    sockaddr_storage name{};
    socklen_t name_len = 0;
};

datagram& serving_thread_datagram() noexcept {
    static datagram d;  // in .bss: pages are touched only by sends that need them
    d.data_len = d.control_len = 0;
    d.name_len = 0;
    return d;
}

// A datagram the supervisor will not copy: refused with a log line, as the
// kernel would (EMSGSIZE, ENOBUFS) or could (the same limits, lower).
answer too_large(const char* what, const char* why, int err) noexcept {
    refuse::with(what, "", why, err);
    return fail(err);
}

// Errno for a bad message, 0 when `m` now holds a copy of `h`.
int read_iov(pid_t pid, const msghdr& h, datagram& m) noexcept {
    if (h.msg_iovlen > IOV_MAX) return EMSGSIZE;
    if (!read_mem(pid, reinterpret_cast<std::uint64_t>(h.msg_iov), m.pieces,
                  h.msg_iovlen * sizeof(iovec)))
        return EFAULT;
    for (std::size_t i = 0; i < h.msg_iovlen; ++i) {
        const iovec& v = m.pieces[i];
        if (v.iov_len > max_datagram - m.data_len) return EMSGSIZE;
        if (!read_mem(pid, reinterpret_cast<std::uint64_t>(v.iov_base), m.data + m.data_len,
                      v.iov_len))
            return EFAULT;
        m.data_len += v.iov_len;
    }
    return 0;
}

int read_msg(pid_t pid, const msghdr& h, datagram& m) noexcept {
    if (h.msg_name != nullptr && h.msg_namelen > 0) {
        if (h.msg_namelen > sizeof m.name) return EINVAL;
        m.name_len = h.msg_namelen;
        if (!read_mem(pid, reinterpret_cast<std::uint64_t>(h.msg_name), &m.name, m.name_len))
            return EFAULT;
    }
    if (h.msg_controllen > max_control) return ENOBUFS;
    m.control_len = h.msg_controllen;
    if (!read_mem(pid, reinterpret_cast<std::uint64_t>(h.msg_control), m.control, m.control_len))
        return EFAULT;
    return read_iov(pid, h, m);
}

// The log line for a message read_msg() would not copy.
answer unread(const char* what, int err) noexcept {
    if (err == EMSGSIZE)
        return too_large(what, "datagram larger than the supervisor copies (256 KiB, 1024 pieces)",
                         err);
    if (err == ENOBUFS)
        return too_large(what, "more ancillary data than the supervisor copies (64 KiB)", err);
    return fail(err);
}

// Sends `m` from our copy of the socket, to the address the policy allows.
// The ancillary data is passed as is: on an IPv4/IPv6 socket it carries no
// descriptors (those are AF_UNIX's), only options like IP_PKTINFO.
answer send_datagram(const call& c, datagram& m, int flags, const char* what) noexcept {
    if (m.name_len > 0) {
        // Read as the kernel reads it (an AF_UNSPEC address, above all):
        // the interposer's rule, policy::decide_send. What names no IP
        // destination is sent as it is, for the kernel to refuse or ignore.
        auto* sa = reinterpret_cast<const sockaddr*>(&m.name);
        auto d = policy::decide_send(sa, m.name_len, c.domain, c.type);
        if (is_dns(d)) {
            log_redirect(what, d);
            if (int err = admit_to_responder(c)) return fail(err);
            m.name_len = responder_for(c, m.name);
        } else if (d.what == policy::verdict::refuse) {
            return refused(what, d);
        } else if (d.what == policy::verdict::proxy) {
            return relay_refused(what, d);
        }
    }
    iovec iov{m.data, m.data_len};
    msghdr h{};
    h.msg_name = m.name_len > 0 ? &m.name : nullptr;
    h.msg_namelen = m.name_len;
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    h.msg_control = m.control_len == 0 ? nullptr : m.control;
    h.msg_controllen = m.control_len;
    return from_sys(::sendmsg(c.fd, &h, flags));
}

// TCP sends: the kernel ignores their address unless MSG_FASTOPEN makes
// them a connect, which we refuse (the program falls back to connect()).
answer stream_send_answer(int flags) noexcept {
    if (!(flags & MSG_FASTOPEN)) return pass();
    refuse::with("sendto", "", "TCP Fast Open is not supported under supervision", EOPNOTSUPP);
    return fail(EOPNOTSUPP);
}

bool stream_send(const call& c, int flags, answer& a) noexcept {
    if (c.type != SOCK_STREAM) return false;
    a = stream_send_answer(flags);
    return true;
}

answer on_sendto(const call& c) noexcept {
    int flags = static_cast<int>(c.arg(3));
    if (answer a; stream_send(c, flags, a)) return a;
    auto pid = static_cast<pid_t>(c.n.pid);
    datagram& m = serving_thread_datagram();
    if (c.arg32(5) > sizeof m.name) return fail(EINVAL);
    if (c.arg(2) > max_datagram) return unread("sendto", EMSGSIZE);
    m.name_len = c.arg32(5);
    m.data_len = c.arg(2);
    if (!read_mem(pid, c.arg(4), &m.name, m.name_len) ||
        !read_mem(pid, c.arg(1), m.data, m.data_len))
        return fail(EFAULT);
    if (!still_waiting(c)) return fail(EINTR);
    return send_datagram(c, m, flags, "sendto");
}

answer on_sendmsg(const call& c) noexcept {
    int flags = static_cast<int>(c.arg(2));
    if (answer a; stream_send(c, flags, a)) return a;
    auto pid = static_cast<pid_t>(c.n.pid);
    msghdr h;
    datagram& m = serving_thread_datagram();
    if (!read_mem(pid, c.arg(1), &h, sizeof h)) return fail(EFAULT);
    if (int err = read_msg(pid, h, m)) return unread("sendmsg", err);
    if (!still_waiting(c)) return fail(EINTR);
    return send_datagram(c, m, flags, "sendmsg");
}

// Each message like sendmsg, read and sent one at a time (one buffer, not
// one per message: a batch may carry 1024 × 64 KiB); msg_len is written
// back as the kernel would. Like the kernel, an error after the first
// message is not reported.
answer on_sendmmsg(const call& c) noexcept {
    int flags = static_cast<int>(c.arg(3));
    if (answer a; stream_send(c, flags, a)) return a;
    auto pid = static_cast<pid_t>(c.n.pid);
    unsigned count = c.arg32(2) > max_mmsg ? max_mmsg : c.arg32(2);
    unsigned sent = 0;
    for (; sent < count; ++sent) {
        auto at = c.arg(1) + sent * sizeof(mmsghdr);
        mmsghdr header;
        datagram& m = serving_thread_datagram();
        answer a;
        if (!read_mem(pid, at, &header, sizeof header))
            a = fail(EFAULT);
        else if (int err = read_msg(pid, header.msg_hdr, m))
            a = unread("sendmmsg", err);
        else if (!still_waiting(c))
            a = fail(EINTR);
        else
            a = send_datagram(c, m, flags, "sendmmsg");
        if (a.err != 0) return sent == 0 ? a : ok(sent);
        auto len = static_cast<unsigned>(a.val);
        if (!write_mem(pid, at + offsetof(mmsghdr, msg_len), &len, sizeof len))
            return sent == 0 ? fail(EFAULT) : ok(sent);
    }
    return ok(sent);
}

// Families that cannot reach the network need no decision.
bool local_family(int domain) noexcept {
    return domain == AF_UNIX || domain == AF_NETLINK || domain == AF_ALG;
}

answer dispatch(const context& ctx, const seccomp_notif& n, int fd, bool quick) noexcept {
    call c{ctx, n, fd, sock_opt(fd, SO_DOMAIN), sock_opt(fd, SO_TYPE), quick};
    if (c.domain < 0 || c.type < 0) return fail(ENOTSOCK);
    if (local_family(c.domain)) return pass();
    if (c.domain != AF_INET && c.domain != AF_INET6) {
        refuse::with("socket", "", "this address family is not allowed under supervision", EPERM);
        return fail(EPERM);
    }
    switch (n.data.nr) {
        case SYS_connect: return on_connect(c);
        case SYS_sendto: return on_sendto(c);
        case SYS_sendmsg: return on_sendmsg(c);
        case SYS_sendmmsg: return on_sendmmsg(c);
    }
    return fail(ENOSYS);
}

void respond(const context& ctx, const seccomp_notif& n, const answer& a) noexcept {
    seccomp_notif_resp r{};
    r.id = n.id;
    if (a.pass) {
        r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    } else {
        r.val = a.val;
        r.error = -a.err;
    }
    // ENOENT here means the caller is gone (killed): nobody to answer.
    (void)::ioctl(ctx.listener, SECCOMP_IOCTL_NOTIF_SEND, &r);
}

// The log speaks for the trapped process while `n` is answered.
answer decide(const context& ctx, const seccomp_notif& n, int copy, bool quick) noexcept {
    log::speak_for(static_cast<long>(n.pid));
    answer a = dispatch(ctx, n, copy, quick);
    log::speak_for(0);
    return a;
}

}  // namespace

namespace {

long open_pidfd(pid_t tid) noexcept {
    long pidfd = syscall(SYS_pidfd_open, tid, pidfd_thread);
    if (pidfd < 0 && errno == EINVAL) pidfd = syscall(SYS_pidfd_open, tid, 0);  // older kernel
    return pidfd < 0 ? -errno : pidfd;
}

// The serving thread copies descriptors of the same few threads over and
// over: it keeps their pidfds (two system calls fewer per notification). A
// hit is always the right thread: while a pidfd's thread lives its tid
// cannot be reused, and once it has exited the pidfd answers ESRCH.
class pidfd_cache {
public:
    ~pidfd_cache() {
        for (const entry& e : entries_)
            if (e.fd >= 0) ::close(e.fd);
    }
    // A pidfd for `tid`, or -errno.
    int get(pid_t tid) noexcept {
        for (const entry& e : entries_)
            if (e.tid == tid && e.fd >= 0) return e.fd;
        long fd = open_pidfd(tid);
        if (fd < 0) return static_cast<int>(fd);
        entry& slot = entries_[next_++ % entries_.size()];
        if (slot.fd >= 0) ::close(slot.fd);
        slot = {tid, static_cast<int>(fd)};
        return slot.fd;
    }
    void forget(pid_t tid) noexcept {
        for (entry& e : entries_)
            if (e.tid == tid && e.fd >= 0) ::close(std::exchange(e.fd, -1));
    }

private:
    struct entry {
        pid_t tid = 0;
        int fd = -1;
    };
    std::array<entry, 16> entries_{};
    std::size_t next_ = 0;
};

}  // namespace

int copy_fd(pid_t tid, int fd) noexcept {
    thread_local pidfd_cache cache;
    for (int attempt = 0;; ++attempt) {
        int pidfd = cache.get(tid);
        if (pidfd < 0) return pidfd;
        long dup = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
        if (dup >= 0) return static_cast<int>(dup);
        int err = errno;
        if (err != ESRCH) return -err;
        cache.forget(tid);  // that thread is gone; is `tid` a new one?
        if (attempt == 1) return -err;
    }
}

namespace {

const char* call_name(int nr) noexcept {
    switch (nr) {
        case SYS_connect: return "connect";
        case SYS_sendto: return "sendto";
        case SYS_sendmsg: return "sendmsg";
        case SYS_sendmmsg: return "sendmmsg";
    }
    return "call";
}

// Yama's ptrace_scope (0 without Yama): at 1 only an ancestor, the ptracer
// the process named (interposer/ptracer.hpp) or a holder of CAP_SYS_PTRACE
// may take a process's descriptors; at 2 only the latter.
int yama_scope() noexcept {
    int fd = ::open("/proc/sys/kernel/yama/ptrace_scope", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char c = '0';
    ssize_t n = ::read(fd, &c, 1);
    ::close(fd);
    return n == 1 && c >= '0' && c <= '9' ? c - '0' : 0;
}

// Why the kernel refused us a socket of `tid`, and what would fix it.
const char* why_refused(pid_t tid) noexcept {
    char path[48], link[64];
    std::snprintf(path, sizeof path, "/proc/%d/fd/0", static_cast<int>(tid));
    if (::readlink(path, link, sizeof link) < 0 && errno == EACCES)
        return "the kernel does not let the supervisor take this process's socket: the process "
               "made itself non-dumpable (run leakproof as root to cover it)";
    int scope = yama_scope();
    if (scope == 1)
        return "the kernel does not let the supervisor take this process's socket: "
               "kernel.yama.ptrace_scope is 1 and the process was started where nothing of "
               "leakproof's could name the supervisor its ptracer (by a static program, or by "
               "posix_spawn) (run leakproof as root, or sysctl kernel.yama.ptrace_scope=0)";
    if (scope >= 2)
        return "the kernel does not let the supervisor take this process's socket: "
               "kernel.yama.ptrace_scope is 2 or more (run leakproof as root, or sysctl "
               "kernel.yama.ptrace_scope=0)";
    return "the kernel does not let the supervisor take this process's socket: a seccomp profile "
           "forbids pidfd_getfd (in a container: give it CAP_SYS_PTRACE)";
}

// Without a copy of the socket nothing can be checked, so nothing runs —
// but a local socket needs no check (supervisor/unix_socket.hpp).
// ESRCH: the thread is going away (its call was interrupted). EBADF: `fd`
// is no descriptor, as the kernel would have said. Anything else is the
// kernel refusing us the process, which the program hears as such, with
// the log line any refusal has.
answer copy_failed(const seccomp_notif& n, int err) noexcept {
    if (err == ESRCH) return fail(EINTR);
    if (err == EBADF) return fail(EBADF);
    auto tid = static_cast<pid_t>(n.pid);
    if (is_unix_socket(tid, static_cast<int>(n.data.args[0]))) return pass();
    log::speak_for(static_cast<long>(n.pid));
    refuse::with(
        call_name(n.data.nr), "",
        err == EPERM ? why_refused(tid) : "the supervisor cannot take this process's socket", err);
    log::speak_for(0);
    return fail(err);
}

// The flags argument of a send-family call.
int send_flags(const seccomp_notif& n) noexcept {
    return static_cast<int>(n.data.args[n.data.nr == SYS_sendmsg ? 2 : 3]);
}

// What the kernel answers a connect on a TCP socket it has in its table.
int connect_errno_in_state(int tcp_state) noexcept {
    constexpr int syn_sent = 2, listening = 10;  // TCP_SYN_SENT, TCP_LISTEN
    return tcp_state == syn_sent ? EALREADY : tcp_state == listening ? EINVAL : EISCONN;
}

answer cannot_stand_in(const seccomp_notif& n, const char* why) noexcept {
    log::speak_for(static_cast<long>(n.pid));
    refuse::with(call_name(static_cast<int>(n.data.nr)), "", why, EPERM);
    log::speak_for(0);
    return fail(EPERM);
}

// pidfd_getfd was refused: a socket of ours stands in for the program's
// (supervisor/stand_in.hpp). Either answers the call without a socket of
// ours (TCP sends, a connect on a TCP socket that is connected already),
// or sets `copy` to ours; nothing, with `copy` left as it was, when the
// kernel lets us neither see the descriptor nor read the process's memory
// (copy_failed says why).
std::optional<answer> stand_in_for(const context& ctx, const seccomp_notif& n, int& copy) noexcept {
    auto tid = static_cast<pid_t>(n.pid);
    int fd = static_cast<int>(n.data.args[0]);
    auto kind = stand_in::identify(tid, fd);
    if (kind.domain < 0 || !memory_readable(tid)) return std::nullopt;
    if (kind.type == SOCK_STREAM) {
        if (n.data.nr != SYS_connect) return stream_send_answer(send_flags(n));
        // Ours from an earlier connect: the kernel's answer while it is
        // connecting or connected; a new socket once that failed.
        if (stand_in::installed_stream(kind.inode))
            if (int state = stand_in::tcp_state(tid, kind))
                return fail(connect_errno_in_state(state));
    } else if (int known = stand_in::find_datagram(kind.inode); known >= 0) {
        copy = known;
        return std::nullopt;
    } else if (stand_in::in_udp_table(tid, kind)) {
        return cannot_stand_in(n,
                               "the kernel does not let the supervisor take this process's "
                               "socket, and the program bound it itself (or it was forgotten "
                               "among more than 256)");
    }
    int mine = stand_in::install(ctx.listener, n.id, tid, fd, kind);
    if (mine < 0)
        return cannot_stand_in(n,
                               "the kernel lets the supervisor neither take this process's "
                               "socket nor put one of its own in its place "
                               "(SECCOMP_IOCTL_NOTIF_ADDFD, Linux 5.9)");
    copy = mine;
    return std::nullopt;
}

}  // namespace

bool handle_quick(const context& ctx, const seccomp_notif& n, int& copy) noexcept {
    copy = copy_fd(static_cast<pid_t>(n.pid), static_cast<int>(n.data.args[0]));
    if (copy == -EPERM) {
        if (auto a = stand_in_for(ctx, n, copy)) {
            respond(ctx, n, *a);
            return true;
        }
    }
    if (copy < 0) {
        respond(ctx, n, copy_failed(n, -copy));
        return true;
    }
    answer a = decide(ctx, n, copy, true);
    if (a.later) return false;  // the copy goes to the worker
    ::close(copy);
    respond(ctx, n, a);
    return true;
}

void refuse_unserved(const context& ctx, const seccomp_notif& n, int copy, int err) noexcept {
    ::close(copy);
    log::speak_for(static_cast<long>(n.pid));
    refuse::with(call_name(static_cast<int>(n.data.nr)), "",
                 err == ENOMEM ? "the supervisor is out of memory"
                               : "the supervisor cannot start a thread for it",
                 err);
    log::speak_for(0);
    respond(ctx, n, fail(err));
}

void handle(const context& ctx, const seccomp_notif& n, int copy) noexcept {
    answer a = decide(ctx, n, copy, false);
    ::close(copy);
    respond(ctx, n, a);
}

}  // namespace lp::supervise
