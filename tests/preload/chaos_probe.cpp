// The program of the chaos test (chaos_test.py), run under `leakproof`:
//
//   chaos_probe CONNECTS THREADS NAME PORT DNS_QUERIES
//
// THREADS threads share CONNECTS blocking connects to NAME:PORT (resolved
// by getaddrinfo, so a placeholder) and 127.0.0.1:PORT (an address), in
// turn, while the harness kills and restarts the proxy; one more thread
// sends DNS_QUERIES queries for names of its own straight to the
// nameserver of /etc/resolv.conf with the sendto system call (as a static
// program would: past the interposer, to the supervisor, which hands them
// to its responder), each waited for 1 s.
//
// Protocol on stdin/stdout, so that the harness measures the program and
// the supervisor at rest with every thread alive: after a warm-up (one
// connect per thread, one query) it prints "baseline" and waits for a
// line; it then runs and prints "done ok N failed N errnos ... answered N
// unanswered N seconds S", and waits for a line again before it exits.
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace {

constexpr double deadline_seconds = 100;  // the harness's bound is 120 s
constexpr useconds_t pace_us = 8000;

int total_connects, dns_queries, port;
const char* name;
std::atomic<int> next_connect{0}, ok{0}, failed{0}, answered{0}, unanswered{0};
std::atomic<int> by_errno[256];
sockaddr_in nameserver{};
pthread_barrier_t start_line, finish_line, exit_line;
timespec started;

double since(const timespec& t0) {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<double>(t.tv_sec - t0.tv_sec) +
           static_cast<double>(t.tv_nsec - t0.tv_nsec) / 1e9;
}

// One connect; 0 or the errno.
int connect_once(bool by_name) {
    addrinfo hints{}, *res = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(by_name ? name : "127.0.0.1", service, &hints, &res);
    if (rc != 0) return rc == EAI_SYSTEM ? errno : 200;  // 200: a resolver error
    int s = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int err = s < 0 ? errno : 0;
    if (s >= 0 && connect(s, res->ai_addr, res->ai_addrlen) != 0) err = errno;
    if (s >= 0) close(s);
    freeaddrinfo(res);
    return err;
}

void count(int err) {
    if (err == 0)
        ok.fetch_add(1);
    else
        failed.fetch_add(1);
    by_errno[err & 0xff].fetch_add(1);
}

void* connector(void*) {
    count(connect_once(true));  // warm-up
    pthread_barrier_wait(&start_line);
    for (;;) {
        int i = next_connect.fetch_add(1);
        if (i >= total_connects || since(started) > deadline_seconds) break;
        count(connect_once(i % 2 == 0));
        usleep(pace_us);  // spread over several proxy cycles, not 2 s of refusals
    }
    pthread_barrier_wait(&finish_line);
    pthread_barrier_wait(&exit_line);
    return nullptr;
}

// A query for qK.chaos.test, type A.
std::size_t make_query(int k, std::uint8_t* q) {
    std::uint8_t header[12] = {static_cast<std::uint8_t>(k >> 8),
                               static_cast<std::uint8_t>(k),
                               0x01,
                               0,
                               0,
                               1,
                               0,
                               0,
                               0,
                               0,
                               0,
                               0};
    memcpy(q, header, 12);
    std::size_t n = 12;
    char label[16];
    int len = snprintf(label, sizeof label, "q%d", k);
    q[n++] = static_cast<std::uint8_t>(len);
    memcpy(q + n, label, static_cast<std::size_t>(len));
    n += static_cast<std::size_t>(len);
    for (const char* l : {"chaos", "test"}) {
        q[n++] = static_cast<std::uint8_t>(strlen(l));
        memcpy(q + n, l, strlen(l));
        n += strlen(l);
    }
    q[n++] = 0;
    const std::uint8_t tail[4] = {0, 1, 0, 1};
    memcpy(q + n, tail, 4);
    return n + 4;
}

// sendto as the bare system call instruction: the interposer hooks libc's
// sendto() and syscall() alike, a static program reaches neither.
long raw_sendto(int s, const void* buf, std::size_t len, const sockaddr_in& to) {
#if defined(__x86_64__)
    long ret = SYS_sendto;
    register long r10 asm("r10") = 0;
    register const void* r8 asm("r8") = &to;
    register long r9 asm("r9") = sizeof to;
    asm volatile("syscall"
                 : "+a"(ret)
                 : "D"(static_cast<long>(s)), "S"(buf), "d"(len), "r"(r10), "r"(r8), "r"(r9)
                 : "rcx", "r11", "memory");
    return ret;
#else
    return syscall(SYS_sendto, s, buf, len, 0, &to, sizeof to);
#endif
}

// One query on socket `s`, its answer waited for: a placeholder (240/4)?
bool ask(int s, int k) {
    std::uint8_t q[64], r[512];
    std::size_t n = make_query(k, q);
    if (raw_sendto(s, q, n, nameserver) != static_cast<long>(n)) return false;
    pollfd p{s, POLLIN, 0};
    if (poll(&p, 1, 1000) != 1) return false;
    ssize_t got = recv(s, r, sizeof r, 0);
    return got >= static_cast<ssize_t>(n + 16) && r[0] == q[0] && r[1] == q[1] &&
           (r[3] & 0x0f) == 0 && r[7] == 1 && (r[got - 4] >> 4) == 0xF;
}

void* asker(void*) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    (ask(s, 0) ? answered : unanswered).fetch_add(1);  // warm-up: starts the responder
    pthread_barrier_wait(&start_line);
    for (int k = 1; k <= dns_queries && since(started) < deadline_seconds; ++k) {
        if (k % 100 == 0) {  // a new socket now and then: a new port to admit
            close(s);
            s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        }
        (ask(s, k) ? answered : unanswered).fetch_add(1);
    }
    pthread_barrier_wait(&finish_line);
    pthread_barrier_wait(&exit_line);
    close(s);  // open at the baseline too
    return nullptr;
}

