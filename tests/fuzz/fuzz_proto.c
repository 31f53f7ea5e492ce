/* fuzz_proto.c — libFuzzer target for the protocol codec and the shared frame reader
 * (frameio.c): feeds the input in pieces as a receiver gets it, decodes every frame's payload, and
 * decodes the whole input as each type.
 */
#include "frameio.h"
#include "proto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_all(unsigned type, const uint8_t *p, size_t len)
{
    struct bl_exec_req req;
    struct bl_exit e;
    uint32_t a = 0, b = 0;
    char *s = NULL;

    if (type == 0 || type == BL_F_EXEC) {
        if (bl_exec_req_decode(&req, p, len) == 0 && (req.argc < 1 || req.argv[req.argc] != NULL))
            abort();
        bl_exec_req_clear(&req);
    }
    if (type == 0 || type == BL_F_EXIT) {
        if (bl_exit_decode(&e, p, len) == 0)
            (void)bl_exit_status(&e);
        free(e.message);
    }
    if (type == 0 || type == BL_F_STARTED || type == BL_F_SIGNAL)
        (void)bl_u32_decode(p, len, &a);
    if (type == 0 || type == BL_F_WINDOW || type == BL_F_RESIZE)
        (void)bl_u32x2_decode(p, len, &a, &b);
    if ((type == 0 || type == BL_F_ERROR || type == BL_F_HELLO) &&
        bl_u32_str_decode(p, len, &a, &s) == 0) {
        (void)strlen(s);
        free(s);
    }
}

/* Feed the input to the receivers' reader (frameio.c) in chunks whose sizes come from the
 * input itself. */
static void receive(const uint8_t *data, size_t size)
{
    struct bl_frame_reader r = {0};
    size_t off = 0, step;
    struct bl_frame f;
    int n = 0;

    while (off < size) {
        step = 1 + data[off] % 64;
        if (step > size - off)
            step = size - off;
        if (bl_frame_feed(&r, data + off, step) == BL_FIO_ERROR)
            break;
        off += step;
        while ((n = bl_frame_next(&r, &f)) > 0) {
            if (f.payload != r.buf + r.off - f.len || f.len > BL_FRAME_MAX)
                abort();
            if (bl_frame_check(&f) == 0)
                decode_all(f.type, f.payload, f.len);
            (void)bl_frame_type_name(f.type);
        }
        if (n < 0) /* TOOBIG: framing lost, drop the buffer as a receiver would */
            bl_frame_discard(&r);
    }
    bl_frame_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    receive(data, size);
    decode_all(0, data, size);
    return 0;
}
