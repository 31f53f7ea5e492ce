/* user.c — resolves an exec request's user ("", "root", "uid", "uid:gid", "name",
 * "name:group") against the image's /etc/passwd and /etc/group; runs in the child after chroot. */
#include "agent.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void set_home(struct bl_user *u, const char *home)
{
    snprintf(u->home, sizeof u->home, "%s", home != NULL && home[0] != '\0' ? home : "/");
}

/* The user part: a name must exist; a number need not (then gid 0, no groups, home /). */
static int resolve_uid(const char *name, struct bl_user *u, char *msg, size_t msglen)
{
    struct passwd *pw;
    unsigned id;
    int numeric;

    numeric = parse_id(name, &id) == 0;
    errno = 0;
    pw = numeric ? getpwuid((uid_t)id) : getpwnam(name);
    if (pw == NULL && strcmp(name, "root") == 0) {
        numeric = 1; /* root works even in an image without /etc/passwd */
        id = 0;
    }
    if (pw == NULL && !numeric) {
        snprintf(msg, msglen, "user \"%s\": no such user in /etc/passwd", name);
        errno = ENOENT;
        return -1;
    }
    u->uid = numeric ? (uid_t)id : pw->pw_uid;
    u->gid = pw != NULL ? pw->pw_gid : 0;
    set_home(u, pw != NULL ? pw->pw_dir : (u->uid == 0 ? "/root" : NULL));
    u->ngroups = 0;
    if (pw != NULL) {
        u->ngroups = (int)(sizeof u->groups / sizeof u->groups[0]);
        if (getgrouplist(pw->pw_name, u->gid, u->groups, &u->ngroups) < 0)
            u->ngroups = (int)(sizeof u->groups / sizeof u->groups[0]);
    }
    return 0;
}

static int resolve_gid(const char *name, struct bl_user *u, char *msg, size_t msglen)
{
    struct group *gr;
    unsigned id;

    u->ngroups = 0; /* an explicit group replaces the supplementary groups */
    if (parse_id(name, &id) == 0) {
        u->gid = (gid_t)id;
        return 0;
    }
    gr = getgrnam(name);
    if (gr == NULL) {
        snprintf(msg, msglen, "group \"%s\": no such group in /etc/group", name);
        errno = ENOENT;
        return -1;
    }
    u->gid = gr->gr_gid;
    return 0;
}

int bl_user_resolve(const char *spec, struct bl_user *out, char *msg, size_t msglen)
{
    char buf[256];
    char *group;
    int ret = -1;

    memset(out, 0, sizeof *out);
    set_home(out, "/root");
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
