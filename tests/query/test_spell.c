/* test_spell.c - the spelling corrector (query/spell.c): distances, candidates
 * and ranking on a hand dictionary, what is never corrected, the rewritten
 * text byte for byte, the dictionary file (round trip, truncation, flipped
 * bytes), the per-query bounds, and on cranfield: recall on made typos and
 * the share of clean query words changed. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spell.h"

static spell_dict_t *hand_dict(void)
{
    static const struct { const char *w; uint64_t cf; } words[] = {
        { "transfer", 50 }, { "transform", 5 }, { "heat", 80 }, { "boundary", 40 },
        { "layer", 40 }, { "read", 100 }, { "bead", 1 }, { "rat", 10 }, { "mat", 10 },
        { "ant", 500 }, { "rate", 30 }, { "the", 1000 }, { "of", 900 }, { "transfre", 1 },
    };
    spell_dict_t *d;
    cr_assert_eq(spell_dict_create(&d), 0);
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        cr_assert_eq(spell_dict_add(d, words[i].w, words[i].cf, 1), 0);
    return d;
}

/* The rewritten text of q, in a static buffer. */
static const char *fix(spell_dict_t *d, const char *q)
{
    static char out[4096];
    spell_result r;
    fn_errbuf eb = { { 0 } };
    int rc = spell_correct(d, q, strlen(q), NULL, &r, &eb);
    cr_assert_eq(rc, 0, "%s", fn_errmsg(&eb, rc));
    snprintf(out, sizeof out, "%s", r.text);
    cr_assert_eq(strlen(r.text), r.text_len);
    spell_result_free(&r);
    return out;
}

