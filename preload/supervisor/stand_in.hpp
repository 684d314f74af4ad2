// A socket of the supervisor's own in the place of a program's, for when
// the kernel will not let the supervisor take the program's socket
// (pidfd_getfd refused: a container's seccomp profile without
// CAP_SYS_PTRACE) but still lets it see the process in /proc and read its
// memory.
//
// What is read without taking the descriptor: its protocol (the sockfs
// attribute "system.sockprotoname" of /proc/TID/fd/N), its O_NONBLOCK and
// O_CLOEXEC (/proc/TID/fdinfo/N). Only a fresh socket is replaced, through
// SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SETFD, at the same
// descriptor number, while the program waits in its call: a TCP socket
// this file did not install (every connect of the program comes here, so
// only an accepted or a listening socket, which no program connects, would
// be taken for one), a UDP socket that the kernel's UDP table does not hold
// (/proc/TID/net/udp: one the program bound is there). What the
// replacement does not keep: options set before the call, an address
// bound before a TCP connect, and other descriptors that were dup()ed from
// it earlier (they stay the old socket). README, "Static programs".
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace lp::supervise::stand_in {

// What a program's descriptor is, seen from /proc.
struct socket_kind {
    int domain = -1;          // AF_INET or AF_INET6; -1: no TCP or UDP socket
    int type = -1;            // SOCK_STREAM or SOCK_DGRAM
    std::uint64_t inode = 0;  // the socket's inode
};

socket_kind identify(pid_t tid, int fd) noexcept;

// The socket's state in the kernel's TCP table (TCP_ESTABLISHED…), 0 when
// the table does not hold it; and whether the UDP table holds it. Both read
// the whole table: a TCP table holds every TIME_WAIT of the machine, so it
// is only read for a socket installed here before (installed_stream).
int tcp_state(pid_t tid, const socket_kind& kind) noexcept;
bool in_udp_table(pid_t tid, const socket_kind& kind) noexcept;

// Replaces descriptor `fd` of the caller of notification `id` with a new
// socket of `kind`, with the program's O_NONBLOCK and O_CLOEXEC, and
// returns our descriptor of that socket, or -errno. Remembers it: a TCP
// socket by its inode (installed_stream), a UDP socket with a descriptor
// of ours (find_datagram).
int install(int listener, std::uint64_t id, pid_t tid, int fd, const socket_kind& kind) noexcept;

// Whether the TCP socket of `inode` was installed here (and may have been
// connected since). Remembers the last 256.
bool installed_stream(std::uint64_t inode) noexcept;

// The UDP sockets installed here stay open here too, so that the next call
// on one finds the same socket (with its port, its association to our DNS
// responder): a new descriptor of ours for `inode`, or -1. The last 256;
// a later call on an older one is refused.
int find_datagram(std::uint64_t inode) noexcept;

}  // namespace lp::supervise::stand_in
