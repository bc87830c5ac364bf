/* A plain C epoll echo server: the floor that benches/compare/run.sh
 * measures the others against.
 *
 *   cc -O2 -o epoll_echo epoll_echo.c && ./epoll_echo PORT
 *
 * Single-threaded, level-triggered epoll, bound to 127.0.0.1 (PORT 0 = any),
 * prints "listening on 127.0.0.1:PORT". Reads go into one static 64 KiB
 * buffer and are written straight back; only the part the kernel did not
 * take is copied into a per-connection heap buffer, and while it exists the
 * connection waits for EPOLLOUT instead of reading (backpressure). An idle
 * connection therefore costs the kernel's socket and nothing in this
 * process but its slot in a pointer array. TCP_NODELAY as in the other
 * peers.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (64 * 1024)
#define MAX_EVENTS 1024

struct pending { size_t len, off; char data[]; };

static char buf[BUF];
static struct pending **pend; /* indexed by fd; NULL when nothing is pending */
static int npend;

static void drop_conn(int ep, int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    if (fd < npend && pend[fd]) { free(pend[fd]); pend[fd] = NULL; }
}

static int ensure(int fd) {
    if (fd < npend) return 0;
    int n = npend ? npend : 1024;
    while (n <= fd) n *= 2;
    struct pending **p = realloc(pend, n * sizeof *p);
    if (!p) return -1;
    memset(p + npend, 0, (n - npend) * sizeof *p);
    pend = p; npend = n;
    return 0;
}

/* Write what is pending; 1 if everything went, 0 if blocked, -1 on error. */
static int flush_pending(int fd) {
    struct pending *p = pend[fd];
    while (p->off < p->len) {
        ssize_t w = write(fd, p->data + p->off, p->len - p->off);
        if (w < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        p->off += (size_t)w;
    }
    free(p); pend[fd] = NULL;
    return 1;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 4096)) { perror("listen"); return 1; }
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    printf("epoll echo listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = ls }, evs[MAX_EVENTS];
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    for (;;) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        if (n < 0) { if (errno == EINTR) continue; perror("epoll_wait"); return 1; }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                for (;;) {
                    int c = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                    if (c < 0) break;
                    if (ensure(c)) { close(c); continue; }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ce = { .events = EPOLLIN, .data.fd = c };
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            if (pend[fd]) { /* EPOLLOUT (or error) while data waits */
                int r = flush_pending(fd);
                if (r < 0) { drop_conn(ep, fd); continue; }
                if (r == 1) {
                    struct epoll_event ce = { .events = EPOLLIN, .data.fd = fd };
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ce);
                }
                continue;
            }
            ssize_t r = read(fd, buf, BUF);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) { drop_conn(ep, fd); continue; }
            if (r < 0) continue;
            ssize_t w = write(fd, buf, (size_t)r);
            if (w < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK) { drop_conn(ep, fd); continue; }
                w = 0;
            }
            if (w < r) {
                struct pending *p = malloc(sizeof *p + (size_t)(r - w));
                if (!p) { drop_conn(ep, fd); continue; }
                p->len = (size_t)(r - w); p->off = 0;
                memcpy(p->data, buf + w, p->len);
                pend[fd] = p;
                struct epoll_event ce = { .events = EPOLLOUT, .data.fd = fd };
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ce);
            }
        }
    }
}
