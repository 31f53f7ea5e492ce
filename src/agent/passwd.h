/* passwd.h — lookups in the text of an image's /etc/passwd and /etc/group, held in the caller's
 * buffer: no stdio, no allocation, no NSS or nscd (as runc and Docker read them). */
#ifndef BL_PASSWD_H
#define BL_PASSWD_H

#include <stddef.h>
#include <sys/types.h>

/* One /etc/passwd entry. name and dir point into the caller's buffer and are NOT
 * NUL-terminated: use name_len and dir_len. */
struct bl_pw_entry {
    const char *name;
    size_t name_len;
    uid_t uid;
    gid_t gid;
    const char *dir;
    size_t dir_len;
};

/* The rules every lookup shares (musl's __getpwent_a / __getgrent_a line layout):
 * - passwd lines are name:passwd:uid:gid:gecos:dir:shell, group lines name:passwd:gid:members
 *   with members split on ','; a line ends at '\n', the end of the buffer or its first NUL byte
 *   (what follows a NUL up to the '\n' is ignored, as musl's strchr ignores it);
 * - a line is skipped when it has too few fields, an empty name, a name starting with '#', or an
 *   id that is not 1 or more decimal digits worth at most 0x7fffffff;
 * - the first matching line wins.
 * buf may be NULL when len is 0. Nothing is read outside buf[0..len). */

/* The entry named name (a NUL-terminated string) in the passwd text buf[0..len): 0 and *out
 * set, or -1 (out untouched) when there is none. */
int bl_passwd_by_name(const char *buf, size_t len, const char *name, struct bl_pw_entry *out);

/* The first entry with uid in the passwd text: 0 and *out set, or -1 (out untouched). */
int bl_passwd_by_uid(const char *buf, size_t len, uid_t uid, struct bl_pw_entry *out);

/* The gid of the group named name (NUL-terminated) in the group text: 0 and *out set, or -1
 * (out untouched). */
int bl_group_by_name(const char *buf, size_t len, const char *name, gid_t *out);

/* The supplementary groups of user (user[0..user_len), not NUL-terminated) by musl's
 * getgrouplist: gid first, then the gid of every group line whose member list names the user,
 * in file order, duplicates kept. Writes at most cap of them to groups and returns how many
 * there are in all (which may be more than cap). */
size_t bl_group_list(const char *buf, size_t len, const char *user, size_t user_len, gid_t gid,
                     gid_t *groups, size_t cap);

#endif
