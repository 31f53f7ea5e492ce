/* image.c — images in the store: each image's read-only base ext4 under
 * images/rootfs/<digest>.ext4, starting with the built-in default image. */
#include "image.h"
#include "runtime.h"
#include "error.h"
#include "util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The default image ships as default.ext4 with default.ext4.sha256 beside it; the store keeps
 * its own copy under that digest so that rebuilding the guest never changes the base of an
 * existing box. */
static int default_base(char **out, boxlite_runtime *rt)
{
    char *src = NULL, *sumfile = NULL, *sum = NULL, *dst = NULL;
    size_t len = 0;
    int rc;

    rc = bl_runtime_guest_file(&src, rt, "default.ext4");
    if (rc == 0)
        rc = bl_runtime_guest_file(&sumfile, rt, "default.ext4.sha256");
    if (rc == 0)
        rc = bl_read_file(&sum, &len, sumfile, 256);
    if (rc != 0)
        goto out;
    while (len > 0 && isspace((unsigned char)sum[len - 1]))
        sum[--len] = '\0';
    if (len != 64 || strspn(sum, "0123456789abcdef") != 64) {
        rc = bl_err(BOXLITE_EIO, "%s does not hold a sha256 digest", sumfile);
        goto out;
    }
    dst = bl_strdupf("%s/images/rootfs/%s.ext4", rt->home, sum);
    if (!dst) {
        rc = BOXLITE_ENOMEM;
        goto out;
    }
    if (access(dst, R_OK) != 0)
        rc = bl_copy_file_sparse(src, dst, 0444);
    if (rc == 0) {
        *out = dst;
        dst = NULL;
    }
out:
    free(src);
    free(sumfile);
    free(sum);
    free(dst);
    return rc;
}

static char **strv_new(const char *const *src)
{
    size_t n = 0;
    char **v;

    while (src && src[n])
        n++;
    v = calloc(n + 1, sizeof(*v));
    for (size_t i = 0; v && i < n; i++) {
        v[i] = strdup(src[i]);
        if (!v[i]) {
            while (i > 0)
                free(v[--i]);
            free(v);
            v = NULL;
        }
    }
    return v;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

void bl_image_free(struct bl_image *img)
{
    if (!img)
        return;
    free(img->ref);
    free(img->base_path);
    strv_free(img->env);
    strv_free(img->entrypoint);
    strv_free(img->cmd);
    free(img->workdir);
    free(img->user);
    free(img);
}

static int default_image(struct bl_image *img, boxlite_runtime *rt)
{
    static const char *const env[] = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    static const char *const cmd[] = {"sh", NULL};
    static const char *const none[] = {NULL};
    int rc = default_base(&img->base_path, rt);

    if (rc != 0)
        return rc;
    img->ref = strdup("default");
    img->env = strv_new(env);
    img->cmd = strv_new(cmd);
    img->entrypoint = strv_new(none);
    img->workdir = strdup("/");
    img->user = strdup("");
    if (!img->ref || !img->env || !img->cmd || !img->entrypoint || !img->workdir || !img->user)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    return 0;
}

int bl_image_open(struct bl_image **out, boxlite_runtime *rt, const char *ref)
{
    struct bl_image *img = calloc(1, sizeof(*img));
    int rc;

    if (!img)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    if (!ref || !*ref || strcmp(ref, "default") == 0)
        rc = default_image(img, rt);
    else
        rc = bl_err(BOXLITE_ENOTFOUND,
                    "image \"%s\": only the built-in default image is "
                    "available in this build (registry pulls are not implemented yet)",
                    ref);
    if (rc != 0) {
        bl_err_wrap(rc, "prepare image %s", ref && *ref ? ref : "(default)");
        bl_image_free(img);
    } else {
        *out = img;
    }
    return rc;
}
