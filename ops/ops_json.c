/* ops_json.c - any protobuf-c message -> jansson, driven by the descriptors,
 * so `funnel search --json` follows proto/funnel.proto without a hand-kept
 * field list. */
#include "ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static json_t *scalar(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:  return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: return json_integer((json_int_t)*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:  return json_integer((json_int_t)*(const uint64_t *)p);
    /* JSON has no NaN or infinity (a missing feature is NaN): null */
    case PROTOBUF_C_TYPE_FLOAT:    return isfinite(*(const float *)p) ? json_real(*(const float *)p) : json_null();
    case PROTOBUF_C_TYPE_DOUBLE:   return isfinite(*(const double *)p) ? json_real(*(const double *)p) : json_null();
    case PROTOBUF_C_TYPE_BOOL:     return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        return ev ? json_string(ev->name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return json_string(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        char *hex = malloc(2 * b->len + 1);
        if (!hex) return NULL;
        for (size_t i = 0; i < b->len; i++) {
            static const char digits[] = "0123456789abcdef";
            hex[2 * i] = digits[b->data[i] >> 4];
            hex[2 * i + 1] = digits[b->data[i] & 15];
        }
        hex[2 * b->len] = '\0';
        json_t *j = json_string(hex);
        free(hex);
        return j;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(const ProtobufCMessage *const *)p;
        return m ? ops_pb_to_json(m) : json_null();
    }
    }
    return json_null();
}

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    }
    return 0;
}

json_t *ops_pb_to_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *obj = json_object();
    if (!obj) return NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        json_t *v;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const char *arr = *(const char *const *)(base + f->offset);
            v = json_array();
            for (size_t k = 0; v && k < n; k++) {
                json_t *e = scalar(f, arr + k * elem_size(f->type));
                if (!e || json_array_append_new(v, e) != 0) {
                    json_decref(v);
                    v = NULL;
                }
            }
        } else {
            if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);
                if (which != f->id) continue;
            } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
                       f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING &&
                       !*(const protobuf_c_boolean *)(base + f->quantifier_offset)) {
                continue;
            }
            v = scalar(f, base + f->offset);
        }
        if (!v || json_object_set_new(obj, f->name, v) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

int ops_json_stored_fields(json_t *obj)
{
    json_t *arr = json_object_get(obj, "fields");
    if (!json_is_array(arr)) return 0;
    json_t *out = json_object();
    if (!out) return -1;
    size_t i;
    json_t *f;
    json_array_foreach(arr, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        const char *text = json_string_value(json_object_get(f, "json"));
        if (!name || !text) continue;
        json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
        if (!v) v = json_string(text);
        if (!v || json_object_set_new(out, name, v) != 0) {
            json_decref(out);
            return -1;
        }
    }
    return json_object_set_new(obj, "fields", out) == 0 ? 0 : -1;
}

int ops_split_fields(const char *list, char ***names, size_t *n)
{
    size_t cnt = 1, len = strlen(list);
    for (const char *p = list; *p; p++) cnt += *p == ',';
    char **v = malloc(cnt * sizeof *v + len + 1);
    if (!v) return -1;
    char *buf = (char *)(v + cnt);
    memcpy(buf, list, len + 1);
    size_t k = 0;
    v[k++] = buf;
    for (char *p = buf; *p; p++)
        if (*p == ',') {
            *p = '\0';
            v[k++] = p + 1;
        }
    *names = v;
    *n = k;
    return 0;
}
