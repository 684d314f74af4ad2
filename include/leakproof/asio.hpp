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
//
// BIND: async_bind asks the last proxy to listen and completes with the
// address it announced; async_accept_bound then waits for the peer, after
// which the socket carries the inbound connection. UDP: a udp_association
// holds the UDP ASSOCIATE control connection and its own UDP socket, and sends
// and receives datagrams through the proxy's relay (names go to the proxy).
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "leakproof/asio_flavour.hpp"
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
struct bind_access;
}

// What async_bind completes with: where the proxy listens for the peer (tell
// the peer this address), and the pending BIND that async_accept_bound goes on
// with. An announcement of 0.0.0.0 or :: (the proxy's own address) has been
// replaced by the address of the proxy that binds, when it is known as an
// address: the one we connected to for a single proxy, the last hop's host
// for a chain when that is an IP literal (otherwise it is left unspecified:
// never resolved here).
class bind_announcement {
public:
    net::ip::tcp::endpoint endpoint;

    // Whether async_accept_bound can go on with it.
    bool pending() const noexcept { return state_ != nullptr; }

private:
    friend struct detail::bind_access;
    std::shared_ptr<void> state_;  // the BIND's operation state, waiting for its second reply
    const void* socket_ = nullptr;
};

namespace detail {

// What an operation completes with besides its error_code.
struct connect_result {
    using signature = void(error_code);
};
// A connect that may end once the last hop's request is written, with its
// reply still to be read (optimistic_stream).
struct optimistic_result {
    using signature = void(error_code);
};
struct resolve_result {
    using signature = void(error_code, net::ip::address);
};
struct resolve_ptr_result {
    using signature = void(error_code, std::string);
};
struct bind_result {  // the first reply of a BIND
    using signature = void(error_code, bind_announcement);
};
struct accept_bound_result {  // the second reply of a BIND
    using signature = void(error_code, net::ip::tcp::endpoint);
};
struct associate_result {
    using signature = void(error_code, net::ip::udp::endpoint);
};

// Which operations leave the socket open when they succeed: those after
// which it carries a connection (or the UDP association's control).
template <typename Result>
inline constexpr bool keeps_socket =
    !std::is_same_v<Result, resolve_result> && !std::is_same_v<Result, resolve_ptr_result>;

struct bind_access {
    static std::shared_ptr<void>& state(bind_announcement& a) noexcept { return a.state_; }
    static const void*& socket(bind_announcement& a) noexcept { return a.socket_; }
};

inline net::ip::address to_asio(const address& a) {
    if (a.type == address::kind::ipv4)
        return net::ip::address_v4({a.ip[0], a.ip[1], a.ip[2], a.ip[3]});
    net::ip::address_v6::bytes_type bytes;
    std::copy(a.ip.begin(), a.ip.end(), bytes.begin());
    return net::ip::address_v6(bytes);
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
    command cmd() const noexcept { return cmd_; }

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
    net::steady_timer timer;
    std::unique_ptr<net::ip::tcp::resolver> resolver;  // only for a first proxy given by name
    std::vector<net::ip::tcp::endpoint> endpoints;     // of the first proxy
    std::size_t next_endpoint = 0;
    std::size_t hop = 0;
    std::optional<handshake_machine> handshake;  // works in path.scratch()
    error_code early_error;  // found before any I/O, reported from a posted call
    bool reading = false;    // the pending I/O is a read (else a write)
    bool timed_out = false;
    bool finished = false;
};

// Refuses a request that could never succeed before touching the network.
template <typename Socket>
error_code check_requests(const socks_state<Socket>& st) noexcept {
    if (st.path.size() == 0) return to_error_code(error::no_proxy);
    for (std::size_t i = 0; i < st.path.size(); ++i)
        if (std::error_code ec = validate(st.path.make_request(i))) return to_error_code(ec);
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
        if constexpr (std::is_same_v<Result, accept_bound_result>) return await_peer(self);
        if ((st.early_error = check_requests(st))) {
            // Never complete inside the initiating call: post, come back here.
            return net::post(st.socket.get_executor(), std::move(self));
        }
        arm_timeout();
        error_code ec;
        auto ip = net::ip::make_address(st.path.host(0), ec);
        if (!ec) {
            st.endpoints.emplace_back(ip, st.path.port(0));
            return connect_next(self);
        }
        st.resolver = std::make_unique<net::ip::tcp::resolver>(st.socket.get_executor());
        st.resolver->async_resolve(st.path.host(0), std::to_string(st.path.port(0)),
                                   std::move(self));
    }

    // The first proxy's name was resolved.
    template <typename Self>
    void operator()(Self& self, error_code ec, net::ip::tcp::resolver::results_type results) {
        if (ec) return finish(self, ec);
        for (const auto& entry : results) st_->endpoints.push_back(entry.endpoint());
        connect_next(self);
    }

