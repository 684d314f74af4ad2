// The wrapper: validates the proxy chain, prepares the environment for
// libleakproof.so (LD_PRELOAD prepended, LEAKPROOF_*), creates the shared
// placeholder map, refuses programs nothing could watch (setuid, file
// capabilities), starts the seccomp supervisor, then execs COMMAND in its
// place.
#include <cstdlib>
#include <exception>
#include <string>

#include "wrapper/chain.hpp"
#include "wrapper/check.hpp"
#include "wrapper/command.hpp"
#include "wrapper/environment.hpp"
#include "wrapper/launch.hpp"
#include "wrapper/options.hpp"
#include "wrapper/report.hpp"

namespace {

using namespace lp::wrapper;

int main_checked(int argc, char** argv) {
    options o = parse(argc, argv);
    if (o.what == options::mode::help) {
        say(stdout, usage_text());
        return 0;
    }
    if (o.what == options::mode::version) {
        say(stdout, "leakproof " LEAKPROOF_VERSION "\n");
        return 0;
    }
    // Each directive of a peer's config file that leakproof does not take
    // over says so, once, on its own line.
    if (o.verbosity > 0 || o.what == options::mode::print_config)
        for (const auto& w : o.warnings) say(stderr, "leakproof: " + w + "\n");
    if (o.what == options::mode::print_config) {
        say(stdout, format_config(o));
        return 0;
    }
    if (o.what == options::mode::env) refuse_env_secrets(o);
    auto chain = build_chain(o);
    std::string lib = find_library();
    if (lib.empty()) die(1, "cannot find libleakproof.so next to the leakproof program");
    auto env = interposer_env(o, chain, lib);
    if (o.what == options::mode::env) return print_env(env);
    if (o.what == options::mode::check) {
        // The proxies are asked with the credentials the map holds, as the
        // tree would ask them.
        int map = create_map(chain);
        for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
        hold_map(map);
        return check_machine(o);
    }
    if (o.what == options::mode::shell) {
        const char* sh = std::getenv("SHELL");
        o.command = {sh && *sh ? sh : "/bin/sh"};
    }
    std::string path = resolve_command(o.command[0]);
    if (path.empty()) die(exit_not_found, o.command[0] + ": command not found");
    // Static programs (and scripts run by one) run supervised; setuid ones
    // and the like stay refused.
    auto check = check_command(path);
    if (check.what == command_check::verdict::refused)
        die(exit_cannot_run, "refusing to run " + path + ": it " + check.why);
    int map = create_map(chain);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    // The supervisor reads the same LEAKPROOF_* settings as the interposer;
    // launch() adds LEAKPROOF_MAP once it knows who holds the map.
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
