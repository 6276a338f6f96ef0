/* stopwords.c: work in progress */
