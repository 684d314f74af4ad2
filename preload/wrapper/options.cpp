#include "wrapper/options.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "runtime/environment.hpp"
#include "runtime/net.hpp"
#include "wrapper/command.hpp"

namespace lp::wrapper {
namespace {

const char* const default_proxy = "socks5h://127.0.0.1:9050";

double parse_timeout(const std::string& s) {
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !(v > 0) || v > 86400)
        throw usage_error{"bad timeout '" + s + "': expected seconds (0 < S <= 86400)"};
    return v;
}

void add_exclude(options& o, const std::string& s) {
    net::cidr c;
    if (!net::parse_cidr(s, c))
        throw usage_error{"bad exclusion '" + s + "': expected CIDR[:PORT], e.g. 10.0.0.0/8:443"};
    o.excludes.push_back(s);
}

std::string trim(const std::string& s) {
    auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

bool truthy(const std::string& v) {
    return v == "1" || v == "yes" || v == "true" || v == "on";
}

// Settings from a config file; proxies only if none came from elsewhere.
void apply_file(options& o, const std::string& path, const std::string& text, bool take_proxies) {
    std::vector<std::string> proxies;
    int lineno = 0;
    for (std::size_t at = 0; at < text.size();) {
        std::size_t end = std::min(text.find('\n', at), text.size());
        auto line = trim(text.substr(at, end - at));
        at = end + 1;
        ++lineno;
        if (line.empty() || line[0] == '#') continue;
        auto eq = line.find('=');
        auto where = path + ":" + std::to_string(lineno) + ": ";
        if (eq == std::string::npos) throw usage_error{where + "expected 'key = value'"};
        auto key = trim(line.substr(0, eq));
        auto value = trim(line.substr(eq + 1));
        if (key == "proxy") {
            proxies.push_back(value);
        } else if (key == "user") {
            if (!o.have_user) o.user = value, o.have_user = true;
        } else if (key == "password") {
            if (!o.have_password) o.password = value, o.have_password = true;
        } else if (key == "timeout") {
            o.timeout = parse_timeout(value);
        } else if (key == "exclude") {
            add_exclude(o, value);
        } else if (key == "isolate") {
            if (!o.isolate) {  // -i/--isolate[=...] on the command line wins
                o.isolate = truthy(value) || value == "process";
                o.isolate_process = value == "process";
            }
        } else if (key == "pipeline") {
            o.pipeline = o.pipeline || truthy(value);
        } else if (key == "optimistic") {
            // The command line's --optimistic / --no-optimistic wins.
            if (o.optimistic == options::eagerness::by_url)
                o.optimistic = truthy(value) ? options::eagerness::on : options::eagerness::off;
        } else if (key == "proxy_loopback") {
            o.proxy_loopback = o.proxy_loopback || truthy(value);
        } else if (key == "require_supervisor") {
            o.require_supervisor = o.require_supervisor || truthy(value);
        } else if (key == "log_file") {
            if (o.log_file.empty()) o.log_file = value;
        } else {
            throw usage_error{where + "unknown key '" + key + "'"};
        }
    }
    if (take_proxies) o.proxies = proxies;
}

std::string config_path() {
    if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x)
        return std::string{x} + "/leakproof/config";
    if (const char* h = std::getenv("HOME"); h && *h)
        return std::string{h} + "/.config/leakproof/config";
    return {};
}

void apply_defaults(options& o, double cli_timeout, bool timeout_given) {
    bool need_proxy = o.proxies.empty();
    if (need_proxy && o.tor) {
        // --tor means the Tor daemon on this machine, whatever the
        // environment or the config file name as the usual proxy.
        o.proxies.push_back(default_proxy);
        need_proxy = false;
    }
    if (need_proxy) {
        if (const char* p = std::getenv(lp::env::user_proxy); p && *p) {
            const std::string_view urls{p}, space{" \t\n"};
            for (std::size_t b = 0; (b = urls.find_first_not_of(space, b)) != urls.npos;) {
                std::size_t e = std::min(urls.find_first_of(space, b), urls.size());
                o.proxies.emplace_back(urls.substr(b, e - b));
                b = e;
            }
            need_proxy = false;
        }
    }
    for (const auto& path : {config_path(), std::string{"/etc/leakproof.conf"}}) {
        if (path.empty()) continue;
        std::string text;
        if (!read_text(path, text)) continue;
        apply_file(o, path, text, need_proxy);
        break;  // the user's file replaces the system one
    }
    if (timeout_given) o.timeout = cli_timeout;
    if (o.proxies.empty()) o.proxies.push_back(default_proxy);
}

std::string value_of(int argc, char** argv, int& i, const std::string& opt) {
    if (i + 1 >= argc) throw usage_error{"option " + opt + " needs a value"};
    return argv[++i];
}

}  // namespace

