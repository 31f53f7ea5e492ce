/* test_proto.c — unit tests of the protocol codec (src/common/proto.c): framing, splitting,
 * payload round trips, hostile payloads, allocation failures and the exit status mapping. */
#include "proto.h"
#include "tap.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* ---- allocation counting and failure injection (glibc lets a program replace malloc) ---- */

#ifdef __GLIBC__
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
#endif

static long alloc_calls;        /* allocation calls seen */
static long alloc_live;         /* blocks allocated and not yet freed */
static long alloc_fail_at = -1; /* fail the call whose alloc_calls value equals this */

#ifdef __GLIBC__
static int alloc_should_fail(void)
{
    long n = alloc_calls++;
    return n == alloc_fail_at;
}

void *malloc(size_t n)
{
    void *p = alloc_should_fail() ? NULL : __libc_malloc(n);
    alloc_live += p != NULL;
    return p;
}

void *calloc(size_t n, size_t size)
{
    void *p = alloc_should_fail() ? NULL : __libc_calloc(n, size);
    alloc_live += p != NULL;
    return p;
}

void *realloc(void *old, size_t n)
{
    void *p = alloc_should_fail() ? NULL : __libc_realloc(old, n);
    alloc_live += p != NULL && old == NULL;
    return p;
}

void free(void *p)
{
    alloc_live -= p != NULL;
    __libc_free(p);
}
#endif

static int hooked; /* set by main: 1 when the replacement above is really in use */

/* A check that needs the allocation counters; skipped when they are not live (valgrind
 * replaces malloc itself, and then checks the same paths for leaks). */
#define CHECK_ALLOC(cond, name)                                                                    \
    do {                                                                                           \
        if (hooked)                                                                                \
            CHECK(cond, name);                                                                     \
        else                                                                                       \
            tap_skip(name, "malloc not replaceable");                                              \
    } while (0)

/* 1 when the replacement above is really in use. */
static int alloc_hooked(void)
{
    long before = alloc_calls;
    char *s = NULL;
    uint32_t v = 0;
    static const uint8_t p[] = {7, 0, 0, 0, 1, 0, 0, 0, 'x'};

    bl_u32_str_decode(p, sizeof(p), &v, &s);
    free(s);
    return alloc_calls > before;
}

/* ---- helpers ---- */

static size_t put_frame(uint8_t *buf, uint8_t type, uint32_t stream, const void *p, uint32_t n)
{
    bl_frame_hdr_encode(buf, type, stream, n);
    if (n > 0)
        memcpy(buf + BL_FRAME_HDR, p, n);
    return BL_FRAME_HDR + n;
}

static int streq_v(char **a, char **b, uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    }
    return a[n] == NULL;
}

static int is_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    size_t i;

    for (i = 0; i < n; i++) {
        if (b[i] != 0)
            return 0;
    }
    return 1;
}

static char *argv_sample[] = {"sh", "-c", "echo \"a b\" 'c'", "", "h\xc3\xa9llo \xe2\x9c\x93",
                              NULL};
static char *env_sample[] = {"PATH=/usr/bin:/bin", "EMPTY=", "Q=\"'", NULL};

static struct bl_exec_req sample_req(void)
{
    struct bl_exec_req r;

    memset(&r, 0, sizeof(r));
    r.flags = BL_EXEC_TTY;
    r.argv = argv_sample;
    r.argc = 5;
    r.env = env_sample;
    r.envc = 3;
    r.cwd = "/work dir";
    r.user = "1000:1000";
    r.timeout_ms = 30000;
    r.rows = 24;
    r.cols = 80;
    return r;
}

/* ---- frames ---- */

