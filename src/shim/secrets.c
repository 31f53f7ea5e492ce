/* secrets.c — the box's secrets proxy (docs/security.md, Secrets): an HTTP proxy the guest
 * reaches at 10.0.2.100:3128 (a slirp forward to secrets.sock in the box directory). CONNECT
 * to a host that some secret may go to is intercepted: TLS is ended with a certificate for
 * that host made by the box's own CA (secrets-ca.key, 0600, never leaves the host; ALPN
 * offers http/1.1 only), each request is rewritten by secrets_http.c (placeholders replaced
 * in its line, headers and body) and goes on over TLS to the real server, whose certificate
 * is verified. Plain-HTTP requests are treated the same without TLS. Any other CONNECT is a
 * plain tunnel. Every destination passes the box's egress policy first
 * (shim_net_dest_allowed), as a direct connection would.
 *
 * One thread accepts; one thread a connection (at most PROXY_CONNS), blocking sockets with
 * send/receive timeouts, fixed buffers (plus one held body): a peer that stalls only holds
 * its own connection, for at most IO_TIMEOUT_S a step and IDLE_MS without traffic. */
#include "shim.h"

#include "secrets.h"
#include "secrets_http.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define PROXY_SOCK   "secrets.sock"
#define CA_KEY       "secrets-ca.key"
#define CA_CERT      "secrets-ca.crt"
#define PROXY_CONNS  64
#define IO_TIMEOUT_S 30
#define IDLE_MS      300000
#define BUF          16384

struct shim_secrets {
    const struct shim_net *net;
    struct bl_secret *sec;
    size_t nsec;
    EVP_PKEY *ca_key, *leaf_key;
    X509 *ca;
    char *ca_pem;
    SSL_CTX *server, *client;
    int listen_fd, stop_fd;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int active, stopping;
    int fds[PROXY_CONNS]; /* guest sides of live connections, -1 for a free slot */
};

/* One side of a connection: a socket, with TLS or without. */
struct side {
    int fd;
    SSL *ssl;
};

struct conn {
    struct shim_secrets *s;
    struct side g, u; /* the guest, the upstream server */
    int connected;    /* u is open */
    struct sx x;      /* the guest's requests (x.host, x.port: where they go) */
};

/* ---- I/O ---- */

/* Bytes read, 0 at the end, -1 on an error, AGAIN when TLS read only records of its own (a
 * session ticket): SSL_MODE_AUTO_RETRY is off, so that this never waits for more after
 * poll said there was something. */
#define AGAIN (-2)
static ssize_t side_read(struct side *x, void *buf, size_t len)
{
    int r, e;

    if (!x->ssl)
        return read(x->fd, buf, len);
    r = SSL_read(x->ssl, buf, (int)len);
    if (r > 0)
        return r;
    e = SSL_get_error(x->ssl, r);
    return e == SSL_ERROR_ZERO_RETURN                              ? 0
           : e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? AGAIN
                                                                   : -1;
}