    // A TCP connect to the first proxy ended.
    template <typename Self>
    void operator()(Self& self, error_code ec) {
        socks_state<Socket>& st = *st_;
        if (ec && ec != net::error::operation_aborted && !stopped(self) &&
            st.next_endpoint < st.endpoints.size()) {
            error_code ignored;
            st.socket.close(ignored);
            return connect_next(self);  // the proxy's next address
        }
        if (ec) return finish(self, ec);
        start_hop(self);
    }

    // A handshake read or write ended.
    template <typename Self>
    void operator()(Self& self, error_code ec, std::size_t n) {
        handshake_machine& hs = *st_->handshake;
        if (hung_up(ec) && !stopped(self) && st_->reading) {
            hs.closed();  // the core says what a close means here (a BIND ssh -D refuses)
            return step(self);
        }
        if (hung_up(ec) && !stopped(self)) return finish(self, to_error_code(error::proxy_closed));
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
    static bool hung_up(error_code ec) {
        return ec == net::error::eof || ec == net::error::connection_reset ||
               ec == net::error::broken_pipe;
    }

    // Whether the caller cancelled the operation. An Asio without
    // per-operation cancellation (Boost 1.74's) only has the socket's own
    // cancel() and close(), whose operation_aborted the handlers see.
    template <typename Self>
    static bool cancelled([[maybe_unused]] Self& self) {
#if LEAKPROOF_NET_HAS_CANCELLATION
        return self.get_cancellation_state().cancelled() != net::cancellation_type::none;
#else
        return false;
#endif
    }

    template <typename Self>
    bool stopped(Self& self) const {
        return st_->timed_out || cancelled(self);
    }

    void arm_timeout() {
        if (st_->options.timeout <= std::chrono::steady_clock::duration::zero()) return;
        st_->timer.expires_after(st_->options.timeout);
        st_->timer.async_wait([st = st_](error_code ec) {
            if (ec || st->finished) return;
            st->timed_out = true;
            error_code ignored;
            if (st->resolver) st->resolver->cancel();
            st->socket.cancel(ignored);
        });
    }

    // BIND's second phase, on the state the first left: the same socket, hop
    // and handshake, which now reads the second reply.
    template <typename Self>
    void await_peer(Self& self) {
        socks_state<Socket>& st = *st_;
        st.finished = false;
        st.timed_out = false;
        if (!st.handshake || !st.handshake->await_peer()) {
            st.early_error = net::error::invalid_argument;
            return net::post(st.socket.get_executor(), std::move(self));
        }
        arm_timeout();
        step(self);
    }

    template <typename Self>
    void connect_next(Self& self) {
        socks_state<Socket>& st = *st_;
        if (st.next_endpoint >= st.endpoints.size())
            return finish(self, net::error::host_not_found);
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
                return net::async_write(st.socket, net::buffer(act.bytes.data(), act.bytes.size()),
                                        std::move(self));
            case action_kind::receive:
                if (early_data_may_follow()) return finish(self, {});
                // Exactly what the proxy still owes: bytes after the reply stay unread.
                st.reading = true;
                return st.socket.async_read_some(net::buffer(act.space.data(), act.space.size()),
                                                 std::move(self));
            case action_kind::failed: return finish(self, to_error_code(act.error));
            case action_kind::done:
                if (++st.hop < st.path.size()) return start_hop(self);
                return finish(self, {});
        }
    }

    // optimistic_stream's connect ends here: the last hop is optimistic and
    // its whole request is written; the stream's first read takes the reply.
    bool early_data_may_follow() const noexcept {
        if constexpr (!std::is_same_v<Result, optimistic_result>) {
            return false;
        } else {
            const socks_state<Socket>& st = *st_;
            return st.hop + 1 == st.path.size() &&
                   st.path.make_request(st.hop).options.optimistic && st.handshake->request_sent();
        }
    }

    template <typename Self>
    void finish(Self& self, error_code ec) {
        socks_state<Socket>& st = *st_;
        st.finished = true;
        st.timer.cancel();
        if (ec && st.timed_out)
            ec = to_error_code(error::timeout);
        else if (ec && cancelled(self))
            ec = net::error::operation_aborted;
        if (ec || !keeps_socket<Result>) {
            error_code ignored;
            st.socket.close(ignored);
        }
        complete(self, ec);
    }

    // BIND's announcement and UDP ASSOCIATE's relay: 0.0.0.0 or :: mean the
    // proxy's own address, which we know as an address for one proxy (we
    // connected to it) or for a last hop given as an IP literal.
    std::optional<net::ip::address> binding_proxy_address() const {
        socks_state<Socket>& st = *st_;
        error_code ec;
        if (st.path.size() == 1) {
            auto remote = st.socket.remote_endpoint(ec);
            if (!ec) return remote.address();
            return std::nullopt;
        }
        auto ip = net::ip::make_address(st.path.host(st.path.size() - 1), ec);
        if (ec) return std::nullopt;
        return ip;
    }

