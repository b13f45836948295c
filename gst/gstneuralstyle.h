/* gstneuralstyle.h — the neuralstyle element: fast neural style transfer on video.
 * What it does / does not: see gstneuralstyle.c. */
#pragma once

#include "gstneuralfilter.h"

G_BEGIN_DECLS

#define GST_TYPE_NEURAL_STYLE (gst_neural_style_get_type ())
G_DECLARE_FINAL_TYPE (GstNeuralStyle, gst_neural_style, GST, NEURAL_STYLE,
    GstNeuralFilter)

GST_ELEMENT_REGISTER_DECLARE (neuralstyle);

G_END_DECLS
