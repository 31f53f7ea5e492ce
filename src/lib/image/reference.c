/* reference.c — parsing image references the way Docker does: the domain is the first
 * component when it has a '.' or ':' or is "localhost"; names, tags and digests validated. */
#include "reference.h"
#include "error.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define TAG_MAX 128

int bl_digest_valid(const char *s)
{
    return s && strncmp(s, "sha256:", 7) == 0 && strlen(s) == 71 &&
           strspn(s + 7, "0123456789abcdef") == 64;
}

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* */
static int component_valid(const char *s, size_t n)
{
    size_t i = 0;

    if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
        return 0;
    while (i < n) {
        if (is_lower_alnum(s[i])) {
            i++;
            continue;
        }
        if (s[i] == '.' || (s[i] == '_' && s[i + 1] != '_')) {
            i++;
        } else if (s[i] == '_' && s[i + 1] == '_') {
            i += 2;
        } else if (s[i] == '-') {
            while (i < n && s[i] == '-')
                i++;
        } else {
            return 0;
        }
        if (i >= n || !is_lower_alnum(s[i]))
            return 0;
    }
    return 1;
}

static int repository_valid(const char *s)
{
    const char *p = s;

    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (!component_valid(p, n))
            return 0;
        if (!slash)
            return 1;
        p = slash + 1;
    }
}

/* host[:port]; hosts of letters, digits, '-', '.', or a bracketed IPv6 literal. */
static int registry_valid(const char *s)
{
    const char *colon;
    size_t n = strlen(s);

    if (n == 0 || n > 255)
        return 0;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || strspn(s + 1, "0123456789abcdefABCDEF:.") != (size_t)(end - s - 1))
            return 0;
        colon = end[1] == ':' ? end + 1 : NULL;
        if (!colon && end[1] != '\0')
            return 0;
    } else {
        colon = strchr(s, ':');
        n = colon ? (size_t)(colon - s) : n;
        if (n == 0 ||
            strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789-.") != n ||
            s[0] == '-' || s[0] == '.')
            return 0;
    }
    if (colon) {
        size_t digits = strspn(colon + 1, "0123456789");
        if (digits == 0 || digits > 5 || colon[1 + digits] != '\0')
            return 0;
    }
    return 1;
}

static int tag_valid(const char *s)
{
    size_t n = strlen(s);
    const char *word = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";

    if (n == 0 || n > TAG_MAX || !strchr(word, s[0]))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!strchr(word, s[i]) && s[i] != '.' && s[i] != '-')
            return 0;
    return 1;
}

void bl_ref_clear(struct bl_ref *ref)
{
    if (!ref)
        return;
    free(ref->registry);
    free(ref->repository);
    free(ref->tag);
    free(ref->digest);
    memset(ref, 0, sizeof(*ref));
}

static int first_is_domain(const char *s, size_t n)
{
    return memchr(s, '.', n) || memchr(s, ':', n) || (n == 9 && memcmp(s, "localhost", 9) == 0) ||
           (n > 0 && s[0] == '[');
}

int bl_ref_parse(struct bl_ref *out, const char *s)
{
    struct bl_ref r = {0};
    char *buf = NULL, *name, *at, *slash, *colon;
    int rc = BOXLITE_EINVAL;

    if (!s || !*s || strlen(s) > BL_REF_MAX)
        return bl_err(BOXLITE_EINVAL, "invalid image reference \"%.64s\": empty or too long",
                      s ? s : "");
    buf = strdup(s);
    if (!buf)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    name = buf;
    at = strchr(name, '@');
    if (at) {
        *at = '\0';
        if (!bl_digest_valid(at + 1)) {
            bl_err(BOXLITE_EINVAL,
                   "invalid image reference \"%s\": digest must be sha256: and "
                   "64 lower-case hex digits",
                   s);
            goto out;
        }
        r.digest = strdup(at + 1);
    }
    slash = strchr(name, '/');
    if (slash && first_is_domain(name, (size_t)(slash - name))) {
        *slash = '\0';
        r.registry = strdup(name);
        name = slash + 1;
    } else {
        r.registry = strdup(BL_REF_DEFAULT_REGISTRY);
        r.short_name = 1;
    }
    /* A tag is after the last ':' that follows the last '/'. */
    slash = strrchr(name, '/');
    colon = strrchr(slash ? slash : name, ':');
    if (colon) {
        *colon = '\0';
        r.tag = strdup(colon + 1);
        if (r.tag && !tag_valid(r.tag)) {
            bl_err(BOXLITE_EINVAL, "invalid image reference \"%s\": bad tag \"%s\"", s, r.tag);
            goto out;
        }
    } else if (!r.digest) {
        r.tag = strdup("latest");
    }
    if (strcmp(r.registry ? r.registry : "", "docker.io") == 0 && !strchr(name, '/'))
        r.repository = bl_strdupf("library/%s", name);
    else
        r.repository = strdup(name);
    if (!r.registry || !r.repository || (!r.tag && !r.digest) || (colon && !r.tag) ||
        (at && !r.digest)) {
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
        goto out;
    }
    if (!registry_valid(r.registry)) {
        bl_err(BOXLITE_EINVAL, "invalid image reference \"%s\": bad registry \"%s\"", s,
               r.registry);
        goto out;
    }
    if (strlen(r.repository) > 255 || !repository_valid(r.repository)) {
        bl_err(BOXLITE_EINVAL,
               "invalid image reference \"%s\": repository names are lower-case "
               "letters, digits and separators (. _ __ -) in /-separated parts",
               s);
        goto out;
    }
    rc = 0;
    *out = r;
    memset(&r, 0, sizeof(r));
out:
    bl_ref_clear(&r);
    free(buf);
    return rc;
}

int bl_ref_with_registry(struct bl_ref *out, const struct bl_ref *ref, const char *registry,
                         int with_library)
{
    struct bl_ref r = {0};
    const char *repo = ref->repository;

    if (ref->short_name && strncmp(repo, "library/", 8) == 0 && !with_library)
        repo += 8;
    r.registry = strdup(registry);
    r.repository = strdup(repo);
    r.tag = ref->tag ? strdup(ref->tag) : NULL;
    r.digest = ref->digest ? strdup(ref->digest) : NULL;
    if (!r.registry || !r.repository || (ref->tag && !r.tag) || (ref->digest && !r.digest)) {
        bl_ref_clear(&r);
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    *out = r;
    return 0;
}

char *bl_ref_string(const struct bl_ref *ref)
{
    return bl_strdupf("%s/%s%s%s%s%s", ref->registry, ref->repository, ref->tag ? ":" : "",
                      ref->tag ? ref->tag : "", ref->digest ? "@" : "",
                      ref->digest ? ref->digest : "");
}
