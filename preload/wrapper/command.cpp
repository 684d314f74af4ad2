#include "wrapper/command.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "runtime/program.hpp"

#ifndef LEAKPROOF_INSTALL_LIBDIR
#define LEAKPROOF_INSTALL_LIBDIR "lib"
#endif

namespace lp::wrapper {

namespace {

std::string dirname_of(const std::string& p) {
    auto slash = p.rfind('/');
    return slash == std::string::npos ? "." : p.substr(0, slash);
}

bool is_file(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

std::string find_library() {
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return {};
    std::string dir = dirname_of(std::string{buf, static_cast<std::size_t>(n)});
    for (const auto& candidate : {dir + "/libleakproof.so", dir + "/../" LEAKPROOF_INSTALL_LIBDIR
                                                                  "/leakproof/libleakproof.so"}) {
        char real[PATH_MAX];
        if (is_file(candidate) && ::realpath(candidate.c_str(), real)) return real;
    }
    return {};
}

std::string resolve_command(const std::string& name) {
    char path[PATH_MAX];
    if (!program::resolve(name.c_str(), std::getenv("PATH"), path, sizeof path)) return {};
    return path;
}

command_check check_command(const std::string& path) {
    program::check c;
    program::examine(path.c_str(), std::getenv("PATH"), c);
    return {c.what, c.why};
}

bool read_text(const std::string& path, std::string& out, std::size_t limit) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    out.clear();
    char chunk[4096];
    ssize_t n = 0;
    while (out.size() < limit && (n = ::read(fd, chunk, sizeof chunk)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        out.append(chunk, std::min<std::size_t>(static_cast<std::size_t>(n), limit - out.size()));
    }
    ::close(fd);
    return n >= 0;
}

}  // namespace lp::wrapper
