// Every path by which a program could send a name to DNS, each with its own
// name pN.leak.test (or a reverse lookup of 192.0.2.N), so the dnsmasq log
// says which path leaked.
//
//   leak_probe wrapped DNS_ADDR   under leakproof: each call must get what the
//                                 policy promises (placeholder or refusal);
//                                 the test then checks dnsmasq saw nothing
//   leak_probe bare DNS_ADDR      without leakproof: the same calls, results
//                                 ignored; prints "needle X" for each query the
//                                 dnsmasq log must then show (the harness sees
//                                 leaks)
//   leak_probe fd HOST PORT       under leakproof with a proxy: a proxied
//                                 socket's peer survives fcntl(F_DUPFD*) and
//                                 syscall(SYS_dup); close_range forgets it
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <resolv.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

// The pre-2.34 names, as old binaries reference them.
extern "C" {
int old_res_query(const char*, int, int, unsigned char*, int);
int old_res_search(const char*, int, int, unsigned char*, int);
int old_res_send(const unsigned char*, int, unsigned char*, int);
int old_res_nquery(res_state, const char*, int, int, unsigned char*, int);
}
__asm__(".symver old_res_query,__res_query@GLIBC_2.2.5");
__asm__(".symver old_res_search,__res_search@GLIBC_2.2.5");
__asm__(".symver old_res_send,__res_send@GLIBC_2.2.5");
__asm__(".symver old_res_nquery,__res_nquery@GLIBC_2.2.5");

namespace {

bool wrapped = false;
int failures = 0;
sockaddr_in dns{};

void check(bool ok, const std::string& what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    if (!ok) ++failures;
}

// In bare mode: what the dnsmasq log must show.
void needle(const std::string& s) {
    if (!wrapped) std::printf("needle %s\n", s.c_str());
}

std::string name(int n) {
    return "p" + std::to_string(n) + ".leak.test";
}

// Wrapped: the call was refused with `err`. Bare: announces the query.
void expect_refused(int n, const char* what, long rc, int err) {
    needle(name(n));
    if (wrapped) check(rc == -1 && errno == err, std::string{what} + " refused (" + name(n) + ")");
}

// Whether the tree has a supervisor whose responder answers every DNS
// client (LEAKPROOF_DNS): then a query to port 53 is sent — to it.
bool responder() {
    const char* port = getenv("LEAKPROOF_DNS");
    return port != nullptr && *port != '\0';
}

// A query to port 53 (dnsmasq's address): sent to the supervisor's
// responder when there is one, refused with `err` otherwise. Either way
// the test checks that dnsmasq saw nothing.
void expect_contained(int n, const char* what, long rc, int err) {
    if (!responder()) return expect_refused(n, what, rc, err);
    needle(name(n));
    if (wrapped) check(rc >= 0, std::string{what} + " answered by the responder (" + name(n) + ")");
}

bool is_placeholder(const sockaddr* sa) {
    if (sa->sa_family == AF_INET)
        return (ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr) >> 28) == 0xF;
    return reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr.s6_addr[0] == 1;
}

int query(int n, unsigned char* buf, int size) {
    return res_mkquery(QUERY, name(n).c_str(), C_IN, T_A, nullptr, 0, nullptr, buf, size);
}

