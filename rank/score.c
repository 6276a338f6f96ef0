/* score.c: being written */
