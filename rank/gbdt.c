/* gbdt.c: being written */
