/* test_boxstate.c — the box lifecycle model (src/lib/state/boxstate.c) against a real
 * boxlite.db and real flocks: names, the transition table, the guarded write, the run lock
 * (held by a live process, free once it dies) and the monitor's report line. */
#include "boxstate.h"
#include "db.h"
#include "tap.h"

#include <boxlite.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void names(void)
{
    int ok = 1;

    for (int i = 0; i < BL_BOX_STATE_COUNT; i++)
        ok = ok && (int)bl_box_state_parse(bl_box_state_name((enum bl_box_state)i)) == i;
    CHECK(ok, "every state's word parses back to it");
    CHECK_EQ(bl_box_state_parse("paused?"), BL_BOX_FAILED, "an unknown word reads as failed");
    CHECK(bl_box_state_live(BL_BOX_RUNNING) && bl_box_state_live(BL_BOX_STOPPING) &&
              !bl_box_state_live(BL_BOX_STOPPED) && !bl_box_state_live(BL_BOX_CONFIGURED),
          "live: running and stopping only");
}

static void table(void)
{
    CHECK(bl_box_transition_ok(BL_BOX_CONFIGURED, BL_BOX_RUNNING), "configured → running");
    CHECK(bl_box_transition_ok(BL_BOX_STOPPED, BL_BOX_RUNNING), "stopped → running (restart)");
    CHECK(!bl_box_transition_ok(BL_BOX_STOPPING, BL_BOX_RUNNING), "never stopping → running");
    CHECK(!bl_box_transition_ok(BL_BOX_RUNNING, BL_BOX_CONFIGURED), "never running → configured");
    CHECK(!bl_box_transition_ok(BL_BOX_CONFIGURED, BL_BOX_STOPPING),
          "a booting box is not stopping");
    CHECK(bl_box_transition_ok(BL_BOX_RUNNING, BL_BOX_FAILED), "running → failed");
    CHECK(!bl_box_transition_ok(BL_BOX_STATE_COUNT, BL_BOX_FAILED), "out of range: refused");
}

/* A box row in a fresh store under dir. */
static struct bl_db *store(const char *dir)
{
    struct bl_db *db = NULL;
    struct bl_box_row row = {0};

    if (bl_db_open(&db, dir) != 0)
        return NULL;
    snprintf(row.id, sizeof(row.id), "aaaabbbbcccc");
    row.image = "img";
    row.state = "configured";
    row.created_at = "2026-01-01T00:00:00Z";
    row.reason = "";
    row.cpus = 1;
    row.memory_mib = 128;
    if (bl_db_box_insert(db, &row) != 0) {
        bl_db_close(db);
        return NULL;
    }
    return db;
}

static void guarded_write(const char *dir)
{
    struct bl_db *db = store(dir);
    struct bl_box_row row = {0};

    if (!CHECK(db != NULL, "a store with one box"))
        return;
    CHECK_EQ(bl_box_transition(db, "aaaabbbbcccc", BL_BOX_RUNNING, 11, 12, NULL), 0,
             "configured → running written");
    CHECK_EQ(bl_box_transition(db, "aaaabbbbcccc", BL_BOX_STOPPING, 11, 12, "asked"), 0,
             "running → stopping written");
    CHECK_EQ(bl_box_transition(db, "aaaabbbbcccc", BL_BOX_RUNNING, 11, 12, NULL), BOXLITE_ESTATE,
             "a late running over stopping: refused");
    CHECK(strstr(boxlite_error_last(), "stopping") != NULL, "the refusal names the stored state");
    CHECK(bl_db_box_get(db, "aaaabbbbcccc", &row) == 0 && strcmp(row.state, "stopping") == 0 &&
              row.shim_pid == 11 && row.qemu_pid == 12 && strcmp(row.reason, "asked") == 0,
          "the row holds state, pids and reason of the last allowed move");
    bl_box_row_clear(&row);
    CHECK_EQ(bl_box_transition(db, "aaaabbbbcccc", BL_BOX_STOPPED, 0, 0, "done"), 0,
             "stopping → stopped");
    CHECK_EQ(bl_box_transition(db, "nosuchbox000", BL_BOX_STOPPED, 0, 0, NULL), BOXLITE_ENOTFOUND,
             "no such box: ENOTFOUND");
    bl_db_close(db);
}

static void run_lock(const char *dir)
{
    int go[2], fd;
    char c;
    pid_t pid;

    CHECK(!bl_run_lock_held(dir), "no run.lock: not alive");
    (void)!pipe(go);
    pid = fork();
    if (pid == 0) {
        fd = bl_run_lock_take(dir, 0);
        (void)!write(go[1], fd >= 0 ? "y" : "n", 1);
        pause();
        _exit(0);
    }
    (void)!read(go[0], &c, 1);
    CHECK(c == 'y', "a process takes the run lock");
    CHECK(bl_run_lock_held(dir), "held by a live process: alive");
    CHECK(bl_run_lock_take(dir, 50) < 0 && errno == EWOULDBLOCK,
          "a second monitor cannot take it (after waiting 50 ms)");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    CHECK(!bl_run_lock_held(dir), "its holder killed: not alive (the kernel dropped it)");
    fd = bl_run_lock_take(dir, 0);
    CHECK(fd >= 0, "and a new monitor can take it");
    close(fd);
    close(go[0]);
    close(go[1]);
}

static void report(void)
{
    char line[128];
    enum bl_shim_code code = BL_SHIM_OK;
    const char *msg = NULL;

    bl_shim_report_format(line, sizeof(line), BL_SHIM_E_QEMU_EXITED, "QEMU failed: kvm");
    CHECK(strcmp(line, "4 QEMU failed: kvm\n") == 0, "format: code, space, message, newline");
    line[strcspn(line, "\n")] = '\0';
    CHECK(bl_shim_report_parse(line, &code, &msg) == 0 && code == BL_SHIM_E_QEMU_EXITED &&
              strcmp(msg, "QEMU failed: kvm") == 0,
          "parse gives the code back");
    CHECK(bl_shim_report_parse("error qemu-exited: x", &code, &msg) < 0, "words are no code");
    CHECK(bl_shim_report_parse("99 x", &code, &msg) < 0, "an unknown code is refused");
    CHECK(bl_shim_report_parse("", &code, &msg) < 0, "an empty report is refused");
    CHECK(bl_shim_report_parse("0", &code, &msg) < 0, "a cut report is refused");
}

int main(void)
{
    char tmpl[] = "/tmp/bl-boxstate-XXXXXX";
    char *dir = mkdtemp(tmpl);
    char cmd[64];

    names();
    table();
    if (dir) {
        guarded_write(dir);
        run_lock(dir);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        (void)!system(cmd);
    }
    report();
    return tap_done();
}
