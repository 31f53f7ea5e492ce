/* cmd_info.c — `boxlite info [--format json]`: versions, where the files are, the accelerator
 * a box started now gets (and whether that is a hardware boundary), and what the store holds
 * and takes on disk (boxlite_runtime_get_info). */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static double mib(uint64_t b)
{
    return (double)b / 1048576.0;
}

static void print_text(const boxlite_runtime_info *i)
{
    printf("version:     %s\n", i->boxlite_version);
    printf("home:        %s\n", i->home);
    printf("guest:       %s (kernel %s)\n", i->guest_dir, i->kernel_version);
    printf("qemu:        %s%s%s\n", i->qemu[0] ? i->qemu : "(not found)",
           i->qemu_version[0] ? " " : "", i->qemu_version);
    printf("shim:        %s\n", i->shim[0] ? i->shim : "(not found)");
    printf("accel:       %s%s%s%s\n", i->accel,
           i->hardware_isolated
               ? " (hardware-isolated; should QEMU fail under it, TCG with a notice)"
               : " (emulated: not a hardware boundary)",
           i->accel_reason[0] ? ": " : "", i->accel_reason);
    printf("boxes:       %u, %.1f MiB on disk\n", i->boxes, mib(i->boxes_bytes));
    printf("images:      %u, %.1f MiB on disk\n", i->images, mib(i->images_bytes));
    printf("templates:   %u, %.1f MiB on disk\n", i->templates, mib(i->templates_bytes));
}

static void field(const char *key, const char *value, int last)
{
    printf("  \"%s\": ", key);
    cli_json_str(stdout, value);
    printf(last ? "\n" : ",\n");
}

static void print_json(const boxlite_runtime_info *i)
{
    printf("{\n");
    field("version", i->boxlite_version, 0);
    field("home", i->home, 0);
    field("guest_dir", i->guest_dir, 0);
    field("kernel_version", i->kernel_version, 0);
    field("qemu", i->qemu, 0);
    field("qemu_version", i->qemu_version, 0);
    field("shim", i->shim, 0);
    field("accel", i->accel, 0);
    field("accel_reason", i->accel_reason, 0);
    printf("  \"hardware_isolated\": %s,\n", i->hardware_isolated ? "true" : "false");
    printf("  \"boxes\": %u,\n  \"boxes_bytes\": %llu,\n", i->boxes,
           (unsigned long long)i->boxes_bytes);
    printf("  \"images\": %u,\n  \"images_bytes\": %llu,\n", i->images,
           (unsigned long long)i->images_bytes);
    printf("  \"templates\": %u,\n  \"templates_bytes\": %llu\n}\n", i->templates,
           (unsigned long long)i->templates_bytes);
}

int cmd_info(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"format", 1, NULL, 'f'}, {"help", 0, NULL, 'h'}, {NULL, 0, NULL, 0}};
    boxlite_runtime_info info = BOXLITE_RUNTIME_INFO_INIT;
    boxlite_runtime *rt = NULL;
    int c, json = 0, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'f' && (strcmp(optarg, "json") == 0 || strcmp(optarg, "table") == 0)) {
            json = strcmp(optarg, "json") == 0;
        } else {
            FILE *f = c == 'h' ? stdout : stderr;
            fprintf(f, "usage: boxlite info [--format table|json]\n\nVersions, where the "
                       "files are, the accelerator, and what the store holds.\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind < argc)
        return fprintf(stderr, "usage: boxlite info [--format table|json]\n"), 2;
    rc = cli_open_runtime(&rt);
    if (rc == 0 && boxlite_runtime_get_info(&info, rt) != 0)
        rc = cli_fail("info");
    if (rc == 0)
        json ? print_json(&info) : print_text(&info);
    boxlite_runtime_free(rt);
    return rc;
}
