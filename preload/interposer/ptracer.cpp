#include "interposer/ptracer.hpp"

#include <sys/prctl.h>

#include "runtime/config.hpp"

namespace lp::ptracer {
namespace {

// After a fork, interposer/fork.cpp declares again in the child.
__attribute__((constructor)) void declare_at_load() noexcept {
    declare();
}

}  // namespace

void declare() noexcept {
    long pid = config::get().supervisor_pid;
    if (pid > 0) (void)prctl(PR_SET_PTRACER, pid, 0, 0, 0);
}

}  // namespace lp::ptracer
