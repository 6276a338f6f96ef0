/* filter_ref.h - the tests' own evaluation of a filter (query/filter.h) on a
 * corpus document's JSON object: the reference that index/attrs.c (the
 * attributes as stored, the filter inside selection) is checked against.
 * Written from the documented semantics (docs/query-language.md, Filters),
 * sharing no code with attrs.c. */
#ifndef FUNNEL_TESTS_FILTER_REF_H
#define FUNNEL_TESTS_FILTER_REF_H

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "filter.h"

static int filter_ref_str_is(json_t *v, const char *s)
{
    size_t n = strlen(s);
    return json_is_string(v) && json_string_length(v) == n && memcmp(json_string_value(v), s, n) == 0;
}

static int filter_ref_match(const fn_fnode *n, json_t *o)
{
    switch (n->kind) {
    case FN_F_AND:
        for (size_t i = 0; i < n->nkids; i++)
            if (!filter_ref_match(n->kids[i], o)) return 0;
        return 1;
    case FN_F_OR:
        for (size_t i = 0; i < n->nkids; i++)
            if (filter_ref_match(n->kids[i], o)) return 1;
        return 0;
    case FN_F_NOT:
        return !filter_ref_match(n->kids[0], o);
    case FN_F_VALUES: {
        json_t *v = json_object_get(o, n->attr == FN_FA_VERTICAL ? "vertical"
                                       : n->attr == FN_FA_LANG   ? "lang"
                                       : n->attr == FN_FA_LABELS ? "labels"
                                                                 : "id");
        if (n->attr != FN_FA_LABELS) {
            for (size_t i = 0; i < n->nvalues; i++)
                if (filter_ref_str_is(v, n->values[i])) return 1;
            return 0;
        }
        size_t hit = 0;
        for (size_t i = 0; i < n->nvalues; i++) {
            int in = 0;
            for (size_t j = 0; json_is_array(v) && j < json_array_size(v) && !in; j++)
                in = filter_ref_str_is(json_array_get(v, j), n->values[i]);
            hit += (size_t)in;
        }
        return n->all ? hit == n->nvalues : hit > 0;
    }
    case FN_F_RANGE:
        if (n->attr == FN_FA_POPULARITY) {
            /* float32, as stored; a document without one has 0 */
            json_t *v = json_object_get(o, "popularity");
            float x = json_is_number(v) ? (float)json_number_value(v) : 0.0f;
            float lo = (float)n->lo, hi = (float)n->hi;
            if (n->lo_open ? !(x > lo) : !(x >= lo)) return 0;
            if (n->hi_open ? !(x < hi) : !(x <= hi)) return 0;
            return 1;
        } else {
            /* whole seconds (floor); a document without one never matches */
            json_t *v = json_object_get(o, "published_at");
            if (!json_is_number(v)) return 0;
            double t = floor(json_number_value(v));
            if (n->lo_open ? !(t > n->lo) : !(t >= n->lo)) return 0;
            if (n->hi_open ? !(t < n->hi) : !(t <= n->hi)) return 0;
            return 1;
        }
    }
    return 0;
}

#endif