    // The address a reply names, with the proxy's own substituted for 0.0.0.0
    // or ::. A name is an error: nothing here resolves it.
    error_code bound_address(net::ip::address& out) const {
        const reply& r = st_->handshake->result();
        if (r.bound.type == address::kind::name) return to_error_code(error::bad_address_type);
        out = to_asio(r.bound);
        if (r.means_proxy_address())
            if (auto own = binding_proxy_address()) out = *own;
        return {};
    }

    template <typename Self>
    void complete(Self& self, error_code ec) {
        if constexpr (std::is_same_v<Result, connect_result> ||
                      std::is_same_v<Result, optimistic_result>) {
            auto keep = std::move(st_);  // free the state after the handler, not before
            self.complete(ec);
        } else if constexpr (std::is_same_v<Result, bind_result>) {
            bind_announcement out;
            net::ip::address ip;
            if (!ec && !(ec = bound_address(ip))) {
                out.endpoint = {ip, st_->handshake->result().port};
                bind_access::socket(out) = &st_->socket;
                bind_access::state(out) = st_;
            }
            if (ec) close_socket();
            auto keep = std::move(st_);
            self.complete(ec, std::move(out));
        } else if constexpr (std::is_same_v<Result, accept_bound_result>) {
            net::ip::tcp::endpoint peer;
            const reply& r = st_->handshake->result();
            if (!ec && r.bound.type == address::kind::name)
                ec = to_error_code(error::bad_address_type);
            if (!ec) peer = {to_asio(r.bound), r.port};
            if (ec) close_socket();
            auto keep = std::move(st_);
            self.complete(ec, peer);
        } else if constexpr (std::is_same_v<Result, associate_result>) {
            net::ip::udp::endpoint relay;
            net::ip::address ip;
            if (!ec && !(ec = bound_address(ip))) relay = {ip, st_->handshake->result().port};
            if (ec) close_socket();
            auto keep = std::move(st_);
            self.complete(ec, relay);
        } else if constexpr (std::is_same_v<Result, resolve_result>) {
            net::ip::address out;
            if (!ec) {
                const address& bound = st_->handshake->result().bound;
                if (bound.type == address::kind::name)
                    ec = to_error_code(error::bad_address_type);
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
                    ec = to_error_code(error::bad_address_type);
                else
                    out = std::string(bound.name);
            }
            auto keep = std::move(st_);
            self.complete(ec, std::move(out));
        }
    }

    void close_socket() {
        error_code ignored;
        st_->socket.close(ignored);
    }

    std::shared_ptr<socks_state<Socket>> st_;
};

template <typename Result, typename Socket, typename Token>
auto start(Socket* external, const typename Socket::executor_type& ex, proxy_chain chain,
           std::string_view host, std::uint16_t port, command cmd, const connect_options& options,
           Token&& token) {
    auto st = std::make_shared<socks_state<Socket>>(external, ex, chain, host, port, cmd, options);
    return net::async_compose<Token, typename Result::signature>(
        socks_op<Socket, Result>(std::move(st)), token, ex);
}

template <typename Executor>
using tcp_socket = net::basic_stream_socket<net::ip::tcp, Executor>;

}  // namespace detail

// Connects `socket` to host:port through `chain`. `host` is a name or an IP
// literal; either way it goes to the last proxy as given.
template <typename Executor, typename Token>
auto async_connect(net::basic_stream_socket<net::ip::tcp, Executor>& socket, proxy_chain chain,
                   std::string_view host, std::uint16_t port, const connect_options& options,
                   Token&& token) {
    return detail::start<detail::connect_result, detail::tcp_socket<Executor>>(
        &socket, socket.get_executor(), chain, host, port, command::connect, options,
        std::forward<Token>(token));
}

template <typename Executor, typename Token>
auto async_connect(net::basic_stream_socket<net::ip::tcp, Executor>& socket, proxy_chain chain,
                   std::string_view host, std::uint16_t port, Token&& token) {
    return async_connect(socket, chain, host, port, connect_options{}, std::forward<Token>(token));
}

// ---------------------------------------------------------------- optimistic data

namespace detail {

// The proxy ended the stream: the same rule as socks_op::hung_up.
inline bool proxy_hung_up(error_code ec) {
    return ec == net::error::eof || ec == net::error::connection_reset ||
           ec == net::error::broken_pipe;
}

// optimistic_stream's write: straight out behind the request, or, after a
// refusal, its error from a posted call (never inside the initiating function).
template <typename Socket, typename Buffers>
class optimistic_write_op {
public:
    optimistic_write_op(Socket& socket, const Buffers& buffers, error_code refusal)
        : socket_(socket), buffers_(buffers), refusal_(refusal) {}

    template <typename Self>
    void operator()(Self& self) {
        if (!refusal_) return socket_.async_write_some(buffers_, std::move(self));
        if (posted_) return self.complete(refusal_, 0);
        posted_ = true;
        net::post(socket_.get_executor(), std::move(self));
    }

