/*
 * baseline_mhd.c — the floor for bench/http_gateway: a bare libmicrohttpd server with the
 * same threading model as lakehouse (epoll thread pool) that answers every request
 * with a constant JSON body. Whatever lakehouse costs above this is our gateway:
 * routing, auth, request ids, metrics, logging, the handler.
 *
 * usage: baseline_mhd PORT THREADS   (runs until killed)
 */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
       const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    static const char body[] = "{\"status\":\"ok\"}\n";
    static int marker;
    (void)cls, (void)url, (void)method, (void)version, (void)upload_data;
    /* answer on the second call, when the request is complete: a response queued
     * earlier makes MHD close the connection instead of keeping it alive */
    if (*con_cls == NULL) {
        *con_cls = &marker;
        return MHD_YES;
    }
    *upload_data_size = 0;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: baseline_mhd PORT THREADS\n");
        return 2;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD, (uint16_t)atoi(argv[1]), NULL, NULL, answer, NULL,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)atoi(argv[2]), MHD_OPTION_CONNECTION_LIMIT,
        1024u, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "baseline_mhd: cannot start on port %s\n", argv[1]);
        return 1;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
