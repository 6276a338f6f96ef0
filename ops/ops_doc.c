/* ops_doc.c - `funnel doc put | delete`: live updates on a running cluster
 * (Search/Update; docs/operations.md "Live updates"). Documents go in
 * batches; a batch is acknowledged only when every replica of every owning
 * shard stored it durably, and one that is not (a shard down, a deadline)
 * is sent again until it is or --retry-s runs out. Last writer wins on the
 * shards, so a repeat is harmless.
 */
#include "ops.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "funnel.pb-c.h"
#include "rpc_client.h"

static const char doc_usage[] =
    "usage: funnel doc put --server ADDR [--batch N] [--retry-s S] FILE.jsonl|-\n"
    "       funnel doc delete --server ADDR [--batch N] [--retry-s S] ID... | --ids FILE\n"
    "\n"
    "put sends every document of FILE (JSON Lines, the corpus format: \"id\" required)\n"
    "to the coordinator ADDR, which routes it to the shard owning its id. A document\n"
    "acknowledged is on disk on every replica of that shard (it survives kill -9),\n"
    "found by `funnel get` at once, and searchable after the next merge (funnel\n"
    "index merge); the old document of the same id leaves searches at once.\n"
    "delete removes documents by id: never returned again once acknowledged.\n"
    "  --batch N     documents per request (1..1000, default 100)\n"
    "  --retry-s S   keep re-sending a batch that was not acknowledged (a shard\n"
    "                down, restarting) for S seconds (default 30; 0 = no retry)\n"
    "A bad line is reported as FILE:LINE: reason and nothing after it is sent.\n"
    "Prints what was sent and acknowledged. Exit status: 0 all acknowledged,\n"
    "1 a batch refused or not acknowledged in time, 2 usage error.\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct batch {
    Funnel__V1__DocUpdate *ops;
    Funnel__V1__DocUpdate **ptrs;
    char **strs;                 /* owned strings (ids, documents) */
    size_t n, nstr;
    size_t first_line;           /* put: the file line of ops[0] */
} batch;

static void batch_clear(batch *b)
{
    for (size_t i = 0; i < b->nstr; i++) free(b->strs[i]);
    b->n = b->nstr = 0;
}

/* Send b until acknowledged; 0, or -1 (printed). */
static int send_batch(rpc_client_t *c, batch *b, double retry_s, const char *what, uint64_t *applied,
                      uint64_t *stale, size_t *retries)
{
    Funnel__V1__UpdateRequest rq = FUNNEL__V1__UPDATE_REQUEST__INIT;
    rq.docs = b->ptrs;
    rq.n_docs = b->n;
    double give_up = now_s() + retry_s, pause = 0.05;
    for (;;) {
        Funnel__V1__UpdateResponse *r = NULL;
        rpc_status st;
        grpc_status_code code = rpc_client_call(c, RPC_METHOD_UPDATE, &rq.base, &funnel__v1__update_response__descriptor,
                                                30000, (ProtobufCMessage **)&r, &st);
        if (code == GRPC_STATUS_OK) {
            *applied += r->applied;
            *stale += r->stale;
            protobuf_c_message_free_unpacked(&r->base, NULL);
            return 0;
        }
        if (code == GRPC_STATUS_INVALID_ARGUMENT || code == GRPC_STATUS_UNAUTHENTICATED ||
            code == GRPC_STATUS_PERMISSION_DENIED || code == GRPC_STATUS_UNIMPLEMENTED || now_s() + pause > give_up) {
            /* docs[i] in the message: the file's line first_line + i */
            const char *at = strstr(st.message, "docs[");
            size_t i = at ? strtoul(at + 5, NULL, 10) : 0;
            if (at && b->first_line && i < b->n)
                fprintf(stderr, "funnel doc %s: %s:%zu: %s: %s\n", what, "input", b->first_line + i,
                        rpc_status_name(code), st.message);
            else
                fprintf(stderr, "funnel doc %s: %s: %s\n", what, rpc_status_name(code), st.message);
            return -1;
        }
        (*retries)++;
        struct timespec ts = { (time_t)pause, (long)((pause - (time_t)pause) * 1e9) };
        nanosleep(&ts, NULL);
        if (pause < 1.0) pause *= 2;
    }
}

static int add_op(batch *b, size_t cap, const char *id, int remove, char *doc)
{
    char *idc = strdup(id);
    if (!idc) return -1;
    b->strs[b->nstr++] = idc;
    if (doc) b->strs[b->nstr++] = doc;
    Funnel__V1__DocUpdate *o = &b->ops[b->n];
    funnel__v1__doc_update__init(o);
    o->id = idc;
    o->remove = remove;
    o->doc = doc ? doc : (char *)"";
    b->ptrs[b->n++] = o;
    (void)cap;
    return 0;
}

