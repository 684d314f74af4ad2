// The resolver library (res_query and friends): these
// build and send DNS packets themselves, to the servers in resolv.conf, so
// every one of them would leak the name. They are refused: -1, h_errno
// NO_RECOVERY (also in the res_state for the res_n* calls, as glibc's own
// RES_SET_H_ERRNO does), errno ECONNREFUSED (what glibc reports when no
// server could be asked), and one log line.
//
// glibc ≥ 2.34 has them in libc.so.6; programs built against older headers
// call the __res_* names (resolv.h #defined them), still exported as
// compatibility symbols, so both spellings are hooked.
#include <errno.h>
#include <netdb.h>
#include <resolv.h>

#include <string_view>

#include "runtime/real.hpp"
#include "runtime/refuse.hpp"

namespace {

constexpr const char* why = "DNS query outside the proxy (names go to the proxy)";

int refuse(const char* call, const char* name, res_state statp) noexcept {
    if (statp != nullptr) statp->res_h_errno = NO_RECOVERY;
    h_errno = NO_RECOVERY;
    return lp::refuse::with(call, name ? std::string_view{name} : std::string_view{}, why,
                            ECONNREFUSED);
}

// "name.domain" for the log, cut to the line's room by the log itself.
int refuse_domain(const char* call, const char* name, const char* domain,
                  res_state statp) noexcept {
    char full[512];
    std::size_t n = 0;
    for (const char* part : {name, ".", domain}) {
        for (const char* p = part ? part : ""; *p != '\0' && n + 1 < sizeof full; ++p)
            full[n++] = *p;
    }
    full[n] = '\0';
    return refuse(call, full, statp);
}

}  // namespace

extern "C" {
int __res_query(const char*, int, int, unsigned char*, int);
int __res_search(const char*, int, int, unsigned char*, int);
int __res_querydomain(const char*, const char*, int, int, unsigned char*, int);
int __res_send(const unsigned char*, int, unsigned char*, int);
int __res_nquery(res_state, const char*, int, int, unsigned char*, int);
int __res_nsearch(res_state, const char*, int, int, unsigned char*, int);
int __res_nquerydomain(res_state, const char*, const char*, int, int, unsigned char*, int);
int __res_nsend(res_state, const unsigned char*, int, unsigned char*, int);
}

LP_EXPORT int res_query(const char* name, int, int, unsigned char*, int) {
    return refuse("res_query", name, nullptr);
}

LP_EXPORT int res_search(const char* name, int, int, unsigned char*, int) {
    return refuse("res_search", name, nullptr);
}

LP_EXPORT int res_querydomain(const char* name, const char* domain, int, int, unsigned char*, int) {
    return refuse_domain("res_querydomain", name, domain, nullptr);
}

// A ready-made packet: its name is not decoded, the call alone is logged.
LP_EXPORT int res_send(const unsigned char*, int, unsigned char*, int) {
    return refuse("res_send", nullptr, nullptr);
}

LP_EXPORT int res_nquery(res_state statp, const char* name, int, int, unsigned char*, int) {
    return refuse("res_nquery", name, statp);
}

LP_EXPORT int res_nsearch(res_state statp, const char* name, int, int, unsigned char*, int) {
    return refuse("res_nsearch", name, statp);
}

LP_EXPORT int res_nquerydomain(res_state statp, const char* name, const char* domain, int, int,
                               unsigned char*, int) {
    return refuse_domain("res_nquerydomain", name, domain, statp);
}

LP_EXPORT int res_nsend(res_state statp, const unsigned char*, int, unsigned char*, int) {
    return refuse("res_nsend", nullptr, statp);
}

// The old names refuse directly: calling the exported res_* from here would
// depend on which library the dynamic linker binds them to.
LP_EXPORT int __res_query(const char* name, int, int, unsigned char*, int) {
    return refuse("res_query", name, nullptr);
}

LP_EXPORT int __res_search(const char* name, int, int, unsigned char*, int) {
    return refuse("res_search", name, nullptr);
}

LP_EXPORT int __res_querydomain(const char* name, const char* domain, int, int, unsigned char*,
                                int) {
    return refuse_domain("res_querydomain", name, domain, nullptr);
}

LP_EXPORT int __res_send(const unsigned char*, int, unsigned char*, int) {
    return refuse("res_send", nullptr, nullptr);
}

LP_EXPORT int __res_nquery(res_state statp, const char* name, int, int, unsigned char*, int) {
    return refuse("res_nquery", name, statp);
}

LP_EXPORT int __res_nsearch(res_state statp, const char* name, int, int, unsigned char*, int) {
    return refuse("res_nsearch", name, statp);
}

LP_EXPORT int __res_nquerydomain(res_state statp, const char* name, const char* domain, int, int,
                                 unsigned char*, int) {
    return refuse_domain("res_nquerydomain", name, domain, statp);
}

LP_EXPORT int __res_nsend(res_state statp, const unsigned char*, int, unsigned char*, int) {
    return refuse("res_nsend", nullptr, statp);
}
