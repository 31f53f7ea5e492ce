/* serve.c — `boxlite serve`'s process: the listening address and its safety rules, the
 * libmicrohttpd daemon (one thread per connection, a bounded number of them; behind tls.c's
 * front when TLS is on), the header deadline watchdog against slow clients, and signals (SIGHUP
 * reloads keys, SIGTERM stops). */
#include "serve.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct serve *g_serve;

/* ---- slow-client watchdog: a connection must deliver its headers within header_timeout --- */

struct watch {
    struct watch *next, *prev;
    int fd;
    double deadline; /* 0 once the headers are in */
};

static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static struct watch watch_head = {&watch_head, &watch_head, -1, 0};

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct watch *w = *socket_context;
    const union MHD_ConnectionInfo *ci;

    (void)cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        w = calloc(1, sizeof(*w));
        if (w == NULL || ci == NULL) {
            free(w);
            return;
        }
        w->fd = ci->connect_fd;
        w->deadline = now_monotonic() + g_serve->cfg->header_timeout;
        pthread_mutex_lock(&watch_mu);
        w->next = watch_head.next;
        w->prev = &watch_head;
        watch_head.next->prev = w;
        watch_head.next = w;
        pthread_mutex_unlock(&watch_mu);
        *socket_context = w;
        return;
    }
    if (w == NULL)
        return;
    pthread_mutex_lock(&watch_mu);
    w->prev->next = w->next;
    w->next->prev = w->prev;
    pthread_mutex_unlock(&watch_mu);
    free(w);
    *socket_context = NULL;
}

void watch_headers_done(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct watch *w = ci != NULL ? ci->socket_context : NULL;

    if (w == NULL)
        return;
    pthread_mutex_lock(&watch_mu);
    w->deadline = 0; /* keep-alive: the next request's headers are bounded by idle_timeout */
    pthread_mutex_unlock(&watch_mu);
}

static void *watchdog(void *arg)
{
    (void)arg;
    while (!g_serve->stopping) {
        double now = now_monotonic();
        pthread_mutex_lock(&watch_mu);
        for (struct watch *w = watch_head.next; w != &watch_head; w = w->next)
            if (w->deadline != 0 && now > w->deadline) {
                shutdown(w->fd, SHUT_RDWR); /* MHD sees the end and closes it */
                w->deadline = 0;
            }
        pthread_mutex_unlock(&watch_mu);
        usleep(250 * 1000);
    }
    return NULL;
}

/* ---- listening ---------------------------------------------------------------------------- */

static int parse_listen(struct sockaddr_storage *out, const char *s, int *loopback)
{
    char host[256];
    const char *colon = strrchr(s, ':');
    size_t hl;
    long port;
    char *end = NULL;

    memset(out, 0, sizeof(*out));
    if (colon == NULL || (hl = (size_t)(colon - s)) == 0 || hl >= sizeof(host))
        return -1;
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || colon[1] == '\0' || port < 0 || port > 65535)
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (host[0] == '[' && host[hl - 1] == ']') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            return -1;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)out;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
        return -1;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    return 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && n < (1 << 20) &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = calloc(1, (size_t)n + 1)) != NULL &&
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fprintf(stderr, "boxlite serve: http: ");
    vfprintf(stderr, fmt, ap);
}

/* The daemon: plain HTTP on sa, or, with TLS, no socket of its own: tls.c listens, does the
 * TLS on one thread and hands it each client's plaintext. */
static struct MHD_Daemon *start_daemon(const struct serve_config *cfg,
                                       const struct sockaddr_storage *sa, int tls)
{
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG | MHD_USE_POLL;

    if (sa->ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (tls)
        flags |= MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
    return MHD_start_daemon(
        flags, 0, NULL, NULL, http_access, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)sa, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
        http_request_done, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_END);
}