static int side_write(struct side *x, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t w = x->ssl ? SSL_write(x->ssl, p, (int)(len > BUF ? BUF : len))
                           : send(x->fd, p, len, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static void timeouts(int fd)
{
    struct timeval tv = {IO_TIMEOUT_S, 0};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* ---- the CA and the certificates it makes ---- */

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ok = ext && X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static X509 *new_cert(const char *cn, EVP_PKEY *key, long days)
{
    X509 *c = X509_new();
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    int ok = c && RAND_bytes(serial, sizeof(serial)) == 1;

    serial[0] &= 0x7f;
    bn = ok ? BN_bin2bn(serial, sizeof(serial), NULL) : NULL;
    ok = ok && bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) && X509_set_version(c, 2) &&
         X509_gmtime_adj(X509_getm_notBefore(c), -3600) &&
         X509_gmtime_adj(X509_getm_notAfter(c), days * 86400) && X509_set_pubkey(c, key) &&
         X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_UTF8,
                                    (const unsigned char *)cn, -1, -1, 0);
    BN_free(bn);
    if (!ok) {
        X509_free(c);
        c = NULL;
    }
    return c;
}

static int make_ca(struct shim_secrets *s, const char *id)
{
    char cn[96];
    int ok;

    snprintf(cn, sizeof(cn), "boxlite secrets CA for box %s", id);
    s->ca_key = EVP_EC_gen("P-256");
    s->ca = s->ca_key ? new_cert(cn, s->ca_key, 3650) : NULL;
    ok = s->ca && X509_set_issuer_name(s->ca, X509_get_subject_name(s->ca)) &&
         add_ext(s->ca, s->ca, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") == 0 &&
         add_ext(s->ca, s->ca, NID_key_usage, "critical,keyCertSign,cRLSign") == 0 &&
         add_ext(s->ca, s->ca, NID_subject_key_identifier, "hash") == 0 &&
         X509_sign(s->ca, s->ca_key, EVP_sha256());
    return ok ? 0 : -1;
}

static int save_ca(struct shim_secrets *s)
{
    mode_t old = umask(077);
    FILE *k = fopen(CA_KEY ".tmp", "w"), *c = fopen(CA_CERT ".tmp", "w");
    int ok = k && c && PEM_write_PrivateKey(k, s->ca_key, NULL, NULL, 0, NULL, NULL) &&
             PEM_write_X509(c, s->ca);

    ok = (k && fclose(k) == 0 && ok) ? ok : 0;
    ok = (c && fclose(c) == 0 && ok) ? ok : 0;
    umask(old);
    ok = ok && chmod(CA_CERT ".tmp", 0644) == 0 && rename(CA_KEY ".tmp", CA_KEY) == 0 &&
         rename(CA_CERT ".tmp", CA_CERT) == 0;
    return ok ? 0 : -1;
}

static int load_ca(struct shim_secrets *s)
{
    FILE *k = fopen(CA_KEY, "r"), *c = fopen(CA_CERT, "r");

    if (k)
        s->ca_key = PEM_read_PrivateKey(k, NULL, NULL, NULL);
    if (c)
        s->ca = PEM_read_X509(c, NULL, NULL, NULL);
    if (k)
        fclose(k);
    if (c)
        fclose(c);
    return s->ca_key && s->ca && X509_check_private_key(s->ca, s->ca_key) == 1 ? 0 : -1;
}

/* The box's CA: the one its directory has, else a new one saved there. */
static int ca_setup(struct shim_secrets *s, const char *id)
{
    BIO *mem = NULL;
    char *data = NULL;
    long len;

    if (load_ca(s) != 0) {
        EVP_PKEY_free(s->ca_key);
        X509_free(s->ca);
        s->ca_key = NULL;
        s->ca = NULL;
        if (make_ca(s, id) != 0 || save_ca(s) != 0)
            return -1;
    }
    mem = BIO_new(BIO_s_mem());
    if (!mem || !PEM_write_bio_X509(mem, s->ca) || (len = BIO_get_mem_data(mem, &data)) <= 0 ||
        !(s->ca_pem = strndup(data, (size_t)len))) {
        BIO_free(mem);
        return -1;
    }
    BIO_free(mem);
    s->leaf_key = EVP_EC_gen("P-256");
    return s->leaf_key ? 0 : -1;
}

/* A certificate for host (a name or an IPv4 literal) signed by the box's CA. */
static X509 *leaf_for(struct shim_secrets *s, const char *host)
{
    struct in_addr a;
    char san[300];
    X509 *c = new_cert(host, s->leaf_key, 30);

    snprintf(san, sizeof(san), "%s:%s", inet_pton(AF_INET, host, &a) == 1 ? "IP" : "DNS", host);
    if (c && X509_set_issuer_name(c, X509_get_subject_name(s->ca)) &&
        add_ext(c, s->ca, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
        add_ext(c, s->ca, NID_ext_key_usage, "serverAuth") == 0 &&
        add_ext(c, s->ca, NID_subject_alt_name, san) == 0 &&
        add_ext(c, s->ca, NID_authority_key_identifier, "keyid:always") == 0 &&
        X509_sign(c, s->ca_key, EVP_sha256()))
        return c;
    X509_free(c);
    return NULL;
}

/* The guest's side of an intercepted TLS speaks HTTP/1.1 only (the rewriter parses
 * HTTP/1.x): h2 is never chosen, so a client that offers it falls back. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    for (unsigned int i = 0; i < inlen; i += 1u + in[i])
        if (in[i] == 8 && i + 9 <= inlen && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
    return SSL_TLSEXT_ERR_NOACK;
}

static int tls_setup(struct shim_secrets *s)
{
    static const unsigned char http11[] = "\x08http/1.1";
    const char *test_ca = getenv("BOXLITE_SECRETS_UPSTREAM_CA");

    s->server = SSL_CTX_new(TLS_server_method());
    s->client = SSL_CTX_new(TLS_client_method());
    if (!s->server || !s->client)
        return -1;
    SSL_CTX_set_min_proto_version(s->server, TLS1_2_VERSION);
    SSL_CTX_set_min_proto_version(s->client, TLS1_2_VERSION);
    SSL_CTX_set_verify(s->client, SSL_VERIFY_PEER, NULL);
    SSL_CTX_clear_mode(s->server, SSL_MODE_AUTO_RETRY);
    SSL_CTX_clear_mode(s->client, SSL_MODE_AUTO_RETRY);
    SSL_CTX_set_alpn_select_cb(s->server, alpn_select, NULL);
    if (SSL_CTX_set_alpn_protos(s->client, http11, sizeof(http11) - 1) != 0)
        return -1;
    if (test_ca && *test_ca) /* tests: a server made by the test */
        return SSL_CTX_load_verify_locations(s->client, test_ca, NULL) == 1 ? 0 : -1;
    return SSL_CTX_set_default_verify_paths(s->client) == 1 ? 0 : -1;
}

/* ---- the upstream connection ---- */

static int connect_to(struct conn *c)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[8];
    int fd = -1, policy = 0;

    snprintf(port, sizeof(port), "%u", c->x.port);
    if (getaddrinfo(c->x.host, port, &hints, &res) != 0) {
        snprintf(c->x.why, sizeof(c->x.why), "cannot resolve %.100s", c->x.host);
        return -1;
    }
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        uint32_t ip = ntohl(((struct sockaddr_in *)(void *)a->ai_addr)->sin_addr.s_addr);
        if (!shim_net_dest_allowed(c->s->net, c->x.host, ip, c->x.port))
            continue;
        policy = 1;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        timeouts(fd);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(c->x.why, sizeof(c->x.why), "%s %.100s:%u",
                 policy ? "cannot connect to" : "the box's network policy denies", c->x.host,
                 c->x.port);
        fprintf(stderr, "boxlite-shim: secrets proxy: %s\n", c->x.why);
        return -1;
    }
    c->u.fd = fd;
    c->connected = 1;
    return 0;
}

