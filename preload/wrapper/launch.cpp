#include "wrapper/launch.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "supervisor/supervisor.hpp"
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

// The tree opens the map by a path that lives as long as `holder` keeps
// descriptor `map_fd` open (placeholder.hpp).
void name_map(pid_t holder, int map_fd) {
    std::string path = "/proc/" + std::to_string(holder) + "/fd/" + std::to_string(map_fd);
    setenv("LEAKPROOF_MAP", path.c_str(), 1);
}

}  // namespace

// The whole tree runs under the seccomp supervisor (supervisor/supervisor.hpp), so a
// static program started anywhere below is covered; the interposer does
// the work in dynamic programs. The command replaces the wrapper (same
// pid, no waiting); the supervisor holds the map as long as the tree lives.
// Exit 126 when the supervisor cannot be set up: the program never runs
// unchecked.
int launch(const std::string& path, const command_check& check, const options& o, int map_fd) {
    if (o.verbosity >= 2) say(stderr, "leakproof: " + path + ": " + modes(check, o) + "\n");
    bool is_static = check.what == command_check::verdict::static_only;
    std::string error;
    pid_t supervisor = -1;
    int rc = lp::supervise::hand_over(map_fd, supervisor, error);
    if (rc == 0) {
        // The supervisor waits, touching nothing, until our exec: the
        // memory we share is still ours to change.
        name_map(supervisor, map_fd);
        exec_command(path, o.command);
    }
    // An outer leakproof's supervisor already watches this tree (the kernel
    // allows one per tree) and keeps doing so below us: our interposer
    // alone is enough for a dynamic program.
    if (rc == -EBUSY && !is_static && !o.supervise) {
        if (o.verbosity >= 2)
            say(stderr, "leakproof: " + path + ": interposer alone, under an outer supervisor\n");
        name_map(getpid(), map_fd);
        rc = run(path, o.command);
    } else {
        say(stderr, "leakproof: refusing to run " + path + ": " + error + "\n");
        rc = exit_cannot_run;
    }
    close(map_fd);
    return rc;
}

}  // namespace lp::wrapper
