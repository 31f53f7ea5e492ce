/* template.h — warm templates: a box shape's VM saved once, just after its agent came up and
 * before anything box-specific, restored by every later start of that shape (docs/templates.md).
 * start.c asks for one with a struct bl_tmpl around its boot. */
#ifndef BL_TEMPLATE_H
#define BL_TEMPLATE_H

#include "boxlite.h"

struct bl_vm_config;

enum bl_tmpl_mode {
    BL_TMPL_NONE = 0, /* a cold boot as before (templates off, --cold, or not for this boot) */
    BL_TMPL_RESTORE,  /* restore the template, then attach the box */
    BL_TMPL_BUILD,    /* cold boot in template mode on a blank placeholder disk, save the
                       * template, end that boot: the next one restores it */
};

/* bl_template_finish after a build: the template is saved, boot again to restore it. */
#define BL_TMPL_BUILT 1

/* One boot's use of a template; bl_template_clear releases it. */
struct bl_tmpl {
    int wanted; /* set by the caller: this boot may use a template */
    enum bl_tmpl_mode mode;
    int lock_fd;  /* the template's lock, held while building it */
    char id[65];  /* sha256 of key: the directory under $BOXLITE_HOME/templates */
    char *key;    /* what the template depends on (text, see template.c) */
    char *dir;    /* $BOXLITE_HOME/templates/<id> */
    char *memory; /* dir/memory */
    /* what the attach tells the agent, taken from the boot's VM config */
    int network;
    char **volume_specs;
    char *disk;        /* the box's (attached after a restore) */
    char *placeholder; /* the blank disk a template is built on */
    int discarded;     /* one restore failed and the template was removed */
    int refill;        /* the box's RAM is its own copy: its monitor makes the next spare */
    int progress;      /* a build's progress line is open on the terminal (bl_progress_begin) */
};
#define BL_TMPL_INIT                                                                               \
    {                                                                                              \
        .lock_fd = -1                                                                              \
    }

/* 1 unless $BOXLITE_TEMPLATES is 0/off/no (the default is on). */
int bl_templates_enabled(void);

/* Before the boot (cfg is the box's VM config, accelerator chosen): when t->wanted, decide
 * restore or build (waiting for another process that builds it), set cfg->template_mode and
 * cfg->incoming, and *incoming_out to the memory file to restore (borrowed from t) or NULL.
 * A template that cannot be used is passed over with a notice. Never fails the boot except
 * for out of memory. */
int bl_template_prepare(struct bl_tmpl *t, boxlite_box *box, struct bl_vm_config *cfg,
                        const char **incoming_out);

/* After the agent answered: BUILD saves the template and returns BL_TMPL_BUILT (the caller
 * ends this boot and boots again); RESTORE attaches the box (its disk, mount, hostname,
 * network, volumes) and fixes its identity (RNG, MAC, hostname, clock) as forks do. */
int bl_template_finish(struct bl_tmpl *t, boxlite_box *box);

/* A restore that failed: say so once, remove the template, and make the next prepare build it. */
void bl_template_discard(struct bl_tmpl *t, boxlite_box *box, const char *why);

/* Kill a box whose template boot failed after its monitor started, so it can boot again
 * (start.c holds the box lock). */
void bl_template_abort_boot(boxlite_box *box);

void bl_template_clear(struct bl_tmpl *t);

#endif
