/* fuzz_router.c — libFuzzer target over `boxlite serve`'s router: any method and path (the
 * request line a client controls) is matched against the route table without reading or
 * writing out of bounds; matched parameters are single, non-empty segments. The handlers are
 * stubs: only src/serve/router.c is under test (included whole). */
#include "../../src/serve/router.c"

#include <assert.h>
#include <stdint.h>

#define STUB(name)                                                                                 \
    enum MHD_Result name(struct req *r)                                                            \
    {                                                                                              \
        (void)r;                                                                                   \
        return MHD_YES;                                                                            \
    }
STUB(h_config)
STUB(h_me)
STUB(h_box_create)
STUB(h_box_list)
STUB(h_box_get)
STUB(h_box_head)
STUB(h_box_delete)
STUB(h_box_start)
STUB(h_box_stop)
STUB(h_snap_create)
STUB(h_snap_list)
STUB(h_snap_get)
STUB(h_snap_delete)
STUB(h_snap_restore)
STUB(h_box_clone)
STUB(h_box_export)
STUB(h_exec_create)
STUB(h_exec_get)
STUB(h_exec_delete)
STUB(h_exec_attach)
STUB(h_exec_signal)
STUB(h_exec_resize)
STUB(h_files_download)
STUB(h_box_tunnel)
STUB(h_metrics)
STUB(h_box_metrics)
STUB(h_image_pull)
STUB(h_image_list)
STUB(h_image_get)
STUB(h_image_head)
const struct body_stream box_import_stream = {NULL, NULL, NULL};
const struct body_stream files_upload_stream = {NULL, NULL, NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* input: METHOD '\n' PATH */
    char *buf = malloc(size + 1);
    char *nl;
    struct req r;
    int mismatch = 0;
    const struct route *rt;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    nl = strchr(buf, '\n');
    if (nl != NULL) {
        *nl = '\0';
        memset(&r, 0, sizeof(r));
        rt = router_match(&r, buf, nl + 1, &mismatch);
        for (int i = 0; i < SERVE_MAX_PARAMS; i++) {
            if (r.params[i] != NULL) {
                assert(rt != NULL && r.params[i][0] != '\0' && strchr(r.params[i], '/') == NULL);
                free(r.params[i]);
            }
        }
    }
    free(buf);
    return 0;
}
