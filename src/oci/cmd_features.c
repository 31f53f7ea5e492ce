/* cmd_features.c — `features`: what this runtime supports, in the runtime-spec's
 * features.md shape. Namespaces, cgroups and seccomp are the VM's business, not the host's. */
#include "oci.h"

int bl_oci_cmd_features(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("{\n  \"ociVersionMin\": \"1.0.0\",\n  \"ociVersionMax\": \"1.1.0\",\n"
           "  \"hooks\": [],\n  \"mountOptions\": [\"bind\", \"rbind\", \"ro\", \"rw\"],\n"
           "  \"linux\": {\"namespaces\": [\"network\"], \"capabilities\": [],\n"
           "    \"cgroup\": {\"v1\": false, \"v2\": false, \"systemd\": false},\n"
           "    \"seccomp\": {\"enabled\": false}, \"apparmor\": {\"enabled\": false},\n"
           "    \"selinux\": {\"enabled\": false}},\n"
           "  \"annotations\": {\"io.boxlite.runtime\": \"micro-VM per container\"}\n}\n");
    return 0;
}
