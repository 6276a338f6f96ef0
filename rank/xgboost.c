/* xgboost.c: being written */