static int upstream_tls(struct conn *c)
{
    c->u.ssl = SSL_new(c->s->client);
    if (!c->u.ssl || !SSL_set_fd(c->u.ssl, c->u.fd) ||
        !SSL_set_tlsext_host_name(c->u.ssl, c->x.host) || !SSL_set1_host(c->u.ssl, c->x.host) ||
        SSL_connect(c->u.ssl) != 1) {
        snprintf(c->x.why, sizeof(c->x.why), "TLS to %.100s failed (its certificate?)", c->x.host);
        fprintf(stderr, "boxlite-shim: secrets proxy: %s\n", c->x.why);
        return -1;
    }
    return 0;
}

static int guest_tls(struct conn *c)
{
    X509 *leaf = leaf_for(c->s, c->x.host);
    int ok;

    c->g.ssl = leaf ? SSL_new(c->s->server) : NULL;
    ok = c->g.ssl && SSL_use_certificate(c->g.ssl, leaf) == 1 &&
         SSL_use_PrivateKey(c->g.ssl, c->s->leaf_key) == 1 && SSL_set_fd(c->g.ssl, c->g.fd) &&
         SSL_accept(c->g.ssl) == 1;
    X509_free(leaf);
    return ok ? 0 : -1;
}

/* ---- a connection ---- */

static int to_upstream(void *ctx, const void *buf, size_t len)
{
    struct conn *c = ctx;

    return side_write(&c->u, buf, len);
}

/* A plain proxy request's destination (x->host:x->port, the first of the connection). */
static int route(void *ctx, struct sx *x)
{
    struct conn *c = ctx;

    return c->connected ? 0 : connect_to(c);
}

static void answer(struct conn *c, const char *status)
{
    char msg[400];

    snprintf(msg, sizeof(msg),
             "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s\n",
             status, strlen(c->x.why) + 1, c->x.why);
    (void)side_write(&c->g, msg, strlen(msg));
}

