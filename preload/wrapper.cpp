// leakproof — the wrapper: validates the proxy chain, prepares the
// environment for libleakproof.so (LD_PRELOAD prepended, LEAKPROOF_*), creates
// the shared placeholder map, refuses programs nothing could watch (setuid,
// file capabilities), starts the seccomp supervisor, then execs COMMAND in
// its place.
#include <netdb.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "launch.hpp"
#include "leakproof/error.hpp"
#include "leakproof/proxy.hpp"
#include "net.hpp"
#include "options.hpp"
#include "placeholder.hpp"
#include "supervise.hpp"

namespace {

using lp::wrapper::options;
using lp::wrapper::usage_error;

constexpr int exit_usage = 2;
constexpr int exit_cannot_run = 126;
constexpr int exit_not_found = 127;

// One line on stderr, or stdout for what was asked for (--help, --env).
void say(std::FILE* to, const std::string& text) {
    std::fputs(text.c_str(), to);
}

[[noreturn]] void die(int code, const std::string& msg) {
    say(stderr, "leakproof: " + msg + "\n");
    std::exit(code);
}

std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> b(bytes);
    if (getrandom(b.data(), b.size(), 0) != static_cast<ssize_t>(b.size()))
        die(1, "cannot get random bytes");
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : b) out += {hex[c >> 4], hex[c & 15]};
    return out;
}

// The URL as the user wrote it, minus any password.
std::string redact(const std::string& url) {
    auto scheme = url.find("://");
    auto at = url.find('@', scheme == std::string::npos ? 0 : scheme + 3);
    if (scheme == std::string::npos || at == std::string::npos) return url;
    auto colon = url.find(':', scheme + 3);
    if (colon == std::string::npos || colon > at) return url;
    return url.substr(0, colon + 1) + "***" + url.substr(at);
}

// The interposer connects to the first hop by address, never by name.
void resolve_first_hop(leakproof::proxy& p) {
    std::string host{p.host.view()};
    lp::net::ip ip;
    if (lp::net::parse_ip(host, ip)) return;
    if (host == "localhost") {
        p.host.assign("127.0.0.1");
        return;
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0)
        die(1, "cannot resolve proxy host '" + host + "': " + gai_strerror(rc));
    char text[NI_MAXHOST];
    int rc =
        getnameinfo(res->ai_addr, res->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST);
    freeaddrinfo(res);
    if (rc != 0) die(1, "cannot resolve proxy host '" + host + "'");
    p.host.assign(text);
}

void set_credentials(leakproof::proxy& p, const options& o) {
    bool v5 = p.version == leakproof::socks_version::v5;
    if (o.have_user && !p.user.assign(o.user)) throw usage_error{"user name longer than 255 bytes"};
    if (o.have_password) {
        if (!v5 && !o.password.empty()) throw usage_error{"a SOCKS4 proxy takes no password"};
        if (!p.password.assign(o.password)) throw usage_error{"password longer than 255 bytes"};
    }
}

std::vector<leakproof::proxy> build_chain(const options& o) {
    std::vector<leakproof::proxy> chain(o.proxies.size());
    for (std::size_t i = 0; i < chain.size(); ++i) {
        if (auto ec = leakproof::parse_proxy_url(o.proxies[i], chain[i]))
            throw usage_error{"bad proxy URL '" + redact(o.proxies[i]) + "': " + ec.message()};
    }
    set_credentials(chain.front(), o);
    // Tor reads a pipelined greeting + request (one round trip instead of
    // two); other proxies of the chain keep what their URL says.
    if (o.tor) chain.front().options.pipeline = true;
    if (o.isolate && !o.isolate_process) {
        // A fresh identity per invocation: Tor (IsolateSOCKSAuth) puts
        // streams with different credentials on different circuits.
        std::string token = "leakproof-" + random_hex(8);
        for (auto& p : chain)
            if (p.version == leakproof::socks_version::v5 && p.user.empty())
                p.user.assign(token), p.password.assign(token);
    }
    for (auto& p : chain) {
        auto req = p.make_request(leakproof::address::host_name("example.org"), 80);
        if (auto ec = leakproof::validate(req))
            throw usage_error{"bad proxy URL '" + redact(lp::wrapper::to_url(p)) +
                              "': " + ec.message()};
    }
    resolve_first_hop(chain.front());
    return chain;
}

