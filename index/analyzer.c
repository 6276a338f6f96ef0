/* analyzer.c: work in progress */
