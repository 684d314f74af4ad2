#include "wrapper/environment.hpp"

#include <unistd.h>

#include <cstring>

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
    environment env{
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
        // Chain mode and routes (runtime/path.hpp, runtime/route.hpp).
        {"LEAKPROOF_CHAIN", o.chain_mode},
        {"LEAKPROOF_HOP_TIMEOUT_MS",
         std::to_string(static_cast<long>((o.hop_timeout > 0 ? o.hop_timeout : 10) * 1000))},
        {"LEAKPROOF_ROUTES", build_routes(o)},
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
    say(stdout, "export LEAKPROOF_MAP=" + shell_quote(create_map()) + "\n");
    for (const auto& [k, v] : env) say(stdout, "export " + k + "=" + shell_quote(v) + "\n");
    return 0;
}

}  // namespace lp::wrapper
