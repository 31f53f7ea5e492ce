/* curl_lazy.h — libcurl, loaded when the first registry is opened rather than by every program
 * that links libboxlite: the registry client (registry.c) is its only user, and loading curl
 * with its dependencies (Kerberos, LDAP, SSH, RTMP…) was most of an empty CLI invocation's cost
 * (issue 12, "load what a verb needs"). The table holds the functions registry.c calls. */
#ifndef BL_CURL_LAZY_H
#define BL_CURL_LAZY_H

#include <curl/curl.h>

struct bl_curl {
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    const char *(*easy_strerror)(CURLcode);
    char *(*easy_escape)(CURL *, const char *, int);
    void (*free)(void *);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
};

/* The table, libcurl loaded (dlopen of its soname, found as the library's own dependencies
 * are: its run path, then the system's) and initialised once per process. BOXLITE_ENOTSUP with
 * the loader's reason when libcurl cannot be loaded. *out is static: never freed.
 * Thread-safe. */
int bl_curl_load(const struct bl_curl **out);

#endif
