// Threads, fork() and failing connects through the interposer.
// C APIs only; run under `leakproof`, also in the ThreadSanitizer build:
//
//   stress_probe threads T N HOST
//       A listener of our own on 127.0.0.1 echoes one line per connection.
//       T threads each make N round trips to HOST:<that port> (HOST is a name
//       only the proxy knows, resolved by getaddrinfo to a placeholder each
//       time), blocking and non-blocking sockets alternating (the latter
//       waited for with poll, select and epoll in turn), and look up 25
//       names pT-K.leak.test of their own (4 times each, never connected).
//       Every echo, every lookup (same name: same placeholder; different
//       names: different placeholders) is checked.
//   stress_probe fork T N HOST
//       The same threads keep going while the main thread forks children
//       that each make a blocking and a non-blocking round trip and a lookup.
//   stress_probe fail N PORT NAME:ERRNO...
//       N connects to NAME:PORT, cycling through the targets, blocking and
//       non-blocking alternating (poll, select, epoll); each must fail with its ERRNO (SO_ERROR
//       for non-blocking ones, reported once). The number of open fds and of
//       threads must be the same before and after.
//   stress_probe race
//       A deliberate data race: the tsan cases first check that
//       ThreadSanitizer reports it under the wrapper (that it is not blind).
//
// Prints "key value" pairs; exits 0 only when every check held.
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace {

constexpr int io_timeout_ms = 30000;  // far above any handshake; a hang fails, not blocks
constexpr int names_per_thread = 25;

std::atomic<int> problems{0};

// Reports one failed check; the first few only, so a systematic failure
// does not bury the output.
void problem(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void problem(const char* fmt, ...) {
    if (problems.fetch_add(1) >= 20) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "stress_probe: %s\n", buf);
}

[[noreturn]] void die(const char* what) {
    fprintf(stderr, "stress_probe: %s: %s\n", what, strerror(errno));
    exit(1);
}

struct target {
    sockaddr_storage ss{};
    socklen_t len = 0;
};

// HOST:PORT through the interposer's getaddrinfo (a placeholder address).
bool resolve(const char* host, const char* port, target& out, int family = AF_UNSPEC) {
    addrinfo hints{};
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == nullptr) {
        problem("getaddrinfo %s: %s", host, gai_strerror(rc));
        return false;
    }
    memcpy(&out.ss, res->ai_addr, res->ai_addrlen);
    out.len = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

bool same(const target& a, const target& b) {
    return a.len == b.len && memcmp(&a.ss, &b.ss, a.len) == 0;
}

bool wait_for(int fd, short events) {
    pollfd p{fd, events, 0};
    for (;;) {
        int rc = poll(&p, 1, io_timeout_ms);
        if (rc > 0) return true;
        if (rc == 0 || errno != EINTR) return false;
    }
}

// How a non-blocking connect is waited for: each takes its own path through
// the interposer (hooks/poll.cpp; select via ppoll; hooks/epoll.cpp masking).
enum class api { poll, select, epoll };

bool select_writable(int fd) {
    for (;;) {
        fd_set w;
        FD_ZERO(&w);
        FD_SET(fd, &w);
        timeval tv{io_timeout_ms / 1000, 0};
        int rc = select(fd + 1, nullptr, &w, nullptr, &tv);
        if (rc > 0) return true;
        if (rc == 0 || errno != EINTR) return false;
    }
}

// `ep` had fd registered before connect(): the interposer must keep it
// masked until the handshake has ended.
bool epoll_writable(int ep) {
    epoll_event ev{};
    for (;;) {
        int rc = epoll_wait(ep, &ev, 1, io_timeout_ms);
        if (rc > 0) return true;
        if (rc == 0 || errno != EINTR) return false;
    }
}

// connect() as the program sees it: 0, or the errno of the failure (for a
// non-blocking socket, after waiting for writability, the SO_ERROR).
int connect_and_wait(int fd, const target& t, bool nonblock, api how = api::poll) {
    int ep = -1;
    if (nonblock && how == api::epoll) {
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.fd = fd;
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll");
    }
    int rc = connect(fd, reinterpret_cast<const sockaddr*>(&t.ss), t.len);
    int err = rc == 0 ? 0 : errno;
    if (nonblock && err == EINPROGRESS) {
        bool ready = how == api::epoll    ? epoll_writable(ep)
                     : how == api::select ? select_writable(fd)
                                          : wait_for(fd, POLLOUT);
        socklen_t len = sizeof err;
        if (!ready)
            err = ETIME;  // never became writable: not a connect errno
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
    }
    if (ep >= 0) close(ep);
    return err;
}
// One echo round trip: connect, send `msg` (ending in '\n'), read it back.
bool round_trip(const target& t, bool nonblock, const std::string& msg, api how = api::poll) {
    int fd = socket(t.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) {
        problem("socket: %s", strerror(errno));
        return false;
    }
    if (!nonblock) {
        timeval tv{io_timeout_ms / 1000, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    bool ok = false;
    const char* kind = nonblock ? "non-blocking" : "blocking";
    if (int err = connect_and_wait(fd, t, nonblock, how); err != 0) {
        problem("%s connect: %s", kind, strerror(err));
    } else {
        std::size_t off = 0;
        while (off < msg.size()) {
            ssize_t n = send(fd, msg.data() + off, msg.size() - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += static_cast<std::size_t>(n);
            } else if (!(n < 0 && (errno == EAGAIN || errno == EINTR) && wait_for(fd, POLLOUT))) {
                break;
            }
        }
        std::string got;
        char buf[256];
        while (off == msg.size() && got.find('\n') == std::string::npos) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n > 0) {
                got.append(buf, static_cast<std::size_t>(n));
            } else if (!(n < 0 && (errno == EAGAIN || errno == EINTR) && wait_for(fd, POLLIN))) {
                break;
            }
        }
        ok = got == msg;
        if (!ok) problem("%s round trip: sent %zu bytes, got '%s'", kind, off, got.c_str());
    }
    close(fd);
    return ok;
}

// ---- the echo listener -------------------------------------------------------

int listen_fd = -1;

// Blocking accept loops; the process exits with them still waiting.
void* echo_loop(void*) {
    for (;;) {
        int c = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return nullptr;
        }
        // A client that never sends must not stall the others for long.
        timeval tv{10, 0};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        std::string line;
        char buf[256];
        while (line.find('\n') == std::string::npos) {
            ssize_t n = recv(c, buf, sizeof buf, 0);
            if (n <= 0) break;
            line.append(buf, static_cast<std::size_t>(n));
        }
        (void)!send(c, line.data(), line.size(), MSG_NOSIGNAL);
        close(c);
    }
}

