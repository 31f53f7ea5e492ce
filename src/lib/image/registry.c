/* registry.c — the Distribution API v2 client on libcurl: anonymous bearer tokens from the
 * WWW-Authenticate challenge, basic auth, static tokens, TLS options, bounded transfers. */
#include "registry.h"
#include "bounds.h"
#include "curl_lazy.h"
#include "error.h"
#include "manifest.h"
#include "util.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOKEN_MAX          (64 * 1024)
#define ERRBODY_MAX        2048
#define CONNECT_TIMEOUT_MS 30000

void bl_registry_conf_clear(struct bl_registry_conf *c)
{
    if (!c)
        return;
    free(c->host);
    free(c->username);
    free(c->password);
    free(c->token);
    free(c->ca_file);
    memset(c, 0, sizeof(*c));
}

void bl_www_auth_clear(struct bl_www_auth *a)
{
    if (!a)
        return;
    free(a->realm);
    free(a->service);
    free(a->scope);
    memset(a, 0, sizeof(*a));
}

/* A token or quoted-string value starting at *p; advances *p. NULL when malformed. */
static char *auth_value(const char **p)
{
    const char *s = *p;
    char *v = malloc(strlen(s) + 1);
    size_t n = 0;

    if (!v)
        return NULL;
    if (*s == '"') {
        s++;
        while (*s && *s != '"') {
            if (*s == '\\' && s[1])
                s++;
            v[n++] = *s++;
        }
        if (*s != '"') {
            free(v);
            return NULL;
        }
        s++;
    } else {
        while (*s && *s != ',' && !isspace((unsigned char)*s))
            v[n++] = *s++;
    }
    v[n] = '\0';
    *p = s;
    return v;
}

int bl_www_auth_parse(struct bl_www_auth *out, const char *header)
{
    struct bl_www_auth a;
    const char *p = header;
    size_t n = 0;

    memset(&a, 0, sizeof(a));
    if (!header || strlen(header) > BL_WWW_AUTH_MAX)
        return bl_err(BOXLITE_EPROTO, "WWW-Authenticate header missing or too long");
    while (isspace((unsigned char)*p))
        p++;
    while (isalpha((unsigned char)p[n]) && n < sizeof(a.scheme) - 1) {
        a.scheme[n] = (char)tolower((unsigned char)p[n]);
        n++;
    }
    p += n;
    if (n == 0 || (strcmp(a.scheme, "bearer") != 0 && strcmp(a.scheme, "basic") != 0))
        return bl_err(BOXLITE_EPROTO, "unsupported WWW-Authenticate scheme in \"%.80s\"", header);
    while (*p) {
        char key[32];
        char *val;
        size_t k = 0;
        while (isspace((unsigned char)*p) || *p == ',')
            p++;
        if (!*p)
            break;
        while ((isalnum((unsigned char)*p) || *p == '_' || *p == '-') && k < sizeof(key) - 1)
            key[k++] = (char)tolower((unsigned char)*p++);
        key[k] = '\0';
        if (k == 0 || *p != '=') {
            bl_www_auth_clear(&a);
            return bl_err(BOXLITE_EPROTO, "malformed WWW-Authenticate \"%.80s\"", header);
        }
        p++;
        val = auth_value(&p);
        if (!val) {
            bl_www_auth_clear(&a);
            return bl_err(BOXLITE_EPROTO, "malformed WWW-Authenticate \"%.80s\"", header);
        }
        if (strcmp(key, "realm") == 0 && !a.realm)
            a.realm = val;
        else if (strcmp(key, "service") == 0 && !a.service)
            a.service = val;
        else if (strcmp(key, "scope") == 0 && !a.scope)
            a.scope = val;
        else
            free(val);
    }
    *out = a;
    return 0;
}

struct bl_registry {
    char *host, *base, *repo;
    struct bl_registry_conf conf; /* borrowed strings */
    char *bearer;                 /* token in use, or NULL */
    int use_basic;
    CURL *curl;
    int64_t deadline_ms; /* the whole pull (BOXLITE_PULL_TIMEOUT) */
};

static const struct bl_curl *cu; /* libcurl's table, set by the first bl_registry_open */

