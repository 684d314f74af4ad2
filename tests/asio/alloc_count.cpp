// Counts every allocation of the Asio test program, so that a test can show
// that a datagram costs none. In a file of its own: inlined next to the code
// under test, GCC would see new and free() side by side and warn.
#include <atomic>
#include <cstdlib>
#include <new>

namespace lptest {
std::atomic<long> allocations{0};
}

void* operator new(std::size_t n) {
    lptest::allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