static void test_header(void)
{
    uint8_t buf[64];
    static const uint8_t want[BL_FRAME_HDR] = {
        3, 0, 0, 0, BL_PROTO_VERSION, BL_F_STDOUT, 0, 0, 0x78, 0x56, 0x34, 0x12};
    struct bl_frame f;
    long n;

    bl_frame_hdr_encode(buf, BL_F_STDOUT, 0x12345678, 3);
    CHECK(memcmp(buf, want, BL_FRAME_HDR) == 0, "header: little-endian layout");
    memcpy(buf + BL_FRAME_HDR, "abc", 3);
    n = bl_frame_split(buf, BL_FRAME_HDR + 3, &f);
    CHECK_EQ(n, BL_FRAME_HDR + 3, "header: split returns total size");
    CHECK(f.type == BL_F_STDOUT && f.version == BL_PROTO_VERSION && f.flags == 0 &&
              f.stream == 0x12345678 && f.len == 3 && f.payload == buf + BL_FRAME_HDR,
          "header: fields round trip");
    CHECK_EQ(bl_frame_check(&f), 0, "header: check accepts");
    buf[6] = 0x34;
    buf[7] = 0x12;
    bl_frame_split(buf, BL_FRAME_HDR + 3, &f);
    CHECK_EQ(f.flags, 0x1234, "header: flags are le16");
    n = bl_frame_split(buf, 0, &f);
    CHECK_EQ(n, 0, "split: empty input needs more");
    n = bl_frame_split(NULL, 0, &f);
    CHECK_EQ(n, 0, "split: NULL input needs more");
    bl_frame_hdr_encode(buf, BL_F_STDIN, 1, 0);
    n = bl_frame_split(buf, BL_FRAME_HDR, &f);
    CHECK(n == BL_FRAME_HDR && f.len == 0, "split: empty payload frame");
}

static void test_split_partial(void)
{
    uint8_t buf[128];
    size_t n1, total, have;
    struct bl_frame f;
    long n = 0;
    int ok = 1;

    n1 = put_frame(buf, BL_F_STDOUT, 7, "hello", 5);
    total = n1 + put_frame(buf + n1, BL_F_EXIT, 7, "\0\0\0\0\0\0\0\0\0\0\0\0", 12);
    for (have = 0; have < n1; have++) {
        n = bl_frame_split(buf, have, &f);
        ok = ok && n == 0;
    }
    CHECK(ok, "split: every prefix of a frame needs more");
    n = bl_frame_split(buf, n1, &f);
    CHECK(n == (long)n1 && f.len == 5 && memcmp(f.payload, "hello", 5) == 0,
          "split: frame complete at its last byte");
    ok = 1;
    for (have = 0; have < total - n1; have++)
        ok = ok && bl_frame_split(buf + n1, have, &f) == 0;
    n = bl_frame_split(buf + n1, total - n1, &f);
    CHECK(ok && n == (long)(total - n1) && f.type == BL_F_EXIT && f.len == 12,
          "split: second frame byte by byte");
}

/* A receiver that gets its bytes one at a time, accumulating, and splits greedily. */
static void test_split_accumulate(void)
{
    uint8_t wire[256], acc[256];
    size_t len = 0, have = 0, i;
    struct bl_frame f;
    uint32_t got[3];
    int count = 0, ok = 1;
    long n;

    len += put_frame(wire + len, BL_F_STARTED, 1, "\x2a\0\0\0", 4);
    len += put_frame(wire + len, BL_F_STDOUT, 1, "", 0);
    len += put_frame(wire + len, BL_F_STDERR, 2, "err!", 4);
    for (i = 0; i < len; i++) {
        acc[have++] = wire[i];
        n = bl_frame_split(acc, have, &f);
        if (n < 0) {
            ok = 0;
            break;
        }
        if (n > 0) {
            got[count < 3 ? count : 2] = f.type;
            count++;
            memmove(acc, acc + n, have - (size_t)n);
            have -= (size_t)n;
        }
    }
    CHECK(ok && count == 3 && have == 0 && got[0] == BL_F_STARTED && got[1] == BL_F_STDOUT &&
              got[2] == BL_F_STDERR,
          "split: byte-by-byte receiver gets all frames");
}

static void test_split_multi(void)
{
    uint8_t buf[128];
    size_t len = 0, off = 0;
    struct bl_frame f;
    int count = 0;
    long n;

    len += put_frame(buf + len, BL_F_PING, 0, "p", 1);
    len += put_frame(buf + len, BL_F_STDOUT, 3, "abc", 3);
    len += put_frame(buf + len, BL_F_STDOUT, 3, "", 0);
    len += put_frame(buf + len, BL_F_STDERR, 3, "", 0);
    for (;;) {
        n = bl_frame_split(buf + off, len - off, &f);
        if (n <= 0)
            break;
        count++;
        off += (size_t)n;
    }
    CHECK(count == 4 && off == len && n == 0, "split: four frames in one buffer");
}

