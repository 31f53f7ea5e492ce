/* error.c — per-thread error messages behind boxlite_error_last(), and the helpers the rest
 * of the library uses to set them and add context as a failure travels up. */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define BL_ERR_MAX 2048

static _Thread_local char err_msg[BL_ERR_MAX];

BOXLITE_API const char *boxlite_error_last(void)
{
    return err_msg;
}

void bl_err_clear(void)
{
    err_msg[0] = '\0';
}

int bl_err(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
    va_end(ap);
    return code;
}

int bl_err_errno(int code, int errnum, const char *fmt, ...)
{
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
    va_end(ap);
    n = strlen(err_msg);
    snprintf(err_msg + n, sizeof(err_msg) - n, ": %s", strerror(errnum));
    return code;
}

int bl_err_wrap(int code, const char *fmt, ...)
{
    char prefix[512];
    char old[BL_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err_msg, sizeof(old));
    if (snprintf(err_msg, sizeof(err_msg), "%s: %s", prefix, old[0] ? old : "failed") < 0)
        err_msg[0] = '\0';
    return code;
}

int bl_code_from_errno(int errnum)
{
    int code = BOXLITE_EIO;

    if (errnum == ENOENT)
        code = BOXLITE_ENOTFOUND;
    else if (errnum == EEXIST)
        code = BOXLITE_EEXISTS;
    else if (errnum == ENOMEM)
        code = BOXLITE_ENOMEM;
    else if (errnum == EINVAL)
        code = BOXLITE_EINVAL;
    else if (errnum == ETIMEDOUT)
        code = BOXLITE_ETIMEOUT;
    return code;
}
