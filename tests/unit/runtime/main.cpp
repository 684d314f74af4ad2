// The runtime's and the supervisor's unit tests run in a process set up as
// the wrapper sets up a program's: a private placeholder map (a memory
// file, as the wrapper makes one, holding credentials for hop 0 that no
// setting names) and LEAKPROOF_* settings that the
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
int map_fd = -1;

}  // namespace lp::unit

int main(int argc, char** argv) {
    lp::placeholder::credentials creds[1];
    creds[0].present = true;
    creds[0].user.assign(lp::unit::stored_user);
    creds[0].password.assign(lp::unit::stored_password);
    int fd = -1;
    if (int err = lp::placeholder::create(creds, 1, fd)) {
        std::fprintf(stderr, "cannot create the placeholder map: errno %d\n", err);
        return 1;
    }
    lp::unit::map_fd = fd;
    lp::unit::map_path = "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(fd);
    setenv(lp::env::map, lp::unit::map_path.c_str(), 1);
    setenv(lp::env::proxies, lp::unit::first_proxy_url, 1);
    setenv(lp::env::exclude, lp::unit::excludes, 1);
    setenv(lp::env::log_level, "0", 1);  // refusals logged by tests stay quiet
    doctest::Context ctx{argc, argv};
    return ctx.run();
}
