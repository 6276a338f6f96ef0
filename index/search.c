/* search.c: work in progress */
