// fork(): everything the interposer does around it, in one place. One set
// of handlers, registered when the library is loaded, calls each part in
// order; no other module registers its own (tests/unit/interposer/
// symbols_test.py checks that no other object refers to pthread_atfork).
//
//   before    the fd table's lock (fdtable::guard()) is taken, so that the
//             child gets the table in a known state (no socket's state or
//             handshake half-changed by another thread);
//   parent    it is released;
//   child     the pending connects are the parent's: the child forgets them
//             and its helper thread (it has none), then releases the lock;
//             the configuration derives again what depends on the pid (the
//             isolated hops' user names, LEAKPROOF_ISOLATE); the child names
//             the supervisor its ptracer (Yama does not carry a parent's
//             declaration over to its children: interposer/ptracer.hpp).
//
// Nothing else needs it: the placeholder map is shared memory by design,
// the rest of the fd table (peers, epoll records) describes descriptors and
// epoll sets the child inherits as they are, the real-function table is the same in
// the child, and the log reads the pid per line.
#include <pthread.h>

#include "interposer/pending.hpp"
#include "interposer/ptracer.hpp"
#include "runtime/config.hpp"

namespace {

void before() noexcept {
    lp::async::before_fork();
}

void in_parent() noexcept {
    lp::async::after_fork_parent();
}

void in_child() noexcept {
    lp::async::after_fork_child();
    lp::config::after_fork_child();
    lp::ptracer::declare();
}

// At load: a fork may come before any hook has run (a constructor of
// another library), and registering costs one call.
__attribute__((constructor)) void register_fork_handlers() noexcept {
    pthread_atfork(before, in_parent, in_child);
}

}  // namespace
