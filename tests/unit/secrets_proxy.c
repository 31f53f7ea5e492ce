/* secrets_proxy.c — the shim's secrets proxy (src/shim/secrets.c) on its own, for
 * tests/integration/test_secrets_proxy.py: run in a directory holding a `secrets` file, it
 * serves secrets.sock there until its stdin closes. The box's network policy (net.c) is
 * replaced by one that allows 127.0.0.1 only, where the test's servers are. */
#include "shim.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int shim_net_dest_allowed(const struct shim_net *n, const char *name, uint32_t ip, uint16_t port)
{
    return ip == 0x7f000001u;
}

int main(int argc, char **argv)
{
    struct shim_secrets *s = NULL;
    char err[200] = "", buf[64];

    signal(SIGPIPE, SIG_IGN); /* as the shim does (main.c) */
    if (argc != 2 || chdir(argv[1]) != 0) {
        fprintf(stderr, "usage: secrets_proxy DIR\n");
        return 2;
    }
    if (shim_secrets_open(&s, NULL, "test", err, sizeof(err)) != 0 || !s ||
        shim_secrets_run(s) != 0) {
        fprintf(stderr, "secrets_proxy: %s\n", err[0] ? err : "no secrets file");
        shim_secrets_free(s);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    while (read(0, buf, sizeof(buf)) > 0)
        ;
    shim_secrets_free(s);
    return 0;
}
