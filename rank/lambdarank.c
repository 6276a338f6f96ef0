/* lambdarank.c: being written */
