/* trustca.c — the `trust-ca PEM` built-in (runs in the child, after chroot, as root): makes
 * the guest trust its box's secrets CA (docs/security.md, Secrets). It writes the certificate
 * to /etc/boxlite/ca.crt, the system bundle plus it to /etc/boxlite/ca-bundle.crt (the box's
 * SSL_CERT_FILE), and appends it to the system bundle when there is one and it is not there
 * yet. Only a certificate comes this way: its key never leaves the host. What it writes is
 * 0644 under a 0755 directory whatever the umask: a non-root image user must trust it too. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYS_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define BUNDLE_MAX (8u << 20)

static int write_file(const char *path, const char *a, size_t alen, const char *b, int append)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (append ? O_APPEND : O_TRUNC),
                  0644);
    int rc = fd < 0 ? -1 : 0;

    if (rc == 0 && !append && fchmod(fd, 0644) != 0) /* whatever the umask: every user reads it */
        rc = -1;
    if (rc == 0 && alen && write(fd, a, alen) != (ssize_t)alen)
        rc = -1;
    if (rc == 0 && b && write(fd, b, strlen(b)) != (ssize_t)strlen(b))
        rc = -1;
    if (fd >= 0 && close(fd) != 0)
        rc = -1;
    if (rc != 0)
        fprintf(stderr, "trust-ca: %s: %s\n", path, strerror(errno));
    return rc;
}

/* The system bundle (malloc'd, NUL-terminated), or "" when there is none. */
static char *read_bundle(size_t *len)
{
    int fd = open(SYS_BUNDLE, O_RDONLY | O_CLOEXEC);
    char *buf = calloc(1, BUNDLE_MAX + 1);
    ssize_t r = 1;

    *len = 0;
    while (fd >= 0 && buf && r > 0 && *len < BUNDLE_MAX) {
        r = read(fd, buf + *len, BUNDLE_MAX - *len);
        if (r > 0)
            *len += (size_t)r;
    }
    if (fd >= 0)
        close(fd);
    return buf;
}

static int trust(const char *pem)
{
    size_t len = 0;
    char *sys;
    int rc;

    if (strncmp(pem, "-----BEGIN CERTIFICATE-----", 27) != 0 || strstr(pem, "PRIVATE")) {
        fprintf(stderr, "trust-ca: not a certificate\n");
        return 1;
    }
    if ((mkdir("/etc/boxlite", 0755) != 0 && errno != EEXIST) || chmod("/etc/boxlite", 0755) != 0) {
        fprintf(stderr, "trust-ca: /etc/boxlite: %s\n", strerror(errno));
        return 1;
    }
    sys = read_bundle(&len);
    if (!sys)
        return 1;
    rc = write_file("/etc/boxlite/ca.crt", "", 0, pem, 0);
    if (rc == 0) /* the system CAs first, without a copy of ours from an earlier boot */
        rc = write_file("/etc/boxlite/ca-bundle.crt", sys, strstr(sys, pem) ? 0 : len,
                        strstr(sys, pem) ? sys : pem, 0);
    if (rc == 0 && len && !strstr(sys, pem))
        rc = write_file(SYS_BUNDLE, "\n", 1, pem, 1);
    free(sys);
    return rc == 0 ? 0 : 1;
}

int bl_builtin_trust_ca(const struct bl_exec_req *req)
{
    if (req->argc == 2 && strcmp(req->argv[0], "trust-ca") == 0)
        return trust(req->argv[1]);
    return -1;
}
