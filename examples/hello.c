/* hello.c — the README's C example: run one command in a new box of the built-in image and
 * print its output. Build (README): cc examples/hello.c -Iinclude -Lbuild/src/lib -lboxlite */
#include <boxlite.h>
#include <stdio.h>

int main(void)
{
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    boxlite_exec *ex = NULL;
    boxlite_box_options bo = BOXLITE_BOX_OPTIONS_INIT;
    boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;
    const char *argv[] = {"echo", "hello from a box", NULL};
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    char buf[4096];
    size_t n;
    int which;

    bo.auto_remove = 1;
    eo.argv = argv;
    if (boxlite_runtime_open(&rt, NULL) || boxlite_box_create(&box, rt, &bo) ||
        boxlite_box_start(box) || boxlite_exec_start(&ex, box, &eo)) {
        fprintf(stderr, "boxlite: %s\n", boxlite_error_last());
        return 1;
    }
    boxlite_exec_close_stdin(ex);
    while (boxlite_exec_read(ex, BOXLITE_STDOUT | BOXLITE_STDERR, &which, buf, sizeof buf, &n,
                             -1) == 0 &&
           n > 0)
        fwrite(buf, 1, n, which == BOXLITE_STDOUT ? stdout : stderr);
    boxlite_exec_wait(ex, &res, -1);
    boxlite_exec_free(ex);
    boxlite_box_stop(box, BOXLITE_STOP_TIMEOUT_DEFAULT_MS);
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return res.exit_code;
}
