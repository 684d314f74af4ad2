// The exec family and posix_spawn, where no seccomp supervisor watches the
// tree (the kernel offers no user notification: LEAKPROOF_UNSUPERVISED,
// runtime/config.hpp). LD_PRELOAD reaches only dynamic programs; a static
// one (gcc -static, Go with CGO_ENABLED=0) or a setuid/setcap one would run
// unprotected, so it is not run: one log line, EACCES (posix_spawn returns
// it). The check is the wrapper's own (runtime/program.hpp), which
// allocates nothing: these hooks run between fork or vfork and the exec.
// With a supervisor, every call goes straight to libc.
//
// All of them are hooked because libc's execv, execvp, execl... call its
// internal execve, which no preload can replace.
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "interposer/ptracer.hpp"
#include "runtime/config.hpp"
#include "runtime/program.hpp"
#include "runtime/real.hpp"
#include "runtime/refuse.hpp"

extern char** environ;

namespace {

// 0 when `path` may run here, else EACCES after the log line. The exec
// keeps the process's ptracer, which a vfork child has not named yet.
int refusal(const char* call, const char* path) noexcept {
    lp::ptracer::declare();
    if (!lp::config::get().unsupervised) return 0;
    lp::program::check c;
    lp::program::examine(path, lp::config::search_path(), c);
    if (c.what == lp::program::verdict::interposable) return 0;
    char why[sizeof c.why + 96];
    snprintf(why, sizeof why, "it %s, and no seccomp supervisor watches this tree", c.why);
    lp::refuse::with(call, path, why, EACCES);
    return EACCES;
}

// The same for a name execvp would look up in PATH. A name it cannot
// find is left to libc, which fails with ENOENT.
int refusal_in_path(const char* call, const char* file) noexcept {
    lp::ptracer::declare();
    if (!lp::config::get().unsupervised) return 0;
    char path[PATH_MAX];
    if (!lp::program::resolve(file, lp::config::search_path(), path, sizeof path)) return 0;
    return refusal(call, path);
}

int fail(int err) noexcept {
    errno = err;
    return -1;
}

// execl's arguments, up to the terminating null, as an argv in `out`;
// `envp` gets what follows the null when asked for (execle).
template <std::size_t N>
bool collect(const char* arg, va_list ap, const char* (&out)[N], char* const** envp) noexcept {
    std::size_t n = 0;
    out[n++] = arg;
    while (arg != nullptr) {
        arg = va_arg(ap, const char*);
        if (n == N) return false;
        out[n++] = arg;
    }
    if (envp) *envp = va_arg(ap, char* const*);
    return true;
}

constexpr std::size_t max_execl_args = 1024;  // 8 KiB of stack

// The hooks' bodies, which execl, execlp and execle share: calling the
// exported execv from inside the library would go through the dynamic
// linker to whatever execv comes first (tests/unit/interposer/symbols_test.py).
int exec_file(const char* call, const char* path, char* const argv[], char* const envp[]) noexcept {
    if (int err = refusal(call, path)) return fail(err);
    return lp::real::fn().execve(path, argv, envp);
}

int exec_in_path(const char* call, const char* file, char* const argv[],
                 char* const envp[]) noexcept {
    if (int err = refusal_in_path(call, file)) return fail(err);
    return lp::real::fn().execvpe(file, argv, envp);
}

}  // namespace

LP_EXPORT int execve(const char* path, char* const argv[], char* const envp[]) {
    return exec_file("execve", path, argv, envp);
}

LP_EXPORT int execv(const char* path, char* const argv[]) {
    return exec_file("execv", path, argv, environ);
}

LP_EXPORT int execvpe(const char* file, char* const argv[], char* const envp[]) {
    return exec_in_path("execvpe", file, argv, envp);
}

LP_EXPORT int execvp(const char* file, char* const argv[]) {
    return exec_in_path("execvp", file, argv, environ);
}

LP_EXPORT int fexecve(int fd, char* const argv[], char* const envp[]) {
    char path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (int err = refusal("fexecve", path)) return fail(err);
    return lp::real::fn().fexecve(fd, argv, envp);
}

LP_EXPORT int execl(const char* path, const char* arg, ...) {
    const char* argv[max_execl_args];
    va_list ap;
    va_start(ap, arg);
    bool ok = collect(arg, ap, argv, nullptr);
    va_end(ap);
    if (!ok) return fail(E2BIG);
    return exec_file("execl", path, const_cast<char* const*>(argv), environ);
}

LP_EXPORT int execlp(const char* file, const char* arg, ...) {
    const char* argv[max_execl_args];
    va_list ap;
    va_start(ap, arg);
    bool ok = collect(arg, ap, argv, nullptr);
    va_end(ap);
    if (!ok) return fail(E2BIG);
    return exec_in_path("execlp", file, const_cast<char* const*>(argv), environ);
}

LP_EXPORT int execle(const char* path, const char* arg, ...) {
    const char* argv[max_execl_args];
    char* const* envp = nullptr;
    va_list ap;
    va_start(ap, arg);
    bool ok = collect(arg, ap, argv, &envp);
    va_end(ap);
    if (!ok) return fail(E2BIG);
    return exec_file("execle", path, const_cast<char* const*>(argv), envp);
}

LP_EXPORT int posix_spawn(pid_t* pid, const char* path, const posix_spawn_file_actions_t* actions,
                          const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
    if (int err = refusal("posix_spawn", path)) return err;
    return lp::real::fn().posix_spawn(pid, path, actions, attr, argv, envp);
}

LP_EXPORT int posix_spawnp(pid_t* pid, const char* file, const posix_spawn_file_actions_t* actions,
                           const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
    if (int err = refusal_in_path("posix_spawnp", file)) return err;
    return lp::real::fn().posix_spawnp(pid, file, actions, attr, argv, envp);
}