static void test_split_toobig(void)
{
    uint8_t buf[BL_FRAME_HDR];
    struct bl_frame f;

    bl_frame_hdr_encode(buf, BL_F_STDOUT, 1, BL_FRAME_MAX + 1);
    CHECK_EQ(bl_frame_split(buf, sizeof(buf), &f), -BL_PE_TOOBIG, "split: len over max → TOOBIG");
    bl_frame_hdr_encode(buf, BL_F_STDOUT, 1, 0xffffffffu);
    CHECK_EQ(bl_frame_split(buf, sizeof(buf), &f), -BL_PE_TOOBIG, "split: len 2^32-1 → TOOBIG");
    bl_frame_hdr_encode(buf, BL_F_STDOUT, 1, BL_FRAME_MAX);
    CHECK_EQ(bl_frame_split(buf, sizeof(buf), &f), 0, "split: len == max waits for more");
}

static void test_check(void)
{
    uint8_t buf[32];
    struct bl_frame f;
    unsigned t;
    long n;
    int ok = 1;

    put_frame(buf, BL_F_PING, 0, "xy", 2);
    buf[4] = BL_PROTO_VERSION + 7;
    n = bl_frame_split(buf, BL_FRAME_HDR + 2, &f);
    CHECK(n == BL_FRAME_HDR + 2 && f.version == BL_PROTO_VERSION + 7,
          "split: wrong version returned whole");
    CHECK_EQ(bl_frame_check(&f), -BL_PE_VERSION, "check: wrong version");
    put_frame(buf, 99, 5, "xy", 2);
    n = bl_frame_split(buf, BL_FRAME_HDR + 2, &f);
    CHECK(n == BL_FRAME_HDR + 2 && f.type == 99, "split: unknown type returned whole");
    CHECK_EQ(bl_frame_check(&f), -BL_PE_TYPE, "check: unknown type");
    for (t = 0; t < 256; t++) {
        int known = (t >= 1 && t <= 7) || (t >= 16 && t <= 24);
        f.type = (uint8_t)t;
        f.version = BL_PROTO_VERSION;
        ok = ok && bl_frame_check(&f) == (known ? 0 : -BL_PE_TYPE);
        ok = ok && (strcmp(bl_frame_type_name(t), "UNKNOWN") != 0) == known;
    }
    CHECK(ok, "check/type_name: exactly the known types");
    CHECK(strcmp(bl_frame_type_name(BL_F_MONITOR), "MONITOR") == 0 &&
              strcmp(bl_frame_type_name(BL_F_MONITOR_REPLY), "MONITOR_REPLY") == 0,
          "type_name: MONITOR, MONITOR_REPLY (v3)");
    CHECK(strcmp(bl_frame_type_name(BL_F_EXEC), "EXEC") == 0, "type_name: EXEC");
}

/* ---- EXEC ---- */

