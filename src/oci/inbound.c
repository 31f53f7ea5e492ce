/* inbound.c — inbound TCP for a container whose network namespace is its own (CNI's, podman's):
 * the keeper, already inside that namespace, listens on one TCP port there, a nat PREROUTING
 * REDIRECT rule in that namespace only sends every inbound TCP connection to it, and each
 * accepted connection is relayed to the same port on 127.0.0.1 inside the VM through
 * boxlite_box_tunnel (both ways, half-close kept). The pod's IP and ports answer from the VM.
 * Bounded: at most BL_INBOUND_MAX connections at once (more are closed at accept); a port
 * nobody listens on in the guest gets its connection closed. UDP is not relayed. The host's
 * namespace (hostNetwork, --network host) is never touched. */
#include "oci.h"

#include <arpa/inet.h>
#include <boxlite.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BL_INBOUND_MAX 256

extern char **environ;

struct bl_oci_inbound {
    int lfd;       /* the listener in the namespace */
    int stop[2];   /* a pipe: closing stop[1] ends the accept thread */
    unsigned port; /* the listener's port, the REDIRECT target */
    int rule;      /* the iptables rule is installed */
    pthread_t accept_th;
    int accept_started;
    pthread_mutex_t mu; /* guards box (one thread at a time on a box handle) */
    boxlite_box *box;   /* our own handle on the box; NULL once stopping */
    atomic_int active;  /* relayed connections now */
};

struct conn {
    struct bl_oci_inbound *in;
    int client;
    int tunnel;
    unsigned port;
};

/* 1 when this process's network namespace is not the host's: pid 1's, or where pid 1's
 * cannot be read (a sandbox of its own), the one the keeper started in. */
static int netns_own(const struct stat *started_in)
{
    struct stat self, host;

    if (stat("/proc/1/ns/net", &host) == 0)
        started_in = &host;
    if (stat("/proc/self/ns/net", &self) != 0)
        return 0;
    return self.st_ino != started_in->st_ino || self.st_dev != started_in->st_dev;
}

/* iptables -w 5 -t nat OP PREROUTING -p tcp -j REDIRECT --to-ports PORT, quietly. */
static int iptables(const char *op, unsigned port)
{
    char ports[16];
    char *argv[] = {"iptables", "-w",  "5",  "-t",       "nat",        (char *)op, "PREROUTING",
                    "-p",       "tcp", "-j", "REDIRECT", "--to-ports", ports,      NULL};
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int st = -1, rc;

    snprintf(ports, sizeof ports, "%u", port);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    rc = posix_spawnp(&pid, "iptables", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return bl_oci_fail("inbound TCP: iptables: %s", strerror(rc));
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return bl_oci_fail("inbound TCP: iptables -t nat %s PREROUTING ... --to-ports %u failed "
                           "(status %d)",
                           op, port, st);
    return 0;
}

/* Copy src to dst until src's end of file, then end dst's direction. A failure on either
 * side ends both directions of both sockets (the other copier wakes). */
static void copy(int src, int dst)
{
    char buf[16384];

    for (;;) {
        ssize_t n = read(src, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            shutdown(dst, SHUT_WR);
            return;
        }
        if (n < 0 || bl_oci_write_all(dst, buf, (size_t)n) != 0) {
            shutdown(src, SHUT_RDWR);
            shutdown(dst, SHUT_RDWR);
            return;
        }
    }
}

static void *copy_back(void *arg)
{
    struct conn *c = arg;

    copy(c->tunnel, c->client);
    return NULL;
}

/* One connection: a tunnel to the same port in the guest, then both directions. */
static void *relay(void *arg)
{
    struct conn *c = arg;
    struct bl_oci_inbound *in = c->in;
    pthread_t back;
    int rc = BOXLITE_ESTATE;

    pthread_mutex_lock(&in->mu);
    if (in->box)
        rc = boxlite_box_tunnel(&c->tunnel, in->box, c->port);
    pthread_mutex_unlock(&in->mu);
    if (rc != 0) /* nothing listens there in the guest: the connection is closed */
        goto out;
    if (pthread_create(&back, NULL, copy_back, c) != 0)
        goto out;
    copy(c->client, c->tunnel);
    pthread_join(back, NULL);
out:
    close(c->client);
    if (c->tunnel >= 0)
        close(c->tunnel);
    atomic_fetch_sub(&in->active, 1);
    free(c);
    return NULL;
}

/* The port the connection was meant for, before the REDIRECT; 0 when unknown. */
static unsigned original_port(int fd)
{
    struct sockaddr_in dst;
    socklen_t len = sizeof dst;

    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0 || dst.sin_family != AF_INET)
        return 0;
    return ntohs(dst.sin_port);
}

