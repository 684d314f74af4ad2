// leakproof — connecting Asio sockets through SOCKS proxies.
//
//     std::vector<leakproof::proxy> chain = ...;          // leakproof::parse_proxy_chain
//     co_await leakproof::async_connect(socket, chain, "example.org", 443, asio::use_awaitable);
//
// The destination name goes to the last proxy of the chain and is never
// resolved here; only the first proxy's own host name may be looked up
// locally (it is where we connect, not where we are going). Each further hop's
// handshake runs over the previous one: hop i asks proxy i to connect to
// proxy i+1, by name when the chain gives one.
//
// Every operation is an Asio composed operation (async_compose), so any
// completion token works: a callback, asio::use_future, asio::use_awaitable,
// asio::experimental::deferred. Each has one timeout for the whole operation
// (resolving and connecting to the first proxy, and every handshake) and
// honours per-operation cancellation (terminal). A failed, timed-out or
// cancelled connect leaves the socket closed; the errors are
// leakproof::error::timeout and asio::error::operation_aborted, a system
// error from connecting to the first proxy, or the leakproof::error the
// handshake produced.
//
// Like Asio's own operations, one operation must not run concurrently with
// other operations on the same socket, and its handlers run on the socket's
// executor: use a strand if several threads run the io_context.
//
// Synchronous versions (leakproof::connect, resolve, resolve_ptr) run the same
// operation on a private io_context, for programs that do not run one.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/buffer.hpp>
#include <asio/compose.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include "leakproof/leakproof.hpp"

namespace leakproof {

struct connect_options {
    // For the whole operation; zero means no limit. A Tor onion service can
    // take a minute to answer, hence the generous default.
    std::chrono::steady_clock::duration timeout = std::chrono::seconds(120);
};

// One proxy or several, without copying: binds to a proxy, a vector or a span.
class proxy_chain {
public:
    proxy_chain(const proxy& p) noexcept : hops_(&p, 1) {}  // NOLINT: implicit by design
    proxy_chain(std::span<const proxy> hops) noexcept : hops_(hops) {}
    proxy_chain(const std::vector<proxy>& hops) noexcept : hops_(hops) {}

    std::span<const proxy> hops() const noexcept { return hops_; }

private:
    std::span<const proxy> hops_;
};

// Parses proxy URLs, first hop first. On error `out` holds the hops before the
// bad URL, whose index is stored in `bad_index` when given.
inline std::error_code parse_proxy_chain(std::span<const std::string_view> urls,
                                         std::vector<proxy>& out,
                                         std::size_t* bad_index = nullptr) {
    out.clear();
    out.reserve(urls.size());
    for (std::size_t i = 0; i < urls.size(); ++i) {
        proxy p;
        if (std::error_code ec = parse_proxy_url(urls[i], p)) {
            if (bad_index) *bad_index = i;
            return ec;
        }
        out.push_back(p);
    }
    return {};
}

namespace detail {

// What an operation completes with besides its error_code.
struct connect_result {
    using signature = void(std::error_code);
};
struct resolve_result {
    using signature = void(std::error_code, asio::ip::address);
};
struct resolve_ptr_result {
    using signature = void(std::error_code, std::string);
};

inline asio::ip::address to_asio(const address& a) {
    if (a.type == address::kind::ipv4)
        return asio::ip::address_v4({a.ip[0], a.ip[1], a.ip[2], a.ip[3]});
    asio::ip::address_v6::bytes_type bytes;
    std::copy(a.ip.begin(), a.ip.end(), bytes.begin());
    return asio::ip::address_v6(bytes);
}

// The chain and the destination, copied for the operation's lifetime (the
// caller's may be gone before it ends) in one allocation of their text: a
// proxy keeps 765 bytes of inline strings, a pending connect should not.
// Beside it, the handshakes' buffer, as big as the largest hop needs.
class route {
public:
    route(std::span<const proxy> hops, std::string_view destination, std::uint16_t port,
          command cmd)
        : port_(port), cmd_(cmd) {
        std::size_t bytes = destination.size();
        for (const proxy& p : hops)
            bytes += p.host.view().size() + p.user.view().size() + p.password.view().size();
        text_.reserve(bytes);  // no reallocation below: the views stay valid
        destination_ = add(destination);
        hops_.reserve(hops.size());
        for (const proxy& p : hops)
            hops_.push_back({p.version, p.port, p.options, add(p.host.view()), add(p.user.view()),
                             add(p.password.view())});
        for (std::size_t i = 0; i < hops_.size(); ++i)
            scratch_size_ =
                std::max(scratch_size_, handshake_machine::buffer_size(make_request(i)));
        scratch_ = std::make_unique<std::uint8_t[]>(scratch_size_);
    }