bool read_nameserver() {
    FILE* f = fopen("/etc/resolv.conf", "re");
    if (f == nullptr) return false;
    char line[256], addr[64];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "nameserver %63s", addr) == 1;
    fclose(f);
    nameserver.sin_family = AF_INET;
    nameserver.sin_port = htons(53);
    return found && inet_pton(AF_INET, addr, &nameserver.sin_addr) == 1;
}

void wait_for_line() {
    char line[64];
    if (fgets(line, sizeof line, stdin) == nullptr) exit(3);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 6 || !read_nameserver()) {
        fprintf(stderr, "usage: chaos_probe CONNECTS THREADS NAME PORT DNS_QUERIES\n");
        return 2;
    }
    total_connects = atoi(argv[1]);
    int threads = atoi(argv[2]);
    name = argv[3];
    port = atoi(argv[4]);
    dns_queries = atoi(argv[5]);
    pthread_barrier_init(&start_line, nullptr, static_cast<unsigned>(threads + 2));
    pthread_barrier_init(&finish_line, nullptr, static_cast<unsigned>(threads + 2));
    pthread_barrier_init(&exit_line, nullptr, static_cast<unsigned>(threads + 2));
    std::vector<pthread_t> ids(static_cast<std::size_t>(threads) + 1);
    for (int i = 0; i < threads; ++i)
        pthread_create(&ids[static_cast<std::size_t>(i)], nullptr, connector, nullptr);
    pthread_create(&ids.back(), nullptr, asker, nullptr);
    // The warm-ups run meanwhile; wait for them through the counters.
    while (ok.load() + failed.load() < threads || answered.load() + unanswered.load() < 1)
        usleep(10000);
    ok = failed = answered = unanswered = 0;
    for (auto& e : by_errno) e = 0;
    printf("baseline\n");
    fflush(stdout);
    wait_for_line();
    clock_gettime(CLOCK_MONOTONIC, &started);
    pthread_barrier_wait(&start_line);
    pthread_barrier_wait(&finish_line);
    printf("done ok %d failed %d answered %d unanswered %d seconds %.1f errnos", ok.load(),
           failed.load(), answered.load(), unanswered.load(), since(started));
    for (int e = 1; e < 256; ++e)
        if (by_errno[e].load() > 0)
            printf(" %s:%d", e == 200 ? "EAI" : strerrorname_np(e), by_errno[e].load());
    printf("\n");
    fflush(stdout);
    wait_for_line();  // meanwhile every thread waits, alive, as at the baseline
    pthread_barrier_wait(&exit_line);
    for (auto id : ids) pthread_join(id, nullptr);
    return 0;
}
