/* codec.c - the postings codec registry (see codec.h). */
#include "codec.h"

#include <string.h>

extern const idx_codec_t idx_codec_varint;        /* codec_varint.c */
extern const idx_codec_t idx_codec_streamvbyte;   /* codec_streamvbyte.c */

/* NULL-terminated; the first entry is the default. */
static const idx_codec_t *const registry[] = {
    &idx_codec_varint,
    &idx_codec_streamvbyte,
    NULL,
};

const idx_codec_t *idx_codec_find(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; registry[i]; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

const idx_codec_t *const *idx_codec_all(void)
{
    return registry;
}
