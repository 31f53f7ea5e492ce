/* curl_lazy.c — loads libcurl on first use and hands registry.c its function table
 * (curl_lazy.h says why). */
#include "curl_lazy.h"
#include "error.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define CURL_SONAME "libcurl.so.4"

static struct bl_curl api;
static char why[256]; /* empty once loaded */
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Each symbol or a note of the first that is missing. */
static void *sym(void *h, const char *name)
{
    void *p = dlsym(h, name);

    if (!p && !why[0])
        snprintf(why, sizeof(why), "%s has no %s", CURL_SONAME, name);
    return p;
}

static void load(void)
{
    CURLcode (*global_init)(long);
    void *h = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);

    if (!h) {
        snprintf(why, sizeof(why), "%s", dlerror());
        return;
    }
    *(void **)&api.easy_init = sym(h, "curl_easy_init");
    *(void **)&api.easy_cleanup = sym(h, "curl_easy_cleanup");
    *(void **)&api.easy_reset = sym(h, "curl_easy_reset");
    *(void **)&api.easy_setopt = sym(h, "curl_easy_setopt");
    *(void **)&api.easy_perform = sym(h, "curl_easy_perform");
    *(void **)&api.easy_getinfo = sym(h, "curl_easy_getinfo");
    *(void **)&api.easy_strerror = sym(h, "curl_easy_strerror");
    *(void **)&api.easy_escape = sym(h, "curl_easy_escape");
    *(void **)&api.free = sym(h, "curl_free");
    *(void **)&api.slist_append = sym(h, "curl_slist_append");
    *(void **)&api.slist_free_all = sym(h, "curl_slist_free_all");
    *(void **)&global_init = sym(h, "curl_global_init");
    if (why[0])
        return; /* the handle stays open: harmless, and a half-loaded table is never used */
    if (global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        snprintf(why, sizeof(why), "curl_global_init failed");
}

int bl_curl_load(const struct bl_curl **out)
{
    pthread_once(&once, load);
    if (why[0])
        return bl_err(BOXLITE_ERROR, "the registry client needs libcurl: %s", why);
    *out = &api;
    return 0;
}
