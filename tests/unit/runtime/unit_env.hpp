// The environment main.cpp gives the runtime's unit tests.
#pragma once

#include <string>

namespace lp::unit {

inline constexpr char first_proxy_url[] = "socks5h://127.0.0.1:1080";
// A LAN, a resolver that may be asked (ADDR:53), an IPv6 service.
inline constexpr char excludes[] = "10.0.0.0/8, 192.168.1.5:53,[fd00::/8]:443";

// The placeholder map of this test process: /proc/<pid>/fd/<map_fd>. It
// holds these credentials for hop 0.
extern std::string map_path;
extern int map_fd;
inline constexpr char stored_user[] = "stored-user";
inline constexpr char stored_password[] = "stored-secret";

}  // namespace lp::unit
