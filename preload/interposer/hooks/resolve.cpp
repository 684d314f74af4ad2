// Name resolution. No name ever reaches DNS:
//   * IP literals are answered by the real getaddrinfo with AI_NUMERICHOST
//     (which never looks anything up),
//   * "localhost" and "*.localhost" (RFC 6761) are answered locally,
//   * every other name gets a placeholder address (placeholder.hpp); the
//     proxy resolves the name when the program connects to it.
//
// getaddrinfo results are built by the real getaddrinfo from the placeholder
// literal (so every hint combination, service names and AI_PASSIVE behave
// exactly as libc does), then ai_canonname is replaced by the name. glibc
// allocates ai_canonname separately and its freeaddrinfo() frees it with
// free(), so every list we hand out is a normal libc list: freeaddrinfo()
// needs no hook and cannot confuse our lists with others.
//
// Reverse lookups of real addresses are "not found", except in Tor mode
// (LEAKPROOF_TOR=1), where Tor answers them with RESOLVE_PTR (reverse.hpp).
//
// gethostbyname/gethostbyname2/gethostbyaddr keep their results in
// thread_local storage: not thread-safe by contract, but threads cannot
// corrupt each other's answers.
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include <cstdint>
#include <string_view>

#include "interposer/hooks.hpp"
#include "interposer/reverse.hpp"
#include "runtime/placeholder.hpp"
#include "runtime/real.hpp"

namespace {

bool is_numeric(const char* node) noexcept {
    in_addr a4;
    if (inet_aton(node, &a4) != 0) return true;  // also "127.1", "0x7f000001"…
    char tmp[INET6_ADDRSTRLEN + 1];
    std::size_t n = strcspn(node, "%");  // fe80::1%eth0
    if (n >= sizeof tmp) return false;
    memcpy(tmp, node, n);
    tmp[n] = '\0';
    in6_addr a6;
    return inet_pton(AF_INET6, tmp, &a6) == 1;
}

bool is_localhost(std::string_view n) noexcept {
    if (!n.empty() && n.back() == '.') n.remove_suffix(1);
    auto eq = [](std::string_view a, std::string_view b) {
        return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
    };
    return eq(n, "localhost") || (n.size() > 10 && eq(n.substr(n.size() - 10), ".localhost"));
}

// The literal libc should build the answer from, for a name and a family.
bool literal_for(const char* node, int family, char (&out)[INET6_ADDRSTRLEN]) noexcept {
    if (is_localhost(node)) {
        strcpy(out, family == AF_INET6 ? "::1" : "127.0.0.1");
        return true;
    }
    std::uint32_t index;
    if (!lp::placeholder::assign(node, index)) return false;
    if (family == AF_INET6) {
        std::uint8_t b[16];
        lp::placeholder::v6_of(index, b);
        inet_ntop(AF_INET6, b, out, sizeof out);
    } else {
        std::uint8_t b[4];
        lp::placeholder::v4_of(index, b);
        inet_ntop(AF_INET, b, out, sizeof out);
    }
    return true;
}

int set_canonname(addrinfo* res, const char* name) noexcept {
    if (res == nullptr || res->ai_canonname == nullptr) return 0;
    char* copy = strdup(name);
    if (copy == nullptr) return EAI_MEMORY;
    free(res->ai_canonname);
    res->ai_canonname = copy;
    return 0;
}

// Fills a hostent in `buf`: aliases {NULL}, addr_list {addr, NULL}, address, name.
int fill_hostent(const char* name, int af, const void* addr, hostent* ret, char* buf,
                 std::size_t buflen) noexcept {
    std::size_t addr_len = af == AF_INET6 ? 16 : 4;
    auto base = reinterpret_cast<std::uintptr_t>(buf);
    std::size_t pad = (alignof(char*) - base % alignof(char*)) % alignof(char*);
    std::size_t name_len = strlen(name) + 1;
    std::size_t need = pad + 3 * sizeof(char*) + addr_len + name_len;
    if (buflen < need) return ERANGE;
    auto** ptrs = reinterpret_cast<char**>(buf + pad);
    char* addr_copy = buf + pad + 3 * sizeof(char*);
    char* name_copy = addr_copy + addr_len;
    memcpy(addr_copy, addr, addr_len);
    memcpy(name_copy, name, name_len);
    ptrs[0] = nullptr;    // aliases
    ptrs[1] = addr_copy;  // addr_list
    ptrs[2] = nullptr;
    ret->h_name = name_copy;
    ret->h_aliases = ptrs;
    ret->h_addrtype = af;
    ret->h_length = static_cast<int>(addr_len);
    ret->h_addr_list = ptrs + 1;
    return 0;
}

// The address bytes gethostbyname2 answers `name` with; false if none.
bool host_address(const char* name, int af, unsigned char (&out)[16]) noexcept {
    if (af == AF_INET && inet_aton(name, reinterpret_cast<in_addr*>(out)) != 0) return true;
    if (af == AF_INET6 && inet_pton(AF_INET6, name, out) == 1) return true;
    if (is_numeric(name)) return false;  // a literal of the other family
    char lit[INET6_ADDRSTRLEN];
    return literal_for(name, af, lit) && inet_pton(af, lit, out) == 1;
}

struct host_storage {
    hostent ent;
    char buf[512];
};
thread_local host_storage tls_host;

// The _r functions report through *h_errnop; h_errno is set too, as glibc
// does, because some callers (Python's socket module) read only h_errno.
void set_herr(int* h_errnop, int v) noexcept {
    *h_errnop = v;
    h_errno = v;
}

hostent* non_reentrant(int rc, hostent* result, int herr) noexcept {
    h_errno = herr;
    return rc == 0 ? result : nullptr;
}

}  // namespace

