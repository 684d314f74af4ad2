#include "runtime/program.hpp"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>

#include "runtime/real.hpp"

namespace lp::program {
namespace {

constexpr int max_interpreters = 4;  // the kernel's own limit on nested #!
constexpr std::size_t max_path = 4096;

// Appends `s` to `out` (capacity `cap`), truncating.
void append(char* out, std::size_t cap, const char* s) noexcept {
    std::size_t at = std::strlen(out);
    std::size_t n = std::strlen(s);
    if (at + 1 >= cap) return;
    if (n > cap - 1 - at) n = cap - 1 - at;
    std::memcpy(out + at, s, n);
    out[at + n] = '\0';
}

void set(check& c, verdict v, const char* why, const char* detail = nullptr) noexcept {
    c.what = v;
    c.why[0] = '\0';
    append(c.why, sizeof c.why, why);
    if (detail) append(c.why, sizeof c.why, detail);
}

bool is_file(const char* p) noexcept {
    struct stat st;
    return ::stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

// Same class and machine as us, and a PT_INTERP (dynamic).
void check_elf(int fd, check& out) noexcept {
    Elf64_Ehdr eh;
    if (::pread(fd, &eh, sizeof eh, 0) != static_cast<ssize_t>(sizeof eh) ||
        eh.e_ident[EI_CLASS] != ELFCLASS64)
        return set(out, verdict::refused,
                   "is not a 64-bit ELF program (the interposer could not be loaded into it)");
#if defined(__x86_64__)
    if (eh.e_machine != EM_X86_64)
        return set(out, verdict::refused, "is built for another architecture");
#elif defined(__aarch64__)
    if (eh.e_machine != EM_AARCH64)
        return set(out, verdict::refused, "is built for another architecture");
#endif
    for (int i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph;
        auto off = static_cast<off_t>(eh.e_phoff + static_cast<Elf64_Off>(i) * eh.e_phentsize);
        if (::pread(fd, &ph, sizeof ph, off) != static_cast<ssize_t>(sizeof ph)) break;
        if (ph.p_type == PT_INTERP) return set(out, verdict::interposable, "");
    }
    set(out, verdict::static_only, "is statically linked (LD_PRELOAD cannot reach it)");
}

bool is_blank(char c) noexcept {
    return c == ' ' || c == '\t';
}

// "#!/usr/bin/env python3" → the interpreter that will really run, in
// `out`; false when the line names none.
bool interpreter_of(char* line, const char* search_path, char* out, std::size_t cap) noexcept {
    char* p = line + 2;
    while (is_blank(*p)) ++p;
    if (*p == '\0') return false;
    char* interp = p;
    while (*p && !is_blank(*p)) ++p;
    bool more = *p != '\0';
    *p = '\0';
    std::size_t len = std::strlen(interp);
    if (len >= 4 && std::strcmp(interp + len - 4, "/env") == 0 && more) {
        char* arg = p + 1;
        while (is_blank(*arg)) ++arg;
        char* end = arg;
        while (*end && !is_blank(*end)) ++end;
        *end = '\0';
        if (*arg != '\0' && *arg != '-') return resolve(arg, search_path, out, cap);
    }
    if (len + 1 > cap) return false;
    std::memcpy(out, interp, len + 1);
    return true;
}

void examine_at(const char* path, const char* search_path, int depth, check& out) noexcept;

// A script: judged by its interpreter.
void check_script(int fd, const char* search_path, int depth, check& out) noexcept {
    char line[256] = {};
    ssize_t n = ::pread(fd, line, sizeof line - 1, 0);
    if (n < 0) n = 0;
    line[n] = '\0';
    if (char* nl = std::strchr(line, '\n')) *nl = '\0';
    char interp[max_path];
    if (!interpreter_of(line, search_path, interp, sizeof interp))
        return set(out, verdict::refused, "has an unusable #! line");
    if (depth >= max_interpreters)
        return set(out, verdict::refused, "has too many nested interpreters");
    examine_at(interp, search_path, depth + 1, out);
    if (out.what == verdict::interposable) return;
    char inner[sizeof out.why];
    std::memcpy(inner, out.why, sizeof inner);
    set(out, out.what, "runs with ", interp);
    append(out.why, sizeof out.why, ", which ");
    append(out.why, sizeof out.why, inner);
}

void examine_at(const char* path, const char* search_path, int depth, check& out) noexcept {
    struct stat st;
    if (::stat(path, &st) != 0)
        return set(out, verdict::refused, "cannot be examined: ", strerrordesc_np(errno));
    if (st.st_mode & S_ISUID)
        return set(out, verdict::refused, "is setuid (the loader ignores LD_PRELOAD for it)");
    if (st.st_mode & S_ISGID)
        return set(out, verdict::refused, "is setgid (the loader ignores LD_PRELOAD for it)");
    if (::getxattr(path, "security.capability", nullptr, 0) >= 0)
        return set(out, verdict::refused,
                   "has file capabilities (the loader ignores LD_PRELOAD for it)");
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return set(out, verdict::refused, "cannot be read: ", strerrordesc_np(errno));
    char head[4] = {};
    ssize_t n = ::pread(fd, head, sizeof head, 0);
    set(out, verdict::interposable, "");
    if (n == 4 && std::memcmp(head, ELFMAG, SELFMAG) == 0)
        check_elf(fd, out);
    else if (n >= 2 && head[0] == '#' && head[1] == '!')
        check_script(fd, search_path, depth, out);
    // Anything else is a shell script without #!: run by /bin/sh, fine.
    real::fn().close(fd);  // close() is one of the interposer's hooks
}

}  // namespace

void examine(const char* path, const char* search_path, check& out) noexcept {
    examine_at(path, search_path, 0, out);
}

bool resolve(const char* name, const char* search_path, char* out, std::size_t cap) noexcept {
    std::size_t len = std::strlen(name);
    if (std::strchr(name, '/') != nullptr) {
        if (len + 1 > cap || !is_file(name)) return false;
        std::memcpy(out, name, len + 1);
        return true;
    }
    const char* dirs = search_path ? search_path : "/usr/local/bin:/usr/bin:/bin";
    for (const char* at = dirs;;) {
        const char* end = std::strchr(at, ':');
        std::size_t dlen = end ? static_cast<std::size_t>(end - at) : std::strlen(at);
        const char* dir = dlen == 0 ? "." : at;
        if (dlen == 0) dlen = 1;
        if (dlen + 1 + len + 1 <= cap) {
            std::memcpy(out, dir, dlen);
            out[dlen] = '/';
            std::memcpy(out + dlen + 1, name, len + 1);
            if (is_file(out) && ::access(out, X_OK) == 0) return true;
        }
        if (!end) return false;
        at = end + 1;
    }
}

}  // namespace lp::program
