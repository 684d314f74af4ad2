// Run under the leakproof wrapper: checks the resolver hooks' answers for
// every hint combination, the gethostbyname family, getnameinfo, and that
// threads do not corrupt each other's gethostbyname results.
#include <arpa/inet.h>
#include <netdb.h>
#include <string.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    if (!ok) ++failures;
}

bool is_placeholder(const sockaddr* sa) {
    if (sa->sa_family == AF_INET) {
        auto a = ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr);
        return (a >> 28) == 0xF;
    }
    auto* b = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr.s6_addr;
    static const unsigned char prefix[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    return memcmp(b, prefix, 8) == 0;
}

void gai_combinations() {
    const int families[] = {AF_UNSPEC, AF_INET, AF_INET6};
    const int types[] = {0, SOCK_STREAM, SOCK_DGRAM};
    const int flags[] = {0, AI_PASSIVE, AI_CANONNAME, AI_ADDRCONFIG, AI_V4MAPPED};
    const char* services[] = {nullptr, "80", "http"};
    for (int fam : families)
        for (int type : types)
            for (int fl : flags)
                for (const char* svc : services) {
                    addrinfo h{};
                    h.ai_family = fam;
                    h.ai_socktype = type;
                    h.ai_flags = fl;
                    addrinfo* res = nullptr;
                    int rc = getaddrinfo("probe.example.test", svc, &h, &res);
                    // /etc/services knows "http" for TCP only: libc's own answer.
                    bool no_service = type == SOCK_DGRAM && svc && std::string{svc} == "http";
                    bool ok = no_service ? rc == EAI_SERVICE : rc == 0 && res != nullptr;
                    for (auto* p = res; ok && p; p = p->ai_next) {
                        ok =
                            is_placeholder(p->ai_addr) && (fam == AF_UNSPEC || p->ai_family == fam);
                        auto port = p->ai_family == AF_INET
                                        ? reinterpret_cast<sockaddr_in*>(p->ai_addr)->sin_port
                                        : reinterpret_cast<sockaddr_in6*>(p->ai_addr)->sin6_port;
                        if (svc) ok = ok && ntohs(port) == 80;
                    }
                    if (ok && res && (fl & AI_CANONNAME))
                        ok = res->ai_canonname &&
                             strcmp(res->ai_canonname, "probe.example.test") == 0;
                    check(ok, "getaddrinfo family " + std::to_string(fam) + " type " +
                                  std::to_string(type) + " flags " + std::to_string(fl) +
                                  " service " + (svc ? svc : "NULL"));
                    if (res) freeaddrinfo(res);
                }
}

void gai_special() {
    addrinfo* res = nullptr;
    check(getaddrinfo("probe.example.test", "443", nullptr, &res) == 0 &&
              is_placeholder(res->ai_addr),
          "getaddrinfo NULL hints");
    if (res) freeaddrinfo(res);
    addrinfo h{};
    h.ai_flags = AI_NUMERICHOST;
    res = nullptr;
    check(getaddrinfo("probe.example.test", nullptr, &h, &res) == EAI_NONAME,
          "AI_NUMERICHOST with a name is EAI_NONAME");
    res = nullptr;
    int rc = getaddrinfo("10.1.2.3", "80", nullptr, &res);
    check(rc == 0 && reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr.s_addr ==
                         inet_addr("10.1.2.3"),
          "numeric host answered as itself");
    if (res) freeaddrinfo(res);
    h = addrinfo{};
    h.ai_family = AF_INET;
    res = nullptr;
    rc = getaddrinfo("localhost", "80", &h, &res);
    check(rc == 0 && reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr.s_addr ==
                         htonl(INADDR_LOOPBACK),
          "localhost is 127.0.0.1");
    if (res) freeaddrinfo(res);
    addrinfo *a = nullptr, *b = nullptr;
    getaddrinfo("same.example.test", nullptr, nullptr, &a);
    getaddrinfo("SAME.example.test", nullptr, nullptr, &b);
    check(a && b && memcmp(a->ai_addr, b->ai_addr, a->ai_addrlen) == 0,
          "one name, one placeholder (case-insensitive)");
    if (a) freeaddrinfo(a);
    if (b) freeaddrinfo(b);
}

void gethostbyname_family() {
    hostent* he = gethostbyname("ghbn.example.test");
    check(he && he->h_addrtype == AF_INET &&
              (static_cast<unsigned char>(he->h_addr_list[0][0]) >> 4) == 0xF &&
              strcmp(he->h_name, "ghbn.example.test") == 0,
          "gethostbyname");
    he = gethostbyname2("ghbn.example.test", AF_INET6);
    check(he && he->h_addrtype == AF_INET6 && he->h_addr_list[0][0] == 1,
          "gethostbyname2 AF_INET6");
    hostent ent;
    hostent* result = nullptr;
    char buf[256];
    int herr = 0;
    int rc = gethostbyname_r("ghbn-r.example.test", &ent, buf, sizeof buf, &result, &herr);
    check(rc == 0 && result == &ent, "gethostbyname_r");
    rc = gethostbyname2_r("ghbn-r.example.test", AF_INET6, &ent, buf, 8, &result, &herr);
    check(rc == ERANGE && result == nullptr, "gethostbyname2_r ERANGE on a small buffer");
    char name[256];
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    he = gethostbyname("ni.example.test");
    memcpy(&sin.sin_addr, he->h_addr_list[0], 4);
    rc = getnameinfo(reinterpret_cast<sockaddr*>(&sin), sizeof sin, name, sizeof name, nullptr, 0,
                     NI_NAMEREQD);
    check(rc == 0 && strcmp(name, "ni.example.test") == 0, "getnameinfo of a placeholder");
    sin.sin_addr.s_addr = inet_addr("192.0.2.1");
    rc = getnameinfo(reinterpret_cast<sockaddr*>(&sin), sizeof sin, name, sizeof name, nullptr, 0,
                     0);
    check(rc == 0 && strcmp(name, "192.0.2.1") == 0, "getnameinfo never does a PTR query");
}

void threads() {
    std::vector<std::thread> ts;
    std::vector<int> bad(8, 0);
    for (int t = 0; t < 8; ++t)
        ts.emplace_back([t, &bad] {
            std::string n = "thread" + std::to_string(t) + ".example.test";
            for (int i = 0; i < 200; ++i) {
                hostent* he = gethostbyname(n.c_str());
                if (!he || n != he->h_name) ++bad[t];
            }
        });
    for (auto& t : ts) t.join();
    int total = 0;
    for (int b : bad) total += b;
    check(total == 0, "gethostbyname from 8 threads");
}

}  // namespace

int main() {
    gai_combinations();
    gai_special();
    gethostbyname_family();
    threads();
    std::printf("%d failures\n", failures);
    return failures == 0 ? 0 : 1;
}
