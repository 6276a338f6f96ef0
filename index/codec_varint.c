/* codec_varint.c: work in progress */
