/* versions.c — the 1.0 API rules through the public library, no VM: the version numbers,
 * every _init function (refuses 0 and newer versions, writes no further than the caller's
 * version), the names beside the state/kind/log-level numbers, out-structs refused without
 * their version (before anything is done), versioned lists and their frees, and clone_v2's
 * argument order. Run by `meson test`. Exit 0 when all hold. */
#include <boxlite.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"

static int failures;

/* init(p, v) refuses 0 and current+1, gives the _INIT macro's bytes at current. */
#define CHECK_INIT(type, fn, current, macro)                                                       \
    do {                                                                                           \
        static const type b_ = macro; /* static: its padding is zero, as the library's */          \
        type a_;                                                                                   \
        memset(&a_, 0x5a, sizeof(a_));                                                             \
        CHECK(fn(&a_, 0) == BOXLITE_EINVAL, #fn " refuses version 0");                             \
        CHECK(fn(&a_, (current) + 1) == BOXLITE_EINVAL, #fn " refuses a newer version");           \
        CHECK(fn(&a_, current) == 0 && memcmp(&a_, &b_, sizeof(a_)) == 0, #fn " = " #macro);       \
    } while (0)

static void check_versions(void)
{
    unsigned char buf[sizeof(boxlite_runtime_options) + 16];
    boxlite_runtime_options *ro = (boxlite_runtime_options *)(void *)buf;

    CHECK(boxlite_version_number() == BOXLITE_VERSION_NUMBER, "version number");
    CHECK(strcmp(boxlite_version(), BOXLITE_VERSION) == 0, "version string");
    CHECK(BOXLITE_VERSION_NUMBER == 0x010000 && BOXLITE_VERSION_MAJOR == 1, "1.0.0");

    CHECK_INIT(boxlite_runtime_options, boxlite_runtime_options_init,
               BOXLITE_RUNTIME_OPTIONS_VERSION, BOXLITE_RUNTIME_OPTIONS_INIT);
    CHECK_INIT(boxlite_box_options, boxlite_box_options_init, BOXLITE_BOX_OPTIONS_VERSION,
               BOXLITE_BOX_OPTIONS_INIT);
    CHECK_INIT(boxlite_exec_options, boxlite_exec_options_init, BOXLITE_EXEC_OPTIONS_VERSION,
               BOXLITE_EXEC_OPTIONS_INIT);
    CHECK_INIT(boxlite_copy_options, boxlite_copy_options_init, BOXLITE_COPY_OPTIONS_VERSION,
               BOXLITE_COPY_OPTIONS_INIT);
    CHECK_INIT(boxlite_pull_options, boxlite_pull_options_init, BOXLITE_PULL_OPTIONS_VERSION,
               BOXLITE_PULL_OPTIONS_INIT);
    CHECK_INIT(boxlite_box_info, boxlite_box_info_init, BOXLITE_BOX_INFO_VERSION,
               BOXLITE_BOX_INFO_INIT);
    CHECK_INIT(boxlite_box_stats, boxlite_box_stats_init, BOXLITE_BOX_STATS_VERSION,
               BOXLITE_BOX_STATS_INIT);
    CHECK_INIT(boxlite_exec_result, boxlite_exec_result_init, BOXLITE_EXEC_RESULT_VERSION,
               BOXLITE_EXEC_RESULT_INIT);
    CHECK_INIT(boxlite_snapshot_info, boxlite_snapshot_info_init, BOXLITE_SNAPSHOT_INFO_VERSION,
               BOXLITE_SNAPSHOT_INFO_INIT);

    /* A caller built against runtime options version 1: its struct ends before registries. */
    memset(buf, 0xa5, sizeof(buf));
    CHECK(boxlite_runtime_options_init(ro, 1) == 0 && ro->version == 1 && !ro->home_dir,
          "runtime options version 1");
    for (size_t i = offsetof(boxlite_runtime_options, registries); i < sizeof(buf); i++)
        if (buf[i] != 0xa5) {
            CHECK(buf[i] == 0xa5, "version 1 init writes past version 1's fields");
            break;
        }

    /* A caller built against box info version 1: its struct ends before image_ref. */
    {
        unsigned char ib[sizeof(boxlite_box_info) + 16];
        boxlite_box_info *bi = (boxlite_box_info *)(void *)ib;

        memset(ib, 0xa5, sizeof(ib));
        CHECK(boxlite_box_info_init(bi, 1) == 0 && bi->version == 1, "box info version 1");
        for (size_t i = offsetof(boxlite_box_info, image_ref); i < sizeof(ib); i++)
            if (ib[i] != 0xa5) {
                CHECK(ib[i] == 0xa5, "box info version 1 init writes past its fields");
                break;
            }
    }
}

static void check_names(void)
{
    CHECK(strcmp(boxlite_box_state_name(BOXLITE_BOX_STATE_RUNNING), "running") == 0, "running");
    CHECK(strcmp(boxlite_box_state_name(BOXLITE_BOX_STATE_FAILED), "failed") == 0, "failed");
    CHECK(strcmp(boxlite_box_state_name(-1), "unknown") == 0, "state -1");
    CHECK(strcmp(boxlite_box_state_name(5), "unknown") == 0, "state 5");
    CHECK(strcmp(boxlite_snapshot_kind_name(BOXLITE_SNAPSHOT_KIND_FULL), "full") == 0, "full");
    CHECK(strcmp(boxlite_log_level_name(BOXLITE_LOG_WARN), "warn") == 0, "warn");
}

static void check_box(boxlite_runtime *rt)
{
    boxlite_box_options bo = BOXLITE_BOX_OPTIONS_INIT;
    boxlite_box *box = NULL, *clone = NULL;
    boxlite_box_info info, *list = NULL;
    boxlite_box_stats st;
    boxlite_snapshot_info si, *snaps = NULL;
    size_t n = 99;

    bo.name = "original";
    if (boxlite_box_create(&box, rt, &bo) != 0) {
        CHECK(0, "create a box");
        return;
    }
    memset(&info, 0, sizeof(info)); /* version 0: a caller that did not set it */
    CHECK(boxlite_box_get_info(&info, box) == BOXLITE_EINVAL && info.id[0] == '\0',
          "box info without its version is refused, untouched");
    boxlite_box_info_init(&info, BOXLITE_BOX_INFO_VERSION);
    CHECK(boxlite_box_get_info(&info, box) == 0 && info.version == BOXLITE_BOX_INFO_VERSION,
          "box info");
    {
        /* a caller built against box info version 1: nothing past its fields is written */
        unsigned char ib[sizeof(boxlite_box_info) + 16];
        boxlite_box_info *i1 = (boxlite_box_info *)(void *)ib;
        int past_ok = 1;
        memset(ib, 0xa5, sizeof(ib));
        CHECK(boxlite_box_info_init(i1, 1) == 0 && boxlite_box_get_info(i1, box) == 0 &&
                  i1->version == 1 && strcmp(i1->id, boxlite_box_id(box)) == 0,
              "box info version 1");
        for (size_t i = offsetof(boxlite_box_info, has_exit_code); i < sizeof(ib); i++)
            past_ok &= ib[i] == 0xa5;
        CHECK(past_ok, "box info version 1 is not written past its fields");
        CHECK(info.has_exit_code == 0 && info.auto_delete == -1 && info.no_main == 0,
              "box info version 2: no exit yet, auto_delete unset, a main process");
    }
    CHECK(info.state_code == BOXLITE_BOX_STATE_CONFIGURED &&
              strcmp(info.state, boxlite_box_state_name(info.state_code)) == 0,
          "state and state_code agree");
    memset(&st, 0, sizeof(st));
    CHECK(boxlite_box_get_stats(&st, box) == BOXLITE_EINVAL, "stats without version");

    memset(&si, 0, sizeof(si));
    CHECK(boxlite_snapshot_create(&si, box, "s1", 0) == BOXLITE_EINVAL,
          "snapshot info without version is refused");
    CHECK(boxlite_snapshot_list_v2(&snaps, &n, box, BOXLITE_SNAPSHOT_INFO_VERSION) == 0 && n == 0,
          "... before a snapshot is made");
    boxlite_snapshot_list_free(snaps, n);
    CHECK(boxlite_snapshot_list_v2(&snaps, &n, box, BOXLITE_SNAPSHOT_INFO_VERSION + 1) ==
              BOXLITE_EINVAL,
          "snapshot list of a newer version");

    CHECK(boxlite_box_list_v2(&list, &n, rt, BOXLITE_BOX_INFO_VERSION + 1) == BOXLITE_EINVAL,
          "box list of a newer version");
    CHECK(boxlite_box_list_v2(&list, &n, rt, BOXLITE_BOX_INFO_VERSION) == 0 && n == 1 &&
              list[0].version == BOXLITE_BOX_INFO_VERSION && strcmp(list[0].name, "original") == 0,
          "box list");
    boxlite_box_list_free(list, n);

    {
        boxlite_template_info *tl = NULL;
        size_t tn = 0;
        CHECK(boxlite_template_list(&tl, &tn, rt, BOXLITE_TEMPLATE_INFO_VERSION + 1) ==
                  BOXLITE_EINVAL,
              "template list of a newer version");
        CHECK(boxlite_template_list(&tl, &tn, rt, BOXLITE_TEMPLATE_INFO_VERSION) == 0,
              "template list");
        boxlite_template_list_free(tl, tn);
        CHECK(boxlite_box_start_flags(box, 1u << 7) == BOXLITE_EINVAL, "start with unknown flags");
    }

    /* clone_v2: out, source, snapshot, name (fork's order). */
    CHECK(boxlite_box_clone_v2(&clone, box, NULL, "copy") == 0 &&
              strcmp(boxlite_box_name(clone), "copy") == 0,
          "clone_v2 takes the name last");
    CHECK(boxlite_box_remove(clone, 0) == 0, "remove the clone");
    boxlite_box_free(clone);
    CHECK(boxlite_box_remove(box, 0) == 0, "remove the box");
    boxlite_box_free(box);
}

int main(void)
{
    char home[] = "/tmp/boxlite-versions-XXXXXX";
    boxlite_runtime_options ro;
    boxlite_runtime *rt = NULL;

    check_versions();
    check_names();
    if (!mkdtemp(home))
        return 2;
    boxlite_runtime_options_init(&ro, BOXLITE_RUNTIME_OPTIONS_VERSION);
    ro.home_dir = home;
    if (boxlite_runtime_open(&rt, &ro) == 0)
        check_box(rt);
    else
        CHECK(0, "open a runtime");
    boxlite_runtime_free(rt);
    if (fork() == 0) {
        execlp("rm", "rm", "-rf", home, (char *)NULL);
        _exit(127);
    }
    if (failures)
        fprintf(stderr, "%d failure(s)\n", failures);
    else
        printf("all API rules hold\n");
    return failures ? 1 : 0;
}
