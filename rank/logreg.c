/* logreg.c: being written */