std::vector<std::pair<std::string, std::string>> interposer_env(
    const options& o, const std::vector<leakproof::proxy>& chain, const std::string& lib) {
    std::string urls;
    for (const auto& p : chain) urls += (urls.empty() ? "" : " ") + lp::wrapper::to_url(p);
    std::string excludes;
    for (const auto& e : o.excludes) excludes += (excludes.empty() ? "" : ",") + e;
    const char* old = std::getenv("LD_PRELOAD");
    std::string preload = lib + (old && *old ? ":" + std::string{old} : "");
    std::vector<std::pair<std::string, std::string>> env{
        {"LEAKPROOF_PROXIES", urls},
        {"LEAKPROOF_TIMEOUT_MS", std::to_string(static_cast<long>(o.timeout * 1000))},
        {"LEAKPROOF_EXCLUDE", excludes},
        {"LEAKPROOF_PROXY_LOOPBACK", o.proxy_loopback ? "1" : "0"},
        // Tor answers reverse lookups (RESOLVE_PTR); other proxies cannot.
        {"LEAKPROOF_TOR", o.tor ? "1" : "0"},
        {"LEAKPROOF_LOG_LEVEL", std::to_string(o.verbosity)},
        // Per-process isolation: the interposer makes "<base>-<pid>" users
        // for the SOCKS5 hops that have none (config.hpp). Always set, so
        // that an outer run's value is not inherited.
        {"LEAKPROOF_ISOLATE", o.isolate_process ? "process:leakproof-" + random_hex(8) : ""},
    };
    if (!o.log_file.empty()) env.emplace_back("LEAKPROOF_LOG_FILE", o.log_file);
    // --supervise: the supervisor alone, for where LD_PRELOAD is unwelcome.
    if (!o.supervise) env.emplace_back("LD_PRELOAD", preload);
    return env;
}

std::string create_map() {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string path =
        std::string{dir} + "/leakproof-" + std::to_string(getuid()) + "-" + random_hex(8);
    if (int err = lp::placeholder::create_file(path.c_str()))
        die(1, "cannot create the placeholder map " + path + ": " + std::strerror(err));
    return path;
}

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string{"'\\''"} : std::string{c};
    return out + "'";
}

int print_env(const std::vector<std::pair<std::string, std::string>>& env) {
    // The map outlives this command (nothing waits to remove it); it is a
    // 1 MiB file in /dev/shm, removed at reboot.
    say(stdout, "export LEAKPROOF_MAP=" + shell_quote(create_map()) + "\n");
    for (const auto& [k, v] : env) say(stdout, "export " + k + "=" + shell_quote(v) + "\n");
    return 0;
}

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

// Under an outer leakproof only: runs the command and waits, to remove
// the map when it is done (elsewhere our supervisor does that).
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
using lp::wrapper::command_check;

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

// The whole tree runs under the seccomp supervisor (supervise.hpp), so a
// static program started anywhere below is covered; the interposer does
// the work in dynamic programs. The command replaces the wrapper (same
// pid, no waiting); the supervisor removes the map when the tree is gone.
// Exit 126 when the supervisor cannot be set up: the program never runs
// unchecked.
int launch(const std::string& path, const command_check& check, const options& o,
           const std::string& map) {
    if (o.verbosity >= 2) say(stderr, "leakproof: " + path + ": " + modes(check, o) + "\n");
    bool is_static = check.what == command_check::verdict::static_only;
    std::string error;
    int rc = lp::supervise::hand_over(map, error);
    if (rc == 0) exec_command(path, o.command);
    // An outer leakproof's supervisor already watches this tree (the kernel
    // allows one per tree) and keeps doing so below us: our interposer
    // alone is enough for a dynamic program.
    if (rc == -EBUSY && !is_static && !o.supervise) {
        if (o.verbosity >= 2)
            say(stderr, "leakproof: " + path + ": interposer alone, under an outer supervisor\n");
        rc = run(path, o.command);
    } else {
        say(stderr, "leakproof: refusing to run " + path + ": " + error + "\n");
        rc = exit_cannot_run;
    }
    unlink(map.c_str());
    return rc;
}

int main_checked(int argc, char** argv) {
    options o = lp::wrapper::parse(argc, argv);
    if (o.what == options::mode::help) {
        say(stdout, lp::wrapper::usage_text());
        return 0;
    }
    if (o.what == options::mode::version) {
        say(stdout, "leakproof " LEAKPROOF_VERSION "\n");
        return 0;
    }
    auto chain = build_chain(o);
    std::string lib = lp::wrapper::find_library();
    if (lib.empty()) die(1, "cannot find libleakproof.so next to the leakproof program");
    auto env = interposer_env(o, chain, lib);
    if (o.what == options::mode::env) return print_env(env);
    if (o.what == options::mode::shell) {
        const char* sh = std::getenv("SHELL");
        o.command = {sh && *sh ? sh : "/bin/sh"};
    }
    std::string path = lp::wrapper::resolve_command(o.command[0]);
    if (path.empty()) die(exit_not_found, o.command[0] + ": command not found");
    // Static programs (and scripts run by one) run supervised; setuid ones
    // and the like stay refused.
    auto check = lp::wrapper::check_command(path);
    if (check.what == command_check::verdict::refused)
        die(exit_cannot_run, "refusing to run " + path + ": it " + check.why);
    std::string map = create_map();
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    setenv("LEAKPROOF_MAP", map.c_str(), 1);
    // The supervisor reads the same LEAKPROOF_* settings as the interposer.
    return launch(path, check, o, map);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return main_checked(argc, argv);
    } catch (const usage_error& e) {
        die(exit_usage, e.what);
    } catch (const std::exception& e) {
        die(1, e.what());
    }
}
