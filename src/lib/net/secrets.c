/* secrets.c — a box's secrets: checks, the box directory's secrets file (one line a secret:
 * NAME TAB VALUE TAB PLACEHOLDER TAB HOST,HOST...; none of them may hold a control
 * character, so the format needs no quoting), the guest's env, host matching. */
#include "secrets.h"

#include "box.h"
#include "error.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int printable(const char *s, size_t max)
{
    size_t n = 0;

    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f || n >= max)
            return 0;
    return n > 0;
}

static int env_name(const char *s)
{
    size_t n = 0;

    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') ||
              (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
            return 0;
    return n <= 64;
}

static int check_one(const boxlite_secret *s)
{
    struct bl_net_rule r;
    size_t nh = 0;

    if (!s->name || !env_name(s->name))
        return bl_err(BOXLITE_EINVAL,
                      "secret \"%.64s\": expected a name of [A-Za-z0-9_] "
                      "(not starting with a digit), at most 64 bytes",
                      s->name ? s->name : "");
    if (!s->value || !printable(s->value, BL_SECRET_VALUE_MAX))
        return bl_err(BOXLITE_EINVAL,
                      "secret %s: its value must be 1-%d bytes without control characters", s->name,
                      BL_SECRET_VALUE_MAX);
    if (s->placeholder && (!printable(s->placeholder, BL_SECRET_PH_MAX) ||
                           strchr(s->placeholder, '\t') || strstr(s->value, s->placeholder)))
        return bl_err(BOXLITE_EINVAL,
                      "secret %s: its placeholder must be 1-%d bytes without control "
                      "characters",
                      s->name, BL_SECRET_PH_MAX);
    for (; s->hosts && s->hosts[nh]; nh++) {
        if (nh >= BL_SECRET_HOSTS_MAX)
            return bl_err(BOXLITE_EINVAL, "secret %s: at most %d hosts", s->name,
                          BL_SECRET_HOSTS_MAX);
        if (strchr(s->hosts[nh], ',') || bl_net_rule_parse(&r, s->hosts[nh]) != 0)
            return bl_err(BOXLITE_EINVAL, "secret %s: bad host \"%.100s\"", s->name, s->hosts[nh]);
    }
    return 0;
}

int bl_secrets_check(const boxlite_secret *s, size_t n)
{
    if (n > BL_SECRETS_MAX)
        return bl_err(BOXLITE_EINVAL, "at most %d secrets", BL_SECRETS_MAX);
    for (size_t i = 0; i < n; i++) {
        if (check_one(&s[i]) != 0)
            return BOXLITE_EINVAL;
        for (size_t k = 0; k < i; k++)
            if (strcmp(s[k].name, s[i].name) == 0)
                return bl_err(BOXLITE_EINVAL, "secret %s: named twice", s[i].name);
    }
    return 0;
}

static char *placeholder_of(const boxlite_secret *s)
{
    return s->placeholder ? strdup(s->placeholder) : bl_strdupf("<BOXLITE_SECRET:%s>", s->name);
}

char *bl_secrets_encode(const boxlite_secret *s, size_t n)
{
    char *text = strdup(""), *next;

    for (size_t i = 0; text && i < n; i++) {
        char *ph = placeholder_of(&s[i]), *line = NULL;
        size_t len = 0;
        for (size_t h = 0; s[i].hosts && s[i].hosts[h]; h++)
            len += strlen(s[i].hosts[h]) + 1;
        line = calloc(1, len + 1);
        for (size_t h = 0; line && s[i].hosts && s[i].hosts[h]; h++)
            strcat(strcat(line, h ? "," : ""), s[i].hosts[h]);
        next = ph && line ? bl_strdupf("%s%s\t%s\t%s\t%s\n", text, s[i].name, s[i].value, ph, line)
                          : NULL;
        free(ph);
        free(line);
        free(text);
        text = next;
    }
    return text;
}

static int parse_hosts(struct bl_secret *s, char *list)
{
    char *save = NULL;

    for (char *h = strtok_r(list, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
        if (s->nhosts >= BL_SECRET_HOSTS_MAX || bl_net_rule_parse(&s->hosts[s->nhosts++], h) != 0)
            return -1;
    }
    return 0;
}

static int parse_line(struct bl_secret *s, char *line)
{
    char *f[4] = {line, NULL, NULL, NULL};

    for (int i = 1; i < 4; i++) {
        f[i] = f[i - 1] ? strchr(f[i - 1], '\t') : NULL;
        if (f[i])
            *f[i]++ = '\0';
    }
    if (!f[3] || strlen(f[0]) > 64 || !*f[0] || !*f[1] || !*f[2])
        return -1;
    snprintf(s->name, sizeof(s->name), "%s", f[0]);
    s->value = strdup(f[1]);
    s->placeholder = strdup(f[2]);
    s->hosts_spec = strdup(f[3]);
    if (!s->value || !s->placeholder || !s->hosts_spec)
        return -1;
    return parse_hosts(s, f[3]);
}

int bl_secrets_parse(struct bl_secret **out, size_t *n, const char *text)
{
    struct bl_secret *v = calloc(BL_SECRETS_MAX, sizeof(*v));
    char *copy = strdup(text), *save = NULL;
    size_t count = 0;
    int rc = v && copy ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");

    for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; rc == 0 && l;
         l = strtok_r(NULL, "\n", &save)) {
        if (count >= BL_SECRETS_MAX || parse_line(&v[count++], l) != 0)
            rc = bl_err(BOXLITE_EINVAL, "the box's secrets file is damaged");
    }
    free(copy);
    if (rc != 0) {
        bl_secrets_free(v, count);
        return rc;
    }
    *out = v;
    *n = count;
    return 0;
}

void bl_secrets_free(struct bl_secret *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++) {
        if (s[i].value) /* wipe what we can: the value is the point of all this */
            memset(s[i].value, 0, strlen(s[i].value));
        free(s[i].value);
        free(s[i].placeholder);
        free(s[i].hosts_spec);
    }
    free(s);
}

