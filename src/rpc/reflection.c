/*
 * reflection.c — grpc.reflection.v1alpha.ServerReflection, public: the services this
 * server has and the descriptors of their .proto files (with everything they import), from
 * the descriptor set protoc wrote at build time (proto/, compiled into the binary). Enough
 * for grpcurl to list, describe and call with no .proto at hand.
 */
#include "rpc/rpc_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"

extern const unsigned char *const lh_grpc_descriptors;
extern const size_t lh_grpc_descriptors_len;

static Google__Protobuf__FileDescriptorSet *set;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void
load(void)
{
    set = google__protobuf__file_descriptor_set__unpack(NULL, lh_grpc_descriptors_len,
                                                        lh_grpc_descriptors);
}

static Google__Protobuf__FileDescriptorProto *
file_named(const char *name)
{
    for (size_t i = 0; set && i < set->n_file; i++)
        if (strcmp(set->file[i]->name, name) == 0)
            return set->file[i];
    return NULL;
}

static bool
in_messages(Google__Protobuf__DescriptorProto **msgs, size_t n, const char *prefix,
            const char *symbol)
{
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < n; i++) {
        char full[512];
        snprintf(full, sizeof full, "%s%s%s", prefix, plen ? "." : "", msgs[i]->name);
        if (strcmp(full, symbol) == 0)
            return true;
        for (size_t e = 0; e < msgs[i]->n_enum_type; e++) {
            char en[600];
            snprintf(en, sizeof en, "%s.%s", full, msgs[i]->enum_type[e]->name);
            if (strcmp(en, symbol) == 0)
                return true;
        }
        if (in_messages(msgs[i]->nested_type, msgs[i]->n_nested_type, full, symbol))
            return true;
    }
    return false;
}

/* The file that declares symbol (a message, enum, service or method), or NULL. */
static Google__Protobuf__FileDescriptorProto *
file_declaring(const char *symbol)
{
    for (size_t i = 0; set && i < set->n_file; i++) {
        Google__Protobuf__FileDescriptorProto *f = set->file[i];
        const char *pkg = f->package ? f->package : "";
        if (in_messages(f->message_type, f->n_message_type, pkg, symbol))
            return f;
        for (size_t e = 0; e < f->n_enum_type; e++) {
            char full[512];
            snprintf(full, sizeof full, "%s.%s", pkg, f->enum_type[e]->name);
            if (strcmp(full, symbol) == 0)
                return f;
        }
        for (size_t s = 0; s < f->n_service; s++) {
            char full[512];
            snprintf(full, sizeof full, "%s.%s", pkg, f->service[s]->name);
            if (strcmp(full, symbol) == 0)
                return f;
            for (size_t m = 0; m < f->service[s]->n_method; m++) {
                char meth[700];
                snprintf(meth, sizeof meth, "%s.%s", full, f->service[s]->method[m]->name);
                if (strcmp(meth, symbol) == 0)
                    return f;
            }
        }
    }
    return NULL;
}

/* f and, after it, every file it imports (each once), packed. */
static void
add_with_deps(Google__Protobuf__FileDescriptorProto *f,
              Grpc__Reflection__V1alpha__FileDescriptorResponse *r)
{
    uint8_t *data;
    size_t len;
    lh_grpc__pack(&f->base, &data, &len);
    for (size_t i = 0; i < r->n_file_descriptor_proto; i++)
        if (r->file_descriptor_proto[i].len == len &&
            memcmp(r->file_descriptor_proto[i].data, data, len) == 0) {
            free(data);
            return;
        }
    r->file_descriptor_proto =
        realloc(r->file_descriptor_proto,
                (r->n_file_descriptor_proto + 1) * sizeof *r->file_descriptor_proto);
    if (r->file_descriptor_proto == NULL)
        abort();
    r->file_descriptor_proto[r->n_file_descriptor_proto].data = data;
    r->file_descriptor_proto[r->n_file_descriptor_proto].len = len;
    r->n_file_descriptor_proto++;
    for (size_t i = 0; i < f->n_dependency; i++) {
        Google__Protobuf__FileDescriptorProto *d = file_named(f->dependency[i]);
        if (d)
            add_with_deps(d, r);
    }
}

int
lh_grpc__reflect(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
    pthread_once(&once, load);
    Grpc__Reflection__V1alpha__ServerReflectionRequest *req =
        grpc__reflection__v1alpha__server_reflection_request__unpack(NULL, len, in);
    if (req == NULL)
        return -1;
    Grpc__Reflection__V1alpha__ServerReflectionResponse res =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__INIT;
    res.valid_host = req->host;
    res.original_request = req;
    Grpc__Reflection__V1alpha__FileDescriptorResponse files =
        GRPC__REFLECTION__V1ALPHA__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__ListServiceResponse list =
        GRPC__REFLECTION__V1ALPHA__LIST_SERVICE_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__ServiceResponse svcs[16], *svcp[16];
    char names[16][128];
    Grpc__Reflection__V1alpha__ErrorResponse error =
        GRPC__REFLECTION__V1ALPHA__ERROR_RESPONSE__INIT;
    Google__Protobuf__FileDescriptorProto *f = NULL;
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        for (size_t i = 0; set && i < set->n_file; i++)
            for (size_t s = 0; s < set->file[i]->n_service && list.n_service < 16; s++) {
                size_t k = list.n_service++;
                snprintf(names[k], sizeof names[k], "%s.%s", set->file[i]->package,
                         set->file[i]->service[s]->name);
                grpc__reflection__v1alpha__service_response__init(&svcs[k]);
                svcs[k].name = names[k];
                svcp[k] = &svcs[k];
            }
        list.service = svcp;
        res.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        res.list_services_response = &list;
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        f = file_named(req->file_by_filename);
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        f = file_declaring(req->file_containing_symbol);
        break;
    default:
        break;
    }
    if (res.message_response_case == 0 && f) {
        add_with_deps(f, &files);
        res.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        res.file_descriptor_response = &files;
    } else if (res.message_response_case == 0) {
        error.error_code = 5; /* NOT_FOUND */
        error.error_message =
            req->message_request_case ==
                        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION ||
                    req->message_request_case ==
                        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE
                ? "these services declare no extensions"
                : "no such file or symbol on this server";
        res.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        res.error_response = &error;
    }
    lh_grpc__pack(&res.base, out, out_len);
    for (size_t i = 0; i < files.n_file_descriptor_proto; i++)
        free(files.file_descriptor_proto[i].data);
    free(files.file_descriptor_proto);
    grpc__reflection__v1alpha__server_reflection_request__free_unpacked(req, NULL);
    return 0;
}