    std::size_t size() const noexcept { return hops_.size(); }
    std::string_view host(std::size_t i) const noexcept { return view(hops_[i].host); }
    std::uint16_t port(std::size_t i) const noexcept { return hops_[i].port; }
    std::string_view destination() const noexcept { return view(destination_); }

    // Where hop i's handshake works.
    std::span<std::uint8_t> scratch() const noexcept { return {scratch_.get(), scratch_size_}; }

    // What hop i sends: a CONNECT to the next proxy, or the command to the destination.
    request make_request(std::size_t i) const noexcept {
        const hop& h = hops_[i];
        request r;
        r.version = h.version;
        r.user = view(h.user);
        r.password = view(h.password);
        r.options = h.options;
        if (i + 1 < hops_.size()) {
            r.target = address::parse(host(i + 1));
            r.port = hops_[i + 1].port;
        } else {
            r.cmd = cmd_;
            r.target = address::parse(destination());
            r.port = port_;
        }
        return r;
    }

private:
    struct piece {
        std::uint32_t at;
        std::uint32_t size;
    };
    struct hop {
        socks_version version;
        std::uint16_t port;
        handshake_options options;
        piece host, user, password;
    };

    piece add(std::string_view s) {
        piece p{static_cast<std::uint32_t>(text_.size()), static_cast<std::uint32_t>(s.size())};
        text_.append(s);
        return p;
    }
    std::string_view view(piece p) const noexcept { return {text_.data() + p.at, p.size}; }

    std::vector<hop> hops_;
    std::string text_;
    piece destination_{};
    std::uint16_t port_;
    command cmd_;
    std::size_t scratch_size_ = 0;
    std::unique_ptr<std::uint8_t[]> scratch_;
};

// Everything an operation keeps while it runs. The composed operation and
// its timeout handler share it: whichever runs last frees it.
template <typename Socket>
struct socks_state {
    using executor_type = typename Socket::executor_type;

    // `external` is the caller's socket; without one the state owns a socket
    // (Tor's RESOLVE commands need a connection but leave nothing behind).
    socks_state(Socket* external, const executor_type& ex, proxy_chain c, std::string_view h,
                std::uint16_t p, command k, const connect_options& o)
        : owned(external ? nullptr : std::make_unique<Socket>(ex)),
          socket(external ? *external : *owned),
          path(c.hops(), h, p, k),
          options(o),
          timer(ex) {}

    std::unique_ptr<Socket> owned;
    Socket& socket;
    route path;
    connect_options options;
    asio::steady_timer timer;
    std::unique_ptr<asio::ip::tcp::resolver> resolver;  // only for a first proxy given by name
    std::vector<asio::ip::tcp::endpoint> endpoints;     // of the first proxy
    std::size_t next_endpoint = 0;
    std::size_t hop = 0;
    std::optional<handshake_machine> handshake;  // works in path.scratch()
    std::error_code early_error;  // found before any I/O, reported from a posted call
    bool reading = false;         // the pending I/O is a read (else a write)
    bool timed_out = false;
    bool finished = false;
};

// Refuses a request that could never succeed before touching the network.
template <typename Socket>
std::error_code check_requests(const socks_state<Socket>& st) noexcept {
    if (st.path.size() == 0) return make_error_code(error::no_proxy);
    for (std::size_t i = 0; i < st.path.size(); ++i)
        if (std::error_code ec = validate(st.path.make_request(i))) return ec;
    return {};
}

template <typename Socket, typename Result>
class socks_op {
public:
    explicit socks_op(std::shared_ptr<socks_state<Socket>> st) : st_(std::move(st)) {}

    // Start.
    template <typename Self>
    void operator()(Self& self) {
        socks_state<Socket>& st = *st_;
        if (st.early_error) return finish(self, st.early_error);
        if ((st.early_error = check_requests(st))) {
            // Never complete inside the initiating call: post, come back here.
            return asio::post(st.socket.get_executor(), std::move(self));
        }
        arm_timeout();
        std::error_code ec;
        auto ip = asio::ip::make_address(st.path.host(0), ec);
        if (!ec) {
            st.endpoints.emplace_back(ip, st.path.port(0));
            return connect_next(self);
        }
        st.resolver = std::make_unique<asio::ip::tcp::resolver>(st.socket.get_executor());
        st.resolver->async_resolve(st.path.host(0), std::to_string(st.path.port(0)),
                                   std::move(self));
    }

