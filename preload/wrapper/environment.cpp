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

bool has_credentials(const leakproof::proxy& p) {
    return !p.user.empty() || !p.password.empty();
}

// The hop as the environment shows it: credentials stay in the map.
leakproof::proxy without_credentials(leakproof::proxy p) {
    p.user.clear();
    p.password.clear();
    return p;
}

}  // namespace

environment interposer_env(const options& o, const std::vector<leakproof::proxy>& chain,
                           const std::string& lib) {
    bool in_map = o.what != options::mode::env;
    std::string urls, secret_hops;
    for (std::size_t i = 0; i < chain.size(); ++i) {
        const auto& p = chain[i];
        bool hide = in_map && has_credentials(p);
        urls += (urls.empty() ? "" : " ") + proxy_url(hide ? without_credentials(p) : p);
        if (hide) secret_hops += (secret_hops.empty() ? "" : ",") + std::to_string(i);
    }
    std::string excludes;
    for (const auto& e : o.excludes) excludes += (excludes.empty() ? "" : ",") + e;
    const char* old = std::getenv("LD_PRELOAD");
    std::string preload = lib + (old && *old ? ":" + std::string{old} : "");
    environment vars{
        {env::proxies, urls},
        // Always set, so that an outer run's value is not inherited.
        {env::credentials, secret_hops},
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
        {env::dns, ""},
        {env::udp, o.udp ? "1" : "0"},
        {env::inbound, o.inbound ? "1" : "0"},
    };
    if (!o.log_file.empty()) vars.emplace_back(env::log_file, o.log_file);
    // --supervise: the supervisor alone, for where LD_PRELOAD is unwelcome.
    if (!o.supervise) vars.emplace_back("LD_PRELOAD", preload);
    return vars;
}

void set_unsupervised() {
    setenv(env::unsupervised, "1", 1);
}

// The tree opens the map by a path that lives as long as `holder` keeps
// descriptor `map_fd` open (placeholder.hpp).
void name_map(pid_t holder, int map_fd) {
    std::string path = "/proc/" + std::to_string(holder) + "/fd/" + std::to_string(map_fd);
    setenv(env::map, path.c_str(), 1);
}

// The command keeps the declaration across its exec; the interposer makes
// it in every other process (interposer/ptracer.hpp). Under an outer
// supervisor (no supervisor of our own) the outer one's pid stays.
void set_supervisor(pid_t pid, int map_fd, int dns_port) {
    (void)prctl(PR_SET_PTRACER, static_cast<unsigned long>(pid), 0, 0, 0);
    setenv(env::supervisor_pid, std::to_string(pid).c_str(), 1);
    setenv(env::dns, dns_port > 0 ? std::to_string(dns_port).c_str() : "", 1);
    name_map(pid, map_fd);
}

void hold_map(int map_fd) {
    name_map(getpid(), map_fd);
}

int create_map(const std::vector<leakproof::proxy>& chain) {
    if (chain.size() > lp::placeholder::max_credentials) die(1, "too many proxies in the chain");
    lp::placeholder::credentials creds[lp::placeholder::max_credentials];
    for (std::size_t i = 0; i < chain.size(); ++i)
        creds[i] = {has_credentials(chain[i]), chain[i].user, chain[i].password};
    int fd = -1;
    if (int err = lp::placeholder::create(creds, chain.size(), fd))
        die(1, std::string{"cannot create the placeholder map: "} + std::strerror(err));
    return fd;
}

void refuse_env_secrets(const options& o) {
    bool secret = o.have_user || o.have_password;
    for (const auto& url : o.proxies) {
        leakproof::proxy p;
        if (!leakproof::parse_proxy_url(url, p) && has_credentials(p)) secret = true;
    }
    if (secret)
        die(exit_usage,
            "--env would print the proxy's user and password in the environment of every "
            "later command; run the command through leakproof instead (its credentials then "
            "stay in memory the tree alone uses)");
}

namespace {

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string{"'\\''"} : std::string{c};
    return out + "'";
}

}  // namespace

int print_env(const environment& env) {
    // No map: nothing would hold it for the later commands, and a file
    // would outlive them with every name they looked up. Each process
    // gets its own, shared with its forks (placeholder.hpp).
    say(stdout, std::string{"export "} + env::map + "=''\n");
    for (const auto& [k, v] : env) {
        // No supervisor watches a shell that evaluates these: the
        // interposer refuses to exec what it cannot reach.
        const std::string& value = k == env::unsupervised ? std::string{"1"} : v;
        say(stdout, "export " + k + "=" + shell_quote(value) + "\n");
    }
    return 0;
}

}  // namespace lp::wrapper
