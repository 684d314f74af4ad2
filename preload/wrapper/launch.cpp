#include "wrapper/launch.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "supervisor/supervisor.hpp"
#include "wrapper/environment.hpp"
#include "wrapper/report.hpp"

namespace lp::wrapper {
namespace {

pid_t child_pid = 0;

void forward(int sig) {
    if (child_pid > 0) kill(child_pid, sig);
}

// Ctrl-C reaches the whole foreground group, so the wrapper only ignores
// it; TERM and HUP are passed on to the command.
void forward_signals() {
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    signal(SIGTERM, forward);
    signal(SIGHUP, forward);
}

// Under an outer leakproof only: runs the command and waits, holding the
// map for it (elsewhere our supervisor does that).
int run(const std::string& path, const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    child_pid = fork();
    if (child_pid < 0) die(1, std::string{"fork: "} + std::strerror(errno));
    if (child_pid == 0) {
        execv(path.c_str(), argv.data());
        std::fprintf(stderr, "leakproof: %s: %s\n", path.c_str(), std::strerror(errno));
        _exit(errno == ENOENT ? exit_not_found : exit_cannot_run);
    }
    forward_signals();
    int status = 0;
    while (waitpid(child_pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

// Which parts watch the command, for -v.
std::string modes(const command_check& check, const options& o) {
    if (check.what == command_check::verdict::static_only)
        return "supervised (seccomp) alone: it " + check.why;
    if (o.supervise) return "supervised (seccomp) alone: --supervise";
    return "interposer (LD_PRELOAD), supervised (seccomp) below";
}

[[noreturn]] void exec_command(const std::string& path, const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(path.c_str(), argv.data());
    int err = errno;
    std::fprintf(stderr, "leakproof: %s: %s\n", path.c_str(), std::strerror(err));
    std::exit(err == ENOENT ? exit_not_found : exit_cannot_run);
}

// Where the kernel offers no seccomp user notification: a dynamic command
// runs with the interposer alone, which then refuses to exec what it cannot
// reach (interposer/hooks/exec.cpp); everything else is refused. The
// wrapper waits for it, holding the map. Returns the exit status, or -1
// when the command must be refused with `error`.
int run_unsupervised(const std::string& path, const command_check& check, const options& o,
                     int map_fd, std::string& error) {
    if (check.what != command_check::verdict::interposable) {
        error = "it " + check.why + ", and " + error +
                " (seccomp user notification is needed: Linux 5.0 or later, outside a sandbox "
                "that forbids it)";
        return -1;
    }
    if (o.require_supervisor || o.supervise) {
        error += o.supervise ? " (--supervise)" : " (--require-supervisor)";
        return -1;
    }
    if (o.verbosity >= 1)
        say(stderr, "leakproof: warning: " + error +
                        " (no seccomp user notification here): the interposer alone covers this "
                        "command; static and setuid programs below are refused, raw system calls "
                        "of dynamic ones are not checked\n");
    if (o.verbosity >= 2)
        say(stderr, "leakproof: " + path +
                        ": interposer (LD_PRELOAD) alone: no seccomp user notification\n");
    set_unsupervised();
    hold_map(map_fd);
    return run(path, o.command);
}

}  // namespace

// The whole tree runs under the seccomp supervisor (supervisor/supervisor.hpp), so a
// static program started anywhere below is covered; the interposer does
// the work in dynamic programs. The command replaces the wrapper (same
// pid, no waiting); the supervisor holds the map as long as the tree lives.
// Exit 126 when the supervisor cannot be set up and the interposer alone
// cannot stand in: the program never runs unchecked.
int launch(const std::string& path, const command_check& check, const options& o, int map_fd) {
    bool is_static = check.what == command_check::verdict::static_only;
    std::string error;
    lp::supervise::started by;
    int rc = lp::supervise::hand_over(map_fd, error, by);
    if (rc == 0) {
        if (o.verbosity >= 2) say(stderr, "leakproof: " + path + ": " + modes(check, o) + "\n");
        // The supervisor waits, touching nothing, until our exec: the
        // memory we share is still ours to change.
        set_supervisor(by.pid, map_fd, by.dns_port);
        exec_command(path, o.command);
    }
    if (rc < 0 && lp::supervise::unavailable(-rc)) {
        rc = run_unsupervised(path, check, o, map_fd, error);
        if (rc < 0) {
            say(stderr, "leakproof: refusing to run " + path + ": " + error + "\n");
            rc = exit_cannot_run;
        }
    } else if (rc == -EBUSY && !is_static && !o.supervise) {
        // An outer leakproof's supervisor already watches this tree (the
        // kernel allows one per tree) and keeps doing so below us: our
        // interposer alone is enough for a dynamic program.
        if (o.verbosity >= 2)
            say(stderr, "leakproof: " + path + ": interposer alone, under an outer supervisor\n");
        hold_map(map_fd);
        rc = run(path, o.command);
    } else {
        say(stderr, "leakproof: refusing to run " + path + ": " + error + "\n");
        rc = exit_cannot_run;
    }
    close(map_fd);
    return rc;
}

}  // namespace lp::wrapper
