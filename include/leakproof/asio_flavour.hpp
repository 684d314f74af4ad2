// leakproof — which Asio the Asio layer is built on.
//
// Standalone Asio (<asio/...>, namespace ::asio) by default; Boost.Asio
// (<boost/asio/...>, namespace ::boost::asio) when LEAKPROOF_ASIO_BOOST is
// defined, which the CMake target and the pkg-config file of a leakproof
// configured with -DLEAKPROOF_ASIO=boost do for their users. Everything in
// leakproof/asio.hpp is written against the two names below:
//
//   leakproof::net         the Asio namespace
//   leakproof::error_code  what handlers receive: std::error_code, or
//                          boost::system::error_code (Boost.Asio's handlers
//                          take nothing else: use_awaitable and use_future
//                          throw only that type)
//
// leakproof's own errors are a std::error_category (the sans-IO core knows
// nothing of Boost). Under Boost they travel in a boost::system category that
// wraps it, so that a Boost user's error code compares equal to the
// leakproof::error enum, has the same message, and maps to the same
// std::errc condition. In both flavours to_std_error_code() gives the core's
// std::error_code back (for to_errno, format_not_socks and the rest of the
// core's API): leakproof's errors in leakproof::error_category(), system
// errors in std::system_category().
//
// One program uses one flavour: the types of the two differ under the same
// names.
#pragma once

#include <system_error>

#include "leakproof/error.hpp"

#if defined(LEAKPROOF_ASIO_BOOST)

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/version.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/error_code.hpp>

#include <string>

// Per-operation cancellation (cancellation slots) and the deferred token came
// with Asio 1.19 (Boost 1.77); Debian 12's Boost 1.74 has Asio 1.18.
#define LEAKPROOF_NET_HAS_CANCELLATION (BOOST_ASIO_VERSION >= 101900)

namespace leakproof {

namespace net = ::boost::asio;
using error_code = ::boost::system::error_code;

namespace detail {

// leakproof's std::error_category seen from Boost.System: same names,
// messages and conditions.
class boost_category final : public ::boost::system::error_category {
public:
    const char* name() const noexcept override { return ::leakproof::error_category().name(); }
    std::string message(int ev) const override { return ::leakproof::error_category().message(ev); }
    ::boost::system::error_condition default_error_condition(int ev) const noexcept override {
        const std::error_condition c = ::leakproof::error_category().default_error_condition(ev);
        if (c.category() == std::generic_category())
            return {c.value(), ::boost::system::generic_category()};
        return {ev, *this};
    }
};

}  // namespace detail

// The boost::system category of leakproof's errors (one instance per program:
// an inline function's static).
inline const ::boost::system::error_category& boost_error_category() noexcept {
    static const detail::boost_category category;
    return category;
}

// A std::error_code of the core (leakproof's, system or generic) as Boost's.
inline error_code to_error_code(std::error_code ec) noexcept {
    if (!ec) return {};
    if (ec.category() == error_category()) return {ec.value(), boost_error_category()};
    if (ec.category() == std::generic_category())
        return {ec.value(), ::boost::system::generic_category()};
    return {ec.value(), ::boost::system::system_category()};
}
inline error_code to_error_code(error e) noexcept {
    return to_error_code(make_error_code(e));
}

// A handler's error code as the core's std::error_code: leakproof's errors in
// leakproof::error_category(), Asio's system errors in std::system_category().
inline std::error_code to_std_error_code(const error_code& ec) noexcept {
    if (!ec) return {};
    if (ec.category() == boost_error_category()) return {ec.value(), error_category()};
    if (ec.category() == ::boost::system::generic_category())
        return {ec.value(), std::generic_category()};
    if (ec.category() == ::boost::system::system_category())
        return {ec.value(), std::system_category()};
    return ec;  // Boost.System's own adapter category
}

// `ec == leakproof::error::timeout` for Boost's error codes (found by
// argument-dependent lookup; C++20 derives the reversed and != forms).
inline bool operator==(const error_code& ec, error e) noexcept {
    return ec == to_error_code(e);
}

}  // namespace leakproof

#else

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/buffer.hpp>
#include <asio/compose.hpp>
#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/version.hpp>
#include <asio/write.hpp>

#define LEAKPROOF_NET_HAS_CANCELLATION (ASIO_VERSION >= 101900)

namespace leakproof {

namespace net = ::asio;
using error_code = std::error_code;

inline error_code to_error_code(std::error_code ec) noexcept {
    return ec;
}
inline error_code to_error_code(error e) noexcept {
    return make_error_code(e);
}
// Asio's system errors are in a category of its own ("asio.system"): the
// core (to_errno) knows std::system_category().
inline std::error_code to_std_error_code(const error_code& ec) noexcept {
    if (ec.category() == ::asio::error::get_system_category())
        return {ec.value(), std::system_category()};
    return ec;
}

}  // namespace leakproof

#endif
