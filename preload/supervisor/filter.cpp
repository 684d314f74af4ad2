#include "supervisor/filter.hpp"

#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <cstddef>
#include <cstdint>

#include "runtime/marker.hpp"

namespace lp::supervise {

#if defined(__x86_64__)
namespace {

constexpr std::uint32_t our_arch = AUDIT_ARCH_X86_64;
constexpr std::uint32_t x32_bit = 0x40000000;  // __X32_SYSCALL_BIT

constexpr std::uint32_t at(std::size_t off) {
    return static_cast<std::uint32_t>(off);
}

// Offsets in seccomp_data of the low 32 bits of argument i (x86_64 is
// little-endian) and of the high ones.
constexpr std::uint32_t arg_low(int i) {
    return at(offsetof(seccomp_data, args) + static_cast<std::size_t>(i) * sizeof(__u64));
}
constexpr std::uint32_t arg_high(int i) {
    return arg_low(i) + 4;
}

// The smallest address that can name an IPv4 or IPv6 destination: the
// kernel refuses shorter ones (EINVAL) for every IP socket, so calls with a
// shorter one (netlink's 12 bytes, most of all) run without a round trip.
constexpr std::uint32_t min_ip_addrlen = sizeof(sockaddr_in);

// Straight-line BPF with forward jumps to named places, resolved when the
// program is built, so that nobody counts instructions by hand.
class bpf {
public:
    enum place {
        allow,
        notify,
        enosys,
        eperm,
        kill,
        connect_len,
        sendto_addr,
        sendto_len,
        sendmsg_mark,
        sendmmsg_mark,
        places
    };

    void load(std::uint32_t offset) { code_.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset)); }
    void mask(std::uint32_t k) { code_.push_back(BPF_STMT(BPF_ALU | BPF_AND | BPF_K, k)); }
    // Go to `to` if A == k, A != k, A >= k; else on to the next instruction.
    void if_eq(std::uint32_t k, place to) { jump(BPF_JEQ, k, to, next); }
    void unless_eq(std::uint32_t k, place to) { jump(BPF_JEQ, k, next, to); }
    void if_ge(std::uint32_t k, place to) { jump(BPF_JGE, k, to, next); }
    void ret(std::uint32_t what) { code_.push_back(BPF_STMT(BPF_RET | BPF_K, what)); }
    void here(place p) { at_[p] = code_.size(); }

    std::vector<sock_filter> done() {
        for (auto [i, yes, no] : jumps_) {
            code_[i].jt = offset(i, yes);
            code_[i].jf = offset(i, no);
        }
        return code_;
    }

private:
    static constexpr int next = -1;

    struct fixup {
        std::size_t index;
        int yes, no;
    };

    void jump(std::uint16_t op, std::uint32_t k, int yes, int no) {
        jumps_.push_back({code_.size(), yes, no});
        code_.push_back(BPF_JUMP(BPF_JMP | op | BPF_K, k, 0, 0));
    }
    std::uint8_t offset(std::size_t from, int to) const {
        return to == next ? 0 : static_cast<std::uint8_t>(at_[to] - from - 1);
    }

    std::vector<sock_filter> code_;
    std::vector<fixup> jumps_;
    std::size_t at_[places] = {};
};

constexpr std::uint32_t sock_packet = 10;  // SOCK_PACKET: AF_INET's old name for packet sockets

// The filter. Every test reads registers the kernel copied, which the
// program cannot change after the check. sendto() without an address is a
// send on a connected socket, whose destination connect() already checked.
// A call with the interposer's mark in the upper half of its length or
// flags (runtime/marker.hpp) was judged by the interposer: it runs.
// Packet sockets (root only) would send frames past every check: refused.
std::vector<sock_filter> build() {
    using p = bpf::place;
    bpf f;
    f.load(at(offsetof(seccomp_data, arch)));
    f.unless_eq(our_arch, p::kill);  // i386 calls through int 0x80
    f.load(at(offsetof(seccomp_data, nr)));
    f.if_ge(x32_bit, p::kill);  // x32 numbers
    f.if_eq(SYS_connect, p::connect_len);
    f.if_eq(SYS_sendto, p::sendto_addr);
    f.if_eq(SYS_sendmsg, p::sendmsg_mark);
    f.if_eq(SYS_sendmmsg, p::sendmmsg_mark);
    f.if_eq(SYS_io_uring_setup, p::enosys);  // its submissions would bypass the filter
    f.unless_eq(SYS_socket, p::allow);
    f.load(arg_low(0));
    f.if_eq(AF_PACKET, p::eperm);
    f.load(arg_low(1));
    f.mask(0xf);  // the type without SOCK_NONBLOCK | SOCK_CLOEXEC
    f.if_eq(sock_packet, p::eperm);
    f.ret(SECCOMP_RET_ALLOW);

    f.here(p::sendto_addr);
    f.load(arg_low(4));
    f.unless_eq(0, p::sendto_len);
    f.load(arg_high(4));
    f.if_eq(0, p::allow);
    f.here(p::sendto_len);
    f.load(arg_high(5));
    f.if_eq(marker::mark, p::allow);  // judged by the interposer
    f.load(arg_low(5));               // the kernel reads addrlen as an int: the low half
    f.if_ge(min_ip_addrlen, p::notify);
    f.ret(SECCOMP_RET_ALLOW);

    f.here(p::sendmsg_mark);
    f.load(arg_high(2));  // flags
    f.if_eq(marker::mark, p::allow);
    f.ret(SECCOMP_RET_USER_NOTIF);

    f.here(p::sendmmsg_mark);
    f.load(arg_high(3));  // flags
    f.if_eq(marker::mark, p::allow);
    f.ret(SECCOMP_RET_USER_NOTIF);

    f.here(p::connect_len);
    f.load(arg_high(2));
    f.if_eq(marker::mark, p::allow);  // judged by the interposer
    f.load(arg_low(2));
    f.if_ge(min_ip_addrlen, p::notify);

    f.here(p::allow);
    f.ret(SECCOMP_RET_ALLOW);
    f.here(p::notify);
    f.ret(SECCOMP_RET_USER_NOTIF);
    f.here(p::enosys);
    f.ret(SECCOMP_RET_ERRNO | ENOSYS);
    f.here(p::eperm);
    f.ret(SECCOMP_RET_ERRNO | EPERM);
    f.here(p::kill);
    f.ret(SECCOMP_RET_KILL_PROCESS);
    return f.done();
}

}  // namespace

std::vector<sock_filter> filter_program() {
    return build();
}
#else
std::vector<sock_filter> filter_program() {
    return {};
}
#endif

}  // namespace lp::supervise