static void test_exec_roundtrip(void)
{
    struct bl_exec_req in = sample_req(), out;
    struct bl_wbuf w = {0};
    int rc;

    rc = bl_exec_req_encode(&w, &in);
    CHECK(rc == 0 && !w.failed, "exec: encode");
    rc = bl_exec_req_decode(&out, w.data, w.len);
    CHECK_EQ(rc, 0, "exec: decode");
    CHECK(out.flags == BL_EXEC_TTY && out.argc == 5 && streq_v(out.argv, argv_sample, 5),
          "exec: argv with spaces, quotes, UTF-8 and empty strings");
    CHECK(out.envc == 3 && streq_v(out.env, env_sample, 3), "exec: env");
    CHECK(strcmp(out.cwd, "/work dir") == 0 && strcmp(out.user, "1000:1000") == 0,
          "exec: cwd and user");
    CHECK(out.timeout_ms == 30000 && out.rows == 24 && out.cols == 80, "exec: timeout and tty");
    bl_exec_req_clear(&out);
    CHECK(out.argv == NULL && out.cwd == NULL, "exec: clear zeroes");
    bl_exec_req_clear(&out);
    bl_exec_req_clear(NULL);

    /* Minimal: one arg, no env, NULL cwd/user sent as "". */
    memset(&in, 0, sizeof(in));
    in.argv = argv_sample;
    in.argc = 1;
    bl_wbuf_reset(&w);
    rc = bl_exec_req_encode(&w, &in);
    CHECK_EQ(rc, 0, "exec: minimal encode");
    rc = bl_exec_req_decode(&out, w.data, w.len);
    CHECK(rc == 0 && out.argc == 1 && out.envc == 0 && out.env != NULL && out.env[0] == NULL &&
              strcmp(out.cwd, "") == 0 && strcmp(out.user, "") == 0,
          "exec: minimal decode (empty env, \"\" cwd/user)");
    bl_exec_req_clear(&out);

    in.argc = 0;
    bl_wbuf_reset(&w);
    CHECK_EQ(bl_exec_req_encode(&w, &in), -BL_PE_INVALID, "exec: encode refuses argc 0");
    bl_wbuf_free(&w);
}

/* rlimits ride after the tty size, only when there are some; hostile ones are refused. */
static void test_exec_rlimits(void)
{
    struct bl_exec_req in = sample_req(), out;
    struct bl_wbuf w = {0};
    size_t plain;

    CHECK_EQ(bl_exec_req_encode(&w, &in), 0, "exec: encode without rlimits");
    plain = w.len;
    in.flags |= BL_EXEC_RO_ROOT;
    in.nrlimits = 2;
    in.rlimits[0] = (struct bl_exec_rlimit){7, 1024, 4096};
    in.rlimits[1] = (struct bl_exec_rlimit){6, UINT64_MAX, UINT64_MAX};
    bl_wbuf_reset(&w);
    CHECK_EQ(bl_exec_req_encode(&w, &in), 0, "exec: encode rlimits");
    CHECK(w.len == plain + 4 + 2 * 20, "exec: rlimits add u32 n and 20 bytes each");
    CHECK_EQ(bl_exec_req_decode(&out, w.data, w.len), 0, "exec: decode rlimits");
    CHECK(out.flags == (BL_EXEC_TTY | BL_EXEC_RO_ROOT) && out.nrlimits == 2 &&
              out.rlimits[0].resource == 7 && out.rlimits[0].soft == 1024 &&
              out.rlimits[0].hard == 4096 && out.rlimits[1].soft == UINT64_MAX,
          "exec: rlimits and the read-only root round-trip");
    bl_exec_req_clear(&out);
    in.rlimits[1].resource = 7;
    bl_wbuf_reset(&w);
    CHECK_EQ(bl_exec_req_encode(&w, &in), -BL_PE_INVALID, "exec: a resource twice refused");
    in.rlimits[1] = (struct bl_exec_rlimit){16, 1, 1};
    bl_wbuf_reset(&w);
    CHECK_EQ(bl_exec_req_encode(&w, &in), -BL_PE_INVALID, "exec: resource 16 refused");
    in.rlimits[1] = (struct bl_exec_rlimit){5, 2, 1};
    bl_wbuf_reset(&w);
    CHECK_EQ(bl_exec_req_encode(&w, &in), -BL_PE_INVALID, "exec: soft above hard refused");
    /* a hostile peer's tail: count 0, count 17, a resource out of range */
    in.nrlimits = 0;
    bl_wbuf_reset(&w);
    bl_exec_req_encode(&w, &in);
    bl_wbuf_put_u32(&w, 0);
    CHECK_EQ(bl_exec_req_decode(&out, w.data, w.len), -BL_PE_INVALID, "exec: tail count 0");
    w.len -= 4;
    bl_wbuf_put_u32(&w, 17);
    CHECK(bl_exec_req_decode(&out, w.data, w.len) < 0 && out.nrlimits == 0, "exec: tail count 17");
    w.len -= 4;
    bl_wbuf_put_u32(&w, 1);
    for (int i = 0; i < 5; i++)
        bl_wbuf_put_u32(&w, i == 0 ? 99 : 1);
    CHECK_EQ(bl_exec_req_decode(&out, w.data, w.len), -BL_PE_INVALID, "exec: resource 99");
    bl_wbuf_free(&w);
}

