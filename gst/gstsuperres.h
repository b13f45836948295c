/* gstsuperres.h — the superres element: neural super-resolution on video.
 * What it does / does not: see gstsuperres.c. */
#pragma once

#include "gstneuralfilter.h"

G_BEGIN_DECLS

#define GST_TYPE_SUPER_RES (gst_super_res_get_type ())
G_DECLARE_FINAL_TYPE (GstSuperRes, gst_super_res, GST, SUPER_RES, GstNeuralFilter)

GST_ELEMENT_REGISTER_DECLARE (superres);

G_END_DECLS
