/* nf-tool-options.c — option parsing, usage errors and failures of the command-line
 * tools (see nf-tool-options.h). Exits: tools only.
 */
#include "nf-tool-options.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char *tool_prog = "?";
static const char *tool_hint = NULL;

void
nf_tool_set_name (const char *prog, const char *usage_hint)
{
  tool_prog = prog;
  tool_hint = usage_hint;
}

void
nf_tool_usage_error (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fprintf (stderr, "%s: ", tool_prog);
  vfprintf (stderr, fmt, ap);
  if (tool_hint)
    fprintf (stderr, "\n%s\n", tool_hint);
  else
    fprintf (stderr, "\nTry '%s --help'.\n", tool_prog);
  va_end (ap);
  exit (2);
}

void
nf_tool_fail (GError *e, const char *hint)
{
  fprintf (stderr, "%s: %s\n", tool_prog, e->message);
  if (hint)
    fprintf (stderr, "hint: %s\n", hint);
  g_error_free (e);
  exit (1);
}

void
nf_tool_parse (GOptionContext *ctx, int *argc, char ***argv, gboolean no_args)
{
  GError *e = NULL;
  if (!g_option_context_parse (ctx, argc, argv, &e))
    nf_tool_usage_error ("%s", e->message);
  g_option_context_free (ctx);
  if (no_args && *argc > 1)
    nf_tool_usage_error ("unexpected argument \"%s\"", (*argv)[1]);
}