static void test_exec_truncated(void)
{
    struct bl_exec_req in = sample_req(), out;
    struct bl_wbuf w = {0};
    size_t cut;
    long live;
    int ok = 1, rc;

    bl_exec_req_encode(&w, &in);
    live = alloc_live;
    for (cut = 0; cut < w.len; cut++) {
        memset(&out, 0xa5, sizeof(out));
        rc = bl_exec_req_decode(&out, w.data, cut);
        ok = ok && rc == -BL_PE_TRUNCATED && is_zero(&out, sizeof(out));
    }
    CHECK(ok, "exec: every truncation → TRUNCATED, output zeroed");
    CHECK_ALLOC(alloc_live == live, "exec: truncations leak nothing");

    /* Trailing bytes. */
    bl_wbuf_put_u32(&w, 0);
    rc = bl_exec_req_decode(&out, w.data, w.len - 3);
    CHECK_EQ(rc, -BL_PE_INVALID, "exec: one trailing byte → INVALID");
    rc = bl_exec_req_decode(&out, w.data, w.len);
    CHECK_EQ(rc, -BL_PE_INVALID, "exec: four trailing bytes → INVALID");
    bl_wbuf_free(&w);
}

/* Build an EXEC payload by hand: argc strings of arg, envc of env. */
static void raw_exec(struct bl_wbuf *w, uint32_t argc, const char *arg, size_t arglen,
                     uint32_t envc)
{
    uint32_t i;

    bl_wbuf_reset(w);
    bl_wbuf_put_u32(w, 0);
    bl_wbuf_put_u32(w, argc);
    for (i = 0; i < argc; i++)
        bl_wbuf_put_bytes(w, arg, arglen);
    bl_wbuf_put_u32(w, envc);
    for (i = 0; i < envc; i++)
        bl_wbuf_put_str(w, "A=B");
    bl_wbuf_put_str(w, "");
    bl_wbuf_put_str(w, "");
    bl_wbuf_put_u32(w, 0);
    bl_wbuf_put_u32(w, 0);
    bl_wbuf_put_u32(w, 0);
}