    // The first proxy's name was resolved.
    template <typename Self>
    void operator()(Self& self, std::error_code ec, asio::ip::tcp::resolver::results_type results) {
        if (ec) return finish(self, ec);
        for (const auto& entry : results) st_->endpoints.push_back(entry.endpoint());
        connect_next(self);
    }

    // A TCP connect to the first proxy ended.
    template <typename Self>
    void operator()(Self& self, std::error_code ec) {
        socks_state<Socket>& st = *st_;
        if (ec && !stopped(self) && st.next_endpoint < st.endpoints.size()) {
            std::error_code ignored;
            st.socket.close(ignored);
            return connect_next(self);  // the proxy's next address
        }
        if (ec) return finish(self, ec);
        start_hop(self);
    }

    // A handshake read or write ended.
    template <typename Self>
    void operator()(Self& self, std::error_code ec, std::size_t n) {
        handshake_machine& hs = *st_->handshake;
        if (hung_up(ec) && !stopped(self))
            return finish(self, make_error_code(error::proxy_closed));
        if (ec)
            return finish(self, ec);
        else if (st_->reading)
            hs.received(n);
        else
            hs.sent();
        step(self);
    }

private:
    // The proxy ended the stream inside the handshake, however the kernel puts it:
    // end of stream, ECONNRESET or EPIPE, from a read or a write, is
    // error::proxy_closed. The same rule as every other driver of the core
    // (preload/runtime/tunnel.hpp, tunnel::hung_up and tunnel::step).
    static bool hung_up(std::error_code ec) {
        return ec == asio::error::eof || ec == asio::error::connection_reset ||
               ec == asio::error::broken_pipe;
    }

    template <typename Self>
    bool stopped(Self& self) const {
        return st_->timed_out ||
               self.get_cancellation_state().cancelled() != asio::cancellation_type::none;
    }

    void arm_timeout() {
        if (st_->options.timeout <= std::chrono::steady_clock::duration::zero()) return;
        st_->timer.expires_after(st_->options.timeout);
        st_->timer.async_wait([st = st_](std::error_code ec) {
            if (ec || st->finished) return;
            st->timed_out = true;
            std::error_code ignored;
            if (st->resolver) st->resolver->cancel();
            st->socket.cancel(ignored);
        });
    }

    template <typename Self>
    void connect_next(Self& self) {
        socks_state<Socket>& st = *st_;
        if (st.next_endpoint >= st.endpoints.size())
            return finish(self, asio::error::host_not_found);
        st.socket.async_connect(st.endpoints[st.next_endpoint++], std::move(self));
    }

    template <typename Self>
    void start_hop(Self& self) {
        st_->handshake.emplace(st_->path.make_request(st_->hop), st_->path.scratch());
        step(self);
    }

    // Does what the handshake asks for next.
    template <typename Self>
    void step(Self& self) {
        socks_state<Socket>& st = *st_;
        action act = st.handshake->next();
        switch (act.kind) {
            case action_kind::send:
                st.reading = false;
                return asio::async_write(
                    st.socket, asio::buffer(act.bytes.data(), act.bytes.size()), std::move(self));
            case action_kind::receive:
                // Exactly what the proxy still owes: bytes after the reply stay unread.
                st.reading = true;
                return st.socket.async_read_some(asio::buffer(act.space.data(), act.space.size()),
                                                 std::move(self));
            case action_kind::failed: return finish(self, act.error);
            case action_kind::done:
                if (++st.hop < st.path.size()) return start_hop(self);
                return finish(self, {});
        }
    }

    template <typename Self>
    void finish(Self& self, std::error_code ec) {
        socks_state<Socket>& st = *st_;
        st.finished = true;
        st.timer.cancel();
        if (ec && st.timed_out)
            ec = make_error_code(error::timeout);
        else if (ec && self.get_cancellation_state().cancelled() != asio::cancellation_type::none)
            ec = asio::error::operation_aborted;
        if (ec || !std::is_same_v<Result, connect_result>) {
            std::error_code ignored;
            st.socket.close(ignored);
        }
        complete(self, ec);
    }

    template <typename Self>
    void complete(Self& self, std::error_code ec) {
        if constexpr (std::is_same_v<Result, connect_result>) {
            auto keep = std::move(st_);  // free the state after the handler, not before
            self.complete(ec);
        } else if constexpr (std::is_same_v<Result, resolve_result>) {
            asio::ip::address out;
            if (!ec) {
                const address& bound = st_->handshake->result().bound;
                if (bound.type == address::kind::name)
                    ec = make_error_code(error::bad_address_type);
                else
                    out = to_asio(bound);
            }
            auto keep = std::move(st_);
            self.complete(ec, out);
        } else {
            std::string out;
            if (!ec) {
                const address& bound = st_->handshake->result().bound;
                if (bound.type != address::kind::name)
                    ec = make_error_code(error::bad_address_type);
                else
                    out = std::string(bound.name);
            }
            auto keep = std::move(st_);
            self.complete(ec, std::move(out));
        }
    }