static int make_tmp_dir(struct serve *s)
{
    snprintf(s->tmp_dir, sizeof(s->tmp_dir), "%s/serve-tmp", boxlite_runtime_home(s->rt));
    if (mkdir(s->tmp_dir, 0700) != 0 && errno != EEXIST)
        return -1;
    return chmod(s->tmp_dir, 0700);
}

static int wait_for_signals(const sigset_t *set, const struct serve_config *cfg)
{
    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0)
            continue;
        if (sig == SIGHUP && cfg->api_key_file != NULL) {
            keys_reload(cfg->api_key_file);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            return sig;
    }
}

int serve_run(const struct serve_config *cfg)
{
    static struct serve s;
    struct sockaddr_storage sa;
    struct MHD_Daemon *d = NULL;
    char *cert = NULL, *key = NULL;
    sigset_t set;
    pthread_t wd;
    int loopback = 0, rc = 1, wd_started = 0;

    g_serve = &s;
    s.cfg = cfg;
    http_set_base(cfg->prefix);
    if (parse_listen(&sa, cfg->listen, &loopback) != 0) {
        fprintf(stderr, "boxlite serve: --listen wants ADDR:PORT, not %s\n", cfg->listen);
        goto out;
    }
    s.loopback = loopback;
    if (!loopback && (cfg->tls_cert == NULL || cfg->api_key_file == NULL)) {
        fprintf(stderr,
                "boxlite serve: refusing to listen on %s (not loopback) without "
                "--tls-cert/--tls-key and --api-key-file\n",
                cfg->listen);
        goto out;
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        fprintf(stderr, "boxlite serve: --tls-cert and --tls-key go together\n");
        goto out;
    }
    if (cfg->tls_cert != NULL &&
        ((cert = slurp(cfg->tls_cert)) == NULL || (key = slurp(cfg->tls_key)) == NULL)) {
        fprintf(stderr, "boxlite serve: cannot read %s or %s\n", cfg->tls_cert, cfg->tls_key);
        goto out;
    }
    if (cfg->api_key_file != NULL && keys_load(&s.keys, cfg->api_key_file) != 0)
        goto out;
    if (boxlite_runtime_open(&s.rt, NULL) != 0 || make_tmp_dir(&s) != 0) {
        fprintf(stderr, "boxlite serve: %s\n", boxlite_error_last());
        goto out;
    }
    if (state_open(boxlite_runtime_home(s.rt)) != 0)
        goto out;
    idem_load();
    owners_load();
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    d = start_daemon(cfg, &sa, cert != NULL);
    if (d == NULL) {
        fprintf(stderr, "boxlite serve: cannot listen on %s: %s\n", cfg->listen, strerror(errno));
        goto out;
    }
    if (cert != NULL && tls_front_start(d, &sa, cert, key, cfg->header_timeout) != 0) {
        if (errno != 0) /* else tls.c said why */
            fprintf(stderr, "boxlite serve: cannot listen on %s: %s\n", cfg->listen,
                    strerror(errno));
        goto out;
    }
    wd_started = pthread_create(&wd, NULL, watchdog, NULL) == 0;
    fprintf(stderr, "boxlite serve: listening on %s://%s%s%s\n", cert != NULL ? "https" : "http",
            cfg->listen, serve_base(), s.keys != NULL ? " (API keys required)" : "");
    wait_for_signals(&set, cfg);
    fprintf(stderr, "boxlite serve: stopping\n");
    rc = 0;
out:
    s.stopping = 1;
    execs_shutdown();    /* closes attachments so the daemon's threads can end */
    tls_front_quiesce(); /* nothing is handed to the daemon any more */
    if (d != NULL)
        MHD_stop_daemon(d);
    tls_front_stop(); /* relays the daemon's last bytes (close frames), then closes */
    if (wd_started)
        pthread_join(wd, NULL);
    tunnels_shutdown();
    boxes_shutdown();
    state_close();
    boxlite_runtime_free(s.rt);
    keys_free(s.keys);
    free(cert);
    free(key);
    return rc;
}
