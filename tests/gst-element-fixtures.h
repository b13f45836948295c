/* gst-element-fixtures.h — the fixtures the element tests share
 * (gst-element-fixtures.c): models in NEURALFILTER_MODEL_PATH, frames, harnesses,
 * launch lines, and a main that makes the models, checks the plugin is found and runs a
 * check suite.
 * What it does not: test anything itself.
 */
#pragma once

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include "nf-model.h"

/* the temporary model folder and the models made there (paths) */
extern gchar *model_dir;
extern gchar *m_identity, *m_identity4, *m_negate, *m_sr2, *m_sr4, *m_corrupt, *m_trunc,
    *m_slim, *m_srsub, *m_sry, *m_sryr;

/* Tolerances: RGB formats go through float exactly (1 LSB allowed for rounding).
 * I420/NV12 go straight to float RGB and back with the caps' matrix, chroma upsampled
 * by nearest neighbour and downsampled by block means: an identity network gives the
 * frame back within rounding as long as nothing leaves the RGB gamut (the test
 * content stays inside it). */
#define TOL_RGB 1
#define TOL_LUMA 1
#define TOL_CHROMA 1

/* the 10 formats the elements take */
extern const GstVideoFormat gst_fixture_formats[10];
#define N_FORMATS 10

gchar *save_model (NfModel * m, const gchar * name);
NfModel *graph_model (const gchar * json, NfTask task, int scale);
float *tensor (NfModel * m, const gchar * name);
void make_models (void);
GstBuffer *frame_new (GstVideoFormat fmt, gint w, gint h, guint seed, gboolean padded);
void frame_diff (GstBuffer * inbuf, const GstVideoInfo * in_info, GstBuffer * outbuf,
    const GstVideoInfo * out_info, gint scale, gint maxd[4]);
void info_from_caps_str (GstVideoInfo * info, const gchar * s);
void out_info (GstHarness * h, GstVideoInfo * info);
GstHarness *harness_new (const gchar * element, const gchar * model);
void push_check (GstHarness * h, GstVideoFormat fmt, gint w, gint h_, gint scale,
    gboolean padded, gint maxd[4]);
void check_tolerance (GstVideoFormat fmt, const gint maxd[4], const gchar * what);
/* Runs a launch line until EOS or ERROR; the last message (NULL on timeout), the
 * buffers that reached the element named "sink", its caps. */
GstMessage *run_pipeline (const gchar * desc, gint * n_buffers, GstCaps ** sink_caps);
/* run_pipeline that must end in EOS with want_buffers buffers (-1: any number). */
void expect_eos (const gchar * desc, gint want_buffers);
/* main: makes the models, checks the plugin, runs suite (), removes the models. */
int gst_fixtures_run (int argc, char **argv, Suite * (*suite) (void), const char *name);
