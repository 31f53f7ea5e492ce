/* user.c — resolves an exec request's user ("", "root", "uid", "uid:gid", "name",
 * "name:group") against the image's /etc/passwd and /etc/group; runs in the child after chroot. */
#include "agent.h"
#include "passwd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A bigger /etc/passwd or /etc/group is treated as absent. */
#define DB_MAX (1U << 20)

/* The text of an image's /etc/passwd or /etc/group; buf NULL and len 0 when absent. */
struct db {
    char *buf;
    size_t len;
};

/* Reads path whole into *db (read(2) into one buffer: no stdio, no nscd). A file that is
 * missing, unreadable, not regular (a FIFO is opened without blocking, then refused) or over
 * DB_MAX leaves *db empty, as a missing one. */
static void db_read(const char *path, struct db *db)
{
    struct stat st;
    ssize_t n = 0;
    size_t got = 0;
    int fd;

    db->buf = NULL;
    db->len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY); /* a FIFO must not block */
    if (fd < 0)
        return;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)DB_MAX)
        goto out;
    db->buf = malloc((size_t)st.st_size + 1);
    if (db->buf == NULL)
        goto out;
    while (got < (size_t)st.st_size) {
        n = read(fd, db->buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (n < 0) {
        free(db->buf);
        db->buf = NULL;
        goto out;
    }
    db->len = got;
out:
    close(fd);
}

/* A decimal id: 0 and *out set when s is all digits and fits. */
static int parse_id(const char *s, unsigned *out)
{
    unsigned long v;
    char *end;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > 0x7fffffffUL)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static void set_home(struct bl_user *u, const char *home, size_t len)
{
    if (home == NULL || len == 0) {
        home = "/";
        len = 1;
    }
    if (len >= sizeof u->home)
        len = sizeof u->home - 1; /* cut, as snprintf cut it before */
    snprintf(u->home, sizeof u->home, "%.*s", (int)len, home);
}

/* The user's supplementary groups from /etc/group (getgrouplist's answer, capped). */
static void set_groups(struct bl_user *u, const struct bl_pw_entry *pw)
{
    const size_t cap = sizeof u->groups / sizeof u->groups[0];
    struct db gr;
    size_t n;

    db_read("/etc/group", &gr);
    n = bl_group_list(gr.buf, gr.len, pw->name, pw->name_len, pw->gid, u->groups, cap);
    u->ngroups = (int)(n < cap ? n : cap);
    free(gr.buf);
}

/* The user part: a name must exist; a number need not (then gid 0, no groups, home /). */
static int resolve_uid(const char *name, struct bl_user *u, char *msg, size_t msglen)
{
    struct bl_pw_entry pw;
    struct db db;
    unsigned id;
    int numeric, found, ret = -1;

    db_read("/etc/passwd", &db);
    numeric = parse_id(name, &id) == 0;
    found = (numeric ? bl_passwd_by_uid(db.buf, db.len, (uid_t)id, &pw)
                     : bl_passwd_by_name(db.buf, db.len, name, &pw)) == 0;
    if (!found && strcmp(name, "root") == 0) {
        numeric = 1; /* root works even in an image without /etc/passwd */
        id = 0;
    }
    if (!found && !numeric) {
        snprintf(msg, msglen, "user \"%s\": no such user in /etc/passwd", name);
        errno = ENOENT;
        goto out;
    }
    u->uid = numeric ? (uid_t)id : pw.uid;
    u->gid = found ? pw.gid : 0;
    u->ngroups = 0;
    if (found) {
        set_home(u, pw.dir, pw.dir_len);
        set_groups(u, &pw);
    } else if (u->uid == 0) {
        set_home(u, "/root", 5);
    } else {
        set_home(u, NULL, 0);
    }
    ret = 0;
out:
    free(db.buf);
    return ret;
}

static int resolve_gid(const char *name, struct bl_user *u, char *msg, size_t msglen)
{
    struct db db;
    unsigned id;
    gid_t gid;
    int ret = -1;

    u->ngroups = 0; /* an explicit group replaces the supplementary groups */
    if (parse_id(name, &id) == 0) {
        u->gid = (gid_t)id;
        return 0;
    }
    db_read("/etc/group", &db);
    if (bl_group_by_name(db.buf, db.len, name, &gid) < 0) {
        snprintf(msg, msglen, "group \"%s\": no such group in /etc/group", name);
        errno = ENOENT;
        goto out;
    }
    u->gid = gid;
    ret = 0;
out:
    free(db.buf);
    return ret;
}

int bl_user_resolve(const char *spec, struct bl_user *out, char *msg, size_t msglen)
{
    char buf[256];
    char *group;
    int ret = -1;

    memset(out, 0, sizeof *out);
    set_home(out, "/root", 5);
    if (spec == NULL || spec[0] == '\0')
        spec = "root";
    if (strlen(spec) >= sizeof buf) {
        snprintf(msg, msglen, "user name too long");
        errno = EINVAL;
        goto out;
    }
    snprintf(buf, sizeof buf, "%s", spec);
    group = strchr(buf, ':');
    if (group != NULL)
        *group++ = '\0';
    if (resolve_uid(buf, out, msg, msglen) < 0)
        goto out;
    if (group != NULL && resolve_gid(group, out, msg, msglen) < 0)
        goto out;
    ret = 0;
out:
    return ret;
}
