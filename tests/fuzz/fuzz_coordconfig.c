/* fuzz_coordconfig.c - libFuzzer harness for the coordinator's config file
 * (coordinator/coord_config.c, coord_config_load_file over
 * common/fn_config.c), blend rules included (coordinator/blend.c,
 * page_rule_parse and page_rules_check). The loader reads a file, so the
 * input is written to a temporary file (mkstemp in /tmp, unlinked after).
 * Nothing may crash, read out of bounds or leak, and:
 *
 *  - the load returns 0, FN_EPARSE with "PATH:LINE: ..." (LINE within the
 *    text) or -errno with "PATH: ...";
 *  - whatever it returns, every setting is within its documented range
 *    (coord_config.h; a refused line leaves the config as it was) and the
 *    strings are terminated;
 *  - the blend rules: at most PAGE_MAX_RULES, each with a name and a
 *    vertical of [A-Za-z0-9_.-], position 1..PAGE_MAX_POSITION, size
 *    1..PAGE_MAX_BLOCK, min_hits 1..size, depth 1..PAGE_MAX_DEPTH,
 *    min_intent 0..1, ord its 1-based place; together they pass
 *    page_rules_check (unique names, no overlapping blocks), and every
 *    rule's canonical text parses back to the same rule.
 *
 * Built two ways: with clang -fsanitize=fuzzer by tests/fuzz/run_fuzz.sh
 * (run_fuzz.sh SRC_DIR SECONDS coordconfig), and with fuzz_main.c in the
 * ordinary build, which runs the seed corpus (tests/fuzz/corpus/coordconfig)
 * as a test. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coord_config.h"
#include "fn_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *g_in;
static size_t g_n;
static char g_path[64];

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_coordconfig: %s: %s\ninput (%zu bytes): '", what, detail ? detail : "", g_n);
    fwrite(g_in, 1, g_n, stderr);
    fprintf(stderr, "'\n");
    if (g_path[0]) unlink(g_path);
    abort();
}

static void in_range(const char *name, int64_t v, int64_t lo, int64_t hi)
{
    if (v < lo || v > hi) fail("setting out of range", name);
}

static void in_range_d(const char *name, double v, double lo, double hi)
{
    if (!(v >= lo && v <= hi)) fail("setting out of range", name);
}

static void terminated(const char *name, const char *s, size_t cap)
{
    if (!memchr(s, '\0', cap)) fail("string not terminated", name);
}

static void name_ok(const char *what, const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n < 1 || n > max) fail("rule name/vertical length", what);
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            fail("rule name/vertical character", s);
}

static void check_rules(const coord_config *c)
{
    if (c->nrules > PAGE_MAX_RULES) fail("too many rules", NULL);
    for (size_t i = 0; i < c->nrules; i++) {
        const page_rule *r = &c->rules[i];
        name_ok("name", r->name, PAGE_RULE_NAME_MAX);
        name_ok("vertical", r->vertical, PAGE_VERTICAL_MAX);
        if (r->position < 1 || r->position > PAGE_MAX_POSITION) fail("rule position out of 1..1000", r->name);
        if (r->size < 1 || r->size > PAGE_MAX_BLOCK) fail("rule size out of 1..10", r->name);
        if (r->min_hits < 1 || r->min_hits > r->size) fail("rule min_hits out of 1..size", r->name);
        if (r->depth < 1 || r->depth > PAGE_MAX_DEPTH) fail("rule depth out of range", r->name);
        if (!(r->min_intent >= 0 && r->min_intent <= 1)) fail("rule min_intent out of 0..1", r->name);
        if (r->ord != i + 1) fail("rule ord is not its place", r->name);
        /* the canonical text parses back to the same rule */
        char text[512];
        snprintf(text, sizeof text, "%s vertical=%s position=%u size=%u min-intent=%.17g min-hits=%u depth=%u",
                 r->name, r->vertical, r->position, r->size, r->min_intent, r->min_hits, r->depth);
        page_rule back;
        fn_errbuf eb;
        if (page_rule_parse(text, &back, &eb) != 0) fail("a rule's canonical text is refused", eb.msg);
        if (strcmp(back.name, r->name) || strcmp(back.vertical, r->vertical) || back.position != r->position ||
            back.size != r->size || back.min_hits != r->min_hits || back.depth != r->depth ||
            back.min_intent != r->min_intent)
            fail("a rule's canonical text parses to another rule", text);
    }
    fn_errbuf eb;
    if (page_rules_check(c->rules, c->nrules, &eb) != 0) fail("accepted rules fail page_rules_check", eb.msg);
}

