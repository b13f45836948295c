/* nf-tool-options.h — how every command-line tool of the project (nf-run, nf-init,
 * nf-bench, nf-train, nf-optimize) parses its options and reports what went wrong, in
 * one voice:
 *
 *   usage errors  "PROG: message" and "Try 'PROG --help'." (or the tool's own hint) on
 *                 stderr, exit code 2
 *   failures      "PROG: message" (and "hint: ..." when there is one) on stderr, exit 1
 *   parsing       a GOptionContext parsed and freed; a parse error, or an argument left
 *                 over where the tool takes none, is a usage error
 *
 * Only tools link this: these functions exit (the libraries return errors instead).
 * What it does not: define any tool's options, or print --help (GOption does).
 */
#pragma once

#include <glib.h>

/* The program name in messages, and the line after a usage error (NULL: "Try 'PROG
 * --help'."). Call first in main; the strings must stay alive. */
void nf_tool_set_name (const char *prog, const char *usage_hint);

/* "PROG: <message>\n<hint>\n" on stderr, exit (2). */
void nf_tool_usage_error (const char *fmt, ...) G_GNUC_PRINTF (1, 2) G_GNUC_NORETURN;

/* "PROG: <e's message>\n" (+ "hint: <hint>\n") on stderr, frees e, exit (1). */
void nf_tool_fail (GError *e, const char *hint) G_GNUC_NORETURN;

/* Parses argc/argv with ctx and frees ctx. A parse error is a usage error; so is an
 * argument left after parsing when no_args. */
void nf_tool_parse (GOptionContext *ctx, int *argc, char ***argv, gboolean no_args);
