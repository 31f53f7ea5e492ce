/* auth.c — bearer API keys for `boxlite serve`: the key file (one key a line, the key itself
 * or sha256:<hex> of it), kept only as SHA-256 digests, compared in constant time against
 * every key, and swapped whole on SIGHUP. */
#include "serve.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct serve_keys {
    size_t n;
    unsigned char (*digest)[SHA256_DIGEST_LENGTH];
};

static pthread_rwlock_t keys_lock = PTHREAD_RWLOCK_INITIALIZER;

void keys_free(struct serve_keys *k)
{
    if (k == NULL)
        return;
    OPENSSL_cleanse(k->digest, k->n * SHA256_DIGEST_LENGTH);
    free(k->digest);
    free(k);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One line of the file → its digest. -1 when it is malformed. */
static int parse_line(unsigned char out[SHA256_DIGEST_LENGTH], const char *line)
{
    if (strncmp(line, "sha256:", 7) == 0) {
        const char *h = line + 7;
        if (strlen(h) != 2 * SHA256_DIGEST_LENGTH)
            return -1;
        for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
            int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return -1;
            out[i] = (unsigned char)(hi << 4 | lo);
        }
        return 0;
    }
    SHA256((const unsigned char *)line, strlen(line), out);
    return 0;
}

int keys_load(struct serve_keys **out, const char *path)
{
    struct serve_keys *k = calloc(1, sizeof(*k));
    FILE *f = NULL;
    char line[1024];
    unsigned lineno = 0;
    int rc = -1;

    if (k == NULL)
        goto out;
    f = fopen(path, "re");
    if (f == NULL) {
        fprintf(stderr, "boxlite serve: cannot read the key file %s\n", path);
        goto out;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strcspn(line, "\r\n");
        void *grown;
        lineno++;
        line[len] = '\0';
        while (len > 0 && isspace((unsigned char)line[len - 1]))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        grown = realloc(k->digest, (k->n + 1) * SHA256_DIGEST_LENGTH);
        if (grown == NULL)
            goto out;
        k->digest = grown;
        if (parse_line(k->digest[k->n], line) != 0) {
            fprintf(stderr, "boxlite serve: %s:%u: malformed sha256: line\n", path, lineno);
            goto out;
        }
        k->n++;
    }
    OPENSSL_cleanse(line, sizeof(line));
    if (k->n == 0) {
        fprintf(stderr, "boxlite serve: %s holds no keys\n", path);
        goto out;
    }
    *out = k;
    k = NULL;
    rc = 0;
out:
    if (f != NULL)
        fclose(f);
    keys_free(k);
    return rc;
}

int keys_reload(const char *path)
{
    struct serve_keys *fresh = NULL, *old;

    if (keys_load(&fresh, path) != 0)
        return -1;
    pthread_rwlock_wrlock(&keys_lock);
    old = g_serve->keys;
    g_serve->keys = fresh;
    pthread_rwlock_unlock(&keys_lock);
    keys_free(old);
    fprintf(stderr, "boxlite serve: reloaded %zu key(s) from %s\n", fresh->n, path);
    return 0;
}

int auth_check(struct req *r, char out[32])
{
    return auth_check_value(req_header(r, "Authorization"), out);
}

int auth_check_value(const char *h, char out[32])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    int ok = 0;
    size_t match = 0;

    pthread_rwlock_rdlock(&keys_lock);
    if (g_serve->keys == NULL) {
        snprintf(out, 32, "local");
        ok = 1;
        goto out;
    }
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        goto out;
    SHA256((const unsigned char *)h + 7, strlen(h + 7), d);
    /* every key is compared, whatever matched before: the time does not say which */
    for (size_t i = 0; i < g_serve->keys->n; i++) {
        int same = CRYPTO_memcmp(d, g_serve->keys->digest[i], sizeof(d)) == 0;
        ok |= same;
        match = same ? i : match;
    }
    if (ok)
        snprintf(out, 32, "key-%02x%02x%02x%02x", g_serve->keys->digest[match][0],
                 g_serve->keys->digest[match][1], g_serve->keys->digest[match][2],
                 g_serve->keys->digest[match][3]);
out:
    pthread_rwlock_unlock(&keys_lock);
    return ok;
}
