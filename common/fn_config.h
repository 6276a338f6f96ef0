/* fn_config.h - daemon settings from a key=value file and command-line flags.
 *
 * File format: one `key = value` per line; '#' starts a comment anywhere on a
 * line (so values cannot contain '#'); blank lines are ignored; whitespace
 * around keys and values is dropped; a key given twice keeps its last value.
 * Keys are the flag names without "--"; '-' and '_' are the same character
 * in keys ("max_k" = "max-k").
 *
 * Flags: "--key value" or "--key=value". fn_config_from_args() loads the
 * --config file first and then applies every other flag, so a flag
 * overrides the file wherever it appears on the command line.
 *
 * The caller owns the settings: each key/value pair is handed to a
 * fn_config_set_fn that validates and stores it.
 */
#ifndef FUNNEL_FN_CONFIG_H
#define FUNNEL_FN_CONFIG_H

#include "fn_error.h"

/* fn_config_from_args() saw --help or -h (not an error). */
#define FN_CONFIG_HELP 1

/** Apply one setting. key is as the user spelled it (compare it with
 *  fn_config_key_is); value is never NULL. Return 0, or an error code with a
 *  message in eb that does not repeat the file name ("threads: want 1..256,
 *  got 'x'" - the caller adds "FILE:LINE: "). Both strings live only for the
 *  call: copy what you keep. */
typedef int (*fn_config_set_fn)(void *ud, const char *key, const char *value, fn_errbuf *eb);

/** Nonzero if key names the setting name, with '-' and '_' equivalent. */
int fn_config_key_is(const char *key, const char *name);

/** Read the key=value file at path, calling set(ud, key, value) for each
 *  setting in file order. Stops at the first problem. Returns 0; -errno when
 *  the file cannot be opened or read ("PATH: reason" in eb); or FN_EPARSE
 *  with "PATH:LINE: reason" in eb for a line without '=', an empty key, a
 *  line over 8 KiB, or any error from set (its message after the prefix). */
int fn_config_load_file(const char *path, fn_config_set_fn set, void *ud, fn_errbuf *eb);

/** Parse argv[1..argc-1] as flags. Pass one, in order: "--help"/"-h" returns
 *  FN_CONFIG_HELP at once; the flag named config_key (may be NULL: no config
 *  file) is handed to set (so the caller can record the path) and then its
 *  file is loaded as fn_config_load_file does, except that config_key itself
 *  is not allowed in the file. Pass two applies every other flag in order.
 *  Returns 0, FN_CONFIG_HELP, FN_EINVAL ("unexpected argument 'x'", "--key
 *  needs a value", "bad flag '...'", or set's message for a flag), or what
 *  loading the file returned. */
int fn_config_from_args(int argc, char **argv, const char *config_key,
                        fn_config_set_fn set, void *ud, fn_errbuf *eb);

/** Parse a whole decimal unsigned number in [lo, hi] (no sign, no trailing
 *  text). Returns 0 and sets *out, or FN_EINVAL leaving *out alone. */
int fn_parse_ulong(const char *v, unsigned long lo, unsigned long hi, unsigned long *out);

/** Parse a whole finite number (strtod syntax) in [lo, hi]. Returns 0 and
 *  sets *out, or FN_EINVAL leaving *out alone (also for nan and inf). */
int fn_parse_double(const char *v, double lo, double hi, double *out);

#endif
