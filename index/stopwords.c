/* stopwords.c - the built-in English stopword list.
 *
 * The list is the classic NLTK English list (127 words: the Snowball English
 * list without its apostrophe contractions, plus s, t, can, will, just, don,
 * should, now). Contractions are left out on purpose: our tokenizer drops
 * inner apostrophes, so "we'll"/"she'll" would become the real words "well"
 * and "shell". tests/bench/xapian_baseline.py reads this same list (it parses
 * the string literals between the BEGIN/END markers below), so keep one word
 * per quoted literal there.
 */
#include "analyzer.h"

#include <string.h>

/* BEGIN STOPWORDS */
static const char *const english[] = {
    "a", "about", "above", "after", "again", "against", "all", "am", "an",
    "and", "any", "are", "as", "at", "be", "because", "been", "before",
    "being", "below", "between", "both", "but", "by", "can", "did", "do",
    "does", "doing", "don", "down", "during", "each", "few", "for", "from",
    "further", "had", "has", "have", "having", "he", "her", "here", "hers",
    "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is",
    "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no",
    "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other",
    "our", "ours", "ourselves", "out", "over", "own", "s", "same", "she",
    "should", "so", "some", "such", "t", "than", "that", "the", "their",
    "theirs", "them", "themselves", "then", "there", "these", "they", "this",
    "those", "through", "to", "too", "under", "until", "up", "very", "was",
    "we", "were", "what", "when", "where", "which", "while", "who", "whom",
    "why", "will", "with", "you", "your", "yours", "yourself", "yourselves",
};
/* END STOPWORDS */

#define NENGLISH (sizeof english / sizeof english[0])

/* Internal to the index library (declared again in analyzer.c). */
const char *const *idx_stopwords_english_list(size_t *n);

const char *const *idx_stopwords_english_list(size_t *n)
{
    *n = NENGLISH;
    return english;
}

/* The array is sorted (bytewise), so a binary search is enough here; the
 * analyzer itself uses its own hash set. */
int idx_stopword_english(const char *w, size_t len)
{
    size_t lo = 0, hi = NENGLISH;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *s = english[mid];
        size_t sl = strlen(s);
        int c = memcmp(s, w, sl < len ? sl : len);
        if (c == 0) c = (sl > len) - (sl < len);
        if (c == 0) return 1;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return 0;
}
