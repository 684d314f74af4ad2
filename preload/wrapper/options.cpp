#include "wrapper/options.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "runtime/environment.hpp"
#include "runtime/net.hpp"
#include "runtime/path.hpp"
#include "runtime/route.hpp"
#include "wrapper/command.hpp"
#include "wrapper/peer_config.hpp"

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

bool starts_with_word(const std::string& line, const char* word) {
    std::size_t n = std::char_traits<char>::length(word);
    return line.compare(0, n, word) == 0 && line.size() > n && (line[n] == ' ' || line[n] == '\t');
}

void set_chain_mode(options& o, const std::string& mode) {
    lp::path::settings s;
    if (!lp::path::parse_mode(mode, s))
        throw usage_error{"bad chain mode '" + mode +
                          "': expected strict, dynamic, random[:N] or round-robin[:N] (N 1-8)"};
    o.chain_mode = mode;
}

double parse_hop_timeout(const std::string& s) {
    try {
        return parse_timeout(s);
    } catch (const usage_error&) {
        throw usage_error{"bad hop timeout '" + s + "': expected seconds (0 < S <= 86400)"};
    }
}

// One `key = value` (or `route PATTERN TARGET`) of leakproof's own format,
// whichever file format it was written in. Command-line settings win.
void apply_setting(options& o, const std::string& where, const std::string& key,
                   const std::string& value, std::vector<std::string>& proxies) {
    try {
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
        } else if (key == "udp") {
            o.udp = o.udp || truthy(value);
        } else if (key == "inbound") {
            o.inbound = o.inbound || truthy(value);
        } else if (key == "proxy_loopback") {
            o.proxy_loopback = o.proxy_loopback || truthy(value);
        } else if (key == "require_supervisor") {
            o.require_supervisor = o.require_supervisor || truthy(value);
        } else if (key == "log_file") {
            if (o.log_file.empty()) o.log_file = value;
        } else if (key == "chain") {
            if (!o.given.chain) set_chain_mode(o, value);
        } else if (key == "hop_timeout") {
            if (!o.given.hop_timeout) o.hop_timeout = parse_hop_timeout(value);
        } else if (key == "tor") {
            o.tor = o.tor || truthy(value);
        } else if (key == "quiet") {
            if (!o.given.verbosity && truthy(value)) o.verbosity = 0;
        } else if (key == "route") {
            auto sp = value.find_first_of(" \t");
            if (sp == std::string::npos) throw usage_error{"expected 'route PATTERN TARGET'"};
            auto spec = trim(value.substr(0, sp)) + "=" + trim(value.substr(sp + 1));
            check_route(spec);
            o.routes.push_back(spec);
        } else {
            throw usage_error{"unknown key '" + key + "'"};
        }
    } catch (const usage_error& e) {
        throw usage_error{where + e.what};
    }
}

void apply_own_format(options& o, const std::string& path, const std::string& text,
                      std::vector<std::string>& proxies) {
    int lineno = 0;
    for (std::size_t at = 0; at < text.size();) {
        std::size_t end = std::min(text.find('\n', at), text.size());
        auto line = trim(text.substr(at, end - at));
        at = end + 1;
        ++lineno;
        if (line.empty() || line[0] == '#') continue;
        auto where = path + ":" + std::to_string(lineno) + ": ";
        if (starts_with_word(line, "route")) {
            auto rest = trim(line.substr(5));  // `route P T` or `route = P T`
            if (rest.starts_with('=')) rest = trim(rest.substr(1));
            apply_setting(o, where, "route", rest, proxies);
            continue;
        }
        auto eq = line.find('=');
        if (eq == std::string::npos) throw usage_error{where + "expected 'key = value'"};
        apply_setting(o, where, trim(line.substr(0, eq)), trim(line.substr(eq + 1)), proxies);
    }
}

void apply_peer_format(options& o, const std::string& path, const std::string& text, peer::format f,
                       std::vector<std::string>& proxies) {
    peer::translation t;
    try {
        t = peer::translate(text, f);
    } catch (const peer::refusal& r) {
        throw usage_error{path + (r.line ? ":" + std::to_string(r.line) : "") + ": " + r.what};
    }
    o.config_format = std::string{peer::name_of(f)};
    for (const auto& w : t.warnings)
        o.warnings.push_back(path + (w.line ? ":" + std::to_string(w.line) : "") +
                             ": warning: " + w.text);
    for (const auto& s : t.settings)
        apply_setting(o, path + ":" + std::to_string(s.line) + ": ", s.key, s.value, proxies);
}

}  // namespace

// Settings from a config file; proxies only if none came from elsewhere.
void apply_file(options& o, const std::string& path, const std::string& text, bool take_proxies) {
    std::vector<std::string> proxies;
    auto f = peer::detect(text);
    if (f == peer::format::leakproof)
        apply_own_format(o, path, text, proxies);
    else
        apply_peer_format(o, path, text, f, proxies);
    if (take_proxies && !proxies.empty()) o.proxies = proxies;
}