std::string start_echo_server() {
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (listen_fd < 0 || bind(listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        listen(listen_fd, 1024) != 0 ||
        getsockname(listen_fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        die("echo listener");
    // Several acceptors: 64 clients at once must not queue behind one echo.
    for (int i = 0; i < 4; ++i) {
        pthread_t t;
        if (pthread_create(&t, nullptr, echo_loop, nullptr) != 0) die("pthread_create");
        pthread_detach(t);
    }
    return std::to_string(ntohs(a.sin_port));
}

// ---- threads mode ------------------------------------------------------------

struct worker {
    int id = 0;
    int rounds = 0;
    const char* host = nullptr;
    const char* port = nullptr;
    const target* first = nullptr;            // HOST as main resolved it
    const std::atomic<bool>* stop = nullptr;  // fork mode: keep going until set
    std::atomic<int>* in_flight = nullptr;
    int ok = 0;
    int done = 0;
    std::uint32_t names[names_per_thread] = {};  // placeholder of pID-K.leak.test
};

void lookup(worker& w, int k) {
    char name[64];
    snprintf(name, sizeof name, "p%d-%d.leak.test", w.id, k);
    target t;
    if (!resolve(name, "80", t, AF_INET)) return;
    std::uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(&t.ss)->sin_addr.s_addr);
    if (a >> 28 != 0xF) problem("%s -> %08x, not a placeholder", name, a);
    if (w.names[k] != 0 && w.names[k] != a) problem("%s changed placeholder", name);
    w.names[k] = a;
}

void* work(void* arg) {
    auto& w = *static_cast<worker*>(arg);
    for (int j = 0; j < w.rounds || (w.stop && !w.stop->load()); ++j) {
        target t;
        if (resolve(w.host, w.port, t) && !same(t, *w.first))
            problem("%s resolved to another placeholder in thread %d", w.host, w.id);
        std::string msg = "t" + std::to_string(w.id) + "-" + std::to_string(j) + "\n";
        w.in_flight->fetch_add(1);
        w.ok += round_trip(t, (w.id + j) % 2 == 1, msg, static_cast<api>(j / 2 % 3));
        w.in_flight->fetch_sub(1);
        ++w.done;
        lookup(w, j % names_per_thread);
    }
    return nullptr;
}

// A forked child: both kinds of connect and a lookup, on its own.
int child_checks(const char* host, const char* port) {
    target t;
    if (!resolve(host, port, t)) return 1;
    bool ok = round_trip(t, false, "child-blocking\n") && round_trip(t, true, "child-async\n");
    target n;
    ok = ok && resolve("child.leak.test", "80", n);
    return ok ? 0 : 1;
}

int run_threads(int nthreads, int rounds, const char* host, bool forking) {
    std::string port = start_echo_server();
    target first;
    if (!resolve(host, port.c_str(), first)) return 1;
    std::atomic<bool> stop{!forking};
    std::atomic<int> in_flight{0};
    std::vector<worker> ws(static_cast<std::size_t>(nthreads));
    std::vector<pthread_t> ts(ws.size());
    for (std::size_t i = 0; i < ws.size(); ++i) {
        ws[i].id = static_cast<int>(i);
        ws[i].rounds = rounds;
        ws[i].host = host;
        ws[i].port = port.c_str();
        ws[i].first = &first;
        ws[i].stop = forking ? &stop : nullptr;
        ws[i].in_flight = &in_flight;
        if (pthread_create(&ts[i], nullptr, work, &ws[i]) != 0) die("pthread_create");
    }
    int forks = 0, busy_forks = 0, child_failures = 0;
    if (forking) {
        // The workers run until `stop`, so every fork happens while they are
        // connecting; in_flight says whether one was inside connect/echo.
        for (int k = 0; k < 8; ++k) {
            busy_forks += in_flight.load() > 0;
            pid_t pid = fork();
            if (pid < 0) die("fork");
            if (pid == 0) _exit(child_checks(host, port.c_str()));
            ++forks;
            int st = 0;
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                ++child_failures;
                problem("forked child %d: status %#x", k, st);
            }
        }
        stop.store(true);
    }
    int ok = 0, done = 0;
    std::vector<std::uint32_t> all;
    for (std::size_t i = 0; i < ws.size(); ++i) {
        pthread_join(ts[i], nullptr);
        ok += ws[i].ok;
        done += ws[i].done;
        // A worker that made fewer than names_per_thread rounds left slots 0.
        for (std::uint32_t a : ws[i].names)
            if (a != 0) all.push_back(a);
    }
    std::sort(all.begin(), all.end());
    auto distinct = std::unique(all.begin(), all.end()) - all.begin();
    if (distinct != static_cast<long>(all.size()))
        problem("%ld placeholders for %zu names", static_cast<long>(distinct), all.size());
    printf("connects %d ok %d names %zu distinct %ld forks %d busy_forks %d child_failures %d\n",
           done, ok, all.size(), static_cast<long>(distinct), forks, busy_forks, child_failures);
    return problems.load() == 0 && ok == done && done >= nthreads * rounds ? 0 : 1;
}

// ---- fail mode ---------------------------------------------------------------

int count_entries(const char* dir) {
    DIR* d = opendir(dir);
    if (d == nullptr) die(dir);
    int n = 0;
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
    return n - (strcmp(dir, "/proc/self/fd") == 0);  // opendir's own fd
}

struct failing {
    target t;
    std::string name;
    int expected = 0;
};

// One failing connect; the errno it got (0 when it succeeded).
int attempt(const failing& f, bool nonblock, api how) {
    int fd =
        socket(f.t.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) die("socket");
    int err = connect_and_wait(fd, f.t, nonblock, how);
    if (nonblock && err != 0) {
        // SO_ERROR reports a failure once, like the kernel.
        int again = -1;
        socklen_t len = sizeof again;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &again, &len) != 0 || again != 0)
            problem("%s: second SO_ERROR is %d", f.name.c_str(), again);
    }
    close(fd);
    return err;
}