options parse(int argc, char** argv) {
    options o;
    double cli_timeout = 0;
    bool timeout_given = false;
    int i = 1;
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--") {
            ++i;
            break;
        }
        if (a.empty() || a[0] != '-' || a == "-") break;  // the command starts here
        if (a == "-p" || a == "--proxy")
            o.proxies.push_back(value_of(argc, argv, i, a));
        else if (a == "-u" || a == "--user")
            o.user = value_of(argc, argv, i, a), o.have_user = true;
        else if (a == "--pass" || a == "--password")
            o.password = value_of(argc, argv, i, a), o.have_password = true;
        else if (a == "-i" || a == "--isolate" || a == "--isolate=invocation")
            o.isolate = true;
        else if (a == "--isolate=process")
            o.isolate = o.isolate_process = true;
        else if (a == "-q" || a == "--quiet")
            o.verbosity = 0;
        else if (a == "-v" || a == "--verbose")
            o.verbosity = o.verbosity < 1 ? 2 : o.verbosity + 1;
        else if (a.size() > 2 && a.find_first_not_of('v', 1) == std::string::npos)
            o.verbosity += static_cast<int>(a.size() - 1);  // -vv
        else if (a == "--timeout")
            cli_timeout = parse_timeout(value_of(argc, argv, i, a)), timeout_given = true;
        else if (a == "--exclude")
            add_exclude(o, value_of(argc, argv, i, a));
        else if (a == "--tor")
            o.tor = true;
        else if (a == "--pipeline")
            o.pipeline = true;
        else if (a == "--optimistic")
            o.optimistic = options::eagerness::on;
        else if (a == "--no-optimistic")
            o.optimistic = options::eagerness::off;
        else if (a == "--proxy-loopback")
            o.proxy_loopback = true;
        else if (a == "--supervise")
            o.supervise = true;
        else if (a == "--require-supervisor")
            o.require_supervisor = true;
        else if (a == "--log-file")
            o.log_file = value_of(argc, argv, i, a);
        else if (a == "-h" || a == "--help")
            o.what = options::mode::help;
        else if (a == "--version")
            o.what = options::mode::version;
        else if (a == "--shell")
            o.what = options::mode::shell;
        else if (a == "--env")
            o.what = options::mode::env;
        else if (a == "--check")
            o.what = options::mode::check;
        else
            throw usage_error{"unknown option '" + a + "' (see leakproof --help)"};
    }
    for (; i < argc; ++i) o.command.emplace_back(argv[i]);
    if (o.what == options::mode::help || o.what == options::mode::version) return o;
    if (o.what == options::mode::run && o.command.empty())
        throw usage_error{"no command given (see leakproof --help)"};
    apply_defaults(o, cli_timeout, timeout_given);
    return o;
}

const char* usage_text() noexcept {
    return "usage: leakproof [-p URL]... [--tor] [--pipeline] [--[no-]optimistic] [-u USER]\n"
           "                 [--pass PASS] [-i] [-q] [-v...] [--timeout S]\n"
           "                 [--exclude CIDR[:PORT]]... [--proxy-loopback]\n"
           "                 [--log-file FILE] [--supervise] [--require-supervisor]\n"
           "                 [--] COMMAND [ARGS...]\n"
           "       leakproof [options] --shell | --env | --help | --version\n"
           "       leakproof [-p URL]... --check\n"
           "\n"
           "Runs COMMAND with every TCP connection sent through a SOCKS proxy and every\n"
           "name resolved by the proxy, never by local DNS.\n"
           "\n"
           "  -p, --proxy URL        socks4://, socks4a://, socks5://, socks5h:// proxy;\n"
           "                         repeat to chain (default: $LEAKPROOF_PROXY, the config\n"
           "                         file, then socks5h://127.0.0.1:9050)\n"
           "      --tor              the first proxy is Tor: socks5h://127.0.0.1:9050 unless\n"
           "                         -p is given, one-round-trip (pipelined) handshake,\n"
           "                         optimistic data allowed.\n"
           "                         Reverse lookups of real addresses ask Tor (RESOLVE_PTR)\n"
           "      --pipeline         every SOCKS5 hop: greeting, credentials and request in\n"
           "                         one write (one round trip; some servers, e.g.\n"
           "                         microsocks, drop bytes sent before they asked)\n"
           "      --optimistic       every hop reads early data (?optimistic=1, pipelined):\n"
           "                         the first bytes may follow the request before the\n"
           "                         reply (Tor, dante do; microsocks does not; see man page)\n"
           "      --no-optimistic    never, not even with --tor or ?optimistic=1\n"
           "  -u, --user USER        SOCKS user for the first proxy\n"
           "      --pass PASS        SOCKS password for the first proxy\n"
           "  -i, --isolate          fresh random SOCKS5 credentials for this run (Tor\n"
           "                         stream isolation)\n"
           "      --isolate=process  distinct ones for each process of the run\n"
           "  -q, --quiet            log nothing; -v logs every connection\n"
           "      --timeout S        connect + handshake timeout in seconds (default 120)\n"
           "      --exclude CIDR[:PORT]  connect to these networks directly\n"
           "      --proxy-loopback   send loopback destinations through the proxy too\n"
           "      --log-file FILE    log there instead of stderr ($LEAKPROOF_LOG_FILE)\n"
           "      --supervise        no LD_PRELOAD: the seccomp supervisor alone checks\n"
           "                         every connect (it always watches the whole tree)\n"
           "      --require-supervisor  refuse to run where the kernel offers no seccomp\n"
           "                         user notification (default: a dynamic command runs\n"
           "                         with the interposer alone, static ones are refused)\n"
           "      --shell            run $SHELL under leakproof\n"
           "      --env              print export lines for eval\n"
           "      --check            say what this machine allows and whether each proxy\n"
           "                         answers; exit 0 when everything would be covered\n"
           "\n"
           "See leakproof(1).\n";
}

}  // namespace lp::wrapper
