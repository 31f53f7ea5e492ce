/* tls.h — `boxlite serve --tls-cert/--tls-key`: TLS for every client on one event thread,
 * in front of a libmicrohttpd daemon that speaks plain HTTP (see tls.c). */
#ifndef BOXLITE_SERVE_TLS_H
#define BOXLITE_SERVE_TLS_H

#include <microhttpd.h>
#include <sys/socket.h>

/* Listen on sa and serve TLS there with the PEM cert and key, handing each client's
 * plaintext to d (started with MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC). handshake_s bounds a
 * client's handshake. 0, or -1 with a message on stderr. Called once, from the main thread. */
int tls_front_start(struct MHD_Daemon *d, const struct sockaddr_storage *sa, const char *cert_pem,
                    const char *key_pem, unsigned handshake_s);

/* Stop accepting and stop handing connections to the daemon; returns once no call into it is
 * in progress, so the daemon may then be stopped. No-op when not started. */
void tls_front_quiesce(void);

/* After the daemon has stopped: relay what it wrote last (at most 5 s), close every client
 * and end the thread. No-op when not started. */
void tls_front_stop(void);

#endif