void resolver_library() {
    unsigned char ans[512];
    unsigned char q[512];
    res_init();
    long rc = res_query(name(10).c_str(), C_IN, T_A, ans, sizeof ans);
    expect_refused(10, "res_query", rc, ECONNREFUSED);
    if (wrapped) check(h_errno == NO_RECOVERY, "res_query h_errno NO_RECOVERY");
    rc = res_search(name(11).c_str(), C_IN, T_A, ans, sizeof ans);
    expect_refused(11, "res_search", rc, ECONNREFUSED);
    rc = res_querydomain("p12", "leak.test", C_IN, T_A, ans, sizeof ans);
    expect_refused(12, "res_querydomain", rc, ECONNREFUSED);
    int len = query(13, q, sizeof q);
    rc = res_send(q, len, ans, sizeof ans);
    expect_refused(13, "res_send", rc, ECONNREFUSED);
    struct __res_state st {};
    res_ninit(&st);
    rc = res_nquery(&st, name(14).c_str(), C_IN, T_A, ans, sizeof ans);
    expect_refused(14, "res_nquery", rc, ECONNREFUSED);
    if (wrapped) check(st.res_h_errno == NO_RECOVERY, "res_nquery res_h_errno NO_RECOVERY");
    rc = res_nsearch(&st, name(15).c_str(), C_IN, T_A, ans, sizeof ans);
    expect_refused(15, "res_nsearch", rc, ECONNREFUSED);
    rc = res_nquerydomain(&st, "p16", "leak.test", C_IN, T_A, ans, sizeof ans);
    expect_refused(16, "res_nquerydomain", rc, ECONNREFUSED);
    len = query(17, q, sizeof q);
    rc = res_nsend(&st, q, len, ans, sizeof ans);
    expect_refused(17, "res_nsend", rc, ECONNREFUSED);
    rc = old_res_query(name(18).c_str(), C_IN, T_A, ans, sizeof ans);
    expect_refused(18, "__res_query", rc, ECONNREFUSED);
    rc = old_res_search(name(19).c_str(), C_IN, T_A, ans, sizeof ans);
    expect_refused(19, "__res_search", rc, ECONNREFUSED);
    len = query(20, q, sizeof q);
    rc = old_res_send(q, len, ans, sizeof ans);
    expect_refused(20, "__res_send", rc, ECONNREFUSED);
    rc = old_res_nquery(&st, name(21).c_str(), C_IN, T_A, ans, sizeof ans);
    expect_refused(21, "__res_nquery", rc, ECONNREFUSED);
    res_nclose(&st);
}

// A completed getaddrinfo_a request: a placeholder when wrapped.
void expect_answered(int n, const char* what, gaicb& req) {
    needle(name(n));
    if (wrapped)
        check(gai_error(&req) == 0 && req.ar_result && is_placeholder(req.ar_result->ai_addr),
              std::string{what} + " answered by a placeholder");
    if (req.ar_result) freeaddrinfo(req.ar_result);
}

std::atomic<int> thread_notified{0};

void on_done(sigval v) {
    thread_notified = v.sival_int;
}