Test(spell, distance_table)
{
    static const struct { const char *a, *b; int d; } t[] = {
        { "", "", 0 }, { "a", "", 1 }, { "", "abc", 3 }, { "abc", "abc", 0 },
        { "trasnfer", "transfer", 1 },      /* transposition */
        { "tranfer", "transfer", 1 },       /* deletion */
        { "transfre", "transfer", 1 },
        { "ca", "abc", 3 },                 /* OSA, not unrestricted Damerau (2) */
        { "kitten", "sitting", 3 },
        { "caf\xc3\xa9", "cafe", 1 },       /* é is one code point */
        { "\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa8", 1 },
        { "\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x9c\xac\xe6\x97\xa5", 1 },   /* 日本 / 本日: transposition */
        { "na\xc3\xafve", "naive", 1 },
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        cr_expect_eq(spell_distance(t[i].a, strlen(t[i].a), t[i].b, strlen(t[i].b)), t[i].d,
                     "%s / %s", t[i].a, t[i].b);
}

Test(spell, known_typos)
{
    spell_dict_t *d = hand_dict();
    cr_expect_str_eq(fix(d, "trasnfer"), "transfer");
    cr_expect_str_eq(fix(d, "tranfer"), "transfer");
    cr_expect_str_eq(fix(d, "bondary layr"), "boundary layer");
    cr_expect_str_eq(fix(d, "Trnsfr"), "transfer");               /* distance 2, 6 letters */
    /* frequent wins at equal distance and cost: x is next to neither b nor r */
    cr_expect_str_eq(fix(d, "xead"), "read");
    /* keyboard neighbour wins: e is next to r, far from m (rat and mat equally frequent) */
    spell_dict_destroy(d);
    cr_assert_eq(spell_dict_create(&d), 0);
    cr_assert_eq(spell_dict_add(d, "mat", 10, 1), 0);
    cr_assert_eq(spell_dict_add(d, "rat", 10, 1), 0);
    cr_expect_str_eq(fix(d, "eat"), "rat");
    cr_expect_str_eq(fix(d, "nat"), "mat");
    cr_expect_str_eq(fix(d, "tat"), "rat");
    spell_dict_destroy(d);
}

Test(spell, known_words_stay)
{
    spell_dict_t *d = hand_dict();
    cr_expect_str_eq(fix(d, "transfre"), "transfre");             /* in the dictionary (cf 1) */
    char path[] = "/tmp/test_spell_wl_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char *wl = "Trasnfer\nheta's\n";
    cr_assert_eq(write(fd, wl, strlen(wl)), (ssize_t)strlen(wl));
    close(fd);
    cr_expect_str_eq(fix(d, "trasnfer heta"), "transfer heat");
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(spell_dict_load_wordlist(d, path, &eb), 0);
    unlink(path);
    cr_expect_str_eq(fix(d, "trasnfer heta"), "trasnfer heta");
    cr_expect(spell_dict_known(d, "trasnfer", 8));
    cr_expect_eq(spell_dict_load_wordlist(d, "/nonexistent/words", &eb), -ENOENT);
    spell_dict_destroy(d);
}

Test(spell, hunspell_dic)
{
    spell_dict_t *d = hand_dict();
    char path[] = "/tmp/test_spell_XXXXXX.dic";
    int fd = mkstemps(path, 4);
    cr_assert(fd >= 0);
    const char *dic = "2\nlayr/SM\nheta/M\n";
    cr_assert_eq(write(fd, dic, strlen(dic)), (ssize_t)strlen(dic));
    close(fd);
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(spell_dict_load_wordlist(d, path, &eb), 0);
    unlink(path);
    cr_expect(spell_dict_known(d, "layr", 4));
    cr_expect(!spell_dict_known(d, "2", 1));
    cr_expect(!spell_dict_known(d, "sm", 2));
    cr_expect_str_eq(fix(d, "heta layr bondary"), "heta layr boundary");
    spell_dict_destroy(d);
}

Test(spell, syntax_preserved)
{
    spell_dict_t *d = hand_dict();
    /* operators as written, field prefixes, quotes, brackets, punctuation */
    cr_expect_str_eq(fix(d, "title:\"trasnfer  rtae\" AND (heta OR NOT boundary) -layr, +xead!"),
                     "title:\"transfer  rate\" AND (heat OR NOT boundary) -layer, +read!");
    cr_expect_str_eq(fix(d, "bodi:heta"), "bodi:heat");           /* a field name stays */
    cr_expect_str_eq(fix(d, "AND"), "AND");
    cr_expect_str_eq(fix(d, "ANT heta"), "ANT heat");             /* a known word in capitals stays as written */
    cr_expect_str_eq(fix(d, "\t heta\r\n"), "\t heat\r\n");
    cr_expect_str_eq(fix(d, "\xc3\xa9t\xc3\xa9 heta \xff"), "\xc3\xa9t\xc3\xa9 heat \xff");
    spell_dict_destroy(d);
}

Test(spell, digits_and_short_words)
{
    spell_dict_t *d = hand_dict();
    cr_expect_str_eq(fix(d, "12345 1234 rat3 a320"), "12345 1234 rat3 a320");
    cr_expect_str_eq(fix(d, "ht th of"), "ht th of");              /* fewer than 3 letters */
    cr_expect_str_eq(fix(d, "hxxt"), "hxxt");                     /* distance 2 needs 6 letters */
    cr_expect_str_eq(fix(d, "teh"), "the");                       /* 3 letters: distance 1 */
    spell_dict_destroy(d);
}

Test(spell, corrections_listed)
{
    spell_dict_t *d = hand_dict();
    spell_result r;
    fn_errbuf eb = { { 0 } };
    const char *q = "hot trasnfer  Heta";
    cr_assert_eq(spell_correct(d, q, strlen(q), NULL, &r, &eb), 0);
    cr_expect_str_eq(r.text, "hot transfer  heat");
    cr_assert_eq(r.nfix, 2);
    cr_expect_str_eq(r.fix[0].from, "trasnfer");
    cr_expect_str_eq(r.fix[0].to, "transfer");
    cr_expect_eq(r.fix[0].offset, 4);
    cr_expect_eq(r.fix[0].len, 8);
    cr_expect_eq(r.fix[0].distance, 1);
    cr_expect_str_eq(r.fix[1].from, "Heta");
    cr_expect_eq(r.fix[1].offset, 14);
    cr_expect(r.fix[1].score < 0);
    spell_result_free(&r);
    spell_result_free(&r);          /* twice is fine */
    /* a high threshold turns corrections off */
    spell_opts o = { .min_score = -1.0 };
    cr_assert_eq(spell_correct(d, q, strlen(q), &o, &r, &eb), 0);
    cr_expect_eq(r.nfix, 0);
    cr_expect_str_eq(r.text, q);
    spell_result_free(&r);
    spell_dict_destroy(d);
}

Test(spell, bounded)
{
    spell_dict_t *d = hand_dict();
    size_t n = 1000, len = n * 9;
    char *q = malloc(len + 1);
    for (size_t i = 0; i < n; i++) memcpy(q + 9 * i, "trasnfer ", 9);
    q[len] = '\0';
    spell_result r;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(spell_correct(d, q, len, NULL, &r, &eb), 0);
    cr_expect_eq(r.looked_at, 32);
    cr_expect_eq(r.nfix, 32);
    cr_expect_eq(r.text_len, len);
    cr_expect_eq(strncmp(r.text, "transfer ", 9), 0);
    cr_expect_eq(strcmp(r.text + 9 * 999, "trasnfer "), 0);
    spell_result_free(&r);
    /* long words: not corrected, not a problem */
    char *big = malloc(SPELL_MAX_TEXT_BYTES + 2);
    memset(big, 'x', SPELL_MAX_TEXT_BYTES);
    big[SPELL_MAX_TEXT_BYTES] = '\0';
    cr_assert_eq(spell_correct(d, big, SPELL_MAX_TEXT_BYTES, NULL, &r, &eb), 0);
    cr_expect_eq(r.nfix, 0);
    spell_result_free(&r);
    big[SPELL_MAX_TEXT_BYTES] = 'x';
    cr_expect_eq(spell_correct(d, big, SPELL_MAX_TEXT_BYTES + 1, NULL, &r, &eb), FN_ELIMIT);
    spell_result_free(&r);
    free(big);
    free(q);
    spell_dict_destroy(d);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n);
    cr_assert_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

Test(spell, save_load_and_damage)
{
    spell_dict_t *d = hand_dict();
    cr_assert_eq(spell_dict_add(d, "na\xc3\xafve caf\xc3\xa9", 3, 2), 0);   /* folded: naive, cafe */
    char path[] = "/tmp/test_spell_dict_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(spell_dict_save(d, path, &eb), 0, "%s", eb.msg);
    spell_dict_t *l;
    cr_assert_eq(spell_dict_load(path, &l, &eb), 0, "%s", eb.msg);
    cr_expect_eq(spell_dict_words(l), spell_dict_words(d));
    cr_expect_eq(spell_dict_total(l), spell_dict_total(d));
    static const char *probe[] = { "transfer", "heat", "the", "naive", "cafe", "transfre", "nope" };
    for (size_t i = 0; i < sizeof probe / sizeof *probe; i++) {
        uint64_t c1, c2;
        uint32_t f1, f2;
        cr_expect_eq(spell_dict_get(d, probe[i], strlen(probe[i]), &c1, &f1),
                     spell_dict_get(l, probe[i], strlen(probe[i]), &c2, &f2));
        cr_expect_eq(c1, c2);
        cr_expect_eq(f1, f2);
    }
    cr_expect_str_eq(fix(l, "trasnfer of heta"), "transfer of heat");
    spell_dict_destroy(l);

    size_t n;
    unsigned char *b = slurp(path, &n);
    char dpath[64];
    snprintf(dpath, sizeof dpath, "%s.bad", path);
    for (size_t cut = 0; cut < n; cut += (cut < 48 ? 1 : 7)) {
        spit(dpath, b, cut);
        int rc = spell_dict_load(dpath, &l, &eb);
        cr_expect_eq(rc, FN_ECORRUPT, "cut %zu: %d", cut, rc);
        cr_expect(strstr(eb.msg, dpath) != NULL, "%s", eb.msg);
    }
    for (size_t i = 0; i < n; i++) {
        b[i] ^= 0x20;
        spit(dpath, b, n);
        int rc = spell_dict_load(dpath, &l, &eb);
        cr_expect_eq(rc, i < 8 ? FN_EFORMAT : FN_ECORRUPT, "byte %zu: %d", i, rc);
        cr_expect(strstr(eb.msg, dpath) != NULL, "%s", eb.msg);
        b[i] ^= 0x20;
    }
    cr_expect_eq(spell_dict_load("/nonexistent/spell.dict", &l, &eb), -ENOENT);
    unlink(dpath);
    unlink(path);
    free(b);
    spell_dict_destroy(d);
}

Test(spell, bad_corpus_lines)
{
    char path[] = "/tmp/test_spell_corpus_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char *c = "{\"id\":\"1\",\"title\":\"Heat transfer\",\"body\":\"heat flow\"}\n"
                    "\n"
                    "{\"id\":2}\n"
                    "{\"id\":\"3\",\"body\":\"heat\"}\n";
    cr_assert_eq(write(fd, c, strlen(c)), (ssize_t)strlen(c));
    close(fd);
    spell_dict_t *d;
    fn_errbuf eb = { { 0 } };
    cr_expect_eq(spell_dict_build_corpus(path, NULL, &d, &eb), FN_EPARSE);
    char want[128];
    snprintf(want, sizeof want, "%s:3: ", path);
    cr_expect(strstr(eb.msg, want) != NULL, "%s", eb.msg);
    spell_build_opts o = { .skip_bad = 1 };
    cr_assert_eq(spell_dict_build_corpus(path, &o, &d, &eb), 0, "%s", eb.msg);
    cr_expect_eq(o.docs, 2);
    cr_expect_eq(o.skipped, 1);
    uint64_t cf;
    uint32_t df;
    cr_expect(spell_dict_get(d, "heat", 4, &cf, &df));
    cr_expect_eq(cf, 3);
    cr_expect_eq(df, 2);
    spell_dict_destroy(d);
    unlink(path);
}

/* ---- on cranfield ---- */

static const char *data_path(char *buf, size_t cap, const char *rel)
{
    const char *dir = getenv("FUNNEL_DATA");
    snprintf(buf, cap, "%s/%s", dir && *dir ? dir : "../shared/data", rel);
    return buf;
}

/* One deterministic edit of an ASCII word of >= 5 letters, by k: swap two
 * middle letters, drop one, double one, or replace one by its QWERTY
 * right-hand neighbour. */
static void make_typo(const char *w, size_t n, unsigned k, char *out)
{
    static const char *row = "qwertyuiopasdfghjklzxcvbnm";
    size_t m = n / 2;
    memcpy(out, w, n);
    out[n] = '\0';
    switch (k % 4) {
    case 0:
        if (w[m] != w[m + 1]) { out[m] = w[m + 1]; out[m + 1] = w[m]; break; }
        /* fallthrough */
    case 1: memmove(out + m, out + m + 1, n - m); break;
    case 2: memmove(out + m + 1, out + m, n - m + 1); break;
    default: {
        const char *p = strchr(row, w[m]);
        out[m] = p && p[1] ? p[1] : 'q';
    }
    }
}

Test(spell, cranfield, .timeout = 60)
{
    char cpath[512], qpath[512];
    spell_dict_t *d;
    fn_errbuf eb = { { 0 } };
    int rc = spell_dict_build_corpus(data_path(cpath, sizeof cpath, "cranfield/corpus.jsonl"), NULL, &d, &eb);
    cr_assert_eq(rc, 0, "%s", fn_errmsg(&eb, rc));
    cr_expect_gt(spell_dict_words(d), 5000);
    FILE *f = fopen(data_path(qpath, sizeof qpath, "cranfield/queries.tsv"), "r");
    cr_assert(f);
    char line[4096];
    size_t words = 0, changed = 0, typos = 0, right = 0;
    unsigned k = 0;
    while (fgets(line, sizeof line, f)) {
        char *text = strchr(line, '\t');
        if (!text) continue;
        text++;
        text[strcspn(text, "\r\n")] = '\0';
        /* clean: how many words change */
        spell_result r;
        cr_assert_eq(spell_correct(d, text, strlen(text), NULL, &r, &eb), 0);
        changed += r.nfix;
        spell_result_free(&r);
        /* every third word of 5+ letters gets a typo; is it fixed back? */
        for (char *w = strtok(text, " "); w; w = strtok(NULL, " ")) {
            size_t n = strlen(w);
            words++;
            if (n < 5 || n > 30 || strspn(w, "abcdefghijklmnopqrstuvwxyz") != n || k++ % 3) continue;
            char t[40];
            make_typo(w, n, k / 3, t);
            if (spell_dict_known(d, t, strlen(t))) continue;      /* the typo is a real word */
            typos++;
            cr_assert_eq(spell_correct(d, t, strlen(t), NULL, &r, &eb), 0);
            right += strcmp(r.text, w) == 0;
            spell_result_free(&r);
        }
    }
    fclose(f);
    cr_log_info("cranfield: %zu words, %zu changed clean; %zu typos, %zu fixed", words, changed, typos, right);
    cr_expect_lt((double)changed / (double)words, 0.02, "%zu of %zu clean words changed", changed, words);
    cr_expect_gt(typos, 300);
    cr_expect_gt((double)right / (double)typos, 0.85, "%zu of %zu typos fixed", right, typos);
    spell_dict_destroy(d);
}

/* With the index's stemmer, a word whose stem a corpus word has finds
 * documents (the index stems both alike): it is no misspelling. */
Test(spell, stem_known_words_stay)
{
    spell_dict_t *d = NULL;
    cr_assert_eq(spell_dict_create(&d), 0);
    cr_assert_eq(spell_dict_add(d, "accuracy", 50, 40), 0);
    cr_assert_eq(spell_dict_add(d, "inaccuracies", 3, 3), 0);
    cr_assert_eq(spell_dict_add(d, "transfer", 90, 70), 0);
    cr_assert_eq(spell_dict_finish(d), 0);
    /* without a stemmer, "accuracies" is unknown and its neighbour wins */
    cr_expect_str_eq(fix(d, "accuracies trasnfer"), "inaccuracies transfer");
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(spell_dict_set_stemmer(d, "english", &eb), 0, "%s", eb.msg);
    cr_expect_str_eq(fix(d, "accuracies trasnfer"), "accuracies transfer");
    cr_expect_eq(spell_dict_set_stemmer(d, "klingon", &eb), FN_EINVAL);
    cr_assert_eq(spell_dict_set_stemmer(d, "none", &eb), 0);
    cr_expect_str_eq(fix(d, "accuracies"), "inaccuracies");
    spell_dict_destroy(d);
}