    template <typename Self>
    void operator()(Self& self, error_code ec, std::size_t n) {
        self.complete(ec, n);
    }

private:
    Socket& socket_;
    Buffers buffers_;
    error_code refusal_;
    bool posted_ = false;
};

// optimistic_stream's read: first the reply the connect left outstanding
// (exactly its bytes, through the core), then the caller's own read. A
// refusal closes the socket and completes the read with the handshake's error.
template <typename Socket, typename Buffers>
class optimistic_read_op {
public:
    optimistic_read_op(std::shared_ptr<socks_state<Socket>> st, Socket& socket,
                       const Buffers& buffers)
        : st_(std::move(st)), socket_(socket), buffers_(buffers) {}

    template <typename Self>
    void operator()(Self& self) {
        if (stage_ == stage::posted)
            return self.complete(to_error_code(st_->handshake->error()), 0);
        advance(self, false);
    }

    template <typename Self>
    void operator()(Self& self, error_code ec, std::size_t n) {
        if (stage_ == stage::data) return self.complete(ec, n);
        handshake_machine& hs = *st_->handshake;
        if (proxy_hung_up(ec))
            hs.closed();  // the core says what a close means here: proxy_closed, a cut reply
        else if (ec)
            return self.complete(ec, 0);
        else
            hs.received(n);
        advance(self, true);
    }

private:
    enum class stage : std::uint8_t { reply, posted, data };

    template <typename Self>
    void advance(Self& self, bool in_handler) {
        const action act = st_ ? st_->handshake->next() : action{action_kind::done, {}, {}, {}};
        if (act.kind == action_kind::receive)
            return socket_.async_read_some(net::buffer(act.space.data(), act.space.size()),
                                           std::move(self));
        if (act.kind == action_kind::failed) {
            error_code ignored;
            socket_.close(ignored);  // refused: nothing more goes to the proxy
            if (in_handler) return self.complete(to_error_code(act.error), 0);
            stage_ = stage::posted;
            return net::post(socket_.get_executor(), std::move(self));
        }
        stage_ = stage::data;  // done: a send never follows request_sent()
        socket_.async_read_some(buffers_, std::move(self));
    }

    std::shared_ptr<socks_state<Socket>> st_;  // null: no reply was outstanding
    Socket& socket_;
    Buffers buffers_;
    stage stage_ = stage::reply;
};

}  // namespace detail

// A TCP socket connected through SOCKS with optimistic data: when the last
// proxy's URL says ?optimistic=1 (handshake_options::optimistic), async_connect
// completes as soon as the whole request is written, without waiting for the
// proxy's reply. The program then writes at once (the bytes follow the
// request on the same stream: one round trip saved for HTTP or TLS, which
// speak first), and the first async_read_some reads the reply first —
// exactly its bytes, nothing of the application's data — before it reads
// into the caller's buffers. A refusal completes that read with the
// handshake's error (leakproof::error::connection_refused, …), closes the
// socket, and every later read or write gets the same error. Without
// ?optimistic=1 it is an ordinary connect (the reply is read before
// async_connect completes). A model of Asio's AsyncReadStream and
// AsyncWriteStream: net::async_read, async_write, ssl::stream<> work on it.
//
// The connect's timeout covers the connect and the request; the reply is
// then waited for as long as the read waits (cancel it, or close the stream).
// Only servers that read the bytes behind a request may be given early data:
// Tor, dante and the project's test proxy do (tests/asio); microsocks drops
// them, or refuses the connect when they arrive with the request.
// The stream keeps its socket at a fixed address: it may be moved, but not
// while an operation is pending (Asio's own rule for sockets).
template <typename Socket = net::ip::tcp::socket>
class optimistic_stream {
public:
    using executor_type = typename Socket::executor_type;
    using next_layer_type = Socket;
    using lowest_layer_type = typename Socket::lowest_layer_type;

    explicit optimistic_stream(const executor_type& ex) : socket_(std::make_unique<Socket>(ex)) {}
    template <typename Context,
              typename = std::enable_if_t<std::is_convertible_v<Context&, net::execution_context&>>>
    explicit optimistic_stream(Context& ctx) : socket_(std::make_unique<Socket>(ctx)) {}

    executor_type get_executor() noexcept { return socket_->get_executor(); }
    Socket& next_layer() noexcept { return *socket_; }
    lowest_layer_type& lowest_layer() noexcept { return socket_->lowest_layer(); }
    bool is_open() const noexcept { return socket_->is_open(); }
    void close(error_code& ec) { socket_->close(ec); }

    // True between an optimistic connect and the read that takes the reply.
    bool reply_pending() const noexcept {
        return pending_ && !pending_->handshake->finished() && !pending_->handshake->failed();
    }
    // The proxy's refusal, once a read found it; empty otherwise.
    error_code refusal() const noexcept {
        return pending_ && pending_->handshake->failed()
                   ? to_error_code(pending_->handshake->error())
                   : error_code{};
    }