int lp::hook::getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                          addrinfo** res) noexcept {
    const auto& real = lp::real::fn();
    if (node == nullptr) return real.getaddrinfo(node, service, hints, res);  // passive/loopback
    addrinfo h{};
    if (hints != nullptr) {
        h = *hints;
    } else {
        h.ai_flags = AI_V4MAPPED | AI_ADDRCONFIG;  // glibc's meaning of NULL hints
    }
    int caller_flags = h.ai_flags;
    h.ai_flags |= AI_NUMERICHOST;
    if (is_numeric(node)) return real.getaddrinfo(node, service, &h, res);
    if (caller_flags & AI_NUMERICHOST) return EAI_NONAME;
    if (h.ai_family != AF_UNSPEC && h.ai_family != AF_INET && h.ai_family != AF_INET6)
        return EAI_FAMILY;
    if (node[0] == '\0' || strlen(node) > 255) return EAI_NONAME;
    char lit[INET6_ADDRSTRLEN];
    if (!literal_for(node, h.ai_family, lit)) return EAI_AGAIN;
    // Placeholders are not configured on any interface: AI_ADDRCONFIG must
    // not hide them (the proxy decides what is reachable).
    h.ai_flags &= ~AI_ADDRCONFIG;
    int rc = real.getaddrinfo(lit, service, &h, res);
    if (rc == 0 && (caller_flags & AI_CANONNAME)) {
        if (int err = set_canonname(*res, node)) {
            real.freeaddrinfo(*res);
            *res = nullptr;
            return err;
        }
    }
    return rc;
}

LP_EXPORT int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                          addrinfo** res) {
    return lp::hook::getaddrinfo(node, service, hints, res);
}

LP_EXPORT int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen,
                          char* serv, socklen_t servlen, int flags) {
    const auto& real = lp::real::fn();
    lp::net::endpoint ep;
    bool want_name = host != nullptr && hostlen > 0 && !(flags & NI_NUMERICHOST);
    if (want_name && lp::net::from_sockaddr(sa, salen, ep)) {
        char name[256];
        std::size_t len;
        if (lp::placeholder::name_of(ep.addr, name, len) ||
            (lp::reverse::wanted(ep.addr) && lp::reverse::resolve_ptr(ep.addr, name, len))) {
            if (len + 1 > hostlen) return EAI_OVERFLOW;
            if (serv != nullptr && servlen > 0) {
                int rc = real.getnameinfo(sa, salen, nullptr, 0, serv, servlen, flags);
                if (rc != 0) return rc;
            }
            memcpy(host, name, len + 1);
            return 0;
        }
        // A DNS reverse lookup would be a query about the destination.
        if (flags & NI_NAMEREQD) return EAI_NONAME;
    }
    return real.getnameinfo(sa, salen, host, hostlen, serv, servlen, flags | NI_NUMERICHOST);
}