namespace {

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
    if (!o.config_file.empty()) {
        std::string text;
        if (!read_text(o.config_file, text))
            throw usage_error{"cannot read the config file " + o.config_file};
        apply_file(o, o.config_file, text, need_proxy);
    } else {
        for (const auto& path : {config_path(), std::string{"/etc/leakproof.conf"}}) {
            if (path.empty()) continue;
            std::string text;
            if (!read_text(path, text)) continue;
            apply_file(o, path, text, need_proxy);
            break;  // the user's file replaces the system one
        }
    }
    if (timeout_given) o.timeout = cli_timeout;
    if (o.proxies.empty()) o.proxies.push_back(default_proxy);
}

std::string value_of(int argc, char** argv, int& i, const std::string& opt) {
    if (i + 1 >= argc) throw usage_error{"option " + opt + " needs a value"};
    return argv[++i];
}

// /proc/PID/cmdline is world-readable, and the supervisor keeps the
// wrapper's memory, argv included, for as long as the tree runs: once
// copied, a password on the command line is overwritten where it stood.
void blank(char* s) {
    for (; *s != '\0'; ++s) *s = '*';
}

// The password of "scheme://user:password@host".
void blank_url_password(char* url) {
    char* user = std::strstr(url, "://");
    if (user == nullptr) return;
    user += 3;
    char* at = std::strrchr(user, '@');
    if (at == nullptr) return;
    char* colon = static_cast<char*>(std::memchr(user, ':', static_cast<std::size_t>(at - user)));
    if (colon == nullptr) return;
    for (char* c = colon + 1; c < at; ++c) *c = '*';
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
            o.proxies.push_back(value_of(argc, argv, i, a)), blank_url_password(argv[i]);
        else if (a == "-u" || a == "--user")
            o.user = value_of(argc, argv, i, a), o.have_user = true;
        else if (a == "--pass" || a == "--password")
            o.password = value_of(argc, argv, i, a), o.have_password = true, blank(argv[i]);
        else if (a == "-i" || a == "--isolate" || a == "--isolate=invocation")
            o.isolate = true;
        else if (a == "--isolate=process")
            o.isolate = o.isolate_process = true;
        else if (a == "-q" || a == "--quiet")
            o.verbosity = 0, o.given.verbosity = true;
        else if (a == "-v" || a == "--verbose")
            o.verbosity = o.verbosity < 1 ? 2 : o.verbosity + 1, o.given.verbosity = true;
        else if (a.size() > 2 && a.find_first_not_of('v', 1) == std::string::npos)
            o.verbosity += static_cast<int>(a.size() - 1), o.given.verbosity = true;  // -vv
        else if (a == "--config")
            o.config_file = value_of(argc, argv, i, a);
        else if (a == "--print-config")
            o.what = options::mode::print_config;
        else if (a == "--chain")
            set_chain_mode(o, value_of(argc, argv, i, a)), o.given.chain = true;
        else if (a == "--hop-timeout")
            o.hop_timeout = parse_hop_timeout(value_of(argc, argv, i, a)),
            o.given.hop_timeout = true;
        else if (a == "--route") {
            auto spec = value_of(argc, argv, i, a);
            check_route(spec);
            o.routes.push_back(spec);
        } else if (a == "--timeout")
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
        else if (a == "--udp")
            o.udp = true;
        else if (a == "--inbound")
            o.inbound = true;
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
           "                 [--exclude CIDR[:PORT]]... [--proxy-loopback] [--udp]\n"
           "                 [--inbound]\n"
           "                 [--log-file FILE] [--supervise] [--require-supervisor]\n"
           "                 [--chain MODE] [--hop-timeout S] [--route PATTERN=TARGET]...\n"
           "                 [--config FILE] [--] COMMAND [ARGS...]\n"
           "       leakproof [options] --shell | --env | --print-config | --help | --version\n"
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
           "      --udp              send UDP through the first proxy's relay (SOCKS5 UDP\n"
           "                         ASSOCIATE; one proxy, not Tor) instead of refusing it\n"
           "      --inbound          a socket the program listens on gets a SOCKS BIND at\n"
           "                         the first proxy (active FTP): its address is the\n"
           "                         proxy's, accept() returns the connection the proxy got\n"
           "      --log-file FILE    log there instead of stderr ($LEAKPROOF_LOG_FILE)\n"
           "      --supervise        no LD_PRELOAD: the seccomp supervisor alone checks\n"
           "                         every connect (it always watches the whole tree)\n"
           "      --require-supervisor  refuse to run where the kernel offers no seccomp\n"
           "                         user notification (default: a dynamic command runs\n"
           "                         with the interposer alone, static ones are refused)\n"
           "      --chain MODE       strict (default), dynamic (skip hops that are down),\n"
           "                         random[:N], round-robin[:N] (N hops per connection)\n"
           "      --hop-timeout S    outside strict mode, a hop silent that long is down\n"
           "                         (default 10)\n"
           "      --route PATTERN=TARGET  first match wins; PATTERN: name, *.suffix,\n"
           "                         CIDR[:PORT] or *; TARGET: URL[,URL...], tor:URL...,\n"
           "                         direct or refuse (repeatable)\n"
           "      --config FILE      read FILE (leakproof's, proxychains', torsocks' or\n"
           "                         tsocks' format) instead of the usual config file\n"
           "      --print-config     print the settings in leakproof's config format\n"
           "      --shell            run $SHELL under leakproof\n"
           "      --env              print export lines for eval\n"
           "      --check            say what this machine allows and whether each proxy\n"
           "                         answers; exit 0 when everything would be covered\n"
           "\n"
           "See leakproof(1).\n";
}