int bl_secrets_copy(const char *src_dir, const char *dst_dir)
{
    char *src = bl_strdupf("%s/" BL_SECRETS_FILE, src_dir);
    char *dst = bl_strdupf("%s/" BL_SECRETS_FILE, dst_dir);
    char *text = NULL;
    size_t len = 0;
    int rc = src && dst ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");

    if (rc == 0 && access(src, F_OK) == 0)
        rc = bl_read_file(&text, &len, src, 1u << 20);
    else if (rc == 0 && errno != ENOENT)
        rc = bl_err_errno(BOXLITE_EIO, errno, "%s", src);
    if (rc == 0 && text)
        rc = bl_write_file_atomic(dst, text, len, 0600);
    if (text)
        memset(text, 0, len);
    free(text);
    free(src);
    free(dst);
    return rc;
}

static int env_has(char *const *env, const char *kv)
{
    size_t klen = strcspn(kv, "=");

    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], kv, klen) == 0 && env[i][klen] == '=')
            return 1;
    return 0;
}

static int env_add(char ***env, size_t *n, char *kv)
{
    char **grown;

    if (!kv)
        return -1;
    if (env_has(*env, kv)) {
        free(kv);
        return 0;
    }
    grown = realloc(*env, (*n + 2) * sizeof(char *));
    if (!grown) {
        free(kv);
        return -1;
    }
    grown[(*n)++] = kv;
    grown[*n] = NULL;
    *env = grown;
    return 0;
}

/* What every box with secrets gets in its env besides the placeholders: the proxy, the CA. */
static const char *const fixed[] = {
    "HTTPS_PROXY=http://" BL_SECRETS_PROXY_IP ":3128",
    "https_proxy=http://" BL_SECRETS_PROXY_IP ":3128",
    "HTTP_PROXY=http://" BL_SECRETS_PROXY_IP ":3128",
    "http_proxy=http://" BL_SECRETS_PROXY_IP ":3128",
    "NO_PROXY=localhost,127.0.0.1,::1",
    "no_proxy=localhost,127.0.0.1,::1",
    "SSL_CERT_FILE=" BL_SECRETS_GUEST_BUNDLE,
    "REQUESTS_CA_BUNDLE=" BL_SECRETS_GUEST_BUNDLE,
    "CURL_CA_BUNDLE=" BL_SECRETS_GUEST_BUNDLE,
    "NODE_EXTRA_CA_CERTS=" BL_SECRETS_GUEST_CA,
};

int bl_secrets_env_is_wiring(const char *kv)
{
    for (size_t i = 0; kv && i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (strcmp(kv, fixed[i]) == 0)
            return 1;
    return 0;
}

char **bl_secrets_env(const char *const *env, const boxlite_secret *s, size_t n)
{
    char **out = env ? bl_strv_dup(env) : calloc(1, sizeof(char *));
    size_t len = 0;
    int rc = out ? 0 : -1;

    while (out && out[len])
        len++;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *ph = placeholder_of(&s[i]);
        rc = ph ? env_add(&out, &len, bl_strdupf("%s=%s", s[i].name, ph)) : -1;
        free(ph);
    }
    for (size_t i = 0; rc == 0 && n && i < sizeof(fixed) / sizeof(fixed[0]); i++)
        rc = env_add(&out, &len, strdup(fixed[i]));
    if (rc != 0) {
        bl_strv_free(out);
        out = NULL;
    }
    return out;
}

int bl_secret_applies(const struct bl_secret *s, const char *host, uint16_t port)
{
    struct in_addr a;

    if (s->nhosts == 0)
        return 1;
    for (size_t i = 0; i < s->nhosts; i++) {
        const struct bl_net_rule *r = &s->hosts[i];
        if (r->port && r->port != port)
            continue;
        if (r->kind == BL_NET_CIDR) {
            if (inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) & r->mask) == r->net)
                return 1;
        } else if (bl_net_rule_matches_name(r, host)) {
            return 1;
        }
    }
    return 0;
}

/* The box's secrets without their values, for inspect: "NAME" or "NAME@HOST,HOST". */
BOXLITE_API int boxlite_box_secrets(char ***out, boxlite_box *box)
{
    char *path = box ? bl_strdupf("%s/" BL_SECRETS_FILE, box->dir) : NULL, *text = NULL;
    struct bl_secret *sec = NULL;
    size_t len = 0, n = 0;
    char **v = NULL;
    int rc = path ? 0 : bl_err(box ? BOXLITE_ENOMEM : BOXLITE_EINVAL, "no box");

    if (rc == 0 && access(path, F_OK) == 0)
        rc = bl_read_file(&text, &len, path, 1u << 20);
    else if (rc == 0 && errno != ENOENT)
        rc = bl_err_errno(BOXLITE_EIO, errno, "%s", path);
    if (rc == 0 && text)
        rc = bl_secrets_parse(&sec, &n, text);
    if (rc == 0 && !(v = calloc(n + 1, sizeof(*v))))
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        v[i] = bl_strdupf("%s%s%s", sec[i].name, *sec[i].hosts_spec ? "@" : "", sec[i].hosts_spec);
        if (!v[i])
            rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        *out = v;
        v = NULL;
    }
    if (text)
        memset(text, 0, len);
    free(text);
    bl_secrets_free(sec, n);
    for (size_t i = 0; v && v[i]; i++) /* bl_core has no boxlite_strv_free */
        free(v[i]);
    free(v);
    free(path);
    return rc;
}
