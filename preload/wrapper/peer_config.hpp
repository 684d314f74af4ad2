// The configuration files of the programs people come from, read as
// leakproof settings: proxychains4 / proxychains-ng (proxychains.conf),
// torsocks (torsocks.conf) and tsocks (tsocks.conf). The format is told by
// the content. Sans-IO: text in, settings in leakproof's own terms out
// (the keys of its config file, options.cpp), so that one code path applies
// them and --print-config shows them. Every directive either becomes a
// setting or gets one warning naming its line; nothing in a peer's file can
// turn on a local DNS lookup or a direct fallback (they only ever add
// proxies, routes, exclusions and limits the user wrote down).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lp::wrapper::peer {

enum class format { leakproof, proxychains, torsocks, tsocks };

std::string_view name_of(format f) noexcept;

// The format of a config file's text: one of the peers' when a line uses
// a directive only that peer has, leakproof's own otherwise.
format detect(std::string_view text);

struct setting {
    int line = 0;  // where the directive was (the last one it came from)
    std::string key;
    std::string value;
};

struct warning {
    int line = 0;  // 0: about the file as a whole
    std::string text;
};

struct translation {
    format from = format::leakproof;
    std::vector<setting> settings;  // in the order they apply
    std::vector<warning> warnings;
};

// A directive leakproof must not run with (an http proxy, dnat...): the
// file is refused with this sentence.
struct refusal {
    int line = 0;
    std::string what;
};

// Throws refusal. `f` is one of the peers' formats.
translation translate(std::string_view text, format f);

}  // namespace lp::wrapper::peer