namespace {

bool is_onion_pattern(const lp::route::rule& r) {
    return (r.kind == lp::route::pattern_kind::name || r.kind == lp::route::pattern_kind::suffix) &&
           (lp::route::is_onion(r.name.view()) || r.name.view() == ".onion");
}

void check_target_urls(const std::string& spec, std::string_view urls) {
    for (std::size_t b = 0; b <= urls.size();) {
        std::size_t e = std::min(urls.find(',', b), urls.size());
        leakproof::proxy p;
        if (auto ec = leakproof::parse_proxy_url(urls.substr(b, e - b), p))
            throw usage_error{"bad route '" + spec + "': " + ec.message()};
        b = e + 1;
    }
}

}  // namespace

void check_route(const std::string& spec) {
    auto eq = spec.find('=');
    if (eq == std::string::npos)
        throw usage_error{"bad route '" + spec + "': expected PATTERN=TARGET"};
    auto pattern = spec.substr(0, eq);
    std::string_view target{spec};
    target.remove_prefix(eq + 1);
    lp::route::rule r;
    if (!lp::route::parse_pattern(pattern, r))
        throw usage_error{"bad route pattern '" + pattern +
                          "': expected a name, *.suffix, .suffix, CIDR[:PORT] or *"};
    bool names =
        r.kind == lp::route::pattern_kind::name || r.kind == lp::route::pattern_kind::suffix;
    if (target == "refuse") return;
    if (target == "direct") {
        if (names)
            throw usage_error{"route '" + spec +
                              "': a name cannot go direct without a local DNS lookup, which "
                              "leakproof never does; route its addresses (CIDR=direct) instead"};
        return;
    }
    bool tor = target.starts_with("tor:");
    if (tor) target.remove_prefix(4);
    if (target.empty()) throw usage_error{"bad route '" + spec + "': no target"};
    check_target_urls(spec, target);
    if (is_onion_pattern(r) && !tor)
        throw usage_error{"route '" + spec +
                          "': .onion names need Tor; if this proxy is Tor (or reaches it), "
                          "say so: " +
                          pattern + "=tor:" + std::string{target}};
}

std::string format_config(const options& o) {
    std::string out = "# leakproof configuration";
    if (!o.config_file.empty())
        out += ", from " + o.config_file + " (" + o.config_format + " format)";
    out += "\n";
    auto put = [&](const std::string& k, const std::string& v) { out += k + " = " + v + "\n"; };
    for (const auto& p : o.proxies) put("proxy", p);
    if (o.have_user) put("user", o.user);
    if (o.have_password) put("password", o.password);
    if (o.tor) put("tor", "on");
    put("chain", o.chain_mode);
    if (o.hop_timeout > 0) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", o.hop_timeout);
        put("hop_timeout", buf);
    }
    char t[32];
    std::snprintf(t, sizeof t, "%g", o.timeout);
    put("timeout", t);
    for (const auto& e : o.excludes) put("exclude", e);
    for (const auto& r : o.routes) {
        auto eq = r.find('=');
        out += "route " + r.substr(0, eq) + " " + r.substr(eq + 1) + "\n";
    }
    if (o.isolate) put("isolate", o.isolate_process ? "process" : "on");
    if (o.pipeline) put("pipeline", "on");
    if (o.optimistic != options::eagerness::by_url)
        put("optimistic", o.optimistic == options::eagerness::on ? "on" : "off");
    if (o.proxy_loopback) put("proxy_loopback", "on");
    if (o.udp) put("udp", "on");
    if (o.inbound) put("inbound", "on");
    if (o.require_supervisor) put("require_supervisor", "on");
    if (o.verbosity == 0) put("quiet", "on");
    if (!o.log_file.empty()) put("log_file", o.log_file);
    return out;
}

}  // namespace lp::wrapper