static void test_exec_hostile(void)
{
    struct bl_wbuf w = {0};
    struct bl_exec_req out;
    long calls;
    int rc;

    raw_exec(&w, 1, "ls", 2, 0);
    rc = bl_exec_req_decode(&out, w.data, w.len);
    CHECK_EQ(rc, 0, "exec: hand-built payload decodes");
    bl_exec_req_clear(&out);

    raw_exec(&w, 1, "l\0s", 3, 0);
    CHECK_EQ(bl_exec_req_decode(&out, w.data, w.len), -BL_PE_INVALID, "exec: NUL inside arg");
    raw_exec(&w, 2, "ls\0", 3, 0);
    CHECK_EQ(bl_exec_req_decode(&out, w.data, w.len), -BL_PE_INVALID, "exec: trailing NUL");
    raw_exec(&w, 0, "ls", 2, 0);
    CHECK_EQ(bl_exec_req_decode(&out, w.data, w.len), -BL_PE_INVALID, "exec: argc 0");
    raw_exec(&w, 1, "ls", 2, BL_MAX_ENV);
    rc = bl_exec_req_decode(&out, w.data, w.len);
    CHECK(rc == 0 && out.envc == BL_MAX_ENV, "exec: envc == BL_MAX_ENV accepted");
    bl_exec_req_clear(&out);
    raw_exec(&w, 1, "ls", 2, BL_MAX_ENV + 1);
    CHECK_EQ(bl_exec_req_decode(&out, w.data, w.len), -BL_PE_INVALID, "exec: envc over limit");
    raw_exec(&w, BL_MAX_ARGS + 1, "", 0, 0);
    CHECK_EQ(bl_exec_req_decode(&out, w.data, w.len), -BL_PE_INVALID, "exec: argc over limit");

    /* Known flags decode; an unknown flag bit is refused. */
    {
        struct bl_exec_req in = sample_req();
        in.flags = BL_EXEC_BUILTIN | BL_EXEC_DETACH;
        bl_wbuf_reset(&w);
        rc = bl_exec_req_encode(&w, &in);
        rc = rc == 0 ? bl_exec_req_decode(&out, w.data, w.len) : rc;
        CHECK(rc == 0 && out.flags == (BL_EXEC_BUILTIN | BL_EXEC_DETACH),
              "exec: BUILTIN and DETACH flags round-trip");
        if (rc == 0)
            bl_exec_req_clear(&out);
        in.flags = BL_EXEC_FLAGS + 1; /* the next bit past the known ones */
        bl_wbuf_reset(&w);
        rc = bl_exec_req_encode(&w, &in);
        CHECK_EQ(bl_exec_req_decode(&out, w.data, w.len), -BL_PE_INVALID,
                 "exec: unknown flag bit refused");
    }

    /* Counts announced but not backed by bytes are refused before any allocation. */
    bl_wbuf_reset(&w);
    bl_wbuf_put_u32(&w, 0);
    bl_wbuf_put_u32(&w, 0xffffffffu);
    calls = alloc_calls;
    CHECK_EQ(bl_exec_req_decode(&out, w.data, w.len), -BL_PE_INVALID, "exec: argc 2^32-1");
    CHECK_ALLOC(alloc_calls == calls, "exec: argc 2^32-1 allocates nothing");
    bl_wbuf_reset(&w);
    bl_wbuf_put_u32(&w, 0);
    bl_wbuf_put_u32(&w, BL_MAX_ARGS);
    bl_wbuf_put_u32(&w, 0);
    calls = alloc_calls;
    CHECK_EQ(bl_exec_req_decode(&out, w.data, w.len), -BL_PE_TRUNCATED,
             "exec: argc at limit, no bytes behind it");
    CHECK_ALLOC(alloc_calls == calls, "exec: unbacked argc allocates nothing");

    /* A string length over BL_MAX_STRING is refused before allocating it. */
    bl_wbuf_reset(&w);
    bl_wbuf_put_u32(&w, 0);
    bl_wbuf_put_u32(&w, 1);
    bl_wbuf_put_u32(&w, BL_MAX_STRING + 1);
    calls = alloc_calls;
    CHECK_EQ(bl_exec_req_decode(&out, w.data, w.len), -BL_PE_INVALID, "exec: string over limit");
    CHECK_ALLOC(alloc_calls == calls + 1, "exec: oversized string not allocated (only argv array)");
    bl_wbuf_free(&w);
}

/* Fail each allocation of a decode in turn: NOMEM every time, nothing leaked. */
static void test_exec_nomem(void)
{
    struct bl_exec_req in = sample_req(), out;
    struct bl_wbuf w = {0};
    long k, total, live;
    int ok = 1, rc;

    if (!hooked) {
        tap_skip("exec: allocation failures", "malloc not replaceable");
        tap_skip("wbuf: allocation failure", "malloc not replaceable");
        return;
    }
    bl_exec_req_encode(&w, &in);
    live = alloc_live;
    total = alloc_calls;
    rc = bl_exec_req_decode(&out, w.data, w.len);
    total = alloc_calls - total;
    bl_exec_req_clear(&out);
    for (k = 0; k < total; k++) {
        alloc_fail_at = alloc_calls + k;
        rc = bl_exec_req_decode(&out, w.data, w.len);
        alloc_fail_at = -1;
        ok = ok && rc == -BL_PE_NOMEM && is_zero(&out, sizeof(out)) && alloc_live == live;
    }
    CHECK(ok && total == 1 + 5 + 1 + 3 + 2, "exec: each allocation failure → NOMEM, no leak");

    /* The write buffer marks itself failed and ignores further puts. */
    bl_wbuf_free(&w);
    alloc_fail_at = alloc_calls;
    rc = bl_exec_req_encode(&w, &in);
    alloc_fail_at = -1;
    CHECK(rc == -BL_PE_NOMEM && w.failed && w.len == 0, "wbuf: allocation failure → failed");
    bl_wbuf_free(&w);
}

/* ---- EXIT ---- */

