/* copy.h — the agent's copy-in reader (copy.c) on its own: the tar the host sends is extracted
 * in the guest by it, and tests/fuzz/fuzz_agent_untar.c feeds it crafted archives. */
#ifndef BL_AGENT_COPY_H
#define BL_AGENT_COPY_H

/* copy-in DEST OPTS: extract the ustar/pax/GNU archive read from fd in (read to its end
 * marker, not closed) at dest, by docker cp's rules. OPTS letters: o (overwrite), p (include
 * parent), x (raw: the archive's names as they are, into the directory dest). Errors are
 * written to fd 2. Returns the built-in's exit status: 0, or 1 on any failure. Not
 * thread-safe (static buffers): the agent runs it in its exec child. */
int bl_copy_in(int in, const char *dest, const char *opts);

#endif
