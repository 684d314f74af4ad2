// Command line and configuration files.
#pragma once

#include <string>
#include <vector>

namespace lp::wrapper {

struct options {
    std::vector<std::string> proxies;  // URLs, a chain, first hop first
    std::string user;
    std::string password;
    bool have_user = false;
    bool have_password = false;
    bool isolate = false;
    // --isolate=process: credentials per process (the interposer derives
    // them, LEAKPROOF_ISOLATE), not one set for the whole run.
    bool isolate_process = false;
    int verbosity = 1;  // 0 -q, 1 default, 2+ -v
    double timeout = 120;
    std::vector<std::string> excludes;
    bool proxy_loopback = false;
    bool udp = false;      // --udp: datagrams through the first proxy's UDP relay
    bool inbound = false;  // --inbound: listening sockets get a SOCKS BIND
    // --tor: the first proxy is Tor (default socks5h://127.0.0.1:9050, not
    // $LEAKPROOF_PROXY or the config file's proxies), pipelined handshake.
    bool tor = false;
    // --pipeline (config: pipeline = on): every SOCKS5 hop sends greeting,
    // credentials and request in one write, whatever its URL says.
    bool pipeline = false;
    // --optimistic (config: optimistic = on): every hop is marked as reading
    // the program's first bytes right behind the request (?optimistic=1; the
    // interposer pipelines such hops, early data is the library's for now).
    // On by default with --tor; --no-optimistic (config: optimistic = off)
    // turns it off, also where a URL asks for it.
    enum class eagerness { by_url, on, off } optimistic = eagerness::by_url;
    std::string log_file;
    // --supervise: no interposer (LD_PRELOAD); the seccomp supervisor
    // (supervisor/supervisor.hpp), which always watches the whole tree, does it all.
    bool supervise = false;
    // --require-supervisor (config: require_supervisor): where the kernel
    // offers no seccomp user notification, refuse every command instead of
    // running a dynamic one with the interposer alone.
    bool require_supervisor = false;
    // --chain: strict (default), dynamic, random[:N], round-robin[:N]
    // (runtime/path.hpp); --hop-timeout: outside strict mode, when a hop
    // counts as down (0: the default, 10 s).
    std::string chain_mode = "strict";
    double hop_timeout = 0;
    // --route PATTERN=TARGET, then the config file's `route PATTERN TARGET`
    // lines, as PATTERN=TARGET: first match wins (runtime/route.hpp).
    std::vector<std::string> routes;
    // --config FILE instead of the usual places; what it was read as.
    std::string config_file;
    std::string config_format = "leakproof";
    // Lines for stderr: "FILE:LINE: warning: ..." about a peer's config file.
    std::vector<std::string> warnings;
    // What the command line set itself, which a config file then leaves alone.
    struct {
        bool chain = false, hop_timeout = false, verbosity = false;
    } given;
    enum class mode { run, shell, env, check, help, version, print_config } what = mode::run;
    std::vector<std::string> command;
};

// Thrown for usage errors: the wrapper prints "leakproof: <what>" and exits 2.
struct usage_error {
    std::string what;
};

// argv → options, then the defaults: LEAKPROOF_PROXY, the config file
// ($XDG_CONFIG_HOME/leakproof/config or ~/.config/leakproof/config, else
// /etc/leakproof.conf), then socks5h://127.0.0.1:9050. With --tor and no -p,
// socks5h://127.0.0.1:9050 directly.
options parse(int argc, char** argv);

const char* usage_text() noexcept;

// Applies one config file's text (leakproof's own format, or a peer's:
// peer_config.hpp) as if read from `path`; the proxies only when
// `take_proxies`. Throws usage_error. The unit tests call it directly.
void apply_file(options& o, const std::string& path, const std::string& text, bool take_proxies);

// Checks a --route / `route` argument; throws usage_error naming the fault.
void check_route(const std::string& spec);

// --print-config: the settings in leakproof's own config file format.
std::string format_config(const options& o);

}  // namespace lp::wrapper
