/* test_passwd.c — the agent's /etc/passwd and /etc/group reader (src/agent/passwd.c): lookups
 * by name and uid, group lists as musl's getgrouplist makes them, malformed and hostile lines;
 * every text lies at the very end of a page followed by an inaccessible one, so a read past
 * its end faults; well-formed texts are checked against glibc's fgetpwent / fgetgrent. */
#include "passwd.h"
#include "tap.h"

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LIT(s) (s), (sizeof(s) - 1)

static char *page;
static size_t page_size;

/* A copy of text[0..len) ending exactly where the readable page ends. */
static const char *edge(const char *text, size_t len)
{
    char *p = page + page_size - len;

    memcpy(p, text, len);
    return p;
}

static int setup(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    page = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return -1;
    return mprotect(page + page_size, page_size, PROT_NONE);
}

static int name_is(const struct bl_pw_entry *e, const char *name)
{
    return e->name_len == strlen(name) && memcmp(e->name, name, e->name_len) == 0;
}

static int dir_is(const struct bl_pw_entry *e, const char *dir)
{
    return e->dir_len == strlen(dir) && memcmp(e->dir, dir, e->dir_len) == 0;
}

static const char normal_pw[] = "root:x:0:0:root:/root:/bin/sh\n"
                                "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                                "user:x:1000:1000:A User,,,:/home/user:/bin/sh\n"
                                "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

static void normal_passwd(void)
{
    const char *b = edge(LIT(normal_pw));
    size_t n = sizeof normal_pw - 1;
    struct bl_pw_entry e;

    CHECK(bl_passwd_by_name(b, n, "user", &e) == 0 && name_is(&e, "user") && e.uid == 1000 &&
              e.gid == 1000 && dir_is(&e, "/home/user"),
          "by name: uid, gid, dir");
    CHECK(bl_passwd_by_name(b, n, "root", &e) == 0 && e.uid == 0 && dir_is(&e, "/root"),
          "by name: root");
    CHECK(bl_passwd_by_uid(b, n, 65534, &e) == 0 && name_is(&e, "nobody") && e.gid == 65534,
          "by uid: the name comes back");
    CHECK(bl_passwd_by_name(b, n, "use", &e) < 0 && bl_passwd_by_name(b, n, "users", &e) < 0,
          "a prefix or an extension of a name is not the name");
    CHECK(bl_passwd_by_name(b, n, "", &e) < 0, "the empty name matches nothing");
    CHECK(bl_passwd_by_uid(b, n, 4242, &e) < 0, "an unknown uid");
    CHECK(bl_passwd_by_name(NULL, 0, "root", &e) < 0 && bl_passwd_by_uid(NULL, 0, 0, &e) < 0,
          "an empty file has nobody");
}

static void first_match_wins(void)
{
    static const char t[] = "a:x:10:10::/first:/bin/sh\n"
                            "b:x:10:11::/b:/bin/sh\n"
                            "a:x:20:20::/second:/bin/sh\n";
    const char *b = edge(LIT(t));
    struct bl_pw_entry e;

    CHECK(bl_passwd_by_name(b, sizeof t - 1, "a", &e) == 0 && e.uid == 10 && dir_is(&e, "/first"),
          "the first line of a name wins");
    CHECK(bl_passwd_by_uid(b, sizeof t - 1, 10, &e) == 0 && name_is(&e, "a"),
          "the first line of a uid wins");
    CHECK(bl_passwd_by_uid(b, sizeof t - 1, 20, &e) == 0 && dir_is(&e, "/second"),
          "a later line is found by its own uid");
}

static void skipped_lines(void)
{
    static const char t[] = "\n"
                            "# comment:x:1:1::/c:/bin/sh\n"
                            "#c:x:2:2::/c:/bin/sh\n"
                            "short:x:3:3:gecos:/only-six-fields\n"
                            "nouid:x::4::/n:/bin/sh\n"
                            "sign:x:+5:5::/s:/bin/sh\n"
                            "space:x: 6:6::/s:/bin/sh\n"
                            "trail:x:7 :7::/s:/bin/sh\n"
                            "hex:x:0x8:8::/h:/bin/sh\n"
                            "big:x:2147483648:9::/b:/bin/sh\n"
                            "huge:x:99999999999999999999999:9::/b:/bin/sh\n"
                            "biggid:x:10:4294967297::/b:/bin/sh\n"
                            ":x:11:11::/empty:/bin/sh\n"
                            "ok:x:2147483647:0000012::/ok:/bin/sh\n";
    const char *b = edge(LIT(t));
    size_t n = sizeof t - 1;
    static const char *skipped[] = {"# comment", "#c",  "short", "nouid", "sign",  "space",
                                    "trail",     "hex", "big",   "huge",  "biggid"};
    struct bl_pw_entry e;
    size_t i, bad = 0;

    for (i = 0; i < sizeof skipped / sizeof skipped[0]; i++)
        bad += bl_passwd_by_name(b, n, skipped[i], &e) == 0;
    CHECK_EQ(bad, 0, "comments, too few fields, empty/signed/spaced/hex/huge ids are skipped");
    CHECK(bl_passwd_by_uid(b, n, 3, &e) < 0 && bl_passwd_by_uid(b, n, 10, &e) < 0 &&
              bl_passwd_by_uid(b, n, 11, &e) < 0 && bl_passwd_by_uid(b, n, 1, &e) < 0,
          "skipped lines are not found by uid either (the empty name too)");
    CHECK(bl_passwd_by_name(b, n, "ok", &e) == 0 && e.uid == 0x7fffffff && e.gid == 12,
          "0x7fffffff and leading zeros are accepted");
}

