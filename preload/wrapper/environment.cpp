#include "wrapper/environment.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <cstring>

#include "runtime/environment.hpp"
#include "runtime/placeholder.hpp"
#include "wrapper/chain.hpp"
#include "wrapper/report.hpp"

namespace lp::wrapper {
namespace {

std::string proxy_url(const leakproof::proxy& p) {
    char url[leakproof::max_url_size];
    return {url, leakproof::format_proxy_url(p, url, sizeof url)};
}

}  // namespace

environment interposer_env(const options& o, const std::vector<leakproof::proxy>& chain,
                           const std::string& lib) {
    std::string urls;
    for (const auto& p : chain) urls += (urls.empty() ? "" : " ") + proxy_url(p);
    std::string excludes;
    for (const auto& e : o.excludes) excludes += (excludes.empty() ? "" : ",") + e;
    const char* old = std::getenv("LD_PRELOAD");
    std::string preload = lib + (old && *old ? ":" + std::string{old} : "");
    environment vars{
        {env::proxies, urls},
        {env::timeout_ms, std::to_string(static_cast<long>(o.timeout * 1000))},
        {env::exclude, excludes},
        {env::proxy_loopback, o.proxy_loopback ? "1" : "0"},
        // Tor answers reverse lookups (RESOLVE_PTR); other proxies cannot.
        {env::tor, o.tor ? "1" : "0"},
        {env::log_level, std::to_string(o.verbosity)},
        // Per-process isolation: the interposer makes "<base>-<pid>" users
        // for the SOCKS5 hops that have none (environment.hpp). Always set, so
        // that an outer run's value is not inherited.
        {env::isolate, o.isolate_process ? "process:leakproof-" + random_hex(8) : ""},
        // Chain mode and routes (runtime/path.hpp, runtime/route.hpp).
        {env::chain, o.chain_mode},
        {env::hop_timeout_ms,
         std::to_string(static_cast<long>((o.hop_timeout > 0 ? o.hop_timeout : 10) * 1000))},
        {env::routes, build_routes(o)},
        // Set to 1 by set_unsupervised(); always set, so that an outer
        // run's value is not inherited.
        {env::unsupervised, "0"},
    };
    if (!o.log_file.empty()) vars.emplace_back(env::log_file, o.log_file);
    // --supervise: the supervisor alone, for where LD_PRELOAD is unwelcome.
    if (!o.supervise) vars.emplace_back("LD_PRELOAD", preload);
    return vars;
}

void set_unsupervised() {
    setenv(env::unsupervised, "1", 1);
}

// The command keeps the declaration across its exec; the interposer makes
// it in every other process (interposer/ptracer.hpp). Under an outer
// supervisor (no supervisor of our own) the outer one's pid stays.
void set_supervisor(pid_t pid) {
    (void)prctl(PR_SET_PTRACER, static_cast<unsigned long>(pid), 0, 0, 0);
    setenv(env::supervisor_pid, std::to_string(pid).c_str(), 1);
}

std::string create_map() {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string path =
        std::string{dir} + "/leakproof-" + std::to_string(getuid()) + "-" + random_hex(8);
    if (int err = lp::placeholder::create_file(path.c_str()))
        die(1, "cannot create the placeholder map " + path + ": " + std::strerror(err));
    return path;
}

namespace {

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string{"'\\''"} : std::string{c};
    return out + "'";
}

}  // namespace

int print_env(const environment& env) {
    // The map outlives this command (nothing waits to remove it); it is a
    // 1 MiB file in /dev/shm, removed at reboot.
    say(stdout, std::string{"export "} + env::map + "=" + shell_quote(create_map()) + "\n");
    for (const auto& [k, v] : env) {
        // No supervisor watches a shell that evaluates these: the
        // interposer refuses to exec what it cannot reach.
        const std::string& value = k == env::unsupervised ? std::string{"1"} : v;
        say(stdout, "export " + k + "=" + shell_quote(value) + "\n");
    }
    return 0;
}

}  // namespace lp::wrapper