namespace {

// The hooks' bodies, called by the exported names and by each other
// directly: a call to an exported name from inside the library would go
// through the dynamic linker (tests/unit/interposer/symbols_test.py).
int host_by_name2_r(const char* name, int af, hostent* ret, char* buf, size_t buflen,
                    hostent** result, int* h_errnop) noexcept {
    *result = nullptr;
    if (af != AF_INET && af != AF_INET6) {
        set_herr(h_errnop, NO_RECOVERY);
        return EAFNOSUPPORT;
    }
    unsigned char addr[16];
    if (name == nullptr || !host_address(name, af, addr)) {
        set_herr(h_errnop, HOST_NOT_FOUND);
        return ENOENT;
    }
    const char* shown = is_localhost(name) ? "localhost" : name;
    if (int rc = fill_hostent(shown, af, addr, ret, buf, buflen)) {
        set_herr(h_errnop, NETDB_INTERNAL);
        return rc;
    }
    *result = ret;
    set_herr(h_errnop, 0);
    return 0;
}

hostent* host_by_name2(const char* name, int af) noexcept {
    hostent* result = nullptr;
    int herr = 0;
    int rc =
        host_by_name2_r(name, af, &tls_host.ent, tls_host.buf, sizeof tls_host.buf, &result, &herr);
    return non_reentrant(rc, result, herr);
}

}  // namespace

LP_EXPORT int gethostbyname2_r(const char* name, int af, hostent* ret, char* buf, size_t buflen,
                               hostent** result, int* h_errnop) {
    return host_by_name2_r(name, af, ret, buf, buflen, result, h_errnop);
}

LP_EXPORT int gethostbyname_r(const char* name, hostent* ret, char* buf, size_t buflen,
                              hostent** result, int* h_errnop) {
    return host_by_name2_r(name, AF_INET, ret, buf, buflen, result, h_errnop);
}

LP_EXPORT hostent* gethostbyname2(const char* name, int af) {
    return host_by_name2(name, af);
}

LP_EXPORT hostent* gethostbyname(const char* name) {
    return host_by_name2(name, AF_INET);
}

// Reverse lookups: placeholders give back their name; in Tor mode Tor is
// asked about real addresses; anything else would be a DNS query about the
// destination, so it is not found.
namespace {

int host_by_addr_r(const void* addr, socklen_t len, int af, hostent* ret, char* buf, size_t buflen,
                   hostent** result, int* h_errnop) noexcept {
    *result = nullptr;
    lp::net::ip ip{};
    bool ok = false;
    if (af == AF_INET && len == 4) {
        char text[INET_ADDRSTRLEN];
        ok = inet_ntop(AF_INET, addr, text, sizeof text) && lp::net::parse_ip(text, ip);
    } else if (af == AF_INET6 && len == 16) {
        memcpy(ip.b.data(), addr, 16);
        ok = true;
    }
    char name[256];
    std::size_t name_len;
    bool found = ok && (lp::placeholder::name_of(ip, name, name_len) ||
                        (lp::reverse::wanted(ip) && lp::reverse::resolve_ptr(ip, name, name_len)));
    if (!found) {
        set_herr(h_errnop, HOST_NOT_FOUND);
        return ENOENT;
    }
    if (int rc = fill_hostent(name, af, addr, ret, buf, buflen)) {
        set_herr(h_errnop, NETDB_INTERNAL);
        return rc;
    }
    *result = ret;
    set_herr(h_errnop, 0);
    return 0;
}

}  // namespace

LP_EXPORT int gethostbyaddr_r(const void* addr, socklen_t len, int af, hostent* ret, char* buf,
                              size_t buflen, hostent** result, int* h_errnop) {
    return host_by_addr_r(addr, len, af, ret, buf, buflen, result, h_errnop);
}

LP_EXPORT hostent* gethostbyaddr(const void* addr, socklen_t len, int af) {
    hostent* result = nullptr;
    int herr = 0;
    int rc = host_by_addr_r(addr, len, af, &tls_host.ent, tls_host.buf, sizeof tls_host.buf,
                            &result, &herr);
    return non_reentrant(rc, result, herr);
}