    // Completes with void(error_code): see the class comment for when.
    template <typename Token>
    auto async_connect(proxy_chain chain, std::string_view host, std::uint16_t port,
                       const connect_options& options, Token&& token) {
        pending_ = std::make_shared<detail::socks_state<Socket>>(
            socket_.get(), socket_->get_executor(), chain, host, port, command::connect, options);
        return net::async_compose<Token, detail::optimistic_result::signature>(
            detail::socks_op<Socket, detail::optimistic_result>(pending_), token,
            socket_->get_executor());
    }

    template <typename Token>
    auto async_connect(proxy_chain chain, std::string_view host, std::uint16_t port,
                       Token&& token) {
        return async_connect(chain, host, port, connect_options{}, std::forward<Token>(token));
    }

    template <typename MutableBuffers, typename Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        auto st = reply_pending() || refusal() ? pending_ : nullptr;
        return net::async_compose<Token, void(error_code, std::size_t)>(
            detail::optimistic_read_op<Socket, MutableBuffers>(std::move(st), *socket_, buffers),
            token, socket_->get_executor());
    }

    // Goes straight out, behind the request, while the reply is pending.
    template <typename ConstBuffers, typename Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        return net::async_compose<Token, void(error_code, std::size_t)>(
            detail::optimistic_write_op<Socket, ConstBuffers>(*socket_, buffers, refusal()), token,
            socket_->get_executor());
    }

private:
    std::unique_ptr<Socket> socket_;
    // The connect's state: the handshake whose reply a read may still owe.
    std::shared_ptr<detail::socks_state<Socket>> pending_;
};

// Tor's RESOLVE: asks the last proxy for the address of `name`; completes with
// void(error_code, net::ip::address).
template <typename Executor, typename Token>
auto async_resolve(const Executor& ex, proxy_chain chain, std::string_view name,
                   const connect_options& options, Token&& token) {
    return detail::start<detail::resolve_result, detail::tcp_socket<Executor>>(
        nullptr, ex, chain, name, 0, command::resolve, options, std::forward<Token>(token));
}

// Tor's RESOLVE_PTR: asks the last proxy for the name of `ip`; completes with
// void(error_code, std::string).
template <typename Executor, typename Token>
auto async_resolve_ptr(const Executor& ex, proxy_chain chain, const net::ip::address& ip,
                       const connect_options& options, Token&& token) {
    // The state copies the text, so the temporary string is fine.
    return detail::start<detail::resolve_ptr_result, detail::tcp_socket<Executor>>(
        nullptr, ex, chain, ip.to_string(), 0, command::resolve_ptr, options,
        std::forward<Token>(token));
}

// BIND: asks the last proxy of `chain` to listen for a connection from
// peer_host (a name or an IP literal, sent as given; 0.0.0.0 for any host)
// and completes with void(error_code, bind_announcement) once the proxy
// has announced where it listens. Tell the peer announcement.endpoint, then
// call async_accept_bound. A proxy without BIND gives error::bind_not_supported.
template <typename Executor, typename Token>
auto async_bind(net::basic_stream_socket<net::ip::tcp, Executor>& socket, proxy_chain chain,
                std::string_view peer_host, std::uint16_t peer_port, const connect_options& options,
                Token&& token) {
    return detail::start<detail::bind_result, detail::tcp_socket<Executor>>(
        &socket, socket.get_executor(), chain, peer_host, peer_port, command::bind, options,
        std::forward<Token>(token));
}

template <typename Executor, typename Token>
auto async_bind(net::basic_stream_socket<net::ip::tcp, Executor>& socket, proxy_chain chain,
                std::string_view peer_host, std::uint16_t peer_port, Token&& token) {
    return async_bind(socket, chain, peer_host, peer_port, connect_options{},
                      std::forward<Token>(token));
}

// BIND's second phase: waits for the proxy's second reply and completes with
// void(error_code, net::ip::tcp::endpoint) giving the peer that
// connected; the socket then carries that connection (nothing after the
// reply has been read). A peer other than an IP peer_host is
// error::bind_peer_mismatch unless the proxy's handshake_options say
// check_bind_peer = false. `pending` is what async_bind gave for this same
// socket; it is used up. `options.timeout` bounds the wait for the peer.
template <typename Executor, typename Token>
auto async_accept_bound(net::basic_stream_socket<net::ip::tcp, Executor>& socket,
                        bind_announcement pending, const connect_options& options, Token&& token) {
    using socket_type = detail::tcp_socket<Executor>;
    using state_type = detail::socks_state<socket_type>;
    std::shared_ptr<state_type> st;
    if (detail::bind_access::socket(pending) == &socket)
        st = std::static_pointer_cast<state_type>(std::move(detail::bind_access::state(pending)));
    if (!st)  // not this socket's BIND: without a handshake, refused from a posted call
        st = std::make_shared<state_type>(&socket, socket.get_executor(),
                                          proxy_chain(std::span<const proxy>{}), "", 0,
                                          command::bind, options);
    st->options = options;
    return net::async_compose<Token, detail::accept_bound_result::signature>(
        detail::socks_op<socket_type, detail::accept_bound_result>(std::move(st)), token,
        socket.get_executor());
}