bool wait_for_thread(int value) {
    for (int i = 0; i < 300 && thread_notified != value; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return thread_notified == value;
}

void gai_async() {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    std::string n22 = name(22), n23 = name(23), n24 = name(24), n25 = name(25);
    gaicb a{n22.c_str(), "80", &hints, nullptr, 0, {}};
    gaicb* list[] = {&a};
    int rc = getaddrinfo_a(GAI_WAIT, list, 1, nullptr);
    if (wrapped) check(rc == 0, "getaddrinfo_a GAI_WAIT returns 0");
    expect_answered(22, "getaddrinfo_a GAI_WAIT", a);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    gaicb b{n23.c_str(), nullptr, nullptr, nullptr, 0, {}};
    gaicb* blist[] = {&b};
    sigevent sev{};
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGRTMIN;
    sev.sigev_value.sival_int = 23;
    rc = getaddrinfo_a(GAI_NOWAIT, blist, 1, &sev);
    timespec five{5, 0};
    siginfo_t info{};
    bool got = rc == 0 && sigtimedwait(&set, &info, &five) == SIGRTMIN;
    if (wrapped) check(got && info.si_value.sival_int == 23, "getaddrinfo_a SIGEV_SIGNAL");
    expect_answered(23, "getaddrinfo_a SIGEV_SIGNAL", b);

    gaicb c{n24.c_str(), nullptr, nullptr, nullptr, 0, {}};
    gaicb* clist[] = {&c};
    sev = sigevent{};
    sev.sigev_notify = SIGEV_THREAD;
    sev.sigev_notify_function = on_done;
    sev.sigev_value.sival_int = 24;
    rc = getaddrinfo_a(GAI_NOWAIT, clist, 1, &sev);
    got = rc == 0 && wait_for_thread(24);
    if (wrapped) check(got, "getaddrinfo_a SIGEV_THREAD");
    expect_answered(24, "getaddrinfo_a SIGEV_THREAD", c);

    gaicb d{n25.c_str(), nullptr, nullptr, nullptr, 0, {}};
    gaicb* dlist[] = {&d};
    rc = getaddrinfo_a(GAI_NOWAIT, dlist, 1, nullptr);
    const gaicb* wait[] = {&d};
    timespec ten{10, 0};
    int sus = gai_suspend(wait, 1, &ten);
    if (wrapped)
        check(rc == 0 && sus == 0 && gai_cancel(&d) == EAI_ALLDONE,
              "getaddrinfo_a SIGEV_NONE, gai_suspend, gai_cancel");
    else
        while (gai_error(&d) == EAI_INPROGRESS) gai_suspend(wait, 1, &ten);
    expect_answered(25, "getaddrinfo_a SIGEV_NONE", d);
}

void forward() {
    addrinfo* res = nullptr;
    int rc = getaddrinfo(name(26).c_str(), "80", nullptr, &res);
    needle(name(26));
    if (wrapped) check(rc == 0 && is_placeholder(res->ai_addr), "getaddrinfo placeholder");
    if (res) freeaddrinfo(res);
    hostent* he = gethostbyname(name(27).c_str());
    needle(name(27));
    if (wrapped)
        check(he && (static_cast<unsigned char>(he->h_addr_list[0][0]) >> 4) == 0xF,
              "gethostbyname placeholder");
}

void reverse() {
    in_addr a;
    inet_pton(AF_INET, "192.0.2.41", &a);
    hostent* he = gethostbyaddr(&a, sizeof a, AF_INET);
    needle("41.2.0.192.in-addr.arpa");
    if (wrapped) check(he == nullptr && h_errno == HOST_NOT_FOUND, "gethostbyaddr not found");
    inet_pton(AF_INET, "192.0.2.42", &a);
    hostent ent;
    char buf[1024];
    hostent* result = nullptr;
    int herr = 0;
    gethostbyaddr_r(&a, sizeof a, AF_INET, &ent, buf, sizeof buf, &result, &herr);
    needle("42.2.0.192.in-addr.arpa");
    if (wrapped) check(result == nullptr && herr == HOST_NOT_FOUND, "gethostbyaddr_r not found");
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.43", &sin.sin_addr);
    char host[256];
    auto* sa = reinterpret_cast<sockaddr*>(&sin);
    int rc = getnameinfo(sa, sizeof sin, host, sizeof host, nullptr, 0, NI_NAMEREQD);
    needle("43.2.0.192.in-addr.arpa");
    if (wrapped) check(rc == EAI_NONAME, "getnameinfo NI_NAMEREQD is EAI_NONAME");
    inet_pton(AF_INET, "192.0.2.44", &sin.sin_addr);
    rc = getnameinfo(sa, sizeof sin, host, sizeof host, nullptr, 0, 0);
    needle("44.2.0.192.in-addr.arpa");
    if (wrapped) check(rc == 0 && strcmp(host, "192.0.2.44") == 0, "getnameinfo numeric");
    if (!wrapped) return;
    he = gethostbyname(name(45).c_str());
    sockaddr_in ph{};
    ph.sin_family = AF_INET;
    memcpy(&ph.sin_addr, he->h_addr_list[0], 4);
    hostent* back = gethostbyaddr(&ph.sin_addr, 4, AF_INET);
    check(back && name(45) == back->h_name, "gethostbyaddr of a placeholder gives its name");
}

sockaddr* dns_sa() {
    return reinterpret_cast<sockaddr*>(&dns);
}

int udp() {
    return socket(AF_INET, SOCK_DGRAM, 0);
}

// Raw UDP paths to the dnsmasq address; each carries its own query.
void udp_paths() {
    unsigned char q[512];
    int len = query(30, q, sizeof q);
    int s = udp();
    expect_contained(30, "sendto", sendto(s, q, len, 0, dns_sa(), sizeof dns), EPERM);
    len = query(31, q, sizeof q);
    iovec iov{q, static_cast<size_t>(len)};
    msghdr m{};
    m.msg_name = dns_sa();
    m.msg_namelen = sizeof dns;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    expect_contained(31, "sendmsg", sendmsg(s, &m, 0), EPERM);
    len = query(32, q, sizeof q);
    iov.iov_len = static_cast<size_t>(len);
    mmsghdr mm{m, 0};
    expect_contained(32, "sendmmsg", sendmmsg(s, &mm, 1, 0), EPERM);
    len = query(33, q, sizeof q);
    expect_contained(33, "syscall(SYS_sendto)",
                     syscall(SYS_sendto, s, q, len, 0, dns_sa(), sizeof dns), EPERM);
    len = query(34, q, sizeof q);
    iov.iov_len = static_cast<size_t>(len);
    expect_contained(34, "syscall(SYS_sendmsg)", syscall(SYS_sendmsg, s, &m, 0), EPERM);
    len = query(35, q, sizeof q);
    iov.iov_len = static_cast<size_t>(len);
    expect_contained(35, "syscall(SYS_sendmmsg)", syscall(SYS_sendmmsg, s, &mm, 1, 0), EPERM);
    // An AF_INET socket reads an AF_UNSPEC address as AF_INET.
    len = query(36, q, sizeof q);
    sockaddr_in unspec = dns;
    unspec.sin_family = AF_UNSPEC;
    expect_contained(36, "sendto AF_UNSPEC",
                     sendto(s, q, len, 0, reinterpret_cast<sockaddr*>(&unspec), sizeof unspec),
                     EPERM);
    close(s);
}

void udp_connected(int n, bool via_syscall) {
    unsigned char q[512];
    int len = query(n, q, sizeof q);
    int s = udp();
    long rc = via_syscall ? syscall(SYS_connect, s, dns_sa(), sizeof dns)
                          : connect(s, dns_sa(), sizeof dns);
    expect_contained(n, via_syscall ? "syscall(SYS_connect) UDP" : "connect UDP", rc, EPERM);
    if (rc == 0) (void)!send(s, q, len, 0);
    if (wrapped && !responder())
        check(send(s, q, len, 0) == -1, "send on the refused UDP socket fails");
    close(s);
}

void dual_stack() {
    unsigned char q[512];
    int len = query(39, q, sizeof q);
    int s = socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 m{};
    m.sin6_family = AF_INET6;
    m.sin6_port = dns.sin_port;
    m.sin6_addr.s6_addr[10] = m.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&m.sin6_addr.s6_addr[12], &dns.sin_addr, 4);
    long rc = sendto(s, q, len, 0, reinterpret_cast<sockaddr*>(&m), sizeof m);
    expect_contained(39, "sendto v4-mapped on AF_INET6", rc, EPERM);
    close(s);
}

