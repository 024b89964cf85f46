/*
 * svc_health.c — grpc.health.v1.Health, public (load balancers call it without a token):
 * Check answers SERVING for "" (the server) and for each lakehouse service it serves,
 * NOT_FOUND for a service it does not know (and, as every call arriving then, UNAVAILABLE
 * once the server shuts down). Watch sends SERVING (or SERVICE_UNKNOWN) at once, then
 * NOT_SERVING when the server starts shutting down, and ends; it holds a stream slot
 * while it waits.
 */
#include "rpc/rpc_int.h"

#include <string.h>
#include <unistd.h>

#include "grpc/health/v1/health.pb-c.h"

static const char *const SERVICES[] = {"",
                                       "lakehouse.v1.Catalog",
                                       "lakehouse.v1.Vectors",
                                       "lakehouse.v1.Query",
                                       "lakehouse.v1.Tools",
                                       "lakehouse.v1.Journal",
                                       "lakehouse.v1.Rows",
                                       "lakehouse.v1.Jobs",
                                       "lakehouse.v1.Ingest",
                                       "grpc.health.v1.Health"};

/* The service a health request names: whether this server has it. */
static int
service_known(const uint8_t *in, size_t in_len, bool *known, lh_err *err)
{
    Grpc__Health__V1__HealthCheckRequest *req =
        grpc__health__v1__health_check_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "grpc.health.v1.HealthCheckRequest");
    *known = false;
    for (size_t i = 0; i < sizeof SERVICES / sizeof SERVICES[0]; i++)
        *known |= strcmp(req->service, SERVICES[i]) == 0;
    if (!*known)
        lh_err_set(err, LH_ENOTFOUND, 404, "service_not_found", "no service '%s' on this server",
                   req->service);
    grpc__health__v1__health_check_request__free_unpacked(req, NULL);
    return 0;
}

static int
check(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len, lh_err *err)
{
    bool known;
    int rc = service_known(in, in_len, &known, err);
    if (rc != 0 || !known)
        return rc ? rc : LH_ENOTFOUND;
    Grpc__Health__V1__HealthCheckResponse res = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    res.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    return lh_grpc__pack(&res.base, out, out_len);
}

static int
send_status(lh_gstream *s, int status, lh_err *err)
{
    Grpc__Health__V1__HealthCheckResponse res = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    res.status = status;
    return lh_grpc__send(s, &res.base, err);
}

static int
watch(lh_gcall *c, const uint8_t *in, size_t in_len, lh_gstream *s, lh_err *err)
{
    bool known;
    int rc = service_known(in, in_len, &known, err);
    if (rc != 0)
        return rc;
    rc = send_status(s,
                     known
                         ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                         : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN,
                     err);
    while (rc == 0 && !lh_grpc__stopping(c)) {
        if (lh_grpc__gone(s))
            return lh_err_set(err, LH_ECANCELED, 499, "client_gone", "the client went away");
        usleep(100 * 1000);
    }
    if (rc == 0)
        rc = send_status(s, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING,
                         err);
    return rc;
}

const lh_gmethod lh_grpc__health[] = {
    {"/grpc.health.v1.Health/Check", LH_ALLOW_PUBLIC, check, NULL, NULL, 0, NULL},
    {"/grpc.health.v1.Health/Watch", LH_ALLOW_PUBLIC, NULL, watch, NULL, 0, NULL},
};
const size_t lh_grpc__n_health = sizeof lh_grpc__health / sizeof lh_grpc__health[0];
