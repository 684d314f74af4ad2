// The runtime's and the supervisor's unit tests run in a process set up as
// the wrapper sets up a program's: a private placeholder map (a temporary
// file, as the wrapper makes one) and LEAKPROOF_* settings that the
// policy's table (test_policy.cpp) is written against. Each ctest case runs
// in a process of its own, so each gets a fresh map.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "runtime/environment.hpp"
#include "runtime/placeholder.hpp"
#include "unit_env.hpp"

namespace lp::unit {

std::string map_path;

}  // namespace lp::unit

int main(int argc, char** argv) {
    char dir[] = "/tmp/leakproof-unit-XXXXXX";
    if (mkdtemp(dir) == nullptr) {
        std::perror("mkdtemp");
        return 1;
    }
    lp::unit::map_path = std::string{dir} + "/map";
    if (int err = lp::placeholder::create_file(lp::unit::map_path.c_str())) {
        std::fprintf(stderr, "cannot create %s: errno %d\n", lp::unit::map_path.c_str(), err);
        return 1;
    }
    setenv(lp::env::map, lp::unit::map_path.c_str(), 1);
    setenv(lp::env::proxies, lp::unit::first_proxy_url, 1);
    setenv(lp::env::exclude, lp::unit::excludes, 1);
    setenv(lp::env::log_level, "0", 1);  // refusals logged by tests stay quiet
    doctest::Context ctx{argc, argv};
    int rc = ctx.run();
    unlink(lp::unit::map_path.c_str());
    rmdir(dir);
    return rc;
}
