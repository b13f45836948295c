/* nf-jsonw.c — JSON strings and numbers into a GString (see nf-jsonw.h).
 *
 * What it does: escaping per RFC 8259 (quote, backslash, control characters as \uXXXX),
 * shortest round-trip doubles in the C locale (with an exponent where an integer-looking
 * text would read back as a different integer).
 * What it does not: anything else.
 */
#include "nf-jsonw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void
nf_jsonw_string (GString *s, const char *text)
{
  g_string_append_c (s, '"');
  for (const unsigned char *p = (const unsigned char *) (text ? text : ""); *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_printf (s, "\\%c", *p);
    else if (*p == '\n')
      g_string_append (s, "\\n");
    else if (*p == '\t')
      g_string_append (s, "\\t");
    else if (*p < 0x20)
      g_string_append_printf (s, "\\u%04x", *p);
    else
      g_string_append_c (s, (char) *p);
  }
  g_string_append_c (s, '"');
}

void
nf_jsonw_double (GString *s, double v)
{
  if (!isfinite (v)) {
    g_string_append (s, "null");
    return;
  }
  if (v == 0.0)
    v = 0.0;                    /* -0 would read back as the integer 0 */
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  for (int prec = 1; prec <= 17; prec++) {
    char fmt[8];
    g_snprintf (fmt, sizeof fmt, "%%.%dg", prec);
    g_ascii_formatd (buf, sizeof buf, fmt, v);
    if (g_ascii_strtod (buf, NULL) == v)
      break;
  }
  /* An integral value at or beyond 2^53 printed without a point or an exponent reads
   * back as a JSON integer that the double only approximates (11927117396445243 is
   * stored as 11927117396445244): write it with an exponent, so it reads as a double. */
  if (fabs (v) >= 9007199254740992.0 && !strpbrk (buf, ".eE")) {
    for (int prec = 0; prec <= 16; prec++) {
      char fmt[8];
      g_snprintf (fmt, sizeof fmt, "%%.%de", prec);
      g_ascii_formatd (buf, sizeof buf, fmt, v);
      if (g_ascii_strtod (buf, NULL) == v)
        break;
    }
  }
  g_string_append (s, buf);
}

void
nf_jsonw_key (GString *s, const char *key, gboolean first)
{
  if (!first)
    g_string_append_c (s, ',');
  nf_jsonw_string (s, key);
  g_string_append_c (s, ':');
}