// DNS over TCP: two length bytes, then the query.
void tcp_paths() {
    unsigned char q[514];
    int len = query(37, q + 2, sizeof q - 2);
    q[0] = static_cast<unsigned char>(len >> 8);
    q[1] = static_cast<unsigned char>(len);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int rc = connect(s, dns_sa(), sizeof dns);
    expect_contained(37, "connect TCP port 53", rc, EPERM);
    if (rc == 0) (void)!write(s, q, len + 2);
    if (!wrapped) usleep(200000);
    close(s);
    len = query(38, q + 2, sizeof q - 2);
    q[0] = static_cast<unsigned char>(len >> 8);
    q[1] = static_cast<unsigned char>(len);
    s = socket(AF_INET, SOCK_STREAM, 0);
    long n = sendto(s, q, len + 2, MSG_FASTOPEN, dns_sa(), sizeof dns);
    expect_refused(38, "sendto MSG_FASTOPEN TCP port 53", n, EPERM);
    if (!wrapped) usleep(200000);
    close(s);
}

void allowed_udp() {
    int rx = udp();
    sockaddr_in lo{};
    lo.sin_family = AF_INET;
    lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(rx, reinterpret_cast<sockaddr*>(&lo), sizeof lo);
    socklen_t l = sizeof lo;
    getsockname(rx, reinterpret_cast<sockaddr*>(&lo), &l);
    int s = udp();
    check(sendto(s, "x", 1, 0, reinterpret_cast<sockaddr*>(&lo), sizeof lo) == 1,
          "UDP to loopback (not port 53) goes out");
    sockaddr_in far = lo;
    inet_pton(AF_INET, "192.0.2.1", &far.sin_addr);
    errno = 0;
    check(
        sendto(s, "x", 1, 0, reinterpret_cast<sockaddr*>(&far), sizeof far) == -1 && errno == EPERM,
        "UDP to a remote address refused");
    close(s);
    close(rx);
}

