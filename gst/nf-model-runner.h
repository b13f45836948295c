/* nf-model-runner.h — the model runner of the neuralfilter elements: which network
 * runs, on which device, and when a new one takes over.
 *
 * What it does: finds a model file by path or by name ($NEURALFILTER_MODEL_PATH, then
 * the install folder, ".safetensors" added when missing); loads it, checks its task
 * and picks the backend from the device choice (auto: CUDA when usable, else the CPU);
 * loads a model requested while streaming on a thread of its own, planned for the
 * last frame size, and keeps it pending until the caller swaps it in between two
 * frames (a load that fails leaves the model in use running and is reported through
 * an event); plans and runs the model in use (inside its device context). For
 * superres (NF_TASK_SUPERRES) an empty model setting is not an error: the owner
 * chooses a model once it knows the scale (nf_model_runner_choose: the first of a list
 * of names that is found), and that automatic choice stays until the runner closes. A
 * luma-only model on the CPU also gets its luma core (nf-luma-core.h) and an engine for
 * it, which plans and runs apart (nf_model_runner_plan_luma / _run_luma_host).
 * What it does not: anything of GStreamer's element classes (no GstBaseTransform,
 * caps, buffers or bus messages: the element turns the events below into those),
 * pixel conversion, or device-specific work: a CUDA context shared with other
 * software comes in through a table of functions (NfDeviceContextFuncs).
 *
 * Threads: the model in use (nf_model_runner_current and everything that plans, runs,
 * swaps or installs it) belongs to one thread at a time, the streaming thread while
 * streaming; settings and background loads are guarded by the runner's own lock.
 */
#pragma once

#include <glib-object.h>

#include "nf-backend.h"
#include "nf-engine.h"
#include "nf-model.h"

G_BEGIN_DECLS

#define NF_RUNNER_ERROR (nf_runner_error_quark ())
GQuark nf_runner_error_quark (void);
typedef enum {
  NF_RUNNER_ERROR_NO_MODEL,     /* the model setting is empty */
  NF_RUNNER_ERROR_NOT_FOUND,    /* no file for it */
  NF_RUNNER_ERROR_LOAD,         /* the file is not a model, or cannot run at the size */
  NF_RUNNER_ERROR_TASK,         /* a model of another task */
  NF_RUNNER_ERROR_DEVICE,       /* the device asked for cannot be used */
  NF_RUNNER_ERROR_THREAD,       /* no thread could be started for a background load */
} NfRunnerErrorCode;

typedef enum {
  NF_RUNNER_DEVICE_AUTO,        /* CUDA when this build has it and a GPU is usable */
  NF_RUNNER_DEVICE_CPU,
  NF_RUNNER_DEVICE_CUDA,        /* an error when CUDA cannot be used */
} NfRunnerDevice;

typedef enum {
  NF_RUNNER_PRECISION_AUTO,     /* fp16 on CUDA; on the CPU bf16 where it is native, else fp32 */
  NF_RUNNER_PRECISION_FP32,
  NF_RUNNER_PRECISION_FP16,     /* CUDA only; the CPU runs fp32 */
  NF_RUNNER_PRECISION_BF16,     /* CPU bf16 convolutions (native bf16 only, else fp32 with a
                                 * warning); CUDA runs fp16 */
} NfRunnerPrecision;

/* Where a network runs. */
typedef struct {
  NfRunnerDevice device;
  NfRunnerPrecision precision;
  gint cuda_device_id;          /* -1: the shared context's device, else device 0 */
} NfDeviceChoice;

/* Device contexts owned by the caller (the element's GstCudaContext, shared with the
 * pipeline's other CUDA elements). Without a table, CUDA backends live in the CUDA
 * runtime's own context. */
typedef struct {
  /* A backend by name ("cuda" or "cuda-fp16") in a context for device_id; *ctx
   * receives a reference to that context. NULL + error saying why it cannot be used.
   * Any thread. */
  NfBackend *(*backend_new) (gpointer owner, const gchar * backend_name,
      gint device_id, gpointer * ctx, GError ** error);
  /* Makes ctx current on this thread (TRUE: pop it afterwards) / undoes it. */
  gboolean (*push) (gpointer ctx);
  void (*pop) (void);
  void (*ctx_unref) (gpointer ctx);
} NfDeviceContextFuncs;

/* A model loaded for a setting, on a device, ready to run. Read-only for callers. */
typedef struct {
  gchar *name;                  /* the model setting it was loaded for (automatic: the
                                 * name chosen) */
  gboolean automatic;           /* chosen by nf_model_runner_choose (no model setting) */
  gchar *path;                  /* the file it came from */
  NfDeviceChoice choice;        /* the device setting it was loaded for */
  const gchar *backend_name;    /* "cpu", "cuda" or "cuda-fp16" */
  NfModel *model;
  NfBackend *backend;
  NfEngine *engine;
  /* The device table's context the backend lives in (NULL on the CPU, or without a
   * table): current around every call into the backend. */
  gpointer device_ctx;
  /* On the CPU, for a luma-only model (nf-luma-core.h): its luma core and an engine for
   * it on the same backend, to run the Y plane of a Y'CbCr frame alone; else NULL. */
  NfModel *luma_model;
  NfEngine *luma_engine;
  const NfDeviceContextFuncs *contexts;
} NfLoadedModel;