int run_fail(int n, const char* port, int argc, char** argv) {
    std::vector<failing> targets;
    for (int i = 0; i < argc; ++i) {
        failing f;
        const char* colon = strrchr(argv[i], ':');
        if (colon == nullptr) die("NAME:ERRNO expected");
        f.name.assign(argv[i], static_cast<std::size_t>(colon - argv[i]));
        f.expected = atoi(colon + 1);
        if (!resolve(f.name.c_str(), port, f.t)) return 1;
        targets.push_back(f);
    }
    int attempts = 0;
    auto one = [&](int i) {
        const auto& f = targets[static_cast<std::size_t>(i) % targets.size()];
        auto round = static_cast<std::size_t>(i) / targets.size();
        bool nonblock = round % 2 == 1;
        int how = static_cast<int>(round / 2 % 3);
        int err = attempt(f, nonblock, static_cast<api>(how));
        ++attempts;
        if (err != f.expected)
            problem("%s %s (api %d): got %s, expected %s", f.name.c_str(),
                    nonblock ? "non-blocking" : "blocking", how, strerror(err),
                    strerror(f.expected));
    };
    // Warm-up, each target both ways: the helper thread and its two fds
    // exist from here on and are not a leak.
    for (int i = 0; i < static_cast<int>(targets.size()) * 2; ++i) one(i);
    int fds_before = count_entries("/proc/self/fd");
    int threads_before = count_entries("/proc/self/task");
    for (int i = 0; i < n; ++i) one(i);
    int fds_after = count_entries("/proc/self/fd");
    int threads_after = count_entries("/proc/self/task");
    printf(
        "attempts %d fds_before %d fds_after %d threads_before %d threads_after %d problems %d\n",
        attempts, fds_before, fds_after, threads_before, threads_after, problems.load());
    return problems.load() == 0 && fds_before == fds_after && threads_before == threads_after ? 0
                                                                                              : 1;
}

// ---- race mode ---------------------------------------------------------------

int racy = 0;

void* race_writer(void*) {
    racy = 1;
    return nullptr;
}

int run_race() {
    pthread_t t;
    if (pthread_create(&t, nullptr, race_writer, nullptr) != 0) die("pthread_create");
    racy = 2;
    pthread_join(t, nullptr);
    printf("racy %d\n", racy);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    if (argc >= 5 && (strcmp(argv[1], "threads") == 0 || strcmp(argv[1], "fork") == 0))
        return run_threads(atoi(argv[2]), atoi(argv[3]), argv[4], argv[1][0] == 'f');
    if (argc >= 5 && strcmp(argv[1], "fail") == 0)
        return run_fail(atoi(argv[2]), argv[3], argc - 4, argv + 4);
    if (argc == 2 && strcmp(argv[1], "race") == 0) return run_race();
    fprintf(stderr,
            "usage: stress_probe threads|fork T N HOST\n"
            "       stress_probe fail N PORT NAME:ERRNO...\n"
            "       stress_probe race\n");
    return 2;
}
