/* passwd.c — the agent's reader of /etc/passwd and /etc/group text in a caller's buffer (see
 * passwd.h): lines, fields and ids parsed in place, without allocation, stdio or nscd. */
#include "passwd.h"

#include <string.h>

#define ID_MAX    0x7fffffffUL
#define PW_FIELDS 7 /* name:passwd:uid:gid:gecos:dir:shell */
#define GR_FIELDS 4 /* name:passwd:gid:members */

struct span {
    const char *p;
    size_t n;
};

/* A walk over the lines of buf[0..len). */
struct lines {
    const char *buf;
    size_t len;
    size_t off;
};

/* The next line (without its '\n', cut at its first NUL) in *line: 1, or 0 at the end. */
static int next_line(struct lines *it, struct span *line)
{
    const char *start, *nl, *nul;
    size_t rest;

    if (it->off >= it->len)
        return 0;
    start = it->buf + it->off;
    rest = it->len - it->off;
    nl = memchr(start, '\n', rest);
    line->p = start;
    line->n = nl != NULL ? (size_t)(nl - start) : rest;
    it->off += line->n + (nl != NULL ? 1 : 0);
    nul = memchr(start, '\0', line->n);
    if (nul != NULL)
        line->n = (size_t)(nul - start);
    return 1;
}

/* Splits line on ':' into n fields, the last one taking the rest: 0, or -1 when there are
 * fewer than n. */
static int split_fields(struct span line, struct span *f, size_t n)
{
    const char *p = line.p, *end = line.p + line.n, *c;
    size_t i;

    for (i = 0; i + 1 < n; i++) {
        c = memchr(p, ':', (size_t)(end - p));
        if (c == NULL)
            return -1;
        f[i].p = p;
        f[i].n = (size_t)(c - p);
        p = c + 1;
    }
    f[i].p = p;
    f[i].n = (size_t)(end - p);
    return 0;
}

/* A decimal id of 1 or more digits worth at most ID_MAX: 0 and *out set, or -1. */
static int parse_id(struct span s, unsigned long *out)
{
    unsigned long v = 0;
    size_t i;

    if (s.n == 0)
        return -1;
    for (i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s.p[i] - '0');
        if (v > ID_MAX)
            return -1;
    }
    *out = v;
    return 0;
}

static int usable_name(struct span name)
{
    return name.n > 0 && name.p[0] != '#';
}

static int span_is(struct span s, const char *str, size_t n)
{
    return s.n == n && memcmp(s.p, str, n) == 0;
}

/* The passwd entry on line: 0 and *out set, or -1 when the line is to be skipped. */
static int passwd_line(struct span line, struct bl_pw_entry *out)
{
    struct span f[PW_FIELDS];
    unsigned long uid, gid;

    if (split_fields(line, f, PW_FIELDS) < 0 || !usable_name(f[0]))
        return -1;
    if (parse_id(f[2], &uid) < 0 || parse_id(f[3], &gid) < 0)
        return -1;
    out->name = f[0].p;
    out->name_len = f[0].n;
    out->uid = (uid_t)uid;
    out->gid = (gid_t)gid;
    out->dir = f[5].p;
    out->dir_len = f[5].n;
    return 0;
}

/* The group on line: 0 with its name, gid and member list, or -1 to skip the line. */
static int group_line(struct span line, struct span *name, gid_t *gid, struct span *members)
{
    struct span f[GR_FIELDS];
    unsigned long id;

    if (split_fields(line, f, GR_FIELDS) < 0 || !usable_name(f[0]) || parse_id(f[2], &id) < 0)
        return -1;
    *name = f[0];
    *gid = (gid_t)id;
    *members = f[3];
    return 0;
}

/* 1 when the comma-separated list names user[0..n) (an empty name is never a member). */
static int names_member(struct span members, const char *user, size_t n)
{
    const char *p = members.p, *end = members.p + members.n, *c;
    struct span m;

    while (n > 0 && p <= end) {
        c = memchr(p, ',', (size_t)(end - p));
        m.p = p;
        m.n = c != NULL ? (size_t)(c - p) : (size_t)(end - p);
        if (span_is(m, user, n))
            return 1;
        if (c == NULL)
            break;
        p = c + 1;
    }
    return 0;
}

/* The first passwd entry that matches name (when not NULL) or else uid. */
static int passwd_find(const char *buf, size_t len, const char *name, uid_t uid,
                       struct bl_pw_entry *out)
{
    struct lines it = {buf, len, 0};
    struct bl_pw_entry e;
    struct span line;
    size_t n = name != NULL ? strlen(name) : 0;

    while (next_line(&it, &line)) {
        if (passwd_line(line, &e) < 0)
            continue;
        if (name != NULL ? (e.name_len == n && memcmp(e.name, name, n) == 0) : e.uid == uid) {
            *out = e;
            return 0;
        }
    }
    return -1;
}

int bl_passwd_by_name(const char *buf, size_t len, const char *name, struct bl_pw_entry *out)
{
    return passwd_find(buf, len, name, 0, out);
}

int bl_passwd_by_uid(const char *buf, size_t len, uid_t uid, struct bl_pw_entry *out)
{
    return passwd_find(buf, len, NULL, uid, out);
}

int bl_group_by_name(const char *buf, size_t len, const char *name, gid_t *out)
{
    struct lines it = {buf, len, 0};
    struct span line, gname, members;
    size_t n = strlen(name);
    gid_t gid;

    while (next_line(&it, &line)) {
        if (group_line(line, &gname, &gid, &members) == 0 && span_is(gname, name, n)) {
            *out = gid;
            return 0;
        }
    }
    return -1;
}

size_t bl_group_list(const char *buf, size_t len, const char *user, size_t user_len, gid_t gid,
                     gid_t *groups, size_t cap)
{
    struct lines it = {buf, len, 0};
    struct span line, gname, members;
    size_t total = 1;
    gid_t g;

    if (cap > 0)
        groups[0] = gid;
    while (next_line(&it, &line)) {
        if (group_line(line, &gname, &g, &members) < 0 || !names_member(members, user, user_len))
            continue;
        if (total < cap)
            groups[total] = g;
        total++;
    }
    return total;
}