int bl_registry_open(struct bl_registry **out, const char *host, const char *repository,
                     const struct bl_registry_conf *conf)
{
    struct bl_registry *r;
    const char *api = strcmp(host, "docker.io") == 0 ? "registry-1.docker.io" : host;
    int rc = bl_curl_load(&cu);

    if (rc != 0)
        return rc;
    r = calloc(1, sizeof(*r));
    if (!r)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    if (conf)
        r->conf = *conf;
    r->host = strdup(host);
    r->repo = strdup(repository);
    r->base = bl_strdupf("%s://%s", r->conf.http ? "http" : "https", api);
    r->curl = cu->easy_init();
    r->deadline_ms = bl_now_ms() + (int64_t)bl_limit(BL_LIMIT_PULL_SECS) * 1000;
    if (r->conf.token && *r->conf.token)
        r->bearer = strdup(r->conf.token);
    if (!r->host || !r->repo || !r->base || !r->curl ||
        (r->conf.token && *r->conf.token && !r->bearer)) {
        bl_registry_free(r);
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    *out = r;
    return 0;
}

void bl_registry_free(struct bl_registry *r)
{
    if (!r)
        return;
    if (r->curl)
        cu->easy_cleanup(r->curl);
    free(r->host);
    free(r->base);
    free(r->repo);
    free(r->bearer);
    free(r);
}

struct xfer {
    CURL *curl;
    bl_sink_fn sink;
    void *ctx;
    int sink_failed;
    char errbody[ERRBODY_MAX];
    size_t errlen;
    char ctype[256];
    char *www_auth;
};

static size_t on_header(char *buf, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    size_t n = size * nmemb;
    size_t klen;
    const char *v;

    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) { /* a new response (after a redirect) */
        x->ctype[0] = '\0';
        free(x->www_auth);
        x->www_auth = NULL;
        return n;
    }
    v = memchr(buf, ':', n);
    if (!v)
        return n;
    klen = (size_t)(v - buf);
    v++;
    while (v < buf + n && (*v == ' ' || *v == '\t'))
        v++;
    size_t vlen = (size_t)(buf + n - v);
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    if (klen == 12 && strncasecmp(buf, "content-type", 12) == 0) {
        size_t c = vlen < sizeof(x->ctype) - 1 ? vlen : sizeof(x->ctype) - 1;
        memcpy(x->ctype, v, c);
        x->ctype[c] = '\0';
        char *semi = strchr(x->ctype, ';');
        if (semi)
            *semi = '\0';
    } else if (klen == 16 && strncasecmp(buf, "www-authenticate", 16) == 0 && !x->www_auth &&
               vlen <= BL_WWW_AUTH_MAX) {
        x->www_auth = strndup(v, vlen);
    }
    return n;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    size_t n = size * nmemb;
    long code = 0;

    cu->easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200 && code != 206) {
        size_t c = n < sizeof(x->errbody) - 1 - x->errlen ? n : sizeof(x->errbody) - 1 - x->errlen;
        memcpy(x->errbody + x->errlen, buf, c);
        x->errlen += c;
        x->errbody[x->errlen] = '\0';
        return n;
    }
    if (x->sink(x->ctx, buf, n) != 0) {
        x->sink_failed = 1;
        return 0;
    }
    return n;
}

/* This request's time: BOXLITE_REQUEST_TIMEOUT, or what is left of the pull's. */
static int64_t request_ms(const struct bl_registry *r, int *by_pull)
{
    int64_t left = r->deadline_ms - bl_now_ms();
    int64_t one = (int64_t)bl_limit(BL_LIMIT_BLOB_SECS) * 1000;

    *by_pull = left <= one;
    return left <= one ? left : one;
}

