/* ops_get.c - `funnel get`: documents by external id (Search/Get). */
#include "ops.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "funnel.pb-c.h"
#include "rpc_client.h"

#define GET_DEADLINE_MS 10000

static const char get_usage[] =
    "usage: funnel get --server ADDR ID [ID...] [--fields a,b] [--json] [--deadline-ms N]\n"
    "\n"
    "Prints each document (in the order asked) as one JSON object a line, with\n"
    "its \"id\" and its stored fields (all of them, or those of --fields), or\n"
    "\"not found: ID\". At most 100 ids.\n"
    "  --fields a,b     only these top-level fields of the document\n"
    "  --json           print the whole GetResponse as JSON (found, shard,\n"
    "                   failed_shards) instead\n"
    "  --deadline-ms N  gRPC deadline (default 10000)\n"
    "Exit status: 0 every document found, 1 some not found or an error\n"
    "(printed as \"error: STATUS: message\"), 2 usage error.\n";

/* One found document: {"id": ..., fields...} on one line. */
static int print_doc(const Funnel__V1__GetDoc *d)
{
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "id", json_string(d->id)) != 0) {
        json_decref(o);
        return -1;
    }
    for (size_t f = 0; f < d->n_fields; f++) {
        const char *name = d->fields[f]->name;
        if (strcmp(name, "id") == 0) continue;   /* already there */
        json_t *v = json_loads(d->fields[f]->json, JSON_DECODE_ANY, NULL);
        if (!v) v = json_string(d->fields[f]->json);
        if (!v || json_object_set_new(o, name, v) != 0) {
            json_decref(o);
            return -1;
        }
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text) return -1;
    printf("%s\n", text);
    free(text);
    return 0;
}

int ops_cmd_get(int argc, char **argv)
{
    static const struct option lo[] = {
        {"server", required_argument, 0, 's'}, {"fields", required_argument, 0, 'f'},
        {"json", no_argument, 0, 'j'},         {"deadline-ms", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *server = NULL;
    char **fields = NULL;
    size_t nfields = 0;
    int json = 0;
    long long deadline_ms = GET_DEADLINE_MS;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 's': server = optarg; break;
        case 'f':
            free(fields);
            fields = NULL;
            if (ops_split_fields(optarg, &fields, &nfields)) {
                fprintf(stderr, "funnel get: out of memory\n");
                return OPS_EXIT_FAIL;
            }
            break;
        case 'j': json = 1; break;
        case 'd': {
            char *end;
            errno = 0;
            deadline_ms = strtoll(optarg, &end, 10);
            if (!*optarg || *end || errno || deadline_ms <= 0 || deadline_ms > 86400000) {
                fprintf(stderr, "funnel get: bad number for --deadline-ms: '%s'\n", optarg);
                free(fields);
                return OPS_EXIT_USAGE;
            }
            break;
        }
        case 'h':
            fputs(get_usage, stdout);
            free(fields);
            return OPS_EXIT_OK;
        default:
            fputs(get_usage, stderr);
            free(fields);
            return OPS_EXIT_USAGE;
        }
    }
    if (!server || optind >= argc) {
        fprintf(stderr, "funnel get: %s\n", !server ? "--server is required" : "give at least one document id");
        fputs(get_usage, stderr);
        free(fields);
        return OPS_EXIT_USAGE;
    }
    Funnel__V1__GetRequest req = FUNNEL__V1__GET_REQUEST__INIT;
    req.ids = argv + optind;
    req.n_ids = (size_t)(argc - optind);
    req.fields = fields;
    req.n_fields = nfields;

    rpc_init();
    rpc_client_t *client = rpc_client_create(server);
    int ret = OPS_EXIT_FAIL;
    if (!client) {
        fprintf(stderr, "funnel get: out of memory\n");
        goto out;
    }
    ProtobufCMessage *m = NULL;
    rpc_status st;
    memset(&st, 0, sizeof st);
    grpc_status_code code = rpc_client_call(client, RPC_METHOD_GET, &req.base, &funnel__v1__get_response__descriptor,
                                            deadline_ms, &m, &st);
    if (code != GRPC_STATUS_OK) {
        fprintf(stderr, "error: %s: %s\n", rpc_status_name(code), st.message);
        goto out_client;
    }
    const Funnel__V1__GetResponse *r = (const Funnel__V1__GetResponse *)m;
    int missing = 0, oom = 0;
    for (size_t i = 0; i < r->n_docs; i++) missing |= !r->docs[i]->found;
    if (json) {
        json_t *j = ops_pb_to_json(m);
        json_t *docs = json_object_get(j, "docs");
        size_t di;
        json_t *dobj;
        json_array_foreach(docs, di, dobj) oom |= ops_json_stored_fields(dobj) != 0;
        char *text = j && !oom ? json_dumps(j, JSON_INDENT(2)) : NULL;
        json_decref(j);
        if (text) printf("%s\n", text);
        else oom = 1;
        free(text);
    } else {
        for (size_t i = 0; i < r->n_docs && !oom; i++) {
            if (r->docs[i]->found) oom = print_doc(r->docs[i]) != 0;
            else printf("not found: %s\n", r->docs[i]->id);
        }
    }
    for (size_t i = 0; i < r->n_failed_shards; i++)
        fprintf(stderr, "warning: shard %u did not answer: its documents are reported not found\n",
                r->failed_shards[i]);
    if (oom) fprintf(stderr, "funnel get: out of memory\n");
    ret = missing || oom ? OPS_EXIT_FAIL : OPS_EXIT_OK;
    protobuf_c_message_free_unpacked(m, NULL);
out_client:
    rpc_client_destroy(client);
out:
    rpc_shutdown();
    free(fields);
    return ret;
}