static void check_config(const coord_config *c)
{
    terminated("topology", c->topology, sizeof c->topology);
    terminated("listen", c->listen, sizeof c->listen);
    terminated("addr-file", c->addr_file, sizeof c->addr_file);
    terminated("config", c->config_file, sizeof c->config_file);
    terminated("stage2-model", c->stage2_model, sizeof c->stage2_model);
    terminated("spell-dict", c->spell_dict, sizeof c->spell_dict);
    terminated("spell-wordlist", c->spell_wordlist, sizeof c->spell_wordlist);
    terminated("spell-stemmer", c->spell_stemmer, sizeof c->spell_stemmer);
    terminated("synonyms", c->synonyms, sizeof c->synonyms);
    terminated("analyzer", c->analyzer, sizeof c->analyzer);
    terminated("intent-model", c->intent_model, sizeof c->intent_model);
    terminated("impressions-log", c->impressions_log, sizeof c->impressions_log);
    if (c->config_file[0]) fail("'config' set from a config file", c->config_file);
    in_range("default-deadline-ms", c->default_deadline_ms, 1, 3600000);
    in_range("budget-ms", c->budget_ms, 0, 600000);
    in_range("max-window", c->max_window, 1, 1000000);
    in_range("max-query-bytes", c->max_query_bytes, 1, 1 << 20);
    in_range("max-query-words", c->max_query_words, 1, 100000);
    in_range("max-explain-hits", c->max_explain_hits, 1, 1000000);
    in_range("max-reply-bytes", c->max_reply_bytes, 4096, 1 << 30);
    in_range("selection-k", c->selection_k, 1, 1000000);
    in_range("stage1-k", c->stage1_k, 1, 1000000);
    in_range("stage2-k", c->stage2_k, 1, 100000);
    in_range("impressions-max-bytes", c->impressions_max_bytes, 0, 1ll << 40);
    in_range("impressions-keep", c->impressions_keep, 1, 1000);
    in_range("prf-docs", c->prf_docs, 0, 100);
    in_range("prf-terms", c->prf_terms, 1, 500);
    in_range("synonym-senses", c->synonym_senses, 1, 100);
    in_range("relax-min-hits", c->relax_min_hits, 0, 1000000);
    in_range("health-interval-ms", c->health_interval_ms, 0, 3600000);
    in_range("probe-deadline-ms", c->probe_deadline_ms, 1, 60000);
    in_range("down-probe-interval-ms", c->down_probe_interval_ms, 1, 3600000);
    in_range("breaker-failures", c->breaker_failures, 1, 1000);
    in_range("breaker-backoff-ms", c->breaker_backoff_ms, 1, 3600000);
    in_range("breaker-max-backoff-ms", c->breaker_max_backoff_ms, 1, 3600000);
    in_range("demote-by", c->demote_by, 1, 10000);
    in_range("host-cap", c->host_cap, 0, 1000);
    in_range("page-block", c->page_block, 1, 1000);
    in_range("collapse-duplicates", c->collapse_duplicates, 0, 1);
    in_range("safe-search", c->safe_search, PAGE_SAFE_OFF, PAGE_SAFE_STRICT);
    in_range("log-level", c->log_level, FN_LOG_DEBUG, FN_LOG_ERROR);
    in_range_d("overprovision", c->overprovision, 1, 100);
    in_range_d("prf-lambda", c->prf_lambda, 0, 1);
    in_range_d("prf-temperature", c->prf_temperature, 0, 100);
    in_range_d("prf-max-df", c->prf_max_df, 0, 1);
    in_range_d("spell-min-score", c->spell_min_score, -1000, 0);
    in_range_d("synonym-weight", c->synonym_weight, 0, 1);
    check_rules(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_in = data;
    g_n = size;
    snprintf(g_path, sizeof g_path, "/tmp/fuzz_coordconfig.XXXXXX");
    int fd = mkstemp(g_path);
    if (fd < 0) {
        perror("fuzz_coordconfig: mkstemp");
        abort();
    }
    for (size_t off = 0; off < size;) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            perror("fuzz_coordconfig: write");
            close(fd);
            fail("cannot write the temporary file", g_path);
        }
        off += (size_t)w;
    }
    close(fd);

    coord_config *c = malloc(sizeof *c);
    if (!c) abort();
    coord_config_defaults(c);
    fn_errbuf eb;
    eb.msg[0] = '\0';
    int rc = coord_config_load_file(c, g_path, &eb);
    if (rc) {
        size_t pl = strlen(g_path);
        if (strncmp(eb.msg, g_path, pl) != 0 || eb.msg[pl] != ':') fail("message without 'PATH:'", eb.msg);
        if (rc == FN_EPARSE) {
            char *end;
            unsigned long line = strtoul(eb.msg + pl + 1, &end, 10);
            if (end == eb.msg + pl + 1 || *end != ':') fail("message without 'PATH:LINE:'", eb.msg);
            /* fgets splits lines longer than its buffer, so count a bound */
            unsigned long lines = 1;
            for (size_t i = 0; i < size; i++) lines += data[i] == '\n';
            if (line < 1 || line > lines + size / 8191 + 1) fail("line number out of range", eb.msg);
        } else if (rc >= 0 || rc <= -4096) {
            fail("unexpected return code", eb.msg);
        }
    }
    check_config(c);
    free(c);
    unlink(g_path);
    g_path[0] = '\0';
    return 0;
}
