/* net.c — the box's network inside the guest: loopback always (a template's before it is
 * saved); with boxlite.net=user on the kernel command line (or `attach`'s NET), eth0 set up
 * for QEMU's user-mode network and /etc/resolv.conf. */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define GUEST_ADDR "10.0.2.15"
#define NETMASK    "255.255.255.0"
#define GATEWAY    "10.0.2.2"
#define DNS        "10.0.2.3"

static void set_sin(struct sockaddr *sa, const char *addr)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)sa;

    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, addr, &sin->sin_addr);
}

static int link_up(int fd, const char *ifname)
{
    struct ifreq ifr;

    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        return -1;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    return ioctl(fd, SIOCSIFFLAGS, &ifr);
}

static int set_addr(int fd, const char *ifname, unsigned long req, const char *addr)
{
    struct ifreq ifr;

    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    set_sin(&ifr.ifr_addr, addr);
    return ioctl(fd, req, &ifr);
}

static int default_route(int fd)
{
    struct rtentry rt;

    memset(&rt, 0, sizeof(rt));
    set_sin(&rt.rt_dst, "0.0.0.0");
    set_sin(&rt.rt_genmask, "0.0.0.0");
    set_sin(&rt.rt_gateway, GATEWAY);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    return ioctl(fd, SIOCADDRT, &rt) < 0 && errno != EEXIST ? -1 : 0;
}

/* In place, when path is a plain file of its own (one link): a restored guest runs far less
 * first-time kernel code for an overwrite than for unlink + create (under TCG each such path
 * is translated anew: ~1,300 blocks less on a warm start). 0 when written. */
static int overwrite(const char *path, const char *text)
{
    size_t len = strlen(text);
    struct stat st;
    int fd, rc = -1;

    /* checked before the open too: opening a FIFO or a device node can block or act */
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1)
        return -1;
    fd = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
        pwrite(fd, text, len, 0) == (ssize_t)len && ftruncate(fd, (off_t)len) == 0)
        rc = 0;
    close(fd);
    return rc;
}

/* A file the agent rewrites on every start (/etc/hosts, /etc/resolv.conf). Anything but a
 * plain file of its own (a symlink, FIFO, device, a hard link to another file) is replaced by
 * a new file, never written through. */
static void write_box_file(const char *path, const char *text)
{
    int fd;

    if (overwrite(path, text) == 0)
        return;
    (void)unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 || bl_write_all(fd, text, strlen(text)) < 0)
        bl_log("write %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
}

static void write_hosts(void)
{
    char host[65], text[256];

    if (gethostname(host, sizeof(host)) < 0)
        snprintf(host, sizeof(host), "boxlite");
    host[sizeof(host) - 1] = '\0';
    snprintf(text, sizeof(text),
             "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n"
             "127.0.1.1\t%s\n",
             host);
    write_box_file(ROOTFS "/etc/hosts", text);
}

/* Loopback: the same in every box, so a template brings it up before it is saved. */
void bl_net_loopback(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || link_up(fd, "lo") < 0)
        bl_log("bring up lo: %s", strerror(errno));
    if (fd >= 0)
        close(fd);
}

void bl_net_setup(void)
{
    char mode[16];

    bl_net_loopback();
    bl_net_setup_mode(bl_cmdline_get("boxlite.net", mode, sizeof(mode)) == 0 &&
                      strcmp(mode, "user") == 0);
}

void bl_net_setup_mode(int user)
{
    int fd;

    (void)mkdir(ROOTFS "/etc", 0755);
    write_hosts();
    if (!user)
        return;
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || set_addr(fd, "eth0", SIOCSIFADDR, GUEST_ADDR) < 0 ||
        set_addr(fd, "eth0", SIOCSIFNETMASK, NETMASK) < 0 || link_up(fd, "eth0") < 0 ||
        default_route(fd) < 0)
        bl_log("configure eth0: %s", strerror(errno));
    if (fd >= 0)
        close(fd);
    write_box_file(ROOTFS "/etc/resolv.conf", "nameserver " DNS "\n");
}