template <typename Executor, typename Token>
auto async_accept_bound(net::basic_stream_socket<net::ip::tcp, Executor>& socket,
                        bind_announcement pending, Token&& token) {
    return async_accept_bound(socket, std::move(pending), connect_options{},
                              std::forward<Token>(token));
}

// Blocking connect: the same operation, for programs without an io_context.
// An open `socket` is closed first.
template <typename Executor>
error_code connect(net::basic_stream_socket<net::ip::tcp, Executor>& socket, proxy_chain chain,
                   std::string_view host, std::uint16_t port, const connect_options& options = {}) {
    error_code result, ec;
    socket.close(ec);
    net::io_context ctx;
    net::ip::tcp::socket tmp(ctx);
    async_connect(tmp, chain, host, port, options, [&](error_code e) { result = e; });
    ctx.run();
    if (result) return result;
    auto protocol = tmp.local_endpoint(ec).protocol();
    if (!ec) socket.assign(protocol, tmp.release(ec), ec);
    return ec;
}

inline error_code resolve(proxy_chain chain, std::string_view name, net::ip::address& out,
                          const connect_options& options = {}) {
    error_code result;
    net::io_context ctx;
    async_resolve(ctx.get_executor(), chain, name, options, [&](error_code e, net::ip::address a) {
        result = e;
        out = a;
    });
    ctx.run();
    return result;
}

inline error_code resolve_ptr(proxy_chain chain, const net::ip::address& ip, std::string& out,
                              const connect_options& options = {}) {
    error_code result;
    net::io_context ctx;
    async_resolve_ptr(ctx.get_executor(), chain, ip, options, [&](error_code e, std::string n) {
        result = e;
        out = std::move(n);
    });
    ctx.run();
    return result;
}

// ---------------------------------------------------------------- UDP ASSOCIATE

namespace detail {

inline constexpr std::size_t max_relay_datagram = 65535;

// An association's sockets and buffers, shared with its pending operations
// so that no handler outlives what it uses. Allocated once, at construction
// and at open: sending and receiving a datagram allocate nothing here.
template <typename Executor>
struct udp_link {
    explicit udp_link(const Executor& ex) : control(ex), datagrams(ex) {}

    tcp_socket<Executor> control;  // the UDP ASSOCIATE connection: the association lives as long
    net::basic_datagram_socket<net::ip::udp, Executor> datagrams;  // connected to the relay
    net::ip::udp::endpoint relay;
    bool open = false;           // async_open succeeded; neither end has closed since
    bool control_ended = false;  // the proxy ended the association
    std::uint8_t control_byte = 0;
    std::array<std::uint8_t, max_udp_header> header{};  // the pending send's header
    std::unique_ptr<std::uint8_t[]> inbound;            // one relay datagram, header included
    std::array<char, 256> source{};                     // the last source received, as text

    error_code closed_error() const {
        if (control_ended) return to_error_code(error::udp_association_closed);
        return net::error::not_connected;
    }

    void shut() {
        open = false;
        error_code ignored;
        control.close(ignored);
        datagrams.close(ignored);
    }
};

// The proxy ends an association by closing its control connection, which
// otherwise carries nothing: any end of it, or any byte on it, ends the
// association, and the pending datagram operations complete.
template <typename Link>
void watch_control(const std::shared_ptr<Link>& link) {
    link->control.async_read_some(net::buffer(&link->control_byte, 1),
                                  [link](error_code, std::size_t) {
                                      if (!link->open) return;  // closed on our side
                                      link->control_ended = true;
                                      link->shut();
                                  });
}

// The header and up to 15 of the caller's buffers, gathered in one send.
struct gather_buffers {
    using value_type = net::const_buffer;
    using const_iterator = const net::const_buffer*;
    static constexpr std::size_t capacity = 16;

    std::array<net::const_buffer, capacity> pieces;
    std::size_t count = 0;

    const_iterator begin() const noexcept { return pieces.data(); }
    const_iterator end() const noexcept { return pieces.data() + count; }
};

// Posts the completion of an operation refused before any I/O, then completes.
class refusal {
public:
    explicit refusal(error_code ec) : error_(ec) {}
    error_code error() const noexcept { return error_; }
    // True the first time: the caller posts itself and comes back.
    bool first_time() noexcept { return !std::exchange(posted_, true); }

private:
    error_code error_;
    bool posted_ = false;
};

template <typename Executor>
class udp_open_op {
public:
    udp_open_op(std::shared_ptr<udp_link<Executor>> link, proxy_chain chain,
                const connect_options& options)
        : link_(std::move(link)), options_(options), refused_(check(chain)) {
        if (!refused_.error()) hop_ = chain.hops()[0];
    }

