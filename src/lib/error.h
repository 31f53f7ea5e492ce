/* error.h — the library's one error model: int codes plus a per-thread message that gains
 * context as it travels up (bl_err sets it, bl_err_wrap prefixes it). */
#ifndef BL_ERROR_H
#define BL_ERROR_H

#include "boxlite.h"

/* Set this thread's message from fmt and return code (so callers can `return bl_err(...)`). */
int bl_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like bl_err, with ": strerror(errnum)" appended. */
int bl_err_errno(int code, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefix the current message with context ("start box X: <message>") and return code. */
int bl_err_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clear this thread's message. */
void bl_err_clear(void);

/* Map an errno value to a BOXLITE_E* code. */
int bl_code_from_errno(int errnum);

#endif