static void no_trailing_newline(void)
{
    static const char t[] = "root:x:0:0:root:/root:/bin/sh\nlast:x:5:6::/home/last:/bin/sh";
    static const char g[] = "root:x:0:\nlastg:x:77:a,last";
    struct bl_pw_entry e;
    gid_t groups[4], gid = 0;
    const char *b = edge(LIT(t));

    CHECK(bl_passwd_by_name(b, sizeof t - 1, "last", &e) == 0 && e.uid == 5 &&
              dir_is(&e, "/home/last"),
          "passwd: a last line without a newline counts, whole");
    b = edge(LIT(g));
    CHECK(bl_group_by_name(b, sizeof g - 1, "lastg", &gid) == 0 && gid == 77,
          "group: a last line without a newline counts");
    CHECK(bl_group_list(b, sizeof g - 1, LIT("last"), 6, groups, 4) == 2 && groups[1] == 77,
          "group: its last member, unterminated, is a member");
    b = edge(LIT("x:y:1:1:g:/d"));
    CHECK(bl_passwd_by_name(b, 12, "x", &e) < 0, "an unterminated line of six fields is skipped");
}

static void embedded_nuls(void)
{
    static const char t[] = "a:x:1:1::/a:/bin/sh\0junk\n"
                            "b:x:2\0:2::/b:/bin/sh\n"
                            "c\0:x:3:3::/c:/bin/sh\n"
                            "d:x:4:4::/d\0:/bin/sh\n"
                            "e:x:5:5::/e:/bin/sh\n"
                            "f:x:6:6::/f:/bin\0";
    static const char g[] = "g1:x:10:u\0,v\n"
                            "g2:x:11:v,u\0\n"
                            "g3:x:12:\0u\n"
                            "g4:x:13:u";
    const char *b = edge(LIT(t));
    size_t n = sizeof t - 1;
    struct bl_pw_entry e;
    gid_t groups[8];

    CHECK(bl_passwd_by_name(b, n, "a", &e) == 0 && e.uid == 1, "a NUL in the shell ends the line");
    CHECK(bl_passwd_by_name(b, n, "b", &e) < 0 && bl_passwd_by_name(b, n, "c", &e) < 0 &&
              bl_passwd_by_name(b, n, "d", &e) < 0,
          "a NUL before the last field leaves too few fields");
    CHECK(bl_passwd_by_name(b, n, "e", &e) == 0 && e.uid == 5, "the line after a NUL is read");
    CHECK(bl_passwd_by_name(b, n, "f", &e) == 0 && e.uid == 6, "a NUL as the buffer's last byte");
    b = edge(LIT(g));
    CHECK(bl_group_list(b, sizeof g - 1, LIT("u"), 1, groups, 8) == 4 && groups[1] == 10 &&
              groups[2] == 11 && groups[3] == 13,
          "members after a NUL are not members");
    CHECK(bl_group_list(b, sizeof g - 1, LIT("v"), 1, groups, 8) == 2 && groups[1] == 11,
          "... so v is only in g2");
}

static void member_lists(void)
{
    static const char g[] = "root:x:0:\n"
                            "first:x:101:bob,alice\n"
                            "middle:x:102:alice,bob,carol\n"
                            "last:x:103:alice,bob\n"
                            "absent:x:104:alice,carol\n"
                            "prefix:x:105:bobby,bo,xbob\n"
                            "only:x:106:bob\n"
                            "again:x:101:bob\n"
                            "primary:x:1000:bob\n"
                            "spaced:x:107:alice, bob\n"
                            "empty:x:108:\n"
                            "bad:x:1x:bob\n"
                            "nomem:x:109\n";
    const char *b = edge(LIT(g));
    size_t n = sizeof g - 1;
    static const gid_t want[] = {1000, 101, 102, 103, 106, 101, 1000};
    gid_t groups[16];
    size_t got = bl_group_list(b, n, LIT("bob"), 1000, groups, 16);

    CHECK(got == 7 && memcmp(groups, want, sizeof want) == 0,
          "bob: the primary gid, then first/middle/last/only, duplicates kept, file order");
    CHECK(bl_group_list(b, n, LIT("bobby"), 5, groups, 16) == 2 && groups[0] == 5 &&
              groups[1] == 105,
          "bobby is not bob and bob is not bobby");
    CHECK(bl_group_list(b, n, LIT("nobody"), 42, groups, 16) == 1 && groups[0] == 42,
          "a user in no group has its primary gid alone");
    CHECK(bl_group_list(NULL, 0, LIT("bob"), 42, groups, 16) == 1 && groups[0] == 42,
          "no /etc/group: the primary gid alone (musl's answer for a missing file)");
    CHECK(bl_group_list(b, n, "bob", 0, 42, groups, 16) == 1, "the empty name is in no group");
}