    template <typename Self>
    void operator()(Self& self) {
        if (refused_.error()) {
            if (refused_.first_time())
                return net::post(link_->control.get_executor(), std::move(self));
            return self.complete(refused_.error());
        }
        link_->shut();
        link_->control_ended = false;
        // 0.0.0.0:0: the client does not know yet where it will send from
        // (RFC 1928 section 6), which every server accepts.
        start<associate_result, tcp_socket<Executor>>(
            &link_->control, link_->control.get_executor(), proxy_chain(hop_), "0.0.0.0", 0,
            command::udp_associate, options_, std::move(self));
    }

    template <typename Self>
    void operator()(Self& self, error_code ec, net::ip::udp::endpoint relay) {
        if (!ec) ec = attach(relay);
        if (ec) {
            link_->shut();
            return self.complete(ec);
        }
        watch_control(link_);
        self.complete({});
    }

private:
    static error_code check(proxy_chain chain) {
        if (chain.hops().empty()) return to_error_code(error::no_proxy);
        if (chain.hops().size() > 1) return to_error_code(error::udp_chain_not_supported);
        return {};
    }

    // The UDP socket is connected to the relay, so only its datagrams reach us.
    error_code attach(const net::ip::udp::endpoint& relay) {
        udp_link<Executor>& l = *link_;
        error_code ec;
        l.datagrams.open(relay.protocol(), ec);
        if (!ec) l.datagrams.connect(relay, ec);
        if (ec) return ec;
        if (!l.inbound) l.inbound = std::make_unique<std::uint8_t[]>(max_relay_datagram);
        l.relay = relay;
        l.open = true;
        return {};
    }

    std::shared_ptr<udp_link<Executor>> link_;
    connect_options options_;
    refusal refused_;
    proxy hop_;  // a copy: the caller's chain may be gone before a deferred start
};

template <typename Executor, typename Buffers>
class udp_send_op {
public:
    udp_send_op(std::shared_ptr<udp_link<Executor>> link, const Buffers& buffers,
                std::size_t header_size, error_code refused)
        : link_(std::move(link)), buffers_(buffers), header_size_(header_size), refused_(refused) {}

    template <typename Self>
    void operator()(Self& self) {
        if (refused_.error()) {
            if (refused_.first_time())
                return net::post(link_->datagrams.get_executor(), std::move(self));
            return self.complete(refused_.error(), 0);
        }
        gather_buffers out;
        out.pieces[out.count++] = net::const_buffer(link_->header.data(), header_size_);
        for (auto it = net::buffer_sequence_begin(buffers_);
             it != net::buffer_sequence_end(buffers_); ++it) {
            if (out.count == gather_buffers::capacity) {
                refused_ = refusal(net::error::no_buffer_space);
                return (*this)(self);
            }
            out.pieces[out.count++] = net::const_buffer(*it);
        }
        link_->datagrams.async_send(out, std::move(self));
    }

    template <typename Self>
    void operator()(Self& self, error_code ec, std::size_t n) {
        if (ec && link_->control_ended) ec = to_error_code(error::udp_association_closed);
        self.complete(ec, ec || n < header_size_ ? 0 : n - header_size_);
    }

private:
    std::shared_ptr<udp_link<Executor>> link_;
    Buffers buffers_;
    std::size_t header_size_;
    refusal refused_;
};

// A datagram's source as text, in the association's own storage: a name as
// the relay gave it, an address as a literal.
inline std::string_view source_text(const address& a, std::array<char, 256>& out) {
    if (a.type == address::kind::name) {
        std::copy(a.name.begin(), a.name.end(), out.begin());
        return {out.data(), a.name.size()};
    }
    const int family = a.type == address::kind::ipv4 ? AF_INET : AF_INET6;
    if (!::inet_ntop(family, a.ip.data(), out.data(), static_cast<socklen_t>(out.size())))
        return {};
    return {out.data()};
}

template <typename Executor, typename Buffers>
class udp_receive_op {
public:
    udp_receive_op(std::shared_ptr<udp_link<Executor>> link, const Buffers& buffers,
                   error_code refused)
        : link_(std::move(link)), buffers_(buffers), refused_(refused) {}

    template <typename Self>
    void operator()(Self& self) {
        if (refused_.error()) {
            if (refused_.first_time())
                return net::post(link_->datagrams.get_executor(), std::move(self));
            return self.complete(refused_.error(), 0, std::string_view{}, std::uint16_t{0});
        }
        link_->datagrams.async_receive(net::buffer(link_->inbound.get(), max_relay_datagram),
                                       std::move(self));
    }

    template <typename Self>
    void operator()(Self& self, error_code ec, std::size_t n) {
        udp_datagram d;
        if (ec && link_->control_ended) ec = to_error_code(error::udp_association_closed);
        if (!ec) ec = to_error_code(parse_udp_datagram({link_->inbound.get(), n}, d));
        if (ec) return self.complete(ec, 0, std::string_view{}, std::uint16_t{0});
        const std::size_t copied =
            net::buffer_copy(buffers_, net::buffer(d.payload.data(), d.payload.size()));
        self.complete(ec, copied, source_text(d.source, link_->source), d.port);
    }

private:
    std::shared_ptr<udp_link<Executor>> link_;
    Buffers buffers_;
    refusal refused_;
};

}  // namespace detail

