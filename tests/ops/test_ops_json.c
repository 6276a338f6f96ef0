/* test_ops_json.c - ops/ops_json.c: protobuf-c messages as JSON. */
#include <criterion/criterion.h>

#include <string.h>

#include "funnel.pb-c.h"
#include "ops.h"

Test(ops_json, search_response_has_every_field)
{
    Funnel__V1__Coverage cov = FUNNEL__V1__COVERAGE__INIT;
    cov.shards_asked = 3;
    cov.shards_answered = 2;
    cov.docs_total = 10000000000ULL;   /* beyond 32 bits */
    Funnel__V1__StageScore ss = FUNNEL__V1__STAGE_SCORE__INIT;
    ss.stage = "stage1";
    ss.ran = 1;
    ss.score = 1.25;
    Funnel__V1__StageScore *sss[] = {&ss};
    Funnel__V1__Hit h1 = FUNNEL__V1__HIT__INIT, h2 = FUNNEL__V1__HIT__INIT;
    h1.id = "184";
    h1.title = "a \"quoted\" title";
    h1.score = 12.5;
    h1.shard = 2;
    h1.n_stages = 1;
    h1.stages = sss;
    h2.id = "29";
    h2.score = 0.1;
    Funnel__V1__Hit *hits[] = {&h1, &h2};
    char *terms[] = {"heat", "transfer"};
    Funnel__V1__SearchResponse r = FUNNEL__V1__SEARCH_RESPONSE__INIT;
    r.n_hits = 2;
    r.hits = hits;
    r.coverage = &cov;
    r.partial = 1;
    r.n_terms = 2;
    r.terms = terms;
    r.took_us = 1234;

    json_t *j = ops_pb_to_json(&r.base);
    cr_assert_not_null(j);
    cr_assert(json_is_true(json_object_get(j, "partial")));
    cr_assert_eq(json_integer_value(json_object_get(j, "took_us")), 1234);
    json_t *c = json_object_get(j, "coverage");
    cr_assert_eq(json_integer_value(json_object_get(c, "shards_asked")), 3);
    cr_assert_eq(json_integer_value(json_object_get(c, "shards_answered")), 2);
    cr_assert_eq(json_integer_value(json_object_get(c, "shards_failed")), 0);
    cr_assert_eq(json_integer_value(json_object_get(c, "docs_total")), 10000000000LL);
    json_t *hs = json_object_get(j, "hits");
    cr_assert_eq(json_array_size(hs), 2);
    json_t *a = json_array_get(hs, 0);
    cr_assert_str_eq(json_string_value(json_object_get(a, "id")), "184");
    cr_assert_str_eq(json_string_value(json_object_get(a, "title")), "a \"quoted\" title");
    cr_assert_float_eq(json_real_value(json_object_get(a, "score")), 12.5, 1e-12);
    cr_assert_eq(json_integer_value(json_object_get(a, "shard")), 2);
    json_t *st = json_array_get(json_object_get(a, "stages"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(st, "stage")), "stage1");
    cr_assert(json_is_true(json_object_get(st, "ran")));
    /* empty repeated fields and empty strings are still there */
    json_t *b = json_array_get(hs, 1);
    cr_assert_eq(json_array_size(json_object_get(b, "stages")), 0);
    cr_assert_str_eq(json_string_value(json_object_get(b, "title")), "");
    cr_assert_eq(json_array_size(json_object_get(j, "failures")), 0);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "terms"), 1)), "transfer");
    cr_assert_str_eq(json_string_value(json_object_get(j, "request_id")), "");
    json_decref(j);
}

Test(ops_json, unset_submessage_is_null_and_round_trips_through_packing)
{
    Funnel__V1__SearchResponse r = FUNNEL__V1__SEARCH_RESPONSE__INIT;
    r.total_matches = 7;
    uint8_t buf[64];
    size_t len = funnel__v1__search_response__pack(&r, buf);
    Funnel__V1__SearchResponse *u = funnel__v1__search_response__unpack(NULL, len, buf);
    cr_assert_not_null(u);
    json_t *j = ops_pb_to_json(&u->base);
    cr_assert(json_is_null(json_object_get(j, "coverage")));
    cr_assert_eq(json_integer_value(json_object_get(j, "total_matches")), 7);
    cr_assert(json_is_false(json_object_get(j, "partial")));
    json_decref(j);
    funnel__v1__search_response__free_unpacked(u, NULL);
}
