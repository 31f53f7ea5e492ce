/* fuzz_passwd.c — libFuzzer target for the agent's /etc/passwd and /etc/group reader
 * (src/agent/passwd.c). Byte 0 is the group array's cap (0..71); the rest is read both as a
 * passwd and as a group text. Beyond crashes and reads past the text (ASan), each answer must
 * keep the promises of passwd.h: an entry's name and dir lie inside the text and hold no ':',
 * '\n' or NUL, its name is the one asked for, ids are at most 0x7fffffff; a group list counts
 * at least the primary gid, writes no slot past min(count, cap), agrees with an uncapped call,
 * and holds no more groups than the text has lines plus one. */
#include "passwd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ID_MAX  0x7fffffffU
#define SLOTS   72
#define SENTRY  0xdeadbeefU
#define NAME_SZ 40

static const char *text;
static size_t text_len;

static int inside(const char *p, size_t n)
{
    return p >= text && n <= text_len && (size_t)(p - text) <= text_len - n;
}

static int clean(const char *p, size_t n)
{
    return memchr(p, ':', n) == NULL && memchr(p, '\n', n) == NULL && memchr(p, '\0', n) == NULL;
}

static void check_entry(const struct bl_pw_entry *e)
{
    if (!inside(e->name, e->name_len) || !inside(e->dir, e->dir_len) || e->name_len == 0)
        abort();
    if (!clean(e->name, e->name_len) || !clean(e->dir, e->dir_len) || e->name[0] == '#')
        abort();
    if (e->uid > ID_MAX || e->gid > ID_MAX)
        abort();
}

static size_t count_lines(void)
{
    size_t n = 1;

    for (size_t i = 0; i < text_len; i++)
        n += text[i] == '\n';
    return n;
}

/* The group list of e's user, with cap and uncapped, against each other. */
static void check_groups(const struct bl_pw_entry *e, size_t cap)
{
    gid_t capped[SLOTS], *all;
    size_t lines = count_lines(), n, m, written;

    for (size_t i = 0; i < SLOTS; i++)
        capped[i] = SENTRY;
    n = bl_group_list(text, text_len, e->name, e->name_len, e->gid, capped, cap);
    if (n < 1 || n > lines + 1)
        abort();
    written = n < cap ? n : cap;
    for (size_t i = written; i < SLOTS; i++)
        if (capped[i] != SENTRY)
            abort(); /* written beyond min(count, cap) */
    if (cap > 0 && capped[0] != e->gid)
        abort();
    all = malloc((lines + 1) * sizeof *all);
    if (all == NULL)
        return;
    m = bl_group_list(text, text_len, e->name, e->name_len, e->gid, all, lines + 1);
    if (m != n || memcmp(all, capped, written * sizeof *all) != 0)
        abort(); /* the capped call wrote what the uncapped one did, and counted the same */
    for (size_t i = 1; i < n; i++)
        if (all[i] > ID_MAX)
            abort();
    free(all);
}

/* The first line's first field (cut at NAME_SZ - 1 bytes), to look it up by name. */
static void first_name(char *out)
{
    size_t n = 0;

    while (n < text_len && n < NAME_SZ - 1 && text[n] != ':' && text[n] != '\n' && text[n] != 0)
        n++;
    memcpy(out, text, n);
    out[n] = '\0';
}

static void check_name(const char *name, size_t cap)
{
    struct bl_pw_entry e, again;
    gid_t gid;

    if (bl_passwd_by_name(text, text_len, name, &e) == 0) {
        check_entry(&e);
        if (e.name_len != strlen(name) || memcmp(e.name, name, e.name_len) != 0)
            abort();
        if (bl_passwd_by_uid(text, text_len, e.uid, &again) < 0 || again.uid != e.uid)
            abort(); /* the entry found by name is there for its uid too */
        check_entry(&again);
        check_groups(&e, cap);
    }
    if (bl_group_by_name(text, text_len, name, &gid) == 0 && gid > ID_MAX)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *names[] = {"root", "user", "bob", "a"};
    struct bl_pw_entry e;
    char name[NAME_SZ];
    size_t cap;

    if (size < 1)
        return 0;
    cap = data[0] % SLOTS;
    text = (const char *)data + 1;
    text_len = size - 1;
    first_name(name);
    check_name(name, cap);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        check_name(names[i], cap);
    if (bl_passwd_by_uid(text, text_len, 0, &e) == 0) {
        check_entry(&e);
        if (e.uid != 0)
            abort();
        check_groups(&e, cap);
    }
    return 0;
}