    std::shared_ptr<socks_state<Socket>> st_;
};

template <typename Result, typename Socket, typename Token>
auto start(Socket* external, const typename Socket::executor_type& ex, proxy_chain chain,
           std::string_view host, std::uint16_t port, command cmd, const connect_options& options,
           Token&& token) {
    auto st = std::make_shared<socks_state<Socket>>(external, ex, chain, host, port, cmd, options);
    return asio::async_compose<Token, typename Result::signature>(
        socks_op<Socket, Result>(std::move(st)), token, ex);
}

template <typename Executor>
using tcp_socket = asio::basic_stream_socket<asio::ip::tcp, Executor>;

}  // namespace detail

// Connects `socket` to host:port through `chain`. `host` is a name or an IP
// literal; either way it goes to the last proxy as given.
template <typename Executor, typename Token>
auto async_connect(asio::basic_stream_socket<asio::ip::tcp, Executor>& socket, proxy_chain chain,
                   std::string_view host, std::uint16_t port, const connect_options& options,
                   Token&& token) {
    return detail::start<detail::connect_result, detail::tcp_socket<Executor>>(
        &socket, socket.get_executor(), chain, host, port, command::connect, options,
        std::forward<Token>(token));
}

template <typename Executor, typename Token>
auto async_connect(asio::basic_stream_socket<asio::ip::tcp, Executor>& socket, proxy_chain chain,
                   std::string_view host, std::uint16_t port, Token&& token) {
    return async_connect(socket, chain, host, port, connect_options{}, std::forward<Token>(token));
}

// Tor's RESOLVE: asks the last proxy for the address of `name`; completes with
// void(std::error_code, asio::ip::address).
template <typename Executor, typename Token>
auto async_resolve(const Executor& ex, proxy_chain chain, std::string_view name,
                   const connect_options& options, Token&& token) {
    return detail::start<detail::resolve_result, detail::tcp_socket<Executor>>(
        nullptr, ex, chain, name, 0, command::resolve, options, std::forward<Token>(token));
}

// Tor's RESOLVE_PTR: asks the last proxy for the name of `ip`; completes with
// void(std::error_code, std::string).
template <typename Executor, typename Token>
auto async_resolve_ptr(const Executor& ex, proxy_chain chain, const asio::ip::address& ip,
                       const connect_options& options, Token&& token) {
    // The state copies the text, so the temporary string is fine.
    return detail::start<detail::resolve_ptr_result, detail::tcp_socket<Executor>>(
        nullptr, ex, chain, ip.to_string(), 0, command::resolve_ptr, options,
        std::forward<Token>(token));
}

// Blocking connect: the same operation, for programs without an io_context.
// An open `socket` is closed first.
template <typename Executor>
std::error_code connect(asio::basic_stream_socket<asio::ip::tcp, Executor>& socket,
                        proxy_chain chain, std::string_view host, std::uint16_t port,
                        const connect_options& options = {}) {
    std::error_code result, ec;
    socket.close(ec);
    asio::io_context ctx;
    asio::ip::tcp::socket tmp(ctx);
    async_connect(tmp, chain, host, port, options, [&](std::error_code e) { result = e; });
    ctx.run();
    if (result) return result;
    auto protocol = tmp.local_endpoint(ec).protocol();
    if (!ec) socket.assign(protocol, tmp.release(ec), ec);
    return ec;
}

inline std::error_code resolve(proxy_chain chain, std::string_view name, asio::ip::address& out,
                               const connect_options& options = {}) {
    std::error_code result;
    asio::io_context ctx;
    async_resolve(ctx.get_executor(), chain, name, options,
                  [&](std::error_code e, asio::ip::address a) {
                      result = e;
                      out = a;
                  });
    ctx.run();
    return result;
}

inline std::error_code resolve_ptr(proxy_chain chain, const asio::ip::address& ip, std::string& out,
                                   const connect_options& options = {}) {
    std::error_code result;
    asio::io_context ctx;
    async_resolve_ptr(ctx.get_executor(), chain, ip, options,
                      [&](std::error_code e, std::string n) {
                          result = e;
                          out = std::move(n);
                      });
    ctx.run();
    return result;
}

}  // namespace leakproof