/* After CONNECT's head: a tunnel, intercepted when a secret may go to its host. */
static int open_tunnel(struct conn *c, size_t leftover)
{
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";

    if (connect_to(c) != 0) {
        answer(c, "403 Forbidden");
        return -1;
    }
    if (side_write(&c->g, ok, sizeof(ok) - 1) != 0)
        return -1;
    if (!sx_wants(c->s->sec, c->s->nsec, c->x.host, c->x.port))
        return 1; /* relayed as it is */
    if (leftover) /* a client that sent its TLS hello before the answer */
        return -1;
    c->x.substitute = 1;
    if (guest_tls(c) != 0 || upstream_tls(c) != 0)
        return -1;
    c->x.tls = 1;
    sx_init(&c->x);
    return 0;
}

/* Bytes from the guest: parsed (a request is forwarded as its head completes), or relayed
 * once the connection is a plain tunnel (raw). -1 to end the connection. */
static int from_guest(struct conn *c, const char *buf, size_t n, int *raw)
{
    size_t done;
    int rc;

    if (*raw)
        return side_write(&c->u, buf, n);
    done = sx_feed(&c->x, buf, n);
    if (sx_failed(&c->x)) {
        if (!c->x.why[0])
            snprintf(c->x.why, sizeof(c->x.why), "a request the proxy does not understand");
        answer(c, c->connected ? "502 Bad Gateway" : "403 Forbidden");
        return -1;
    }
    if (!c->x.p.upgrade)
        return 0;
    if (c->x.tunnel) {
        rc = open_tunnel(c, n - done);
        if (rc < 0)
            return -1;
        *raw = rc == 1;
        return *raw && done < n ? side_write(&c->u, buf + done, n - done) : 0;
    }
    *raw = 1; /* an upgraded connection (a WebSocket): no more requests on it */
    return done < n ? side_write(&c->u, buf + done, n - done) : 0;
}

static void serve(struct conn *c)
{
    char buf[BUF];
    int raw = 0;

    sx_init(&c->x);
    for (;;) {
        struct pollfd pfd[2] = {{c->g.fd, POLLIN, 0}, {c->connected ? c->u.fd : -1, POLLIN, 0}};
        int gp = c->g.ssl && SSL_pending(c->g.ssl) > 0, up = c->u.ssl && SSL_pending(c->u.ssl) > 0;
        ssize_t n;
        if (!gp && !up && poll(pfd, 2, IDLE_MS) <= 0)
            return;
        if (gp || (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            n = side_read(&c->g, buf, sizeof(buf));
            if (n == AGAIN)
                continue;
            if (n <= 0 || from_guest(c, buf, (size_t)n, &raw) != 0)
                return;
        }
        if (c->connected && (up || (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))) {
            n = side_read(&c->u, buf, sizeof(buf));
            if (n == AGAIN)
                continue;
            if (n <= 0 || side_write(&c->g, buf, (size_t)n) != 0)
                return;
        }
    }
}

static void conn_end(struct conn *c, int slot)
{
    struct shim_secrets *s = c->s;

    if (c->g.ssl)
        SSL_free(c->g.ssl);
    if (c->u.ssl)
        SSL_free(c->u.ssl);
    if (c->u.fd >= 0)
        close(c->u.fd);
    sx_clear(&c->x);
    pthread_mutex_lock(&s->mu);
    close(c->g.fd);
    s->fds[slot] = -1;
    s->active--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    memset(c, 0, sizeof(*c));
    free(c);
}

struct job {
    struct conn *c;
    int slot;
};

static void *conn_main(void *arg)
{
    struct job j = *(struct job *)arg;

    free(arg);
    serve(j.c);
    conn_end(j.c, j.slot);
    ERR_clear_error();
    OPENSSL_thread_stop();
    return NULL;
}

static void take(struct shim_secrets *s, int fd)
{
    struct job *j = malloc(sizeof(*j));
    struct conn *c = calloc(1, sizeof(*c));
    pthread_attr_t attr;
    pthread_t t;
    int slot = -1;

    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < PROXY_CONNS && slot < 0 && !s->stopping; i++)
        if (s->fds[i] < 0)
            slot = i;
    if (slot >= 0 && j && c) {
        s->fds[slot] = fd;
        s->active++;
    }
    pthread_mutex_unlock(&s->mu);
    if (slot < 0 || !j || !c) {
        close(fd);
        free(j);
        free(c);
        return;
    }
    *c = (struct conn){.s = s, .g = {fd, NULL}, .u = {-1, NULL}};
    c->x =
        (struct sx){.sec = s->sec, .nsec = s->nsec, .send = to_upstream, .route = route, .ctx = c};
    *j = (struct job){c, slot};
    timeouts(fd);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, conn_main, j) != 0) {
        free(j);
        conn_end(c, slot);
    }
    pthread_attr_destroy(&attr);
}

