/*
 * libuv's side of benches/compare/libuv.sh: the workloads of libuv's own
 * test/benchmark-*.c programs, written against the libuv of the system
 * (Debian's libuv1-dev), since that package ships no benchmark runner.
 *
 *   uv_bench echo PORT                 a libuv echo server on 127.0.0.1:PORT
 *   uv_bench ping_pongs PORT SECS      one connection, "PING\n" round trips
 *   uv_bench pound PORT CONNS SECS     CONNS clients: connect, write 1 byte,
 *                                      close on the first read, reconnect
 *   uv_bench million_timers N          arm, fire and close N one-shot timers,
 *                                      timeouts rising 1 ms per 1,000
 *
 * Each prints one line in the words of libuv's programs, then one JSON
 * object (for the script). Build: cc -O2 -o uv_bench uv_bench.c -luv
 */
#include <uv.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define CHECK(expr)                                                       \
  do {                                                                    \
    int check_rc_ = (expr);                                               \
    if (check_rc_ < 0) {                                                  \
      fprintf(stderr, "uv_bench: %s: %s\n", #expr, uv_strerror(check_rc_)); \
      exit(2);                                                            \
    }                                                                     \
  } while (0)

static uv_loop_t* loop;
static struct sockaddr_in server_addr;

/* ---- echo server ---------------------------------------------------- */

typedef struct {
  uv_write_t req;
  uv_buf_t buf;
} echo_write_t;

static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
  (void)h;
  buf->base = malloc(suggested);
  buf->len = buf->base ? suggested : 0;
}

static void on_close_free(uv_handle_t* h) { free(h); }

static void on_echo_written(uv_write_t* req, int status) {
  echo_write_t* w = (echo_write_t*)req;
  (void)status;
  free(w->buf.base);
  free(w);
}

static void on_echo_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  if (nread < 0) {
    free(buf->base);
    uv_close((uv_handle_t*)s, on_close_free);
    return;
  }
  if (nread == 0) {
    free(buf->base);
    return;
  }
  echo_write_t* w = malloc(sizeof(*w));
  w->buf = uv_buf_init(buf->base, (unsigned)nread);
  if (uv_write(&w->req, s, &w->buf, 1, on_echo_written) < 0) {
    free(buf->base);
    free(w);
    uv_close((uv_handle_t*)s, on_close_free);
  }
}

static void on_echo_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  uv_tcp_t* c = malloc(sizeof(*c));
  CHECK(uv_tcp_init(loop, c));
  if (uv_accept(server, (uv_stream_t*)c) == 0) {
    uv_tcp_nodelay(c, 1);
    CHECK(uv_read_start((uv_stream_t*)c, on_alloc, on_echo_read));
  } else {
    uv_close((uv_handle_t*)c, on_close_free);
  }
}

static int run_echo(void) {
  uv_tcp_t server;
  CHECK(uv_tcp_init(loop, &server));
  CHECK(uv_tcp_bind(&server, (const struct sockaddr*)&server_addr, 0));
  CHECK(uv_listen((uv_stream_t*)&server, 511, on_echo_connection));
  fprintf(stderr, "uv_bench echo listening\n");
  return uv_run(loop, UV_RUN_DEFAULT);
}

/* ---- ping_pongs ------------------------------------------------------ */

static const char PING[] = "PING\n";
static uv_tcp_t pinger;
static uv_connect_t pinger_req;
static uint64_t pp_deadline_ms, pp_start_ns, pp_end_ns;
static long pongs;
static size_t pp_state;
static char pp_slab[65536];

static void on_slab(uv_handle_t* h, size_t s, uv_buf_t* buf) {
  (void)h;
  (void)s;
  buf->base = pp_slab;
  buf->len = sizeof(pp_slab);
}

static void on_ping_written(uv_write_t* req, int status) {
  (void)status;
  free(req);
}

static void write_ping(void) {
  uv_write_t* req = malloc(sizeof(*req));
  uv_buf_t buf = uv_buf_init((char*)PING, sizeof(PING) - 1);
  CHECK(uv_write(req, (uv_stream_t*)&pinger, &buf, 1, on_ping_written));
}

