// The placeholder map (runtime/placeholder.hpp) in the memory file main.cpp
// made: the file itself and its credentials, assign, find, reverse, the
// whole map, the LRU rule (with a test clock), sharing with a forked child.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "runtime/config.hpp"
#include "runtime/placeholder.hpp"
#include "unit_env.hpp"

namespace ph = lp::placeholder;

namespace {

std::uint32_t index_of(const std::string& name) {
    std::uint32_t i = ~0u;
    CAPTURE(name);
    REQUIRE(ph::assign(name, i));
    return i;
}

lp::net::ip v4_ip(std::uint32_t index) {
    std::uint8_t b[4];
    ph::v4_of(index, b);
    lp::net::ip a;
    a.b[10] = a.b[11] = 0xff;
    for (int k = 0; k < 4; ++k) a.b[12 + k] = b[k];
    return a;
}

lp::net::ip v6_ip(std::uint32_t index) {
    lp::net::ip a;
    std::uint8_t b[16];
    ph::v6_of(index, b);
    for (int k = 0; k < 16; ++k) a.b[k] = b[k];
    return a;
}

std::string name_at(const lp::net::ip& a) {
    char out[256];
    std::size_t len = 0;
    if (!ph::name_of(a, out, len)) return "(none)";
    return {out, len};
}

// The test clock: set by hand, in nanoseconds.
std::uint64_t fake_now = 1'000'000'000'000;
std::uint64_t test_clock() noexcept {
    return fake_now;
}
constexpr std::uint64_t second = 1'000'000'000;

}  // namespace

TEST_CASE("placeholder: the map is the memory file config names") {
    CHECK(std::string{lp::config::get().map_path} == lp::unit::map_path);
    // No name in any file system, sealed at its size.
    char link[128] = "";
    REQUIRE(readlink(lp::unit::map_path.c_str(), link, sizeof link - 1) > 0);
    CHECK(std::string{link}.starts_with("/memfd:leakproof-map"));
    int seals = fcntl(lp::unit::map_fd, F_GET_SEALS);
    CHECK((seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) ==
          (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
    CHECK(ftruncate(lp::unit::map_fd, 4096) != 0);
    CHECK((fcntl(lp::unit::map_fd, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(lp::unit::map_fd > STDERR_FILENO);
}

TEST_CASE("placeholder: the credentials stored in the map") {
    ph::credentials c[ph::max_credentials];
    REQUIRE(ph::read_credentials(lp::unit::map_path.c_str(), c));
    CHECK(c[0].present);
    CHECK(c[0].user.view() == lp::unit::stored_user);
    CHECK(c[0].password.view() == lp::unit::stored_password);
    CHECK_FALSE(c[1].present);
    CHECK_FALSE(ph::read_credentials("", c));
    CHECK_FALSE(ph::read_credentials("/proc/self/fd/999999", c));  // its holder is gone
    CHECK_FALSE(ph::read_credentials("/dev/null", c));             // not a map
    ph::credentials too_many[ph::max_credentials + 1];
    int fd = -1;
    CHECK(ph::create(too_many, ph::max_credentials + 1, fd) == EINVAL);
}

TEST_CASE("placeholder: assign, find, reverse") {
    auto i = index_of("web.example");
    CHECK(index_of("web.example") == i);
    CHECK(index_of("WEB.Example") == i);  // DNS names compare case-insensitively
    auto j = index_of("mail.example");
    CHECK(j != i);
    CHECK(name_at(v4_ip(i)) == "web.example");
    CHECK(name_at(v6_ip(i)) == "web.example");
    CHECK(name_at(v4_ip(j)) == "mail.example");
    CHECK(ph::in_range(v4_ip(i)));
    CHECK(ph::in_range(v6_ip(j)));
    CHECK(name_at(v4_ip(4000)) == "(none)");  // in range, never assigned
    std::uint8_t b[4];
    ph::v4_of(0, b);
    CHECK((b[0] == 240 && b[1] == 0 && b[2] == 0 && b[3] == 1));
    ph::v4_of(ph::capacity - 1, b);
    CHECK((b[0] == 240 && b[1] == 0 && b[2] == 16 && b[3] == 0));
}

TEST_CASE("placeholder: the ranges") {
    lp::net::ip a;
    REQUIRE(lp::net::parse_ip("240.0.0.0", a));
    CHECK(ph::in_range(a));
    REQUIRE(lp::net::parse_ip("255.255.255.255", a));
    CHECK(ph::in_range(a));
    CHECK(name_at(a) == "(none)");  // past the map's end
    REQUIRE(lp::net::parse_ip("239.255.255.255", a));
    CHECK_FALSE(ph::in_range(a));
    REQUIRE(lp::net::parse_ip("100::ffff:ffff", a));
    CHECK(ph::in_range(a));
    REQUIRE(lp::net::parse_ip("100:0:0:1::1", a));
    CHECK_FALSE(ph::in_range(a));
    REQUIRE(lp::net::parse_ip("::ffff:10.0.0.1", a));
    CHECK_FALSE(ph::in_range(a));
}

TEST_CASE("placeholder: names it refuses") {
    std::uint32_t i;
    CHECK_FALSE(ph::assign("", i));
    CHECK_FALSE(ph::assign(std::string(256, 'a'), i));
    auto longest = std::string(255, 'a');
    REQUIRE(ph::assign(longest, i));
    CHECK(name_at(v4_ip(i)) == longest);
}

TEST_CASE("placeholder: the whole map, and the least recently used rule") {
    // The test clock runs 62 s behind the real one, so that once the real
    // clock is back every entry made here may be reused by later cases of
    // this process (entries they made are newer: never the least recent).
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    auto real =
        static_cast<std::uint64_t>(ts.tv_sec) * second + static_cast<std::uint64_t>(ts.tv_nsec);
    fake_now = real > 62 * second ? real - 62 * second : 0;
    ph::use_clock(test_clock);
    std::uint32_t i;
    for (std::uint32_t k = 0; k < ph::capacity; ++k)
        ph::assign("n" + std::to_string(k) + ".test", i);
    // Full, and every entry used in the last 30 seconds: no name may lose
    // its placeholder, so the new one gets none (getaddrinfo: EAI_AGAIN).
    fake_now += 29 * second;
    CHECK_FALSE(ph::assign("late.test", i));
    auto kept = index_of("n0.test");  // known names still resolve, and n0 is now the newest
    // Past 30 seconds the least recently used entry goes to the new name.
    fake_now += 2 * second;
    auto reused = index_of("late.test");
    CHECK(reused != kept);
    CHECK(name_at(v4_ip(kept)) == "n0.test");
    CHECK(name_at(v4_ip(reused)) == "late.test");
    // Exactly one name gave its entry up; none is empty.
    int late = 0, empty = 0;
    for (std::uint32_t k = 0; k < ph::capacity; ++k) {
        auto name = name_at(v4_ip(k));
        late += name == "late.test";
        empty += name == "(none)";
    }
    CHECK(late == 1);
    CHECK(empty == 0);
    ph::use_clock(nullptr);
}

TEST_CASE("placeholder: shared with a forked child, through the file") {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::uint32_t i;
        _exit(ph::assign("from-child.test", i) ? static_cast<int>(i % 256) : 255);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    auto i = index_of("from-child.test");
    CHECK(WEXITSTATUS(status) == static_cast<int>(i % 256));
}
