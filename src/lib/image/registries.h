/* registries.h — the reader of $BOXLITE_HOME/registries.json (image.c) on its own: the file
 * decides where pulls go and with which credentials, and tests/fuzz/fuzz_registries.c feeds
 * it crafted documents. Everything else about a runtime's registries is in image.h. */
#ifndef BL_REGISTRIES_H
#define BL_REGISTRIES_H

#include <stddef.h>

struct bl_images;
struct bl_registry_conf;

/* An empty registry list. NULL when out of memory. Free with bl_images_destroy. */
struct bl_images *bl_images_new(void);
/* Free the list and every entry. Accepts NULL. */
void bl_images_destroy(struct bl_images *im);

/* Add the registries of a registries.json document (len bytes, need not be NUL-terminated;
 * path names it in messages) after those im holds: {"registries": [{"host": …, "transport":
 * "http"|"https", "skip_verify", "search", "username", "password", "token", "ca_file"}]}.
 * The first setting for a host wins. 0, or BOXLITE_EINVAL / BOXLITE_ENOMEM with a message;
 * entries added before a bad one stay. Not thread-safe on one im. */
int bl_registries_parse(struct bl_images *im, const char *text, size_t len, const char *path);

/* Entry i of im (borrowed), NULL past the end. */
const struct bl_registry_conf *bl_images_conf_at(const struct bl_images *im, size_t i);

#endif
