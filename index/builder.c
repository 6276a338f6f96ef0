/* builder.c: work in progress */
