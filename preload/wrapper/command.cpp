#include "wrapper/command.hpp"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#ifndef LEAKPROOF_INSTALL_LIBDIR
#define LEAKPROOF_INSTALL_LIBDIR "lib"
#endif

namespace lp::wrapper {

namespace {

using verdict = command_check::verdict;

command_check refused(std::string why) {
    return {verdict::refused, std::move(why)};
}

std::string dirname_of(const std::string& p) {
    auto slash = p.rfind('/');
    return slash == std::string::npos ? "." : p.substr(0, slash);
}

bool is_file(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_executable(const std::string& p) {
    return is_file(p) && ::access(p.c_str(), X_OK) == 0;
}

// ELF checks: same class and machine as us, and a PT_INTERP (dynamic).
command_check check_elf(int fd) {
    Elf64_Ehdr eh;
    if (::pread(fd, &eh, sizeof eh, 0) != static_cast<ssize_t>(sizeof eh) ||
        eh.e_ident[EI_CLASS] != ELFCLASS64)
        return refused("is not a 64-bit ELF program (the interposer could not be loaded into it)");
#if defined(__x86_64__)
    if (eh.e_machine != EM_X86_64) return refused("is built for another architecture");
#elif defined(__aarch64__)
    if (eh.e_machine != EM_AARCH64) return refused("is built for another architecture");
#endif
    for (int i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph;
        auto off = static_cast<off_t>(eh.e_phoff + static_cast<Elf64_Off>(i) * eh.e_phentsize);
        if (::pread(fd, &ph, sizeof ph, off) != static_cast<ssize_t>(sizeof ph)) break;
        if (ph.p_type == PT_INTERP) return {};
    }
    return {verdict::static_only, "is statically linked (LD_PRELOAD cannot reach it)"};
}

// "#!/usr/bin/env python3" → the interpreter that will really run.
std::string interpreter_of(const std::string& first_line) {
    std::string rest = first_line.substr(2);
    auto b = rest.find_first_not_of(" \t");
    if (b == std::string::npos) return "";
    rest = rest.substr(b);
    auto e = rest.find_first_of(" \t");
    std::string interp = rest.substr(0, e);
    if (interp.size() >= 4 && interp.compare(interp.size() - 4, 4, "/env") == 0 &&
        e != std::string::npos) {
        auto arg_b = rest.find_first_not_of(" \t", e);
        if (arg_b != std::string::npos) {
            auto arg = rest.substr(arg_b, rest.find_first_of(" \t", arg_b) - arg_b);
            if (!arg.empty() && arg[0] != '-') return resolve_command(arg);
        }
    }
    return interp;
}

command_check check_at_depth(const std::string& path, int depth) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0)
        return refused("cannot be examined: " + std::string{strerror(errno)});
    if (st.st_mode & S_ISUID) return refused("is setuid (the loader ignores LD_PRELOAD for it)");
    if (st.st_mode & S_ISGID) return refused("is setgid (the loader ignores LD_PRELOAD for it)");
    if (::getxattr(path.c_str(), "security.capability", nullptr, 0) >= 0)
        return refused("has file capabilities (the loader ignores LD_PRELOAD for it)");
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return refused("cannot be read: " + std::string{strerror(errno)});
    char head[4] = {};
    ssize_t n = ::pread(fd, head, sizeof head, 0);
    command_check check;
    if (n == 4 && std::memcmp(head, ELFMAG, SELFMAG) == 0) {
        check = check_elf(fd);
    } else if (n >= 2 && head[0] == '#' && head[1] == '!') {
        std::string line;
        read_text(path, line, 4096);
        line = line.substr(0, line.find('\n'));
        auto interp = interpreter_of(line);
        if (interp.empty()) {
            check = refused("has an unusable #! line");
        } else if (depth > 4) {
            check = refused("has too many nested interpreters");
        } else {
            check = check_at_depth(interp, depth + 1);
            if (check.what != verdict::interposable)
                check.why = "runs with " + interp + ", which " + check.why;
        }
    }
    // Anything else is a shell script without #!: run by /bin/sh, fine.
    ::close(fd);
    return check;
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
    if (name.find('/') != std::string::npos) return is_file(name) ? name : "";
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    std::size_t start = 0;
    for (;;) {
        auto end = dirs.find(':', start);
        std::string dir = dirs.substr(start, end - start);
        if (dir.empty()) dir = ".";
        if (is_executable(dir + "/" + name)) return dir + "/" + name;
        if (end == std::string::npos) return {};
        start = end + 1;
    }
}

command_check check_command(const std::string& path) {
    return check_at_depth(path, 0);
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