bool peer_is_placeholder(int fd) {
    sockaddr_storage ss{};
    socklen_t l = sizeof ss;
    return getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &l) == 0 &&
           is_placeholder(reinterpret_cast<sockaddr*>(&ss));
}

// MSG_FASTOPEN to a proxied name: connected through the proxy, data sent.
void fastopen(const char* host, const char* port) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_INET;
    addrinfo* res = nullptr;
    if (getaddrinfo(host, port, &hints, &res) != 0) return check(false, "getaddrinfo");
    int s = socket(AF_INET, SOCK_STREAM, 0);
    std::string req = std::string{"GET / HTTP/1.0\r\nHost: "} + host + "\r\n\r\n";
    long n = sendto(s, req.data(), req.size(), MSG_FASTOPEN, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    check(n == static_cast<long>(req.size()), "sendto MSG_FASTOPEN through the proxy");
    char buf[256] = "";
    long got = recv(s, buf, sizeof buf - 1, MSG_WAITALL);
    check(got > 0 && strstr(buf, "200") != nullptr, "the MSG_FASTOPEN request was answered");
    check(peer_is_placeholder(s), "getpeername after MSG_FASTOPEN shows the placeholder");
    close(s);
}

int fd_case(const char* host, const char* port) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_INET;
    addrinfo* res = nullptr;
    if (getaddrinfo(host, port, &hints, &res) != 0) return 1;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    check(connect(s, res->ai_addr, res->ai_addrlen) == 0, "proxied connect");
    freeaddrinfo(res);
    check(peer_is_placeholder(s), "getpeername shows the placeholder");
    int a = fcntl(s, F_DUPFD, 100);
    check(a >= 100 && peer_is_placeholder(a), "fcntl(F_DUPFD) keeps the peer");
    int b = fcntl(s, F_DUPFD_CLOEXEC, 200);
    check(b >= 200 && peer_is_placeholder(b), "fcntl(F_DUPFD_CLOEXEC) keeps the peer");
    int c = static_cast<int>(syscall(SYS_dup, s));
    check(c >= 0 && peer_is_placeholder(c), "syscall(SYS_dup) keeps the peer");
    check(close_range(static_cast<unsigned>(a), static_cast<unsigned>(a), 0) == 0, "close_range");
    int fresh = socket(AF_INET, SOCK_STREAM, 0);
    check(dup2(fresh, a) == a && !peer_is_placeholder(a), "close_range forgot the peer");
    check(syscall(SYS_close_range, b, b, 0) == 0, "syscall(SYS_close_range)");
    check(dup2(fresh, b) == b && !peer_is_placeholder(b), "SYS_close_range forgot the peer");
    fastopen(host, port);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3 && argc != 4) {
        std::fprintf(stderr, "usage: leak_probe wrapped|bare DNS_ADDR | fd HOST PORT\n");
        return 2;
    }
    std::string mode = argv[1];
    if (mode == "fd") {
        if (argc != 4 || fd_case(argv[2], argv[3]) != 0) ++failures;
    } else {
        wrapped = mode == "wrapped";
        dns.sin_family = AF_INET;
        dns.sin_port = htons(53);
        inet_pton(AF_INET, argv[2], &dns.sin_addr);
        resolver_library();
        gai_async();
        forward();
        reverse();
        udp_paths();
        udp_connected(28, false);
        udp_connected(29, true);
        dual_stack();
        tcp_paths();
        if (wrapped) allowed_udp();
    }
    std::printf("%d failures\n", failures);
    return failures == 0 ? 0 : 1;
}