/* What the runner tells its owner. Every member may be NULL. */
typedef struct {
  /* A model was loaded (any thread, also for loads superseded later). */
  void (*loaded) (gpointer owner, const NfLoadedModel * m);
  /* A load requested while streaming failed; the model in use keeps running. Called
   * on the load thread, only for the latest request. */
  void (*load_failed) (gpointer owner, const GError * error);
  /* now replaced old as the model in use (either may be NULL); between_frames: by
   * nf_model_runner_swap. Called on the thread that installed it, before old is
   * freed. */
  void (*installed) (gpointer owner, const NfLoadedModel * old, const NfLoadedModel * now,
      gboolean between_frames);
} NfRunnerEvents;

typedef struct NfModelRunner NfModelRunner;

/* A runner for models of task. owner (a GObject, or NULL) is passed to the events and
 * the device table, named in log lines, and referenced while a load is in flight.
 * contexts: NULL, or a table that outlives the runner. */
NfModelRunner *nf_model_runner_new (NfTask task, gpointer owner,
    const NfRunnerEvents * events, const NfDeviceContextFuncs * contexts);
/* Waits for loads in flight; no events. */
void nf_model_runner_free (NfModelRunner * r);

/* Finding a model setting's file: nf_model_find_file, nf_model_dirs. */
#include "nf-model-find.h"
/* The folder of the shipped models (<datadir>/neuralfilter/weights). */
const gchar *nf_model_weights_dir (void);

/* ---- settings (any thread) ---- */

/* While streaming, a new value starts a background load. */
void nf_model_runner_set_model (NfModelRunner * r, const gchar * name);
gchar *nf_model_runner_dup_model (NfModelRunner * r);
/* Takes effect at the next nf_model_runner_ensure. */
void nf_model_runner_set_device (NfModelRunner * r, const NfDeviceChoice * choice);
void nf_model_runner_get_device (NfModelRunner * r, NfDeviceChoice * choice);

/* ---- life cycle ---- */

/* Loads the model of the current settings now, unless the model in use already is
 * it, and installs it. FALSE + error when it cannot be loaded (the model in use, if
 * any, stays). superres with an empty model setting: TRUE; an automatic model in use
 * stays (reloaded when the device setting changed), a model of an earlier setting is
 * dropped. */
gboolean nf_model_runner_ensure (NfModelRunner * r, GError ** error);
/* TRUE when the model is left to the owner: superres, and the model setting is empty.
 * Any thread. */
gboolean nf_model_runner_is_automatic (NfModelRunner * r);
/* The automatic choice (nf_model_runner_is_automatic): unless an automatic model is in
 * use already, loads the first of names (NULL-terminated, each looked up like a model
 * setting) that is found, installs it marked automatic and says which in one INFO
 * line. cpu_names (NULL: names) is the list for a network that runs on the CPU
 * (device=cpu, a build without CUDA, or device=auto where the GPU is not usable: then
 * the first of cpu_names found replaces the model loaded from names). FALSE + error
 * when none is found (NF_RUNNER_ERROR_NOT_FOUND, naming them and the folders searched)
 * or the one found cannot be loaded. The thread of the model in use. */
gboolean nf_model_runner_choose (NfModelRunner * r, const gchar * const *names,
    const gchar * const *cpu_names, GError ** error);
/* Streaming begins: nf_model_runner_ensure, and from now on a new model setting is
 * loaded in the background. */
gboolean nf_model_runner_start (NfModelRunner * r, GError ** error);
/* Streaming ends: loads in flight are dropped, a model loaded but not swapped in yet
 * is installed (it is the wanted one). */
void nf_model_runner_stop (NfModelRunner * r);
/* Waits for loads in flight, drops them and the model in use. */
void nf_model_runner_close (NfModelRunner * r);
/* Waits until no background load is in flight, at most timeout_us (< 0: no limit);
 * FALSE on timeout. Any thread. */
gboolean nf_model_runner_wait_loads (NfModelRunner * r, gint64 timeout_us);

/* ---- between frames and in the frame (the thread of the model in use) ---- */

/* Installs a model loaded in the background, if one is ready; TRUE when it did. */
gboolean nf_model_runner_swap (NfModelRunner * r);
/* The model in use, or NULL. */
NfLoadedModel *nf_model_runner_current (NfModelRunner * r);
/* Plans the model in use for w x h frames (a no-op unless the size or the model
 * changed) and remembers the size for background loads. *input: the planned input
 * shape [1, 3, h, w] rounded up to the model's size multiple; *was_planned: TRUE when
 * no new plan was needed. FALSE + the engine's error on failure. */
gboolean nf_model_runner_plan (NfModelRunner * r, gint w, gint h, NfShape * input,
    gboolean * was_planned, GError ** error);
/* Runs the model in use on host memory: in [input], out [nf_engine_output_shape]. */
gboolean nf_model_runner_run_host (NfModelRunner * r, const gfloat * in, NfShape input,
    gfloat * out, GError ** error);
/* The same for the luma core of the model in use (its luma_engine must exist):
 * *input [1, 1, h, w] rounded up to the size multiple; out [1, 1, s h', s w']. */
gboolean nf_model_runner_plan_luma (NfModelRunner * r, gint w, gint h, NfShape * input,
    gboolean * was_planned, GError ** error);
gboolean nf_model_runner_run_luma_host (NfModelRunner * r, const gfloat * in,
    NfShape input, gfloat * out, GError ** error);

G_END_DECLS
