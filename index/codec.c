/* codec.c: work in progress */
