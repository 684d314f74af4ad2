#include "runtime/refuse.hpp"

#include <arpa/inet.h>
#include <errno.h>

#include "runtime/route.hpp"

namespace lp::refuse {

void put_target(log::line& ln, const policy::decision& d) noexcept {
    char host[INET6_ADDRSTRLEN] = "?";
    const auto& a = d.target.addr;
    if (d.by_name) {
        ln << d.name << ":" << d.target.port;
    } else if (a.is_v4()) {
        inet_ntop(AF_INET, a.b.data() + 12, host, sizeof host);
        ln << host << ":" << d.target.port;
    } else {
        inet_ntop(AF_INET6, a.b.data(), host, sizeof host);
        ln << "[" << host << "]:" << d.target.port;
    }
}

int by_policy(const char* call, const policy::decision& d) noexcept {
    auto ln = log::start();
    ln << call << " ";
    put_target(ln, d);
    ln << ": refused: " << d.reason;
    if (auto pattern = route::pattern_of(d); !pattern.empty()) ln << " (route " << pattern << ")";
    log::emit(log::level::normal, ln);
    errno = d.error;
    return -1;
}

int with(const char* call, std::string_view subject, const char* why, int err) noexcept {
    auto ln = log::start();
    ln << call;
    if (!subject.empty()) ln << " " << subject;
    ln << ": refused: " << why;
    log::emit(log::level::normal, ln);
    errno = err;  // emit() keeps errno, so set it last anyway
    return -1;
}

}  // namespace lp::refuse
