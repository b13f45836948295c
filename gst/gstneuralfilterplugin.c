/* gstneuralfilterplugin.c — registers the neuralfilter plugin's elements
 * (neuralstyle, superres). Does nothing else. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>

#ifndef PACKAGE
#define PACKAGE "neuralfilter"
#endif
#ifdef NF_HAVE_ORC
#include <orc/orc.h>
#endif

#include "gstneuralstyle.h"
#include "gstsuperres.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean ret = FALSE;

#ifdef NF_HAVE_ORC
  orc_init ();
#endif
  ret |= GST_ELEMENT_REGISTER (neuralstyle, plugin);
  ret |= GST_ELEMENT_REGISTER (superres, plugin);
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, neuralfilter,
    "Real-time neural video filters: fast neural style transfer and "
    "super-resolution", plugin_init, NF_VERSION, "LGPL", "neuralfilter",
    "neuralfilter project")
