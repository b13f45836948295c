/* nf-jsonw.h — writing small JSON documents into a GString.
 *
 * Why not json-glib's generator: the version in Debian 12 prints some doubles as
 * invalid JSON (1e-08 becomes "1e-08.0") and others with 17 digits (0.1 as
 * 0.10000000000000001). Here a double is written with the fewest digits (up to 17)
 * that read back to the same value, and non-finite values as null. Reading stays with
 * json-glib's parser.
 *
 * What it does not: parse, pretty-print, or check that keys are unique.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* "text" with JSON escapes. */
void nf_jsonw_string (GString *s, const char *text);
void nf_jsonw_double (GString *s, double v);
/* "key": (a comma first when the object already has a member: pass first = TRUE for the
 * first member). */
void nf_jsonw_key (GString *s, const char *key, gboolean first);

G_END_DECLS
