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
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "interposer/ptracer.hpp"
#include "runtime/config.hpp"
#include "runtime/program.hpp"
#include "runtime/real.hpp"  // LP_EXPORT
#include "runtime/refuse.hpp"

extern char** environ;

namespace {

using spawn_fn = int (*)(pid_t*, const char*, const posix_spawn_file_actions_t*,
                         const posix_spawnattr_t*, char* const[], char* const[]);

// libc's own, found at load time (runtime/real.hpp says why not later).
struct exec_functions {
    int (*execve)(const char*, char* const[], char* const[]);
    int (*execvpe)(const char*, char* const[], char* const[]);
    int (*fexecve)(int, char* const[], char* const[]);
    spawn_fn posix_spawn;
    spawn_fn posix_spawnp;
};

exec_functions table;
pthread_once_t once = PTHREAD_ONCE_INIT;

template <typename F>
void load(F& slot, const char* name) noexcept {
    void* p = dlsym(RTLD_NEXT, name);
    if (p == nullptr) {
        static const char msg[] = "leakproof: cannot find the real libc function\n";
        (void)!::write(2, msg, sizeof msg - 1);
        abort();
    }
    slot = reinterpret_cast<F>(p);
}

void resolve() noexcept {
    load(table.execve, "execve");
    load(table.execvpe, "execvpe");
    load(table.fexecve, "fexecve");
    load(table.posix_spawn, "posix_spawn");
    load(table.posix_spawnp, "posix_spawnp");
}

__attribute__((constructor)) void resolve_at_load() noexcept {
    pthread_once(&once, resolve);
}

const exec_functions& real_exec() noexcept {
    pthread_once(&once, resolve);
    return table;
}

// 0 when `path` may run here, else EACCES after the log line. The exec
// keeps the process's ptracer, which a vfork child has not named yet.
int refusal(const char* call, const char* path) noexcept {
    lp::ptracer::declare();
    if (!lp::config::get().unsupervised) return 0;
    lp::program::check c;
    lp::program::examine(path, getenv("PATH"), c);
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
    if (!lp::program::resolve(file, getenv("PATH"), path, sizeof path)) return 0;
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

}  // namespace

LP_EXPORT int execve(const char* path, char* const argv[], char* const envp[]) {
    if (int err = refusal("execve", path)) return fail(err);
    return real_exec().execve(path, argv, envp);
}

LP_EXPORT int execv(const char* path, char* const argv[]) {
    if (int err = refusal("execv", path)) return fail(err);
    return real_exec().execve(path, argv, environ);
}

LP_EXPORT int execvpe(const char* file, char* const argv[], char* const envp[]) {
    if (int err = refusal_in_path("execvpe", file)) return fail(err);
    return real_exec().execvpe(file, argv, envp);
}

LP_EXPORT int execvp(const char* file, char* const argv[]) {
    if (int err = refusal_in_path("execvp", file)) return fail(err);
    return real_exec().execvpe(file, argv, environ);
}

LP_EXPORT int fexecve(int fd, char* const argv[], char* const envp[]) {
    char path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (int err = refusal("fexecve", path)) return fail(err);
    return real_exec().fexecve(fd, argv, envp);
}

LP_EXPORT int execl(const char* path, const char* arg, ...) {
    const char* argv[max_execl_args];
    va_list ap;
    va_start(ap, arg);
    bool ok = collect(arg, ap, argv, nullptr);
    va_end(ap);
    if (!ok) return fail(E2BIG);
    return execv(path, const_cast<char* const*>(argv));
}

LP_EXPORT int execlp(const char* file, const char* arg, ...) {
    const char* argv[max_execl_args];
    va_list ap;
    va_start(ap, arg);
    bool ok = collect(arg, ap, argv, nullptr);
    va_end(ap);
    if (!ok) return fail(E2BIG);
    return execvp(file, const_cast<char* const*>(argv));
}

LP_EXPORT int execle(const char* path, const char* arg, ...) {
    const char* argv[max_execl_args];
    char* const* envp = nullptr;
    va_list ap;
    va_start(ap, arg);
    bool ok = collect(arg, ap, argv, &envp);
    va_end(ap);
    if (!ok) return fail(E2BIG);
    return execve(path, const_cast<char* const*>(argv), envp);
}

LP_EXPORT int posix_spawn(pid_t* pid, const char* path, const posix_spawn_file_actions_t* actions,
                          const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
    if (int err = refusal("posix_spawn", path)) return err;
    return real_exec().posix_spawn(pid, path, actions, attr, argv, envp);
}

LP_EXPORT int posix_spawnp(pid_t* pid, const char* file, const posix_spawn_file_actions_t* actions,
                           const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
    if (int err = refusal_in_path("posix_spawnp", file)) return err;
    return real_exec().posix_spawnp(pid, file, actions, attr, argv, envp);
}