static int status_of(uint32_t kind, int32_t code)
{
    struct bl_exit e = {kind, code, NULL};
    return bl_exit_status(&e);
}

static void test_exit(void)
{
    struct bl_exit in = {BL_EXIT_CODE, -5, "boom"}, out;
    struct bl_wbuf w = {0};
    size_t cut;
    int rc, ok = 1;

    rc = bl_exit_encode(&w, &in);
    CHECK_EQ(rc, 0, "exit: encode");
    rc = bl_exit_decode(&out, w.data, w.len);
    CHECK(rc == 0 && out.kind == BL_EXIT_CODE && out.code == -5 && strcmp(out.message, "boom") == 0,
          "exit: round trip (negative code)");
    free(out.message);
    for (cut = 0; cut < w.len; cut++) {
        rc = bl_exit_decode(&out, w.data, cut);
        ok = ok && rc == -BL_PE_TRUNCATED && out.message == NULL;
    }
    CHECK(ok, "exit: every truncation rejected");
    in.kind = BL_EXIT_SIGNAL;
    in.code = INT32_MIN;
    in.message = NULL;
    bl_wbuf_reset(&w);
    bl_exit_encode(&w, &in);
    rc = bl_exit_decode(&out, w.data, w.len);
    CHECK(rc == 0 && out.code == INT32_MIN && strcmp(out.message, "") == 0,
          "exit: INT32_MIN, NULL message → \"\"");
    free(out.message);
    bl_wbuf_put_u32(&w, 1);
    CHECK_EQ(bl_exit_decode(&out, w.data, w.len), -BL_PE_INVALID, "exit: trailing bytes");
    bl_wbuf_reset(&w);
    bl_wbuf_put_u32(&w, 9);
    bl_wbuf_put_u32(&w, 0);
    bl_wbuf_put_str(&w, "");
    CHECK_EQ(bl_exit_decode(&out, w.data, w.len), -BL_PE_INVALID, "exit: unknown kind");
    in.kind = 9;
    CHECK_EQ(bl_exit_encode(&w, &in), -BL_PE_INVALID, "exit: encode refuses unknown kind");
    bl_wbuf_free(&w);

    CHECK_EQ(status_of(BL_EXIT_CODE, 0), 0, "status: exit 0");
    CHECK_EQ(status_of(BL_EXIT_CODE, 1), 1, "status: exit 1");
    CHECK_EQ(status_of(BL_EXIT_CODE, 42), 42, "status: exit 42");
    CHECK_EQ(status_of(BL_EXIT_CODE, 300), 255, "status: exit 300 clamped to 255");
    CHECK_EQ(status_of(BL_EXIT_CODE, -1), 0, "status: exit -1 clamped to 0");
    CHECK_EQ(status_of(BL_EXIT_SIGNAL, SIGKILL), 137, "status: SIGKILL → 137");
    CHECK_EQ(status_of(BL_EXIT_SIGNAL, SIGTERM), 143, "status: SIGTERM → 143");
    CHECK_EQ(status_of(BL_EXIT_TIMEOUT, SIGKILL), 137, "status: timeout SIGKILL → 137");
    CHECK_EQ(status_of(BL_EXIT_NOSTART, ENOENT), 127, "status: NOSTART ENOENT → 127");
    CHECK_EQ(status_of(BL_EXIT_NOSTART, ENOTDIR), 127, "status: NOSTART ENOTDIR → 127");
    CHECK_EQ(status_of(BL_EXIT_NOSTART, EACCES), 126, "status: NOSTART EACCES → 126");
    CHECK_EQ(status_of(BL_EXIT_NOSTART, ENOEXEC), 126, "status: NOSTART ENOEXEC → 126");
}

/* ---- small payloads ---- */