// A UDP ASSOCIATE: the control connection to the proxy and a UDP socket
// connected to the relay it names. Datagrams go to a host (a name, sent to
// the proxy to resolve, or an IP literal) and port; each received one comes
// with the host and port it came from. The association ends when the proxy
// closes the control connection: pending and later operations then complete
// with error::udp_association_closed. Only one proxy (a relay behind a chain
// could not be reached from here: error::udp_chain_not_supported); fragments
// are never sent, and received ones are refused (error::udp_fragmented).
//
// Like an Asio socket: at most one send and one receive pending at a time,
// handlers on the executor. Opening allocates (the control connection's
// operation, a 64 KiB receive buffer); a datagram sent or received does not
// (see udp_association).
template <typename Executor = net::any_io_executor>
class basic_udp_association {
public:
    using executor_type = Executor;

    explicit basic_udp_association(const executor_type& ex)
        : link_(std::make_shared<detail::udp_link<Executor>>(ex)) {}
    template <typename Context,
              typename = std::enable_if_t<std::is_convertible_v<Context&, net::execution_context&>>>
    explicit basic_udp_association(Context& ctx) : basic_udp_association(ctx.get_executor()) {}

    basic_udp_association(const basic_udp_association&) = delete;
    basic_udp_association& operator=(const basic_udp_association&) = delete;
    ~basic_udp_association() { close(); }

    executor_type get_executor() const { return link_->control.get_executor(); }

    // Connects to the proxy, asks for the association and opens the UDP
    // socket; completes with void(error_code). A proxy without UDP
    // gives error::udp_not_supported. An open association is closed first.
    template <typename Token>
    auto async_open(proxy_chain chain, const connect_options& options, Token&& token) {
        return net::async_compose<Token, void(error_code)>(
            detail::udp_open_op<Executor>(link_, chain, options), token, get_executor());
    }
    template <typename Token>
    auto async_open(proxy_chain chain, Token&& token) {
        return async_open(chain, connect_options{}, std::forward<Token>(token));
    }

    // Sends one datagram (the buffers' bytes, gathered behind the SOCKS
    // header) to host:port through the relay; completes with
    // void(error_code, std::size_t payload_bytes_sent).
    template <typename ConstBuffers, typename Token>
    auto async_send_to(const ConstBuffers& buffers, std::string_view host, std::uint16_t port,
                       Token&& token) {
        error_code refused;
        std::size_t header = 0;
        if (!link_->open) {
            refused = link_->closed_error();
        } else {
            // Encoded now, so that `host` need not outlive this call.
            const udp_header_result r =
                encode_udp_header(address::parse(host), port, link_->header);
            refused = to_error_code(r.error);
            header = r.size;
        }
        return net::async_compose<Token, void(error_code, std::size_t)>(
            detail::udp_send_op<Executor, ConstBuffers>(link_, buffers, header, refused), token,
            get_executor());
    }

    // Receives one datagram from the relay into the buffers (a longer payload
    // is cut, as recv() does); completes with void(error_code,
    // std::size_t payload_bytes, std::string_view source_host, std::uint16_t
    // source_port). The host text lives in the association until the next
    // receive completes. A datagram the relay framed wrongly completes with
    // its error (udp_fragmented, udp_truncated, udp_bad_address_type); the
    // association stays usable.
    template <typename MutableBuffers, typename Token>
    auto async_receive_from(const MutableBuffers& buffers, Token&& token) {
        error_code refused = link_->open ? error_code{} : link_->closed_error();
        return net::async_compose<Token,
                                  void(error_code, std::size_t, std::string_view, std::uint16_t)>(
            detail::udp_receive_op<Executor, MutableBuffers>(link_, buffers, refused), token,
            get_executor());
    }

    // Ends the association: pending operations complete with
    // net::error::operation_aborted.
    void close() {
        if (link_) link_->shut();
    }

    bool is_open() const noexcept { return link_->open; }
    // The control connection (for socket options; closing or shutting it
    // down ends the association).
    detail::tcp_socket<Executor>& control_socket() noexcept { return link_->control; }
    // The relay's address (the proxy's own when it answered 0.0.0.0 or ::).
    net::ip::udp::endpoint relay_endpoint() const { return link_->relay; }
    // The UDP socket's own address, as the relay sees it (through no NAT).
    net::ip::udp::endpoint local_endpoint(error_code& ec) const {
        return link_->datagrams.local_endpoint(ec);
    }

private:
    std::shared_ptr<detail::udp_link<Executor>> link_;
};

// On an io_context's own executor: a datagram then allocates nothing. (With
// net::any_io_executor, Asio's type-erased executor allocates twice per
// datagram to run a composed operation's steps: measured, not ours to fix.)
using udp_association = basic_udp_association<net::io_context::executor_type>;

}  // namespace leakproof
