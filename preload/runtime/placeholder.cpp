#include "runtime/placeholder.hpp"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "runtime/config.hpp"
#include "runtime/real.hpp"

namespace lp::placeholder {
namespace {

constexpr std::uint32_t magic = 0x4c50504d;  // "LPPM"
constexpr std::uint32_t layout_version = 3;  // 2: entries placed by hash; 3: credentials
constexpr std::uint64_t reuse_after_ns = 30ULL * 1000 * 1000 * 1000;
constexpr std::uint32_t v4_base = 0xF0000001;  // 240.0.0.1 is entry 0

struct entry {
    std::uint64_t last_used;  // CLOCK_MONOTONIC ns; 0 = free
    std::uint32_t hash;
    std::uint16_t len;
    char name[256];
};

struct shared_map {
    std::uint32_t magic;
    std::uint32_t version;
    std::uint32_t capacity;
    pthread_mutex_t mutex;
    credentials creds[max_credentials];  // written once by the wrapper, read-only after
    entry entries[placeholder::capacity];
};

shared_map* map = nullptr;
pthread_once_t once = PTHREAD_ONCE_INIT;

std::uint64_t monotonic_ns() noexcept {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

std::atomic<clock_fn> clock_now{monotonic_ns};

std::uint64_t now_ns() noexcept {
    return clock_now.load(std::memory_order_relaxed)();
}

char lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

// DNS names compare case-insensitively, so the hash does too.
std::uint32_t hash_of(std::string_view s) noexcept {
    std::uint32_t h = 2166136261u;
    for (char c : s) h = (h ^ static_cast<std::uint8_t>(lower(c))) * 16777619u;
    return h;
}

bool same_name(const entry& e, std::string_view s) noexcept {
    if (e.len != s.size()) return false;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (lower(e.name[i]) != lower(s[i])) return false;
    return true;
}

void init_map(shared_map* m) noexcept {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&m->mutex, &attr);
    pthread_mutexattr_destroy(&attr);
    m->version = layout_version;
    m->capacity = capacity;
    m->magic = magic;
}

// `path` is /proc/<pid>/fd/<n>, a symbolic link to the memory file: it
// must be followed.
shared_map* open_file(const char* path) noexcept {
    int fd = ::open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return nullptr;
    struct stat st;
    void* p = MAP_FAILED;
    if (fstat(fd, &st) == 0 && st.st_size == static_cast<off_t>(sizeof(shared_map)))
        p = mmap(nullptr, sizeof(shared_map), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    real::fn().close(fd);
    if (p == MAP_FAILED) return nullptr;
    auto* m = static_cast<shared_map*>(p);
    if (m->magic != magic || m->version != layout_version || m->capacity != capacity) {
        munmap(p, sizeof(shared_map));
        return nullptr;
    }
    return m;
}

void attach() noexcept {
    const char* path = config::get().map_path;
    if (path[0] != '\0') map = open_file(path);
    if (map != nullptr) return;
    void* p = mmap(nullptr, sizeof(shared_map), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) return;
    map = static_cast<shared_map*>(p);
    init_map(map);
}

// Holds the map's mutex; recovers it if its previous owner died.
class lock {
public:
    lock() noexcept {
        pthread_once(&once, attach);
        if (map == nullptr) return;
        int rc = pthread_mutex_lock(&map->mutex);
        if (rc == EOWNERDEAD) {
            pthread_mutex_consistent(&map->mutex);
            rc = 0;
        }
        ok_ = rc == 0;
    }
    ~lock() {
        if (ok_) pthread_mutex_unlock(&map->mutex);
    }
    lock(const lock&) = delete;
    lock& operator=(const lock&) = delete;
    explicit operator bool() const noexcept { return ok_; }

private:
    bool ok_ = false;
};

constexpr std::uint32_t slot_mask = capacity - 1;
static_assert((capacity & slot_mask) == 0, "the probe wraps with a mask");

// Where `name` (hash `h`) is, with `found`; else the never-used entry it
// goes to, or capacity when the map is full. A name goes to the first
// never-used entry from its hash's slot on (linear probing), so finding it
// touches one or two of the map's pages instead of all of them. Entries
// are reused, never emptied: a probe may stop at the first never-used one.
// Once the map is full a new name takes the least recently used entry
// wherever it is; every entry is in use then, and the probe visits them
// all.
std::uint32_t probe(std::uint32_t h, std::string_view name, bool& found) noexcept {
    found = false;
    for (std::uint32_t k = 0; k < capacity; ++k) {
        std::uint32_t i = (h + k) & slot_mask;
        const entry& e = map->entries[i];
        if (e.last_used == 0) return i;
        if (e.hash == h && same_name(e, name)) {
            found = true;
            return i;
        }
    }
    return capacity;
}

// When the map is full: the entry to reuse for a new name, or capacity if
// none may be (all used in the last 30 seconds).
std::uint32_t victim(std::uint64_t now) noexcept {
    std::uint32_t best = capacity;
    std::uint64_t oldest = ~0ULL;
    for (std::uint32_t i = 0; i < capacity; ++i) {
        std::uint64_t t = map->entries[i].last_used;
        if (t < oldest) {
            oldest = t;
            best = i;
        }
    }
    if (best != capacity && now - oldest < reuse_after_ns) return capacity;
    return best;
}

bool index_of(const net::ip& a, std::uint32_t& index) noexcept {
    std::uint32_t off;
    if (a.is_v4()) {
        std::uint32_t v = a.v4();
        if (v < v4_base) return false;
        off = v - v4_base;
    } else {
        if (!in_range(a)) return false;
        off =
            (static_cast<std::uint32_t>(a.b[12]) << 24 | static_cast<std::uint32_t>(a.b[13]) << 16 |
             static_cast<std::uint32_t>(a.b[14]) << 8 | a.b[15]) -
            1;
    }
    if (off >= capacity) return false;
    index = off;
    return true;
}

}  // namespace

bool assign(std::string_view name, std::uint32_t& index) noexcept {
    if (name.empty() || name.size() > 255) return false;
    lock held;
    if (!held) return false;
    std::uint32_t h = hash_of(name);
    std::uint64_t now = now_ns();
    bool found = false;
    std::uint32_t i = probe(h, name, found);
    if (found) {
        map->entries[i].last_used = now;
        index = i;
        return true;
    }
    if (i == capacity) i = victim(now);
    if (i == capacity) return false;
    entry& e = map->entries[i];
    std::memcpy(e.name, name.data(), name.size());
    e.len = static_cast<std::uint16_t>(name.size());
    e.hash = h;
    e.last_used = now;
    index = i;
    return true;
}

bool in_range(const net::ip& a) noexcept {
    if (a.is_v4()) return (a.v4() >> 28) == 0xF;
    static constexpr std::uint8_t prefix[8] = {0x01, 0x00, 0, 0, 0, 0, 0, 0};
    return std::memcmp(a.b.data(), prefix, 8) == 0;
}

bool name_of(const net::ip& a, char (&out)[256], std::size_t& len) noexcept {
    std::uint32_t i;
    if (!index_of(a, i)) return false;
    lock held;
    if (!held) return false;
    entry& e = map->entries[i];
    if (e.last_used == 0) return false;
    e.last_used = now_ns();
    std::memcpy(out, e.name, e.len);
    out[e.len] = '\0';
    len = e.len;
    return true;
}

void v4_of(std::uint32_t index, std::uint8_t (&out)[4]) noexcept {
    std::uint32_t v = v4_base + index;
    out[0] = static_cast<std::uint8_t>(v >> 24);
    out[1] = static_cast<std::uint8_t>(v >> 16);
    out[2] = static_cast<std::uint8_t>(v >> 8);
    out[3] = static_cast<std::uint8_t>(v);
}

void v6_of(std::uint32_t index, std::uint8_t (&out)[16]) noexcept {
    std::memset(out, 0, 16);
    out[0] = 0x01;
    std::uint32_t v = index + 1;
    out[12] = static_cast<std::uint8_t>(v >> 24);
    out[13] = static_cast<std::uint8_t>(v >> 16);
    out[14] = static_cast<std::uint8_t>(v >> 8);
    out[15] = static_cast<std::uint8_t>(v);
}

void use_clock(clock_fn now) noexcept {
    clock_now.store(now != nullptr ? now : monotonic_ns, std::memory_order_relaxed);
}

// Sealed at its size: nobody in the tree can shrink it under the others'
// mappings (which would turn their next lookup into SIGBUS).
int create(const credentials* creds, std::size_t count, int& fd) noexcept {
    if (count > max_credentials) return EINVAL;
    int mfd = ::memfd_create("leakproof-map", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0) return errno;
    // Above stderr: the supervisor keeps it among its own descriptors.
    if (mfd <= STDERR_FILENO) {
        int moved = real::fn().fcntl(mfd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        int err = errno;
        real::fn().close(mfd);
        if (moved < 0) return err;
        mfd = moved;
    }
    int err = 0;
    void* p = MAP_FAILED;
    if (ftruncate(mfd, sizeof(shared_map)) != 0 ||
        real::fn().fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        err = errno;
    else
        p = mmap(nullptr, sizeof(shared_map), PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    if (err == 0 && p == MAP_FAILED) err = errno;
    if (err != 0) {
        real::fn().close(mfd);
        return err;
    }
    auto* m = static_cast<shared_map*>(p);
    for (std::size_t i = 0; i < count; ++i) m->creds[i] = creds[i];
    init_map(m);
    munmap(p, sizeof(shared_map));
    fd = mfd;
    return 0;
}

bool read_credentials(const char* path, credentials (&out)[max_credentials]) noexcept {
    if (path[0] == '\0') return false;
    shared_map* m = open_file(path);
    if (m == nullptr) return false;
    for (std::size_t i = 0; i < max_credentials; ++i) out[i] = m->creds[i];
    munmap(m, sizeof(shared_map));
    return true;
}

}  // namespace lp::placeholder
