/* timing.c — boxlite_box_get_timing through the public API (run by
 * tests/integration/test_box_timing.py): the version rules (0 and newer refused, only the
 * struct's own bytes written); a create's stages, then a cold start's, a start that only
 * attaches, and a start restored from a warm template: each stage >= 0 where the path has it,
 * -1 where it has not, and a call's stages summing to at most its total, itself at most the
 * wall time this program measured around it; a start on a handle still attached leaves it
 * be. Prints each call's timing; exit 0 when all hold. */
#include <boxlite.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "check.h"

#define SLACK_MS 5 /* two clocks read a moment apart, each rounded down to the ms */

static int failures;

static void show(const char *what, const boxlite_box_timing *t)
{
    printf("%s: image_prepare=%lld filesystem_setup=%lld box_config=%lld create=%lld "
           "guest_rootfs=%lld box_spawn=%lld guest_boot=%lld container_init=%lld start=%lld "
           "total_create=%lld\n",
           what, (long long)t->image_prepare_ms, (long long)t->filesystem_setup_ms,
           (long long)t->box_config_ms, (long long)t->create_ms, (long long)t->guest_rootfs_ms,
           (long long)t->box_spawn_ms, (long long)t->guest_boot_ms, (long long)t->container_init_ms,
           (long long)t->start_ms, (long long)t->total_create_ms);
}

static void check_versions(boxlite_box *box)
{
    struct {
        boxlite_box_timing t;
        unsigned char after[64];
    } buf;
    boxlite_box_timing t = BOXLITE_BOX_TIMING_INIT;
    unsigned char ff[64];

    memset(ff, 0xff, sizeof(ff));
    t.version = 0;
    CHECK(boxlite_box_get_timing(&t, box) == BOXLITE_EINVAL, "version 0 refused");
    t.version = BOXLITE_BOX_TIMING_VERSION + 1;
    CHECK(boxlite_box_get_timing(&t, box) == BOXLITE_EINVAL, "a newer version refused");
    CHECK(boxlite_box_timing_init(&t, 0) == BOXLITE_EINVAL, "init of version 0 refused");
    CHECK(boxlite_box_get_timing(NULL, box) == BOXLITE_EINVAL, "NULL out refused");
    memset(&buf, 0xff, sizeof(buf));
    CHECK(boxlite_box_timing_init(&buf.t, 1) == 0 && buf.t.version == 1, "init version 1");
    CHECK(boxlite_box_get_timing(&buf.t, box) == 0 && buf.t.version == 1, "get at version 1");
    CHECK(memcmp(buf.after, ff, sizeof(ff)) == 0, "nothing written past a version 1 struct");
}

/* The create's stages: each measured, their sum within the call, the call within the wall. */
static void check_create(const boxlite_box_timing *t, int64_t wall)
{
    CHECK(t->image_prepare_ms >= 0 && t->filesystem_setup_ms >= 0 && t->box_config_ms >= 0,
          "create stages measured");
    CHECK(t->image_prepare_ms + t->filesystem_setup_ms + t->box_config_ms <= t->create_ms,
          "create stages within the create");
    CHECK(t->create_ms >= 0 && t->create_ms <= wall + SLACK_MS, "create within its wall time");
}

/* A start that booted: every boot stage measured, spawn and boot > 0, within the wall. */
static void check_boot(const boxlite_box_timing *t, int64_t wall, const char *what)
{
    CHECK(t->guest_rootfs_ms >= 0 && t->container_init_ms >= 0, what);
    CHECK(t->box_spawn_ms > 0 && t->guest_boot_ms > 0, what);
    CHECK(t->guest_rootfs_ms + t->box_spawn_ms + t->guest_boot_ms + t->container_init_ms <=
              t->start_ms,
          what);
    CHECK(t->start_ms >= 0 && t->start_ms <= wall + SLACK_MS, what);
}

static int has_usable_template(boxlite_runtime *rt)
{
    boxlite_template_info *list = NULL;
    size_t n = 0;
    int found = 0;

    if (boxlite_template_list(&list, &n, rt, BOXLITE_TEMPLATE_INFO_VERSION) != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        found |= list[i].usable;
    boxlite_template_list_free(list, n);
    return found;
}

int main(void)
{
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL, *other = NULL;
    boxlite_box_options bo = BOXLITE_BOX_OPTIONS_INIT;
    boxlite_box_timing t = BOXLITE_BOX_TIMING_INIT;
    int64_t t0;

    bo.name = "timer";
    CHECK(boxlite_runtime_open(&rt, NULL) == 0, "open");
    t0 = now_ms();
    CHECK(boxlite_box_create(&box, rt, &bo) == 0, "create");
    if (box == NULL)
        return 1;
    CHECK(boxlite_box_get_timing(&t, box) == 0, "timing after create");
    show("create", &t);
    check_create(&t, now_ms() - t0);
    CHECK(t.guest_rootfs_ms == -1 && t.box_spawn_ms == -1 && t.guest_boot_ms == -1 &&
              t.container_init_ms == -1 && t.start_ms == -1 && t.total_create_ms == -1,
          "no start yet: its stages not measured");
    check_versions(box);

    t0 = now_ms();
    CHECK(boxlite_box_start_flags(box, BOXLITE_START_COLD) == 0, "cold start");
    CHECK(boxlite_box_get_timing(&t, box) == 0, "timing after the cold start");
    show("cold start", &t);
    check_boot(&t, now_ms() - t0, "cold start stages");
    check_create(&t, t.create_ms); /* kept from the create */
    CHECK(t.total_create_ms == t.create_ms + t.start_ms, "total = create + start");
    {
        boxlite_box_timing again = BOXLITE_BOX_TIMING_INIT;
        CHECK(boxlite_box_start(box) == 0 && boxlite_box_get_timing(&again, box) == 0 &&
                  memcmp(&again, &t, sizeof(t)) == 0,
              "a start on the attached handle changes nothing");
    }

    CHECK(boxlite_box_get(&other, rt, "timer") == 0, "a second handle");
    CHECK(boxlite_box_get_timing(&t, other) == 0, "timing of a handle that did nothing");
    CHECK(t.create_ms == -1 && t.start_ms == -1 && t.image_prepare_ms == -1 &&
              t.guest_boot_ms == -1 && t.total_create_ms == -1,
          "nothing measured on a handle that did nothing");
    CHECK(boxlite_box_start(other) == 0, "start of a running box: attach");
    CHECK(boxlite_box_get_timing(&t, other) == 0, "timing after the attach");
    show("attach", &t);
    CHECK(t.start_ms >= 0 && t.guest_rootfs_ms == -1 && t.box_spawn_ms == -1 &&
              t.guest_boot_ms == -1 && t.container_init_ms == -1,
          "an attach: no boot stages");
    boxlite_box_free(other);

    CHECK(boxlite_box_stop(box, 60000) == 0, "stop");
    CHECK(boxlite_template_warm(rt, 0, 0) == 0, "warm the default shape's template");
    CHECK(has_usable_template(rt), "a usable template");
    t0 = now_ms();
    CHECK(boxlite_box_start(box) == 0, "warm start");
    CHECK(boxlite_box_get_timing(&t, box) == 0, "timing after the warm start");
    show("warm start", &t);
    check_boot(&t, now_ms() - t0, "warm start stages (the restore is guest_boot)");
    CHECK(boxlite_box_remove(box, 1) == 0, "remove");
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    if (failures == 0)
        printf("ok\n");
    return failures == 0 ? 0 : 1;
}
