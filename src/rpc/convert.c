/*
 * convert.c — JSON (as the modules answer) into google.protobuf.Struct/Value/ListValue,
 * every part malloc'd so protobuf_c_message_free_unpacked frees the whole tree.
 */
#include "rpc/rpc_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static Google__Protobuf__Value *value_of(const json_t *v);

static Google__Protobuf__ListValue *
list_of(const json_t *arr)
{
    Google__Protobuf__ListValue *l = lh_malloc(sizeof *l);
    google__protobuf__list_value__init(l);
    l->n_values = json_array_size(arr);
    l->values = l->n_values ? lh_malloc(l->n_values * sizeof *l->values) : NULL;
    for (size_t i = 0; i < l->n_values; i++)
        l->values[i] = value_of(json_array_get(arr, i));
    return l;
}

Google__Protobuf__Struct *
lh_grpc__struct(const json_t *obj)
{
    Google__Protobuf__Struct *st = lh_malloc(sizeof *st);
    google__protobuf__struct__init(st);
    size_t n = json_is_object(obj) ? json_object_size(obj) : 0;
    st->fields = n ? lh_malloc(n * sizeof *st->fields) : NULL;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        Google__Protobuf__Struct__FieldsEntry *e = lh_malloc(sizeof *e);
        google__protobuf__struct__fields_entry__init(e);
        e->key = lh_strdup(key);
        e->value = value_of(v);
        st->fields[st->n_fields++] = e;
    }
    return st;
}

static Google__Protobuf__Value *
value_of(const json_t *v)
{
    Google__Protobuf__Value *out = lh_malloc(sizeof *out);
    google__protobuf__value__init(out);
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        out->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
        out->struct_value = lh_grpc__struct(v);
        break;
    case JSON_ARRAY:
        out->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
        out->list_value = list_of(v);
        break;
    case JSON_STRING:
        out->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
        out->string_value = lh_strdup(json_string_value(v));
        break;
    case JSON_INTEGER:
    case JSON_REAL:
        out->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
        out->number_value = json_number_value(v);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        out->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
        out->bool_value = json_is_true(v);
        break;
    default:
        out->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
        out->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
        break;
    }
    return out;
}

/* ---- the other way: google.protobuf.Struct (a request's) into JSON -------------------- */

static json_t *
json_of_value(const Google__Protobuf__Value *v)
{
    if (v == NULL)
        return json_null();
    switch (v->kind_case) {
    case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE: {
        double d = v->number_value;
        /* Struct has only doubles: a whole number is what JSON clients meant as an integer
         * (JSON Schema's "integer"), within the range a double holds exactly */
        if (!isfinite(d))
            return json_string(isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
        if (fabs(d) <= 9007199254740992.0 && d == floor(d))
            return json_integer((json_int_t)d);
        return json_real(d);
    }
    case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE:
        return json_string(v->string_value);
    case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
        return json_boolean(v->bool_value);
    case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
        return lh_grpc__json_of_struct(v->struct_value);
    case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE: {
        json_t *a = json_array();
        for (size_t i = 0; v->list_value && i < v->list_value->n_values; i++)
            json_array_append_new(a, json_of_value(v->list_value->values[i]));
        return a;
    }
    default:
        return json_null();
    }
}

json_t *
lh_grpc__json_of_struct(const Google__Protobuf__Struct *st)
{
    json_t *o = json_object();
    for (size_t i = 0; st && i < st->n_fields; i++)
        json_object_set_new(o, st->fields[i]->key, json_of_value(st->fields[i]->value));
    return o;
}