static void on_pong(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  if (nread < 0) {
    uv_close((uv_handle_t*)s, NULL);
    return;
  }
  for (ssize_t i = 0; i < nread; i++) {
    if (buf->base[i] != PING[pp_state]) {
      fprintf(stderr, "uv_bench: wrong byte in the echo\n");
      exit(1);
    }
    pp_state = (pp_state + 1) % (sizeof(PING) - 1);
    if (pp_state == 0) {
      pongs++;
      if (uv_now(loop) >= pp_deadline_ms) {
        pp_end_ns = uv_hrtime();
        uv_close((uv_handle_t*)s, NULL);
        return;
      }
      write_ping();
    }
  }
}

static void on_pinger_connect(uv_connect_t* req, int status) {
  CHECK(status);
  uv_tcp_nodelay((uv_tcp_t*)req->handle, 1);
  pp_start_ns = uv_hrtime();
  pp_deadline_ms = uv_now(loop) + pp_deadline_ms;
  write_ping();
  CHECK(uv_read_start(req->handle, on_slab, on_pong));
}

static int run_ping_pongs(double secs) {
  pp_deadline_ms = (uint64_t)(secs * 1000);
  CHECK(uv_tcp_init(loop, &pinger));
  CHECK(uv_tcp_connect(&pinger_req, &pinger, (const struct sockaddr*)&server_addr,
                       on_pinger_connect));
  uv_run(loop, UV_RUN_DEFAULT);
  double s = (double)(pp_end_ns - pp_start_ns) / 1e9;
  double rate = s > 0 ? pongs / s : 0;
  fprintf(stderr, "ping_pongs: %.0f roundtrips/s\n", rate);
  printf("{\"workload\":\"ping_pongs\",\"peer\":\"libuv\",\"ops\":%ld,\"secs\":%.6f,\"ops_per_sec\":%.1f}\n",
         pongs, s, rate);
  return 0;
}

/* ---- pound ----------------------------------------------------------- */

#define MAX_POUND 10000

typedef struct {
  uv_tcp_t tcp;
  uv_connect_t conn_req;
  uv_write_t write_req;
} pound_conn_t;

static pound_conn_t* pound_conns;
static uint64_t pound_until_ms;
static long closed_streams, conns_failed;
static char QS[] = "Q";

static void pound_connect(pound_conn_t* c);

static void on_pound_close(uv_handle_t* h) {
  closed_streams++;
  if (uv_now(loop) < pound_until_ms) pound_connect((pound_conn_t*)h->data);
}

static void on_pound_written(uv_write_t* req, int status) {
  if (status < 0 && !uv_is_closing((uv_handle_t*)req->handle)) {
    conns_failed++;
    uv_close((uv_handle_t*)req->handle, on_pound_close);
  }
}

static void on_pound_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  (void)buf;
  if (nread == 0) return;
  if (nread < 0 && nread != UV_EOF) conns_failed++;
  if (!uv_is_closing((uv_handle_t*)s)) uv_close((uv_handle_t*)s, on_pound_close);
}

static void on_pound_connect(uv_connect_t* req, int status) {
  pound_conn_t* c = (pound_conn_t*)req->data;
  if (status < 0) {
    conns_failed++;
    uv_close((uv_handle_t*)&c->tcp, on_pound_close);
    return;
  }
  CHECK(uv_read_start((uv_stream_t*)&c->tcp, on_slab, on_pound_read));
  uv_buf_t buf = uv_buf_init(QS, 1);
  CHECK(uv_write(&c->write_req, (uv_stream_t*)&c->tcp, &buf, 1, on_pound_written));
}

static void pound_connect(pound_conn_t* c) {
  CHECK(uv_tcp_init(loop, &c->tcp));
  c->tcp.data = c;
  c->conn_req.data = c;
  CHECK(uv_tcp_connect(&c->conn_req, &c->tcp, (const struct sockaddr*)&server_addr,
                       on_pound_connect));
}

static int run_pound(int conns, double secs) {
  if (conns < 1 || conns > MAX_POUND) {
    fprintf(stderr, "uv_bench: CONNS must be 1..%d\n", MAX_POUND);
    return 2;
  }
  pound_conns = calloc((size_t)conns, sizeof(*pound_conns));
  uv_update_time(loop);
  pound_until_ms = uv_now(loop) + (uint64_t)(secs * 1000);
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < conns; i++) pound_connect(&pound_conns[i]);
  uv_run(loop, UV_RUN_DEFAULT);
  double s = (double)(uv_hrtime() - t0) / 1e9;
  double rate = closed_streams / s;
  fprintf(stderr, "tcp-conn-pound-%d: %.0f accepts/s (%ld failed)\n", conns, rate, conns_failed);
  printf("{\"workload\":\"pound\",\"peer\":\"libuv\",\"connections\":%d,\"ops\":%ld,\"failed\":%ld,"
         "\"secs\":%.6f,\"ops_per_sec\":%.1f}\n",
         conns, closed_streams, conns_failed, s, rate);
  free(pound_conns);
  return 0;
}