static void *accept_main(void *arg)
{
    struct shim_secrets *s = arg;

    for (;;) {
        struct pollfd pfd[2] = {{s->listen_fd, POLLIN, 0}, {s->stop_fd, POLLIN, 0}};
        int fd;
        if (poll(pfd, 2, -1) < 0 && errno != EINTR)
            break;
        if (pfd[1].revents)
            break;
        fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            take(s, fd);
    }
    return NULL;
}

/* ---- life ---- */

static int listen_proxy(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    mode_t old = umask(077);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    strcpy(sa.sun_path, PROXY_SOCK);
    unlink(sa.sun_path);
    if (fd >= 0 && (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0)) {
        close(fd);
        fd = -1;
    }
    umask(old);
    return fd;
}

int shim_secrets_open(struct shim_secrets **out, const struct shim_net *net, const char *id,
                      char *err, size_t cap)
{
    struct shim_secrets *s = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = -1;

    *out = NULL;
    if (access(BL_SECRETS_FILE, F_OK) != 0)
        return 0;
    s = calloc(1, sizeof(*s));
    if (s)
        s->listen_fd = s->stop_fd = -1;
    if (!s || bl_read_file(&text, &len, BL_SECRETS_FILE, 1u << 20) != 0 ||
        bl_secrets_parse(&s->sec, &s->nsec, text) != 0) {
        snprintf(err, cap, "the box's secrets cannot be read");
        goto out;
    }
    for (int i = 0; i < PROXY_CONNS; i++)
        s->fds[i] = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->net = net;
    s->listen_fd = listen_proxy();
    s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->listen_fd < 0 || s->stop_fd < 0 || ca_setup(s, id) != 0 || tls_setup(s) != 0) {
        snprintf(err, cap, "the secrets proxy could not be set up");
        goto out;
    }
    *out = s;
    s = NULL;
    rc = 0;
out:
    if (text)
        memset(text, 0, len);
    free(text);
    shim_secrets_free(s);
    return rc;
}

const char *shim_secrets_sock(void)
{
    return PROXY_SOCK;
}

const char *shim_secrets_ca_pem(const struct shim_secrets *s)
{
    return s ? s->ca_pem : NULL;
}

int shim_secrets_run(struct shim_secrets *s)
{
    if (!s || s->started)
        return 0;
    if (pthread_create(&s->thread, NULL, accept_main, s) != 0)
        return -1;
    s->started = 1;
    return 0;
}

void shim_secrets_free(struct shim_secrets *s)
{
    uint64_t one = 1;

    if (!s)
        return;
    if (s->started) {
        if (write(s->stop_fd, &one, sizeof(one)) != sizeof(one))
            fprintf(stderr, "boxlite-shim: secrets proxy: cannot stop\n");
        pthread_join(s->thread, NULL);
        pthread_mutex_lock(&s->mu);
        s->stopping = 1;
        for (int i = 0; i < PROXY_CONNS; i++)
            if (s->fds[i] >= 0)
                shutdown(s->fds[i], SHUT_RDWR);
        while (s->active > 0)
            pthread_cond_wait(&s->cv, &s->mu);
        pthread_mutex_unlock(&s->mu);
    }
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->stop_fd >= 0)
        close(s->stop_fd);
    unlink(PROXY_SOCK);
    SSL_CTX_free(s->server);
    SSL_CTX_free(s->client);
    EVP_PKEY_free(s->ca_key);
    EVP_PKEY_free(s->leaf_key);
    X509_free(s->ca);
    free(s->ca_pem);
    bl_secrets_free(s->sec, s->nsec);
    free(s);
}