int ops_cmd_doc(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "put") && strcmp(argv[1], "delete"))) {
        fputs(doc_usage, argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? stdout : stderr);
        return argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? OPS_EXIT_OK : OPS_EXIT_USAGE;
    }
    const char *what = argv[1];
    int put = strcmp(what, "put") == 0;
    argc--;
    argv++;
    static const struct option lo[] = {{"server", required_argument, 0, 's'}, {"batch", required_argument, 0, 'b'},
                                       {"retry-s", required_argument, 0, 'r'}, {"ids", required_argument, 0, 'i'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *server = NULL, *ids_file = NULL;
    long bsz = 100;
    double retry_s = 30;
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 's': server = optarg; break;
        case 'b':
            bsz = strtol(optarg, &end, 10);
            if (*end || bsz < 1 || bsz > 1000) {
                fprintf(stderr, "funnel doc %s: --batch: want 1..1000\n", what);
                return OPS_EXIT_USAGE;
            }
            break;
        case 'r':
            retry_s = strtod(optarg, &end);
            if (*end || !(retry_s >= 0) || retry_s > 86400) {
                fprintf(stderr, "funnel doc %s: --retry-s: want 0..86400\n", what);
                return OPS_EXIT_USAGE;
            }
            break;
        case 'i': ids_file = optarg; break;
        case 'h': fputs(doc_usage, stdout); return OPS_EXIT_OK;
        default: fputs(doc_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    int nargs = argc - optind;
    if (!server || (put && (nargs != 1 || ids_file)) || (!put && !nargs == !ids_file)) {
        fprintf(stderr, "funnel doc %s: %s\n", what,
                !server ? "--server ADDR is required"
                : put ? "give one FILE.jsonl (or -)" : "give IDs or --ids FILE");
        fputs(doc_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    const char *path = put ? argv[optind] : ids_file;
    FILE *in = NULL;
    if (path) {
        in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
        if (!in) {
            fprintf(stderr, "funnel doc %s: %s: %s\n", what, path, strerror(errno));
            return OPS_EXIT_FAIL;
        }
    }
    batch b = { calloc((size_t)bsz, sizeof *b.ops), calloc((size_t)bsz, sizeof *b.ptrs),
                calloc(2 * (size_t)bsz, sizeof *b.strs), 0, 0, 0 };
    rpc_init();
    rpc_client_t *cl = rpc_client_create(server);
    int ret = OPS_EXIT_FAIL;
    uint64_t applied = 0, stale = 0, sent = 0;
    size_t retries = 0, lineno = 0;
    char *line = NULL;
    size_t lcap = 0;
    double t0 = now_s();
    if (!b.ops || !b.ptrs || !b.strs || !cl) {
        fprintf(stderr, "funnel doc %s: out of memory\n", what);
        goto out;
    }
    for (int ai = optind;;) {
        /* the next operation: a file line, or an argument */
        char *doc = NULL;
        char idbuf[600];
        if (in) {
            ssize_t got = getline(&line, &lcap, in);
            if (got < 0) break;
            lineno++;
            while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r' || line[got - 1] == ' ')) line[--got] = 0;
            if (got == 0) continue;
            if (put) {
                json_error_t je;
                json_t *o = json_loadb(line, (size_t)got, 0, &je);
                json_t *jid = json_is_object(o) ? json_object_get(o, "id") : NULL;
                if (!json_is_string(jid) || !json_string_length(jid) || json_string_length(jid) > 511) {
                    fprintf(stderr, "funnel doc put: %s:%zu: %s\n", path, lineno,
                            !o ? je.text : !json_is_object(o) ? "not a JSON object"
                            : "\"id\" missing, not a string, empty or longer than 511 bytes");
                    json_decref(o);
                    goto out;
                }
                snprintf(idbuf, sizeof idbuf, "%s", json_string_value(jid));
                json_decref(o);
                if (!(doc = strdup(line))) goto out;
            } else {
                snprintf(idbuf, sizeof idbuf, "%s", line);
            }
        } else {
            if (ai >= argc) break;
            snprintf(idbuf, sizeof idbuf, "%s", argv[ai++]);
        }
        if (b.n == 0) b.first_line = put ? lineno : 0;
        if (add_op(&b, (size_t)bsz, idbuf, !put, doc)) {
            free(doc);
            goto out;
        }
        sent++;
        if (b.n == (size_t)bsz) {
            if (send_batch(cl, &b, retry_s, what, &applied, &stale, &retries)) goto out;
            batch_clear(&b);
        }
    }
    if (b.n && send_batch(cl, &b, retry_s, what, &applied, &stale, &retries)) goto out;
    ret = OPS_EXIT_OK;
out:
    batch_clear(&b);
    printf("%s: %llu sent, %llu acknowledged (%llu applied, %llu overtaken by newer writes), %zu retries, %.2f s\n",
           what, (unsigned long long)sent, (unsigned long long)(ret == OPS_EXIT_OK ? sent : applied + stale),
           (unsigned long long)applied, (unsigned long long)stale, retries, now_s() - t0);
    free(line);
    free(b.ops);
    free(b.ptrs);
    free(b.strs);
    if (in && in != stdin) fclose(in);
    rpc_client_destroy(cl);
    rpc_shutdown();
    return ret;
}