static void test_small(void)
{
    static const uint8_t two[] = {1, 0, 0, 0, 0x00, 0x01, 0, 0, 0xff};
    static const uint8_t hello[] = {1, 0, 0, 0, 3, 0, 0, 0, 'v', '0', '1', 0xee};
    uint32_t a = 7, b = 7;
    char *s = NULL;
    int rc;

    CHECK(bl_u32_decode(two, 4, &a) == 0 && a == 1, "u32: decode");
    a = 7;
    CHECK(bl_u32_decode(two, 3, &a) == -BL_PE_TRUNCATED && a == 7, "u32: short, output untouched");
    CHECK_EQ(bl_u32_decode(two, 5, &a), -BL_PE_INVALID, "u32: trailing byte");
    CHECK_EQ(bl_u32_decode(NULL, 0, &a), -BL_PE_TRUNCATED, "u32: empty");
    rc = bl_u32x2_decode(two, 8, &a, &b);
    CHECK(rc == 0 && a == 1 && b == 256, "u32x2: decode");
    CHECK_EQ(bl_u32x2_decode(two, 7, &a, &b), -BL_PE_TRUNCATED, "u32x2: short");
    CHECK_EQ(bl_u32x2_decode(two, 9, &a, &b), -BL_PE_INVALID, "u32x2: trailing byte");
    rc = bl_u32_str_decode(hello, 11, &a, &s);
    CHECK(rc == 0 && a == 1 && s != NULL && strcmp(s, "v01") == 0, "u32_str: decode");
    free(s);
    s = NULL;
    CHECK(bl_u32_str_decode(hello, 10, &a, &s) == -BL_PE_TRUNCATED && s == NULL,
          "u32_str: short string");
    CHECK(bl_u32_str_decode(hello, 12, &a, &s) == -BL_PE_INVALID && s == NULL,
          "u32_str: trailing byte, nothing returned");
    CHECK_EQ(bl_u32_str_decode(hello, 3, &a, &s), -BL_PE_TRUNCATED, "u32_str: short u32");
}

/* ---- write buffer ---- */

static void test_wbuf(void)
{
    struct bl_wbuf w = {0};
    static uint8_t big[BL_FRAME_MAX];
    size_t len;

    bl_wbuf_put_u32(&w, 0x01020304);
    CHECK(w.len == 4 && w.data[0] == 4 && w.data[3] == 1 && !w.failed, "wbuf: le32");
    bl_wbuf_put_bytes(&w, big, BL_FRAME_MAX - 12);
    CHECK(w.len == BL_FRAME_MAX - 4 && !w.failed && w.cap >= w.len, "wbuf: grows to near max");
    bl_wbuf_put_u32(&w, 5);
    CHECK(w.len == BL_FRAME_MAX && !w.failed, "wbuf: exactly BL_FRAME_MAX is fine");
    len = w.len;
    bl_wbuf_put_u32(&w, 6);
    CHECK(w.failed && w.len == len, "wbuf: over BL_FRAME_MAX → failed");
    bl_wbuf_reset(&w);
    bl_wbuf_put_u32(&w, 1);
    CHECK(w.len == 4 && !w.failed, "wbuf: reset clears failed");
    bl_wbuf_put_bytes(&w, big, BL_FRAME_MAX);
    CHECK(w.failed && w.len == 4, "wbuf: one put over max → failed");
    bl_wbuf_put_str(&w, "x");
    CHECK(w.failed && w.len == 4, "wbuf: puts ignored once failed");
    bl_wbuf_free(&w);
    CHECK(w.data == NULL && w.len == 0 && w.cap == 0, "wbuf: free");
    bl_wbuf_free(NULL);
}

static void test_strerror(void)
{
    CHECK(strcmp(bl_proto_strerror(-BL_PE_TOOBIG), bl_proto_strerror(BL_PE_TOOBIG)) == 0,
          "strerror: either sign");
    CHECK(strcmp(bl_proto_strerror(1000), "unknown protocol error") == 0 &&
              strcmp(bl_proto_strerror(-2147483647 - 1), "unknown protocol error") == 0,
          "strerror: out of range");
}

int main(void)
{
    hooked = alloc_hooked();
    test_header();
    test_split_partial();
    test_split_accumulate();
    test_split_multi();
    test_split_toobig();
    test_check();
    test_exec_roundtrip();
    test_exec_rlimits();
    test_exec_truncated();
    test_exec_hostile();
    test_exec_nomem();
    test_exit();
    test_small();
    test_wbuf();
    test_strerror();
    return tap_done();
}
