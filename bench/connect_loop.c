/* The program every contender wraps: N sequential connects by name, each
 * followed by one echoed byte (so the connection is really through), timed
 * one by one. Prints "median_us p90_us connect_median_us" on stdout: the
 * whole round, and the part up to connect() returning (lookup + connect,
 * which is where an interposer does its handshake).
 * Usage: connect_loop N HOST PORT */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void* a, const void* b) {
    const double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

/* One connect by name and one echoed byte; 0 on success. `connected` gets
 * the time connect() returned. */
static int one_round(const char* host, const char* port, double* connected) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) return -1;
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    int ok = fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0;
    *connected = now_us();
    char c = 'x';
    ok = ok && write(fd, &c, 1) == 1 && read(fd, &c, 1) == 1 && c == 'x';
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    return ok ? 0 : -1;
}

int main(int argc, char** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: connect_loop N HOST PORT\n");
        return 2;
    }
    const int n = atoi(argv[1]);
    double* t = calloc((size_t)(n > 0 ? n : 1), sizeof *t);
    double* c = calloc((size_t)(n > 0 ? n : 1), sizeof *c);
    for (int i = 0; i < n; ++i) {
        const double start = now_us();
        double connected = 0;
        if (one_round(argv[2], argv[3], &connected) != 0) {
            fprintf(stderr, "connect_loop: round %d to %s:%s failed\n", i, argv[2], argv[3]);
            return 1;
        }
        t[i] = now_us() - start;
        c[i] = connected - start;
    }
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    qsort(c, (size_t)n, sizeof *c, cmp_double);
    printf("%.1f %.1f %.1f\n", n ? t[n / 2] : 0.0, n ? t[n * 9 / 10] : 0.0, n ? c[n / 2] : 0.0);
    free(t);
    free(c);
    return 0;
}
