#include "interposer/ptracer.hpp"

#include <pthread.h>
#include <sys/prctl.h>

#include "runtime/config.hpp"

namespace lp::ptracer {
namespace {

__attribute__((constructor)) void declare_at_load() noexcept {
    declare();
    pthread_atfork(nullptr, nullptr, declare);
}

}  // namespace

void declare() noexcept {
    long pid = config::get().supervisor_pid;
    if (pid > 0) (void)prctl(PR_SET_PTRACER, pid, 0, 0, 0);
}

}  // namespace lp::ptracer
