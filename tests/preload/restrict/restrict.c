/* Runs a command under a restriction leakproof meets where users run it,
 * reproduced with a seccomp filter of its own (this kernel has no Yama):
 *
 *   restrict getfd-eperm -- CMD...   pidfd_getfd and process_vm_readv/writev
 *       fail with EPERM, as Yama's ptrace_scope 1 makes them fail for a
 *       process that is not the target's ancestor, and as a container
 *       runtime's default seccomp profile does without CAP_SYS_PTRACE;
 *   restrict no-listener -- CMD...   seccomp() with
 *       SECCOMP_FILTER_FLAG_NEW_LISTENER fails with EINVAL (a kernel older
 *       than 5.0, or a sandbox that refuses user notification);
 *   restrict no-seccomp -- CMD...    seccomp() fails with ENOSYS (a kernel
 *       without it, or a sandbox that forbids it).
 *
 * The filter holds for CMD and everything below it, leakproof's supervisor
 * included; no_new_privs is set (a non-root process needs it to install a
 * filter).
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOAD(off) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define IF_EQ(k, skip_yes, skip_no) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (skip_yes), (skip_no))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
#define ARG_LOW(i) (offsetof(struct seccomp_data, args) + (i) * sizeof(__u64))

static int install(struct sock_filter* code, unsigned short len) {
    struct sock_fprog prog = {len, code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

static int getfd_eperm(void) {
    struct sock_filter code[] = {
        LOAD(offsetof(struct seccomp_data, arch)),
        IF_EQ(AUDIT_ARCH_X86_64, 1, 0),
        RET(SECCOMP_RET_ALLOW),
        LOAD(offsetof(struct seccomp_data, nr)),
        IF_EQ(SYS_pidfd_getfd, 3, 0),
        IF_EQ(SYS_process_vm_readv, 2, 0),
        IF_EQ(SYS_process_vm_writev, 1, 0),
        RET(SECCOMP_RET_ALLOW),
        RET(SECCOMP_RET_ERRNO | EPERM),
    };
    return install(code, sizeof code / sizeof *code);
}

static int no_listener(void) {
    struct sock_filter code[] = {
        LOAD(offsetof(struct seccomp_data, arch)),
        IF_EQ(AUDIT_ARCH_X86_64, 1, 0),
        RET(SECCOMP_RET_ALLOW),
        LOAD(offsetof(struct seccomp_data, nr)),
        IF_EQ(SYS_seccomp, 1, 0),
        RET(SECCOMP_RET_ALLOW),
        LOAD(ARG_LOW(1)), /* flags */
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, SECCOMP_FILTER_FLAG_NEW_LISTENER),
        IF_EQ(0, 0, 1),
        RET(SECCOMP_RET_ALLOW),
        RET(SECCOMP_RET_ERRNO | EINVAL),
    };
    return install(code, sizeof code / sizeof *code);
}

static int no_seccomp(void) {
    struct sock_filter code[] = {
        LOAD(offsetof(struct seccomp_data, arch)),
        IF_EQ(AUDIT_ARCH_X86_64, 1, 0),
        RET(SECCOMP_RET_ALLOW),
        LOAD(offsetof(struct seccomp_data, nr)),
        IF_EQ(SYS_seccomp, 0, 1),
        RET(SECCOMP_RET_ERRNO | ENOSYS),
        RET(SECCOMP_RET_ALLOW),
    };
    return install(code, sizeof code / sizeof *code);
}

int main(int argc, char** argv) {
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: restrict getfd-eperm|no-listener|no-seccomp -- CMD [ARGS...]\n");
        return 2;
    }
    int rc = strcmp(argv[1], "getfd-eperm") == 0   ? getfd_eperm()
             : strcmp(argv[1], "no-listener") == 0 ? no_listener()
             : strcmp(argv[1], "no-seccomp") == 0  ? no_seccomp()
                                                   : (errno = EINVAL, -1);
    if (rc != 0) {
        fprintf(stderr, "restrict: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    execvp(argv[3], argv + 3);
    fprintf(stderr, "restrict: %s: %s\n", argv[3], strerror(errno));
    return 127;
}