static void the_cap(void)
{
    char t[4096];
    gid_t groups[6] = {0, 0, 0, 0, 0, 0};
    size_t len = 0, i;

    for (i = 0; i < 100; i++)
        len += (size_t)snprintf(t + len, sizeof t - len, "g%zu:x:%zu:a,u\n", i, 500 + i);
    const char *b = edge(t, len);
    CHECK_EQ(bl_group_list(b, len, LIT("u"), 7, groups, 5), 101, "all 101 groups are counted");
    CHECK(groups[0] == 7 && groups[1] == 500 && groups[4] == 503 && groups[5] == 0,
          "only the first 5 are written");
    CHECK_EQ(bl_group_list(b, len, LIT("u"), 7, NULL, 0), 101, "cap 0 writes nothing, counts");
}

static void group_by_name(void)
{
    static const char g[] = "root:x:0:\nwheel:x:10:root\nwheel:x:11:\nbig:x:2147483648:\n";
    const char *b = edge(LIT(g));
    gid_t gid = 99;

    CHECK(bl_group_by_name(b, sizeof g - 1, "wheel", &gid) == 0 && gid == 10,
          "a group by name; the first line wins");
    CHECK(bl_group_by_name(b, sizeof g - 1, "whee", &gid) < 0 &&
              bl_group_by_name(b, sizeof g - 1, "big", &gid) < 0 && gid == 10,
          "a prefix, or a group with a huge gid, is not found; out untouched");
}

/* Every passwd entry and every group list of a well-formed text, as glibc reads them. */
static void against_glibc(void)
{
    static const char pw[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "user:x:1000:1000:User:/home/user:/bin/sh\n"
                             "bob:x:1001:100::/home/bob:/bin/false\n"
                             "bobby:x:1002:100:B:/:/bin/sh\n"
                             "twin:x:1000:5::/twin:/bin/sh\n";
    static const char gr[] = "root:x:0:root\n"
                             "users:x:100:user,bob,bobby\n"
                             "wheel:x:10:bobby,root\n"
                             "extra:x:2345:user\n"
                             "dup:x:100:bob\n"
                             "none:x:9:\n";
    FILE *f = fmemopen((void *)pw, sizeof pw - 1, "r");
    struct passwd *p;
    struct bl_pw_entry e;
    int entries = 0, same = 0;

    while (f != NULL && (p = fgetpwent(f)) != NULL) {
        gid_t mine[16], theirs[16];
        size_t n = 0, m;
        struct group *g;
        FILE *gf = fmemopen((void *)gr, sizeof gr - 1, "r");

        entries++;
        theirs[n++] = p->pw_gid;
        while (gf != NULL && (g = fgetgrent(gf)) != NULL)
            for (char **mem = g->gr_mem; *mem != NULL; mem++)
                if (strcmp(*mem, p->pw_name) == 0)
                    theirs[n++] = g->gr_gid;
        if (gf != NULL)
            fclose(gf);
        m = bl_group_list(gr, sizeof gr - 1, p->pw_name, strlen(p->pw_name), p->pw_gid, mine, 16);
        same += m == n && memcmp(mine, theirs, n * sizeof mine[0]) == 0 &&
                bl_passwd_by_name(pw, sizeof pw - 1, p->pw_name, &e) == 0 && e.uid == p->pw_uid &&
                e.gid == p->pw_gid && dir_is(&e, p->pw_dir);
    }
    if (f != NULL)
        fclose(f);
    CHECK(entries == 5 && same == 5, "every entry and group list as glibc's fgetpwent/fgetgrent");
    CHECK(bl_passwd_by_uid(pw, sizeof pw - 1, 1000, &e) == 0 && name_is(&e, "user"),
          "uid 1000 is user (the first), as getpwuid");
}

int main(void)
{
    if (!CHECK(setup() == 0, "a page with a guard page after it"))
        return tap_done();
    normal_passwd();
    first_match_wins();
    skipped_lines();
    no_trailing_newline();
    embedded_nuls();
    member_lists();
    the_cap();
    group_by_name();
    against_glibc();
    return tap_done();
}