/* ---- million_timers -------------------------------------------------- */

/* User + system CPU seconds of this process so far. */
static double cpu_seconds(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static long timer_cb_called, close_cb_called;
static void on_timer(uv_timer_t* h) { (void)h; timer_cb_called++; }
static void on_timer_close(uv_handle_t* h) { (void)h; close_cb_called++; }

static int run_timers(long n) {
  uv_timer_t* timers = malloc((size_t)n * sizeof(*timers));
  if (!timers) {
    fprintf(stderr, "uv_bench: no memory for %ld timers\n", n);
    return 2;
  }
  uint64_t timeout = 0;
  double cpu0 = cpu_seconds();
  uint64_t before_all = uv_hrtime();
  for (long i = 0; i < n; i++) {
    if (i % 1000 == 0) timeout++;
    CHECK(uv_timer_init(loop, timers + i));
    CHECK(uv_timer_start(timers + i, on_timer, timeout, 0));
  }
  uint64_t before_run = uv_hrtime();
  uv_run(loop, UV_RUN_DEFAULT);
  uint64_t after_run = uv_hrtime();
  for (long i = 0; i < n; i++) uv_close((uv_handle_t*)(timers + i), on_timer_close);
  uv_run(loop, UV_RUN_DEFAULT);
  uint64_t after_all = uv_hrtime();
  double cpu = cpu_seconds() - cpu0;
  free(timers);
  if (timer_cb_called != n || close_cb_called != n) {
    fprintf(stderr, "uv_bench: %ld fired, %ld closed of %ld\n", timer_cb_called, close_cb_called, n);
    return 1;
  }
  fprintf(stderr, "%.2f seconds total\n%.2f seconds init\n%.2f seconds dispatch\n%.2f seconds cleanup\n",
          (after_all - before_all) / 1e9, (before_run - before_all) / 1e9,
          (after_run - before_run) / 1e9, (after_all - after_run) / 1e9);
  printf("{\"workload\":\"million_timers\",\"peer\":\"libuv\",\"timers\":%ld,\"fired\":%ld,"
         "\"init_s\":%.6f,\"dispatch_s\":%.6f,\"cleanup_s\":%.6f,\"total_s\":%.6f,\"cpu_s\":%.2f}\n",
         n, timer_cb_called, (before_run - before_all) / 1e9, (after_run - before_run) / 1e9,
         (after_all - after_run) / 1e9, (after_all - before_all) / 1e9, cpu);
  return 0;
}

static int port_of(const char* s) {
  int p = atoi(s);
  if (p < 1 || p > 65535) {
    fprintf(stderr, "uv_bench: bad port %s\n", s);
    exit(2);
  }
  return p;
}

int main(int argc, char** argv) {
  loop = uv_default_loop();
  if (argc >= 3 && strcmp(argv[1], "echo") == 0) {
    CHECK(uv_ip4_addr("127.0.0.1", port_of(argv[2]), &server_addr));
    return run_echo();
  }
  if (argc >= 4 && strcmp(argv[1], "ping_pongs") == 0) {
    CHECK(uv_ip4_addr("127.0.0.1", port_of(argv[2]), &server_addr));
    return run_ping_pongs(atof(argv[3]));
  }
  if (argc >= 5 && strcmp(argv[1], "pound") == 0) {
    CHECK(uv_ip4_addr("127.0.0.1", port_of(argv[2]), &server_addr));
    return run_pound(atoi(argv[3]), atof(argv[4]));
  }
  if (argc >= 3 && strcmp(argv[1], "million_timers") == 0) {
    long n = atol(argv[2]);
    if (n < 1 || n > 50000000) {
      fprintf(stderr, "uv_bench: N must be 1..50000000\n");
      return 2;
    }
    return run_timers(n);
  }
  fprintf(stderr,
          "usage: uv_bench echo PORT | ping_pongs PORT SECS | pound PORT CONNS SECS | "
          "million_timers N\n");
  return 2;
}
