// getaddrinfo_a() and its companions. glibc runs the
// requests on its own threads through its internal getaddrinfo, which our
// getaddrinfo hook never sees: left alone, every name would go to DNS.
//
// Our answers need no network (placeholders), so each request is answered
// synchronously, before getaddrinfo_a returns, by the getaddrinfo hook; then
// completion is signalled as asked (GAI_NOWAIT: SIGEV_SIGNAL by sigqueue,
// SIGEV_THREAD on a new thread, SIGEV_NONE not at all). The result is kept
// where glibc keeps it, in the gaicb (__return), so gai_error reads it from
// there; since every request is complete on return, gai_suspend has nothing
// to wait for and gai_cancel finds it done (EAI_ALLDONE).
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <new>

#include "interposer/hooks.hpp"
#include "runtime/real.hpp"

namespace {

struct notification {
    void (*fn)(sigval);
    sigval value;
};

void* notify_thread(void* arg) {
    auto* n = static_cast<notification*>(arg);
    notification copy = *n;
    delete n;
    copy.fn(copy.value);
    return nullptr;
}

// Like glibc: the caller's attributes as given, else a detached thread.
int start_thread(const sigevent& sig) noexcept {
    auto* n = new (std::nothrow) notification{sig.sigev_notify_function, sig.sigev_value};
    if (n == nullptr) return EAGAIN;
    pthread_attr_t own;
    pthread_attr_t* attr = sig.sigev_notify_attributes;
    if (attr == nullptr) {
        pthread_attr_init(&own);
        pthread_attr_setdetachstate(&own, PTHREAD_CREATE_DETACHED);
        attr = &own;
    }
    pthread_t tid;
    int rc = pthread_create(&tid, attr, notify_thread, n);
    if (attr == &own) pthread_attr_destroy(&own);
    if (rc != 0) delete n;
    return rc;
}

// 0, or EAI_SYSTEM with errno set when the notification could not be sent.
int notify(const sigevent& sig) noexcept {
    if (sig.sigev_notify == SIGEV_SIGNAL) {
        if (sigqueue(getpid(), sig.sigev_signo, sig.sigev_value) == 0) return 0;
        return EAI_SYSTEM;
    }
    if (sig.sigev_notify == SIGEV_THREAD && sig.sigev_notify_function != nullptr) {
        int rc = start_thread(sig);
        if (rc == 0) return 0;
        errno = rc;
        return EAI_SYSTEM;
    }
    return 0;  // SIGEV_NONE (and what glibc ignores too)
}

}  // namespace

LP_EXPORT int getaddrinfo_a(int mode, gaicb* list[], int n, sigevent* sig) {
    if (mode != GAI_WAIT && mode != GAI_NOWAIT) {
        errno = EINVAL;
        return EAI_SYSTEM;
    }
    for (int i = 0; i < n; ++i) {
        gaicb* r = list[i];
        if (r == nullptr) continue;
        r->ar_result = nullptr;
        r->__return =
            lp::hook::getaddrinfo(r->ar_name, r->ar_service, r->ar_request, &r->ar_result);
    }
    // GAI_WAIT ignores `sig`, as glibc does: the caller has its answers now.
    if (mode == GAI_NOWAIT && sig != nullptr) return notify(*sig);
    return 0;
}

LP_EXPORT int gai_error(gaicb* req) {
    return req->__return;
}

LP_EXPORT int gai_suspend(const gaicb* const[], int, const timespec*) {
    return 0;
}

LP_EXPORT int gai_cancel(gaicb*) {
    return EAI_ALLDONE;
}
