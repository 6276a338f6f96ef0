/* test_synonyms.c - WordNet synonyms (query/synonyms.c): a small WordNet
 * written here (offsets are byte positions, as in the real files), the
 * most-frequent-sense rule, morphy suffixes, damage; and Debian's WordNet
 * itself when wordnet-base is installed. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "synonyms.h"

static char dir[64];

static void write_file(const char *name, const char *text)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* data.noun with three synsets; index.noun points at their offsets. */
static void small_wordnet(int damage)
{
    snprintf(dir, sizeof dir, "/tmp/test_syn.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    const char *lic = "  1 licence line\n";
    char l1[128], l2[128], l3[128], data[512], idx[512];
    size_t o1 = strlen(lic);
    snprintf(l1, sizeof l1, "%08zu 03 n 03 flow 0 flowing 0 flux 0 000 | the act of flowing\n", o1);
    size_t o2 = o1 + strlen(l1);
    snprintf(l2, sizeof l2, "%08zu 03 n 02 flow 1 stream 0 000 | a stream\n", o2);
    size_t o3 = o2 + strlen(l2);
    snprintf(l3, sizeof l3, "%08zu 03 n 03 layer 0 bed 0 heat_energy 0 000 | a layer\n", o3);
    snprintf(data, sizeof data, "%s%s%s%s", lic, l1, l2, l3);
    snprintf(idx, sizeof idx, "%sflow n 2 1 @ 2 0 %08zu %08zu  \nlayer n 1 1 @ 1 0 %08zu  \nstream n 1 0 1 0 %08zu  \n"
             "heat_energy n 1 0 1 0 %08zu  \n", lic, o1, o2, o3, damage ? o2 + 3 : o2, o3);
    write_file("data.noun", data);
    write_file("index.noun", idx);
    for (const char *pos = "verb\0adj\0adv\0"; *pos; pos += strlen(pos) + 1) {
        char n[32];
        snprintf(n, sizeof n, "data.%s", pos);
        write_file(n, lic);
        snprintf(n, sizeof n, "index.%s", pos);
        write_file(n, lic);
    }
}

static void rm_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static const char *joined(const syn_dict_t *d, const char *w)
{
    static char buf[256];
    const char *o[16];
    size_t n = syn_lookup(d, w, strlen(w), o, 16);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strcat(buf, i ? " " : "");
        strcat(buf, o[i]);
    }
    return buf;
}

Test(synonyms, senses_morphy_and_multiwords)
{
    small_wordnet(0);
    syn_dict_t *d = NULL;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(syn_dict_load(dir, 1, &d, &eb), 0, "%s", eb.msg);
    cr_expect_str_eq(joined(d, "flow"), "flowing flux");         /* the first sense only */
    cr_expect_str_eq(joined(d, "flows"), "flowing flux");        /* morphy: -s */
    cr_expect_str_eq(joined(d, "layers"), "bed");                /* heat_energy: not one word */
    cr_expect_str_eq(joined(d, "stream"), "flow");
    cr_expect_str_eq(joined(d, "xyzzy"), "");
    syn_dict_destroy(d);
    cr_assert_eq(syn_dict_load(dir, 2, &d, &eb), 0, "%s", eb.msg);
    cr_expect_str_eq(joined(d, "flow"), "flowing flux stream");  /* two senses */
    const char *o[1];
    cr_expect_eq(syn_lookup(d, "flow", 4, o, 1), 1u, "max bounds the answer");
    syn_dict_destroy(d);
    rm_dir();
}

Test(synonyms, damage_is_a_clear_error)
{
    small_wordnet(1);
    syn_dict_t *d = NULL;
    fn_errbuf eb = { { 0 } };
    cr_expect_eq(syn_dict_load(dir, 1, &d, &eb), FN_ECORRUPT);
    cr_expect(strstr(eb.msg, "data.noun") && strstr(eb.msg, "offset"), "%s", eb.msg);
    cr_expect_null(d);
    cr_expect_eq(syn_dict_load("/nonexistent/wordnet", 1, &d, &eb), -ENOENT);
    rm_dir();
}

Test(synonyms, debian_wordnet)
{
    if (access("/usr/share/wordnet/index.noun", R_OK) != 0) cr_skip_test("wordnet-base is not installed");
    syn_dict_t *d = NULL;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(syn_dict_load("/usr/share/wordnet", 1, &d, &eb), 0, "%s", eb.msg);
    cr_expect_gt(syn_dict_size(d), 30000);
    cr_expect(strstr(joined(d, "transfer"), "conveyance"), "%s", joined(d, "transfer"));
    cr_expect(strstr(joined(d, "heating"), "warming"), "%s", joined(d, "heating"));
    syn_dict_destroy(d);
}
