/* idempotency.c — the spec's Idempotency-Key: a repeated key (same principal) returns the
 * first response without running the request again; the same key with another method, path,
 * query or body is refused (422); one still running answers 409. Kept for 24 hours, at most
 * IDEM_MAX keys, in memory and in serve.db (state.c), so a restart still replays them. */
#include "serve.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDEM_MAX 4096
#define IDEM_TTL (24 * 3600)

struct idem {
    struct idem *next;
    char key[200]; /* principal + " " + the client's key */
    unsigned char fp[SHA256_DIGEST_LENGTH];
    time_t at;
    int done;
    unsigned status;
    char *body; /* NULL: an empty body */
    size_t len;
    char location[512];
};

static pthread_mutex_t idem_mu = PTHREAD_MUTEX_INITIALIZER;
static struct idem *idem_head;
static unsigned idem_count;

static enum MHD_Result hash_arg(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
    (void)kind;
    EVP_DigestUpdate(cls, k, strlen(k) + 1);
    EVP_DigestUpdate(cls, v != NULL ? v : "", v != NULL ? strlen(v) + 1 : 1);
    return MHD_YES;
}

static void fingerprint(struct req *r, unsigned char out[SHA256_DIGEST_LENGTH])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();

    memset(out, 0, SHA256_DIGEST_LENGTH);
    if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
        goto out;
    EVP_DigestUpdate(c, r->method, strlen(r->method) + 1);
    EVP_DigestUpdate(c, r->path, strlen(r->path) + 1);
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, hash_arg, c);
    if (r->json_buf != NULL)
        EVP_DigestUpdate(c, r->json_buf, r->json_len);
    EVP_DigestFinal_ex(c, out, NULL);
out:
    EVP_MD_CTX_free(c);
}

static void idem_free(struct idem *e)
{
    free(e->body);
    free(e);
}

/* Drop expired entries, and the oldest finished ones past IDEM_MAX. Under idem_mu. */
static void prune_locked(time_t now)
{
    struct idem **pp = &idem_head, *oldest_done = NULL;

    while (*pp != NULL) {
        struct idem *e = *pp;
        if (e->done && now - e->at > IDEM_TTL) {
            *pp = e->next;
            idem_count--;
            state_idem_del(e->key);
            idem_free(e);
            continue;
        }
        if (e->done)
            oldest_done = e; /* newest first: the last seen is the oldest */
        pp = &e->next;
    }
    if (idem_count < IDEM_MAX || oldest_done == NULL)
        return;
    for (pp = &idem_head; *pp != oldest_done; pp = &(*pp)->next)
        ;
    *pp = oldest_done->next;
    idem_count--;
    state_idem_del(oldest_done->key);
    idem_free(oldest_done);
}

static struct idem *find_locked(const char *key)
{
    for (struct idem *e = idem_head; e != NULL; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static enum MHD_Result replay(struct req *r, const struct idem *e)
{
    struct MHD_Response *resp;
    char *copy = e->len > 0 ? malloc(e->len) : NULL;

    if (copy != NULL)
        memcpy(copy, e->body, e->len);
    resp = MHD_create_response_from_buffer(copy != NULL ? e->len : 0, copy, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(copy);
        return MHD_NO;
    }
    if (copy != NULL)
        MHD_add_response_header(resp, "Content-Type", "application/json");
    if (e->location[0] != '\0')
        MHD_add_response_header(resp, "Location", e->location);
    MHD_add_response_header(resp, "Idempotent-Replayed", "true");
    return reply_response(r, e->status, resp);
}

enum MHD_Result idem_run(struct req *r)
{
    const char *key = req_header(r, "Idempotency-Key");
    char full[200];
    struct idem *e;
    enum MHD_Result ret;
    unsigned char fp[SHA256_DIGEST_LENGTH];
    time_t now = time(NULL);

    if (key == NULL)
        return r->route->handler(r);
    if (key[0] == '\0' || strlen(key) > 128)
        return reply_error(r, 400, "InvalidArgumentError", "invalid_argument",
                           "Idempotency-Key must be 1 to 128 characters");
    snprintf(full, sizeof(full), "%s %s", r->principal, key);
    fingerprint(r, fp);
    pthread_mutex_lock(&idem_mu);
    prune_locked(now);
    e = find_locked(full);
    if (e != NULL) {
        int same = memcmp(e->fp, fp, sizeof(fp)) == 0, done = e->done;
        enum MHD_Result rr = MHD_YES;
        if (same && done)
            rr = replay(r, e);
        pthread_mutex_unlock(&idem_mu);
        if (!same)
            return reply_error(r, 422, "InvalidArgumentError", "invalid_argument",
                               "Idempotency-Key %s was used with another request", key);
        if (!done)
            return reply_error(r, 409, "InvalidStateError", "invalid_state",
                               "a request with Idempotency-Key %s is still running", key);
        return rr;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        pthread_mutex_unlock(&idem_mu);
        return reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "memory");
    }
    snprintf(e->key, sizeof(e->key), "%s", full);
    memcpy(e->fp, fp, sizeof(fp));
    e->at = now;
    e->next = idem_head;
    idem_head = e;
    idem_count++;
    pthread_mutex_unlock(&idem_mu);

    r->capture = 1;
    ret = r->route->handler(r);

    pthread_mutex_lock(&idem_mu);
    if (r->status >= 500 || !r->captured) { /* not a result to repeat: forget the key */
        struct idem **pp;
        for (pp = &idem_head; *pp != e; pp = &(*pp)->next)
            ;
        *pp = e->next;
        idem_count--;
        idem_free(e);
    } else {
        e->status = r->status;
        e->body = r->cap_body;
        e->len = r->cap_len;
        snprintf(e->location, sizeof(e->location), "%s", r->cap_location);
        r->cap_body = NULL;
        e->done = 1;
        state_idem_put(e->key, e->fp, e->at, e->status, e->body, e->len, e->location);
    }
    pthread_mutex_unlock(&idem_mu);
    return ret;
}

/* One kept row back into the list (newest first: rows come oldest first). Start-up only. */
static void load_one(void *ctx, const struct state_idem *k)
{
    struct idem *e = calloc(1, sizeof(*e));

    (void)ctx;
    if (e == NULL || (k->len > 0 && (e->body = malloc(k->len)) == NULL)) {
        free(e);
        return;
    }
    snprintf(e->key, sizeof(e->key), "%s", k->key);
    memcpy(e->fp, k->fp, sizeof(e->fp));
    e->at = (time_t)k->at;
    e->done = 1;
    e->status = k->status;
    if (k->len > 0)
        memcpy(e->body, k->body, k->len);
    e->len = k->len;
    snprintf(e->location, sizeof(e->location), "%s", k->location);
    e->next = idem_head;
    idem_head = e;
    idem_count++;
}

void idem_load(void)
{
    state_idem_load(load_one, NULL);
    pthread_mutex_lock(&idem_mu);
    prune_locked(time(NULL));
    pthread_mutex_unlock(&idem_mu);
}
