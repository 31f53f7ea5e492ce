/* secrets.h — a box's secrets (boxlite_secret): checking them, their file in the box directory
 * (the one home of the real values, mode 0600, read by the box monitor), the env the guest
 * gets instead (placeholders and the proxy), and which hosts a secret may go to. The proxy
 * that substitutes them is the box monitor's (src/shim/secrets.c; docs/security.md). */
#ifndef BL_SECRETS_H
#define BL_SECRETS_H

#include "boxlite.h"
#include "netpolicy.h"

#include <stddef.h>
#include <stdint.h>

#define BL_SECRETS_MAX          32
#define BL_SECRET_HOSTS_MAX     16
#define BL_SECRET_VALUE_MAX     4096
#define BL_SECRET_PH_MAX        256
#define BL_SECRETS_FILE         "secrets"    /* in the box directory, mode 0600 */
#define BL_SECRETS_PROXY_IP     "10.0.2.100" /* the monitor's proxy, as the guest reaches it */
#define BL_SECRETS_PROXY_VIP    0x0a000264u  /* the same, host byte order */
#define BL_SECRETS_PROXY_PORT   3128
#define BL_SECRETS_GUEST_CA     "/etc/boxlite/ca.crt"        /* the per-box CA (certificate only) */
#define BL_SECRETS_GUEST_BUNDLE "/etc/boxlite/ca-bundle.crt" /* the system CAs + it */

/* One secret as the monitor holds it. */
struct bl_secret {
    char name[65];
    char *value, *placeholder;
    struct bl_net_rule hosts[BL_SECRET_HOSTS_MAX];
    size_t nhosts;    /* 0: any host */
    char *hosts_spec; /* the hosts as given: "h1,h2" ("" for any host) */
};

/* Validate n secrets (options); BOXLITE_EINVAL with a message naming the bad one. */
int bl_secrets_check(const boxlite_secret *s, size_t n);

/* The file's text for n checked secrets (malloc'd), or NULL when out of memory. */
char *bl_secrets_encode(const boxlite_secret *s, size_t n);

/* Parse the file's text (untrusted only in that the disk may be damaged): *out (n of them)
 * for bl_secrets_free. BOXLITE_EINVAL when it makes no sense. */
int bl_secrets_parse(struct bl_secret **out, size_t *n, const char *text);
void bl_secrets_free(struct bl_secret *s, size_t n);

/* Copy a box directory's secrets file from src_dir to dst_dir (a clone or fork: the copy
 * keeps the secrets; it makes a CA of its own). 0 also when src_dir has none. */
int bl_secrets_copy(const char *src_dir, const char *dst_dir);

/* The box's env with what the guest gets for n secrets appended (NAME=placeholder, the
 * proxy, the CA bundle), unless env sets the variable already: a new strv, or NULL when out
 * of memory. */
char **bl_secrets_env(const char *const *env, const boxlite_secret *s, size_t n);

/* 1 when kv is one of the entries bl_secrets_env adds for the proxy and the CA (not a
 * placeholder): what a box carried to another machine must not keep, as no proxy is there. */
int bl_secrets_env_is_wiring(const char *kv);

/* 1 when secret s may be sent to host (a name or IPv4 literal as the client wrote it) at
 * port. */
int bl_secret_applies(const struct bl_secret *s, const char *host, uint16_t port);

#endif