static void set_common(struct bl_registry *r, CURL *c, int64_t timeout_ms)
{
    const char *protos = r->conf.http ? "http,https" : "https";

    cu->easy_reset(c);
    cu->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    cu->easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    cu->easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    cu->easy_setopt(c, CURLOPT_PROTOCOLS_STR, protos);
    cu->easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, protos);
    cu->easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    cu->easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    cu->easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)bl_limit(BL_LIMIT_STALL_SECS));
    cu->easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 1));
    cu->easy_setopt(c, CURLOPT_USERAGENT, "boxlite/" BOXLITE_VERSION);
    cu->easy_setopt(c, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
    if (r->conf.skip_verify) {
        cu->easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        cu->easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (r->conf.ca_file && *r->conf.ca_file)
        cu->easy_setopt(c, CURLOPT_CAINFO, r->conf.ca_file);
}

/* One GET; *code_out is the final HTTP status. Transport failures are errors. */
static int http_get(long *code_out, struct bl_registry *r, const char *url, const char *accept,
                    int with_auth, struct xfer *x)
{
    struct curl_slist *hdrs = NULL;
    char *acc = accept ? bl_strdupf("Accept: %s", accept) : NULL;
    char *auth = NULL;
    CURLcode cc;
    long code = 0;
    int rc = 0, by_pull = 0;
    int64_t ms = request_ms(r, &by_pull);

    if (ms <= 0) {
        free(acc);
        return bl_err(BOXLITE_ETIMEOUT, "GET %s: the pull took longer than %llu s (%s)", url,
                      (unsigned long long)bl_limit(BL_LIMIT_PULL_SECS),
                      bl_limit_env(BL_LIMIT_PULL_SECS));
    }
    set_common(r, r->curl, ms);
    x->curl = r->curl;
    cu->easy_setopt(r->curl, CURLOPT_URL, url);
    cu->easy_setopt(r->curl, CURLOPT_HEADERFUNCTION, on_header);
    cu->easy_setopt(r->curl, CURLOPT_HEADERDATA, x);
    cu->easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
    cu->easy_setopt(r->curl, CURLOPT_WRITEDATA, x);
    if (acc)
        hdrs = cu->slist_append(hdrs, acc);
    if (with_auth && r->bearer) {
        auth = bl_strdupf("Authorization: Bearer %s", r->bearer);
        if (auth)
            hdrs = cu->slist_append(hdrs, auth);
    } else if (with_auth && r->use_basic) {
        cu->easy_setopt(r->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        cu->easy_setopt(r->curl, CURLOPT_USERNAME, r->conf.username);
        cu->easy_setopt(r->curl, CURLOPT_PASSWORD, r->conf.password ? r->conf.password : "");
    }
    cu->easy_setopt(r->curl, CURLOPT_HTTPHEADER, hdrs);
    cc = cu->easy_perform(r->curl);
    cu->easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &code);
    if (cc == CURLE_WRITE_ERROR && x->sink_failed) {
        rc = BOXLITE_EIO; /* the sink set the message */
    } else if (cc == CURLE_OPERATION_TIMEDOUT && by_pull) {
        rc = bl_err(BOXLITE_ETIMEOUT, "GET %s: the pull took longer than %llu s (%s)", url,
                    (unsigned long long)bl_limit(BL_LIMIT_PULL_SECS),
                    bl_limit_env(BL_LIMIT_PULL_SECS));
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        rc = bl_err(BL_REGISTRY_RETRYABLE,
                    "GET %s: %s (limits: %llu s per request, %s; %llu s "
                    "without a byte, %s)",
                    url, cu->easy_strerror(cc), (unsigned long long)bl_limit(BL_LIMIT_BLOB_SECS),
                    bl_limit_env(BL_LIMIT_BLOB_SECS),
                    (unsigned long long)bl_limit(BL_LIMIT_STALL_SECS),
                    bl_limit_env(BL_LIMIT_STALL_SECS));
    } else if (cc != CURLE_OK) {
        int retry = cc == CURLE_PARTIAL_FILE || cc == CURLE_RECV_ERROR ||
                    cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_GOT_NOTHING ||
                    cc == CURLE_SEND_ERROR || cc == CURLE_COULDNT_CONNECT;
        rc = bl_err(retry ? BL_REGISTRY_RETRYABLE : BOXLITE_EIO, "GET %s: %s", url,
                    cu->easy_strerror(cc));
    }
    cu->easy_setopt(r->curl, CURLOPT_HTTPHEADER, NULL);
    cu->slist_free_all(hdrs);
    free(acc);
    free(auth);
    if (rc == 0)
        *code_out = code;
    return rc;
}

struct membuf {
    char *data;
    size_t len, cap, max;
    const char *what;
};

static int mem_sink(void *ctx, const void *buf, size_t n)
{
    struct membuf *m = ctx;

    if (m->len + n > m->max)
        return bl_err(BOXLITE_EPROTO, "%s is over the %zu byte cap", m->what, m->max);
    if (m->len + n + 1 > m->cap) {
        size_t cap = (m->len + n + 1) * 2;
        char *d = realloc(m->data, cap);
        if (!d)
            return bl_err(BOXLITE_ENOMEM, "out of memory");
        m->data = d;
        m->cap = cap;
    }
    memcpy(m->data + m->len, buf, n);
    m->len += n;
    m->data[m->len] = '\0';
    return 0;
}

/* The authority (host[:port]) of url into out; 0 when it has one without user info. */
static int url_authority(char *out, size_t cap, const char *url)
{
    const char *p = strstr(url, "://");
    size_t n;

    if (!p)
        return -1;
    p += 3;
    n = strcspn(p, "/?#");
    if (n == 0 || n >= cap || memchr(p, '@', n))
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* Basic credentials configured for this registry may go to the token realm only on the
 * registry's own host (Docker Hub's auth.docker.io is its known token host): a challenge
 * naming any other host gets an anonymous token request. */
static int realm_may_get_credentials(const struct bl_registry *r, const char *realm)
{
    char auth[512], own[512];
    const char *api = strstr(r->base, "://") + 3;

    if (url_authority(auth, sizeof(auth), realm) != 0)
        return 0;
    if (strcasecmp(auth, r->host) == 0 || strcasecmp(auth, api) == 0)
        return 1;
    snprintf(own, sizeof(own), "%s:%s", api, r->conf.http ? "80" : "443");
    if (strcasecmp(auth, own) == 0)
        return 1;
    return strcmp(r->host, "docker.io") == 0 && strcasecmp(auth, "auth.docker.io") == 0;
}

/* Fetch a bearer token for this repository from the challenge's realm. */
static int fetch_token(struct bl_registry *r, const struct bl_www_auth *a)
{
    struct membuf mb = {.max = TOKEN_MAX, .what = "token response"};
    struct xfer x = {.sink = mem_sink, .ctx = &mb};
    char *scope = NULL, *service = NULL, *url = NULL, *esc_scope = NULL;
    json_t *o = NULL;
    const char *tok;
    long code = 0;
    int rc;

    if (!a->realm || (strncmp(a->realm, "https://", 8) != 0 &&
                      !(r->conf.http && strncmp(a->realm, "http://", 7) == 0)))
        return bl_err(BOXLITE_EPROTO,
                      "registry %s: token realm \"%.120s\" is not an allowed "
                      "URL",
                      r->host, a->realm ? a->realm : "(none)");
    scope = bl_strdupf("repository:%s:pull", r->repo);
    esc_scope = scope ? cu->easy_escape(r->curl, scope, 0) : NULL;
    service = a->service ? cu->easy_escape(r->curl, a->service, 0) : NULL;
    url =
        bl_strdupf("%s%sscope=%s%s%s", a->realm, strchr(a->realm, '?') ? "&" : "?",
                   esc_scope ? esc_scope : "", service ? "&service=" : "", service ? service : "");
    if (!url || !esc_scope) {
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
        goto out;
    }
    r->use_basic = r->conf.username && *r->conf.username && realm_may_get_credentials(r, a->realm);
    free(r->bearer);
    r->bearer = NULL;
    rc = http_get(&code, r, url, "application/json", 1, &x);
    r->use_basic = 0;
    if (rc != 0)
        goto out;
    if (code == 401 || code == 403) {
        rc = bl_err(BOXLITE_EINVAL,
                    "registry %s: authentication failed (%s): %ld from the "
                    "token service",
                    r->host,
                    r->conf.username ? "check the credentials" : "credentials are required", code);
        goto out;
    }
    if (code != 200) {
        rc = bl_err(BOXLITE_EPROTO, "registry %s: token service answered %ld", r->host, code);
        goto out;
    }
    o = json_loadb(mb.data ? mb.data : "", mb.len, 0, NULL);
    tok = json_string_value(json_object_get(o, "token"));
    if (!tok)
        tok = json_string_value(json_object_get(o, "access_token"));
    if (!tok || !*tok || strlen(tok) > TOKEN_MAX || strpbrk(tok, "\r\n")) {
        rc = bl_err(BOXLITE_EPROTO, "registry %s: the token service sent no usable token", r->host);
        goto out;
    }
    r->bearer = strdup(tok);
    rc = r->bearer ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");
out:
    json_decref(o);
    free(mb.data);
    cu->free(esc_scope);
    cu->free(service);
    free(scope);
    free(url);
    return rc;
}

/* After a 401: decide how to authenticate, or fail with a clear message. */
static int answer_challenge(struct bl_registry *r, const char *www_auth)
{
    struct bl_www_auth a;
    int rc;

    if (!www_auth)
        return bl_err(BOXLITE_EINVAL, "registry %s: 401 unauthorized without a challenge", r->host);
    rc = bl_www_auth_parse(&a, www_auth);
    if (rc != 0)
        return bl_err_wrap(rc, "registry %s", r->host);
    if (strcmp(a.scheme, "basic") == 0) {
        if (r->conf.username && *r->conf.username)
            r->use_basic = 1;
        else
            rc = bl_err(BOXLITE_EINVAL,
                        "registry %s: authentication required (basic auth): "
                        "configure a username and password for it",
                        r->host);
    } else {
        rc = fetch_token(r, &a);
    }
    bl_www_auth_clear(&a);
    return rc;
}

/* GET url into sink, answering one authentication challenge. */
static int get_authed(long *code_out, struct bl_registry *r, const char *url, const char *accept,
                      bl_sink_fn sink, void *ctx, char *ctype, size_t ctype_cap, int *name_unknown)
{
    long code = 0;
    int rc = 0;

    for (int attempt = 0; attempt < 2; attempt++) {
        struct xfer x = {.sink = sink, .ctx = ctx};
        rc = http_get(&code, r, url, accept, 1, &x);
        if (rc == 0 && code == 401 && attempt == 0) {
            int authed = r->bearer || r->use_basic;
            rc = authed && !x.www_auth ? 0 : answer_challenge(r, x.www_auth);
            free(x.www_auth);
            if (rc != 0)
                return rc;
            continue;
        }
        if (rc == 0 && code == 401)
            rc = bl_err(BOXLITE_EINVAL, "registry %s: authentication failed (401 unauthorized)%s",
                        r->host, r->conf.username ? ": check the credentials" : "");
        else if (rc == 0 && code == 403)
            rc = bl_err(BOXLITE_EINVAL, "registry %s: access to %s denied (403)", r->host, r->repo);
        if (rc == 0 && ctype)
            snprintf(ctype, ctype_cap, "%s", x.ctype);
        if (name_unknown)
            *name_unknown = strstr(x.errbody, "NAME_UNKNOWN") != NULL;
        free(x.www_auth);
        break;
    }
    if (rc == 0)
        *code_out = code;
    return rc;
}

int bl_registry_manifest(char **body_out, size_t *len_out, char **ctype_out, struct bl_registry *r,
                         const char *reference)
{
    struct membuf mb = {.max = BL_MANIFEST_MAX, .what = "manifest"};
    char ctype[256] = "";
    char *url = bl_strdupf("%s/v2/%s/manifests/%s", r->base, r->repo, reference);
    char *ct = NULL;
    int name_unknown = 0;
    long code = 0;
    int rc;

    if (!url)
        return BOXLITE_ENOMEM;
    rc = get_authed(&code, r, url, bl_manifest_accept(), mem_sink, &mb, ctype, sizeof(ctype),
                    &name_unknown);
    if (rc == 0 && code == 404 && name_unknown)
        rc = bl_err(BOXLITE_ENOTFOUND, "repository %s not found on %s (404)", r->repo, r->host);
    else if (rc == 0 && code == 404)
        rc = bl_err(BOXLITE_ENOTFOUND, "%s/%s: tag or digest %s not found (404)", r->host, r->repo,
                    reference);
    else if (rc == 0 && code != 200)
        rc = bl_err(BOXLITE_EPROTO, "%s/%s: manifest request answered %ld", r->host, r->repo, code);
    if (rc == 0) {
        ct = strdup(ctype);
        if (!ct || !mb.data)
            rc = bl_err(BOXLITE_EPROTO, "%s/%s: empty manifest", r->host, r->repo);
    }
    if (rc == 0) {
        *body_out = mb.data;
        *len_out = mb.len;
        *ctype_out = ct;
        mb.data = NULL;
        ct = NULL;
    }
    free(ct);
    free(mb.data);
    free(url);
    return rc;
}

int bl_registry_blob(struct bl_registry *r, const char *digest, bl_sink_fn sink, void *ctx)
{
    char *url = bl_strdupf("%s/v2/%s/blobs/%s", r->base, r->repo, digest);
    long code = 0;
    int rc;

    if (!url)
        return BOXLITE_ENOMEM;
    rc = get_authed(&code, r, url, NULL, sink, ctx, NULL, 0, NULL);
    if (rc == 0 && code == 404)
        rc = bl_err(BOXLITE_ENOTFOUND, "%s/%s: blob %s unknown (404)", r->host, r->repo, digest);
    else if (rc == 0 && code != 200)
        rc = bl_err(code >= 500 ? BL_REGISTRY_RETRYABLE : BOXLITE_EPROTO,
                    "%s/%s: blob %s: HTTP %ld", r->host, r->repo, digest, code);
    free(url);
    return rc;
}
