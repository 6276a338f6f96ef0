/* fn_log.h - one-line logs to stderr: "2026-11-22T12:00:00.123Z shard[123] INFO msg".
 * Thread-safe (one fprintf per line). The level is set once at startup. */
#ifndef FUNNEL_FN_LOG_H
#define FUNNEL_FN_LOG_H

enum fn_log_level { FN_LOG_DEBUG = 0, FN_LOG_INFO = 1, FN_LOG_WARN = 2, FN_LOG_ERROR = 3 };

/* name: process role shown in every line ("shard", "coordinator", "funnel"). */
void fn_log_init(const char *name, enum fn_log_level level);
/* Parses "debug|info|warn|error"; returns -1 if unknown. */
int fn_log_level_parse(const char *s);
void fn_log(enum fn_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define FN_DEBUG(...) fn_log(FN_LOG_DEBUG, __VA_ARGS__)
#define FN_INFO(...)  fn_log(FN_LOG_INFO, __VA_ARGS__)
#define FN_WARN(...)  fn_log(FN_LOG_WARN, __VA_ARGS__)
#define FN_ERROR(...) fn_log(FN_LOG_ERROR, __VA_ARGS__)

#endif