static void start_relay(struct bl_oci_inbound *in, int fd)
{
    pthread_attr_t attr;
    pthread_t th;
    struct conn *c;
    unsigned port = original_port(fd);

    if (port == 0 || port == in->port || atomic_load(&in->active) >= BL_INBOUND_MAX ||
        !(c = malloc(sizeof *c))) {
        close(fd);
        return;
    }
    *c = (struct conn){in, fd, -1, port};
    atomic_fetch_add(&in->active, 1);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, relay, c) != 0) {
        atomic_fetch_sub(&in->active, 1);
        close(fd);
        free(c);
    }
    pthread_attr_destroy(&attr);
}

static void *accept_loop(void *arg)
{
    struct bl_oci_inbound *in = arg;

    for (;;) {
        struct pollfd p[2] = {{in->lfd, POLLIN, 0}, {in->stop[0], POLLIN, 0}};
        int fd;
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        fd = accept4(in->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            start_relay(in, fd);
        else if (errno == EMFILE || errno == ENFILE)
            usleep(100000); /* out of descriptors: wait for relays to end */
    }
    return NULL;
}

static int listen_any(struct bl_oci_inbound *in)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
    socklen_t len = sizeof sa;

    in->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (in->lfd < 0 || bind(in->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(in->lfd, 128) != 0 || getsockname(in->lfd, (struct sockaddr *)&sa, &len) != 0)
        return bl_oci_fail("inbound TCP: listen: %s", strerror(errno));
    in->port = ntohs(sa.sin_port);
    return 0;
}

int bl_oci_inbound_start(struct bl_oci_inbound **out, struct boxlite_runtime *rt,
                         struct boxlite_box *box, const struct bl_oci_spec *spec,
                         const struct stat *started_in)
{
    struct bl_oci_inbound *in;
    int rc = 1;

    *out = NULL;
    if (!spec || spec->netns != 2 || !netns_own(started_in))
        return 0;
    in = calloc(1, sizeof *in);
    if (!in)
        return bl_oci_fail("inbound TCP: out of memory");
    in->lfd = in->stop[0] = in->stop[1] = -1;
    pthread_mutex_init(&in->mu, NULL);
    if (boxlite_box_get(&in->box, rt, boxlite_box_id(box)) != 0) {
        bl_oci_fail("inbound TCP: box: %s", boxlite_error_last());
        goto out;
    }
    if (listen_any(in) != 0 || iptables("-I", in->port) != 0)
        goto out;
    in->rule = 1;
    if (pipe2(in->stop, O_CLOEXEC) != 0 ||
        pthread_create(&in->accept_th, NULL, accept_loop, in) != 0) {
        bl_oci_fail("inbound TCP: thread: %s", strerror(errno));
        goto out;
    }
    in->accept_started = 1;
    bl_oci_log("info", "inbound TCP in %s relayed through port %u", spec->netns_path, in->port);
    *out = in;
    rc = 0;
out:
    if (rc != 0)
        bl_oci_inbound_stop(in);
    return rc;
}

void bl_oci_inbound_stop(struct bl_oci_inbound *in)
{
    if (!in)
        return;
    if (in->accept_started) {
        close(in->stop[1]);
        in->stop[1] = -1;
        pthread_join(in->accept_th, NULL);
    }
    if (in->rule)
        iptables("-D", in->port);
    for (int i = 0; i < 2; i++)
        if (in->stop[i] >= 0)
            close(in->stop[i]);
    if (in->lfd >= 0)
        close(in->lfd);
    pthread_mutex_lock(&in->mu);
    boxlite_box_free(in->box); /* tunnels made keep their own hold on the channel */
    in->box = NULL;
    pthread_mutex_unlock(&in->mu);
    /* relays still running own their sockets; the keeper exits next, so in stays (they
     * read in->mu and in->active) */
    if (atomic_load(&in->active) == 0) {
        pthread_mutex_destroy(&in->mu);
        free(in);
    }
}
